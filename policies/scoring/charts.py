"""Trend charts as inline SVG rendered on the server: no script, no external asset, nothing the
Content-Security-Policy forbids (presentation attributes, no inline style). Every text that
reaches the markup (labels, titles) is escaped by format_html.

A chart has axes: the score from 0 to 100 % with its gridlines, the days from the first to the
last of the period with their dates. Each snapshot is a dot whose <title> gives its date and
score (the browser's tooltip on hover). The SVG is one image to assistive technology
(role="img", its <title> the summary); the figures themselves follow it as a table that only
screen readers see (class "visually-hidden"). Every point is a measured snapshot: computed from
recorded findings (the demo's past too: demo.simulation replays it through the real code)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

FULL_DOT = mark_safe('fill="currentColor"')  # noqa: S308 - a constant
FONT = 9
# Room for the y labels ("100 %") on the left and the dates below.
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 6, 14


def _day(d: date) -> str:
    return f"{d.day} {d:%b}"  # "7 Dec": short and the same in every locale


def _frame(width: int, height: int, first: date, last: date) -> SafeString:
    """The axes: y gridlines and labels at 0, 50 and 100 %, x ticks and dates at the period's
    start, middle and end."""
    inner_w, inner_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    bottom = TOP + inner_h
    grid = format_html_join(
        "",
        '<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor"'
        ' stroke-opacity="0.15"/>'
        '<text class="y-label" x="{}" y="{}" font-size="{}" text-anchor="end"'
        ' dominant-baseline="middle" fill="currentColor">{} %</text>',
        (
            (LEFT, y, width - RIGHT, y, LEFT - 3, y, FONT, value)
            for value in (0, 50, 100)
            for y in [round(TOP + inner_h * (1 - value / 100), 1)]
        ),
    )
    span = (last - first).days
    ticks = [(first, "start"), (first + timedelta(days=span // 2), "middle"), (last, "end")]
    dates = format_html_join(
        "",
        '<line class="x-tick" x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor"/>'
        '<text class="x-label" x="{}" y="{}" font-size="{}" text-anchor="{}"'
        ' fill="currentColor"><title>{}</title>{}</text>',
        (
            (x, bottom, x, bottom + 3, x, height - 2, FONT, anchor, d.isoformat(), _day(d))
            for d, anchor in ticks
            for x in [round(LEFT + inner_w * ((d - first).days / max(span, 1)), 1)]
        ),
    )
    axes = format_html(
        '<line class="axis y-axis" x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor"/>'
        '<line class="axis x-axis" x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor"/>',
        LEFT, TOP, LEFT, bottom, LEFT, bottom, width - RIGHT, bottom,
    )  # fmt: skip
    return format_html("{}{}{}", grid, axes, dates)


def _table(label: str, known) -> SafeString:
    rows = format_html_join(
        "", "<tr><td>{}</td><td>{} %</td></tr>", ((d.isoformat(), s) for d, s in known)
    )
    return format_html(
        '<div class="visually-hidden"><table class="chart-data">'
        "<caption>{}: score per day</caption>"
        '<thead><tr><th scope="col">Day</th><th scope="col">Score</th></tr></thead>'
        "<tbody>{}</tbody></table></div>",
        label, rows,
    )  # fmt: skip


def line_chart(
    points: Sequence[tuple[date, float | None]],
    *,
    label: str,
    width: int = 280,
    height: int = 90,
    days: int = 30,
    for_print: bool = False,
) -> SafeString:
    """A 0-100 % line over the last `days` days (x: the day, y: the score), one dot per
    snapshot with a <title> for the exact figure, axes with dates and percentages, and the
    same figures as a table for screen readers. An empty chart says so.

    `for_print` (summary.pdf of an evidence package): the line and its axes only. A page has
    no hover and no screen reader, and the dots and table cost WeasyPrint ~3x the time and
    memory of the whole line (60 charts of 90 days: 20 s and 540 MiB against 6 s, 170 MiB)."""
    known = [(d, s) for d, s in points if s is not None]
    if not known:
        return format_html(
            '<svg class="trend" role="img" width="{}" height="{}" viewBox="0 0 {} {}">'
            "<title>{}: no snapshot yet</title>"
            '<text x="{}" y="{}" font-size="10" fill="currentColor">no history yet</text></svg>',
            width, height, width, height, label, LEFT, height // 2,
        )  # fmt: skip
    last = known[-1][0]
    first = last - timedelta(days=days - 1)
    inner_w, inner_h = width - LEFT - RIGHT, height - TOP - BOTTOM

    def xy(day: date, score: float) -> tuple[float, float]:
        x = LEFT + inner_w * ((day - first).days / max(days - 1, 1))
        y = TOP + inner_h * (1 - score / 100)
        return round(x, 1), round(y, 1)

    coords = [xy(d, s) for d, s in known]
    line = " ".join(f"{x},{y}" for x, y in coords)
    dots = "" if for_print else format_html_join(
        "",
        '<g class="point"><title>{} {} %</title>'
        '<circle cx="{}" cy="{}" r="6" fill="transparent"/>'
        '<circle cx="{}" cy="{}" r="2.5" {}/></g>',
        (
            (d.isoformat(), s, x, y, x, y, FULL_DOT)
            for (x, y), (d, s) in zip(coords, known, strict=True)
        ),
    )  # fmt: skip
    svg = format_html(
        '<svg class="trend" role="img" width="{}" height="{}" viewBox="0 0 {} {}">'
        "<title>{} — {} days from {} to {}, latest {} %</title>{}"
        '<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/>{}</svg>',
        width, height, width, height, label, days, first.isoformat(), last.isoformat(),
        known[-1][1], _frame(width, height, first, last), line, dots,
    )  # fmt: skip
    if for_print:
        return svg
    return format_html("{}{}", svg, _table(label, known))


def snapshot_chart(snapshots, *, label: str, days: int = 30, **kwargs) -> SafeString:
    points = [(s.day, s.score) for s in snapshots]
    return line_chart(points, label=label, days=days, **kwargs)
