"""A full evaluation over many resources runs in two parts at once, on two connections
(policies.evaluation._evaluate_in_parts): exactly the findings and ledger rows of the
one-statement path, in the organization's tenant scope, and never over rows the other
connection cannot see."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Team
from inventory import services as inventory_services
from inventory.models import AwsAccount, Resource
from policies import evaluation
from policies.engine import sql
from policies.engine.spec import builtin_rules, parse_rules, rule_to_dict
from policies.models import Finding, FindingEvent, Rule
from tagsense.tenancy.db import tenant_scope

# Connections of their own see only what is committed.
pytestmark = pytest.mark.django_db(transaction=True)

# The library's rules, a glob, a conditional by type and one scoped by team (the accounts'
# join of violations_sql).
EXTRA = parse_rules(
    """
version: 1
rules:
  - id: project-format
    title: Project is <application>-<year>
    check: allowed_values
    key: Project
    values: {glob: "*-20??"}
  - id: prod-instance-backup
    title: Production instances name their BackupPolicy
    check: required_key
    key: BackupPolicy
    aliases: [backup, Backup]
    scope: {resource_types: ["ec2:instance"]}
    when: {key: Environment, values: [prod]}
  - id: platform-cost-center
    title: The platform team's resources carry a cost center
    check: required_key
    key: CostCenter
    scope: {teams: [platform]}
"""
)
TYPES = ("ec2:instance", "ec2:volume", "s3:bucket", "dynamodb:table", "rds:db")
GOOD = {
    "Name": "app",
    "Owner": "ann@example.com",
    "CostCenter": "CC-1234",
    "Environment": "prod",
    "Application": "checkout",
    "Project": "checkout-2024",
    "DataClassification": "internal",
    "BackupPolicy": "daily",
}


def tags_of(i: int) -> dict[str, str]:
    """Every hygiene class of the policy benchmark, by index."""
    tags = dict(GOOD, Name=f"app-{i}")
    kind = i % 7
    if kind == 1:  # case variants
        tags["owner"] = tags.pop("Owner")
        tags["environment"] = tags.pop("Environment")
    elif kind == 2:  # misspelt values
        tags.update(Environment="prdo", CostCenter=f"CC{i}", Project=f"checkout{i}")
    elif kind == 3:
        return {}
    elif kind == 4:
        tags["db_password"] = "x"
    elif kind == 5:
        tags.update({f"label{k}": str(k) for k in range(45)})
    elif kind == 6:
        del tags["BackupPolicy"]
        tags["Backup"] = "weekly"
    return tags


def make_estate(organization, count: int = 60) -> None:
    """`count` resources over two accounts and five types; the first account held by a team
    `platform`. Names by index, so two organizations' estates can be compared."""
    now = timezone.now()
    with tenant_scope(organization):
        team = Team.objects.create(organization=organization, name="Platform", slug="platform")
        accounts = [
            AwsAccount.objects.create(organization=organization, account_id=number)
            for number in ("111111111111", "222222222222")
        ]
        inventory_services.grant_account(accounts[0], team)
        for i in range(count):
            Resource.objects.create(
                organization=organization,
                account=accounts[i % 2],
                arn=f"arn:aws:test:eu-west-1:{organization.slug}:r/{i}",
                region="eu-west-1",
                resource_type=TYPES[i % len(TYPES)],
                resource_id=f"r-{i}",
                name=f"r-{i}",
                tags=tags_of(i),
                fingerprint="x",
                first_seen=now,
                last_written=now,
            )
        for spec in [*builtin_rules(), *EXTRA]:
            Rule.objects.create(organization=organization, rule_id=spec.id, spec=rule_to_dict(spec))


def state(organization) -> tuple[set, list]:
    """The organization's findings and ledger rows, by rule id and resource name (what two
    organizations with the same estate must share)."""
    with tenant_scope(organization):
        names = dict(Resource.objects.values_list("pk", "name"))
        slugs = dict(Rule.objects.values_list("pk", "rule_id"))
        accounts = dict(AwsAccount.objects.values_list("pk", "account_id"))
        findings = {
            (
                slugs[f.rule_id],
                names[f.resource_id],
                accounts[f.account_id],
                f.status,
                f.kind,
                f.found_key,
                f.severity,
                f.enforcement,
                f.owner,
                tuple(f.owner_teams),
                f.rule_version,
            )
            for f in Finding.objects.all()
        }
        ledger = sorted(
            (
                e.rule_slug,
                names[e.resource_id],
                accounts[e.account_id],
                e.event,
                e.from_status,
                e.to_status,
                e.open_delta,
                e.exempt_delta,
                e.kind,
                e.found_key or "",
                e.severity,
                e.rule_version,
            )
            for e in FindingEvent.objects.all()
        )
    return findings, ledger


@pytest.fixture
def parts(monkeypatch):
    """Every full run split (threshold 1); the parts each helper computed, and how it ended."""
    runs: list[tuple[tuple[int, int], BaseException | None]] = []
    run = evaluation._PartHelper.run

    def spy(helper):
        run(helper)
        runs.append((helper.parts, helper.error))

    monkeypatch.setattr(evaluation._PartHelper, "run", spy)
    monkeypatch.setattr(evaluation, "SPLIT_MIN_RESOURCES", 1)
    return runs


def one_statement(monkeypatch) -> None:
    monkeypatch.setattr(evaluation, "SPLIT_MIN_RESOURCES", 10**9)


def test_the_split_run_writes_the_findings_and_ledger_of_one_statement(
    org, other_org, parts, monkeypatch
):
    make_estate(org)
    make_estate(other_org)  # the same estate, in the other organization, present throughout
    with tenant_scope(org):
        split = evaluation.evaluate_organization(org)
    assert parts == [(list(evaluation.PARTS[1:]), None)]  # the helper computed all but one
    one_statement(monkeypatch)
    with tenant_scope(other_org):
        whole = evaluation.evaluate_organization(other_org)
    assert len(parts) == 1
    assert split["new"] == whole["new"] == split["failing"] == whole["failing"] > 60
    mine, theirs = state(org), state(other_org)
    assert mine == theirs
    assert len(mine[1]) == split["new"]  # one `opened` row per finding
    # Each part found violations: no part is empty.
    with tenant_scope(org):
        ids = set(Finding.objects.values_list("resource_id", flat=True))
    assert {part_of(pk) for pk in ids} == set(range(len(evaluation.PARTS)))


def part_of(pk: int) -> int:
    return next(i for i, (a, b, n) in enumerate(evaluation.PARTS) if a <= pk % n < b)


def test_a_forced_split_run_resolves_and_reopens_as_one_statement_does(
    org, other_org, parts, monkeypatch
):
    make_estate(org)
    make_estate(other_org)
    for organization, threshold in ((org, 1), (other_org, 10**9)):
        monkeypatch.setattr(evaluation, "SPLIT_MIN_RESOURCES", threshold)
        with tenant_scope(organization):
            evaluation.evaluate_organization(organization)
    for organization in (org, other_org):  # the same changes in both
        with tenant_scope(organization):
            Resource.objects.filter(name__in=["r-3", "r-10"]).update(tags=GOOD)  # fixed
            Resource.objects.filter(name__in=["r-0", "r-7"]).update(tags={})  # broken
            Resource.objects.filter(name="r-4").update(deleted_at=timezone.now())
            Rule.objects.filter(rule_id="project-format").update(active=False)
    monkeypatch.setattr(evaluation, "SPLIT_MIN_RESOURCES", 1)
    with tenant_scope(org):
        split = evaluation.evaluate_organization(org, force=True)
    one_statement(monkeypatch)
    with tenant_scope(other_org):
        whole = evaluation.evaluate_organization(other_org, force=True)
    assert [part for part, error in parts if error is None] == [list(evaluation.PARTS[1:])] * 2
    assert len(parts) == 2
    assert {k: split[k] for k in ("new", "resolved", "failing")} == {
        k: whole[k] for k in ("new", "resolved", "failing")
    }
    assert split["new"] and split["resolved"]
    mine, theirs = state(org), state(other_org)
    assert mine == theirs
    events = {row[3] for row in mine[1]}
    assert {"opened", "resolved", "resource_deleted", "rule_retired"} <= events


def test_a_transaction_that_wrote_resources_first_evaluates_them_on_its_own_connection(org, parts):
    make_estate(org, count=10)
    with tenant_scope(org):
        evaluation.evaluate_organization(org)
    assert len(parts) == 1
    with tenant_scope(org), transaction.atomic():
        # Uncommitted: a connection of its own would not see the new tags.
        Resource.objects.filter(name="r-0").update(tags={})
        result = evaluation.evaluate_organization(org, force=True)
        assert not Finding.objects.filter(resource__name="r-0", status="resolved").exists()
        missing = Finding.objects.filter(resource__name="r-0", kind="missing", status="open")
        assert missing.count() >= 5
    assert len(parts) == 1  # no helper: the violations were computed here
    assert result["new"] >= 5


def test_a_failing_part_fails_the_evaluation_and_writes_nothing(org, monkeypatch):
    make_estate(org, count=10)
    monkeypatch.setattr(evaluation, "SPLIT_MIN_RESOURCES", 1)

    monkeypatch.setattr(evaluation.sql, "violations_sql", _failing_for_part(sql.violations_sql))
    with pytest.raises(RuntimeError, match="the last part broke"), tenant_scope(org):
        evaluation.evaluate_organization(org)
    with tenant_scope(org):
        assert not Finding.objects.exists() and not FindingEvent.objects.exists()


def _failing_for_part(violations_sql):
    def failing(*args, part=None, **kwargs):
        if part == evaluation.PARTS[-1]:  # after the first parts were written
            raise RuntimeError("the last part broke")
        return violations_sql(*args, part=part, **kwargs)

    return failing


def test_the_parts_of_the_violations_are_the_whole(org, other_org):
    make_estate(org, count=40)
    make_estate(other_org, count=40)
    rules = list(enumerate([*builtin_rules(), *EXTRA]))

    def rows(**options):
        text, params = sql.violations_sql(rules, org.pk, **options)
        with connection.cursor() as cursor:
            cursor.execute(text, params)
            return cursor.fetchall()

    with tenant_scope(org):
        whole = rows()
        for division in (evaluation.PARTS, [(0, 1, 2), (1, 2, 2)], [(0, 1, 3), (1, 3, 3)]):
            parts = [rows(part=part) for part in division]
            assert sorted(row for part in parts for row in part) == sorted(whole)
            assert all(parts)
    assert len(whole) > 40
