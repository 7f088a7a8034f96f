"""Evidence keys (generated on first use, encrypted at rest, rotated with the old one still
published, audited, never shown) and the audit log's keyless chain they rely on (computed by
record(), backfilled by the migration, checked by verify_chain, recomputed by the standalone
verifier from exported rows exactly as canonical() spells them)."""

import hashlib
import hmac
import importlib
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from django.db import connection

import audit
from accounts import audit_events as accounts_events
from audit.exports import exported, jsonl_line, write_chain_segment
from audit.models import (
    GENESIS_DIGEST,
    GENESIS_HASH,
    AuditEvent,
    canonical_bytes,
    canonical_payload_of,
    chain_digest,
    likely_canonical_bytes,
)
from audit.services import RangeCheck, last_verification, verify_chain
from audit.tasks import verify_organization_chain
from evidence import keys
from evidence import verify_package as standalone
from evidence.manifest import ManifestError, check_member_name
from evidence.models import EvidenceKey
from evidence.package import _chain_detail
from tagsense import crypto
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.audit.test_anchoring import _as_owner, _run_migration_step
from tests.conftest import client_for
from tests.evidence.package_kit import record_events

pytestmark = pytest.mark.django_db


def _chain(organization):
    with tenant_scope(organization):
        return list(AuditEvent.objects.order_by("seq"))


# --- the keyless chain ------------------------------------------------------------------------


def test_record_links_each_digest_to_the_one_before(org):
    record_events(org, 3)
    chain = _chain(org)
    assert chain[0].digest == chain_digest(GENESIS_DIGEST, chain[0].canonical())
    for previous, event in zip(chain, chain[1:], strict=False):
        assert event.digest == chain_digest(previous.digest, event.canonical())
    assert len({e.digest for e in chain}) == 3


def test_the_standalone_canonical_form_is_the_models_on_real_events(org, monkeypatch):
    record_events(org, 4)  # unicode, nulls, zoned and IPv4-mapped IPv6, nested data
    moments = (datetime(2026, 3, 1, 12, 0, 0, 0, UTC), datetime(2026, 3, 1, 0, 0, 0, 999999, UTC))
    for moment in moments:
        monkeypatch.setattr("audit.services.timezone.now", lambda moment=moment: moment)
        with tenant_scope(org):
            audit.record(accounts_events.TEAM_DELETE, data={"big": 10**20, "ü": "\u2028"})
    chain = _chain(org)
    assert chain[-2].created_at.microsecond == 0
    for event in chain:
        # Through JSON Lines, as the auditor reads them.
        row = json.loads(json.dumps(exported(event), sort_keys=True))
        assert standalone.canonical(row) == event.canonical(), event.seq
        assert standalone.chain_digest(GENESIS_DIGEST, b"x") == chain_digest(GENESIS_DIGEST, b"x")


def test_verify_chain_names_a_rewritten_digest(org):
    record_events(org, 3)
    chain = _chain(org)
    assert verify_chain(org.pk, store=None).intact
    _as_owner("UPDATE audit_auditevent SET digest = %s WHERE id = %s", ["0" * 64, chain[1].pk])
    with all_tenants():
        report = verify_chain(org.pk, store=None)
    assert not report.intact
    assert report.first_bad.seq == 2 and "keyless digest" in report.problem


def test_the_migration_backfills_the_digests_record_wrote(org, other_org):
    record_events(org, 5)
    record_events(other_org, 2)
    with all_tenants():
        audit.record(accounts_events.TEAM_CREATE, organization=None, data={"global": True})
        before = dict(AuditEvent.objects.values_list("pk", "digest"))
    _as_owner("UPDATE audit_auditevent SET digest = ''")
    with all_tenants():
        assert set(AuditEvent.objects.values_list("digest", flat=True)) == {""}
    migration = importlib.import_module("audit.migrations.0005_keyless_digest")
    _run_migration_step(migration.backfill)
    with all_tenants():
        assert dict(AuditEvent.objects.values_list("pk", "digest")) == before
        assert all(verify_chain(pk, store=None).intact for pk in (org.pk, other_org.pk, None))
    # The append-only trigger the backfill lifted is enabled again.
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_event_append_only'")
        assert cursor.fetchone() == ("O",)


def test_a_segment_of_a_period_without_events_carries_the_chain_on(org):
    record_events(org, 2)
    chain = _chain(org)
    later = chain[-1].created_at + timedelta(days=1)
    with tenant_scope(org):
        empty = write_chain_segment(io.BytesIO(), org.pk, later, later + timedelta(days=1))
        part = io.BytesIO()
        second = write_chain_segment(part, org.pk, chain[1].created_at, later)
    assert empty["events"] == 0 and empty["first_seq"] is None
    assert empty["prev_digest"] == empty["last_digest"] == chain[-1].digest
    assert second["events"] == 1 and second["first_seq"] == 2
    assert second["prev_digest"] == chain[0].digest and second["prev_hash"] == chain[0].hash
    assert [json.loads(line)["seq"] for line in part.getvalue().splitlines()] == [2]


# --- keys ------------------------------------------------------------------------------------


def test_a_key_is_created_once_on_first_use_encrypted_at_rest_and_audited(org):
    with tenant_scope(org):
        key = keys.active_key(org)
        assert keys.active_key(org).pk == key.pk
        signature, signer = keys.sign(org, b"manifest")
    assert signer.pk == key.pk
    public = serialization.load_pem_public_key(key.public_key.encode())
    public.verify(signature, b"manifest")  # raises if not
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert key.fingerprint == keys.fingerprint(raw) == standalone.fingerprint(raw)
    assert key.fingerprint.startswith("SHA256:") and "=" not in key.fingerprint
    with connection.cursor() as cursor, tenant_scope(org):
        cursor.execute("SELECT private_key FROM evidence_evidencekey WHERE id = %s", [key.pk])
        (stored,) = cursor.fetchone()
    assert "PRIVATE KEY" not in stored and "BEGIN" not in stored
    assert "BEGIN PRIVATE KEY" in crypto.decrypt(keys.ENCRYPTION_PURPOSE, stored)
    events = [e for e in _chain(org) if e.action.startswith("evidence.")]
    assert [(e.action, e.data["fingerprint"]) for e in events] == [
        ("evidence.key_create", key.fingerprint)
    ]
    assert "PRIVATE" not in json.dumps([e.data for e in events])


def test_rotation_retires_the_key_and_keeps_it_published(org):
    with tenant_scope(org):
        old = keys.active_key(org)
        new = keys.rotate(org)
        published = keys.published(org)
    assert [k.pk for k in published] == [new.pk, old.pk]
    assert published[1].retired_at is not None and published[0].retired_at is None
    rotation = _chain(org)[-1]
    assert rotation.action == "evidence.key_rotate"
    assert rotation.data == {"fingerprint": new.fingerprint, "retired": old.fingerprint}


def test_the_keys_page_pem_downloads_and_rotation(org, owner, auditor, viewer, other_org):
    with tenant_scope(org):
        first = keys.active_key(org)
    with tenant_scope(other_org):
        theirs = keys.active_key(other_org)
    page = client_for(auditor).get(f"/o/{org.slug}/evidence/keys/").content.decode()
    assert first.fingerprint in page and "Rotate" not in page
    assert theirs.fingerprint not in page and "PRIVATE" not in page
    settings_page = client_for(auditor).get(f"/o/{org.slug}/settings/").content.decode()
    assert f"/o/{org.slug}/evidence/keys/" in settings_page
    viewer_settings = client_for(viewer).get(f"/o/{org.slug}/settings/").content.decode()
    assert "/evidence/keys/" not in viewer_settings
    # Any member downloads a public key, by its own address or as the current one.
    viewer_client = client_for(viewer)
    token = keys.url_token(first.fingerprint)
    own = viewer_client.get(f"/o/{org.slug}/evidence/keys/{token}.pem")
    assert own.status_code == 200 and own.content.decode() == first.public_key
    current = viewer_client.get(f"/o/{org.slug}/evidence/key.pem")
    assert current.content.decode() == first.public_key
    owner_client = client_for(owner)
    assert "Rotate" in owner_client.get(f"/o/{org.slug}/evidence/keys/").content.decode()
    response = owner_client.post(f"/o/{org.slug}/evidence/keys/rotate/")
    assert response.status_code == 302
    with tenant_scope(org):
        second = keys.current(org)
    assert second.pk != first.pk
    # The retired key stays at its address; key.pem follows the active one.
    assert viewer_client.get(f"/o/{org.slug}/evidence/keys/{token}.pem").status_code == 200
    current = viewer_client.get(f"/o/{org.slug}/evidence/key.pem")
    assert current.content.decode() == second.public_key
    # Another organization's key, under our slug: 404.
    their_token = keys.url_token(theirs.fingerprint)
    assert owner_client.get(f"/o/{org.slug}/evidence/keys/{their_token}.pem").status_code == 404
    with all_tenants():
        assert not any(
            "PRIVATE" in v for v in EvidenceKey.objects.values_list("public_key", flat=True)
        )


@pytest.mark.parametrize(
    "name", ["../x", "/abs", "a//b", "./a", "a/../b", "C:\\x", "manifest.json", "", "a\nb"]
)
def test_the_builder_cannot_list_a_name_the_verifier_would_refuse(name):
    with pytest.raises(ManifestError):
        check_member_name(name)
    if name not in ("manifest.json",):
        assert standalone.unsafe_name(name)


def test_a_segment_is_written_as_the_model_exports_and_verified_to_the_head(org):
    """The segment's lines (values_list rows) are byte for byte the JSON Lines download's
    (exported() of model instances), and with verify=True every event from its first to the
    head is checked: an edited event after the period is found, not only one inside it."""
    record_events(org, 4)
    with tenant_scope(org):
        audit.record(accounts_events.TEAM_DELETE, data={"big": 10**20, "ü": "\u2028"})
    chain = _chain(org)
    with tenant_scope(org):
        out = io.BytesIO()
        segment = write_chain_segment(
            out, org.pk, chain[1].created_at, chain[2].created_at, verify=True
        )
    expected = (jsonl_line(exported(e)) for e in chain[1:3])
    assert out.getvalue() == "".join(expected).encode()
    checked = segment["verified"]
    assert checked.intact and (checked.first_seq, checked.last_seq) == (2, len(chain))
    _as_owner("UPDATE audit_auditevent SET target_repr = 'forged' WHERE id = %s", [chain[-1].pk])
    with tenant_scope(org):
        segment = write_chain_segment(
            io.BytesIO(), org.pk, chain[1].created_at, chain[2].created_at, verify=True
        )
    checked = segment["verified"]
    assert not checked.intact and checked.first_bad_seq == chain[-1].seq
    assert "keyed hash" in checked.problem


# Values orjson cannot spell (an integer beyond 64 bits) or must not write as they are in a
# line (non-ASCII, a line separator). audit.record keeps a float as its text, so no recorded
# number is spelt two ways; a row made otherwise is checked below.
AWKWARD_DATA = [
    {"big": 10**20, "n": 3},
    {"text": "ünï\u2028cödé 😀", "nested": {"b": [1.5, None], "a": -(2**70)}},
    {"plain": "ascii only", "ratio": 0.25},
]


def test_a_segment_of_awkward_values_verifies_and_reads_back_as_recorded(org):
    """Events whose values orjson cannot spell still verify (the standard spelling), every
    line is ASCII and parses back to the event as exported, and an edit is still found."""
    with tenant_scope(org):
        for data in AWKWARD_DATA:
            audit.record(accounts_events.TEAM_DELETE, data=data, target=("team", "1", "ü\n\u2028"))
    chain = _chain(org)
    with tenant_scope(org):
        out = io.BytesIO()
        segment = write_chain_segment(
            out, org.pk, chain[0].created_at, chain[-1].created_at, verify=True
        )
    assert segment["verified"].intact and segment["events"] == len(chain)
    lines = out.getvalue().split(b"\n")
    assert lines.pop() == b"" and all(line.isascii() for line in lines)
    assert [json.loads(line) for line in lines] == [exported(e) for e in chain]
    [big] = [e for e in chain if "big" in e.data]
    _as_owner(
        'UPDATE audit_auditevent SET data = \'{"big": 100000000000000000001, "n": 3}\' '
        "WHERE id = %s",
        [big.pk],
    )
    with tenant_scope(org):
        segment = write_chain_segment(
            io.BytesIO(), org.pk, chain[0].created_at, chain[-1].created_at, verify=True
        )
    checked = segment["verified"]
    assert not checked.intact and checked.first_bad_seq == big.seq
    assert "keyed hash" in checked.problem


def _signed_row(seq, prev_hash, prev_digest, data, key):
    """CHAIN_FIELDS values of an event whose hash and digest a holder of `key` made over
    canonical_bytes() (json's spelling), whatever its data holds."""
    row = [1, seq, "2026-03-02T09:00:00.000000+00:00", "user", "7", "ann", "team.delete"]
    row += ["team", "1", "t", data, None, "", "", prev_hash]
    canonical = canonical_bytes(canonical_payload_of(row))
    digest = chain_digest(prev_digest, canonical)
    return [*row, hmac.new(key, canonical, hashlib.sha256).hexdigest(), digest]


def test_the_check_takes_orjsons_spelling_only_when_the_keyed_hash_covers_it():
    """A float orjson spells otherwise (1e-7 against json's 1e-07), in an event a key holder
    hashed: intact through the standard spelling; the same event edited: found."""
    key = b"k" * 32
    first = _signed_row(1, GENESIS_HASH, GENESIS_DIGEST, {"small": 1e-07, "n": 3}, key)
    second = _signed_row(2, first[15], first[16], {"plain": "x"}, key)
    payload = canonical_payload_of(first)
    assert likely_canonical_bytes(payload) != canonical_bytes(payload)
    check = RangeCheck(0, GENESIS_HASH, GENESIS_DIGEST, key=key)
    for row in (first, second):
        check.feed(row, payload=canonical_payload_of(row))
    assert check.intact and check.events == 2

    edited = list(first)
    edited[10] = {"small": 2e-07, "n": 3}
    check = RangeCheck(0, GENESIS_HASH, GENESIS_DIGEST, key=key)
    check.feed(edited, payload=canonical_payload_of(edited))
    assert not check.intact and "keyed hash" in check.problem


def test_the_summary_says_which_events_the_package_verified(org):
    """The summary never claims the whole chain when it checked the period onwards: it names
    the range, what was left out, and the last whole-chain verification (nightly)."""
    record_events(org, 3)
    chain = _chain(org)
    with tenant_scope(org):
        segment = write_chain_segment(
            io.BytesIO(), org.pk, chain[1].created_at, chain[1].created_at, verify=True
        )
        detail = _chain_detail(segment["verified"], last_verification(org.pk))
    assert f"Events #2 to #{len(chain)}" in detail
    assert "Events #1 to #1 were not verified again" in detail
    assert "has not been verified yet" in detail
    with tenant_scope(org):
        verify_organization_chain.run()
        detail = _chain_detail(segment["verified"], last_verification(org.pk))
    assert "last verified at" in detail and f"intact, {len(chain)} events" in detail
