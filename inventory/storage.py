"""Writing scan results: batched, never one query per resource, and unchanged resources cost
one shared UPDATE of last_seen. Callers run inside the organization's tenant scope."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from .models import AwsAccount, Edge, Resource, ScanRun, TagEvent
from .scanners.base import ResourceRecord


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


def encode(record: ResourceRecord) -> tuple[str, str, str]:
    """(fingerprint, tags as JSON, config as JSON): each encoded once, the JSON reused for the
    database and for the fingerprint of name, region, tags, config and relations."""
    tags = json.dumps(record.tags, sort_keys=True, separators=(",", ":"), default=str)
    config = json.dumps(record.config, sort_keys=True, separators=(",", ":"), default=str)
    relations = "\x1e".join(sorted(f"{r.kind}\x1d{r.target_arn}" for r in record.relations))
    digest = hashlib.sha1(  # noqa: S324 - a change detector, not a security hash
        "\x1f".join((record.name, record.region, tags, config, relations)).encode()
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


BATCH = 1000


@transaction.atomic
def upsert_page(
    *,
    account: AwsAccount,
    records: Iterable[ResourceRecord],
    scan: ScanRun | None,
    now: datetime,
) -> tuple[Counts, list[str]]:
    """Store one page of scan results. Returns the counts and the ARNs seen."""
    organization = account.organization
    by_arn = {record.arn: record for record in records}  # a page may repeat an ARN
    counts = Counts(seen=len(by_arn))
    existing = {
        row.arn: row
        for row in Resource.objects.filter(organization=organization, arn__in=list(by_arn)).only(
            "id", "arn", "fingerprint", "tags", "deleted_at", "account_id"
        )
    }
    new: list[Resource] = []
    changed: list[Resource] = []
    unchanged_ids: list[int] = []
    events: list[TagEvent] = []
    relinked: list[str] = []
    for arn, record in by_arn.items():
        digest = fingerprint(record)
        row = existing.get(arn)
        if row is None:
            new.append(
                Resource(
                    organization=organization,
                    account=account,
                    arn=arn,
                    region=record.region,
                    resource_type=record.resource_type,
                    resource_id=record.resource_id,
                    name=record.name,
                    tags=record.tags,
                    config=record.config,
                    fingerprint=digest,
                    first_seen=now,
                    last_seen=now,
                )
            )
            relinked.append(arn)
            continue
        if row.fingerprint == digest and row.deleted_at is None:
            unchanged_ids.append(row.pk)
            continue
        tag_changes = diff_tags(row.tags, record.tags)
        if row.deleted_at is not None:
            events.append(_event(row, scan, now, TagEvent.RESTORED, tag_changes, record.tags))
        elif tag_changes:
            events.append(_event(row, scan, now, TagEvent.CHANGED, tag_changes, record.tags))
        row.account = account
        row.region = record.region
        row.resource_type = record.resource_type
        row.resource_id = record.resource_id
        row.name = record.name
        row.tags = record.tags
        row.config = record.config
        row.fingerprint = digest
        row.last_seen = now
        row.deleted_at = None
        changed.append(row)
        relinked.append(arn)
    if new:
        Resource.objects.bulk_create(new, batch_size=BATCH)
        events.extend(_event(row, scan, now, TagEvent.DISCOVERED, [], row.tags) for row in new)
    if changed:
        Resource.objects.bulk_update(
            changed,
            [
                "account",
                "region",
                "resource_type",
                "resource_id",
                "name",
                "tags",
                "config",
                "fingerprint",
                "last_seen",
                "deleted_at",
            ],
            batch_size=BATCH,
        )
    if unchanged_ids:
        Resource.objects.filter(pk__in=unchanged_ids).update(last_seen=now)
    if events:
        TagEvent.objects.bulk_create(events, batch_size=BATCH)
    if relinked:
        _replace_edges(organization, [by_arn[arn] for arn in relinked])
    counts.new, counts.changed, counts.unchanged = len(new), len(changed), len(unchanged_ids)
    return counts, list(by_arn)


def _event(row, scan, now, kind, changes, tags) -> TagEvent:
    return TagEvent(
        organization_id=row.organization_id,
        resource=row,
        scan=scan,
        seen_at=now,
        kind=kind,
        changes=changes,
        tags=tags,
    )


def _replace_edges(organization, records: list[ResourceRecord]) -> None:
    Edge.objects.filter(organization=organization, source_arn__in=[r.arn for r in records]).delete()
    Edge.objects.bulk_create(
        [
            Edge(
                organization=organization,
                source_arn=r.arn,
                target_arn=rel.target_arn,
                kind=rel.kind,
            )
            for r in records
            for rel in r.relations
        ],
        batch_size=BATCH,
        ignore_conflicts=True,
    )


@transaction.atomic
def mark_missing_deleted(
    *,
    account: AwsAccount,
    resource_type: str,
    region: str | None,
    since: datetime,
    scan: ScanRun | None,
    now: datetime,
) -> int:
    """Resources of a unit that a successful scan did not see: marked deleted, never dropped.

    Every resource a page stores gets last_seen = that page's time, so "not seen by this unit"
    is "live and last seen before the unit started" (`since`): one UPDATE, and no set of the
    unit's ARNs in memory. `region` None means every region (global listings such as S3).
    """
    live = Resource.objects.filter(
        organization=account.organization,
        account=account,
        resource_type=resource_type,
        deleted_at__isnull=True,
        last_seen__lt=since,
    )
    if region is not None:
        live = live.filter(region=region)
    gone = list(live.values_list("pk", "arn", "tags"))
    if not gone:
        return 0
    ids = [pk for pk, _, _ in gone]
    for start in range(0, len(ids), BATCH):
        Resource.objects.filter(pk__in=ids[start : start + BATCH]).update(deleted_at=now)
    TagEvent.objects.bulk_create(
        [
            TagEvent(
                organization=account.organization,
                resource_id=pk,
                scan=scan,
                seen_at=now,
                kind=TagEvent.DELETED,
                changes=[],
                tags=tags,
            )
            for pk, _, tags in gone
        ],
        batch_size=BATCH,
    )
    arns = [arn for _, arn, _ in gone]
    for start in range(0, len(arns), BATCH):
        Edge.objects.filter(
            organization=account.organization, source_arn__in=arns[start : start + BATCH]
        ).delete()
    return len(gone)


# --- PostgreSQL fast path -----------------------------------------------------------------------
# The same semantics as upsert_page, in set-based SQL: the page is COPYed into a temporary
# staging table, classified against the stored fingerprints in one join, and written with one
# INSERT ... ON CONFLICT for new and changed rows and one UPDATE of last_seen for the rest.

_STAGE_DDL = """
CREATE TEMPORARY TABLE IF NOT EXISTS tagsense_stage_resource (
    arn varchar(2048) PRIMARY KEY,
    region varchar(32), resource_type varchar(64), resource_id varchar(1024),
    name varchar(1024), tags jsonb, config jsonb, fingerprint varchar(40)
) ON COMMIT DELETE ROWS
"""

_CHANGED_SQL = """
SELECT r.id, r.arn, r.tags, r.deleted_at IS NOT NULL
FROM tagsense_stage_resource s
JOIN inventory_resource r ON r.organization_id = %(org)s AND r.arn = s.arn
WHERE r.fingerprint <> s.fingerprint OR r.deleted_at IS NOT NULL
"""

_UPSERT_SQL = """
INSERT INTO inventory_resource AS r (
    organization_id, account_id, arn, region, resource_type, resource_id, name, tags, config,
    fingerprint, first_seen, last_seen, deleted_at)
SELECT %(org)s, %(account)s, s.arn, s.region, s.resource_type, s.resource_id, s.name, s.tags,
       s.config, s.fingerprint, %(now)s, %(now)s, NULL
FROM tagsense_stage_resource s
ON CONFLICT (organization_id, arn) DO UPDATE SET
    account_id = EXCLUDED.account_id, region = EXCLUDED.region,
    resource_type = EXCLUDED.resource_type, resource_id = EXCLUDED.resource_id,
    name = EXCLUDED.name, tags = EXCLUDED.tags, config = EXCLUDED.config,
    fingerprint = EXCLUDED.fingerprint, last_seen = EXCLUDED.last_seen, deleted_at = NULL
WHERE r.fingerprint <> EXCLUDED.fingerprint OR r.deleted_at IS NOT NULL
RETURNING r.id, r.arn, (xmax = 0) AS inserted
"""

_TOUCH_SQL = """
UPDATE inventory_resource r SET last_seen = %(now)s
FROM tagsense_stage_resource s
WHERE r.organization_id = %(org)s AND r.arn = s.arn AND r.fingerprint = s.fingerprint
  AND r.deleted_at IS NULL AND r.last_seen < %(now)s
"""


_STAGE_EVENT_DDL = """
CREATE TEMPORARY TABLE IF NOT EXISTS tagsense_stage_event (
    resource_id bigint, kind varchar(16), changes jsonb, tags jsonb
) ON COMMIT DELETE ROWS
"""
_STAGE_EDGE_DDL = """
CREATE TEMPORARY TABLE IF NOT EXISTS tagsense_stage_edge (
    source_arn varchar(2048), kind varchar(48), target_arn varchar(2048)
) ON COMMIT DELETE ROWS
"""


def _copy_events(cursor, organization_id: int, scan_id, now, rows) -> None:
    """TagEvents through a staging table (COPY into a row-level-security table is refused)."""
    cursor.execute(_STAGE_EVENT_DDL)
    cursor.execute("TRUNCATE tagsense_stage_event")
    with cursor.copy(
        "COPY tagsense_stage_event (resource_id, kind, changes, tags) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)
    cursor.execute(
        "INSERT INTO inventory_tagevent (organization_id, resource_id, scan_id, seen_at, kind,"
        " changes, tags) SELECT %s, resource_id, %s, %s, kind, changes, tags"
        " FROM tagsense_stage_event",
        [organization_id, scan_id, now],
    )


def _copy_edges(cursor, organization_id: int, records: list[ResourceRecord]) -> None:
    """Replace the outgoing edges of these resources: one DELETE, one COPY, one INSERT."""
    cursor.execute(
        "DELETE FROM inventory_edge WHERE organization_id = %s AND source_arn = ANY(%s)",
        [organization_id, [r.arn for r in records]],
    )
    if not any(r.relations for r in records):
        return
    cursor.execute(_STAGE_EDGE_DDL)
    cursor.execute("TRUNCATE tagsense_stage_edge")
    with cursor.copy("COPY tagsense_stage_edge (source_arn, kind, target_arn) FROM STDIN") as copy:
        for record in records:
            for relation in record.relations:
                copy.write_row((record.arn, relation.kind, relation.target_arn))
    cursor.execute(
        "INSERT INTO inventory_edge (organization_id, source_arn, kind, target_arn)"
        " SELECT DISTINCT %s, source_arn, kind, target_arn FROM tagsense_stage_edge"
        " ON CONFLICT DO NOTHING",
        [organization_id],
    )


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


@transaction.atomic
def upsert_page_pg(
    *,
    account: AwsAccount,
    records: Iterable[ResourceRecord],
    scan: ScanRun | None,
    now: datetime,
) -> tuple[Counts, list[str]]:
    from django.db import connection

    organization_id = account.organization_id
    by_arn = {record.arn: record for record in records}
    counts = Counts(seen=len(by_arn))
    if not by_arn:
        return counts, []
    params = {"org": organization_id, "account": account.pk, "now": now}
    with connection.cursor() as cursor:
        # Every statement below looks rows up by (organization, ARN). Once a staging table has
        # statistics the planner prefers a hash join over a sequential scan of the whole
        # inventory (400 ms for 5,000 rows against 1M, instead of 25 ms through the index).
        cursor.execute("SET LOCAL enable_hashjoin = off")
        cursor.execute("SET LOCAL enable_mergejoin = off")
        cursor.execute(_STAGE_DDL)
        # ON COMMIT empties it, but a page written inside an outer transaction sees the last one.
        cursor.execute("TRUNCATE tagsense_stage_resource")
        with cursor.copy(
            "COPY tagsense_stage_resource (arn, region, resource_type, resource_id, name, tags,"
            " config, fingerprint) FROM STDIN"
        ) as copy:
            for record in by_arn.values():
                digest, tags, config = encode(record)
                copy.write_row(
                    (
                        record.arn,
                        record.region,
                        record.resource_type,
                        record.resource_id,
                        record.name,
                        tags,
                        config,
                        digest,
                    )
                )
        cursor.execute(_CHANGED_SQL, params)
        # Django's connection hands jsonb back as text.
        before = {
            arn: (pk, json.loads(tags) if isinstance(tags, str) else tags, was_deleted)
            for pk, arn, tags, was_deleted in cursor.fetchall()
        }
        cursor.execute(_UPSERT_SQL, params)
        written = cursor.fetchall()
        cursor.execute(_TOUCH_SQL, params)
        counts.unchanged = cursor.rowcount
        events: list[tuple] = []
        relinked: list[ResourceRecord] = []
        for pk, arn, inserted in written:
            record = by_arn[arn]
            relinked.append(record)
            if inserted:
                counts.new += 1
                kind, changes = TagEvent.DISCOVERED, []
            else:
                counts.changed += 1
                _, old_tags, was_deleted = before[arn]
                changes = diff_tags(old_tags, record.tags)
                if was_deleted:
                    kind = TagEvent.RESTORED
                elif changes:
                    kind = TagEvent.CHANGED
                else:
                    continue
            events.append((pk, kind, _json(changes), _json(record.tags)))
        if events:
            _copy_events(cursor, organization_id, scan.pk if scan else None, now, events)
        if relinked:
            _copy_edges(cursor, organization_id, relinked)
    return counts, list(by_arn)


def store_page(**kwargs) -> tuple[Counts, list[str]]:
    """The storage path for this database: set-based SQL on PostgreSQL, the ORM elsewhere."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return upsert_page_pg(**kwargs)
    return upsert_page(**kwargs)
