"""The finding-state ledger and the history read back from it (policies.history).

One story, every step at its own instant on tagsense.clock: each transition writes exactly one
ledger row of the right kind, and afterwards every past instant — the steps and the instants
between them — reads back as the findings stood then (captured during the story), as a replay
of the ledger in Python says, with the rules and the controls' status of that instant."""

from __future__ import annotations

import importlib
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.utils import InternalError, ProgrammingError
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership
from inventory import services as inventory_services
from inventory.models import AwsAccount, Resource
from policies import evaluation, exemptions, history, services
from policies.engine.spec import parse_rules
from policies.models import Control, Finding, FindingEvent, Framework, Rule, ScoreSnapshot
from policies.scoring import scores
from tagsense import clock
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import POLICY_NAME, tenant_scope
from tests.policies.test_evaluation import OWNER
from tests.policies.test_rules import make_resources, retag

pytestmark = pytest.mark.django_db

ENV = parse_rules(
    """
version: 1
rules:
  - id: env-required
    title: Environment
    check: required_key
    key: Environment
"""
)[0]

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def hours(n: float) -> datetime:
    return START + timedelta(hours=n)


def ledger(org) -> list[FindingEvent]:
    with tenant_scope(org):
        return list(FindingEvent.objects.order_by("at", "id"))


def present(org) -> dict[int, str]:
    """{finding id: status} of the findings open or exempted now (the present's own reads)."""
    with tenant_scope(org):
        found = Finding.objects.for_org(org).select_related("exemption")
        return {f.pk: f.current_status for f in found if f.current_status in ("open", "exempted")}


def replayed(events: list[FindingEvent], at: datetime) -> dict[int, str]:
    """The ledger replayed in Python: each finding's status after its last event at or before
    `at`."""
    state: dict[int, str] = {}
    for event in events:
        if event.at <= at:
            assert state.get(event.finding_id, "") == event.from_status or (
                event.from_status == "resolved" and event.finding_id not in state
            ), f"{event} does not follow the finding's previous state"
            state[event.finding_id] = event.to_status
    return {pk: status for pk, status in state.items() if status != "resolved"}


def read_back(org, at: datetime) -> dict[int, str]:
    with tenant_scope(org):
        return {
            s.finding_id: s.status
            for s in history.findings_at(org, at, statuses=("open", "exempted"))
        }


class Story:
    """Steps at their own instants; after each, the ledger rows it wrote and the present."""

    def __init__(self, org):
        self.org = org
        self.seen = 0
        self.states: list[tuple[datetime, dict[int, str]]] = []

    def new_events(self) -> list[tuple[str, str, str, int]]:
        events = ledger(self.org)
        fresh = events[self.seen :]
        self.seen = len(events)
        return sorted((e.event, e.from_status, e.to_status, e.resource_id) for e in fresh)

    def capture(self, at: datetime) -> None:
        with clock.at(at):  # the present's reads of lapsed exemptions read the clock
            self.states.append((at, present(self.org)))


@pytest.fixture
def members(org, editor, admin):
    with tenant_scope(org):
        return Membership.objects.get(user=editor), Membership.objects.get(user=admin)


def exempt(org, members, resource, at: datetime, expires: datetime):
    """The resource's open findings requested by the editor and approved by the admin at `at`."""
    editor_m, admin_m = members
    with clock.at(at):
        with tenant_scope(org, actor=Actor.for_user(editor_m.user)):
            exemption = exemptions.request(
                editor_m,
                Finding.objects.for_org(org).filter(resource=resource),
                justification="migration window",
                expires_at=expires,
            )
        with tenant_scope(org, actor=Actor.for_user(admin_m.user)):
            exemptions.approve(exemption, admin_m)
    return exemption


def evaluate(org, at: datetime, **kwargs) -> dict:
    with clock.at(at), tenant_scope(org):
        return evaluation.evaluate_organization(org, **kwargs)


@pytest.fixture
def control(org):
    with tenant_scope(org):
        framework = Framework.objects.create(organization=org, slug="soc2", name="SOC 2")
        return Control.objects.create(
            organization=org,
            framework=framework,
            control_id="CC6.1",
            title="Ownership",
            rule_ids=["owner-required", "env-required"],
        )


def test_every_transition_writes_one_row_and_every_past_instant_reads_back(org, members, control):
    r0, r1, r2 = make_resources(org, tags_list=[{}, {"Owner": "ann@x"}, {}])
    story = Story(org)

    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
    assert story.new_events() == [
        ("opened", "", "open", r0.pk),
        ("opened", "", "open", r2.pk),
    ]
    story.capture(hours(1))

    with tenant_scope(org):
        retag(r0, {"Owner": "bob@x"})
    evaluate(org, hours(2))
    assert story.new_events() == [("resolved", "open", "resolved", r0.pk)]
    story.capture(hours(2))

    # Nothing changed: nothing written, incremental or forced.
    evaluate(org, hours(2.5))
    evaluate(org, hours(2.6), force=True)
    assert story.new_events() == []

    # Metadata only (severity, so the findings' rule version and severity): no change of status.
    with clock.at(hours(3)), tenant_scope(org):
        rule = Rule.objects.get(rule_id="owner-required")
        services.update_rule(rule, replace(OWNER, severity="low"))
        assert Finding.objects.get(resource=r2).severity == "low"
    assert story.new_events() == []
    story.capture(hours(3))

    with tenant_scope(org):
        retag(r0, {})
    evaluate(org, hours(4))
    assert story.new_events() == [("reopened", "resolved", "open", r0.pk)]
    story.capture(hours(4))

    exemption = exempt(org, members, r2, hours(5), expires=hours(29))
    assert story.new_events() == [("exempted", "open", "exempted", r2.pk)]
    story.capture(hours(5))

    # Past the expiry, before anything writes it down: the reads already say open.
    pending = read_back(org, hours(40))
    evaluate(org, hours(40))
    assert story.new_events() == [("exemption_expired", "exempted", "open", r2.pk)]
    (expired,) = [e for e in ledger(org) if e.event == "exemption_expired"]
    assert expired.at == exemption.expires_at == hours(29)
    assert expired.exemption_id == exemption.pk
    assert read_back(org, hours(40)) == pending == present(org)
    story.capture(hours(40))

    with clock.at(hours(41)), tenant_scope(org):
        services.create_rule(org, ENV)
    assert story.new_events() == [("opened", "", "open", r.pk) for r in (r0, r1, r2)]
    story.capture(hours(41))

    with clock.at(hours(42)), tenant_scope(org):
        services.update_rule(Rule.objects.get(rule_id="env-required"), active=False)
    assert story.new_events() == [("rule_retired", "open", "resolved", r.pk) for r in (r0, r1, r2)]
    story.capture(hours(42))

    with tenant_scope(org):
        Resource.objects.filter(pk=r2.pk).update(deleted_at=hours(43))
    evaluate(org, hours(43))
    assert story.new_events() == [("resource_deleted", "open", "resolved", r2.pk)]
    story.capture(hours(43))

    exempt(org, members, r0, hours(44), expires=hours(200))
    assert story.new_events() == [("exempted", "open", "exempted", r0.pk)]
    story.capture(hours(44))
    with tenant_scope(org):
        retag(r0, {"Owner": "carol@x"})
    evaluate(org, hours(45))
    assert story.new_events() == [("resolved", "exempted", "resolved", r0.pk)]
    story.capture(hours(45))

    with tenant_scope(org):
        retag(r1, {})
    evaluate(org, hours(46))
    assert story.new_events() == [("opened", "", "open", r1.pk)]
    story.capture(hours(46))
    with clock.at(hours(47)), tenant_scope(org):
        services.delete_rule(Rule.objects.get(rule_id="owner-required"))
        assert not Finding.objects.filter(resource=r1, status="open").exists()
    assert story.new_events() == [("rule_retired", "open", "resolved", r1.pk)]
    story.capture(hours(47))

    # Every past instant: at each step, just before it, and between steps.
    events = ledger(org)
    instants = [(at, state) for at, state in story.states]
    instants += [(at + timedelta(minutes=30), state) for at, state in story.states]
    instants.append((hours(0.5), {}))
    for at, state in instants:
        assert read_back(org, at) == state == replayed(events, at), at
    # Between the approval and the expiry, r2's finding was exempted; from the expiry, open.
    (r2_finding,) = {
        e.finding_id for e in events if e.resource_id == r2.pk and e.rule_slug == "owner-required"
    }
    assert read_back(org, hours(28.9))[r2_finding] == "exempted"
    assert read_back(org, hours(29))[r2_finding] == "open"


def test_findings_at_streams_what_each_finding_was(org):
    r0, r1 = make_resources(org, tags_list=[{}, {}])
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
        services.create_rule(org, ENV)
    with tenant_scope(org):
        retag(r0, {"Owner": "ann@x"})
    evaluate(org, hours(2))
    with tenant_scope(org):
        states = list(history.findings_at(org, hours(1.5)))
        account = AwsAccount.objects.get(account_id="111111111111")
        later = list(history.findings_at(org, hours(2), rule_ids=["owner-required"]))
        elsewhere = list(history.findings_at(org, hours(2), account_pks=[account.pk + 1000]))
    assert [(s.rule_id, s.resource_id, s.status, s.since) for s in states] == [
        ("env-required", r0.pk, "open", hours(1)),
        ("env-required", r1.pk, "open", hours(1)),
        ("owner-required", r0.pk, "open", hours(1)),
        ("owner-required", r1.pk, "open", hours(1)),
    ]
    assert states[2].account_pk == account.pk and states[2].kind == "missing"
    assert [(s.rule_id, s.resource_id) for s in later] == [("owner-required", r1.pk)]
    assert elsewhere == []


def test_changes_between_is_the_difference_of_two_instants(org, members):
    r0, r1 = make_resources(org, tags_list=[{}, {}])
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
    with tenant_scope(org):
        retag(r0, {"Owner": "ann@x"})
    evaluate(org, hours(2))
    exempt(org, members, r1, hours(3), expires=hours(100))
    with tenant_scope(org):
        changes = list(history.changes_between(org, hours(1), hours(3)))
        everything = list(history.changes_between(org, hours(0), hours(3)))
    assert [(c.at, c.event, c.from_status, c.to_status, c.resource_id) for c in changes] == [
        (hours(2), "resolved", "open", "resolved", r0.pk),
        (hours(3), "exempted", "open", "exempted", r1.pk),
    ]
    assert changes[1].exemption_id is not None and changes[1].rule_id == "owner-required"
    assert len(everything) == 4 and everything[0].event == "opened"


def test_rules_and_control_status_honour_the_versions_in_force(org, control):
    make_resources(org, tags_list=[{"Owner": "ann@x"}])  # passes owner-required throughout
    with tenant_scope(org):
        assert history.control_status_at(org, control, hours(0)).status == "no_rules"
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
    with clock.at(hours(2)), tenant_scope(org):
        services.create_rule(org, ENV)
    with clock.at(hours(3)), tenant_scope(org):
        services.update_rule(
            Rule.objects.get(rule_id="owner-required"), replace(OWNER, severity="low")
        )
    with clock.at(hours(4)), tenant_scope(org):
        services.update_rule(Rule.objects.get(rule_id="env-required"), active=False)
    with clock.at(hours(5)), tenant_scope(org):
        services.delete_rule(Rule.objects.get(rule_id="owner-required"))

    with tenant_scope(org):
        in_force = {
            t: {k: v.version for k, v in history.rules_in_force(org, hours(t)).items()}
            for t in (0.5, 1, 2.5, 3.5, 4.5, 5.5)
        }
        status = {t: history.control_status_at(org, control, hours(t)) for t in (1.5, 2.5, 4.5)}
        gone = history.control_status_at(org, control, hours(5.5))
        versions = history.rule_versions_in_force(org, hours(2.5), hours(3.5))
    assert in_force == {
        0.5: {},
        1: {"owner-required": 1},
        2.5: {"owner-required": 1, "env-required": 1},
        3.5: {"owner-required": 2, "env-required": 1},
        4.5: {"owner-required": 2},
        5.5: {},
    }
    assert status[1.5] == history.ControlState("pass", 0, 0, 0, ["owner-required"])
    assert status[2.5] == history.ControlState("fail", 1, 1, 0, ["env-required", "owner-required"])
    assert status[4.5] == history.ControlState("pass", 0, 0, 0, ["owner-required"])
    assert gone.status == "no_rules"
    assert [(v.rule_id, v.version, v.active) for v in versions] == [
        ("env-required", 1, True),
        ("owner-required", 1, True),
        ("owner-required", 2, True),
    ]
    assert versions[1].valid_to == versions[2].valid_from == hours(3)


def test_control_failing_resources_count_each_resource_once(org, control):
    make_resources(org, tags_list=[{}, {"Owner": "ann@x"}, {"Environment": "qa"}])
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
        services.create_rule(org, ENV)
    with tenant_scope(org):
        state = history.control_status_at(org, control, hours(2))
        mine = history.control_status_at(
            org, control, hours(2), account_pks=[AwsAccount.objects.get().pk]
        )
        none = history.control_status_at(org, control, hours(2), account_pks=[-1])
    # r0 fails both rules, r1 env only, r2 owner only.
    assert (state.status, state.open_findings, state.failing_resources) == ("fail", 4, 3)
    assert mine == state
    assert (none.status, none.open_findings) == ("pass", 0)


def test_daily_states_and_rebuilt_snapshots_come_from_the_ledger(org, control):
    r0, r1 = make_resources(org, tags_list=[{}, {"Owner": "ann@x", "Environment": "qa"}])
    day = date(2026, 3, 2)
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
        services.create_rule(org, ENV)
        scores.take_snapshot(org)
    with tenant_scope(org):
        retag(r0, {"Owner": "bob@x", "Environment": "qa"})
    evaluate(org, hours(25))  # the next day: fixed, and a snapshot of that day
    with tenant_scope(org):
        retag(r1, {"Owner": "ann@x"})
    evaluate(org, hours(49))
    with tenant_scope(org):
        key = scores.control_key("soc2", "CC6.1")
        days = sorted(
            ScoreSnapshot.objects.filter(kind="control", key=key).values_list("day", "in_scope")
        )
        states = history.daily_control_states(
            org, control, day - timedelta(days=1), day + timedelta(days=3)
        )
    assert days == [(day, 2), (day + timedelta(days=1), 2), (day + timedelta(days=2), 2)]
    assert states == [
        (day - timedelta(days=1), 0, 0, False),  # no rule yet, no snapshot yet
        (day, 1, 2, False),
        (day + timedelta(days=1), 2, 2, True),
        (day + timedelta(days=2), 1, 2, False),
        (day + timedelta(days=3), 1, 2, False),  # the latest snapshot's scope
    ]
    # A snapshot's compliant side is a cache: spoilt, it is rebuilt from the ledger.
    with tenant_scope(org):
        ScoreSnapshot.objects.filter(day=day).update(compliant=0)
        changed = history.rebuild_snapshots(org, day, day + timedelta(days=2))
        rebuilt = dict(ScoreSnapshot.objects.filter(day=day).values_list("kind", "compliant"))
    assert changed >= 2
    assert rebuilt["control"] == 1 and rebuilt["organization"] == 1


def test_an_account_deleted_takes_its_findings_out_as_resource_deleted(org):
    r0, r1 = make_resources(org, tags_list=[{}, {}])
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
    with clock.at(hours(2)), tenant_scope(org):
        inventory_services.delete_account(AwsAccount.objects.get())
    events = ledger(org)
    assert sorted((e.event, e.resource_id, e.at) for e in events if e.event != "opened") == [
        ("resource_deleted", r0.pk, hours(2)),
        ("resource_deleted", r1.pk, hours(2)),
    ]
    assert read_back(org, hours(3)) == {}


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE policies_findingevent SET event = 'resolved'",
        "DELETE FROM policies_findingevent",
    ],
)
@pytest.mark.parametrize("role", ["application", "owner"])
def test_the_ledger_refuses_update_and_delete_in_the_database(org, sql, role):
    make_resources(org, tags_list=[{}])
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
    with (
        pytest.raises((InternalError, ProgrammingError), match="append-only|permission denied"),
        transaction.atomic(),
        tenant_scope(org),
        connection.cursor() as cursor,
    ):
        if role == "owner":
            cursor.execute("SET LOCAL ROLE NONE")  # the table's owner: only the trigger stops it
        cursor.execute(sql)
    assert len(ledger(org)) == 1


def test_the_owner_trigger_names_the_refusal_and_truncate_stays_possible(org):
    make_resources(org, tags_list=[{}])
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
    with (
        pytest.raises(ProgrammingError, match="finding events are append-only: DELETE refused"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SET LOCAL ROLE NONE")
        cursor.execute("DELETE FROM policies_findingevent")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL ROLE NONE")
        cursor.execute("TRUNCATE policies_findingevent")  # a test flush
        cursor.execute("SELECT count(*) FROM policies_findingevent")
        assert cursor.fetchone() == (0,)
        transaction.set_rollback(True)


def test_the_model_refuses_changes_too(org):
    make_resources(org, tags_list=[{}])
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
        event = FindingEvent.objects.get()
        with pytest.raises(PermissionDenied):
            event.save()
        with pytest.raises(PermissionDenied):
            event.delete()


def test_another_organizations_ledger_is_invisible(org, other_org):
    make_resources(org, tags_list=[{}])
    make_resources(other_org, "222222222222", [{}, {}])
    for organization in (org, other_org):
        with clock.at(hours(1)), tenant_scope(organization):
            services.create_rule(organization, OWNER)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_policies WHERE tablename = 'policies_findingevent' "
            "AND policyname = %s",
            [POLICY_NAME],
        )
        assert cursor.fetchone() == (1,)
    with tenant_scope(org), connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT organization_id FROM policies_findingevent")
        assert cursor.fetchall() == [(org.pk,)]
        assert {s.finding_id for s in history.findings_at(org, hours(2))} == {
            e.finding_id for e in FindingEvent.objects.all()
        }
        # Named explicitly, the other organization's rows are still not there.
        assert list(history.findings_at(other_org, hours(2))) == []
    with connection.cursor() as cursor:  # no tenant at all: nothing
        cursor.execute("SELECT count(*) FROM policies_findingevent")
        assert cursor.fetchone() == (0,)


def test_the_migration_backfill_starts_history_consistent_with_the_present(org, members):
    r0, r1, r2 = make_resources(org, tags_list=[{}, {}, {}])
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
    with tenant_scope(org):
        retag(r0, {"Owner": "ann@x"})
    evaluate(org, hours(2))
    exempt(org, members, r1, hours(3), expires=hours(100))
    with clock.at(hours(4)):
        before = present(org)
    assert sorted(before.values()) == ["exempted", "open"]
    backfill = importlib.import_module("policies.migrations.0009_finding_events").BACKFILL
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL ROLE NONE")  # as the migration runs: the owner, every tenant
        cursor.execute("TRUNCATE policies_findingevent")
        for statement in backfill:
            cursor.execute(statement)
    events = ledger(org)
    assert sorted((e.event, e.resource_id, e.at) for e in events) == [
        ("exempted", r1.pk, hours(3)),
        ("opened", r0.pk, hours(1)),
        ("opened", r1.pk, hours(1)),
        ("opened", r2.pk, hours(1)),
        ("resolved", r0.pk, hours(2)),
    ]
    assert read_back(org, hours(4)) == before == replayed(events, hours(4))


def test_control_status_without_counting_resources_agrees_at_every_instant(org, control):
    """The fast path (no grouping by resource) gives the same status and finding counts as the
    full one, before, during and after findings open, resolve and are exempted."""
    make_resources(org, tags_list=[{}, {"Owner": "ann@x"}, {"Environment": "qa"}])
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
        services.create_rule(org, ENV)
    with clock.at(hours(3)), tenant_scope(org):
        retag(Resource.objects.get(tags={}), {"Owner": "ann@x", "Environment": "prod"})
        evaluation.evaluate_organization(org)
    with tenant_scope(org):
        for t in (0.5, 1, 1.5, 2.5, 3, 3.5, 6):
            full = history.control_status_at(org, control, hours(t))
            fast = history.control_status_at(org, control, hours(t), count_resources=False)
            assert fast.failing_resources is None
            seen = (fast.status, fast.open_findings, fast.exempted_findings, fast.rules_in_force)
            assert seen == (
                full.status,
                full.open_findings,
                full.exempted_findings,
                full.rules_in_force,
            ), t
        assert history.control_status_at(org, control, hours(2)).open_findings == 4
        assert history.control_status_at(org, control, hours(4)).open_findings == 2


def test_controls_citing_the_same_rules_share_the_ledger_sums_when_remembering(org, control):
    """An evidence package reads every control of its frameworks; those citing the same rules
    get the same answers from one sum each (history.remembering), and different rules or
    accounts or instants are never mixed up."""
    make_resources(org, tags_list=[{}, {"Owner": "ann@x"}, {"Environment": "qa"}])
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
        services.create_rule(org, ENV)
        twin = Control.objects.create(
            organization=org,
            framework=control.framework,
            control_id="CC6.2",
            title="Twin",
            rule_ids=["env-required", "owner-required"],  # the same rules, another order
        )
        owner_only = Control.objects.create(
            organization=org,
            framework=control.framework,
            control_id="CC6.3",
            title="Owner",
            rule_ids=["owner-required"],
        )
    day = hours(2).date()

    def read(c, at, accounts=None):
        return (
            history.control_status_at(org, c, at, account_pks=accounts),
            history.daily_control_states(org, c, day, day, account_pks=accounts),
        )

    cases = [
        (c, at, a)
        for c in (control, twin, owner_only)
        for at in (hours(0.5), hours(2))
        for a in (None, [-1])
    ]
    with tenant_scope(org):
        alone = [read(*case) for case in cases]
        with history.remembering(), CaptureQueriesContext(connection) as remembered:
            together = [read(*case) for case in cases]
        with CaptureQueriesContext(connection) as every:
            again = [read(*case) for case in cases]
    assert together == alone == again
    assert together[2][0].open_findings == 4 and together[10][0].open_findings == 2
    ledger_sums = [q for q in remembered.captured_queries if "open_delta" in q["sql"]]
    assert len(ledger_sums) < len([q for q in every.captured_queries if "open_delta" in q["sql"]])


TEAM = parse_rules(
    """
version: 1
rules:
  - id: team-required
    title: Team
    check: required_key
    key: Team
"""
)[0]


def _every_rule_set(org, framework) -> list[Control]:
    """A control for every non-empty set of the three rules (one of them twice over)."""
    sets = [
        ["owner-required"],
        ["env-required"],
        ["team-required"],
        ["owner-required", "env-required"],
        ["env-required", "owner-required"],
        ["owner-required", "team-required"],
        ["env-required", "team-required"],
        ["owner-required", "env-required", "team-required"],
        ["retired-never-existed"],
    ]
    return [
        Control.objects.create(
            organization=org,
            framework=framework,
            control_id=f"X{n}",
            title=f"Set {n}",
            rule_ids=rule_ids,
        )
        for n, rule_ids in enumerate(sets)
    ]


@pytest.mark.parametrize("too_many_rules", [False, True])
def test_every_control_at_once_reads_what_each_control_alone_reads(
    org, members, control, too_many_rules, monkeypatch
):
    """history.remember_controls (one pass over the ledger for every control of a package)
    against each control's own sums, over a story with every kind of transition: rules created
    on different days, fixes and breakages, an exemption that lapses without being written down
    (a pending expiry), a rule switched off, a resource in a second account, and changes later
    on the period's last day than its end. Over more rules than a mask holds it does nothing
    and the reads still agree."""
    if too_many_rules:
        monkeypatch.setattr(history, "MASK_RULES", 1)
    r0, r1, r2, r3 = make_resources(
        org,
        tags_list=[
            {},
            {"Owner": "ann@x"},
            {"Environment": "qa", "Team": "core"},
            {"Owner": "bob@x", "Environment": "prod", "Team": "data"},
        ],
    )
    [r4] = make_resources(org, account_id="222222222222", tags_list=[{"Team": "ops"}])
    with clock.at(hours(1)), tenant_scope(org):
        services.create_rule(org, OWNER)
        services.create_rule(org, ENV)
        controls = [control, *_every_rule_set(org, control.framework)]
    with tenant_scope(org):
        retag(r1, {"Owner": "ann@x", "Environment": "dev"})
    evaluate(org, hours(25))
    with clock.at(hours(27)), tenant_scope(org):
        services.create_rule(org, TEAM)
    exempt(org, members, r2, hours(49), expires=hours(60))  # lapses, never written down
    with tenant_scope(org):
        retag(r0, {"Owner": "cy@x", "Environment": "qa"})
        retag(r4, {"Owner": "di@x"})
    evaluate(org, hours(50))
    with clock.at(hours(73)), tenant_scope(org):
        services.update_rule(Rule.objects.get(rule_id="env-required"), active=False)
    with tenant_scope(org):
        retag(r3, {"Owner": "bob@x"})
        retag(r0, {})
    evaluate(org, hours(75))
    with tenant_scope(org):
        retag(r1, {"Owner": "ann@x", "Team": "core"})
    evaluate(org, hours(98))
    with tenant_scope(org):
        accounts = [[a.pk] for a in AwsAccount.objects.order_by("account_id")]

    first = START.date()
    cases = [
        (at, first_day, at.date(), account_pks)
        for at in (hours(26), history.day_end(first + timedelta(days=1)), hours(74), hours(100))
        for first_day in (first - timedelta(days=1), first + timedelta(days=1))
        for account_pks in (None, *accounts, [-1])
        if first_day <= at.date()
    ]

    def read(at, first_day, last_day, account_pks):
        return [
            (
                history.control_status_at(org, c, at, account_pks=account_pks),
                history.daily_control_states(org, c, first_day, last_day, account_pks=account_pks),
            )
            for c in controls
        ]

    with tenant_scope(org):
        for case in cases:
            alone = read(*case)
            with history.remembering(), CaptureQueriesContext(connection) as queries:
                history.remember_controls(org, controls, case[0], *case[1:3], account_pks=case[3])
                together = read(*case)
            assert together == alone, case
            sums = [q for q in queries.captured_queries if "open_delta" in q["sql"]]
            if too_many_rules:
                assert len(sums) > 2, case
            else:
                assert len(sums) == 2, case  # every control's sums from two statements
    # The story is not trivial: failing counts move over the days and between the accounts.
    with tenant_scope(org):
        everything = controls[-2]
        days = history.daily_control_states(org, everything, first, first + timedelta(days=4))
        by_account = {
            tuple(a): history.control_status_at(org, everything, hours(100), account_pks=a)
            for a in accounts
        }
    assert len({compliant for _, compliant, _, _ in days}) > 1 or len({p for *_, p in days}) > 1
    assert len({s.failing_resources for s in by_account.values()}) > 1
