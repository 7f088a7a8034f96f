"""Every download of the portal's data (CSV, YAML, JSON) goes through here: it is audited as
`export.download`, in the caller's transaction, with what was exported.

The event's data: `kind` (what: "inventory.resources", "policies.findings", ...), `format`,
`filters` (the query the caller gave, each value cut to 200 characters, control characters
removed) and `rows` (how many records the file holds; for a streamed CSV, how many the filters
matched when the download began). CSV files are written by tagsense.csvexport, which
neutralises cells a spreadsheet would run as formulas.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from django.db import connection, transaction
from django.http import HttpResponse, StreamingHttpResponse

from tagsense.csvexport import csv_lines

from . import services
from .audit_events import EXPORT_DOWNLOAD
from .models import (
    CHAIN_FIELDS,
    GENESIS_DIGEST,
    GENESIS_HASH,
    AuditEvent,
    canonical_payload_of,
)

if TYPE_CHECKING:
    from _typeshed import SupportsWrite  # a binary file or anything with write(bytes)

IGNORED_PARAMETERS = ("format", "page", "page_size", "cursor")
MAX_FILTER_LENGTH = 200


# One event as every download carries it (the audit page's CSV and JSON Lines, an evidence
# package's audit-log.jsonl): every field its hash covers (AuditEvent.canonical_payload(), which
# holds the actor and the target as lists, here flattened), spelt as canonical() spells them, so
# a holder of the chain key recomputes each hash from a row and anyone recomputes each digest
# (docs/evidence.md); and anyone can check that each event's prev_hash is the hash of the event
# before it (seq - 1) in an unfiltered download.
# The chain's fields (audit.models.CHAIN_FIELDS), the organization named as canonical() names it.
EXPORT_COLUMNS = ("organization", *CHAIN_FIELDS[1:])
# How much of a chain one query reads while a segment is written (memory stays flat).
SEGMENT_CHUNK = 2000


def exported(event: AuditEvent) -> dict[str, Any]:
    """One event as a download's row, its keys EXPORT_COLUMNS in that order."""
    return exported_row(event.chain_values())


def exported_row(values: Sequence[Any], covered: dict[str, Any] | None = None) -> dict[str, Any]:
    """exported() from an event's CHAIN_FIELDS values (a values_list() row); `covered` is
    canonical_payload_of(values) when the caller has it already (it is consumed)."""
    covered = canonical_payload_of(values) if covered is None else covered
    actor_kind, actor_id, actor_label = covered.pop("actor")
    target_type, target_id, target_repr = covered.pop("target")
    row = {
        **covered,
        "actor_kind": actor_kind,
        "actor_id": actor_id,
        "actor_label": actor_label,
        "target_type": target_type,
        "target_id": target_id,
        "target_repr": target_repr,
        "hash": values[15],
        "digest": values[16],
    }
    return {column: row[column] for column in EXPORT_COLUMNS}


# The standard encoder, for a record orjson cannot write as ASCII.
_LINE_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def jsonl_bytes(record: Mapping[str, Any]) -> bytes:
    """One JSON Lines record, UTF-8: compact, keys sorted, non-ASCII escaped, so a newline or
    a line separator inside a value never starts a line. orjson writes it (an evidence
    package's audit log is a million lines; json's encoder took 7 us a line), or, when that is
    not ASCII or not possible (an integer beyond 64 bits), the standard encoder, which
    escapes."""
    try:
        line = orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        line = b""
    return line if line and line.isascii() else (_LINE_ENCODER.encode(record) + "\n").encode()


def jsonl_line(record: Mapping[str, Any]) -> str:
    """jsonl_bytes() as text."""
    return jsonl_bytes(record).decode()


def _clean(value: Any) -> str:
    text = "".join(c for c in str(value) if c.isprintable() or c == " ")
    return text[:MAX_FILTER_LENGTH]


def describe_filters(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The filters of a request's query string, as the audit log keeps them."""
    if not params:
        return {}
    getlist = getattr(params, "getlist", None)
    described: dict[str, Any] = {}
    for name in sorted(params.keys()):
        if name in IGNORED_PARAMETERS:
            continue
        values = getlist(name) if getlist else [params[name]]
        cleaned = [_clean(v) for v in values][:20]
        described[_clean(name)] = cleaned[0] if len(cleaned) == 1 else cleaned
    return described


def record_export(
    kind: str, *, file_format: str, rows: int, filters: Mapping[str, Any] | None = None
) -> None:
    """Audit one export (the caller is inside its tenant transaction: the view's, the API's)."""
    services.record(
        EXPORT_DOWNLOAD,
        data={
            "kind": kind,
            "format": file_format,
            "filters": describe_filters(filters),
            "rows": rows,
        },
    )


def download(
    kind: str,
    *,
    content: str | bytes,
    content_type: str,
    filename: str,
    rows: int,
    filters: Mapping[str, Any] | None = None,
) -> HttpResponse:
    """A file (YAML, JSON, ...) as an attachment, audited."""
    record_export(kind, file_format=filename.rsplit(".", 1)[-1], rows=rows, filters=filters)
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def csv_download(
    kind: str,
    *,
    header: Iterable[str],
    rows: Iterable[Iterable[Any]],
    count: int,
    filename: str,
    filters: Mapping[str, Any] | None = None,
) -> StreamingHttpResponse:
    """A CSV attachment written by tagsense.csvexport, audited. `rows` may be lazy (it is
    read as the response streams: the caller reopens its tenant scope inside it); `count`
    is how many rows it will hold."""
    record_export(kind, file_format="csv", rows=count, filters=filters)
    response = StreamingHttpResponse(csv_lines(header, rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def jsonl_download(
    kind: str,
    *,
    records: Iterable[Mapping[str, Any]],
    count: int,
    filename: str,
    filters: Mapping[str, Any] | None = None,
) -> StreamingHttpResponse:
    """A JSON Lines attachment (one JSON object a line; a newline inside a value is escaped,
    so it never starts a line), audited. `records` may be lazy, as csv_download's rows."""
    record_export(kind, file_format="jsonl", rows=count, filters=filters)
    lines = (jsonl_line(record) for record in records)
    response = StreamingHttpResponse(lines, content_type="application/jsonl")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def chain_head(organization_id: int | None) -> dict[str, Any]:
    """The chain's last event as an evidence manifest records it: {"seq", "hash", "digest"}
    (seq 0 and the genesis values for a chain with no event). Needs the organization's tenant
    scope (or all_tenants()); read in the same transaction as the segment for one snapshot."""
    head = (
        AuditEvent.objects.chain(organization_id)
        .order_by("-seq")
        .values_list("seq", "hash", "digest")
        .first()
    )
    seq, hash_, digest = head or (0, GENESIS_HASH, GENESIS_DIGEST)
    return {"seq": seq, "hash": hash_, "digest": digest}


# The chain's fields as a segment reads them: what Django's converters would make of them done
# by PostgreSQL or by one json.loads (a million events spent a third of their time in the
# converters): the time as canonical_payload_of() spells it, the data as its JSON text.
_SEGMENT_COLUMNS = {
    "created_at": (
        "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
    ),
    "data": "data::text",
    "ip_address": "host(ip_address)",
}
_DATA = CHAIN_FIELDS.index("data")


def _segment_rows(organization_id: int | None, first: int, last: int) -> Iterator[list[Any]]:
    """The chain's events first..last (seq) as CHAIN_FIELDS values, the time as its text.
    Streamed by a server-side cursor, SEGMENT_CHUNK at a time."""
    columns = ", ".join(_SEGMENT_COLUMNS.get(name, name) for name in CHAIN_FIELDS)
    owner = "organization_id IS NULL" if organization_id is None else "organization_id = %s"
    params = [] if organization_id is None else [organization_id]
    sql = (
        f"SELECT {columns} FROM {AuditEvent._meta.db_table} "  # noqa: S608 - fixed names
        f"WHERE {owner} AND seq BETWEEN %s AND %s ORDER BY seq"
    )
    loads = json.loads
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, [*params, first, last])
        while rows := cursor.fetchmany(SEGMENT_CHUNK):
            for row in rows:
                values = list(row)
                values[_DATA] = loads(values[_DATA])
                yield values


def write_chain_segment(
    fp: SupportsWrite[bytes],
    organization_id: int | None,
    start: datetime,
    end: datetime,
    *,
    verify: bool = False,
) -> dict[str, Any]:
    """Write the chain's events of the period [start, end] to the binary file `fp` as JSON Lines
    (exported() rows, oldest first) and return what an evidence manifest records of the segment:

        {"events", "first_seq", "last_seq", "prev_hash", "prev_digest", "last_hash",
         "last_digest"}

    The segment is contiguous: every event from the first recorded at or after `start` to the
    last recorded at or before `end`, by seq, so its links can be followed from `prev_hash` /
    `prev_digest` (the event before the first's, or the genesis values) to `last_hash` /
    `last_digest`. A period with no event gives events 0, first_seq and last_seq None, and the
    previous event's values as both ends. Streamed: a chunked cursor of values_list() rows
    (no model instances), memory flat at a million events. Needs the organization's tenant
    scope (or all_tenants()); not audited (the caller audits the package it is part of).

    With `verify`, the result also holds "verified": an audit.services.RangeCheck of every
    event from the segment's first to the chain's head as read just after the segment (each
    one's position, links, keyed hash and keyless digest, from the event before the segment),
    the segment's checked in the same pass that writes it."""
    chain = AuditEvent.objects.chain(organization_id)
    # Each bound walks the chain's (organization, seq) index from its end until the first event
    # in the period: an aggregate over the whole chain read a million rows for two numbers.
    seqs = chain.values_list("seq", flat=True)
    first_seq = seqs.filter(created_at__gte=start).order_by("seq").first()
    last_seq = seqs.filter(created_at__lte=end).order_by("-seq").first()
    # The event before the segment: the one before its first, or (no event since `start`) the
    # chain's last.
    before = chain.filter(seq__lt=first_seq) if first_seq is not None else chain
    previous = before.order_by("-seq").values_list("seq", "hash", "digest").first()
    prev_seq, prev_hash, prev_digest = previous or (0, GENESIS_HASH, GENESIS_DIGEST)
    check = services.RangeCheck(prev_seq, prev_hash, prev_digest) if verify else None
    verified = {"verified": check} if check is not None else {}
    if first_seq is None or last_seq is None or first_seq > last_seq:
        if check is not None:
            check.to_head(organization_id)
        return {
            **verified,
            "events": 0,
            "first_seq": None,
            "last_seq": None,
            "prev_hash": prev_hash,
            "prev_digest": prev_digest,
            "last_hash": prev_hash,
            "last_digest": prev_digest,
        }
    count, last_hash, last_digest = 0, prev_hash, prev_digest
    for values in _segment_rows(organization_id, first_seq, last_seq):
        covered = canonical_payload_of(values)
        if check is not None:
            check.feed(values, payload=covered)
        fp.write(jsonl_bytes(exported_row(values, covered)))
        count, last_hash, last_digest = count + 1, values[15], values[16]
    if check is not None:
        check.to_head(organization_id)
    return {
        **verified,
        "events": count,
        "first_seq": first_seq,
        "last_seq": last_seq,
        "prev_hash": prev_hash,
        "prev_digest": prev_digest,
        "last_hash": last_hash,
        "last_digest": last_digest,
    }
