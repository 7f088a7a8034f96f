"""The audit chain is keyed and anchored: a writer with database access alone cannot append an
event that verifies, and a rewritten or truncated history is caught against write-once anchors
in S3 Object Lock (moto)."""

import hashlib
import importlib
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from django.apps import apps as django_apps
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

import audit
from accounts import audit_events as accounts_events
from audit.models import AuditEvent
from audit.tasks import anchor_all_chains
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for

pytestmark = pytest.mark.django_db
BUCKET = "tagsense-audit-anchors"
PREFIX = "anchors/"


def _events(org, n, label="team"):
    with tenant_scope(org):
        return [
            audit.record(accounts_events.TEAM_CREATE, data={"name": f"{label} {i}"})
            for i in range(n)
        ]


def _verify(capsys, *args):
    try:
        call_command("verify_audit_chain", *args)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    out = capsys.readouterr()
    return code, out.out, out.err


def _as_owner(sql, params=None):
    """SQL as the table owner with triggers off: the database owner, or a superuser."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET LOCAL ROLE NONE")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute(f"SET LOCAL ROLE {connection.settings_dict['OPTIONS']['assume_role']}")


def _chain(org):
    with tenant_scope(org):
        return list(AuditEvent.objects.order_by("seq"))


@pytest.fixture
def anchor_store(aws_env, settings):
    """A bucket with Object Lock, configured as the deployment's anchor store, reached through
    an assumed role as in production."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    settings.AUDIT_ANCHOR_BUCKET = BUCKET
    settings.AUDIT_ANCHOR_PREFIX = PREFIX
    settings.AUDIT_ANCHOR_REGION = "us-east-1"
    settings.AUDIT_ANCHOR_ROLE_ARN = "arn:aws:iam::123456789012:role/tagsense-audit-anchor"
    return s3


def _anchors(s3):
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix=PREFIX).get("Versions", [])
    return sorted(versions, key=lambda v: v["Key"])


# --- the key ----------------------------------------------------------------------------------


def test_an_event_inserted_by_the_app_role_with_a_correct_unkeyed_hash_is_named(org, capsys):
    """SQL injection as the runtime role: it may INSERT into the audit table (it must, to
    record), and it can compute SHA-256 over the canonical form as well as the app can: the
    keyless digest it writes is right, only the keyed hash gives it away."""
    _events(org, 3)
    head = _chain(org)[-1]
    forged = AuditEvent(
        organization=org,
        seq=head.seq + 1,
        created_at=timezone.now(),
        actor_kind="user",
        actor_id="1",
        actor_label="owner@acme.example",
        action="org.member_remove",
        data={"email": "auditor@acme.example"},
        prev_hash=head.hash,
    )
    forged.hash = hashlib.sha256(forged.canonical()).hexdigest()
    forged.digest = forged.compute_digest(head.digest)
    with tenant_scope(org), connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (django_settings.DATABASE_APP_ROLE,)
        cursor.execute(
            "INSERT INTO audit_auditevent (organization_id, seq, created_at, actor_kind, "
            "actor_id, actor_label, action, target_type, target_id, target_repr, data, "
            "ip_address, user_agent, request_id, prev_hash, hash, digest) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, '', '', '', %s, NULL, '', '', %s, %s, %s) "
            "RETURNING id",
            [
                org.pk,
                forged.seq,
                forged.created_at,
                forged.actor_kind,
                forged.actor_id,
                forged.actor_label,
                forged.action,
                json.dumps(forged.data),
                forged.prev_hash,
                forged.hash,
                forged.digest,
            ],
        )
        (forged_id,) = cursor.fetchone()
    code, out, err = _verify(capsys, "--org", org.slug)
    assert code == 1, out
    assert f"BROKEN at event id={forged_id} #4 org.member_remove" in err
    assert "keyed hash" in err


def test_the_key_never_reaches_the_database(org, settings):
    settings.AUDIT_CHAIN_KEY = "a-dedicated-audit-chain-key-of-some-length"
    (event,) = _events(org, 1)
    with all_tenants():
        row = AuditEvent.objects.filter(pk=event.pk).values().get()
    assert settings.AUDIT_CHAIN_KEY not in json.dumps(row, default=str)
    assert event.hash != hashlib.sha256(event.canonical()).hexdigest()


def test_another_key_does_not_verify(org, settings, capsys):
    _events(org, 2)
    settings.AUDIT_CHAIN_KEY = "someone-elses-key-0123456789abcdef"
    code, _, err = _verify(capsys, "--org", org.slug)
    assert code == 1
    assert "#1" in err and "keyed hash" in err


# --- anchors ----------------------------------------------------------------------------------


def test_anchoring_writes_compliance_locked_objects_and_verify_reads_them(
    org, other_org, anchor_store, capsys
):
    _events(org, 3)
    _events(other_org, 1)
    results = anchor_all_chains.apply().get()
    assert results == {org.slug: 3, other_org.slug: 1, "(global)": "unchanged"}

    chains = {a["Key"].split("/")[1]: a for a in _anchors(anchor_store)}
    assert sorted(chains) == sorted([f"org-{org.pk}", f"org-{other_org.pk}"])
    anchors = [chains[f"org-{org.pk}"], chains[f"org-{other_org.pk}"]]
    head = _chain(org)[2]
    assert anchors[0]["Key"] == f"{PREFIX}org-{org.pk}/{3:020d}-{head.hash}.json"
    for anchor in anchors:
        # (moto 5.2.5 does not answer GetObjectRetention; HeadObject reports the same lock.)
        lock = anchor_store.head_object(
            Bucket=BUCKET, Key=anchor["Key"], VersionId=anchor["VersionId"]
        )
        assert lock["ObjectLockMode"] == "COMPLIANCE"
        assert lock["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=2500)
    body = json.loads(anchor_store.get_object(Bucket=BUCKET, Key=anchors[0]["Key"])["Body"].read())
    assert (body["seq"], body["hash"], body["organization_id"]) == (3, head.hash, org.pk)
    # Compliance mode: the version cannot be deleted, not even by the bucket's owner.
    with pytest.raises(anchor_store.exceptions.ClientError, match="AccessDenied"):
        anchor_store.delete_object(
            Bucket=BUCKET, Key=anchors[0]["Key"], VersionId=anchors[0]["VersionId"]
        )

    # Each anchor is recorded in the chain it anchors.
    record = _chain(org)[-1]
    assert (record.seq, record.action) == (4, "audit.anchor")
    assert record.data["seq"] == 3 and record.data["key"] == anchors[0]["Key"]

    code, out, _ = _verify(capsys, "--org", org.slug)
    assert code == 0
    assert "intact, 4 events" in out and "1 anchors match, the last at #3" in out


def test_anchoring_does_not_feed_on_its_own_records(org, anchor_store):
    _events(org, 2)
    assert anchor_all_chains.apply().get()[org.slug] == 2
    for _ in range(3):
        assert anchor_all_chains.apply().get()[org.slug] == "unchanged"
    assert len(_chain(org)) == 3  # two events and one anchor record
    _events(org, 1, label="later")
    assert anchor_all_chains.apply().get()[org.slug] == 4
    assert len(_anchors(anchor_store)) == 2


def _insert_as_app_role(org, event):
    """SQL injection as the runtime role, in org's scope: INSERT a row it chose."""
    with tenant_scope(org), connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (django_settings.DATABASE_APP_ROLE,)
        cursor.execute(
            "INSERT INTO audit_auditevent (organization_id, seq, created_at, actor_kind, "
            "actor_id, actor_label, action, target_type, target_id, target_repr, data, "
            "ip_address, user_agent, request_id, prev_hash, hash, digest) VALUES "
            "(%s, %s, %s, 'system', '', 'anchoring', %s, '', '', '', %s, NULL, '', '', %s, %s, "
            "%s) RETURNING id",
            [
                org.pk,
                event.seq,
                event.created_at,
                event.action,
                json.dumps(event.data),
                event.prev_hash,
                event.hash,
                event.digest,
            ],
        )
        return cursor.fetchone()[0]


def _anchor_lookalike(org):
    """A row that looks like the record of an anchor of the current head, with an unkeyed
    hash: what the skip rule used to trust."""
    head = _chain(org)[-1]
    forged = AuditEvent(
        organization=org,
        seq=head.seq + 1,
        created_at=timezone.now(),
        action="audit.anchor",
        data={"seq": head.seq, "hash": head.hash},
        prev_hash=head.hash,
    )
    forged.hash = hashlib.sha256(forged.canonical()).hexdigest()
    forged.digest = forged.compute_digest(head.digest)
    return _insert_as_app_role(org, forged)


@pytest.mark.parametrize("anchored_before", [False, True])
def test_a_forged_anchor_record_is_not_trusted_and_the_chain_is_not_anchored(
    org, other_org, anchor_store, caplog, anchored_before
):
    _events(org, 2)
    _events(other_org, 1)
    if anchored_before:
        assert anchor_all_chains.apply().get()[org.slug] == 2
        _events(org, 1, label="later")
    before = len(_anchors(anchor_store))
    forged_id = _anchor_lookalike(org)
    results = anchor_all_chains.apply().get()
    assert results[org.slug].startswith("refused: ")
    assert f"event id={forged_id}" in results[org.slug] and "keyed hash" in results[org.slug]
    assert any(
        r.levelname == "ERROR" and f"audit chain {org.slug} not anchored" in r.getMessage()
        for r in caplog.records
    )
    # Nothing of org's chain was anchored, and no event was appended to it.
    keys = [a["Key"] for a in _anchors(anchor_store)]
    assert len([k for k in keys if f"/org-{org.pk}/" in k]) == (1 if anchored_before else 0)
    assert _chain(org)[-1].pk == forged_id
    # A later real event does not launder the forged one either.
    _events(org, 1, label="after")
    assert anchor_all_chains.apply().get()[org.slug].startswith("refused: ")
    # The intact chain next to it is still anchored.
    assert results[other_org.slug] in (1, "unchanged")
    assert len(_anchors(anchor_store)) == before + (0 if anchored_before else 1)


def test_an_intact_chain_is_anchored_and_its_anchor_record_skipped(org, anchor_store):
    _events(org, 2)
    assert anchor_all_chains.apply().get()[org.slug] == 2
    assert anchor_all_chains.apply().get()[org.slug] == "unchanged"
    _events(org, 2, label="later")
    assert anchor_all_chains.apply().get()[org.slug] == 5
    assert anchor_all_chains.apply().get()[org.slug] == "unchanged"
    assert [a["Key"].split("/")[2][:20] for a in _anchors(anchor_store)] == [
        f"{2:020d}",
        f"{5:020d}",
    ]


def test_a_rewritten_history_after_an_anchor_is_caught(org, anchor_store, capsys):
    """Someone with the owner's access and the key (or a compromised web process that holds it
    and escaped its role) rewrites the history: every keyed hash is right again, but the
    anchor written before the rewrite is not in the database any more."""
    _events(org, 3)
    anchor_all_chains.apply()  # anchors #3, records #4
    _events(org, 2)
    anchor_all_chains.apply()  # anchors #6, records #7
    _as_owner("DELETE FROM audit_auditevent WHERE organization_id = %s AND seq >= 5", [org.pk])
    _events(org, 3, label="rewritten")
    chain = _chain(org)
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5, 6, 7]

    code, out, err = _verify(capsys, "--org", org.slug)
    assert code == 1, out
    # The first event after the last anchor that still matches (#3) is named.
    assert f"BROKEN at event id={chain[3].pk} #4 audit.anchor" in err
    assert f"{6:020d}" in err and "after event #3 was rewritten" in err


def test_a_tail_deleted_after_an_anchor_is_caught(org, anchor_store, capsys):
    _events(org, 4)
    anchor_all_chains.apply()  # anchors #4
    _as_owner("DELETE FROM audit_auditevent WHERE organization_id = %s AND seq >= 3", [org.pk])
    code, out, err = _verify(capsys, "--org", org.slug)
    assert code == 1, out
    assert "chain ends at #2" in err and "deleted" in err


def test_a_delete_marker_does_not_hide_an_anchor(org, anchor_store, capsys):
    """S3 lets s3:DeleteObject add a delete marker even under Object Lock: the object vanishes
    from a plain listing. Verification reads every version."""
    _events(org, 4)
    anchor_all_chains.apply()
    (anchor,) = _anchors(anchor_store)
    anchor_store.delete_object(Bucket=BUCKET, Key=anchor["Key"])
    assert "Contents" not in anchor_store.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)
    _as_owner("DELETE FROM audit_auditevent WHERE organization_id = %s AND seq >= 4", [org.pk])
    code, _, err = _verify(capsys, "--org", org.slug)
    assert code == 1
    assert "chain ends at #3" in err


def test_the_global_chain_is_anchored_too(anchor_store, capsys):
    audit.record(accounts_events.LOGIN_FAILED, data={"email": "x@example.com"}, organization=None)
    assert anchor_all_chains.apply().get()["(global)"] == 1
    (anchor,) = _anchors(anchor_store)
    assert anchor["Key"].startswith(f"{PREFIX}global/")
    code, out, _ = _verify(capsys)
    assert code == 0
    assert "(global): intact, 2 events" in out and "1 anchors match" in out


def test_an_unreadable_anchor_store_fails_verification(org, anchor_store, settings, capsys):
    _events(org, 1)
    settings.AUDIT_ANCHOR_BUCKET = "no-such-bucket"
    code, _, err = _verify(capsys, "--org", org.slug)
    assert code == 1
    assert "could not list anchors" in err


# --- an unanchored deployment says so ------------------------------------------------------------


def test_without_an_anchor_store_the_page_readyz_and_verify_say_unanchored(
    org, auditor, settings, capsys
):
    settings.AUDIT_ANCHOR_BUCKET = ""
    _events(org, 1)
    page = client_for(auditor).get(f"/o/{org.slug}/audit/").content.decode()
    assert "This log is unanchored" in page
    ready = Client().get("/readyz")
    assert ready.status_code == 200  # visible, not down
    assert "unanchored" in ready.json()["warnings"]["audit_anchoring"]
    assert anchor_all_chains.apply().get() == {"unanchored": True}
    code, out, _ = _verify(capsys, "--org", org.slug)
    assert code == 0 and "UNANCHORED" in out


def test_with_an_anchor_store_the_page_shows_the_last_anchor(org, auditor, anchor_store):
    _events(org, 2)
    anchor_all_chains.apply()
    page = client_for(auditor).get(f"/o/{org.slug}/audit/").content.decode()
    assert "unanchored" not in page
    assert "Anchored outside the database: event #2" in page
    assert Client().get("/readyz").json()["warnings"] == {}


# --- the migration that keyed existing chains ----------------------------------------------------


def _run_migration_step(step):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET LOCAL ROLE NONE")  # migrate runs as the owner
        with connection.schema_editor() as editor:
            step(django_apps, editor)
        cursor.execute(f"SET LOCAL ROLE {connection.settings_dict['OPTIONS']['assume_role']}")


def test_the_migration_rekeys_an_intact_unkeyed_chain(org, capsys):
    migration = importlib.import_module("audit.migrations.0004_keyed_chain")
    _events(org, 3)
    _run_migration_step(migration.unkey)  # back to the chain as it was before the key
    chain = _chain(org)
    assert chain[1].hash == hashlib.sha256(chain[1].canonical()).hexdigest()
    assert _verify(capsys, "--org", org.slug)[0] == 1
    _run_migration_step(migration.rekey)
    code, out, _ = _verify(capsys, "--org", org.slug)
    assert code == 0 and "intact, 3 events" in out


def test_the_migration_refuses_a_broken_unkeyed_chain(org):
    migration = importlib.import_module("audit.migrations.0004_keyed_chain")
    events = _events(org, 3)
    _run_migration_step(migration.unkey)
    _as_owner(
        'UPDATE audit_auditevent SET data = \'{"name": "forged"}\' WHERE id = %s', [events[1].pk]
    )
    before = [(e.prev_hash, e.hash) for e in _chain(org)]
    with pytest.raises(RuntimeError, match=rf"REFUSING.*id={events[1].pk} #2"):
        _run_migration_step(migration.rekey)
    assert [(e.prev_hash, e.hash) for e in _chain(org)] == before
