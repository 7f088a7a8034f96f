"""The Python engine (policies.pyengine, what the embedded SQLite default runs) writes the same
findings as the set-based SQL: one story of an estate played once under each engine, in two
organizations, and every finding compared (rule, resource, status, kind, found key, severity,
enforcement, owner, owner teams, and which timestamps are set or moved)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from inventory import services as inventory_services
from inventory.models import AwsAccount, Resource
from policies import evaluation, pyengine, services
from policies.models import Finding, Rule
from policies.spec import parse_rules
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.factories import TeamFactory
from tests.policies.test_score_profile import RESOURCES, RULES, _resource

pytestmark = pytest.mark.django_db

MORE_RULES = """
  - {id: few-tags, title: At most three tags, check: max_tags, max: 3, severity: high}
  - id: env-exact
    title: Environment spelt Environment
    check: required_key
    key: Environment
    aliases: [env]
    enforcement: enforced
"""


def _story(organization) -> dict:
    """Rules, an evaluation, then changes and evaluations; returns the findings by (rule id,
    resource name) after each step."""
    steps = {}
    with tenant_scope(organization, actor=Actor.system("test")):
        accounts = {
            aws_id: AwsAccount.objects.create(organization=organization, account_id=aws_id)
            for aws_id in {account for account, *_ in RESOURCES}
        }
        team = TeamFactory(organization=organization, name="Payments", slug="payments")
        inventory_services.grant_account(accounts["111111111111"], team)
        resources = [
            _resource(organization, accounts[account], i, resource_type, region, dict(tags))
            for i, (account, resource_type, region, tags) in enumerate(RESOURCES)
        ]
        resources[9].tags = {"env": "prod", "A": "1", "B": "2", "C": "3", "Owner": "x" * 300}
        resources[9].save()
        for spec in parse_rules(RULES + MORE_RULES):
            services.create_rule(organization, spec)
        evaluation.evaluate_organization(organization)
        steps["first"] = _findings(organization)

        # Resolved, then failing again (reopened); an exempted finding changes kind and stays
        # exempted; a resource is deleted; a rule is deactivated, another made stricter.
        resources[4].tags = {**resources[4].tags, "Environment": "dev"}
        resources[4].save()
        Finding.objects.filter(resource=resources[9], rule__rule_id="env-exact").update(
            status=Finding.EXEMPTED
        )
        resources[9].tags = {"owner": "y", "A": "1", "B": "2", "C": "3", "D": "4"}
        resources[9].save()
        Resource.objects.filter(pk=resources[10].pk).update(deleted_at=timezone.now())
        services.update_rule(Rule.objects.get(rule_id="retired"), active=False)
        evaluation.evaluate_organization(organization, force=True)
        steps["changed"] = _findings(organization)

        resources[4].tags = {**resources[4].tags, "Environment": "qa"}
        resources[4].save()
        inventory_services.grant_account(accounts["222222222222"], team)
        evaluation.evaluate_organization(organization, force=True)
        steps["reopened"] = _findings(organization)
    return steps


def _findings(organization) -> dict:
    return {
        (f.rule.rule_id, f.resource.name): (
            f.status,
            f.kind,
            f.found_key,
            f.severity,
            f.enforcement,
            f.owner,
            f.owner_teams,
            f.first_seen == f.last_seen,
            f.resolved_at is not None,
        )  # fmt: skip
        for f in Finding.objects.for_org(organization).select_related("rule", "resource")
    }


def test_the_python_engine_writes_the_sql_engines_findings(org, other_org, monkeypatch):
    monkeypatch.setattr(pyengine, "in_use", lambda: False)
    by_sql = _story(org)
    monkeypatch.setattr(pyengine, "in_use", lambda: True)
    by_python = _story(other_org)

    assert by_python == by_sql
    # The story exercises what it claims to.
    first, changed, reopened = by_sql["first"], by_sql["changed"], by_sql["reopened"]
    kinds = {v[1] for v in first.values()}
    assert kinds == {"missing", "bad_value", "wrong_case", "prohibited", "too_many_tags"}
    assert first[("few-tags", "r-9")][5] == "x" * 256  # the Owner tag, cut to 256
    assert first[("env-exact", "r-9")][:3] == ("open", "wrong_case", "env")
    assert changed[("env-exact", "r-9")][:3] == ("exempted", "missing", None)
    assert changed[("owner-required", "r-9")][:3] == ("open", "wrong_case", "owner")
    assert changed[("env-values", "r-4")][0] == "resolved"
    assert reopened[("env-values", "r-4")][0] == "open"
    assert changed[("retired", "r-0")][0] == "resolved"
    assert {v[0] for k, v in changed.items() if k[1] == "r-10"} == {"resolved"}
    assert reopened[("few-tags", "r-9")][6] == ["payments"]  # the account granted later
