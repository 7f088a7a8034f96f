"""The keyless chain beside the keyed one: `digest` = SHA-256 of the previous event's digest (64
ASCII hex characters; 64 zeros before a chain's first event) followed by the event's canonical
bytes (docs/evidence.md). An auditor recomputes it from exported rows without the chain key.

Adds the column, then fills it for every existing event, chain by chain in seq order, with the
append-only trigger lifted for this transaction alone (as 0004 did). Rows are read through one
server-side cursor in (organization, seq) order, the order of the unique index, and written
back in set-based batches (one UPDATE ... FROM unnest() per BATCH rows), so a million events
migrate in seconds with flat memory. canonical() and the formula are frozen here as they were
when the column was added; a test checks they give what audit.record() gives.

Nothing is verified here: an event whose keyed hash no longer matches gets the digest of its
content as it stands, and verify_audit_chain still names it by its keyed hash. Run with the
web and workers stopped, like every audit migration: an event recorded by the previous release
during the migration would have no digest.
"""

import functools
import hashlib
import ipaddress
import json
from datetime import UTC

from django.db import migrations, models

GENESIS_DIGEST = "0" * 64
BATCH = 5000
COLUMNS = (
    "id, organization_id, seq, created_at, actor_kind, actor_id, actor_label, action, "
    "target_type, target_id, target_repr, data::text, host(ip_address), user_agent, "
    "request_id, prev_hash"
)


@functools.lru_cache(maxsize=4096)  # the same few addresses recur across a million events
def _normalise_ip(value):
    if not value:
        return None
    try:
        address = ipaddress.ip_address(str(value).split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


def canonical(row):
    """audit.models.AuditEvent.canonical() of one row as COLUMNS selects it."""
    (
        _,
        organization_id,
        seq,
        created_at,
        actor_kind,
        actor_id,
        actor_label,
        action,
        target_type,
        target_id,
        target_repr,
        data,
        ip_address,
        user_agent,
        request_id,
        prev_hash,
    ) = row
    payload = {
        "organization": organization_id,
        "seq": seq,
        "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": [actor_kind, actor_id, actor_label],
        "action": action,
        "target": [target_type, target_id, target_repr],
        "data": json.loads(data),
        "ip_address": _normalise_ip(ip_address),
        "user_agent": user_agent,
        "request_id": request_id,
        "prev_hash": prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(prev_digest, canonical_bytes):
    return hashlib.sha256(prev_digest.encode("ascii") + canonical_bytes).hexdigest()


def _write(cursor, ids, digests):
    cursor.execute(
        "UPDATE audit_auditevent AS e SET digest = v.digest "
        "FROM unnest(%s::bigint[], %s::varchar[]) AS v(id, digest) WHERE e.id = v.id",
        [ids, digests],
    )


def backfill(apps, schema_editor):
    connection = schema_editor.connection
    schema_editor.execute(
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only", params=None
    )
    chain, prev_digest = object(), GENESIS_DIGEST
    ids, digests = [], []
    with connection.chunked_cursor() as reader, connection.cursor() as writer:
        reader.execute(
            f"SELECT {COLUMNS} FROM audit_auditevent ORDER BY organization_id, seq"  # noqa: S608 - constants
        )
        while rows := reader.fetchmany(BATCH):
            for row in rows:
                if row[1] != chain:  # a new chain starts
                    chain, prev_digest = row[1], GENESIS_DIGEST
                prev_digest = digest(prev_digest, canonical(row))
                ids.append(row[0])
                digests.append(prev_digest)
            if len(ids) >= BATCH:
                _write(writer, ids, digests)
                ids, digests = [], []
        if ids:
            _write(writer, ids, digests)
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE", params=None)
    schema_editor.execute(
        "ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only", params=None
    )


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_keyed_chain")]
    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="digest",
            field=models.CharField(default="", max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
