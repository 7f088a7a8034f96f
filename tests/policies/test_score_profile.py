"""The scores from the resource profile (policies.scoring.scores.resource_profile) against a
straightforward computation in Python: the evaluator's own applies() per rule and resource, the
open findings, each resource's cost over the period. On an estate with rules scoped by type,
account, region, team, tag selector and condition, an inactive rule, open, resolved, exempted
and stale findings, a deleted resource and costs."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from inventory import services as inventory_services
from inventory.models import AwsAccount, Resource, ResourceCost
from policies import evaluation, services
from policies.engine.reference import ResourceView, applies
from policies.engine.spec import parse_rules
from policies.models import Finding, Framework, Rule, ScoreSnapshot
from policies.scoring import scores
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.factories import TeamFactory
from tests.policies.test_spend_scores import LAST_DAY, cost

pytestmark = pytest.mark.django_db

A, B, C = "111111111111", "222222222222", "333333333333"
RULES = """
version: 1
rules:
  - {id: owner-required, title: Owner, check: required_key, key: Owner, aliases: [owner_email]}
  - id: env-values
    title: Environment values
    check: allowed_values
    key: Environment
    values: {list: [prod, staging, dev]}
  - id: pci-data
    title: PCI data stores
    check: required_key
    key: PCIScope
    scope: {resource_types: [s3:bucket, "rds:*"], accounts: ["111111111111"]}
  - id: payments-cost
    title: Payments name a cost centre
    check: required_key
    key: CostCenter
    scope: {teams: [payments]}
  - id: prod-class
    title: Production is classified
    check: required_key
    key: DataClassification
    when: {key: Environment, values: [prod]}
  - id: eu-backup
    title: Managed EU resources name a backup policy
    check: required_key
    key: Backup
    scope: {regions: [eu-west-1], tag_selector: {key: Managed, values: ["true"]}}
  - {id: no-secrets, title: No secrets, check: prohibited_key, key: "*secret*"}
  - {id: retired, title: Retired, check: required_key, key: Retired}
  - id: prod-contact
    title: Production names a contact (the condition of prod-class)
    check: required_key
    key: Contact
    when: {key: Environment, values: [prod]}
  - id: bucket-class
    title: Buckets are classified
    check: required_key
    key: DataClassification
    scope: {resource_types: [s3:bucket]}
  - id: lambda-runtime
    title: Functions name a runtime (the condition of bucket-class, another type)
    check: required_key
    key: Runtime
    scope: {resource_types: [lambda:function]}
"""
FRAMEWORKS = {
    "Mixed": "M-1 | Owners and environments | owner-required env-values\n"
    "M-2 | Data | pci-data prod-class\n"
    "M-3 | Only a retired rule | retired\n"
    "M-4 | No rule |\n"
    "M-5 | Functions | lambda-runtime\n",
    "Teams": "T-1 | Team rules | payments-cost eu-backup no-secrets retired\n"
    "T-2 | Production contacts | prod-contact\n"
    "T-3 | Buckets | bucket-class\n",
}
# (account, type, region, tags); a resource counts once per team holding its account.
RESOURCES = [
    (A, "ec2:instance", "eu-west-1", {"Owner": "ana", "Environment": "prod"}),
    # Passes prod-class, fails prod-contact: the same condition, another rule's finding.
    (A, "ec2:instance", "eu-west-1", {"Owner": "ana", "Environment": "prod",
                                      "DataClassification": "internal", "CostCenter": "1"}),
    (A, "s3:bucket", "us-east-1", {"Owner": "bo", "PCIScope": "yes", "CostCenter": "2"}),
    (A, "s3:bucket", "eu-west-1", {"owner_email": "x", "Managed": "true", "Backup": "daily"}),
    (A, "rds:db", "eu-west-1", {"Environment": "qa", "Managed": "true"}),
    (A, "rds:cluster", "eu-west-1", {"Owner": "c", "Environment": "prod", "my_secret": "s"}),
    (B, "s3:bucket", "eu-west-1", {"Owner": "d"}),  # pci-data: another account
    (B, "ec2:instance", "eu-west-1", {"Owner": "d", "Environment": "dev", "Managed": "true"}),
    (B, "lambda:function", "us-east-1", {"Environment": "staging"}),
    (B, "ec2:volume", "eu-west-1", {}),
    (C, "ec2:instance", "eu-west-1", {"Owner": "e", "Environment": "prod"}),
    (C, "rds:db", "us-east-1", {"Owner": "f", "Environment": "dev", "Managed": "true"}),
    (C, "dynamodb:table", "eu-west-1", {"Owner": "g", "Environment": "dev", "Retired": "no"}),
]  # fmt: skip


def _resource(organization, account, index, resource_type, region, tags):
    now = timezone.now()
    return Resource.objects.create(
        organization=organization,
        account=account,
        arn=f"arn:aws:{resource_type}:{region}:{account.account_id}:r-{index}",
        region=region,
        resource_type=resource_type,
        resource_id=f"r-{index}",
        name=f"r-{index}",
        tags=tags,
        fingerprint="x",
        first_seen=now,
        last_written=now,
    )


@pytest.fixture
def estate(org):

    with tenant_scope(org, actor=Actor.system("test")):
        accounts = {
            aws_id: AwsAccount.objects.create(organization=org, account_id=aws_id)
            for aws_id in (A, B, C)
        }
        payments = TeamFactory(organization=org, name="Payments", slug="payments")
        platform = TeamFactory(organization=org, name="Platform", slug="platform")
        inventory_services.grant_account(accounts[A], payments)
        inventory_services.grant_account(accounts[A], platform)
        inventory_services.grant_account(accounts[B], platform)
        resources = [
            _resource(org, accounts[account], i, resource_type, region, dict(tags))
            for i, (account, resource_type, region, tags) in enumerate(RESOURCES)
        ]
        gone = _resource(org, accounts[A], 99, "ec2:instance", "eu-west-1", {})
        for spec in _specs():
            services.create_rule(org, spec)
        for name, controls in FRAMEWORKS.items():
            services.create_framework(org, name, controls)
        evaluation.evaluate_organization(org)

        # Resolved: the rds:db of account A is given a valid Environment and re-evaluated.
        resources[4].tags = {**resources[4].tags, "Environment": "dev"}
        resources[4].save()
        evaluation.evaluate_organization(org)
        # Exempted: the lambda's missing Owner.
        exempted = Finding.objects.filter(
            rule__rule_id="owner-required", resource=resources[8], status=Finding.OPEN
        ).update(status=Finding.EXEMPTED)
        # Stale: the first instance stops being prod without a new evaluation; its prod-class
        # finding stays open but the rule no longer applies to it.
        Resource.objects.filter(pk=resources[0].pk).update(
            tags={"Owner": "ana", "Environment": "dev"}
        )
        # A rule made inactive keeps nothing in scope; a deleted resource counts nowhere.
        services.update_rule(Rule.objects.get(rule_id="retired"), active=False)
        Resource.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
        assert exempted == 1
        assert Finding.objects.filter(status=Finding.RESOLVED).exists()
        assert Finding.objects.filter(
            resource=resources[0], rule__rule_id="prod-class", status=Finding.OPEN
        ).exists()
        assert Finding.objects.filter(resource=gone, status=Finding.OPEN).exists()

    cost(org, resources[0], "30")
    cost(org, resources[0], "12.5", LAST_DAY - timedelta(days=3))
    cost(org, resources[2], "40")
    cost(org, resources[4], "-3")  # a credit weighs nothing, never less
    cost(org, resources[6], "7.25")
    cost(org, resources[8], "100")
    cost(org, resources[10], "900", LAST_DAY - timedelta(days=30))  # before the period
    cost(org, resources[11], "5")
    return {"accounts": accounts, "teams": {A: {"payments", "platform"}, B: {"platform"}}}


def _specs():

    return parse_rules(RULES)


class Oracle:
    """Every score computed resource by resource with the evaluator's applies()."""

    def __init__(self, organization, teams, account_pks=None, spend=True):
        self.period = scores.cost_period(organization, account_pks) if spend else None
        self.rules = [r for r in Rule.objects.for_org(organization) if r.active]
        live = Resource.objects.for_org(organization).filter(deleted_at=None)
        if account_pks is not None:
            live = live.filter(account_id__in=account_pks)
        open_ = set(
            Finding.objects.for_org(organization)
            .filter(status=Finding.OPEN)
            .values_list("rule_id", "resource_id")
        )
        costs: dict[int, Decimal] = defaultdict(Decimal)
        if self.period is not None:
            for row in ResourceCost.objects.for_org(organization).filter(
                currency=self.period.currency,
                period_start__gte=self.period.start,
                period_end__lte=self.period.end,
                resource__isnull=False,
            ):
                costs[row.resource_id] += row.amount
        self.entries = []
        for resource in live.select_related("account"):
            aws_id = resource.account.account_id
            view = ResourceView(
                resource_type=resource.resource_type,
                tags=resource.tags,
                account_id=aws_id,
                region=resource.region,
                teams=frozenset(teams.get(aws_id, ())),
            )
            applying = {r.pk for r in self.rules if applies(r.rule_spec, view)}
            failing = {pk for pk in applying if (pk, resource.pk) in open_}
            amount = max(costs[resource.pk], Decimal(0)) if resource.pk in costs else None
            keys = {
                "team": sorted(teams.get(aws_id, ())),
                "account": [aws_id],
                "resource_type": [resource.resource_type],
            }
            self.entries.append((applying, failing, amount, keys))

    def score(self, pks, entries=None) -> scores.Score:
        pks = set(pks) & {r.pk for r in self.rules}
        in_scope = [e for e in (self.entries if entries is None else entries) if e[0] & pks]
        compliant = [e for e in in_scope if not e[1] & pks]
        spend = None
        if self.period is not None:
            spend = scores.Spend(
                sum((e[2] for e in in_scope if e[2] is not None), Decimal(0)),
                sum((e[2] for e in compliant if e[2] is not None), Decimal(0)),
                sum(1 for e in in_scope if e[2] is not None),
            )
        return scores.Score(len(in_scope), len(compliant), spend)

    def dimension(self, by) -> dict[str, scores.Score]:
        every = {r.pk for r in self.rules}
        keys = sorted({k for e in self.entries if e[0] for k in e[3][by]})
        result = {k: self.score(every, [e for e in self.entries if k in e[3][by]]) for k in keys}
        return {k: s for k, s in result.items() if s.in_scope}

    def rule_pks(self, organization, rule_ids) -> list[int]:
        by_id = {r.rule_id: r.pk for r in Rule.objects.for_org(organization)}
        return [by_id[r] for r in rule_ids if r in by_id]


def _expected_card(organization, oracle):

    frameworks, controls = {}, {}
    for framework in Framework.objects.for_org(organization):
        cited = []
        for control in framework.controls.all():
            pks = oracle.rule_pks(organization, control.rule_ids)
            controls[scores.control_key(framework.slug, control.control_id)] = oracle.score(pks)
            cited += pks
        frameworks[framework.slug] = oracle.score(cited)
    return oracle.score([r.pk for r in oracle.rules]), frameworks, controls


@pytest.mark.parametrize("accounts", [None, [A], [B, C]])
def test_scores_equal_a_resource_by_resource_computation(org, estate, accounts):
    with tenant_scope(org):
        account_pks = None if accounts is None else [estate["accounts"][a].pk for a in accounts]
        oracle = Oracle(org, estate["teams"], account_pks)
        assert oracle.period is not None
        card = scores.scorecard(org, account_pks)
        organization, frameworks, controls = _expected_card(org, oracle)
        assert card.organization == organization
        assert card.frameworks == frameworks
        assert card.controls == controls
        for by in scores.DIMENSIONS:
            assert scores.dimension(org, by, account_pks) == oracle.dimension(by), by

    if accounts is None:  # the estate exercises what it claims to
        assert 0 < organization.compliant < organization.in_scope
        assert organization.spend.costed == 6 and organization.spend.in_scope == Decimal("194.75")
        assert controls["mixed/M-3"] == scores.Score(0, 0, scores.NO_SPEND)
        assert controls["mixed/M-4"] == scores.Score(0, 0, scores.NO_SPEND)
        assert set(oracle.dimension("team")) == {"payments", "platform"}


def test_the_snapshot_rows_equal_the_computation_and_one_profile_serves_them(org, estate):

    with tenant_scope(org):
        oracle = Oracle(org, estate["teams"], spend=False)
        organization, frameworks, controls = _expected_card(org, oracle)
        with CaptureQueriesContext(connection) as queries:
            rows = scores._snapshot_rows(org)
    got = {(kind, key): score for kind, key, _, score in rows}
    assert got[(ScoreSnapshot.ORGANIZATION, "")] == organization
    assert {k: s for (kind, k), s in got.items() if kind == ScoreSnapshot.FRAMEWORK} == frameworks
    assert {k: s for (kind, k), s in got.items() if kind == ScoreSnapshot.CONTROL} == controls
    assert {k: s for (kind, k), s in got.items() if kind == ScoreSnapshot.TEAM} == (
        oracle.dimension("team")
    )
    assert {k: s for (kind, k), s in got.items() if kind == ScoreSnapshot.ACCOUNT} == (
        oracle.dimension("account")
    )
    profiles = [q for q in queries.captured_queries if "policies_finding" in q["sql"]]
    assert len(profiles) == 1


def test_a_profile_of_other_accounts_is_refused(org, estate):
    with tenant_scope(org):
        profile = scores.resource_profile(org, [estate["accounts"][A].pk])
        with pytest.raises(ValueError, match="other accounts"):
            scores.scorecard(org, profile=profile)
        assert scores.dimension(org, "account", [estate["accounts"][A].pk], profile=profile)
