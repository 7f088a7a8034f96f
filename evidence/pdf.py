"""summary.pdf: the page of an evidence package a person reads, rendered by WeasyPrint from the
Django template templates/evidence/summary.html.

What it shows comes from a `content.Summary` only (nothing here reads the database): the scope
and period, who generated it and when; per framework and control the status at the period's
end, the daily compliance rate over the period as a chart (policies.scoring.charts, the one
place charts are drawn), the failing resources count and the exemptions; the coverage gaps (as
many as the builder kept, then "and N more"); the audit chain's verification; the package's
files and how to verify them. Never a row per resource: a report with one would grow with the
estate (a 53-page table peaked near 300 MiB).

Untrusted text (titles written by members, tag values in gap details, actor labels) is escaped
by the template's autoescape, so it prints as text. As a second wall, WeasyPrint fetches
through `fonts_only_fetcher`, which serves our shipped fonts and refuses every other URL: an
<img src="http://..."> that ever reached the markup would fetch nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from evidence import content
from policies.scoring.charts import line_chart

if TYPE_CHECKING:
    from _typeshed import SupportsWrite  # WeasyPrint writes the PDF with write() alone

FONTS_DIR = Path(settings.BASE_DIR) / "static" / "fonts"
TEMPLATE = "evidence/summary.html"
FONT_FAMILY = "TagSense Sans"  # the @font-face name in the template
STATUS_LABELS = {"pass": "Pass", "fail": "Fail", "no_rules": "Not assessed (no rule)"}


class FetchRefused(ValueError):
    """A URL the report may not load. WeasyPrint logs it and renders without the resource."""


class FontsOnlyFetcher(URLFetcher):
    """Serves files under FONTS_DIR (file:// URLs) and refuses every other URL, of any
    scheme: the PDF is built from our template and our fonts, nothing from the network."""

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        path = _font_path(url)
        if path is None:
            raise FetchRefused(f"summary.pdf loads only its shipped fonts, not {url[:200]!r}")
        return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": "font/ttf"})


def _font_path(url: str) -> Path | None:
    """The file a file:// URL names when it lies under FONTS_DIR (symlinks and ".." resolved),
    else None."""
    if not url.startswith("file://"):
        return None
    try:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            return None
        path = Path(unquote(parts.path)).resolve()
    except (OSError, ValueError):
        return None
    fonts = FONTS_DIR.resolve()
    return path if path.is_relative_to(fonts) and path.is_file() else None


@dataclass(frozen=True)
class _ControlRow:
    control: content.ControlResult
    status_label: str
    chart: SafeString


@dataclass(frozen=True)
class _Framework:
    slug: str
    name: str
    version: str
    rows: list[_ControlRow]
    failing: int
    passing: int


def _chart(control: content.ControlResult) -> SafeString:
    """The control's daily compliance rate over the period as inline SVG. Its text is set in
    our shipped font: an SVG does not inherit the page's CSS font, and would take the
    system's."""
    svg = line_chart(
        [(d.day, d.rate) for d in control.days],
        label=f"{control.framework_name} {control.control_id}: daily compliance rate",
        width=300,
        height=80,
        days=max(len(control.days), 1),
        for_print=True,
    )
    return mark_safe(svg.replace("<svg ", f'<svg font-family="{FONT_FAMILY}" ', 1))  # noqa: S308 - adds a constant attribute to escaped markup


def _frameworks(controls: list[content.ControlResult]) -> Iterator[_Framework]:
    """The controls grouped by framework (in the order the builder gave), each with its chart."""
    for slug, group in groupby(controls, key=lambda c: c.framework_slug):
        members = list(group)
        rows = [
            _ControlRow(
                control=c,
                status_label=STATUS_LABELS.get(c.status, c.status),
                chart=_chart(c),
            )
            for c in members
        ]
        yield _Framework(
            slug=slug,
            name=members[0].framework_name,
            version=members[0].framework_version,
            rows=rows,
            failing=sum(c.status == "fail" for c in members),
            passing=sum(c.status == "pass" for c in members),
        )


def render_html(summary: content.Summary) -> str:
    """The report as HTML (autoescaped Django template)."""
    return render_to_string(
        TEMPLATE,
        {
            "summary": summary,
            "header": summary.header,
            "frameworks": list(_frameworks(summary.controls)),
            "more_gaps": max(summary.coverage_gaps_total - len(summary.coverage_gaps), 0),
            "font_regular": (FONTS_DIR / "DejaVuSans.ttf").as_uri(),
            "font_bold": (FONTS_DIR / "DejaVuSans-Bold.ttf").as_uri(),
        },
    )


def html_to_pdf(html: str, fp: SupportsWrite[bytes]) -> None:
    """Render `html` to PDF into `fp`, loading nothing but our fonts."""
    HTML(string=html, base_url=FONTS_DIR.as_uri() + "/", url_fetcher=FontsOnlyFetcher()).write_pdf(
        fp
    )


def write_summary_pdf(fp: SupportsWrite[bytes], summary: content.Summary) -> None:
    """Write summary.pdf of `summary` to `fp` (a ZIP member opened for writing, or any binary
    file)."""
    html_to_pdf(render_html(summary), fp)
