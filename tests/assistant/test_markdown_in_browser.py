"""The Assistant's Markdown as Chromium sees it: hostile answers run nothing and link nowhere
but the web, mail and this site. The browser's own URL parser is the judge here."""

import pytest

from assistant.markdown import render

pytestmark = pytest.mark.browser

HOSTILE = [
    "<script>window.pwned = 1</script>",
    "<img src=x onerror='window.pwned = 2'>",
    '"><svg onload="window.pwned = 3">',
    "[a](javascript:window.pwned=4)",
    "[b](JaVaScRiPt:window.pwned=5)",
    "[c](&#106;avascript:window.pwned=6)",
    "[d](<java\tscript:window.pwned=7>)",
    "[e](<java\nscript:window.pwned=8>)",
    "![f](data:image/svg+xml,<svg onload='window.pwned=9'>)",
    "<javascript:window.pwned=10>",
    '[g](/o/acme/inventory/ "x\\" onmouseover=\\"window.pwned=11")',
    '| k | v |\n|---|---|\n| Owner | "><img src=x onerror="window.pwned=12"> |',
    "```\"><img src=x onerror='window.pwned=13'>\necho hi\n```",
    "[h](https://docs.aws.amazon.com/) [i](mailto:ops@acme.example) [j](/o/acme/inventory/)",
]


def test_hostile_answers_run_nothing_in_the_browser(browser_page):
    page = browser_page
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto("about:blank")
    body = "\n".join(f"<section>{render(text)}</section>" for text in HOSTILE)
    page.set_content(
        '<!doctype html><html><head><base href="https://tagsense.example/o/acme/"></head>'
        f"<body>{body}</body></html>"
    )
    for anchor in page.locator("a").all():
        anchor.hover()
    page.wait_for_load_state()

    assert page.evaluate("window.pwned") is None
    assert dialogs == [] and page.errors == []
    assert page.locator("script, img, svg, iframe, object, embed").count() == 0
    links = page.evaluate("[...document.links].map(a => [new URL(a.href).protocol, a.host])")
    assert {protocol for protocol, _ in links} == {"https:", "mailto:"}, links
    assert ["https:", "tagsense.example"] in links and ["https:", "docs.aws.amazon.com"] in links
