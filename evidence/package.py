# ruff: noqa: S608 - only this module's fixed SQL fragments are interpolated; values are parameters
"""Builds one evidence package: the ZIP an auditor takes away (docs/evidence.md, "What is in a
package").

The ZIP is streamed to `<EVIDENCE_ROOT>/<organization id>/<uuid>.zip.part`, one member at a
time, each through a writer that hashes (SHA-256) and counts it as it goes, and renamed to
`.zip` only once the last member and the central directory are written; on any failure the
`.part` is deleted, so no half-written package is ever at a path the portal serves.

Memory does not grow with the estate: every large set (findings, their changes) is read as a
stream (the ledger's iterators, `.iterator()` server-side cursors), enriched in fixed batches,
and written row by row. A CSV file and its JSON twin are written from one pass: the JSON rows
go to an unnamed temporary file beside the package while the CSV member is written, then are
copied into the JSON member (ZIP members are written one at a time).

What each file holds comes from the module that owns it, called directly: the finding ledger
and the versions in force (policies.history), the audit chain's segment and head
(audit.exports), the OSCAL and PDF writers (evidence.oscal, evidence.pdf), the key and the
manifest (evidence.keys, evidence.manifest).

Every CSV cell goes through tagsense.csvexport (formula injection); JSON carries the text as
stored. Reads run inside the organization's tenant scope, one transaction per file (and per
control), so the export's progress, written between them, is visible while it builds.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from isal import isal_zlib

from accounts.models import Organization
from audit import exports as audit_exports
from audit.services import RangeCheck, last_verification
from inventory.models import AwsAccount, ScanUnit
from policies import history
from policies.history import ControlState, PolicyInterval, RuleInterval
from policies.models import Control, Exemption, Finding, FindingEvent
from tagsense import clock
from tagsense.csvexport import Quoted, csv_line_sql, csv_lines, quoted_cell
from tagsense.tenancy.db import tenant_scope

from . import keys, manifest, oscal
from .content import (
    ChainCheck,
    ControlResult,
    CoverageGap,
    DayRate,
    FailingResource,
    Header,
    Period,
    Summary,
)
from .models import EvidenceExport
from .services import (
    ResolvedScope,
    ScopeError,
    organization_folder,
    package_path,
    partial_path,
    resolve_scope,
)

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

Progress = Callable[[int, str], None]
_R = TypeVar("_R")

# Rows between two progress reports of a large file.
PROGRESS_EVERY = 10_000
# Coverage gaps listed in summary.pdf (scan-coverage.csv has them all).
COVERAGE_GAPS_SHOWN = 100
WRITE_BUFFER = 1 << 16
COPY_BLOCK = 1 << 20
# ISA-L's level 1 (0-3): on the benchmark's CSV and JSON ~4.5x the speed of zlib's level 1 with
# a slightly better ratio (7.2 against 6.6).
DEFLATE_LEVEL = 1
# Rows fetched per round trip when PostgreSQL writes the lines (two text columns a row).
QUERY_FETCH = 5_000
# The period includes its start; the ledger's changes_between covers (start, end]. PostgreSQL
# keeps microseconds, so (start - 1 µs, end] is the period's [start, end].
BEFORE = timedelta(microseconds=1)

# In the order they are written (the findings first: the controls' history is read beside them).
FILES = (
    "findings-open-at-end.csv",
    "findings-open-at-end.json",
    "controls.csv",
    "controls.json",
    "finding-changes.csv",
    "finding-changes.json",
    "exemptions.csv",
    "exemptions.json",
    "rule-versions.csv",
    "rule-versions.json",
    "tag-policy-versions.csv",
    "tag-policy-versions.json",
    "scan-coverage.csv",
    "scan-coverage.json",
    "audit-log.jsonl",
    "assessment-results.json",
    "summary.pdf",
    "manifest.json",
    "manifest.sig",
)

CONTROL_COLUMNS = (
    "framework",
    "framework_name",
    "framework_version",
    "control_id",
    "title",
    "rules",
    "status_at_end",
    "open_findings",
    "failing_resources",
    "exempted_findings",
    "rules_in_force",
    "days",
    "days_passed",
    "pass_rate",
)
FINDING_COLUMNS = (
    "finding_id",
    "controls",
    "rule_id",
    "rule_version",
    "severity",
    "kind",
    "found_key",
    "resource_arn",
    "resource_type",
    "account_id",
    "region",
    "open_since",
)
CHANGE_COLUMNS = (
    "at",
    "event",
    "from_status",
    "to_status",
    "finding_id",
    "controls",
    "rule_id",
    "rule_version",
    "severity",
    "kind",
    "found_key",
    "resource_arn",
    "resource_type",
    "account_id",
    "region",
    "exemption_id",
)
EXEMPTION_COLUMNS = (
    "exemption_id",
    "status_at_end",
    "status_now",
    "requested_by",
    "requested_at",
    "justification",
    "decided_by",
    "decided_at",
    "expires_at",
    "findings",
)
RULE_VERSION_COLUMNS = (
    "rule_id",
    "version",
    "change",
    "active",
    "title",
    "severity",
    "check",
    "valid_from",
    "valid_to",
    "changed_by",
    "spec",
)
TAG_POLICY_COLUMNS = (
    "name",
    "version",
    "change",
    "target_type",
    "target",
    "position",
    "valid_from",
    "valid_to",
    "changed_by",
    "document",
)
COVERAGE_COLUMNS = (
    "account_id",
    "region",
    "resource_type",
    "record",
    "in_period",
    "scan_id",
    "scan_status",
    "unit_status",
    "started_at",
    "finished_at",
    "error_code",
    "error",
)


class BuildError(Exception):
    """A build stopped for a reason a member may read (shown on the export's page)."""


def generator() -> str:
    return f"TagSense {importlib.metadata.version('tagsense')}"


# --- writing members ------------------------------------------------------------------------


class HashingWriter:
    """A ZIP member being written: hashes (SHA-256) and counts what passes, in 64 KiB writes.
    Takes bytes, or text (written as UTF-8)."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self._buffer = bytearray()
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview | str) -> int:
        chunk = data.encode() if isinstance(data, str) else data
        self._buffer += chunk
        if len(self._buffer) >= WRITE_BUFFER:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer:
            self.sha256.update(self._buffer)
            self._raw.write(self._buffer)
            self.size += len(self._buffer)
            self._buffer.clear()

    def tell(self) -> int:
        return self.size + len(self._buffer)

    def writable(self) -> bool:
        return True


@dataclass
class Archive:
    """The ZIP being written, and each finished member's (name, size, sha256)."""

    zf: zipfile.ZipFile
    spool_dir: Path
    files: list[tuple[str, int, str]] = field(default_factory=list)

    @contextmanager
    def member(self, name: str) -> Iterator[HashingWriter]:
        with self.zf.open(name, "w", force_zip64=True) as raw:
            _deflate_with_isal(raw)
            writer = HashingWriter(raw)
            yield writer
            writer.flush()
        self.files.append((name, writer.size, writer.sha256.hexdigest()))

    def table(
        self,
        base: str,
        columns: tuple[str, ...],
        records: Iterable[dict[str, Any]],
        *,
        spool: IO[bytes] | None = None,
        on_rows: Callable[[int], None] | None = None,
    ) -> int:
        """`<base>.csv` and `<base>.json` (an array, one record a line) from one pass over
        `records`; returns how many. With `spool`, the JSON lines are left in it (for a later
        reader) instead of a temporary file of its own."""
        count = 0
        with ExitStack() as stack:
            lines = spool or stack.enter_context(tempfile.TemporaryFile(dir=self.spool_dir))

            def rows() -> Iterator[list[Any]]:
                nonlocal count
                for record in records:
                    lines.write(_json(record) + b"\n")
                    count += 1
                    if on_rows is not None and count % PROGRESS_EVERY == 0:
                        on_rows(count)
                    yield [_cell(record[c]) for c in columns]

            with self.member(f"{base}.csv") as out:
                for text in csv_lines(columns, rows()):
                    out.write(text)
            lines.seek(0)
            with self.member(f"{base}.json") as out:
                _json_array(lines, out, count)
        return count

    def query_table(
        self,
        base: str,
        columns: tuple[str, ...],
        query: RowQuery,
        *,
        spool: IO[bytes] | None = None,
        on_rows: Callable[[int], None] | None = None,
    ) -> int:
        """table() for a large file whose lines PostgreSQL writes (query_rows)."""
        with ExitStack() as stack:
            lines = spool or stack.enter_context(tempfile.TemporaryFile(dir=self.spool_dir))
            with self.member(f"{base}.csv") as out:
                count = query_rows(query, columns, out, lines, on_rows)
            lines.seek(0)
            with self.member(f"{base}.json") as out:
                _json_array(lines, out, count)
        return count

    def spooled_table(self, base: str, spooled: Background[int]) -> int:
        """`<base>.csv` and `<base>.json` from a background query_rows() into two spools."""
        count = spooled.result()
        csv_spool, json_spool = spooled.spools
        with self.member(f"{base}.csv") as out:
            csv_spool.seek(0)
            while block := csv_spool.read(COPY_BLOCK):
                out.write(block)
        json_spool.seek(0)
        with self.member(f"{base}.json") as out:
            _json_array(json_spool, out, count)
        return count


def _deflate_with_isal(member: IO[bytes]) -> None:
    """Have a ZIP member being written deflated by ISA-L (the isal package) instead of zlib.

    Deflating the ledger files (about 3 GB at 1,000,000 resources) with zlib's fastest level
    took ~14 s of one core, much of it after everything else was done (docs/benchmarks.md,
    "Evidence package"); ISA-L writes the same raw deflate stream, which any unzip (and the
    auditor's verifier, with the standard zlib) reads. zipfile has no public way to choose the
    compressor: the one it made for this member, not yet used, is replaced. Should zipfile ever
    stop having it, the member stays zlib's (slower, the same file)."""
    if getattr(member, "_compressor", None) is not None:
        member._compressor = isal_zlib.compressobj(  # type: ignore[attr-defined]
            DEFLATE_LEVEL, isal_zlib.DEFLATED, -isal_zlib.MAX_WBITS
        )


def query_rows(
    query: RowQuery,
    columns: tuple[str, ...],
    csv_out: SupportsWrite[bytes] | HashingWriter,
    json_lines: SupportsWrite[bytes],
    on_rows: Callable[[int], None] | None = None,
) -> int:
    """The CSV (header first) and the JSON lines of `query`'s records, whose lines PostgreSQL
    writes (RowQuery): this process only copies them, a fetch at a time (a server-side cursor:
    memory does not grow with the rows). Returns how many records."""
    count = 0
    sql, params = query.sql()
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        csv_out.write(next(csv_lines(columns, ())).encode())
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(QUERY_FETCH):
            csv_out.write("".join([row[0] for row in rows]).encode())
            json_lines.write("\n".join([row[1] for row in rows]).encode() + b"\n")
            before, count = count, count + len(rows)
            if on_rows is not None and count // PROGRESS_EVERY > before // PROGRESS_EVERY:
                on_rows(count)
    return count


@dataclass
class RowQuery:
    """A large file's rows as one SELECT: `source` (a FROM item, with `params`) and each
    column's SQL (`cells`: a column name, its SQL for the CSV cell — text, or a Quoted cell
    computed beforehand — and its SQL for the value's JSON text: see _json_*), in the file's
    column order. The JSON record is concatenated, not json_build_object()'s: that looks each
    argument's type up again for every row and took twice as long."""

    source: str
    params: list[Any]
    cells: list[tuple[str, str, str]]

    def sql(self) -> tuple[str, list[Any]]:
        line, line_params = csv_line_sql([csv for _, csv, _ in self.cells])
        pairs = sorted((name, value) for name, _, value in self.cells)  # as _json's sorted keys
        record = " || ',' || ".join(f"'\"{name}\":' || {value}" for name, value in pairs)
        return (
            f"SELECT {line}, '{{' || {record} || '}}' FROM {self.source}",
            [*line_params, *self.params],
        )


def _json_number(expression: str) -> str:
    """The JSON text of an integer column (null for NULL)."""
    return f"coalesce(({expression})::text, 'null')"


def _json_plain(expression: str) -> str:
    """The JSON text of text this module's SQL produces and no one else writes (a status name,
    a timestamp): nothing in it needs escaping."""
    return f"coalesce('\"' || ({expression}) || '\"', 'null')"


def _json_text(expression: str, null: str = "null") -> str:
    """The JSON text of untrusted text, escaped by PostgreSQL's to_json (`null` for NULL)."""
    return f"coalesce(to_json(({expression})::text)::text, '{null}')"


def _iso_sql(expression: str) -> str:
    """SQL for a timestamp's text as Python's isoformat() writes a UTC datetime (microseconds
    only when there are any), NULL for NULL."""
    utc = f"(({expression}) AT TIME ZONE 'UTC')"
    return (
        f"CASE WHEN mod(date_part('microseconds', {expression})::bigint, 1000000) = 0 "
        f'THEN to_char({utc}, \'YYYY-MM-DD"T"HH24:MI:SS"+00:00"\') '
        f'ELSE to_char({utc}, \'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"\') END'
    )


def _json_array(lines: IO[bytes], out: HashingWriter, count: int) -> None:
    """The spooled JSON lines as an array, one record a line: "[", each line after "\n" (the
    first) or ",\n", then "\n]". Copied a block at a time (a line of JSON holds no raw
    newline, so each "\n" in a block ends a record), not a line at a time: the twins of the
    findings and their changes are millions of lines."""
    if not count:
        out.write(b"[]\n")
        return
    out.write(b"[\n")
    held = b""  # the last two bytes so far: the final ",\n" becomes "\n]\n"
    while block := lines.read(COPY_BLOCK):
        data = held + block.replace(b"\n", b",\n")
        out.write(data[:-2])
        held = data[-2:]
    out.write(b"\n]\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json(record: Any) -> bytes:
    return orjson.dumps(record, default=_json_default, option=orjson.OPT_SORT_KEYS)


def _cell(value: Any) -> Any:
    """A record's value as one CSV cell (neutralised later by csv_lines)."""
    if type(value) is str or type(value) is int:  # most cells; not bool (a subclass of int)
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return _json(value).decode()
    return value


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _plain(expression: str) -> Quoted:
    """The CSV cell of text this module's SQL produces and no one else writes (an id, a
    timestamp, a status name): it starts with no formula character and holds no quote, so it
    is only quoted."""
    return Quoted(f"'\"' || coalesce(({expression})::text, '') || '\"'")


# The cells of the two ledger files (RowQuery: name, CSV cell, JSON value) over a ledger query
# aliased `s`, the maps `m`, the resource `r` and the change's time `d.at` (its ISO text) of
# Build._ledger_rows().
_CONTROLS = (
    "controls",
    Quoted("coalesce(m.controls_csv ->> s.rule_slug, '\"\"')"),
    "coalesce(m.controls_json ->> s.rule_slug, '[]')",
)
_RULE = [
    ("rule_id", "s.rule_slug", _json_text("s.rule_slug")),
    ("rule_version", _plain("s.rule_version"), _json_number("s.rule_version")),
    ("severity", _plain("s.severity"), _json_plain("s.severity")),
    ("kind", _plain("s.kind"), _json_plain("s.kind")),
    ("found_key", "s.found_key", _json_text("s.found_key")),
    ("resource_arn", "r.arn", _json_text("r.arn", '""')),
    ("resource_type", "r.resource_type", _json_text("r.resource_type", '""')),
    (
        "account_id",
        Quoted("coalesce(m.accounts_csv ->> s.account_id::text, '\"\"')"),
        "coalesce(m.accounts_json ->> s.account_id::text, '\"\"')",
    ),
    ("region", "r.region", _json_text("r.region", '""')),
]
FINDING_CELLS = [
    ("finding_id", _plain("s.finding_id"), _json_number("s.finding_id")),
    _CONTROLS,
    *_RULE,
    ("open_since", _plain("d.at"), _json_plain("d.at")),
]
CHANGE_CELLS = [
    ("at", _plain("d.at"), _json_plain("d.at")),
    ("event", _plain("s.event"), _json_plain("s.event")),
    ("from_status", _plain("s.from_status"), _json_plain("s.from_status")),
    ("to_status", _plain("s.to_status"), _json_plain("s.to_status")),
    ("finding_id", _plain("s.finding_id"), _json_number("s.finding_id")),
    _CONTROLS,
    *_RULE,
    ("exemption_id", _plain("s.exemption_id"), _json_number("s.exemption_id")),
]
FINDING_ORDER = "s.rule_slug, s.resource_id, s.finding_id"  # history.findings_at's order
CHANGE_ORDER = "s.at, s.id"  # history.changes_between's


# --- the build --------------------------------------------------------------------------------


@dataclass
class Build:
    """One package's build: the export, its resolved scope, and what later files need from
    earlier ones (the summary's parts, the audit segment)."""

    export: EvidenceExport
    organization: Organization
    archive: Archive
    on_progress: Progress
    resolved: ResolvedScope
    header: Header
    controls: list[ControlResult] = field(default_factory=list)
    coverage_gaps: list[CoverageGap] = field(default_factory=list)
    coverage_gaps_total: int = 0
    exemptions_in_period: int = 0
    audit_segment: dict[str, Any] = field(default_factory=dict)
    chain_head: dict[str, Any] = field(default_factory=dict)
    key_fingerprint: str = ""

    @property
    def period(self) -> Period:
        return self.header.period

    @property
    def account_pks(self) -> list[int] | None:
        return self.resolved.account_pks

    def scope(self) -> Any:
        return tenant_scope(self.organization)

    def progress(self, percent: float, stage: str) -> None:
        self.on_progress(int(percent), stage)

    def row_progress(self, percent: float, what: str) -> Callable[[int], None]:
        return lambda n: self.progress(percent, f"{what}: {n:,} rows")

    # -- the files, in order ---------------------------------------------------------------

    def run(self, spool: IO[bytes]) -> None:
        # What takes the longest runs beside the findings file (Background): the audit log in
        # a process of its own (Python's hashing), the controls' history and the changes
        # (PostgreSQL's sums and lines), then the OSCAL observations of the findings written.
        audit_log = Background(
            "evidence-audit-log", self, self.audit_log_apart, spools=1, inline=self.audit_log_to
        )
        background: list[Background[Any]] = [audit_log]
        try:
            controls = Background("evidence-controls", self, self.control_states)
            background.append(controls)
            changes = Background("evidence-changes", self, self.changes_to, spools=2)
            background.append(changes)
            self.write_findings(spool)
            # The failing resources' OSCAL observations, from the findings just written.
            observations = Background(
                "evidence-oscal",
                self,
                lambda out: self.observations_apart(spool, out),
                spools=1,
                inline=lambda out: self.rule_observations(spool, out),
            )
            background.append(observations)
            self.write_controls(controls)
            self.write_changes(changes)
            self.write_exemptions()
            self.write_versions()
            self.write_coverage()
            self.write_audit_log(audit_log)
            summary = self.summary()
            self.progress(85, "Assessment results (OSCAL)")
            count, by_rule = observations.result()
            [written] = observations.spools
            written.seek(0)
            ahead = oscal.RuleObservations(stream=written, count=count, by_rule=by_rule)
            with self.scope(), self.archive.member("assessment-results.json") as out:
                oscal.write_assessment_results(out, summary, ahead=ahead)
        finally:
            for part in background:
                part.stop()
        self.progress(92, "Summary report (PDF)")
        # WeasyPrint (1.8 s and tens of MiB to import) loads when a package is built, not in
        # every process that imports the tasks (the web process, every worker).
        from . import pdf  # noqa: PLC0415 - heavy, needed only here

        with self.scope(), self.archive.member("summary.pdf") as out:
            pdf.write_summary_pdf(out, summary)
        self.write_manifest()

    def control_states(self) -> list[tuple[ControlState, list[tuple[date, int, int, bool]]]]:
        """Each control's state at the period's end and its daily states, their sums over the
        ledger computed for every control at once (history.remember_controls)."""
        with history.remembering():
            with self.scope():
                history.remember_controls(
                    self.organization,
                    self.resolved.controls,
                    self.period.end,
                    self.period.start.date(),
                    self.period.end.date(),
                    account_pks=self.account_pks,
                )
            return [self._control_state(control) for control in self.resolved.controls]

    def rule_observations(
        self, spool: IO[bytes], out: _StoppableWriter
    ) -> tuple[int, dict[str, list[str]]]:
        """The OSCAL observations of the findings open at the period's end, read back from
        their spooled JSON lines, written into `out` (oscal.write_rule_observations)."""
        spool.seek(0)
        return oscal.write_rule_observations(
            out, self.header.package_id, failing_from_lines(spool), self.period.end
        )

    def write_controls(self, background: Background[list[Any]]) -> None:
        self.progress(40, f"Controls: {len(self.resolved.controls)}")
        states = []
        for control, (state, days) in zip(self.resolved.controls, background.result(), strict=True):
            states.append(state)
            self.controls.append(_control_result(control, state, days))
        self.archive.table("controls", CONTROL_COLUMNS, map(_control_record, self.controls, states))

    def _control_state(
        self, control: Control
    ) -> tuple[ControlState, list[tuple[date, int, int, bool]]]:
        with self.scope():
            state = history.control_status_at(
                self.organization, control, self.period.end, account_pks=self.account_pks
            )
            days = history.daily_control_states(
                self.organization,
                control,
                self.period.start.date(),
                self.period.end.date(),
                account_pks=self.account_pks,
            )
            return state, days

    def write_findings(self, spool: IO[bytes]) -> None:
        self.progress(15, "Findings open at period end")
        with self.scope():
            if not self.resolved.rule_ids:
                self.archive.table("findings-open-at-end", FINDING_COLUMNS, (), spool=spool)
                return
            sql, params = history.findings_at_query(
                self.organization,
                self.period.end,
                rule_ids=self.resolved.rule_ids,
                account_pks=self.account_pks,
            )
            self.archive.query_table(
                "findings-open-at-end",
                FINDING_COLUMNS,
                self._ledger_rows(sql, params, FINDING_CELLS, FINDING_ORDER),
                spool=spool,
                on_rows=self.row_progress(15, "Findings open at period end"),
            )

    def changes_to(self, csv_out: SupportsWrite[bytes], json_lines: SupportsWrite[bytes]) -> int:
        """The period's finding changes, as CSV and JSON lines (query_rows); how many."""
        with self.scope():
            if not self.resolved.rule_ids:
                csv_out.write(next(csv_lines(CHANGE_COLUMNS, ())).encode())
                return 0
            sql, params = history.changes_query(
                self.organization,
                self.period.start - BEFORE,
                self.period.end,
                rule_ids=self.resolved.rule_ids,
                account_pks=self.account_pks,
            )
            query = self._ledger_rows(sql, params, CHANGE_CELLS, CHANGE_ORDER)
            return query_rows(query, CHANGE_COLUMNS, csv_out, json_lines)

    def write_changes(self, background: Background[int]) -> None:
        self.progress(55, "Finding changes in the period")
        self.archive.spooled_table("finding-changes", background)

    def write_exemptions(self) -> None:
        self.progress(65, "Exemptions")
        with self.scope():
            self.exemptions_in_period = self.archive.table(
                "exemptions", EXEMPTION_COLUMNS, self._exemptions()
            )

    def write_versions(self) -> None:
        self.progress(67, "Rule versions in force")
        rule_ids = set(self.resolved.rule_ids)
        start, end = self.period.start, self.period.end
        with self.scope():
            intervals = history.rule_versions_in_force(self.organization, start, end)
            self.archive.table(
                "rule-versions",
                RULE_VERSION_COLUMNS,
                (_rule_version_record(i) for i in intervals if i.rule_id in rule_ids),
            )
        self.progress(69, "AWS tag policy versions in force")
        with self.scope():
            policies = history.tag_policy_versions_in_force(self.organization, start, end)
            self.archive.table(
                "tag-policy-versions", TAG_POLICY_COLUMNS, map(_tag_policy_record, policies)
            )

    def write_coverage(self) -> None:
        self.progress(70, "Scan coverage")
        with self.scope():
            self.archive.table("scan-coverage", COVERAGE_COLUMNS, self._coverage())

    def write_audit_log(self, audit_log: Background[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        self.progress(73, "Audit log of the period")
        self.audit_segment, self.chain_head = audit_log.result()
        [spool] = audit_log.spools
        spool.seek(0)
        with self.archive.member(manifest.AUDIT_LOG_NAME) as out:
            while block := spool.read(COPY_BLOCK):
                out.write(block)

    def audit_log_to(self, fp: SupportsWrite[bytes]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The period's audit log written to `fp`, verified in the same pass and then on to the
        head (summary()); and the chain's head read after it (so at or past its last event, as
        the verifier checks): the chain as it stood at export time, for the summary and
        manifest."""
        with self.scope():
            segment = audit_exports.write_chain_segment(
                fp, self.organization.pk, self.period.start, self.period.end, verify=True
            )
            return segment, audit_exports.chain_head(self.organization.pk)

    def audit_log_apart(self, spool: _StoppableWriter) -> tuple[dict[str, Any], dict[str, Any]]:
        """audit_log_to() in a process of its own (`manage.py evidence_audit_log`) writing into
        the spool's file: its hashing is CPU work in Python, and in this process it would take
        turns with everything else this build does in Python. Stopped with the build."""
        found = _apart(
            "evidence_audit_log",
            [
                str(self.organization.pk),
                self.period.start.isoformat(),
                self.period.end.isoformat(),
                spool.name,
                f"--database-name={connection.settings_dict['NAME']}",
            ],
            spool,
        )
        segment = found["segment"]
        segment["verified"] = RangeCheck.from_found(found["verified"])
        return segment, found["head"]

    def observations_apart(
        self, findings: IO[bytes], spool: _StoppableWriter
    ) -> tuple[int, dict[str, list[str]]]:
        """rule_observations() in a process of its own (`manage.py
        evidence_oscal_observations`) reading the findings' spooled JSON lines and writing into
        the spool's file: per failing resource it is Python (a million subjects), which in this
        process would hold up the build's own copies of the members. Stopped with the build."""
        found = _apart(
            "evidence_oscal_observations",
            [self.header.package_id, self.period.end.isoformat(), findings.name, spool.name],
            spool,
        )
        return int(found["count"]), found["by_rule"]

    def summary(self) -> Summary:
        """The summary's parts. The audit chain's check is what write_audit_log() verified
        (the period's segment and every event after it to the head), and what the last
        verification of the whole chain (audit.tasks, nightly) found: a package does not walk
        a chain of millions of events again, and says which events it checked."""
        self.progress(80, "Verifying the audit chain")
        checked: RangeCheck = self.audit_segment["verified"]
        with self.scope():
            last = last_verification(self.organization.pk)
        last_broken = last is not None and not last[1].get("intact", False)
        head = self.chain_head
        chain = ChainCheck(
            intact=checked.intact and not last_broken,
            events_checked=checked.events,
            head_seq=head["seq"] or None,
            head_hash=head["hash"],
            detail=_chain_detail(checked, last),
        )
        return Summary(
            header=self.header,
            controls=self.controls,
            coverage_gaps=self.coverage_gaps,
            coverage_gaps_total=self.coverage_gaps_total,
            exemptions_in_period=self.exemptions_in_period,
            chain=chain,
            files=[name for name in FILES if name not in ("manifest.json", "manifest.sig")],
        )

    def write_manifest(self) -> None:
        self.progress(97, "Manifest and signature")
        with self.scope():
            key = keys.active_key(self.organization)
            document = manifest.manifest_bytes(
                self.header, list(self.archive.files), self.audit_segment, self.chain_head, key
            )
            signature = manifest.signature_bytes(self.organization, document)
        self.key_fingerprint = key.fingerprint
        with self.archive.member(manifest.MANIFEST_NAME) as out:
            out.write(document)
        with self.archive.member(manifest.SIGNATURE_NAME) as out:
            out.write(signature)

    # -- the rows --------------------------------------------------------------------------

    def _control_keys(self) -> dict[str, list[str]]:
        keys: dict[str, list[str]] = {}
        for control in self.resolved.controls:
            for rule_id in control.rule_ids:
                keys.setdefault(rule_id, []).append(
                    f"{control.framework.slug}/{control.control_id}"
                )
        return keys

    def _accounts(self) -> dict[int, str]:
        return dict(AwsAccount.objects.for_org(self.organization).values_list("pk", "account_id"))

    def _ledger_rows(
        self, sql: str, params: list[Any], cells: list[tuple[str, str, str]], order: str
    ) -> RowQuery:
        """The rows of a ledger query `sql` (history.findings_at_query's or changes_query's,
        aliased `s`) as a RowQuery of `cells`, each row given its controls (`m.controls_*`, by
        rule), its account's id (`m.accounts_*`) and its resource's ARN, type and region (`r`;
        empty for a resource removed from the inventory since), in the order `order`.

        The resource is looked up per row by its primary key (a lateral subquery, kept as such
        by OFFSET 0), so the ledger query's order carries through and the joined rows, wide
        with their text, are not sorted again; the time's ISO text (`d.at`) is computed once a
        row for both files."""
        controls = self._control_keys()
        accounts = self._accounts()
        maps = (  # each value its CSV cell, or its JSON text
            {rule: quoted_cell(" ".join(keys)) for rule, keys in controls.items()},
            {rule: orjson.dumps(keys).decode() for rule, keys in controls.items()},
            {str(pk): quoted_cell(account) for pk, account in accounts.items()},
            {str(pk): orjson.dumps(account).decode() for pk, account in accounts.items()},
        )
        source = (
            f"({sql}) s CROSS JOIN (SELECT %s::jsonb AS controls_csv, %s::jsonb AS "
            "controls_json, %s::jsonb AS accounts_csv, %s::jsonb AS accounts_json) m "
            "LEFT JOIN LATERAL (SELECT x.arn, x.resource_type, x.region FROM "
            "inventory_resource x WHERE x.id = s.resource_id AND x.organization_id = %s "
            f"OFFSET 0) r ON true CROSS JOIN LATERAL (SELECT {_iso_sql('s.at')} AS at OFFSET 0) d "
            f"ORDER BY {order}"
        )
        return RowQuery(
            source=source,
            params=[*params, *(orjson.dumps(m).decode() for m in maps), self.organization.pk],
            cells=cells,
        )

    def _exemptions(self) -> Iterator[dict[str, Any]]:
        """Exemptions in force at some time in the period or decided in it, of findings of the
        scope's rules (and accounts)."""
        start, end = self.period.start, self.period.end
        # A finding names only its latest exemption (a later request replaces it, a rejection
        # clears it); the ledger keeps every exemption a finding was exempted or expired under.
        covered = Finding.objects.for_org(self.organization).filter(
            exemption=OuterRef("pk"), rule__rule_id__in=self.resolved.rule_ids
        )
        recorded = FindingEvent.objects.for_org(self.organization).filter(
            exemption_id=OuterRef("pk"), rule_slug__in=self.resolved.rule_ids
        )
        if self.account_pks is not None:
            covered = covered.filter(account_id__in=self.account_pks)
            recorded = recorded.filter(account_id__in=self.account_pks)
        exemptions = (
            Exemption.objects.for_org(self.organization)
            .filter(
                Q(decided_at__gte=start, decided_at__lte=end)
                | Q(
                    status__in=[Exemption.APPROVED, Exemption.EXPIRED],
                    decided_at__lte=end,
                    expires_at__gt=start,
                )
            )
            .filter(Exists(covered) | Exists(recorded))
            .order_by("requested_at", "pk")
        )
        for exemption in exemptions.iterator(chunk_size=500):
            yield {
                "exemption_id": exemption.pk,
                "status_at_end": _exemption_status_at(exemption, end),
                "status_now": exemption.current_status,
                "requested_by": exemption.requested_by_label,
                "requested_at": _iso(exemption.requested_at),
                "justification": exemption.justification,
                "decided_by": exemption.decided_by_label,
                "decided_at": _iso(exemption.decided_at),
                "expires_at": _iso(exemption.expires_at),
                "findings": exemption.finding_count,
            }

    def _coverage(self) -> Iterator[dict[str, Any]]:
        """Each unit's last successful scan at or before the period's end, each failed or
        skipped unit of the period, and each unit never scanned successfully by its end. The
        units not scanned successfully in the period become the summary's coverage gaps."""
        start, end = self.period.start, self.period.end
        units = ScanUnit.objects.for_org(self.organization)
        if self.account_pks is not None:
            units = units.filter(account_id__in=self.account_pks)
        fields = (
            "account__account_id",
            "region",
            "resource_type",
            "scan_id",
            "scan__status",
            "status",
            "started_at",
            "finished_at",
            "error_code",
            "error",
        )
        succeeded: set[tuple[str, str, str]] = set()
        last_ok = (
            units.filter(status=ScanUnit.SUCCEEDED, finished_at__lte=end)
            .order_by("account_id", "region", "resource_type", "-finished_at", "-id")
            .distinct("account_id", "region", "resource_type")
            .values_list(*fields)
        )
        for row in last_ok.iterator(chunk_size=2000):
            succeeded.add(row[:3])
            in_period = row[7] >= start
            if not in_period:
                self._gap(row, "not scanned successfully in the period", row[7], "")
            yield _coverage_record(row, "last_success", in_period)
        problems = units.filter(
            status__in=[ScanUnit.FAILED, ScanUnit.SKIPPED],
            finished_at__gte=start,
            finished_at__lte=end,
        ).order_by("finished_at", "id")
        for row in problems.values_list(*fields).iterator(chunk_size=2000):
            self._gap(row, row[5], row[7], f"{row[8]} {row[9]}".strip())
            yield _coverage_record(row, row[5], True)
        seen = (
            units.filter(scan__created_at__lte=end)
            .order_by("account_id", "region", "resource_type")
            .distinct("account_id", "region", "resource_type")
            .values_list("account__account_id", "region", "resource_type")
        )
        for key in seen.iterator(chunk_size=2000):
            if key not in succeeded:
                row = (*key, None, None, None, None, None, "", "")
                self._gap(row, "never scanned successfully", None, "")
                yield _coverage_record(row, "no_success", False)

    def _gap(self, row: tuple[Any, ...], problem: str, at: datetime | None, detail: str) -> None:
        self.coverage_gaps_total += 1
        if len(self.coverage_gaps) < COVERAGE_GAPS_SHOWN:
            self.coverage_gaps.append(
                CoverageGap(
                    account_id=row[0],
                    region=row[1],
                    resource_type=row[2],
                    problem=problem,
                    at=at,
                    detail=detail[:300],
                )
            )


class _Stopped(Exception):
    """The build stopped while a part of it was being written in the background."""


class Background(Generic[_R]):
    """A part of the package (`work`, given `spools` temporary files beside the package to
    write into) run by a thread with a database connection of its own while the build writes
    the other files, the ZIP's members being written one at a time: PostgreSQL computes the
    large files and the audit log's per-event hashing is Python's, so on two cores they overlap.
    result() waits for it and hands over its outcome or what stopped it.

    Inside a transaction (a test's; a worker runs the build outside any) another connection
    would not see the caller's uncommitted rows: there `work` (or `inline`, when given) runs in
    this thread when its result is asked for, so the build's steps run in the order of their
    results."""

    def __init__(
        self,
        name: str,
        build: Build,
        work: Callable[..., _R],
        *,
        spools: int = 0,
        inline: Callable[..., _R] | None = None,
    ):
        self._stopping = threading.Event()
        # Closed by stop(), which the build always calls.
        self.spools = [
            tempfile.NamedTemporaryFile(dir=build.archive.spool_dir)  # noqa: SIM115
            for _ in range(spools)
        ]
        writers = [_StoppableWriter(spool, self._stopping) for spool in self.spools]
        self._outcome: list[_R] = []
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if connection.in_atomic_block:
            self._deferred: Callable[[], _R] | None = lambda: _written(inline or work, writers)
            return
        self._deferred = None
        self._thread = threading.Thread(
            target=self._work, args=(work, writers), name=name, daemon=True
        )
        self._thread.start()

    def _work(self, work: Callable[..., _R], writers: list[_StoppableWriter]) -> None:
        try:
            self._outcome.append(_written(work, writers))
        except BaseException as exc:  # noqa: BLE001 - handed to the build's thread by result()
            self._error = exc
        finally:
            connection.close()  # this thread's own connection

    def result(self) -> _R:
        if self._deferred is not None:
            work, self._deferred = self._deferred, None
            self._outcome.append(work())
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._outcome[0]

    def stop(self) -> None:
        """End the background work (the build failed, or is done) and drop its spools."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        for spool in self.spools:
            spool.close()


def _apart(command: str, arguments: list[str], spool: _StoppableWriter) -> dict[str, Any]:
    """Run `manage.py <command> <arguments>` (an internal command of this app writing into
    `spool`'s file), killed when the build stops; what it printed last, as JSON."""
    argv = [sys.executable, str(settings.BASE_DIR / "manage.py"), command, *arguments]
    with subprocess.Popen(  # noqa: S603 - our interpreter, our command, ids, times and paths
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        while True:
            try:
                out, err = process.communicate(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if spool.stopping.is_set():
                    process.kill()
                    raise _Stopped from None
    if process.returncode:
        detail = err.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{command} exited {process.returncode}: {detail}")
    found: dict[str, Any] = json.loads(out.splitlines()[-1])
    return found


def _written(work: Callable[..., _R], writers: list[_StoppableWriter]) -> _R:
    outcome = work(*writers)
    for writer in writers:
        writer.flush()
    return outcome


class _StoppableWriter:
    """A spool being written in the background: gathered into 1 MiB writes (each write to the
    file lets the other threads take the interpreter, and getting it back waits for them), and
    raising _Stopped once `stopping` is set."""

    def __init__(self, raw: IO[bytes], stopping: threading.Event):
        self._raw, self.stopping = raw, stopping
        self.name = raw.name  # for a process of its own to write into
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        if self.stopping.is_set():
            raise _Stopped
        self._buffer += data
        if len(self._buffer) >= COPY_BLOCK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        self._raw.write(self._buffer)
        self._buffer.clear()


def _control_result(
    control: Control, state: ControlState, days: list[tuple[date, int, int, bool]]
) -> ControlResult:
    framework = control.framework
    return ControlResult(
        framework_slug=framework.slug,
        framework_name=framework.name,
        framework_version=framework.version,
        control_id=control.control_id,
        title=control.title,
        rule_ids=list(control.rule_ids),
        status=state.status,
        failing_resources=state.failing_resources or 0,  # counted: count_resources's default
        exempted_findings=state.exempted_findings,
        days=[DayRate(day=d[0], compliant=d[1], in_scope=d[2]) for d in days],
        days_passed=sum(1 for d in days if d[3]),
    )


def _control_record(result: ControlResult, state: ControlState) -> dict[str, Any]:
    return {
        "framework": result.framework_slug,
        "framework_name": result.framework_name,
        "framework_version": result.framework_version,
        "control_id": result.control_id,
        "title": result.title,
        "rules": result.rule_ids,
        "status_at_end": result.status,
        "open_findings": state.open_findings,
        "failing_resources": result.failing_resources,
        "exempted_findings": result.exempted_findings,
        "rules_in_force": state.rules_in_force,
        "days": len(result.days),
        "days_passed": result.days_passed,
        "pass_rate": result.pass_rate,
        "daily": [
            {"day": d.day.isoformat(), "compliant": d.compliant, "in_scope": d.in_scope}
            for d in result.days
        ],
    }


def _exemption_status_at(exemption: Exemption, end: datetime) -> str:
    if exemption.decided_at is None or exemption.decided_at > end:
        return Exemption.PENDING
    if exemption.status == Exemption.REJECTED:
        return Exemption.REJECTED
    return Exemption.EXPIRED if exemption.expires_at <= end else Exemption.APPROVED


def _rule_version_record(interval: RuleInterval) -> dict[str, Any]:
    spec = interval.spec or {}
    return {
        "rule_id": interval.rule_id,
        "version": interval.version,
        "change": interval.change,
        "active": interval.active,
        "title": spec.get("title", ""),
        "severity": spec.get("severity", ""),
        "check": spec.get("check", ""),
        "valid_from": _iso(interval.valid_from),
        "valid_to": _iso(interval.valid_to),
        "changed_by": interval.changed_by,
        "spec": spec,
    }


def _tag_policy_record(interval: PolicyInterval) -> dict[str, Any]:
    return {
        "name": interval.name,
        "version": interval.version,
        "change": interval.change,
        "target_type": interval.target_type,
        "target": interval.target,
        "position": interval.position,
        "valid_from": _iso(interval.valid_from),
        "valid_to": _iso(interval.valid_to),
        "changed_by": interval.changed_by,
        "document": interval.document,
    }


def _coverage_record(row: tuple[Any, ...], record: str, in_period: bool) -> dict[str, Any]:
    return {
        "account_id": row[0],
        "region": row[1],
        "resource_type": row[2],
        "record": record,
        "in_period": in_period,
        "scan_id": row[3],
        "scan_status": row[4],
        "unit_status": row[5],
        "started_at": _iso(row[6]),
        "finished_at": _iso(row[7]),
        "error_code": row[8],
        "error": row[9],
    }


def _chain_detail(checked: RangeCheck, last: tuple[datetime, dict[str, Any]] | None) -> str:
    """What the package's chain check covered, and what it did not, in words."""
    if not checked.intact:
        return f"event #{checked.first_bad_seq}: {checked.problem}"
    if checked.first_seq is None:
        parts = ["No event from the period's start to the head to verify."]
    else:
        parts = [
            f"Events #{checked.first_seq} to #{checked.last_seq} (the period's audit log and "
            "every later event to the head) verified at export time: sequence, links, keyed "
            "hash and keyless digest."
        ]
    first = checked.first_seq or checked.expected_seq
    if first > 1:
        parts.append(f"Events #1 to #{first - 1} were not verified again for this package.")
    else:
        parts.append("That is the whole chain.")
    if last is None:
        parts.append("The whole chain has not been verified yet (nightly verification).")
    else:
        at, data = last
        if data.get("intact", False):
            found = f"intact, {data.get('events')} events"
            if data.get("anchored"):
                found += f", {data.get('anchors')} anchor(s) matched"
        else:
            found = f"broken: {data.get('problem', 'no detail recorded')}"
        parts.append(f"The whole chain was last verified at {at.isoformat()}: {found}.")
    return " ".join(parts)


def failing_from_lines(spool: IO[bytes]) -> Iterator[FailingResource]:
    """The findings open at period end again, read back from their spooled JSON lines."""
    # The findings one evaluation opened share their opening time.
    loads, parse = orjson.loads, lru_cache(maxsize=4096)(datetime.fromisoformat)
    for line in spool:
        row = loads(line)
        yield FailingResource(  # positionally: a million rows
            row["controls"],
            row["rule_id"],
            row["rule_version"],
            row["resource_arn"],
            row["resource_type"],
            row["account_id"],
            row["region"],
            row["kind"],
            row["found_key"],
            row["severity"],
            parse(row["open_since"]),
        )


def build(export: EvidenceExport, on_progress: Progress) -> None:
    """Build the export's package at package_path(export), or leave nothing there.

    Runs outside any transaction (each file opens the organization's tenant scope; the
    export's organization is the one in context). `on_progress(percent, stage)` is called
    between files and every PROGRESS_EVERY rows of a large one. On success `export`'s
    key_fingerprint is set (not saved: evidence.tasks saves it with the rest). Raises
    BuildError with a message for members when the request cannot be built any more, or
    whatever a source raised; either way the partial file is gone."""
    organization = export.organization
    on_progress(1, "Checking the scope")
    with tenant_scope(organization):
        try:
            resolved = resolve_scope(organization, export.scope)
        except ScopeError as exc:
            raise BuildError(f"The scope cannot be built any more: {exc}") from exc
    header = Header(
        package_id=str(export.uuid),
        organization_slug=organization.slug,
        organization_name=organization.name,
        scope=resolved.scope,
        period=Period(start=export.period_start, end=export.period_end),
        generated_at=clock.now(),
        generated_by=export.requested_by_label,
        generator=generator(),
    )
    folder = organization_folder(organization.pk)
    folder.mkdir(parents=True, exist_ok=True)
    part, final = partial_path(export), package_path(export)
    try:
        with (
            zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
            # Named: the OSCAL observations' process reads it (Build.observations_apart).
            tempfile.NamedTemporaryFile(dir=folder) as spool,
        ):
            job = Build(
                export=export,
                organization=organization,
                archive=Archive(zf=zf, spool_dir=folder),
                on_progress=on_progress,
                resolved=resolved,
                header=header,
            )
            job.run(spool)
        os.replace(part, final)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    export.key_fingerprint = job.key_fingerprint
    on_progress(100, "Package complete")
