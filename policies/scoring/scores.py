# ruff: noqa: S608 - only compiled fragments are interpolated; values are parameters
"""Compliance scores and their daily snapshots.

How: one statement profiles the live resources (resource_profile: for each, which active rules
apply and which of those have an open finding, grouped, with counts and costs); every score is
then a sum over the profile's few rows, so a page or a snapshot never runs a query per rule,
framework, team or account.

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

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Q

import audit
from accounts.models import Organization, Team
from accounts.roles import sees_all_accounts
from inventory.access import visible_accounts
from inventory.costs import latest_period
from inventory.services import teams_by_account
from tagsense import clock

from .. import audit_events
from ..engine import sql
from ..models import OPEN_FINDING_SQL, Control, Finding, Framework, Rule, ScoreSnapshot
from . import charts

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


def _cost_cte(organization_id: int, period: CostPeriod) -> tuple[str, list[Any]]:
    """A CTE body: (resource_id, amount), each resource's cost over the period, never below
    zero."""
    return (
        "SELECT rc.resource_id, GREATEST(sum(rc.amount), 0) AS amount "
        "FROM inventory_resourcecost rc WHERE rc.organization_id = %s "
        "AND rc.resource_id IS NOT NULL AND rc.currency = %s "
        "AND rc.period_start >= %s AND rc.period_end <= %s GROUP BY rc.resource_id",
        [organization_id, period.currency, period.start, period.end],
    )


def cost_period(organization: Organization, account_pks: list[int] | None) -> CostPeriod | None:
    """The cost period of the scores over `account_pks` (None: every account); None when those
    accounts have no cost data."""

    return latest_period(organization, account_pks)


def control_key(framework_slug: str, control_id: str) -> str:
    return f"{framework_slug}/{control_id}"


@dataclass
class Profile:
    """The live resources over `account_pks` (None: every account) grouped by everything a
    score tells apart. `rows` holds (account pk, resource type, applies, failing, resources,
    resources with a cost, their cost): bit i of `applies` is set when the active rule
    `active[i]` applies to those resources, bit i of `failing` when that rule also has an open
    finding on them. Costs are over `period` (none without one). `rules` are every rule of the
    organization."""

    organization_id: int
    rules: list[Rule]
    active: list[int]
    rows: list[tuple[int, str, int, int, int, int, Decimal]]
    account_pks: list[int] | None
    period: CostPeriod | None

    def mask(self, rule_pks) -> int:
        """The bits of those of `rule_pks` that are active."""
        wanted = set(rule_pks)
        return sum(1 << i for i, pk in enumerate(self.active) if pk in wanted)

    @cached_property
    def accounts(self) -> dict[int, tuple[str, list[str]]]:
        """Account pk: (12-digit id, slugs of the teams holding it)."""

        return teams_by_account(Organization(pk=self.organization_id))


def resource_profile(
    organization: Organization,
    account_pks: list[int] | None = None,
    *,
    period: CostPeriod | None = None,
    rules: list[Rule] | None = None,
) -> Profile:
    """The Profile of the organization's live resources over `account_pks`, in one statement:
    which active rules apply to each (sql.applies_flags_sql: the evaluator's scope and `when`)
    and which of those have an open finding on it, grouped, with their cost over `period`.
    `rules`: the organization's rules, when the caller has them."""
    rules = list(Rule.objects.for_org(organization)) if rules is None else rules
    active = sorted((rule for rule in rules if rule.active), key=lambda rule: rule.pk)
    profile = Profile(organization.pk, rules, [r.pk for r in active], [], account_pks, period)
    if not active:  # nothing is in scope (and no SQL to run)
        return profile
    specs = [rule.rule_spec for rule in active]
    live, live_params = sql.live_resources_sql(organization.pk, specs, account_pks=account_pks)
    applies, applies_params, flag_of = sql.applies_flags_sql(specs)
    costs, cost_params, cost_join, cost_columns = "", [], "", "0, 0::numeric"
    if period is not None:
        body, cost_params = _cost_cte(organization.pk, period)
        costs, cost_join = f", cost AS ({body})", "LEFT JOIN cost ON cost.resource_id = x.id"
        cost_columns = "count(cost.resource_id), coalesce(sum(cost.amount), 0)"
    # f: each resource's open findings of the active rules (open as of now: OPEN_FINDING_SQL).
    # Its input sorted by (resource, rule) gives each array in rule order without a sort per
    # resource (an ORDER BY in array_agg); the order only merges groups: the scores do not
    # depend on it.
    statement = (
        "WITH f AS MATERIALIZED (SELECT o.resource_id, array_agg(o.rule_id) AS failing FROM ("
        "SELECT f.resource_id, f.rule_id FROM policies_finding f WHERE f.organization_id = %s "
        f"AND {OPEN_FINDING_SQL} AND f.rule_id = ANY(%s) ORDER BY f.resource_id, f.rule_id) o "
        f"GROUP BY o.resource_id){costs} "
        f"SELECT x.account_id, x.resource_type, x.applies, x.failing, count(*), {cost_columns} "
        f"FROM (SELECT c.id, c.account_id, c.resource_type, {applies} AS applies, f.failing "
        f"FROM ({live}) c LEFT JOIN f ON f.resource_id = c.id) x {cost_join} "
        "GROUP BY 1, 2, 3, 4"
    )
    params = [
        organization.pk,
        organization.pk,
        clock.now(),
        profile.active,
        *cost_params,
        *applies_params,
        *live_params,
    ]
    bit = {pk: 1 << i for i, pk in enumerate(profile.active)}
    # No JIT: compiling the rules' conditions costs more than running them. Memory to sort the
    # findings and group a million rows without spilling to disk. No nested loop: the statement
    # joins all of the organization's resources to all their findings, and with statistics
    # that have not seen a new organization's rows yet (before autovacuum's ANALYZE) the planner
    # chose one: 2,000 resources took 6.4 s instead of 20 ms.
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        _settings(cursor, jit="off", work_mem="256MB", enable_nestloop="off"),
    ):
        cursor.execute(statement, params)
        found = cursor.fetchall()
    for account, resource_type, flags, failing, count, costed, amount in found:
        applying = sum(
            1 << i for i, flag in enumerate(flag_of) if flag is None or flags[flag] == "1"
        )
        if applying:
            failing = sum(bit[pk] for pk in failing or ()) & applying
            profile.rows.append((account, resource_type, applying, failing, count, costed, amount))
    return profile


@contextmanager
def _settings(cursor, **values: str):
    """PostgreSQL settings for the statements of the block, then the transaction's own again
    (on an error, the caller's savepoint rollback restores them)."""
    names = list(values)
    cursor.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names)
    previous = cursor.fetchone()
    assign = "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(names))
    cursor.execute(assign, [x for name in names for x in (name, values[name])])
    yield
    cursor.execute(assign, [x for pair in zip(names, previous, strict=True) for x in pair])


class _Tally:
    """Resources in scope, compliant ones, those with a cost, their cost, the compliant ones'."""

    __slots__ = ("in_scope", "compliant", "costed", "amount", "compliant_amount")

    def __init__(self) -> None:
        self.in_scope = self.compliant = self.costed = 0
        self.amount = self.compliant_amount = Decimal(0)

    def add(self, count: int, costed: int, amount: Decimal, compliant: bool) -> None:
        self.in_scope += count
        self.costed += costed
        self.amount += amount
        if compliant:
            self.compliant += count
            self.compliant_amount += amount

    def score(self, period: CostPeriod | None) -> Score:
        spend = None if period is None else Spend(self.amount, self.compliant_amount, self.costed)
        return Score(self.in_scope, self.compliant, spend)


def _group_scores(profile: Profile, groups: dict[str, list[int]]) -> dict[str, Score]:
    """Score per named rule set (rule pks), with its spend over the profile's period, if any."""
    totals: dict[tuple[int, int], list] = {}  # (applies, failing): [count, costed, amount]
    for _, _, applying, failing, count, costed, amount in profile.rows:
        total = totals.setdefault((applying, failing), [0, 0, Decimal(0)])
        total[0] += count
        total[1] += costed
        total[2] += amount
    scores = {}
    for key, pks in groups.items():
        mask, tally = profile.mask(pks), _Tally()
        for (applying, failing), (count, costed, amount) in totals.items():
            if applying & mask:
                tally.add(count, costed, amount, not failing & mask)
        scores[key] = tally.score(profile.period)
    return scores


DIMENSIONS = ("team", "account", "resource_type")


def _dimension_scores(profile: Profile, by: str) -> dict[str, Score]:
    """Score per team (slug), account (12-digit id) or resource type, over every active
    rule, with its spend over the profile's period if any. A resource counts for each team
    holding its account."""
    tallies: dict[str, _Tally] = {}
    for account, resource_type, _, failing, count, costed, amount in profile.rows:
        if by == "resource_type":
            keys = [resource_type]
        else:
            aws_id, teams = profile.accounts.get(account, (None, []))
            keys = teams if by == "team" else [aws_id] if aws_id else []
        for key in keys:
            tallies.setdefault(key, _Tally()).add(count, costed, amount, not failing)
    return {key: tallies[key].score(profile.period) for key in sorted(tallies)}


def _frameworks(organization: Organization) -> list[Framework]:
    return list(
        Framework.objects.for_org(organization).prefetch_related("controls").order_by("name")
    )


def account_scope(membership: Membership | None) -> list[int] | None:
    """The account primary keys a member's scores cover; None for the whole organization."""
    if membership is None:
        return None

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


def _given(profile: Profile | None, organization: Organization, account_pks) -> Profile | None:
    if profile is not None and (
        profile.organization_id != organization.pk or profile.account_pks != account_pks
    ):
        raise ValueError("the profile is of another organization or other accounts")
    return profile


def scorecard(
    organization: Organization,
    account_pks: list[int] | None = None,
    *,
    spend: bool = True,
    profile: Profile | None = None,
) -> Scorecard:
    """The organization's, each framework's and each control's score over `account_pks` (None:
    every account), from one statement; with their spend when those accounts have cost data
    (and `spend`). `profile`: resource_profile() of the same accounts, when the caller has it
    (its period is then the spends')."""
    profile = _given(profile, organization, account_pks)
    rules = list(Rule.objects.for_org(organization)) if profile is None else profile.rules
    by_id = {rule.rule_id: rule for rule in rules}
    groups: dict[str, list[int]] = {"org:": [r.pk for r in rules if r.active]}
    for framework in _frameworks(organization):
        cited: set[int] = set()
        for control in framework.controls.all():
            pks = [by_id[r].pk for r in control.rule_ids if r in by_id and by_id[r].active]
            groups["ctl:" + control_key(framework.slug, control.control_id)] = pks
            cited.update(pks)
        groups["fw:" + framework.slug] = sorted(cited)
    if profile is None:
        period = cost_period(organization, account_pks) if spend else None
        profile = resource_profile(organization, account_pks, period=period, rules=rules)
    scores = _group_scores(profile, groups)
    return Scorecard(
        organization=scores["org:"],
        frameworks={k[3:]: v for k, v in scores.items() if k.startswith("fw:")},
        controls={k[4:]: v for k, v in scores.items() if k.startswith("ctl:")},
        rules_by_id=by_id,
        period=profile.period,
    )


def dimension(
    organization: Organization,
    by: str,
    account_pks: list[int] | None = None,
    *,
    spend: bool = True,
    profile: Profile | None = None,
):
    """{team slug | account id | resource type: Score} over every active rule, with their spend
    when the accounts in scope have cost data (and `spend`). `profile`: resource_profile() of
    the same accounts, when the caller has it (its period is then the spends')."""
    if by not in DIMENSIONS:
        raise ValueError(by)
    profile = _given(profile, organization, account_pks)
    if profile is None:
        period = cost_period(organization, account_pks) if spend else None
        profile = resource_profile(organization, account_pks, period=period)
    return _dimension_scores(profile, by)


def control_status(control: Control, score: Score, rules_by_id: dict[str, Rule]) -> str:
    """pass, fail (an active rule of the control has an open finding on a resource in scope) or
    no_rules (the control cites no active rule the organization holds)."""
    if not any(r in rules_by_id and rules_by_id[r].active for r in control.rule_ids):
        return "no_rules"
    return "fail" if score.failing else "pass"


def failing_findings(membership: Membership, control: Control):
    """The open findings behind a failing control, among the accounts the member may see."""

    findings = Finding.objects.restrict(membership).open()
    return (
        control_findings(findings, control)
        .select_related("rule", "resource", "account")
        .order_by("resource__arn", "rule__rule_id")
    )


def control_findings(findings, control: Control):
    """The findings (of any status) of the active rules that evidence `control`: the one
    definition the framework page, the findings filter (policies.services) and the API share."""
    return findings.filter(rule__rule_id__in=control.rule_ids, rule__active=True)


# Snapshots ------------------------------------------------------------------------------------


def _snapshot_rows(organization: Organization) -> list[tuple[str, str, str, Score]]:
    profile = resource_profile(organization)  # one statement for every row
    card = scorecard(organization, profile=profile)
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
    for slug, score in dimension(organization, "team", profile=profile).items():
        rows.append((ScoreSnapshot.TEAM, slug, slug, score))
    for account_id, score in dimension(organization, "account", profile=profile).items():
        rows.append((ScoreSnapshot.ACCOUNT, account_id, account_id, score))
    return rows


@transaction.atomic
def take_snapshot(organization: Organization, day: date | None = None) -> int:
    """Record today's (UTC) organization-wide scores, replacing the rows of the same day.
    Returns how many rows were written. Callers record the audit event
    (policy.score_snapshot, or the evaluation's own)."""
    now = clock.now()
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

    count = take_snapshot(organization)
    audit.record(audit_events.SCORE_SNAPSHOT, data={"trigger": trigger, "rows": count})
    return count


def readable_snapshots(membership: Membership):
    """Snapshots this member may read: every row for members who see every account; for
    editors and viewers limited to their teams, only the rows of their teams and of the
    accounts they see (organization-, framework- and control-wide figures include accounts
    they may not see)."""

    queryset = ScoreSnapshot.objects.restrict(membership)
    if account_scope(membership) is None:
        return queryset

    teams = Team.objects.restrict(membership).filter(memberships__user=membership.user_id)
    accounts = visible_accounts(membership).values_list("account_id", flat=True)
    return queryset.filter(
        Q(kind=ScoreSnapshot.TEAM, key__in=list(teams.values_list("slug", flat=True)))
        | Q(kind=ScoreSnapshot.ACCOUNT, key__in=list(accounts))
    )


def trend(membership: Membership, kind: str, key: str = ORG_KEY, days: int = 30):
    """The snapshots of one scope over the last `days` days (oldest first)."""
    since = clock.now().date() - timedelta(days=days - 1)
    return list(
        readable_snapshots(membership).filter(kind=kind, key=key, day__gte=since).order_by("day")
    )


def dashboard_summary(membership: Membership, accounts=None) -> dict:
    """The dashboard's compliance block: the overall score and each framework's, over the
    accounts the member may see (narrowed to `accounts`, a queryset, when the dashboard's team
    scope asks), their spend and the cost period when those accounts have cost data, and
    90-day trend charts: the organization's for members who see every account, each of their
    teams' for editors and viewers."""

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
