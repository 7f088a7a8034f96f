"""Writing scan results, one unit (account × region × resource type) at a time.

Writes are batched — never one query per resource — and a resource found unchanged costs one
index probe and no row write: the unit's completion is recorded once (UnitCoverage) and stands
for the last sighting of every live resource in it. Resources a completed unit did not see are
marked deleted, never dropped. Callers run inside the organization's tenant scope.

    writer = unit_writer(account=..., resource_type=..., region=..., scan=...)
    for page in scanner.pages(ctx):
        counts.add(writer.write(page, now=clock.now()))
    counts.deleted = writer.finish(now=clock.now())

`now` and `started` are the caller's time (tagsense.clock.now() in the runner): every time the
writer records (first seen, last written, a TagEvent's seen_at, deleted_at, the unit's
coverage) is one it is given, never one it reads, so a replayed day (demo.simulation) stores
rows dated that day.

The writer is set-based SQL on PostgreSQL (PgUnitWriter, tests/inventory/test_storage.py).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import orjson
from django.db import connection, transaction

from .models import AwsAccount, Resource, ScanRun, TagEvent, UnitCoverage
from .models.resources import GLOBAL
from .scanners.base import ResourceRecord


class StorageError(Exception):
    """The unit cannot be closed safely; nothing was marked deleted."""


@dataclass
class Counts:
    seen: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    deleted: int = 0

    def add(self, other: Counts) -> None:
        for name in ("seen", "new", "changed", "unchanged", "deleted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


_JSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def to_json(value) -> bytes:
    """Canonical JSON (sorted keys), the same bytes for equal values."""
    return orjson.dumps(value, option=_JSON_OPTIONS, default=str)


def encode(record: ResourceRecord) -> tuple[str, bytes, bytes]:
    """(fingerprint, tags as JSON, config as JSON): each encoded once, the JSON reused for the
    database and for the fingerprint of name, region, tags, config and relations."""
    tags = to_json(record.tags)
    config = to_json(record.config)
    relations = "\x1e".join(sorted(f"{r.kind}\x1d{r.target_arn}" for r in record.relations))
    digest = hashlib.sha1(  # noqa: S324 - a change detector, not a security hash
        b"\x1f".join(
            (record.name.encode(), record.region.encode(), tags, config, relations.encode())
        )
    ).hexdigest()
    return digest, tags, config


def fingerprint(record: ResourceRecord) -> str:
    return encode(record)[0]


def diff_tags(old: dict[str, str], new: dict[str, str]) -> list[dict[str, str | None]]:
    changes: list[dict[str, str | None]] = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        kind = "added" if before is None else "removed" if after is None else "changed"
        changes.append({"key": key, "old": before, "new": after, "kind": kind})
    return changes


class UnitWriter(ABC):
    """Stores the pages of one scan unit, then closes it (finish)."""

    def __init__(
        self,
        *,
        account: AwsAccount,
        resource_type: str,
        region: str,
        scan: ScanRun | None,
        started: datetime,
    ) -> None:
        self.account = account
        self.organization_id = account.organization_id
        self.resource_type = resource_type
        self.region = region  # GLOBAL: every region (a global service's listing)
        self.scan = scan
        self.started = started

    @abstractmethod
    def write(self, records: Iterable[ResourceRecord], now: datetime) -> Counts:
        """Store one page of the unit's resources."""

    @abstractmethod
    def finish(self, now: datetime) -> int:
        """Mark deleted what the unit did not see; record the unit's completion."""

    def _unit(self):
        live = Resource.objects.filter(
            organization_id=self.organization_id,
            account=self.account,
            resource_type=self.resource_type,
            deleted_at__isnull=True,
        )
        return live if self.region == GLOBAL else live.filter(region=self.region)

    def _cover(self) -> None:
        UnitCoverage.objects.bulk_create(
            [
                UnitCoverage(
                    organization_id=self.organization_id,
                    account=self.account,
                    resource_type=self.resource_type,
                    region=self.region,
                    seen_at=self.started,
                    scan=self.scan,
                )
            ],
            update_conflicts=True,
            unique_fields=["organization", "account", "resource_type", "region"],
            update_fields=["seen_at", "scan"],
        )


def unit_writer(**kwargs) -> UnitWriter:
    """The writer of one scan unit: set-based SQL (PgUnitWriter)."""
    return PgUnitWriter(**kwargs)


# --- The PostgreSQL path ------------------------------------------------------------------------
# Each page: its (ARN, fingerprint) pairs are COPYed into a staging table and classified in one
# statement, which also records the unchanged rows' ids as seen; only new and changed rows are
# COPYed in full and written with one INSERT ... ON CONFLICT. The ids seen accumulate in a
# session-temporary table until the unit closes, where one UPDATE marks the rest deleted, with
# their history events and edges in the same statement. Every lookup is driven from the page
# (LATERAL ... LIMIT 1 through uniq_resource_arn), so plans do not depend on statistics, which
# are stale during a first scan (and always, with autovacuum off).

_SETUP_SQL = [
    "CREATE TEMPORARY TABLE IF NOT EXISTS tagsense_seen (id bigint) ON COMMIT PRESERVE ROWS",
    "CREATE TEMPORARY TABLE IF NOT EXISTS tagsense_stage_key (arn text, fp text)"
    " ON COMMIT DELETE ROWS",
    "CREATE TEMPORARY TABLE IF NOT EXISTS tagsense_stage_resource (arn text, region text,"
    " resource_type text, resource_id text, name text, tags jsonb, config jsonb, fp text)"
    " ON COMMIT DELETE ROWS",
    "CREATE TEMPORARY TABLE IF NOT EXISTS tagsense_stage_edge (source_arn text, kind text,"
    " target_arn text) ON COMMIT DELETE ROWS",
]

_EMPTY_STAGES_SQL = (
    "DELETE FROM tagsense_stage_key; DELETE FROM tagsense_stage_resource;"
    " DELETE FROM tagsense_stage_edge"
)

# New and changed rows of the page; the unchanged ones are recorded as seen.
_CLASSIFY_SQL = """
WITH found AS MATERIALIZED (
    SELECT k.arn, k.fp, r.id, r.fingerprint, r.deleted_at, r.tags
    FROM tagsense_stage_key k
    LEFT JOIN LATERAL (
        SELECT r.id, r.fingerprint, r.deleted_at, r.tags FROM inventory_resource r
        WHERE r.organization_id = %(org)s AND r.arn = k.arn LIMIT 1
    ) r ON true
), seen AS (
    INSERT INTO tagsense_seen (id)
    SELECT id FROM found WHERE fingerprint = fp AND deleted_at IS NULL
)
SELECT arn, id, tags, deleted_at IS NOT NULL FROM found
WHERE id IS NULL OR fingerprint <> fp OR deleted_at IS NOT NULL
"""

_UPSERT_SQL = """
INSERT INTO inventory_resource AS r (
    organization_id, account_id, arn, region, resource_type, resource_id, name, tags,
    config, fingerprint, first_seen, first_scan_id, last_written, deleted_at)
SELECT %(org)s, %(account)s, s.arn, s.region, s.resource_type, s.resource_id, s.name,
       s.tags, s.config, s.fp, %(now)s, %(scan)s, %(now)s, NULL
FROM tagsense_stage_resource s
ON CONFLICT (organization_id, arn) DO UPDATE SET
    account_id = EXCLUDED.account_id, region = EXCLUDED.region,
    resource_type = EXCLUDED.resource_type, resource_id = EXCLUDED.resource_id,
    name = EXCLUDED.name, tags = EXCLUDED.tags, config = EXCLUDED.config,
    fingerprint = EXCLUDED.fingerprint, last_written = EXCLUDED.last_written,
    deleted_at = NULL
"""
# The same, recording the rows written as seen (not needed in a unit's first scan: every row of
# the unit is then one this scan wrote, and nothing can be missing).
_WRITE_SQL = f"""
WITH written AS ({_UPSERT_SQL} RETURNING r.id)
INSERT INTO tagsense_seen (id) SELECT id FROM written
"""  # noqa: S608 - constant SQL text, no input in it

_EVENTS_SQL = """
INSERT INTO inventory_tagevent (organization_id, resource_id, scan_id, seen_at, kind, changes,
                                tags)
SELECT %(org)s, e.resource_id, %(scan)s, %(now)s, e.kind, e.changes::jsonb, e.tags::jsonb
FROM unnest(%(ids)s::bigint[], %(kinds)s::text[], %(changes)s::text[], %(tags)s::text[])
    AS e(resource_id, kind, changes, tags)
"""

_MISSING_SQL = """
WITH previous AS (
    SELECT max(c.seen_at) AS seen_at FROM inventory_unitcoverage c
    WHERE c.organization_id = %(org)s AND c.account_id = %(account)s
      AND c.resource_type = %(type)s AND c.region = %(region)s
), gone AS (
    UPDATE inventory_resource r
    SET deleted_at = %(now)s,
        last_written = GREATEST(r.last_written,
                                COALESCE((SELECT seen_at FROM previous), r.last_written))
    WHERE r.organization_id = %(org)s AND r.account_id = %(account)s
      AND r.resource_type = %(type)s AND r.deleted_at IS NULL {region}
      AND NOT EXISTS (SELECT 1 FROM tagsense_seen s WHERE s.id = r.id)
    RETURNING r.id, r.arn, r.tags
), events AS (
    INSERT INTO inventory_tagevent (organization_id, resource_id, scan_id, seen_at, kind,
                                    changes, tags)
    SELECT %(org)s, id, %(scan)s, %(now)s, 'deleted', '[]'::jsonb, tags FROM gone
), edges AS (
    DELETE FROM inventory_edge e USING gone
    WHERE e.organization_id = %(org)s AND e.source_arn = gone.arn
)
SELECT count(*) FROM gone
"""

# COPY's text format: a backslash, tab, newline or carriage return in a value is escaped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str) -> bytes:
    if value.isprintable() and "\\" not in value:  # the usual case: nothing to escape
        return value.encode()
    return value.translate(_COPY_ESCAPES).encode()


def _json_field(value: bytes) -> bytes:
    # Canonical JSON holds no raw control characters; only its backslashes need escaping.
    return value.replace(b"\\", b"\\\\")


class PgUnitWriter(UnitWriter):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.expected_seen = 0
        self.ready = False

    def _cursor(self):
        """A psycopg cursor on Django's connection, inside its transaction: server-side
        parameter binding, so arrays travel as one parameter each."""
        connection.ensure_connection()
        return connection.connection.cursor()

    def _prepare(self, cursor) -> bool:
        """Create the session's tables if need be, empty them; False when done already."""
        if self.ready:
            return False
        # One round trip (a unit of a few resources costs its statements' round trips more than
        # their work: the demo's replayed history stores hundreds of such units).
        cursor.execute("; ".join([*_SETUP_SQL, "TRUNCATE tagsense_seen", _EMPTY_STAGES_SQL]))
        # A unit never scanned before (a new account, region or type) has nothing to compare
        # with: its pages skip classification and are all new.
        self.first_scan = not self._unit_rows().exists()
        self.ready = True
        return True

    def _unit_rows(self):
        rows = Resource.objects.filter(
            organization_id=self.organization_id,
            account=self.account,
            resource_type=self.resource_type,
        )
        return rows if self.region == GLOBAL else rows.filter(region=self.region)

    def write(self, records: Iterable[ResourceRecord], now: datetime) -> Counts:
        by_arn = {record.arn: record for record in records}  # a page may repeat an ARN
        counts = Counts(seen=len(by_arn))
        if not by_arn:
            return counts
        encoded = {arn: encode(record) for arn, record in by_arn.items()}
        params = {
            "org": self.organization_id,
            "account": self.account.pk,
            "scan": self.scan.pk if self.scan else None,
            "now": now,
        }
        with transaction.atomic():
            cursor = self._cursor()
            # Commit empties the stages; a page written inside an outer transaction (a test, a
            # caller's atomic block) would otherwise see the previous page's rows. (The first
            # page's are emptied with the tables' set-up.)
            if not self._prepare(cursor):
                cursor.execute(_EMPTY_STAGES_SQL)
            if self.first_scan:
                todo = [(arn, None, None, False) for arn in by_arn]
            else:
                with cursor.copy("COPY tagsense_stage_key (arn, fp) FROM STDIN") as copy:
                    copy.write(
                        b"".join(
                            b"%s\t%s\n" % (_text(arn), digest.encode())
                            for arn, (digest, _, _) in encoded.items()
                        )
                    )
                cursor.execute(_CLASSIFY_SQL, params)
                todo = cursor.fetchall()
            counts.unchanged = len(by_arn) - len(todo)
            self._write_rows(cursor, params, by_arn, encoded, todo, counts)
        self.expected_seen += len(by_arn)
        return counts

    def _write_rows(self, cursor, params, by_arn, encoded, todo, counts) -> None:
        if not todo:
            return
        with cursor.copy(
            "COPY tagsense_stage_resource (arn, region, resource_type, resource_id, name, tags,"
            " config, fp) FROM STDIN"
        ) as copy:
            lines = []
            for arn, _, _, _ in todo:
                record = by_arn[arn]
                digest, tags, config = encoded[arn]
                lines.append(
                    b"\t".join(
                        (
                            _text(arn),
                            _text(record.region),
                            _text(record.resource_type),
                            _text(record.resource_id),
                            _text(record.name),
                            _json_field(tags),
                            _json_field(config),
                            digest.encode(),
                        )
                    )
                )
            copy.write(b"\n".join(lines) + b"\n")
        cursor.execute(_UPSERT_SQL if self.first_scan else _WRITE_SQL, params)
        events: dict[str, list] = {"ids": [], "kinds": [], "changes": [], "tags": []}
        changed_arns = []
        for arn, pk, old_tags, was_deleted in todo:
            if pk is None:
                counts.new += 1
                continue
            counts.changed += 1
            changed_arns.append(arn)
            new_tags = by_arn[arn].tags
            if isinstance(old_tags, str):  # Django's connection loads jsonb as text
                old_tags = orjson.loads(old_tags)
            changes = diff_tags(old_tags or {}, new_tags)
            if not was_deleted and not changes:
                continue
            events["ids"].append(pk)
            events["kinds"].append(TagEvent.RESTORED if was_deleted else TagEvent.CHANGED)
            events["changes"].append(to_json(changes).decode())
            events["tags"].append(encoded[arn][1].decode())
        if events["ids"]:
            cursor.execute(_EVENTS_SQL, {**params, **events})
        if changed_arns:
            cursor.execute(
                "DELETE FROM inventory_edge WHERE organization_id = %s"
                " AND source_arn = ANY(%s::varchar[])",
                [self.organization_id, changed_arns],
            )
        edges = [
            b"%s\t%s\t%s" % (_text(arn), _text(rel.kind), _text(rel.target_arn))
            for arn, _, _, _ in todo
            for rel in by_arn[arn].relations
        ]
        if edges:
            with cursor.copy(
                "COPY tagsense_stage_edge (source_arn, kind, target_arn) FROM STDIN"
            ) as copy:
                copy.write(b"\n".join(edges) + b"\n")
            # Duplicates within the page are conflicts with themselves: DO NOTHING skips them.
            cursor.execute(
                "INSERT INTO inventory_edge (organization_id, source_arn, kind, target_arn)"
                " SELECT %s, source_arn, kind, target_arn FROM tagsense_stage_edge"
                " ON CONFLICT DO NOTHING",
                [self.organization_id],
            )

    def finish(self, now: datetime) -> int:
        with transaction.atomic():
            cursor = self._cursor()
            self._prepare(cursor)
            # In a unit's first scan every row of the unit was written by it: none is missing.
            deleted = 0 if self.first_scan else self._mark_missing(cursor, now)
            self._cover()
            # tagsense_seen is emptied when the session's next unit starts (_prepare).
        self.expected_seen = 0
        return deleted

    def _mark_missing(self, cursor, now: datetime) -> int:
        # One anti-join of the unit's live rows against what was seen: hashed, whatever the
        # statistics say (a nested loop over a first scan's unanalyzed rows is quadratic).
        # For this statement only: the settings are the transaction's, and a unit closed inside
        # a caller's transaction (a test, the demo's replayed day) would otherwise leave the
        # next units' classification without nested loops (a plan costed at 10^10, which JIT
        # then spent 0.3-0.7 s compiling, each). The count of what was recorded as seen comes
        # in the same round trip (a unit of a few resources costs its round trips, not work).
        cursor.execute(
            "SELECT (SELECT count(*) FROM tagsense_seen),"
            " current_setting('enable_nestloop'), current_setting('work_mem'),"
            " set_config('enable_nestloop', 'off', true), set_config('work_mem', '64MB', true)"
        )
        recorded, nestloop, work_mem, _, _ = cursor.fetchone()
        if recorded != self.expected_seen:
            # The database session changed mid-unit (the temporary table is per session):
            # without the full list of what was seen, nothing may be marked deleted. (The
            # settings above are undone with the writer's transaction or savepoint.)
            raise StorageError(
                f"the unit saw {self.expected_seen} resources but {recorded} are recorded;"
                " not marking any deleted"
            )
        params = {
            "org": self.organization_id,
            "account": self.account.pk,
            "type": self.resource_type,
            "region": self.region,
            "scan": self.scan.pk if self.scan else None,
            "now": now,
        }
        region = "" if self.region == GLOBAL else "AND r.region = %(region)s"
        cursor.execute(_MISSING_SQL.format(region=region), params)
        deleted = cursor.fetchone()[0]
        cursor.execute(
            "SELECT set_config('enable_nestloop', %s, true), set_config('work_mem', %s, true)",
            [nestloop, work_mem],
        )
        return deleted
