"""Trend charts as inline SVG rendered on the server: no script, no external asset. Every text
that reaches the markup (labels, titles) is escaped by format_html."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString


def line_chart(
    points: Sequence[tuple[date, float | None]],
    *,
    label: str,
    width: int = 240,
    height: int = 60,
    days: int = 30,
) -> SafeString:
    """A 0-100 % line over the last `days` days (x: the day, y: the score), one dot per
    snapshot, a <title> per dot for the exact figure. An empty chart says so."""
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
        '<circle cx="{}" cy="{}" r="2"><title>{} {} %</title></circle>',
        ((x, y, d.isoformat(), s) for (x, y), (d, s) in zip(coords, known, strict=True)),
    )
    return format_html(
        '<svg class="trend" role="img" width="{}" height="{}" viewBox="0 0 {} {}">'
        "<title>{} — {} days, latest {} %</title>"
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="currentColor" stroke-opacity="0.2"/>'
        '<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/>{}</svg>',
        width, height, width, height, label, days, known[-1][1],
        pad, pad, width - pad, pad, line, dots,
    )  # fmt: skip


def snapshot_chart(snapshots, *, label: str, days: int = 30, **kwargs) -> SafeString:
    return line_chart([(s.day, s.score) for s in snapshots], label=label, days=days, **kwargs)
