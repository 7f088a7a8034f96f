# ruff: noqa: S608 - only compiled fragments are interpolated; values are parameters
"""Compliance scores, set-based in SQL, and their daily snapshots.

Definitions (docs/policies.md, "Scores"):

- a rule *applies* to a live resource when the resource is in the rule's scope and meets its
  `when` (exactly the resources the evaluator checks);
- the resources *in scope* of a set of rules are the live resources to which at least one
  active rule of the set applies;
- such a resource is *compliant* when none of those rules has an open finding on it. An
  exempted finding is not open: exempted counts as compliant (the exemption is the accepted
  risk), and so does a resolved one;
- score = compliant / in scope, as a percentage; no resource in scope gives no score;
- when the accounts in scope have cost data (inventory.costs), each score also carries its
  *spend*: the same resources weighted by each one's cost over the cost period (the latest 14
  days with data), so "X % of spend compliant" and the untagged dollars (the cost of the
  resources failing a rule). Without cost data there is no spend, never a zero.

The rule sets: the organization, a team, an AWS account and a resource type use every active
rule of the organization; a framework the active rules its controls cite; a control its own.
Scores shown to a member are computed over the accounts they may see
(inventory.access.visible_accounts); snapshots are organization-wide and read back by
members who see every account (editors and viewers read their teams' and accounts' rows only).

Assumes the caller runs inside the organization's tenant scope and that findings are up to
date (policies.evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.utils import timezone

from . import sql
from .models import Control, Framework, Rule, ScoreSnapshot

if TYPE_CHECKING:
    from accounts.models import Membership, Organization
    from inventory.costs import CostPeriod

ORG_KEY = ""
TREND_DAYS = (30, 90)


@dataclass(frozen=True)
class Spend:
    """What the resources of a score cost over the cost period: those in scope, the compliant
    ones, and how many of those in scope have a cost at all. Amounts in the period's currency;
    a resource's cost never counts below zero (credits)."""

    in_scope: Decimal
    compliant: Decimal
    costed: int

    @property
    def failing(self) -> Decimal:
        """Untagged dollars: the cost of the resources in scope failing at least one rule."""
        return self.in_scope - self.compliant

    @property
    def percent(self) -> float | None:
        if self.in_scope <= 0:
            return None
        return round(float(100 * self.compliant / self.in_scope), 1)


NO_SPEND = Spend(Decimal(0), Decimal(0), 0)


@dataclass(frozen=True)
class Score:
    in_scope: int
    compliant: int
    spend: Spend | None = None  # None: no cost data for the accounts in scope

    @property
    def failing(self) -> int:
        return self.in_scope - self.compliant

    @property
    def percent(self) -> float | None:
        return round(100 * self.compliant / self.in_scope, 1) if self.in_scope else None


EMPTY = Score(0, 0)


def _empty(period: CostPeriod | None) -> Score:
    return EMPTY if period is None else Score(0, 0, NO_SPEND)


def _cost_cte(organization_id: int, period: CostPeriod | None) -> tuple[str, list[Any]]:
    """A CTE body: (resource_id, amount), each resource's cost over the period (none without
    one), never below zero."""
    if period is None:
        return "SELECT NULL::bigint AS resource_id, NULL::numeric AS amount WHERE false", []
    return (
        "SELECT rc.resource_id, GREATEST(sum(rc.amount), 0) AS amount "
        "FROM inventory_resourcecost rc WHERE rc.organization_id = %s "
        "AND rc.resource_id IS NOT NULL AND rc.currency = %s "
        "AND rc.period_start >= %s AND rc.period_end <= %s GROUP BY rc.resource_id",
        [organization_id, period.currency, period.start, period.end],
    )


def _aggregates(alias: str) -> str:
    """Resources in scope, compliant, with a cost, their cost, the compliant ones' cost."""
    return (
        f"count(*), count(*) FILTER (WHERE NOT {alias}.failing), "
        f"count(*) FILTER (WHERE {alias}.costed), coalesce(sum({alias}.amount), 0), "
        f"coalesce(sum({alias}.amount) FILTER (WHERE NOT {alias}.failing), 0)"
    )


def _row_score(row, period: CostPeriod | None) -> Score:
    spend = None if period is None else Spend(Decimal(row[3]), Decimal(row[4]), row[2])
    return Score(row[0], row[1], spend)


def cost_period(organization: Organization, account_pks: list[int] | None) -> CostPeriod | None:
    """The cost period of the scores over `account_pks` (None: every account); None when those
    accounts have no cost data."""
    from inventory.costs import latest_period

    return latest_period(organization, account_pks)


def control_key(framework_slug: str, control_id: str) -> str:
    return f"{framework_slug}/{control_id}"


def _pairs(organization_id: int, rules: list[Rule], account_pks) -> tuple[str, list[Any]]:
    """A CTE body: (rule_pk, resource_id, account_id, resource_type, failing) for every
    (active rule, resource it applies to)."""
    applies, params = sql.applies_sql(
        [(rule.pk, rule.rule_spec) for rule in rules if rule.active],
        organization_id,
        account_pks=account_pks,
    )
    text = (
        f"SELECT a.rule_pk, a.resource_id, a.account_id, a.resource_type, EXISTS ("
        "SELECT 1 FROM policies_finding f WHERE f.organization_id = %s "
        "AND f.rule_id = a.rule_pk AND f.resource_id = a.resource_id AND f.status = 'open'"
        f") AS failing FROM ({applies}) a"
    )
    return text, [organization_id, *params]


def _group_scores(
    organization_id: int,
    rules: list[Rule],
    groups: dict[str, list[int]],
    account_pks,
    period: CostPeriod | None = None,
) -> dict[str, Score]:
    """Score per named rule set (with its spend over `period`, if any), in one statement."""
    if not any(groups.values()):  # no active rule: nothing is in scope (and no SQL to run)
        return {key: _empty(period) for key in groups}
    keys = [k for k, pks in groups.items() for _ in pks]
    pks = [pk for _, group in groups.items() for pk in group]
    pairs, params = _pairs(organization_id, rules, account_pks)
    costs, cost_params = _cost_cte(organization_id, period)
    statement = (
        f"WITH p AS ({pairs}), g AS (SELECT * FROM unnest(%s::text[], %s::bigint[]) "
        "AS g(gkey, rule_pk)), x AS (SELECT g.gkey, p.resource_id, bool_or(p.failing) AS failing "
        f"FROM p JOIN g ON g.rule_pk = p.rule_pk GROUP BY g.gkey, p.resource_id), c AS ({costs}), "
        "xc AS (SELECT x.*, c.resource_id IS NOT NULL AS costed, c.amount FROM x "
        "LEFT JOIN c ON c.resource_id = x.resource_id) "
        f"SELECT xc.gkey, {_aggregates('xc')} FROM xc GROUP BY xc.gkey"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [*params, keys, pks, *cost_params])
        found = {row[0]: _row_score(row[1:], period) for row in cursor.fetchall()}
    return {key: found.get(key, _empty(period)) for key in groups}


DIMENSIONS = ("team", "account", "resource_type")


def _dimension_scores(
    organization_id: int,
    rules: list[Rule],
    by: str,
    account_pks,
    period: CostPeriod | None = None,
) -> dict[str, Score]:
    """Score per team (slug), account (12-digit id) or resource type, over every active
    rule, with its spend over `period` if any. A resource counts for each team holding its
    account."""
    if not any(rule.active for rule in rules):
        return {}
    pairs, params = _pairs(organization_id, rules, account_pks)
    costs, cost_params = _cost_cte(organization_id, period)
    per_resource = (
        f"WITH p AS ({pairs}), x AS (SELECT p.resource_id, p.account_id, p.resource_type, "
        f"bool_or(p.failing) AS failing FROM p GROUP BY 1, 2, 3), c AS ({costs}), "
        "xc AS (SELECT x.*, c.resource_id IS NOT NULL AS costed, c.amount FROM x "
        "LEFT JOIN c ON c.resource_id = x.resource_id) "
    )
    params = [*params, *cost_params]
    if by == "resource_type":
        tail = f"SELECT xc.resource_type, {_aggregates('xc')} FROM xc GROUP BY 1"
    elif by == "account":
        tail = (
            f"SELECT a.account_id, {_aggregates('xc')} FROM xc "
            "JOIN inventory_awsaccount a ON a.id = xc.account_id GROUP BY 1"
        )
    elif by == "team":
        teams = sql.teams_of_account_sql()
        tail = (
            f"SELECT s.slug, {_aggregates('r')} FROM "
            "(SELECT xc.*, %s::bigint AS organization_id FROM xc) r "
            f"CROSS JOIN LATERAL ({teams}) s GROUP BY 1"
        )
        params = [*params, organization_id]
    else:
        raise ValueError(by)
    with connection.cursor() as cursor:
        cursor.execute(per_resource + tail, params)
        return {row[0]: _row_score(row[1:], period) for row in sorted(cursor.fetchall())}


def _frameworks(organization: Organization) -> list[Framework]:
    return list(
        Framework.objects.for_org(organization).prefetch_related("controls").order_by("name")
    )


def account_scope(membership: Membership | None) -> list[int] | None:
    """The account primary keys a member's scores cover; None for the whole organization."""
    if membership is None:
        return None
    from accounts.roles import sees_all_accounts
    from inventory.access import visible_accounts

    if sees_all_accounts(membership.role) or membership.user_id is None:
        return None
    return list(visible_accounts(membership).values_list("pk", flat=True))


@dataclass
class Scorecard:
    organization: Score
    frameworks: dict[str, Score]
    controls: dict[str, Score]  # by control_key
    rules_by_id: dict[str, Rule]
    period: CostPeriod | None = None  # the cost period of the spends; None: no cost data


def scorecard(
    organization: Organization, account_pks: list[int] | None = None, *, spend: bool = True
) -> Scorecard:
    """The organization's, each framework's and each control's score over `account_pks` (None:
    every account), in one statement; with their spend when those accounts have cost data
    (and `spend`)."""
    rules = list(Rule.objects.for_org(organization))
    by_id = {rule.rule_id: rule for rule in rules}
    groups: dict[str, list[int]] = {"org:": [r.pk for r in rules if r.active]}
    for framework in _frameworks(organization):
        cited: set[int] = set()
        for control in framework.controls.all():
            pks = [by_id[r].pk for r in control.rule_ids if r in by_id and by_id[r].active]
            groups["ctl:" + control_key(framework.slug, control.control_id)] = pks
            cited.update(pks)
        groups["fw:" + framework.slug] = sorted(cited)
    period = cost_period(organization, account_pks) if spend else None
    scores = _group_scores(organization.pk, rules, groups, account_pks, period)
    return Scorecard(
        organization=scores["org:"],
        frameworks={k[3:]: v for k, v in scores.items() if k.startswith("fw:")},
        controls={k[4:]: v for k, v in scores.items() if k.startswith("ctl:")},
        rules_by_id=by_id,
        period=period,
    )


def dimension(
    organization: Organization,
    by: str,
    account_pks: list[int] | None = None,
    *,
    spend: bool = True,
):
    """{team slug | account id | resource type: Score} over every active rule, with their spend
    when the accounts in scope have cost data (and `spend`)."""
    if by not in DIMENSIONS:
        raise ValueError(by)
    rules = list(Rule.objects.for_org(organization))
    period = cost_period(organization, account_pks) if spend else None
    return _dimension_scores(organization.pk, rules, by, account_pks, period)


def control_status(control: Control, score: Score, rules_by_id: dict[str, Rule]) -> str:
    """pass, fail (an active rule of the control has an open finding on a resource in scope) or
    no_rules (the control cites no active rule the organization holds)."""
    if not any(r in rules_by_id and rules_by_id[r].active for r in control.rule_ids):
        return "no_rules"
    return "fail" if score.failing else "pass"


def failing_findings(membership: Membership, control: Control):
    """The open findings behind a failing control, among the accounts the member may see."""
    from .models import Finding

    return (
        Finding.objects.restrict(membership)
        .open()
        .filter(rule__rule_id__in=control.rule_ids, rule__active=True)
        .select_related("rule", "resource", "account")
        .order_by("resource__arn", "rule__rule_id")
    )


# Snapshots ------------------------------------------------------------------------------------


def _snapshot_rows(organization: Organization) -> list[tuple[str, str, str, Score]]:
    card = scorecard(organization, spend=False)
    rows = [(ScoreSnapshot.ORGANIZATION, ORG_KEY, organization.name, card.organization)]
    for framework in _frameworks(organization):
        rows.append(
            (
                ScoreSnapshot.FRAMEWORK,
                framework.slug,
                framework.name,
                card.frameworks.get(framework.slug, EMPTY),
            )  # fmt: skip
        )
        for control in framework.controls.all():
            key = control_key(framework.slug, control.control_id)
            rows.append(
                (ScoreSnapshot.CONTROL, key, control.title[:300], card.controls.get(key, EMPTY))
            )
    for slug, score in dimension(organization, "team", spend=False).items():
        rows.append((ScoreSnapshot.TEAM, slug, slug, score))
    for account_id, score in dimension(organization, "account", spend=False).items():
        rows.append((ScoreSnapshot.ACCOUNT, account_id, account_id, score))
    return rows


@transaction.atomic
def take_snapshot(organization: Organization, day: date | None = None) -> int:
    """Record today's (UTC) organization-wide scores, replacing the rows of the same day.
    Returns how many rows were written. Callers record the audit event
    (policy.score_snapshot, or the evaluation's own)."""
    now = timezone.now()
    day = day or now.date()
    rows = _snapshot_rows(organization)
    ScoreSnapshot.objects.for_org(organization).filter(day=day).delete()
    ScoreSnapshot.objects.bulk_create(
        ScoreSnapshot(
            organization=organization,
            day=day,
            kind=kind,
            key=key,
            label=label,
            in_scope=s.in_scope,
            compliant=s.compliant,
            taken_at=now,
        )  # fmt: skip
        for kind, key, label, s in rows
    )
    return len(rows)


@transaction.atomic
def record_snapshot(organization: Organization, *, trigger: str) -> int:
    """take_snapshot() with its policy.score_snapshot event (the beat task, the command)."""
    import audit

    count = take_snapshot(organization)
    audit.record("policy.score_snapshot", data={"trigger": trigger, "rows": count})
    return count


def readable_snapshots(membership: Membership):
    """Snapshots this member may read: every row for members who see every account; for
    editors and viewers limited to their teams, only the rows of their teams and of the
    accounts they see (organization-, framework- and control-wide figures include accounts
    they may not see)."""
    from django.db.models import Q

    from accounts.models import Team

    queryset = ScoreSnapshot.objects.restrict(membership)
    if account_scope(membership) is None:
        return queryset
    from inventory.access import visible_accounts

    teams = Team.objects.restrict(membership).filter(memberships__user=membership.user_id)
    accounts = visible_accounts(membership).values_list("account_id", flat=True)
    return queryset.filter(
        Q(kind=ScoreSnapshot.TEAM, key__in=list(teams.values_list("slug", flat=True)))
        | Q(kind=ScoreSnapshot.ACCOUNT, key__in=list(accounts))
    )


def trend(membership: Membership, kind: str, key: str = ORG_KEY, days: int = 30):
    """The snapshots of one scope over the last `days` days (oldest first)."""
    since = timezone.now().date() - timedelta(days=days - 1)
    return list(
        readable_snapshots(membership).filter(kind=kind, key=key, day__gte=since).order_by("day")
    )


def dashboard_summary(membership: Membership, accounts=None) -> dict:
    """The dashboard's compliance block: the overall score and each framework's, over the
    accounts the member may see (narrowed to `accounts`, a queryset, when the dashboard's team
    scope asks), their spend and the cost period when those accounts have cost data, and
    90-day trend charts: the organization's for members who see every account, each of their
    teams' for editors and viewers."""
    from . import charts

    account_pks = account_scope(membership)
    if accounts is not None:
        narrowed = list(accounts.values_list("pk", flat=True))
        account_pks = narrowed if account_pks is None else sorted(set(account_pks) & set(narrowed))
    card = scorecard(membership.organization, account_pks)
    frameworks = [
        {"framework": f, "score": card.frameworks.get(f.slug, EMPTY)}
        for f in Framework.objects.restrict(membership)
    ]
    trends = []
    if account_scope(membership) is None:
        points = trend(membership, ScoreSnapshot.ORGANIZATION, ORG_KEY, 90)
        trends.append(("Organization", charts.snapshot_chart(points, label="Organization",
                                                             days=90)))  # fmt: skip
    else:
        keys = readable_snapshots(membership).filter(kind=ScoreSnapshot.TEAM)
        for key in sorted(set(keys.values_list("key", flat=True))):
            points = trend(membership, ScoreSnapshot.TEAM, key, 90)
            trends.append((f"Team {key}", charts.snapshot_chart(points, label=key, days=90)))
    return {"compliance": card.organization, "framework_scores": frameworks,
            "compliance_trends": trends, "cost_period": card.period}  # fmt: skip
