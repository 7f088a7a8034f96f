"""Layout a user sees, measured in headless Chromium with the portal's stylesheet: every
checkbox and radio button of the templates sits beside its label's text, on its line; a trend
chart draws its axes and labels inside its box."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings

from policies.scoring.charts import line_chart

REPO = Path(settings.BASE_DIR)
SHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
LABELLED_BOX = re.compile(
    r"<label\b[^>]*>(?:(?!</label>).)*?<input\b[^>]*type=\"(?:checkbox|radio)\"(?:(?!</label>).)*</label>",
    re.S,
)


def _template_labels() -> list[tuple[str, str]]:
    """Each <label> of the templates that wraps a checkbox or radio button, template syntax
    stripped."""
    found = []
    for template in sorted((REPO / "templates").rglob("*.html")):
        for match in LABELLED_BOX.finditer(template.read_text()):
            html = re.sub(r"\{%.*?%\}", "", match.group(0), flags=re.S)
            html = re.sub(r"\{\{.*?\}\}", "value", html, flags=re.S)
            found.append((str(template.relative_to(REPO)), html))
    return found


def _page(body: str) -> str:
    css = (REPO / "static" / "css" / "tagsense.css").read_text()
    head = f"<head><style>{css}</style></head>"
    return f"<!DOCTYPE html><html>{head}<body><main>{body}</main></body></html>"


MEASURE = """() => [...document.querySelectorAll('label')].map(label => {
  const box = label.querySelector('input[type=checkbox], input[type=radio]')
    .getBoundingClientRect();
  const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT,
    {acceptNode: n => n.textContent.trim() ? NodeFilter.FILTER_ACCEPT
                                           : NodeFilter.FILTER_REJECT});
  const node = walker.nextNode();
  const range = document.createRange();
  range.selectNodeContents(node);
  const line = range.getClientRects()[0];
  return {text: node.textContent.trim(), box: [box.left, box.right, box.top, box.bottom],
          line: [line.left, line.right, line.top, line.bottom]};
})"""


def test_every_checkbox_and_radio_sits_beside_its_text(browser_page):
    labels = _template_labels()
    assert len(labels) >= 5, labels  # the exemption form, the settings, the rule editor...
    # As they appear: on their own and in the inline forms of the filters.
    body = "".join(f'<div class="card">{html}</div><form class="inline">{html}</form>'
                   for _, html in labels)  # fmt: skip
    browser_page.set_viewport_size({"width": 1200, "height": 800})
    browser_page.set_content(_page(body))
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SHOTS / "checkboxes.png"), full_page=True)
    for (where, _), measured in zip([x for x in labels for _ in (0, 1)],
                                    browser_page.evaluate(MEASURE), strict=True):  # fmt: skip
        box_left, box_right, box_top, box_bottom = measured["box"]
        line_left, line_right, line_top, line_bottom = measured["line"]
        middle = (box_top + box_bottom) / 2
        beside = line_top <= middle <= line_bottom  # on the text's first line
        assert beside, f"{where}: the box of {measured['text']!r} is not on its line: {measured}"
        if box_right <= line_left + 1:  # box first: the text follows it closely
            assert line_left - box_right < 16, (where, measured)
        else:  # text first: the box follows it
            assert box_left >= line_right - 1 and box_left - line_right < 16, (where, measured)


@pytest.mark.parametrize("width, height, days", [(280, 90, 90), (480, 120, 30)])
def test_a_chart_draws_its_axes_and_labels_inside_its_box(browser_page, width, height, days):
    last = date(2026, 3, 31)
    data = [(last - timedelta(days=n), 60.0 + (n * 7) % 30) for n in range(days)][::-1]
    chart = str(line_chart(data, label="SOC 2", days=days, width=width, height=height))
    browser_page.set_content(_page(f'<section class="card"><figure>{chart}</figure></section>'))
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.locator("svg.trend").screenshot(path=str(SHOTS / f"chart-{width}.png"))
    svg = browser_page.locator("svg.trend").bounding_box()
    texts = browser_page.evaluate(
        "() => [...document.querySelectorAll('svg.trend text')].map(t => {"
        " const r = t.getBoundingClientRect(); return [t.textContent, r.left, r.right, r.top,"
        " r.bottom]; })"
    )
    assert {"0 %", "50 %", "100 %"} <= {t[0] for t in texts}
    for text, left, right, top, bottom in texts:
        assert svg["x"] - 1 <= left and right <= svg["x"] + svg["width"] + 1, text
        assert svg["y"] - 1 <= top and bottom <= svg["y"] + svg["height"] + 1, text
    # the table of figures is in the page for screen readers, and takes no room on screen
    table = browser_page.locator(".visually-hidden:has(> table.chart-data)").bounding_box()
    assert table["width"] <= 1 and table["height"] <= 1
    assert browser_page.locator("table.chart-data tbody tr").count() == days
