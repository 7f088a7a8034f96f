"""The one CSV writer of the portal: every CSV a user downloads is written here.

Cells hold untrusted text (tag keys and values, resource names and ARNs come from anyone who
can tag a resource in a member account). A spreadsheet runs a cell that begins with `=`, `+`,
`-`, `@`, a tab or a carriage return as a formula (CSV injection, OWASP; OWASP ASVS 5.0
1.2.10 adds the NUL character, which PostgreSQL cannot store but a caller could pass). As OWASP
recommends, such a cell gets a leading single quote and every cell is quoted, so the spreadsheet
shows the text instead of running it. `|` is not in OWASP's list and is not treated specially:
it only matters after one of the starters above (DDE, `=cmd|...`), which is already caught.

Spreadsheets trim leading blanks before they look for a formula, and which characters count as
blank differs between products and versions, so the test skips every leading character that
is whitespace (`str.isspace()`, except the tab and carriage return, which are starters) or of
Unicode category Zs, Zl, Zp (separators: the en/em spaces, U+2028, U+2029) or Cf (invisible
format characters: zero-width space, byte-order mark, bidi marks), and then reads the first
remaining character after NFKC normalisation, so the full-width `＝＋－＠` (which some locales
take as formula starters) and other compatibility forms count as the ASCII ones. What this
costs: a value that genuinely begins with one of them (a negative number) reads with a `'` in
front.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")
# Unicode categories a spreadsheet may skip before the first character it reads.
_BLANK_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cf"})


def _starts_like_formula(text: str) -> bool:
    first = text[:1]
    # The common case, decided without Unicode tables (an evidence package writes millions of
    # cells): a printable ASCII character other than the space is read as itself by every
    # spreadsheet, so the text is a formula exactly when it is a starter.
    if "!" <= first <= "~":
        return first in FORMULA_STARTS
    for ch in text:
        if unicodedata.normalize("NFKC", ch).startswith(FORMULA_STARTS):
            return True  # checked first: "\t" and "\r" are starters, not blanks to skip
        if not (ch.isspace() or unicodedata.category(ch) in _BLANK_CATEGORIES):
            return False
    return False


def safe_cell(value: Any) -> str:
    """The cell's text, neutralised when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    if _starts_like_formula(text):
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
