"""The audit core: one writer, append-only, a hash chain whose breaks are named."""

import threading

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.db.utils import InternalError, ProgrammingError

import audit
from accounts import audit_events as accounts_events
from audit.models import GENESIS_HASH, AuditEvent
from audit.registry import AuditAction
from tagsense.tenancy import context
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.factories import OrganizationFactory


def _events(org, n, start=0):
    with tenant_scope(org):
        return [
            audit.record(accounts_events.TEAM_CREATE, data={"name": f"team {i}"})
            for i in range(start, start + n)
        ]


def _verify(capsys, *args):
    """Run verify_audit_chain; return (exit code, stdout, stderr)."""
    try:
        call_command("verify_audit_chain", *args)
        code = 0
    except CommandError as exc:
        code = exc.returncode
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def as_owner():
    """Run SQL as the table owner with triggers disabled: what an attacker with DB access does."""

    def run(sql, params=None):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE NONE")
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(sql, params)

    return run


@pytest.mark.django_db
def test_events_form_a_chain_per_organization(org, other_org):
    first = _events(org, 3)
    theirs = _events(other_org, 2)
    assert [e.seq for e in first] == [1, 2, 3]
    assert first[0].prev_hash == GENESIS_HASH
    assert first[1].prev_hash == first[0].hash
    assert [e.seq for e in theirs] == [1, 2]
    assert theirs[0].prev_hash == GENESIS_HASH


@pytest.mark.django_db
def test_record_takes_actor_and_request_from_the_context(org, owner):

    with context.use(actor=Actor.for_user(owner), request_id="req-12345678", ip_address="10.1.2.3"):
        (event,) = _events(org, 1)
    assert (event.actor_kind, event.actor_label) == ("user", owner.email)
    assert event.request_id == "req-12345678"
    assert event.ip_address == "10.1.2.3"


@pytest.mark.django_db
def test_unregistered_actions_are_refused(org):
    with pytest.raises(ValueError, match="unregistered"), tenant_scope(org):
        audit.record(AuditAction("team.teleport", "made up"))
    with tenant_scope(org):
        assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_an_action_is_named_by_its_registered_object_not_a_string(org):
    with pytest.raises(TypeError, match="AuditAction"), tenant_scope(org):
        audit.record("team.create")
    with tenant_scope(org):
        assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_event_is_written_in_the_callers_transaction(org):
    with pytest.raises(RuntimeError), tenant_scope(org):
        audit.record(accounts_events.TEAM_CREATE)
        raise RuntimeError("the change failed")
    with tenant_scope(org):
        assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'org.update'",
        "DELETE FROM audit_auditevent",
        "TRUNCATE audit_auditevent",
    ],
)
def test_update_delete_truncate_are_refused_even_for_the_table_owner(org, sql):
    _events(org, 2)
    with (
        pytest.raises((InternalError, ProgrammingError), match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the inserts' FK checks are done
        cursor.execute("SET LOCAL ROLE NONE")  # the owner (and superuser) of the table
        cursor.execute(sql)


@pytest.mark.django_db
def test_model_layer_refuses_changes_too(org):
    (event,) = _events(org, 1)

    with pytest.raises(PermissionDenied):
        event.save()
    with pytest.raises(PermissionDenied):
        event.delete()


@pytest.mark.django_db
def test_verify_reports_an_intact_chain(org, capsys):
    _events(org, 5)
    code, out, err = _verify(capsys, "--org", org.slug)
    assert code == 0
    assert "intact, 5 events" in out


@pytest.mark.django_db
def test_verify_names_an_edited_event(org, as_owner, capsys):
    events = _events(org, 5)
    as_owner(
        'UPDATE audit_auditevent SET data = \'{"name": "forged"}\' WHERE id = %s',
        [events[2].pk],
    )
    code, out, err = _verify(capsys, "--org", org.slug)
    assert code == 1
    assert f"event id={events[2].pk} #3" in err
    assert "edited" in err


@pytest.mark.django_db
def test_verify_names_the_event_after_a_deleted_one(org, as_owner, capsys):
    events = _events(org, 5)
    as_owner("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    code, out, err = _verify(capsys, "--org", org.slug)
    assert code == 1
    assert f"event id={events[2].pk} #3" in err
    assert "deleted" in err


@pytest.mark.django_db
def test_verify_names_reordered_events(org, as_owner, capsys):
    events = _events(org, 4)
    # Swap the positions of events 2 and 3.
    swap = "UPDATE audit_auditevent SET seq = %s WHERE id = %s"
    as_owner(swap, [1000, events[1].pk])
    as_owner(swap, [2, events[2].pk])
    as_owner(swap, [3, events[1].pk])
    code, out, err = _verify(capsys, "--org", org.slug)
    assert code == 1
    assert f"event id={events[2].pk} #2" in err


@pytest.mark.django_db
def test_verify_all_checks_every_chain_and_the_global_one(org, other_org, as_owner, capsys):
    _events(org, 2)
    theirs = _events(other_org, 2)
    audit.record(accounts_events.LOGIN_FAILED, data={"email": "x@y.z"}, organization=None)
    as_owner(
        "UPDATE audit_auditevent SET actor_label = 'someone else' WHERE id = %s", [theirs[0].pk]
    )
    code, out, err = _verify(capsys)
    assert code == 1
    assert "acme: intact, 2 events" in out
    assert "(global): intact, 1 events" in out
    assert "globex: BROKEN" in err


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_leave_one_unbroken_chain(capsys):
    org = OrganizationFactory(slug="busy")
    threads, errors = 8, []
    per_thread = 1000 // threads
    barrier = threading.Barrier(threads)

    def writer(n):
        try:
            barrier.wait()
            for i in range(per_thread):
                with tenant_scope(org):
                    audit.record(accounts_events.TEAM_CREATE, data={"writer": n, "i": i})
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    with all_tenants():
        seqs = list(AuditEvent.objects.chain(org.pk).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 1001))
    code, out, _ = _verify(capsys, "--org", "busy")
    assert code == 0, out
    assert "intact, 1000 events" in out
