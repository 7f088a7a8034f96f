"""Frameworks and compliance scores: enabling a built-in framework, control pass/fail with the
resources behind it, scores per team for a viewer, daily snapshots and their trends."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from accounts.models import Membership
from audit.models import AuditEvent
from inventory import services as inventory_services
from inventory.models import AwsAccount
from policies import evaluation, exemptions, services
from policies.engine.spec import SpecError
from policies.models import Control, Finding, Framework, Rule, RuleVersion, ScoreSnapshot
from policies.scoring import scores
from policies.scoring.charts import line_chart
from policies.tasks import snapshot_scores
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.factories import TeamMembershipFactory
from tests.policies.test_rules import make_resources, retag

pytestmark = pytest.mark.django_db

SOC2_RULES = {
    "owner-required", "environment-required", "application-required",
    "data-classification-data-stores", "no-secret-tags", "environment-values",
    "data-classification-values", "prod-data-classification", "backup-policy-data-stores",
    "backup-policy-values",
}  # fmt: skip


def enable(org, framework_id="soc2"):
    with tenant_scope(org, actor=Actor.system("test")):
        return services.enable_framework(org, framework_id)


def test_enabling_soc2_installs_its_rules_versioned_and_audited(org):
    with tenant_scope(org):
        services.create_rule(org, services.parse_one(
            "version: 1\nrules:\n  - id: owner-required\n    title: Mine\n"
            "    check: required_key\n    key: owner\n"
        ))  # fmt: skip
    framework = enable(org)
    with tenant_scope(org):
        rules = {r.rule_id: r for r in Rule.objects.for_org(org)}
        assert set(rules) == SOC2_RULES
        assert rules["owner-required"].spec["key"] == "owner"  # the organization's own kept
        assert RuleVersion.objects.filter(rule_slug="environment-values").count() == 1
        assert [c.control_id for c in framework.controls.all()] == ["CC6.1", "CC8.1", "C1.1",
                                                                      "A1.2"]  # fmt: skip
        [event] = AuditEvent.objects.filter(action="policy.framework_enable")
        assert "owner-required" not in event.data["rules_installed"]
        assert "environment-values" in event.data["rules_installed"]


def test_a_control_fails_with_its_resources_and_passes_once_they_comply(org, admin):
    good, bad = make_resources(org, tags_list=[{"Environment": "prod"}, {"Environment": "qa"}])
    framework = enable(org)
    client = client_for(admin)
    url = f"/o/{org.slug}/policies/frameworks/soc2/"
    page = client.get(url).content.decode()
    cc81 = page.split('id="control-')[2]  # CC6.1, then CC8.1
    assert "CC8.1" in cc81 and "FAIL" in cc81
    assert f"/inventory/resources/{bad.pk}/" in cc81
    assert f"/inventory/resources/{good.pk}/" not in cc81
    with tenant_scope(org):
        card = scores.scorecard(org)
        assert card.controls["soc2/CC8.1"] == scores.Score(in_scope=2, compliant=1)
        retag(bad, {"Environment": "test"})
        evaluation.evaluate_organization(org)
        card = scores.scorecard(org)
        control = Control.objects.get(framework=framework, control_id="CC8.1")
        assert card.controls["soc2/CC8.1"] == scores.Score(2, 2)
        assert scores.control_status(control, card.controls["soc2/CC8.1"], card.rules_by_id) == (
            "pass"
        )
    cc81 = client.get(url).content.decode().split('id="control-')[2]
    assert "FAIL" not in cc81 and "pass" in cc81


def test_an_exempted_finding_counts_as_compliant(org, editor, admin):

    make_resources(org, tags_list=[{"Environment": "qa"}])
    enable(org)
    with tenant_scope(org):
        assert scores.scorecard(org).controls["soc2/CC8.1"] == scores.Score(1, 0)

        editor_m = Membership.objects.get(user=editor)
        admin_m = Membership.objects.get(user=admin)
    with tenant_scope(org, actor=Actor.for_user(editor)):
        exemption = exemptions.request(
            editor_m,
            Finding.objects.for_org(org).filter(rule__rule_id="environment-values"),
            justification="migration",
            expires_at=timezone.now() + timedelta(days=5),
            filters={},
        )
    with tenant_scope(org, actor=Actor.for_user(admin)):
        exemptions.approve(exemption, admin_m)
        assert scores.scorecard(org).controls["soc2/CC8.1"] == scores.Score(1, 1)


def test_a_viewer_scores_only_count_their_teams_accounts(org, viewer, team):

    make_resources(org, "111111111111", [{"Environment": "prod"}])
    make_resources(org, "222222222222", [{"Environment": "qa"}, {}])
    enable(org)
    TeamMembershipFactory(organization=org, team=team, user=viewer)
    with tenant_scope(org):
        inventory_services.grant_account(AwsAccount.objects.get(account_id="111111111111"), team)
        membership = Membership.objects.get(user=viewer)
        mine = scores.scorecard(org, scores.account_scope(membership))
        everyone = scores.scorecard(org)
        assert mine.controls["soc2/CC8.1"] == scores.Score(1, 1)
        assert everyone.controls["soc2/CC8.1"] == scores.Score(3, 1)
        assert scores.dimension(org, "team") == {team.slug: scores.Score(1, 0)}  # app. missing
        by_account = scores.dimension(org, "account", scores.account_scope(membership))
        assert set(by_account) == {"111111111111"}
    body = client_for(viewer).get(f"/api/v1/o/{org.slug}/policies/scores/").json()
    [soc2] = [f for f in body["frameworks"] if f["slug"] == "soc2"]
    assert {c["control_id"]: c["in_scope"] for c in soc2["controls"]}["CC8.1"] == 1
    teams = client_for(viewer).get(f"/api/v1/o/{org.slug}/policies/scores/?by=account").json()
    assert [row["key"] for row in teams["rows"]] == ["111111111111"]


def test_snapshots_are_written_daily_and_the_trend_endpoint_returns_them(org, admin, settings):

    make_resources(org, tags_list=[{"Environment": "prod"}, {}])
    enable(org)

    assert PeriodicTask.objects.get(task="policies.snapshot_scores").interval.period == "days"
    assert snapshot_scores() >= 1
    with tenant_scope(org):
        rows = {(s.kind, s.key): s for s in ScoreSnapshot.objects.for_org(org)}
        assert rows[("framework", "soc2")].in_scope == 2
        assert ("control", "soc2/CC8.1") in rows
        assert AuditEvent.objects.filter(action="policy.score_snapshot").count() == 1
        yesterday = timezone.now().date() - timedelta(days=1)
        scores.take_snapshot(org, day=yesterday)
        snapshot_scores()  # the same day again replaces, never duplicates
        assert ScoreSnapshot.objects.filter(kind="framework", key="soc2").count() == 2
    body = (
        client_for(admin)
        .get(f"/api/v1/o/{org.slug}/policies/trends/?kind=framework&key=soc2&days=30")
        .json()
    )
    assert [p["day"] for p in body["points"]] == [
        yesterday.isoformat(), timezone.now().date().isoformat()
    ]  # fmt: skip
    assert body["points"][-1]["score"] == 0.0  # neither resource names an application
    page = client_for(admin).get(f"/o/{org.slug}/policies/frameworks/").content.decode()
    assert "<polyline" in page


def test_another_organizations_frameworks_and_scores_are_absent(org, other_org, outsider):
    enable(org)
    with tenant_scope(org):
        scores.take_snapshot(org)
    client = client_for(outsider)
    assert client.get(f"/o/{org.slug}/policies/frameworks/soc2/").status_code == 404
    assert client.get(f"/o/{other_org.slug}/policies/frameworks/soc2/").status_code == 404
    listed = client.get(f"/api/v1/o/{other_org.slug}/policies/frameworks/").json()
    assert listed["results"] == [] if "results" in listed else listed == []
    trend = client.get(f"/api/v1/o/{other_org.slug}/policies/trends/?kind=framework&key=soc2")
    assert trend.json()["points"] == []


def test_custom_framework_and_rule_mapping(org, admin):
    make_resources(org, tags_list=[{}])
    enable(org)
    client = client_for(admin)
    response = client.post(
        f"/o/{org.slug}/policies/frameworks/new/",
        {"name": "Internal <b>baseline</b>", "controls": "IB-1 | Owners named | owner-required\n"},
    )
    assert response.status_code == 302
    with tenant_scope(org):
        framework = Framework.objects.get(builtin=False)
        control = framework.controls.get()
        assert control.rule_ids == ["owner-required"]
        with pytest.raises(SpecError):
            services.map_control_rules(control, ["no-such-rule"])
    page = client.get(f"/o/{org.slug}/policies/frameworks/").content.decode()
    assert "Internal &lt;b&gt;baseline&lt;/b&gt;" in page and "<b>baseline" not in page
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # no inline script


def test_chart_labels_are_escaped():

    today = timezone.now().date()
    svg = str(line_chart([(today, 50.0)], label="<script>x</script>"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<polyline" in svg


def test_the_dashboard_shows_the_overall_score_its_trend_and_each_framework(org, admin):
    make_resources(org, tags_list=[{"Environment": "prod"}, {}])
    enable(org)
    with tenant_scope(org):
        scores.take_snapshot(org)
    page = client_for(admin).get(f"/o/{org.slug}/?teams=all").content.decode()
    section = page.split('class="card compliance"')[1].split("</section>")[0]
    assert "SOC 2 Trust Services Criteria" in section
    assert "0/2 resources compliant" in section  # neither names an application
    assert "<polyline" in section


def test_an_organization_without_active_rules_has_no_score_and_runs_no_scoring_sql(org):

    make_resources(org, tags_list=[{}])
    with tenant_scope(org), CaptureQueriesContext(connection) as queries:
        card = scores.scorecard(org)
        assert scores.dimension(org, "team") == {}
    assert card.organization == scores.EMPTY and card.organization.percent is None
    assert not any("unnest" in q["sql"] for q in queries.captured_queries)


def test_a_viewer_reads_only_their_teams_and_accounts_snapshots(org, viewer, team):

    make_resources(org, "111111111111", [{"Environment": "prod"}])
    make_resources(org, "222222222222", [{}])
    enable(org)
    TeamMembershipFactory(organization=org, team=team, user=viewer)
    with tenant_scope(org):
        inventory_services.grant_account(AwsAccount.objects.get(account_id="111111111111"), team)
        scores.take_snapshot(org)
    client = client_for(viewer)
    base = f"/api/v1/o/{org.slug}/policies/trends/"
    assert client.get(f"{base}?kind=organization").json()["points"] == []
    assert client.get(f"{base}?kind=framework&key=soc2").json()["points"] == []
    assert client.get(f"{base}?kind=account&key=222222222222").json()["points"] == []
    [mine] = client.get(f"{base}?kind=team&key={team.slug}").json()["points"]
    assert mine["in_scope"] == 1
    assert len(client.get(f"{base}?kind=account&key=111111111111").json()["points"]) == 1
