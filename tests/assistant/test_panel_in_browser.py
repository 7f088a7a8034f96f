"""The assistant's panel in headless Chromium against the live server and a local
OpenAI-compatible server: the first words show while the model has not sent the last, the stop
button ends the upstream stream, and every page opens the panel."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.test import Client

from tests.assistant.llm_servers import Reply
from tests.assistant.test_chat import QUESTION, configure

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _signed_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}]
    )


def _asked(page, live_server, org, user, servers, reply):
    """The full page, signed in as `user`, after asking QUESTION of the local OpenAI-compatible
    provider, which answers with `reply`."""
    configure(org, servers)
    servers[0].script.append(reply)
    _signed_in(page, live_server, user)
    page.goto(f"{live_server.url}/o/{org.slug}/assistant/")
    page.fill("textarea[name=question]", QUESTION)
    page.click("form.assistant-ask button[type=submit]")
    return page


def test_words_show_before_the_last_is_sent_and_stop_ends_the_stream(
    browser_page, live_server, org, admin, servers
):
    openai_server, _ = servers
    gate = threading.Event()
    words = ["First ", "words ", *(f"w{i} " for i in range(300))]
    page = _asked(browser_page, live_server, org, admin, servers,
                  Reply(words=words, gate=gate, delay=0.01))  # fmt: skip
    page.locator(".turn-assistant .answer-body").filter(has_text="First").wait_for(timeout=15000)
    served = openai_server.served[0]
    assert not served.finished.is_set() and served.sent < len(words)  # the rest is not sent

    page.click("[data-assistant-stop]")
    page.wait_for_timeout(300)  # the stop request reaches the portal before the model goes on
    gate.set()
    page.locator(".turn-assistant .answer-footer").filter(has_text="Stopped.").wait_for(
        timeout=15000
    )
    assert served.finished.wait(10)
    assert served.cancelled and served.sent < len(words) // 2
    assert page.errors == []


def test_every_page_opens_the_panel(browser_page, live_server, org, admin):
    page = browser_page
    _signed_in(page, live_server, admin)
    page.goto(f"{live_server.url}/o/{org.slug}/inventory/")
    assert page.locator("#assistant-drawer").is_hidden()
    page.click(".assistant-toggle")
    page.locator("#assistant-drawer textarea[name=question]").wait_for(timeout=10000)
    assert "offline analyst" in page.locator("#assistant-drawer").inner_text()
    assert page.errors == []


def test_a_long_answer_streams_block_by_block_and_ends_whole_with_a_copy_button(
    browser_page, live_server, org, admin, servers
):
    gate = threading.Event()
    paragraphs = [f"Paragraph {i} names the **untagged** instances." for i in range(6)]
    arns = " ".join(f"arn:aws:ec2:eu-west-1:123456789012:instance/i-{i:017x}" for i in range(8))
    text = "\n\n".join(paragraphs) + f"\n\n```bash\naws ec2 create-tags --resources {arns}\n```\n"
    words = [word + " " for word in text.split(" ")]
    page = _asked(browser_page, live_server, org, admin, servers,
                  Reply(words=words, gate=gate, gate_after=len(words) // 2))  # fmt: skip
    # Half sent: the settled paragraphs show, once each, before the rest exists.
    page.locator(".answer-settled").filter(has_text="Paragraph 1 names").wait_for(timeout=15000)
    assert page.locator(".turn-assistant p", has_text="Paragraph 0 names").count() == 1
    gate.set()
    page.locator(".turn-assistant .answer-footer").wait_for(timeout=15000)
    body = page.locator(".turn-assistant .answer-body")
    for paragraph in ("Paragraph 0 names", "Paragraph 5 names"):
        assert body.locator("p", has_text=paragraph).count() == 1
    assert body.locator("pre [data-copy-button]").count() == 1
    # A long command scrolls inside its block; the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.errors == []
