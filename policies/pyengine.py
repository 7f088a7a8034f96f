"""The evaluation engine in Python, for databases other than PostgreSQL.

The set-based engine (policies.sql, policies.evaluation, policies.scores) is PostgreSQL SQL.
The embedded default (`make run`: SQLite) holds a demo estate of a few thousand resources, and
its frameworks, findings, scores and trends must work too. Here the same steps run in Python
over the ORM, with the reference evaluator (policies.evaluate), whose agreement with the SQL
a hypothesis test shows: which active rules apply to each live resource, which of those fail
(the violations, with the columns of sql.violations_sql), the findings brought up to date with
the same statuses and timestamps, and the grouped profile behind the scores.
tests/policies/test_pyengine.py runs both engines on one estate and compares what they write.

It reads every live resource in scope into memory: meant for the embedded default, not for an
estate of millions (run those on PostgreSQL).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.utils import timezone

from inventory.models import Resource

from .evaluate import ResourceView, applies, evaluate
from .models import Finding, Rule
from .spec import RuleSpec

if TYPE_CHECKING:
    from accounts.models import Organization
    from inventory.costs import CostPeriod

OWNER_TAG, OWNER_LENGTH = "Owner", 256  # as the SQL: left(coalesce(tags ->> 'Owner', ''), 256)


def in_use() -> bool:
    """Whether evaluations and scores run here rather than in the set-based SQL: on any
    database but PostgreSQL."""
    return connection.vendor != "postgresql"


def _live(
    organization: Organization,
    *,
    resource_ids: Iterable[int] | None = None,
    account_pks: Sequence[int] | None = None,
) -> Iterator[tuple[int, int, ResourceView]]:
    """(resource id, account pk, its ResourceView) of each live resource, by resource id."""
    from inventory.services import teams_by_account

    accounts = teams_by_account(organization)
    queryset = Resource.objects.for_org(organization).filter(deleted_at__isnull=True)
    if resource_ids is not None:
        queryset = queryset.filter(pk__in=list(resource_ids))
    if account_pks is not None:
        queryset = queryset.filter(account_id__in=list(account_pks))
    rows = queryset.order_by("pk").values_list(
        "pk", "account_id", "resource_type", "region", "tags"
    )
    for pk, account, resource_type, region, tags in rows.iterator(chunk_size=2000):
        aws_id, teams = accounts.get(account, ("", []))
        view = ResourceView(resource_type, tags or {}, aws_id, region, frozenset(teams))
        yield pk, account, view


def violations(
    rules: Iterable[tuple[Any, RuleSpec]],
    organization: Organization,
    *,
    resource_ids: Iterable[int] | None = None,
    account_pks: Sequence[int] | None = None,
) -> list[tuple[Any, int, str, str | None, int, str]]:
    """sql.violations_sql's rows, in Python: (tag, resource id, kind, found key, account pk,
    owner) of every violation of the rules (each tagged with the caller's identifier) among the
    organization's live resources (only `resource_ids`, only those of `account_pks`)."""
    rules = list(rules)
    found = []
    if not rules:
        return found
    for pk, account, view in _live(
        organization, resource_ids=resource_ids, account_pks=account_pks
    ):
        owner = None
        for tag, rule in rules:
            for violation in evaluate(rule, view):
                if owner is None:
                    owner = str(view.tags.get(OWNER_TAG, ""))[:OWNER_LENGTH]
                found.append((tag, pk, violation.kind, violation.found_key, account, owner))
    return found


def count_and_sample(
    rule: RuleSpec, organization: Organization, limit: int, *, account_pks: Sequence[int]
) -> tuple[int, list[tuple[int, str, str | None]]]:
    """sql.count_and_sample in Python: how many resources the rule flags and the first
    `limit` (by resource id) with the kind and the found key."""
    rows = violations([(None, rule)], organization, account_pks=account_pks)
    return len(rows), [(pk, kind, found) for _, pk, kind, found, _, _ in rows[:limit]]


@transaction.atomic
def evaluate_rules(
    organization: Organization, rules: Sequence[Rule], *, resource_ids: Iterable[int] | None = None
) -> dict[str, int]:
    """evaluation.evaluate_rules in Python: the rules' violations over the live resources (only
    `resource_ids`), and their findings brought up to date as the SQL does. New ones open; a
    resolved one failing again reopens with a new first_seen; the others keep their status
    (exempted stays exempted) and take the present account, rule version, kind, found key,
    severity, enforcement, owner and teams (written only when one differs); the rules' findings
    no longer failing (among `resource_ids`) are resolved."""
    from inventory.services import teams_by_account

    now = timezone.now()
    resource_ids = None if resource_ids is None else set(resource_ids)
    by_pk = {rule.pk: rule for rule in rules}
    active = [(rule.pk, rule.rule_spec) for rule in rules if rule.active]
    found = violations(active, organization, resource_ids=resource_ids)
    teams = {pk: sorted(slugs) for pk, (_, slugs) in teams_by_account(organization).items()}
    existing = Finding.objects.for_org(organization).filter(rule_id__in=list(by_pk))
    if resource_ids is not None:
        existing = existing.filter(resource_id__in=list(resource_ids))
    present = {(f.rule_id, f.resource_id): f for f in existing}
    new, changed, failing = [], [], set()
    fields = ("account_id", "rule_version", "kind", "found_key", "severity", "enforcement",
              "owner", "owner_teams")  # fmt: skip
    for rule_pk, resource_pk, kind, found_key, account, owner in found:
        rule = by_pk[rule_pk]
        failing.add((rule_pk, resource_pk))
        values = {
            "account_id": account,
            "rule_version": rule.version,
            "kind": kind,
            "found_key": found_key,
            "severity": rule.spec.get("severity", "medium"),
            "enforcement": rule.spec.get("enforcement", "report"),
            "owner": owner,
            "owner_teams": teams.get(account, []),
        }
        finding = present.get((rule_pk, resource_pk))
        if finding is None:
            new.append(Finding(organization=organization, rule_id=rule_pk,
                               resource_id=resource_pk, status=Finding.OPEN, first_seen=now,
                               last_seen=now, resolved_at=None, **values))  # fmt: skip
            continue
        reopened = finding.status == Finding.RESOLVED
        if not (reopened or finding.resolved_at is not None) and all(
            getattr(finding, name) == value for name, value in values.items()
        ):
            continue
        for name, value in values.items():
            setattr(finding, name, value)
        finding.last_seen, finding.resolved_at = now, None
        if reopened:
            finding.status, finding.first_seen = Finding.OPEN, now
        changed.append(finding)
    resolved = [
        f for key, f in present.items() if key not in failing and f.status != Finding.RESOLVED
    ]
    for finding in resolved:
        finding.status, finding.resolved_at = Finding.RESOLVED, now
    Finding.objects.bulk_create(new, batch_size=500)
    Finding.objects.bulk_update(
        changed, [*fields, "last_seen", "first_seen", "status", "resolved_at"], batch_size=500
    )
    Finding.objects.bulk_update(resolved, ["status", "resolved_at"], batch_size=500)
    return {"failing": len(found), "new": len(new), "resolved": len(resolved)}


def profile_rows(
    organization: Organization,
    active: Sequence[Rule],
    account_pks: Sequence[int] | None,
    period: CostPeriod | None,
) -> list[tuple[int, str, int, int, int, int, Decimal]]:
    """scores.resource_profile's rows in Python: (account pk, resource type, bits of the
    `active` rules that apply, bits of those with an open finding, resources, resources with a
    cost, their cost), for the live resources to which at least one rule applies."""
    specs = [rule.rule_spec for rule in active]
    bit = {rule.pk: 1 << i for i, rule in enumerate(active)}
    failing: defaultdict[int, int] = defaultdict(int)
    open_findings = Finding.objects.for_org(organization).open().filter(rule_id__in=list(bit))
    for resource_pk, rule_pk in open_findings.values_list("resource_id", "rule_id"):
        failing[resource_pk] |= bit[rule_pk]
    costs = _costs(organization, period) if period is not None else {}
    groups: dict[tuple[int, str, int, int], list] = {}
    for pk, account, view in _live(organization, account_pks=account_pks):
        applying = sum(1 << i for i, spec in enumerate(specs) if applies(spec, view))
        if not applying:
            continue
        key = (account, view.resource_type, applying, failing[pk] & applying)
        group = groups.setdefault(key, [0, 0, Decimal(0)])
        group[0] += 1
        if pk in costs:
            group[1] += 1
            group[2] += costs[pk]
    return [(*key, count, costed, amount) for key, (count, costed, amount) in groups.items()]


def _costs(organization: Organization, period: CostPeriod) -> dict[int, Decimal]:
    """Each resource's cost over the period, never below zero (scores._cost_cte in Python)."""
    from django.db.models import Sum

    from inventory.models import ResourceCost

    rows = (
        ResourceCost.objects.for_org(organization)
        .filter(resource__isnull=False, currency=period.currency)
        .filter(period_start__gte=period.start, period_end__lte=period.end)
        .values("resource_id")
        .annotate(total=Sum("amount"))
    )
    return {row["resource_id"]: max(row["total"], Decimal(0)) for row in rows}
