"""Findings: full runs, resolution and reopening, rule changes, after a scan, team scoping."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.utils import timezone

from accounts.models import Team
from audit.models import AuditEvent
from inventory import runner
from inventory import services as inventory_services
from inventory.models import AwsAccount, Resource, ScanRun, TagEvent
from policies import evaluation, services
from policies.engine.spec import parse_rules
from policies.models import EvaluatedResource, Finding, Rule
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.factories import TeamMembershipFactory
from tests.policies.test_rules import make_resources, retag

pytestmark = pytest.mark.django_db

OWNER = parse_rules(
    """
version: 1
rules:
  - id: owner-required
    title: Owner
    check: required_key
    key: Owner
    aliases: [owner_email]
    severity: high
    enforcement: enforced
"""
)[0]


def findings(organization):
    with tenant_scope(organization):
        return {
            f.resource.name: f
            for f in Finding.objects.for_org(organization).select_related("resource")
        }


def events(organization, action):
    with tenant_scope(organization):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


@pytest.fixture
def estate(org, other_org, team):

    resources = make_resources(
        org,
        tags_list=[{"Owner": "ann@x"}, {}, {"owner_email": "bob@x", "Owner_": "z"}],
    )
    theirs = make_resources(other_org, tags_list=[{}, {}])
    with tenant_scope(org):
        inventory_services.grant_account(AwsAccount.objects.get(account_id="111111111111"), team)
    return resources, theirs


def test_a_full_run_writes_one_finding_per_failing_resource_and_rule(org, other_org, estate):
    with tenant_scope(org):
        rule = services.create_rule(org, OWNER)
        result = evaluation.evaluate_organization(org)
    assert result["failing"] == 2 and result["new"] == 0  # the create evaluated already
    got = findings(org)
    assert set(got) == {"acme-1", "acme-2"}
    assert (got["acme-1"].kind, got["acme-1"].found_key) == ("missing", None)
    wrong = got["acme-2"]
    assert (wrong.kind, wrong.found_key, wrong.status) == ("wrong_case", "owner_email", "open")
    assert (wrong.severity, wrong.enforcement, wrong.rule_version) == ("high", "enforced", 1)
    assert wrong.owner_teams == ["platform"] and wrong.rule_id == rule.pk
    assert findings(other_org) == {}  # org A's rule never evaluates org B
    [event] = events(org, "policy.evaluate")
    assert event.data["failing"] == 2 and event.data["rules"] == 1


def test_fixed_resources_resolve_and_broken_ones_reopen(org, estate):

    resources, _ = estate
    with tenant_scope(org):
        services.create_rule(org, OWNER)
        retag(resources[1], {"Owner": "carol@x"})
        evaluation.evaluate_organization(org)
    fixed = findings(org)["acme-1"]
    assert fixed.status == "resolved" and fixed.resolved_at is not None
    assert fixed.owner == ""  # as it was when it last failed
    with tenant_scope(org):
        retag(resources[1], {"OWNER": "carol@x"})
        evaluation.evaluate_organization(org)
    again = findings(org)["acme-1"]
    assert (again.status, again.kind, again.resolved_at) == ("open", "wrong_case", None)
    assert again.first_seen > fixed.first_seen


def test_rule_changes_re_evaluate_that_rule(org, estate):

    with tenant_scope(org):
        rule = services.create_rule(org, OWNER)
        assert len(findings(org)) == 2
        rule = services.update_rule(rule, replace(OWNER, aliases=()))
        got = findings(org)
        assert got["acme-2"].kind == "missing" and got["acme-2"].rule_version == 2
        services.update_rule(rule, active=False)
        assert {f.status for f in findings(org).values()} == {"resolved"}
        services.delete_rule(Rule.objects.get(pk=rule.pk))
        assert findings(org) == {}
    [update, deactivate] = events(org, "policy.rule_update")
    assert update.data["failing"] == 2 and deactivate.data["resolved"] == 2


def test_a_run_evaluates_only_what_changed_since_the_last(org, estate):
    """The ledger: a second run with nothing changed evaluates nothing and writes nothing; a
    retagged resource, a deleted one and a rule changed outside the services are evaluated,
    and only they; a change of which teams hold an account, or force, evaluates everything."""

    resources, _ = estate
    with tenant_scope(org):
        rule = services.create_rule(org, OWNER)
        first = evaluation.evaluate_organization(org)
        assert first["mode"] == "full"  # no ledger yet
        before = {name: (f.status, f.kind) for name, f in findings(org).items()}
        second = evaluation.evaluate_organization(org)
        assert (second["mode"], second["rules_evaluated"], second["resources_evaluated"]) == (
            "incremental",
            0,
            0,
        )
        assert (second["new"], second["resolved"], second["failing"]) == (0, 0, 2)
        assert {name: (f.status, f.kind) for name, f in findings(org).items()} == before

        retag(resources[1], {"Owner": "carol@x"})  # fixed
        Resource.objects.filter(pk=resources[2].pk).update(deleted_at=timezone.now())  # gone
        third = evaluation.evaluate_organization(org)
        assert (third["resources_evaluated"], third["resolved"], third["failing"]) == (2, 2, 0)
        assert {f.status for f in findings(org).values()} == {"resolved"}

        # A rule edited without the services (a version the ledger has not seen).
        Rule.objects.filter(pk=rule.pk).update(version=rule.version + 1)
        retag(resources[0], {})
        fourth = evaluation.evaluate_organization(org)
        assert (fourth["rules_evaluated"], fourth["resources_evaluated"]) == (1, 1)
        assert findings(org)["acme-0"].status == "open"

        data = Team.objects.create(organization=org, slug="data", name="Data")
        inventory_services.grant_account(AwsAccount.objects.get(account_id="111111111111"), data)
        assert evaluation.evaluate_organization(org)["mode"] == "full"
        assert evaluation.evaluate_organization(org)["mode"] == "incremental"
        assert evaluation.evaluate_organization(org, force=True)["mode"] == "full"
        EvaluatedResource.objects.all().delete()  # what a crash does to the unlogged ledger
        assert evaluation.evaluate_organization(org)["mode"] == "full"
    modes = [e.data["mode"] for e in events(org, "policy.evaluate")]
    assert modes == ["full", "incremental", "incremental", "incremental", "full", "incremental",
                     "full", "full"]  # fmt: skip


@pytest.fixture
def finish_scan(django_capture_on_commit_callbacks, celery_eager):
    """runner.finish_scan as it runs for real: the scan's transaction commits, then policies
    hears of it and its task evaluates (eager Celery here)."""

    def finish(scan):
        with django_capture_on_commit_callbacks(execute=True):
            return runner.finish_scan(scan, Actor.system("scanner"))

    return finish


def test_after_a_scan_only_touched_resources_are_evaluated(org, estate, finish_scan):

    resources, _ = estate
    now = timezone.now()
    with tenant_scope(org):
        rule = services.create_rule(org, OWNER, active=False)
        services.update_rule(rule, active=True)
        Finding.objects.all().delete()
        scan = ScanRun.objects.create(organization=org, started_by="test", status="running")
        # Changed: acme-0 lost its Owner. Deleted: acme-1. Untouched: acme-2 (fails, but the
        # scan did not touch it). New: one resource first seen by this scan.
        retag(resources[0], {})
        TagEvent.objects.create(organization=org, resource=resources[0], scan=scan,
                                seen_at=now, kind="changed")  # fmt: skip
        Resource.objects.filter(pk=resources[1].pk).update(deleted_at=now)
        TagEvent.objects.create(organization=org, resource=resources[1], scan=scan,
                                seen_at=now, kind="deleted")  # fmt: skip
        [new] = make_resources(org, "111111111111", [{"Contact": "x"}])
        Resource.objects.filter(pk=new.pk).update(first_scan=scan, arn="arn:new", name="new")
    finish_scan(scan)
    got = findings(org)
    assert set(got) == {"acme-0", "new"}
    [event] = events(org, "policy.evaluate")
    assert event.data["trigger"] == "scan" and event.data["scan"] == scan.pk
    assert event.data["failing"] == 2 and event.data["new"] == 2


def test_a_deleted_resource_resolves_its_findings_after_a_scan(org, estate, finish_scan):

    resources, _ = estate
    with tenant_scope(org):
        services.create_rule(org, OWNER)
        scan = ScanRun.objects.create(organization=org, started_by="test", status="running")
        Resource.objects.filter(pk=resources[1].pk).update(deleted_at=timezone.now())
        TagEvent.objects.create(organization=org, resource=resources[1], scan=scan,
                                seen_at=timezone.now(), kind="deleted")  # fmt: skip
    finish_scan(scan)
    got = findings(org)
    assert got["acme-1"].status == "resolved" and got["acme-2"].status == "open"


def test_no_rules_no_evaluation_event_after_a_scan(org, estate, finish_scan):

    with tenant_scope(org):
        scan = ScanRun.objects.create(organization=org, started_by="test", status="running")
    finish_scan(scan)
    assert events(org, "policy.evaluate") == []


def test_findings_api_and_page_are_team_scoped_with_fixes(org, estate, admin, viewer, team):

    make_resources(org, "999999999999", [{}])  # an account no team of the viewer holds
    with tenant_scope(org):
        services.create_rule(org, OWNER)
    TeamMembershipFactory(organization=org, team=team, user=viewer)
    listed = client_for(admin).get(f"/api/v1/o/{org.slug}/policies/findings/").json()
    assert listed["count"] == 3
    mine = client_for(viewer).get(f"/api/v1/o/{org.slug}/policies/findings/").json()["results"]
    assert {f["account_id"] for f in mine} == {"111111111111"}
    fixes = {f["kind"]: f["suggested_fix"] for f in mine}
    assert fixes == {"missing": "add tag Owner", "wrong_case": "rename tag owner_email to Owner"}
    page = client_for(viewer).get(f"/o/{org.slug}/findings/").content.decode()
    assert "rename tag owner_email to Owner" in page and "999999999999" not in page
    csv = b"".join(client_for(viewer).get(f"/o/{org.slug}/findings/?format=csv")).decode()
    assert csv.count("\n") == 3 and "999999999999" not in csv
    filtered = (
        client_for(admin)
        .get(f"/api/v1/o/{org.slug}/policies/findings/", {"account": "999999999999"})
        .json()
    )
    assert filtered["count"] == 1
    kinds = (
        client_for(admin)
        .get(f"/api/v1/o/{org.slug}/policies/findings/", {"key": "owner_email", "team": "platform"})
        .json()
    )
    assert [f["kind"] for f in kinds["results"]] == ["wrong_case"]


def test_the_evaluate_button_and_api_are_for_admins(org, estate, admin, viewer):
    with tenant_scope(org):
        services.create_rule(org, OWNER)
    assert client_for(viewer).post(f"/o/{org.slug}/policies/evaluate/").status_code == 403
    response = client_for(admin).post(f"/o/{org.slug}/policies/evaluate/")
    assert response.status_code == 302
    api = client_for(admin).post(f"/api/v1/o/{org.slug}/policies/evaluate/").json()
    assert api["failing"] == 2 and api["trigger"] == "api"
    assert (api["mode"], api["resources_evaluated"]) == ("incremental", 0)  # nothing changed
    forced = client_for(admin).post(f"/api/v1/o/{org.slug}/policies/evaluate/?force=true")
    assert (forced.json()["mode"], forced.json()["failing"]) == ("full", 2)
    page = client_for(admin).post(f"/o/{org.slug}/policies/evaluate/", {"force": "1"}, follow=True)
    assert "every rule over every resource" in page.content.decode()
    assert len(events(org, "policy.evaluate")) == 4


def test_counts_per_rule_follow_team_scoping(org, estate, admin, viewer, team):

    make_resources(org, "999999999999", [{}])
    with tenant_scope(org):
        services.create_rule(org, OWNER)
    TeamMembershipFactory(organization=org, team=team, user=viewer)
    url = f"/api/v1/o/{org.slug}/policies/findings/counts/"
    assert client_for(admin).get(url).json() == [
        {"rule": "owner-required", "open": 3, "exempted": 0, "resolved": 0}
    ]
    assert client_for(viewer).get(url).json()[0]["open"] == 2
    page = client_for(viewer).get(f"/o/{org.slug}/findings/").content.decode()
    assert '<a href="?rule=owner-required">owner-required</a></td><td>2</td>' in page
