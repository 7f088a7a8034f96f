"""Re-key every audit chain: from SHA-256 to HMAC-SHA256 under AUDIT_CHAIN_KEY.

Runs inside `migrate`, as the table owner. It first checks every existing chain under the old,
unkeyed hash and refuses (the migration fails, nothing changes) if any is broken: re-keying a
broken chain would launder the break into a chain that verifies. Only then does it rewrite
`prev_hash` and `hash` of every event, with the append-only trigger lifted for this
transaction alone. There is no "v1 rows stay unkeyed" fallback: a forger would write v1 rows.

The canonical form below is frozen here as it was when the chain was unkeyed; the key is read
the way the application reads it (audit.models.chain_key), so both agree.
"""

import hashlib
import hmac
import ipaddress
import json

from django.db import migrations

from audit.models import chain_key

GENESIS_HASH = "0" * 64
BATCH = 1000


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


def _canonical(event, prev_hash):
    payload = {
        "organization": event.organization_id,
        "seq": event.seq,
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "actor": [event.actor_kind, event.actor_id, event.actor_label],
        "action": event.action,
        "target": [event.target_type, event.target_id, event.target_repr],
        "data": event.data,
        "ip_address": _normalise_ip(event.ip_address),
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "prev_hash": prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def unkeyed(event, prev_hash):
    return hashlib.sha256(_canonical(event, prev_hash)).hexdigest()


def keyed(event, prev_hash):

    return hmac.new(chain_key(), _canonical(event, prev_hash), hashlib.sha256).hexdigest()


def _chains(AuditEvent):
    return sorted(
        set(AuditEvent.objects.values_list("organization_id", flat=True)),
        key=lambda pk: (pk is not None, pk or 0),
    )


def _events(AuditEvent, organization_id):
    if organization_id is None:
        events = AuditEvent.objects.filter(organization__isnull=True)
    else:
        events = AuditEvent.objects.filter(organization_id=organization_id)
    return events.order_by("seq").iterator(chunk_size=BATCH)


def check(AuditEvent, hash_of):
    """Raise naming the first broken event of any chain under `hash_of`."""
    for organization_id in _chains(AuditEvent):
        expected_seq, prev_hash = 1, GENESIS_HASH
        for event in _events(AuditEvent, organization_id):
            if (
                event.seq != expected_seq
                or event.prev_hash != prev_hash
                or hash_of(event, event.prev_hash) != event.hash
            ):
                raise RuntimeError(
                    f"REFUSING TO RE-KEY THE AUDIT LOG: the chain of organization "
                    f"{organization_id or '(global)'} is broken at event id={event.pk} "
                    f"#{event.seq} ({event.action}). Investigate with verify_audit_chain on the "
                    "previous release; nothing was changed."
                )
            expected_seq, prev_hash = event.seq + 1, event.hash


def rewrite(AuditEvent, hash_of):
    for organization_id in _chains(AuditEvent):
        prev_hash, batch = GENESIS_HASH, []
        for event in _events(AuditEvent, organization_id):
            event.prev_hash = prev_hash
            event.hash = prev_hash = hash_of(event, prev_hash)
            batch.append(event)
            if len(batch) == BATCH:
                AuditEvent.objects.bulk_update(batch, ["prev_hash", "hash"])
                batch = []
        if batch:
            AuditEvent.objects.bulk_update(batch, ["prev_hash", "hash"])


def _lift_trigger(schema_editor):
    schema_editor.execute(
        "ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only", params=None
    )


def _restore_trigger(schema_editor):
    schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE", params=None)
    schema_editor.execute(
        "ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only", params=None
    )


def rekey(apps, schema_editor, verify_with=unkeyed, write_with=keyed):
    AuditEvent = apps.get_model("audit", "AuditEvent")
    check(AuditEvent, verify_with)
    _lift_trigger(schema_editor)
    rewrite(AuditEvent, write_with)
    _restore_trigger(schema_editor)
    check(AuditEvent, write_with)


def unkey(apps, schema_editor):
    rekey(apps, schema_editor, verify_with=keyed, write_with=unkeyed)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_nightly_verification")]
    operations = [migrations.RunPython(rekey, unkey)]
