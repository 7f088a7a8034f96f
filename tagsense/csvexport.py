"""The one CSV writer of the portal: every CSV a user downloads is written here.

Cells hold untrusted text (tag keys and values, resource names and ARNs come from anyone who
can tag a resource in a member account). A spreadsheet runs a cell that begins with `=`, `+`,
`-`, `@`, a tab or a carriage return as a formula (CSV injection, OWASP). As OWASP recommends,
such a cell gets a leading single quote and every cell is quoted, so the spreadsheet shows the
text instead of running it. A cell whose first character after leading whitespace is one of
those gets the quote too (some spreadsheets trim the whitespace first). What this costs: a
value that genuinely begins with one of them (a negative number) reads with a `'` in front.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """The cell's text, neutralised when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    # "\t" and "\r" count as dangerous, not as whitespace to skip.
    stripped = text.lstrip(" \n\x0b\x0c\u00a0\u3000")
    if text.startswith(FORMULA_STARTS) or stripped.startswith(FORMULA_STARTS):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The header and each row as one CSV line (lazily: `rows` may be a streamed queryset),
    every cell neutralised by safe_cell() and quoted."""
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    yield writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        yield writer.writerow([safe_cell(cell) for cell in row])
