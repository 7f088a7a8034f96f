"""Spend-weighted scores: the same resources in scope and compliant as the counts, weighted by
what each cost over the cost period; shown on the dashboard, the framework pages and in the
scores API only when there is cost data; team scoping and other organizations' costs."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory import services as inventory_services
from inventory.models import AwsAccount, ResourceCost
from policies import evaluation, services
from policies.engine.spec import RuleSpec
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.factories import TeamMembershipFactory
from tests.policies.test_rules import make_resources

pytestmark = pytest.mark.django_db

LAST_DAY = date(2026, 11, 19)  # the latest day with cost data: the period is 11-06 .. 11-19
A, B = "111111111111", "222222222222"


def cost(organization, resource, amount, day=LAST_DAY, source=ResourceCost.COST_EXPLORER):
    with tenant_scope(organization):
        ResourceCost.objects.create(
            organization=organization,
            account_id=resource.account_id,
            resource_id=resource.pk,
            arn=resource.arn,
            cost_resource_id=resource.resource_id,
            service="Amazon Elastic Compute Cloud - Compute",
            period_start=day,
            period_end=day + timedelta(days=1),
            amount=Decimal(amount),
            source=source,
            imported_at=timezone.now(),
        )


def owner_rule_and_framework(organization):
    with tenant_scope(organization, actor=Actor.system("test")):
        services.create_rule(
            organization,
            RuleSpec(id="owner-required", title="Owner", check="required_key", key="Owner"),
        )
        services.create_framework(organization, "Baseline", "BL-1 | Owners | owner-required")
        evaluation.evaluate_organization(organization)


@pytest.fixture
def estate(org):
    """Account A: an owned instance ($60 in the period), an unowned one ($20 in the period and
    $1,000 before it), an unowned one without cost, an unowned one with only a $3 credit.
    Account B: an unowned instance ($100)."""
    owned, unowned, free, credited = make_resources(org, A, [{"Owner": "ana"}, {}, {}, {}])
    [other] = make_resources(org, B, [{}])
    cost(org, owned, "30", LAST_DAY)
    cost(org, owned, "30", LAST_DAY - timedelta(days=5))
    cost(org, unowned, "20", LAST_DAY - timedelta(days=1))
    cost(org, unowned, "1000", LAST_DAY - timedelta(days=20))  # before the period
    cost(org, credited, "-3", LAST_DAY)
    cost(org, other, "100", LAST_DAY)
    owner_rule_and_framework(org)
    return {"owned": owned, "unowned": unowned, "free": free, "other": other}


def api(client, org, query=""):
    response = client.get(f"/api/v1/o/{org.slug}/policies/scores/{query}")
    assert response.status_code == 200, response.content
    return response.json()


PERIOD = {
    "start": "2026-11-06",
    "end": "2026-11-20",
    "days": 14,
    "currency": "USD",
    "sources": ["cost_explorer"],
}
EVERYTHING = {
    "in_scope": "180.00",
    "compliant": "60.00",
    "failing": "120.00",
    "score": 33.3,
    "resources_with_cost": 4,
}
ACCOUNT_A = {
    "in_scope": "80.00",
    "compliant": "60.00",
    "failing": "20.00",
    "score": 75.0,
    "resources_with_cost": 3,
}


def test_the_scores_api_weights_each_resource_by_its_cost_over_the_period(org, admin, estate):
    body = api(client_for(admin), org)
    assert body["spend_period"] == PERIOD
    # 1 of 5 resources compliant by count, but $60 of $180 by spend; $120 untagged dollars.
    assert body["organization"]["score"] == 20.0
    assert body["organization"]["spend"] == EVERYTHING
    [baseline] = body["frameworks"]
    assert baseline["spend"] == EVERYTHING
    assert baseline["controls"][0]["spend"] == EVERYTHING

    by_account = api(client_for(admin), org, "?by=account")
    assert by_account["spend_period"] == PERIOD
    rows = {row["key"]: row["spend"] for row in by_account["rows"]}
    assert rows[A] == ACCOUNT_A
    assert rows[B] == {
        "in_scope": "100.00",
        "compliant": "0.00",
        "failing": "100.00",
        "score": 0.0,
        "resources_with_cost": 1,
    }
    by_type = api(client_for(admin), org, "?by=resource_type")["rows"]
    assert [(r["key"], r["spend"]["in_scope"]) for r in by_type] == [("ec2:instance", "180.00")]


def test_a_team_weighs_the_accounts_it_holds_and_a_viewer_sees_only_their_teams_spend(
    org, admin, viewer, team, estate
):

    TeamMembershipFactory(organization=org, team=team, user=viewer)
    with tenant_scope(org):
        inventory_services.grant_account(AwsAccount.objects.get(account_id=A), team)

    by_team = api(client_for(admin), org, "?by=team")["rows"]
    assert [(r["key"], r["spend"]) for r in by_team] == [(team.slug, ACCOUNT_A)]

    mine = api(client_for(viewer), org)
    assert mine["organization"]["spend"] == ACCOUNT_A
    assert mine["spend_period"] == PERIOD
    assert [r["key"] for r in api(client_for(viewer), org, "?by=account")["rows"]] == [A]

    page = client_for(viewer).get(f"/o/{org.slug}/").content.decode()
    assert "75.0 %</strong> of spend compliant" in page
    assert "$20.00 untagged dollars" in page
    assert "$100.00" not in page and "$120.00" not in page and "$180.00" not in page


def test_the_dashboard_and_framework_pages_show_the_spend_and_its_period(org, admin, estate):
    client = client_for(admin)
    dashboard = client.get(f"/o/{org.slug}/").content.decode()
    assert "Weighted by spend: <strong>33.3 %</strong> of spend compliant" in dashboard
    assert "$60.00 of $180.00" in dashboard
    assert "$120.00 untagged dollars" in dashboard
    assert "from 2026-11-06 to 2026-11-19 (14 days, USD)" in dashboard
    assert "resource-level costs from AWS Cost Explorer" in dashboard
    assert "demo data" not in dashboard
    frameworks = client.get(f"/o/{org.slug}/policies/frameworks/").content.decode()
    assert frameworks.count("<strong>33.3 %</strong> of spend compliant") == 2  # overall, card
    detail = client.get(f"/o/{org.slug}/policies/frameworks/baseline/").content.decode()
    assert detail.count("$120.00 untagged dollars") == 2  # the framework and its control


def test_thousands_are_grouped_on_the_pages(org, admin):
    [big] = make_resources(org, A, [{}])
    cost(org, big, "1234567.891")
    owner_rule_and_framework(org)
    page = client_for(admin).get(f"/o/{org.slug}/").content.decode()
    assert "$1,234,567.89 untagged dollars" in page
    assert "<strong>0.0 %</strong> of spend compliant" in page


def test_without_cost_data_nothing_pretends(org, admin):
    make_resources(org, A, [{"Owner": "ana"}, {}])
    owner_rule_and_framework(org)
    client = client_for(admin)
    body = api(client, org)
    assert body["organization"]["score"] == 50.0
    assert body["organization"]["spend"] is None
    assert body["frameworks"][0]["spend"] is None
    assert body["spend_period"] is None
    by_account = api(client, org, "?by=account")
    assert by_account["spend_period"] is None
    assert by_account["rows"][0]["spend"] is None
    for path in ("", "policies/frameworks/", "policies/frameworks/baseline/"):
        page = client.get(f"/o/{org.slug}/{path}").content.decode()
        assert "spend" not in page.lower(), path
        assert "untagged dollars" not in page, path


def test_no_spend_in_scope_says_so_instead_of_a_score(org, admin):
    """Cost data exists (a $0 day in account B), but nothing in account A cost anything."""
    make_resources(org, A, [{"Owner": "ana"}, {}])
    [elsewhere] = make_resources(org, B, [{"Owner": "bo"}])
    cost(org, elsewhere, "0")
    owner_rule_and_framework(org)
    body = api(client_for(admin), org, "?by=account")
    rows = {row["key"]: row["spend"] for row in body["rows"]}
    assert rows[A] == {
        "in_scope": "0.00",
        "compliant": "0.00",
        "failing": "0.00",
        "score": None,
        "resources_with_cost": 0,
    }
    page = client_for(admin).get(f"/o/{org.slug}/").content.decode()
    assert "no spend in scope" in page


def test_another_organizations_costs_never_count(org, other_org, admin, estate):
    """Even a row of another organization naming one of our resources, in a later period."""
    [theirs] = make_resources(other_org, A, [{}])
    cost(other_org, theirs, "5000", LAST_DAY + timedelta(days=10))
    with tenant_scope(other_org):
        ResourceCost.objects.create(
            organization=other_org,
            account_id=theirs.account_id,
            resource_id=estate["owned"].pk,  # ours
            cost_resource_id="i-forged",
            service="x",
            period_start=LAST_DAY,
            period_end=LAST_DAY + timedelta(days=1),
            amount=Decimal("7000"),
            source=ResourceCost.COST_EXPLORER,
            imported_at=timezone.now(),
        )
    body = api(client_for(admin), org)
    assert body["spend_period"] == PERIOD
    assert body["organization"]["spend"] == EVERYTHING


def test_demo_costs_are_labelled_as_demo_data(org, admin):
    owned, unowned = make_resources(org, A, [{"Owner": "ana"}, {}])
    cost(org, owned, "3", source=ResourceCost.DEMO)
    cost(org, unowned, "1", source=ResourceCost.DEMO)
    owner_rule_and_framework(org)
    body = api(client_for(admin), org)
    assert body["spend_period"]["sources"] == ["demo"]
    assert body["organization"]["spend"]["score"] == 75.0
    page = client_for(admin).get(f"/o/{org.slug}/").content.decode()
    assert "<strong>includes demo data, not measured</strong>" in page
    assert "AWS Cost Explorer" not in page
