// Draws a resource's neighbourhood with Cytoscape. Labels are set as text, never HTML.
(function () {
  "use strict";
  var WHAT = { dependents: "depending on it", dependencies: "it depends on", both: "connected to it" };
  function draw(container, depth, direction) {
    var url = container.getAttribute("data-url") + "?depth=" + encodeURIComponent(depth) +
      "&direction=" + encodeURIComponent(direction);
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var note = document.getElementById("graph-note");
        if (note) {
          note.textContent = data.truncated
            ? "Showing the nearest " + (data.nodes.length - 1) + " of " + data.reachable + " reachable resources."
            : data.reachable + " resources " + (WHAT[data.direction] || "") + " within " + data.depth + " hop(s).";
        }
        var cy = window.cytoscape({
          container: container,
          elements: data.nodes.concat(data.edges),
          wheelSensitivity: 0.2,
          style: [
            { selector: "node", style: { "label": "data(label)", "font-size": 9,
              "background-color": "#2157d6", "color": "#1d2330", "text-valign": "bottom",
              "width": 18, "height": 18, "text-wrap": "ellipsis", "text-max-width": 110 } },
            { selector: "node[?root]", style: { "background-color": "#f59e0b", "width": 26, "height": 26 } },
            { selector: "node[?untagged]", style: { "border-width": 3, "border-color": "#c0362c" } },
            { selector: "node[type = 'unknown']", style: { "background-color": "#98a2b3" } },
            { selector: "edge", style: { "width": 1.2, "line-color": "#b8c0cc", "curve-style": "bezier",
              "target-arrow-shape": "triangle", "target-arrow-color": "#b8c0cc",
              "label": "data(label)", "font-size": 7, "color": "#667085" } }
          ],
          layout: { name: "cose", animate: false, padding: 20 }
        });
        cy.on("tap", "node", function (evt) {
          var target = evt.target.data("url");
          if (target) { window.location.assign(target); }
        });
      });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var container = document.getElementById("resource-graph");
    if (!container || !window.cytoscape) { return; }
    var depth = document.getElementById("graph-depth");
    var direction = document.getElementById("graph-direction");
    function redraw() {
      draw(container, depth ? depth.value : 1, direction ? direction.value : "both");
    }
    redraw();
    [depth, direction].forEach(function (select) {
      if (select) { select.addEventListener("change", redraw); }
    });
  });
})();
