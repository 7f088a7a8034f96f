// The assistant panel: open and close the drawer, clear the question once it is sent, and copy
// buttons on the code blocks of answers (pre[data-copy]: a proposed command is copied, never run).
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-assistant-toggle]");
    if (toggle) {
      var drawer = document.getElementById("assistant-drawer");
      if (drawer) { drawer.hidden = !drawer.hidden; }
      return;
    }
    var copy = event.target.closest("[data-copy-button]");
    if (copy) {
      var code = copy.parentElement.querySelector("code");
      if (code && navigator.clipboard) {
        navigator.clipboard.writeText(code.textContent);
        copy.textContent = "Copied";
      }
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target.closest && event.target.closest("form.assistant-ask");
    if (form && event.detail.successful) {
      var question = form.querySelector("textarea[name=question]");
      if (question) { question.value = ""; }
    }
  });
  function addCopyButtons(root) {
    root.querySelectorAll("pre[data-copy]").forEach(function (pre) {
      if (pre.querySelector("[data-copy-button]")) { return; }
      var button = document.createElement("button");
      button.type = "button";
      button.className = "linkish copy";
      button.setAttribute("data-copy-button", "");
      button.textContent = "Copy";
      pre.insertBefore(button, pre.firstChild);
    });
  }
  document.addEventListener("htmx:sseMessage", function (event) {
    if (event.detail && event.detail.type === "done") {
      var answer = event.target.closest(".turn-assistant");
      if (answer) { addCopyButtons(answer); }
    }
  });
  document.addEventListener("DOMContentLoaded", function () { addCopyButtons(document); });
})();
