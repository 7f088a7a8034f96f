# ruff: noqa: S608 - only fixed fragments are interpolated; values are parameters
"""Compliance history read back: findings, controls and rules as they stood at any instant.

The source is the finding-state ledger (FindingEvent: every change of a finding's status,
append-only, written in the statements that change findings) and the versions of rules and AWS
tag policies (RuleVersion, AwsTagPolicyVersion). Nothing here writes, except
rebuild_snapshots(), which recomputes the daily score snapshots from the ledger (they are its
cache, not its source).

What is exact and what is not (docs/policies.md, "History"):

- findings open or exempted at T, each finding's changes, each control's pass/fail and its
  failing resources at T: exact, from the ledger;
- the rules in force at T: exact, from the rules' versions. A control's own list of cited rules
  is not versioned: the control's present list is read;
- how many resources a control *applies to* at T ("in scope") is not in the ledger (it depends
  on every resource's tags at T): it is read from the day's score snapshot, or the latest before
  it; a score at T is that in_scope less the failing resources at T.

An exemption past its expiry exempts nothing from that instant, before the daily task writes it
down (policies.exemptions.expire): the reads here treat such a finding as reopened at the
expiry (a pending expiry), as every read of the present does (FindingQuerySet).

Callers run inside the organization's tenant scope. Instants are timezone-aware; the state "at
T" includes what happened at T; a period (start, end] holds the changes after start up to and
including end, so findings_at(start) with changes_between(start, end) gives findings_at(end).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import connection, transaction

import audit
from inventory.services import teams_by_account

from . import audit_events
from .models import (
    AwsTagPolicyVersion,
    Control,
    Exemption,
    Framework,
    RuleVersion,
    ScoreSnapshot,
)
from .scoring.scores import control_key, scorecard

if TYPE_CHECKING:
    from accounts.models import Organization

CHUNK = 2000  # rows fetched per round trip of a server-side cursor
_T = TypeVar("_T")


@dataclass(frozen=True)
class FindingState:
    """A finding as it stood at an instant: `status` open or exempted since `since`."""

    finding_id: int
    rule_pk: int
    rule_id: str
    rule_version: int
    resource_id: int
    account_pk: int
    status: str  # "open" | "exempted"
    since: datetime
    kind: str
    found_key: str | None
    severity: str


@dataclass(frozen=True)
class FindingChange:
    """One change of a finding's status (a ledger row, or a pending expiry)."""

    at: datetime
    event: str
    from_status: str
    to_status: str
    finding_id: int
    rule_pk: int
    rule_id: str
    rule_version: int
    resource_id: int
    account_pk: int
    kind: str
    found_key: str | None
    severity: str
    exemption_id: int | None


@dataclass(frozen=True)
class ControlState:
    status: str  # "pass" | "fail" | "no_rules"
    open_findings: int
    # None when not asked for (control_status_at(count_resources=False)): counting each
    # resource once groups the ledger's rows by resource, ~90% of a many-rule control's time.
    failing_resources: int | None
    exempted_findings: int
    rules_in_force: list[str]


@dataclass(frozen=True)
class RuleInterval:
    """A version of a rule and when it held: [valid_from, valid_to), valid_to None while it
    is the present one."""

    rule_id: str
    version: int
    change: str
    active: bool
    spec: dict
    changed_by: str
    valid_from: datetime
    valid_to: datetime | None


@dataclass(frozen=True)
class PolicyInterval:
    """A version of an AWS tag policy and when it held, as RuleInterval."""

    name: str
    version: int
    change: str
    target_type: str
    target: str
    position: int
    document: str
    changed_by: str
    valid_from: datetime
    valid_to: datetime | None


# The ledger up to an instant, with the pending expiries: findings still stored exempted under
# an approved exemption whose expiry has passed by then, as the exemption_expired event
# policies.exemptions.expire will append (at the expiry). Their id sorts after every real one.
_COLUMNS = (
    "id, finding_id, rule_pk, rule_slug, rule_version, resource_id, account_id, kind, "
    "found_key, severity, exemption_id, event, from_status, to_status, open_delta, "
    "exempt_delta, at"
)
_PENDING_ID = 2**63 - 1


def _ledger(
    organization_id: int,
    end: datetime,
    *,
    start: datetime | None = None,
    rule_ids: Sequence[str] | None = None,
    account_pks: Sequence[int] | None = None,
    columns: str = _COLUMNS,
) -> tuple[str, list[Any]]:
    """A subquery (its columns `columns`, of _COLUMNS) over the ledger rows and pending expiries
    in (start, end] (start None: from the beginning), of the rules `rule_ids` (ids) and the
    accounts `account_pks` when given."""
    where, params = ["e.organization_id = %s", "e.at <= %s"], [organization_id, end]
    pending = [
        "f.organization_id = %s",
        "f.status = 'exempted'",
        "x.status = 'approved'",
        "x.expires_at <= %s",
    ]
    pending_params: list[Any] = [organization_id, end]
    if start is not None:
        where.append("e.at > %s")
        params.append(start)
        pending.append("x.expires_at > %s")
        pending_params.append(start)
    if rule_ids is not None:
        where.append("e.rule_slug = ANY(%s)")
        params.append(list(rule_ids))
        pending.append("r.rule_id = ANY(%s)")
        pending_params.append(list(rule_ids))
    if account_pks is not None:
        where.append("e.account_id = ANY(%s)")
        params.append(list(account_pks))
        pending.append("f.account_id = ANY(%s)")
        pending_params.append(list(account_pks))
    real = f"SELECT {columns} FROM policies_findingevent e WHERE {' AND '.join(where)}"
    if not _pending_expiries(organization_id, end):
        return f"({real})", params  # most of the time: no union to carry a million rows through
    expiry = {
        "id": str(_PENDING_ID),
        "finding_id": "f.id",
        "rule_pk": "f.rule_id",
        "rule_slug": "r.rule_id",
        "rule_version": "f.rule_version",
        "resource_id": "f.resource_id",
        "account_id": "f.account_id",
        "kind": "f.kind",
        "found_key": "f.found_key",
        "severity": "f.severity",
        "exemption_id": "x.id",
        "event": "'exemption_expired'",
        "from_status": "'exempted'",
        "to_status": "'open'",
        "open_delta": "1",
        "exempt_delta": "-1",
        "at": "x.expires_at",
    }
    selected = ", ".join(f"{expiry[c.strip()]} AS {c.strip()}" for c in columns.split(","))
    pending_sql = (
        f"SELECT {selected} FROM policies_finding f "
        "JOIN policies_exemption x ON x.id = f.exemption_id "
        f"JOIN policies_rule r ON r.id = f.rule_id WHERE {' AND '.join(pending)}"
    )
    return f"({real} UNION ALL {pending_sql})", [*params, *pending_params]


def _pending_expiries(organization_id: int, end: datetime) -> bool:
    """Whether an approved exemption of the organization had lapsed by `end` without being
    written down (policies.exemptions.expire): only then does _ledger add pending expiries."""
    return (
        Exemption.objects.filter(
            organization_id=organization_id, status=Exemption.APPROVED, expires_at__lte=end
        )
        .order_by()
        .exists()
    )


def _stream(sql: str, params: list[Any]) -> Iterator[tuple]:
    """The rows of `sql` through a server-side cursor, CHUNK at a time: memory does not grow
    with the result."""
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK):
            yield from rows


FINDING_STATE_COLUMNS = (
    "finding_id, rule_pk, rule_slug, rule_version, resource_id, account_id, to_status, at, "
    "kind, found_key, severity"
)


def findings_at_query(
    organization: Organization,
    at: datetime,
    *,
    rule_ids: list[str] | None = None,
    account_pks: list[int] | None = None,
    statuses: Sequence[str] = ("open",),
) -> tuple[str, list[Any]]:
    """findings_at()'s query: (sql, params) of a SELECT whose columns are FindingState's
    (FINDING_STATE_COLUMNS, `at` being the state's since), ordered as findings_at() yields, for
    a caller that reads it in SQL (the evidence package joins and formats it there)."""
    ledger, params = _ledger(organization.pk, at, rule_ids=rule_ids, account_pks=account_pks)
    sql = (
        "SELECT s.finding_id, s.rule_pk, s.rule_slug, s.rule_version, s.resource_id, "
        "s.account_id, s.to_status, s.at, s.kind, s.found_key, s.severity FROM ("
        "SELECT DISTINCT ON (l.finding_id) l.* FROM "
        f"{ledger} l ORDER BY l.finding_id, l.at DESC, l.id DESC) s "
        "WHERE s.to_status = ANY(%s) ORDER BY s.rule_slug, s.resource_id, s.finding_id"
    )
    return sql, [*params, list(statuses)]


def findings_at(
    organization: Organization,
    at: datetime,
    *,
    rule_ids: list[str] | None = None,
    account_pks: list[int] | None = None,
    statuses: Sequence[str] = ("open",),
) -> Iterator[FindingState]:
    """The findings whose status at `at` is one of `statuses` (open, exempted), of the rules
    `rule_ids` (ids) and accounts `account_pks` when given, ordered by rule id and resource.
    Each finding's state is its last change at or before `at`. Streamed."""
    sql, params = findings_at_query(
        organization, at, rule_ids=rule_ids, account_pks=account_pks, statuses=statuses
    )
    for row in _stream(sql, params):
        yield FindingState(*row)


CHANGE_COLUMNS = (
    "at, event, from_status, to_status, finding_id, rule_pk, rule_slug, rule_version, "
    "resource_id, account_id, kind, found_key, severity, exemption_id, id"
)


def changes_query(
    organization: Organization,
    start: datetime,
    end: datetime,
    *,
    rule_ids: list[str] | None = None,
    account_pks: list[int] | None = None,
) -> tuple[str, list[Any]]:
    """changes_between()'s query: (sql, params) of a SELECT of CHANGE_COLUMNS (FindingChange's
    and the ledger row's id), in the order changes_between() yields."""
    ledger, params = _ledger(
        organization.pk,
        end,
        start=start,
        rule_ids=rule_ids,
        account_pks=account_pks,
        columns=CHANGE_COLUMNS,
    )
    return f"SELECT l.* FROM {ledger} l ORDER BY l.at, l.id", params


def changes_between(
    organization: Organization,
    start: datetime,
    end: datetime,
    *,
    rule_ids: list[str] | None = None,
    account_pks: list[int] | None = None,
) -> Iterator[FindingChange]:
    """Every change of a finding's status in (start, end], of the rules `rule_ids` and the
    accounts `account_pks` when given, in the order they happened (at, then the ledger's
    order). Streamed."""
    sql, params = changes_query(
        organization, start, end, rule_ids=rule_ids, account_pks=account_pks
    )
    for row in _stream(sql, params):
        yield FindingChange(*row[:-1])


# Versions --------------------------------------------------------------------------------------


def _rule_intervals(organization: Organization) -> list[RuleInterval]:
    """Every version of every rule of the organization (the deletion marker excluded: it ends
    the last one), with its validity, ordered by rule id and version."""
    versions = list(
        RuleVersion.objects.for_org(organization).order_by("rule_slug", "changed_at", "id")
    )
    intervals = []
    for i, version in enumerate(versions):
        following = versions[i + 1] if i + 1 < len(versions) else None
        if following is not None and following.rule_slug != version.rule_slug:
            following = None
        if version.change == RuleVersion.DELETE:
            continue
        intervals.append(
            RuleInterval(
                rule_id=version.rule_slug,
                version=version.version,
                change=version.change,
                active=version.active,
                spec=version.spec,
                changed_by=version.changed_by,
                valid_from=version.changed_at,
                valid_to=following.changed_at if following else None,
            )
        )
    return intervals


def _holds(valid_from: datetime, valid_to: datetime | None, at: datetime) -> bool:
    return valid_from <= at and (valid_to is None or at < valid_to)


def _overlaps(valid_from: datetime, valid_to: datetime | None, start: datetime, end: datetime):
    """The interval [valid_from, valid_to) holds at some instant of [start, end]."""
    nonempty = valid_to is None or valid_to > valid_from
    return nonempty and valid_from <= end and (valid_to is None or valid_to > start)


def _in_force(intervals: list[RuleInterval], at: datetime) -> dict[str, RuleInterval]:
    return {i.rule_id: i for i in intervals if i.active and _holds(i.valid_from, i.valid_to, at)}


def rules_in_force(organization: Organization, at: datetime) -> dict[str, RuleInterval]:
    """{rule id: its version} of the rules active at `at`, from their versions."""
    return _in_force(_rule_intervals(organization), at)


def rule_versions_in_force(
    organization: Organization, start: datetime, end: datetime
) -> list[RuleInterval]:
    """Every rule version that held at some instant of [start, end] (inactive ones included,
    `active` False: a rule switched off during the period), by rule id and version."""
    return [
        i for i in _rule_intervals(organization) if _overlaps(i.valid_from, i.valid_to, start, end)
    ]


def tag_policy_versions_in_force(
    organization: Organization, start: datetime, end: datetime
) -> list[PolicyInterval]:
    """Every AWS tag policy version that held at some instant of [start, end], by name and
    version (a deletion ends the last one)."""
    versions = list(
        AwsTagPolicyVersion.objects.for_org(organization).order_by("name", "changed_at", "id")
    )
    found = []
    for i, version in enumerate(versions):
        following = versions[i + 1] if i + 1 < len(versions) else None
        if following is not None and following.name != version.name:
            following = None
        valid_to = following.changed_at if following else None
        if version.change == AwsTagPolicyVersion.DELETE or not _overlaps(
            version.changed_at, valid_to, start, end
        ):
            continue
        found.append(
            PolicyInterval(
                name=version.name,
                version=version.version,
                change=version.change,
                target_type=version.target_type,
                target=version.target,
                position=version.position,
                document=version.document,
                changed_by=version.changed_by,
                valid_from=version.changed_at,
                valid_to=valid_to,
            )
        )
    return found


# Controls -------------------------------------------------------------------------------------


def _cited(control: Control, intervals: list[RuleInterval], at: datetime) -> list[str]:
    """The ids of the rules the control cites that were in force at `at`."""
    in_force = _in_force(intervals, at)
    return sorted(r for r in set(control.rule_ids) if r in in_force)


# Controls citing the same rules (an evidence package reads every control of its frameworks)
# share the ledger's sums: within remembering(), each is computed once per set of rules.
_MEMO: ContextVar[dict[tuple[Any, ...], Any] | None] = ContextVar("history_memo", default=None)


@contextmanager
def remembering() -> Iterator[None]:
    """Within the block, a sum over the ledger (a set of rules' counts at an instant, their
    failing resources by day) asked for again is not computed again. For a reader of one
    instant's history (the ledger only grows after it, never changes before it)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def _key(account_pks: list[int] | None) -> tuple[int, ...] | None:
    return None if account_pks is None else tuple(sorted(account_pks))


def _remembered(key: tuple[Any, ...], compute: Callable[[], _T]) -> _T:
    memo = _MEMO.get()
    if memo is None:
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def _counts(
    organization: Organization,
    rule_ids: list[str],
    at: datetime,
    account_pks: list[int] | None,
    *,
    count_resources: bool = True,
) -> tuple[int, int | None, int]:
    """(open findings, failing resources, exempted findings) of the rules at `at`: sums of
    the ledger's deltas, from its index on (organization, rule id, at) alone. One rule has at
    most one finding per resource, so its failing resources are its open findings; several
    are summed per resource (unless `count_resources` is false: then the failing resources are
    None and every sum is one pass over the index, with no grouping)."""
    key = (
        "counts",
        organization.pk,
        tuple(sorted(rule_ids)),
        at,
        _key(account_pks),
        count_resources,
    )
    return _remembered(
        key, lambda: _sum_counts(organization, rule_ids, at, account_pks, count_resources)
    )


def _sum_counts(
    organization: Organization,
    rule_ids: list[str],
    at: datetime,
    account_pks: list[int] | None,
    count_resources: bool,
) -> tuple[int, int | None, int]:
    ledger, params = _ledger(
        organization.pk,
        at,
        rule_ids=rule_ids,
        account_pks=account_pks,
        columns="resource_id, open_delta, exempt_delta",
    )
    if len(rule_ids) == 1 or not count_resources:
        failing = "coalesce(sum(l.open_delta), 0)" if len(rule_ids) == 1 else "NULL"
        sql = (
            f"SELECT coalesce(sum(l.open_delta), 0), {failing}, "
            f"coalesce(sum(l.exempt_delta), 0) FROM {ledger} l"
        )
    else:
        sql = (
            "SELECT coalesce(sum(s.o), 0), count(*) FILTER (WHERE s.o > 0), "
            "coalesce(sum(s.x), 0) FROM (SELECT l.resource_id, sum(l.open_delta) AS o, "
            f"sum(l.exempt_delta) AS x FROM {ledger} l GROUP BY l.resource_id) s"
        )
    with transaction.atomic(), connection.cursor() as cursor:
        # Hash a million resources in memory; no JIT (compiling costs more than it saves here).
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        opened, failing, exempted = cursor.fetchone()
    return int(opened), None if failing is None else int(failing), int(exempted)


def control_status_at(
    organization: Organization,
    control: Control,
    at: datetime,
    *,
    account_pks: list[int] | None = None,
    count_resources: bool = True,
) -> ControlState:
    """The control at `at`: fail when a rule it cites, in force at `at`, has an open finding
    (over `account_pks` when given), pass when none has, no_rules when it cites no rule in
    force then. Without `count_resources`, its failing resources are not counted (None): the
    status and the open and exempted findings are then one index-only sum."""
    cited = _cited(control, _rule_intervals(organization), at)
    if not cited:
        return ControlState("no_rules", 0, 0 if count_resources else None, 0, [])
    opened, failing, exempted = _counts(
        organization, cited, at, account_pks, count_resources=count_resources
    )
    return ControlState("fail" if opened else "pass", opened, failing, exempted, cited)


def day_end(day: date) -> datetime:
    """The last instant of a UTC day (the state "at a day's end" includes all of it)."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) - timedelta(
        microseconds=1
    )


def _failing_by_day(
    organization: Organization,
    rule_ids: list[str],
    first_day: date,
    last_day: date,
    account_pks: list[int] | None,
) -> dict[date, int]:
    """{day: resources failing at least one of the rules at the day's end (UTC)}, for each
    day of [first_day, last_day], from one statement: each resource's running sum of open
    deltas by day, turned into intervals [from, to) of days it was failing, counted."""
    key = ("by_day", organization.pk, tuple(sorted(rule_ids)), first_day, last_day)
    return _remembered(
        (*key, _key(account_pks)),
        lambda: _sum_failing_by_day(organization, rule_ids, first_day, last_day, account_pks),
    )


def _sum_failing_by_day(
    organization: Organization,
    rule_ids: list[str],
    first_day: date,
    last_day: date,
    account_pks: list[int] | None,
) -> dict[date, int]:
    ledger, params = _ledger(
        organization.pk,
        day_end(last_day),
        rule_ids=rule_ids,
        account_pks=account_pks,
        columns="resource_id, open_delta, at",
    )
    sql = (
        "WITH d AS (SELECT l.resource_id, (l.at AT TIME ZONE 'UTC')::date AS day, "
        f"sum(l.open_delta) AS delta FROM {ledger} l GROUP BY 1, 2), "
        "r AS (SELECT d.day, sum(d.delta) OVER w AS running, lead(d.day) OVER w AS next_day "
        "FROM d WINDOW w AS (PARTITION BY d.resource_id ORDER BY d.day)) "
        "SELECT greatest(r.day, %s), r.next_day, count(*) FROM r WHERE r.running > 0 "
        "AND (r.next_day IS NULL OR r.next_day > %s) GROUP BY 1, 2"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, [*params, first_day, first_day])
        intervals = cursor.fetchall()
    days = {first_day + timedelta(days=n): 0 for n in range((last_day - first_day).days + 1)}
    for since, until, count in intervals:
        for day in days:
            if since <= day and (until is None or day < until):
                days[day] += count
    return days


def _in_scope_by_day(
    organization: Organization, key: str, first_day: date, last_day: date
) -> dict[date, int]:
    """{day: resources in scope} of the control's snapshots: the day's, else the latest
    before it, else 0 (no snapshot yet)."""
    snapshots = list(
        ScoreSnapshot.objects.for_org(organization)
        .filter(kind=ScoreSnapshot.CONTROL, key=key, day__lte=last_day)
        .order_by("day")
        .values_list("day", "in_scope")
    )
    found, latest, i = {}, 0, 0
    day = first_day
    while day <= last_day:
        while i < len(snapshots) and snapshots[i][0] <= day:
            latest = snapshots[i][1]
            i += 1
        found[day] = latest
        day += timedelta(days=1)
    return found


def daily_control_states(
    organization: Organization,
    control: Control,
    first_day: date,
    last_day: date,
    *,
    account_pks: list[int] | None = None,
) -> list[tuple[date, int, int, bool]]:
    """(day, compliant, in scope, passed) at each day's end (UTC) from first_day to last_day,
    oldest first. Passed and the failing resources are exact (the ledger and the rules'
    versions); in scope comes from the control's score snapshot of the day or the latest before
    it (organization-wide), and over `account_pks` from the resources as they are now (no
    snapshot is kept per account and control); compliant = in scope - failing resources."""
    if last_day < first_day:
        return []
    intervals = _rule_intervals(organization)
    every = sorted(set(control.rule_ids) & {i.rule_id for i in intervals})
    span = (last_day - first_day).days + 1
    failing = (
        _failing_by_day(organization, every, first_day, last_day, account_pks)
        if every
        else {first_day + timedelta(days=n): 0 for n in range(span)}
    )
    if account_pks is None:
        key = control_key(control.framework.slug, control.control_id)
        in_scope = _in_scope_by_day(organization, key, first_day, last_day)
    else:
        present = scorecard(organization, account_pks, spend=False).controls
        count = present[control_key(control.framework.slug, control.control_id)].in_scope
        in_scope = dict.fromkeys(failing, count)
    states = []
    for day in sorted(failing):
        cited = _cited(control, intervals, day_end(day))
        passed = bool(cited) and failing[day] == 0
        states.append((day, max(in_scope[day] - failing[day], 0), in_scope[day], passed))
    return states


# Every control of a package at once -------------------------------------------------------------

MASK_RULES = 63  # the rules a bigint of failing rules holds (one bit each)


def remember_controls(
    organization: Organization,
    controls: Sequence[Control],
    at: datetime,
    first_day: date,
    last_day: date,
    *,
    account_pks: list[int] | None = None,
) -> None:
    """Within remembering(): compute, for every control of `controls` at once, the ledger sums
    that control_status_at(at) (resources counted) and daily_control_states(first_day,
    last_day) read, and remember them where those reads look.

    Each of those reads sums the ledger for its own set of rules: an evidence package of four
    frameworks made 13 sets' passes over 4 million rows, twice each. Here one statement gives,
    for every resource, which of all the rules it was failing (a bitmask) and from which day to
    which, and another each rule's open and exempted findings at `at`; any set's failing
    resources on a day are then the resources whose mask meets the set's. The reads give the
    same answers (tests/policies/test_history.py compares them on a story of every transition).

    Does nothing outside remembering() (nothing would keep the sums), when `at` is not within
    `last_day` (UTC), or over more than MASK_RULES rules: each read then sums for itself."""
    if _MEMO.get() is None or last_day < first_day:
        return
    if not day_end(last_day - timedelta(days=1)) < at <= day_end(last_day):
        return
    intervals = _rule_intervals(organization)
    known = {i.rule_id for i in intervals}
    at_end = {tuple(_cited(c, intervals, at)) for c in controls} - {()}
    by_day = {tuple(sorted(set(c.rule_ids) & known)) for c in controls} - {()}
    rules = sorted({r for s in at_end | by_day for r in s})
    if not rules or len(rules) > MASK_RULES:
        return
    totals = _rule_totals(organization, rules, at, account_pks)
    spans = _failing_spans(organization, rules, at, first_day, last_day, account_pks)
    bits = {rule: 1 << n for n, rule in enumerate(rules)}
    after = last_day + timedelta(days=1)  # the state at the last day's end (_failing_spans)
    ends = [first_day + timedelta(days=n) for n in range((after - first_day).days + 1)]

    def failing(rule_ids: tuple[str, ...]) -> dict[date, int]:
        """{day of first_day..after: resources failing one of the rules at least}."""
        mask = sum(bits[r] for r in rule_ids)
        change: dict[date, int] = {}
        for found, since, until, count in spans:
            if found & mask:
                change[since] = change.get(since, 0) + count
                if until is not None:
                    change[until] = change.get(until, 0) - count
        running, found_by_day = 0, {}
        for day in ends:
            running += change.get(day, 0)
            found_by_day[day] = running
        return found_by_day

    memo, accounts = _MEMO.get(), _key(account_pks)
    assert memo is not None  # checked above
    for cited in at_end:
        opened = sum(totals.get(r, (0, 0))[0] for r in cited)
        exempted = sum(totals.get(r, (0, 0))[1] for r in cited)
        counts = (opened, failing(cited)[last_day], exempted)
        memo[("counts", organization.pk, cited, at, accounts, True)] = counts
    for every in by_day:
        by_end = failing(every)
        memo[("by_day", organization.pk, every, first_day, last_day, accounts)] = {
            day: by_end[after if day == last_day else day] for day in ends[:-1]
        }


def _rule_totals(
    organization: Organization, rules: list[str], at: datetime, account_pks: list[int] | None
) -> dict[str, tuple[int, int]]:
    """{rule id: (open findings, exempted findings) at `at`}, from the ledger's index alone."""
    ledger, params = _ledger(
        organization.pk,
        at,
        rule_ids=rules,
        account_pks=account_pks,
        columns="rule_slug, open_delta, exempt_delta",
    )
    sql = f"SELECT l.rule_slug, sum(l.open_delta), sum(l.exempt_delta) FROM {ledger} l GROUP BY 1"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        return {rule: (int(o), int(x)) for rule, o, x in cursor.fetchall()}


def _failing_spans(
    organization: Organization,
    rules: list[str],
    at: datetime,
    first_day: date,
    last_day: date,
    account_pks: list[int] | None,
) -> list[tuple[int, date, date | None, int]]:
    """(mask, since, until, resources): that many resources were failing exactly the rules of
    `mask` (bit n: rules[n]) at the end of every day of [since, until) (until None: still), the
    spans clipped to start at first_day.

    Each event counts on its UTC day, except those after `at` (up to the last day's end), which
    count on the day after last_day: a span covering last_day is the state at `at`, one
    covering the day after it the state at the last day's end.

    A resource fails a rule while the rule's finding on it is open (one finding per resource
    and rule: uniq_finding_resource_rule), so each event that opens or closes it (an open delta)
    flips the rule's bit: xor-ed by day (two flips the same day cancel), then a running xor
    over the resource's days, its mask from each day to its next. One pass over the ledger,
    one sort of the (resource, day) flips; no per-rule window."""
    ledger, params = _ledger(
        organization.pk,
        day_end(last_day),
        rule_ids=rules,
        account_pks=account_pks,
        columns="resource_id, rule_slug, open_delta, at",
    )
    bit = "1::bigint << (b.n - 1)::int"
    sql = (
        "WITH x AS (SELECT l.resource_id, CASE WHEN l.at > %s THEN %s::date "
        "ELSE (l.at AT TIME ZONE 'UTC')::date END AS day, "
        f"bit_xor({bit}) AS flip FROM {ledger} l "
        "JOIN unnest(%s::text[]) WITH ORDINALITY b(rule, n) ON b.rule = l.rule_slug "
        f"WHERE l.open_delta <> 0 GROUP BY 1, 2 HAVING bit_xor({bit}) <> 0), "
        "m AS (SELECT x.day, bit_xor(x.flip) OVER w AS mask, lead(x.day) OVER w AS next_day "
        "FROM x WINDOW w AS (PARTITION BY x.resource_id ORDER BY x.day)) "
        "SELECT m.mask, greatest(m.day, %s), m.next_day, count(*) FROM m WHERE m.mask <> 0 "
        "AND (m.next_day IS NULL OR m.next_day > %s) GROUP BY 1, 2, 3"
    )
    after = last_day + timedelta(days=1)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, [at, after, *params, rules, first_day, first_day])
        return [(int(m), since, until, int(n)) for m, since, until, n in cursor.fetchall()]


def _failing_groups(organization: Organization, at: datetime) -> list[tuple[int, list[str], int]]:
    """(account pk, ids of the rules failing, resources) of the resources with an open finding
    at `at`, grouped: every score's failing resources at `at` is a sum over these few rows."""
    ledger, params = _ledger(
        organization.pk, at, columns="resource_id, account_id, rule_slug, open_delta"
    )
    sql = (
        "SELECT x.account_id, x.failing, count(*) FROM (SELECT s.resource_id, "
        "min(s.account_id) AS account_id, array_agg(s.rule_slug ORDER BY s.rule_slug) AS failing "
        "FROM (SELECT l.resource_id, l.account_id, l.rule_slug, sum(l.open_delta) AS o "
        f"FROM {ledger} l GROUP BY 1, 2, 3) s WHERE s.o > 0 GROUP BY s.resource_id) x "
        "GROUP BY 1, 2"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute(sql, params)
        return cursor.fetchall()


@transaction.atomic
def rebuild_snapshots(organization: Organization, first_day: date, last_day: date) -> int:
    """Recompute the compliant side of the organization's score snapshots of [first_day,
    last_day] from the ledger: compliant = in scope - resources failing at the day's end (the
    rules of each scope in force then; a team's accounts as they are now). In scope stays the
    snapshot's (the ledger does not hold it). Returns how many rows changed; audited as a
    policy.score_snapshot event (trigger "rebuild")."""
    intervals = _rule_intervals(organization)
    frameworks = {
        f.slug: f for f in Framework.objects.for_org(organization).prefetch_related("controls")
    }
    held = teams_by_account(organization)  # account pk: (12-digit id, team slugs)
    by_aws_id = {aws_id: pk for pk, (aws_id, _) in held.items()}
    snapshots = list(
        ScoreSnapshot.objects.for_org(organization)
        .filter(day__gte=first_day, day__lte=last_day)
        .order_by("day")
    )
    changed: list[ScoreSnapshot] = []
    groups: list[tuple[int, list[str], int]] = []
    current_day = None
    for snapshot in snapshots:
        end = day_end(snapshot.day)
        if snapshot.day != current_day:
            groups, current_day = _failing_groups(organization, end), snapshot.day
        in_force = set(_in_force(intervals, end))
        rules, accounts = _scope(snapshot, in_force, frameworks, held, by_aws_id)
        failing = sum(
            count
            for account, slugs, count in groups
            if (accounts is None or account in accounts) and rules.intersection(slugs)
        )
        compliant = max(snapshot.in_scope - failing, 0)
        if compliant != snapshot.compliant:
            snapshot.compliant = compliant
            changed.append(snapshot)
    ScoreSnapshot.objects.bulk_update(changed, ["compliant"])
    audit.record(
        audit_events.SCORE_SNAPSHOT,
        data={
            "trigger": "rebuild",
            "rows": len(changed),
            "first_day": first_day.isoformat(),
            "last_day": last_day.isoformat(),
        },
    )
    return len(changed)


def _scope(
    snapshot: ScoreSnapshot,
    in_force: set[str],
    frameworks: dict[str, Framework],
    held: dict[int, tuple[str, list[str]]],
    by_aws_id: dict[str, int],
) -> tuple[set[str], set[int] | None]:
    """The rule ids (in force) and account pks (None: all) a snapshot row scores."""
    if snapshot.kind == ScoreSnapshot.FRAMEWORK:
        framework = frameworks.get(snapshot.key)
        cited = {r for c in framework.controls.all() for r in c.rule_ids} if framework else set()
        return cited & in_force, None
    if snapshot.kind == ScoreSnapshot.CONTROL:
        slug, _, control_id = snapshot.key.partition("/")
        framework = frameworks.get(slug)
        controls = (
            [c for c in framework.controls.all() if c.control_id == control_id]
            if (framework)
            else []
        )
        return {r for c in controls for r in c.rule_ids} & in_force, None
    if snapshot.kind == ScoreSnapshot.TEAM:
        return in_force, {pk for pk, (_, teams) in held.items() if snapshot.key in teams}
    if snapshot.kind == ScoreSnapshot.ACCOUNT:
        pk = by_aws_id.get(snapshot.key)
        return in_force, {pk} if pk is not None else set()
    return in_force, None
