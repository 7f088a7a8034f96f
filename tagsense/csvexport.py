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
import functools
import sys
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


# --- the same cells computed by PostgreSQL ------------------------------------------------------
# An evidence package writes millions of rows: there, PostgreSQL writes each CSV line and the
# Python process only copies them. The expressions below are safe_cell() and csv.QUOTE_ALL in
# SQL; tests/test_exports.py checks that both give the same cell for every starter, blank and
# compatibility form above, and for random text.

# The code points of the leading characters _starts_like_formula() skips: blank (as defined
# above) and not themselves a starter after NFKC (the tab and carriage return are starters).
_STARTER_CODES = tuple(ord(s) for s in FORMULA_STARTS if s != "\0")  # PostgreSQL stores no NUL


@functools.cache
def _skipped_blanks_pattern() -> str:
    """A regular expression (PostgreSQL's) matching the run of leading characters a spreadsheet
    skips, as _starts_like_formula() skips them; built once from this Python's Unicode tables."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        if unicodedata.normalize("NFKC", ch).startswith(FORMULA_STARTS):
            continue
        if ch.isspace() or unicodedata.category(ch) in _BLANK_CATEGORIES:
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    members = "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)
    return f"^[{members}]+"


def csv_cell_sql(expression: str) -> tuple[str, list[Any]]:
    """SQL for the CSV cell of `expression` (text, or NULL for an empty cell) as csv_lines()
    writes it: neutralised as safe_cell() does, then quoted. Returns (sql, params)."""
    x = f"coalesce(({expression})::text, '')"
    starters = ", ".join(str(code) for code in _STARTER_CODES)
    sql = (
        "('\"' || replace(CASE "
        # The common case, as in _starts_like_formula(): printable ASCII other than the space.
        f"WHEN ascii({x}) BETWEEN 33 AND 126 THEN "
        f"CASE WHEN ascii({x}) IN ({starters}) THEN '''' || {x} ELSE {x} END "
        f"WHEN {x} = '' THEN '' "
        f"WHEN ascii(normalize(left(regexp_replace({x}, %s, ''), 1), NFKC)) IN ({starters}) "
        f"THEN '''' || {x} ELSE {x} END, '\"', '\"\"') || '\"')"
    )
    return sql, [_skipped_blanks_pattern()]


class Quoted(str):
    """A SQL expression whose text is already a quoted cell (quoted_cell(), computed in Python
    for a small set of values and joined in): csv_line_sql() writes it as it is."""


def csv_line_sql(expressions: Iterable[str]) -> tuple[str, list[Any]]:
    """SQL for one CSV line as csv_lines() writes it ("\\r\\n" included) of the cells
    `expressions`: each a SQL expression of text (or NULL) neutralised and quoted here, or a
    Quoted one taken as it is. Returns (sql, params)."""
    parts: list[str] = []
    params: list[Any] = []
    for expression in expressions:
        if isinstance(expression, Quoted):
            parts.append(f"({expression})")
            continue
        sql, cell_params = csv_cell_sql(expression)
        parts.append(sql)
        params.extend(cell_params)
    return " || ',' || ".join(parts) + " || E'\\r\\n'", params


def quoted_cell(value: Any) -> str:
    """One cell as csv_lines() writes it: safe_cell(), quoted, inner quotes doubled."""
    return '"' + safe_cell(value).replace('"', '""') + '"'
