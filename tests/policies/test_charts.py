"""Trend charts a reader can read: axes with percentages and dates, each point's date and value
on hover (a <title>), the same figures as a table for screen readers, nothing the CSP blocks."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from policies.scoring.charts import line_chart

SVG = "{http://www.w3.org/2000/svg}"
LAST = date(2026, 3, 31)


def parts(html: str) -> tuple[ET.Element, str]:
    svg, rest = html.split("</svg>", 1)
    # our own markup, no entity: the standard parser is fine here
    root = ET.fromstring(svg.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1) + "</svg>")  # noqa: S314
    return root, rest


def points(days: int, every: int = 1) -> list[tuple[date, float | None]]:
    return [(LAST - timedelta(days=n), 40.0 + n % 7) for n in range(0, days, every)][::-1]


@pytest.mark.parametrize("days, width, height", [(30, 280, 90), (90, 480, 120)])
def test_a_chart_has_axes_with_percentages_and_dates(days, width, height):
    root, _ = parts(str(line_chart(points(days), label="SOC 2", days=days, width=width,
                                   height=height)))  # fmt: skip
    lines = root.iter(f"{SVG}line")
    axes = {cls for e in lines for cls in e.get("class", "").split() if cls.endswith("-axis")}
    assert axes == {"x-axis", "y-axis"}
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert {"0 %", "50 %", "100 %"} <= set(texts)
    first = LAST - timedelta(days=days - 1)
    dates = [t for t in root.iter(f"{SVG}text") if "x-label" in t.get("class", "")]
    assert [d.find(f"{SVG}title").text for d in dates][0::2] == [
        first.isoformat(),
        LAST.isoformat(),
    ]
    assert any("31 Mar" in "".join(d.itertext()) for d in dates)
    # every label inside the picture
    for t in root.iter(f"{SVG}text"):
        assert 0 <= float(t.get("x")) <= width and 0 <= float(t.get("y")) <= height


def test_each_point_tells_its_date_and_value_and_a_table_repeats_them():
    data = points(30, every=3)
    html = str(line_chart(data, label="PCI DSS", days=30))
    root, rest = parts(html)
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "point"]
    titles = [g.find(f"{SVG}title").text for g in groups]
    assert titles == [f"{d.isoformat()} {s} %" for d, s in data]
    assert root.get("role") == "img" and "PCI DSS" in root.find(f"{SVG}title").text
    table = re.search(
        r'<div class="visually-hidden"><table class="chart-data">(.*)</table>', rest, re.S
    ).group(1)
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td></tr>", table)
    assert rows == [
        (d.isoformat(), t.split(" ", 1)[1]) for (d, _), t in zip(data, titles, strict=True)
    ]
    assert "<caption>PCI DSS: score per day</caption>" in table


def test_a_chart_holds_no_inline_style_or_script_and_escapes_its_label():
    html = str(line_chart(points(5), label='<script>x</script>" style="x', days=30))
    assert "<script" not in html and not re.search(r"\sstyle=\"", html)
    assert "&lt;script&gt;" in html
    parts(html)  # still well-formed
