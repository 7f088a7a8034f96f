"""Trend charts as inline SVG rendered on the server: no script, no external asset. Every text
that reaches the markup (labels, titles) is escaped by format_html."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

FULL_DOT = mark_safe('fill="currentColor"')  # noqa: S308 - constants
DEMO_DOT = mark_safe('fill="none" stroke="currentColor" class="demo"')  # noqa: S308


def line_chart(
    points: Sequence[tuple[date, float | None]],
    *,
    label: str,
    width: int = 240,
    height: int = 60,
    days: int = 30,
    demo_days: frozenset = frozenset(),
) -> SafeString:
    """A 0-100 % line over the last `days` days (x: the day, y: the score), one dot per
    snapshot, a <title> per dot for the exact figure. An empty chart says so. Days in
    `demo_days` hold invented demo history (policies.demo): hollow dots, titled as such."""
    pad = 4
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    known = [(d, s) for d, s in points if s is not None]
    if not known:
        return format_html(
            '<svg class="trend" role="img" width="{}" height="{}" viewBox="0 0 {} {}">'
            "<title>{}: no snapshot yet</title>"
            '<text x="{}" y="{}" font-size="10" fill="currentColor">no history yet</text></svg>',
            width, height, width, height, label, pad, height // 2,
        )  # fmt: skip
    last = known[-1][0]

    def xy(day: date, score: float) -> tuple[float, float]:
        offset = (days - 1) - (last - day).days
        x = pad + inner_w * (offset / max(days - 1, 1))
        y = pad + inner_h * (1 - score / 100)
        return round(x, 1), round(y, 1)

    coords = [xy(d, s) for d, s in known]
    line = " ".join(f"{x},{y}" for x, y in coords)
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="2" {}><title>{} {} %{}</title></circle>',
        (
            (x, y, DEMO_DOT if d in demo_days else FULL_DOT, d.isoformat(), s,
             " (demo data, not measured)" if d in demo_days else "")
            for (x, y), (d, s) in zip(coords, known, strict=True)
        ),
    )  # fmt: skip
    note = " — includes demo data, not measured" if demo_days else ""
    return format_html(
        '<svg class="trend" role="img" width="{}" height="{}" viewBox="0 0 {} {}">'
        "<title>{} — {} days, latest {} %{}</title>"
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor" stroke-opacity="0.2"/>'
        '<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/>{}</svg>',
        width, height, width, height, label, days, known[-1][1], note,
        pad, pad, width - pad, pad, line, dots,
    )  # fmt: skip


def snapshot_chart(snapshots, *, label: str, days: int = 30, **kwargs) -> SafeString:
    demo = frozenset(s.day for s in snapshots if s.source == "demo")
    points = [(s.day, s.score) for s in snapshots]
    return line_chart(points, label=label, days=days, demo_days=demo, **kwargs)
