"""Rules into findings, set-based: one INSERT ... SELECT ... ON CONFLICT for every violation
of the evaluated rules (new findings, still failing ones, reopened resolved ones) and one
UPDATE resolving the findings that no longer fail. Never a statement per resource.

Three ways in: a run for an organization (evaluate_organization: a button and the API),
after a scan for the resources it touched (evaluate_after_scan, run by the task of the same
name once the scan has committed), and for the rules a change touched (evaluate_rules, called by
policies.services). Callers run inside the organization's tenant scope.

Incremental by a ledger: EvaluationState holds the active rules' versions, a digest of which
teams hold which account and the engine's version as of the last evaluation; EvaluatedResource
each live resource's fingerprint (name, tags, configuration) when it was last evaluated. A run
for the organization evaluates the rules whose version changed over every resource, and every
rule over the resources whose fingerprint differs from the ledger's (new, changed, deleted,
restored); when the teams, the engine or nothing is known, everything (also `force=True`).
So a run when nothing changed finds nothing to do, in one comparison of the two tables.
Evaluations of one organization are serialised by an advisory lock; the ledger records the
fingerprints read before the rules are evaluated, so a change committed in between is seen as
a change by the next run (never the other way round).

A full run over many resources (SPLIT_MIN_RESOURCES) uses two cores: a helper connection
computes the violations of most resources while this one writes the findings of the others,
one statement per part of the resources (_evaluate_in_parts).
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction

import audit
from inventory.models import Resource
from inventory.services import teams_by_account
from tagsense import clock
from tagsense.tenancy.db import tenant_scope

from . import audit_events, exemptions
from .engine import sql
from .models import EvaluatedResource, EvaluationState, Finding, FindingEvent, Rule, ScoreSnapshot
from .scoring.scores import take_snapshot

if TYPE_CHECKING:
    from accounts.models import Organization
    from inventory.models import ScanRun

# The meaning of the rules as this code evaluates them. Raise it when a change to the engine
# can change a finding: the next run for each organization then evaluates everything.
ENGINE_VERSION = 2
_LOCK_CLASS = 0x7461_6700  # pg_advisory_xact_lock(class, organization)

# ruff: noqa: S608 - the statements interpolate only compiled fragments; values are parameters
# One statement: the violations once (materialized), joined to their present findings; the
# new ones inserted (a plain INSERT: evaluations of an organization are serialised, so no other
# writer can add the same finding meanwhile, and ON CONFLICT's speculative insertion cost a
# fifth of the write), the existing ones updated only when something about them changed (a
# re-evaluation with nothing changed writes nothing), and the evaluated rules' findings that
# are not among the violations resolved (a hashed anti-join, not a last_seen comparison that
# would need every failing finding rewritten). Teams are computed once per account.
#
# The same statement appends each change of status to the ledger (FindingEvent): `ins`, `upd`
# and `resolved` return what they changed, `led` inserts one row per change: opened (a new
# finding), reopened (a resolved one failing again), and for a resolution rule_retired (its rule
# is inactive), resource_deleted (the resource is no longer live) or resolved. An update of
# metadata only (kind, owner, teams, version) is no change of status and writes no row. The
# status a resolved finding had is read from the statement's snapshot (`exempted`: the few
# findings exempted before it, by the partial index on exemption), as UPDATE ... RETURNING
# gives only the new row.
#
# `{part}` (a split run, _evaluate_in_parts): only the findings of one part's resources are
# read and resolved; the violations are of those resources only.
_EVALUATE = """
WITH {touched} v AS MATERIALIZED ({violations}),
teams AS MATERIALIZED (
    SELECT r.account_id, {teams} AS owner_teams
    FROM (SELECT a.id AS account_id, a.organization_id FROM inventory_awsaccount a
          WHERE a.organization_id = %s) r
),
n AS MATERIALIZED (
    SELECT v.tag, v.resource_id, v.account_id, v.kind, v.found_key, v.owner,
        pr.version AS rule_version, coalesce(pr.spec ->> 'severity', 'medium') AS severity,
        coalesce(pr.spec ->> 'enforcement', 'report') AS enforcement,
        coalesce(t.owner_teams, '[]'::jsonb) AS owner_teams, f.id AS finding_id,
        f.status AS old_status
    FROM v
    JOIN policies_rule pr ON pr.id = v.tag
    LEFT JOIN teams t ON t.account_id = v.account_id
    LEFT JOIN policies_finding f ON f.organization_id = %s AND f.resource_id = v.resource_id
        AND f.rule_id = v.tag {part}
),
ins AS (
    INSERT INTO policies_finding (organization_id, rule_id, resource_id, account_id,
        rule_version, status, kind, found_key, severity, enforcement, owner, owner_teams,
        first_seen, last_seen, resolved_at)
    SELECT %s, n.tag, n.resource_id, n.account_id, n.rule_version, 'open', n.kind, n.found_key,
        n.severity, n.enforcement, n.owner, n.owner_teams, %s, %s, NULL
    FROM n WHERE n.finding_id IS NULL
    RETURNING id, rule_id, rule_version, resource_id, account_id, kind, found_key, severity
),
upd AS (
    UPDATE policies_finding f SET
        account_id = n.account_id,
        rule_version = n.rule_version,
        kind = n.kind,
        found_key = n.found_key,
        severity = n.severity,
        enforcement = n.enforcement,
        owner = n.owner,
        owner_teams = n.owner_teams,
        last_seen = %s,
        first_seen = CASE WHEN f.status = 'resolved' THEN %s ELSE f.first_seen END,
        status = CASE WHEN f.status = 'resolved' THEN 'open' ELSE f.status END,
        resolved_at = NULL
    FROM n
    WHERE f.id = n.finding_id {part} AND (f.status = 'resolved' OR f.resolved_at IS NOT NULL
        OR (f.account_id, f.rule_version, f.kind, f.found_key, f.severity, f.enforcement,
            f.owner, f.owner_teams)
        IS DISTINCT FROM (n.account_id, n.rule_version, n.kind, n.found_key, n.severity,
            n.enforcement, n.owner, n.owner_teams))
    RETURNING f.id, f.rule_id, f.rule_version, f.resource_id, f.account_id, f.kind,
        f.found_key, f.severity, n.old_status
),
exempted AS MATERIALIZED (
    SELECT f.id FROM policies_finding f
    WHERE f.organization_id = %s AND f.exemption_id IS NOT NULL AND f.status = 'exempted'
),
resolved AS (
    UPDATE policies_finding f SET status = 'resolved', resolved_at = %s
    WHERE f.organization_id = %s AND f.status <> 'resolved' {rules} {resources} {part}
      AND NOT EXISTS (SELECT 1 FROM v WHERE v.tag = f.rule_id AND v.resource_id = f.resource_id)
    RETURNING f.id, f.rule_id, f.rule_version, f.resource_id, f.account_id, f.kind,
        f.found_key, f.severity, f.exemption_id,
        CASE WHEN f.rule_id = ANY(%s::bigint[]) THEN 'rule_retired'
            WHEN NOT EXISTS (SELECT 1 FROM inventory_resource r WHERE r.id = f.resource_id
                AND r.deleted_at IS NULL) THEN 'resource_deleted'
            ELSE 'resolved' END AS event
),
changed AS (
    SELECT i.id, i.rule_id, i.rule_version, i.resource_id, i.account_id, i.kind, i.found_key,
        i.severity, NULL::bigint AS exemption_id, 'opened' AS event, '' AS from_status,
        'open' AS to_status
    FROM ins i
    UNION ALL
    SELECT u.id, u.rule_id, u.rule_version, u.resource_id, u.account_id, u.kind, u.found_key,
        u.severity, NULL, 'reopened', 'resolved', 'open'
    FROM upd u WHERE u.old_status = 'resolved'
    UNION ALL
    SELECT r.id, r.rule_id, r.rule_version, r.resource_id, r.account_id, r.kind, r.found_key,
        r.severity, CASE WHEN x.id IS NULL THEN NULL ELSE r.exemption_id END, r.event,
        CASE WHEN x.id IS NULL THEN 'open' ELSE 'exempted' END, 'resolved'
    FROM resolved r LEFT JOIN exempted x ON x.id = r.id
),
led AS (
    INSERT INTO policies_findingevent (organization_id, finding_id, rule_pk, rule_slug,
        rule_version, resource_id, account_id, kind, found_key, severity, exemption_id, event,
        from_status, to_status, open_delta, exempt_delta, at)
    SELECT %s, c.id, c.rule_id, pr.rule_id, c.rule_version, c.resource_id, c.account_id,
        c.kind, c.found_key, c.severity, c.exemption_id, c.event, c.from_status, c.to_status,
        CASE WHEN c.to_status = 'open' THEN 1 WHEN c.from_status = 'open' THEN -1 ELSE 0 END,
        CASE WHEN c.to_status = 'exempted' THEN 1 WHEN c.from_status = 'exempted' THEN -1
            ELSE 0 END,
        %s
    FROM changed c JOIN policies_rule pr ON pr.id = c.rule_id
)
SELECT (SELECT count(*) FROM v), (SELECT count(*) FROM ins), (SELECT count(*) FROM resolved)
"""


def evaluate_rules(
    organization: Organization,
    rules: Sequence[Rule],
    *,
    resource_query: tuple[str, Sequence[Any]] | None = None,
    split: bool = False,
) -> dict[str, int]:
    """Evaluate `rules` over the organization's live resources (only those `resource_query`
    selects, when given) and bring their findings up to date. Inactive rules resolve their
    open findings. Every change of status is appended to the ledger (FindingEvent) in the same
    statement, at the clock's time (tagsense.clock). With `split` (a run over every resource),
    in two parts at once (_evaluate_in_parts). Returns {"failing", "new", "resolved"}."""
    now = clock.now()
    active = [(rule.pk, rule.rule_spec) for rule in rules if rule.active]
    touched, touched_params, resources, scoped = "", [], "", None
    if resource_query is not None:
        touched = f"touched (id) AS MATERIALIZED ({resource_query[0]}),"
        touched_params = list(resource_query[1])
        scoped = ("SELECT id FROM touched", [])
        resources = "AND f.resource_id = ANY(ARRAY(SELECT id FROM touched))"
    # Which rules' findings may resolve: all of the organization's need no condition (with
    # both an array of rules and one of resources, the unique index would be probed once
    # per pair: 25 times per resource).
    everything = {rule.pk for rule in rules} >= set(
        Rule.objects.for_org(organization).values_list("pk", flat=True)
    )
    rule_filter, rule_params = (
        ("", []) if everything else ("AND f.rule_id = ANY(%s)", [[rule.pk for rule in rules]])
    )
    retired = [rule.pk for rule in rules if not rule.active]

    def evaluate(
        violations: tuple[str, list[Any]], part: tuple[str, list[Any]] = ("", [])
    ) -> tuple[int, int, int]:
        """_EVALUATE of these violations; only the findings of `part`'s resources are read
        (the violations are of those resources: the join to the present findings hashes
        only theirs) and resolve."""
        with connection.cursor() as cursor:
            cursor.execute(
                _EVALUATE.format(
                    touched=touched,
                    violations=violations[0],
                    teams=sql.teams_json_sql(),
                    resources=resources,
                    rules=rule_filter,
                    part=part[0],
                ),
                [
                    *touched_params,
                    *violations[1],
                    organization.pk,  # teams
                    organization.pk,  # the present findings
                    *part[1],
                    organization.pk,  # ins
                    now,
                    now,
                    now,  # upd
                    now,
                    *part[1],
                    organization.pk,  # exempted
                    now,  # resolved
                    organization.pk,
                    *rule_params,
                    *part[1],
                    retired,  # rule_retired
                    organization.pk,  # led
                    now,
                ],
            )
            return cursor.fetchone()

    with transaction.atomic(), connection.cursor() as cursor:
        _lock(organization)  # the INSERT of new findings relies on it
        # Lapsed exemptions written down first (at their expiry), so the ledger's order is
        # the order things happened in: an expired exemption's finding reopens before this
        # evaluation resolves it or not.
        exemptions.expire(organization)
        # This transaction only: hashes of a million violations in memory, and no JIT (its
        # compilation of 25 rules' expressions cost more than the statement ran).
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL jit = off")
        if split and resource_query is None and active:
            failing, new, resolved = _evaluate_in_parts(organization, active, evaluate)
        else:
            failing, new, resolved = evaluate(
                sql.violations_sql(active, organization.pk, resource_query=scoped)
            )
    if resource_query is None:
        _remember_rules(organization, rules)
    return {"failing": failing, "new": new, "resolved": resolved}


# A full run over at least this many live resources is evaluated in parts on two cores at
# once (_evaluate_in_parts): the violation pass is most of a full run's CPU and PostgreSQL 15
# will not run it in parallel workers (its per-key searches are correlated subqueries).
SPLIT_MIN_RESOURCES = 200_000
# The parts, (start, stop, n): the resources whose id modulo n is in [start, stop). The first
# is this connection's; a helper computes the others' violations, one after the other, while
# this connection writes the part before (writing a first evaluation's findings and ledger
# costs more than computing their violations: about 17 s and 13 s per million resources
# here). So this connection starts writing early and then writes what the helper has ready.
PARTS = ((0, 1, 10), (1, 4, 10), (4, 7, 10), (7, 10, 10))
_STAGED = "SELECT tag, resource_id, kind, found_key, account_id, owner FROM policies_violations"


def _part_filter(part: tuple[int, int, int]) -> tuple[str, list[Any]]:
    """The findings of a part's resources (their resource's id in the part)."""
    start, stop, n = part
    return "AND mod(f.resource_id, %s) >= %s AND mod(f.resource_id, %s) < %s", [n, start, n, stop]


def _evaluate_in_parts(
    organization: Organization,
    active: list[tuple[int, Any]],
    evaluate: Callable[..., tuple[int, int, int]],
) -> tuple[int, int, int]:
    """A full evaluation of the `active` rules in the PARTS, on two cores: a helper thread
    computes the violations of every part but the first on a connection of its own (a
    read-only transaction in the same tenant scope), each streamed back in COPY's binary
    format through a spooled file, while this connection evaluates the first part
    (`evaluate`: _EVALUATE, its violations, writes and ledger) and then each of the others
    from the helper's rows, staged in the temporary table policies_violations. Each statement
    resolves the findings of its own part's resources only, so together they resolve what
    one statement would; returns the sums of their counts (failing, new, resolved).

    Each resource is in one part (its id), so the statements write the findings and ledger
    rows of the one statement, read at some instant after the caller recorded the
    fingerprints: each part takes its snapshot when its statement starts, after that, as the
    one statement would (a resource changed meanwhile is evaluated again by the next run).
    Not this transaction's snapshot (pg_export_snapshot): it runs in savepoints, which
    PostgreSQL refuses to export from, and it need not be: only for a transaction that has
    written nothing the violations read (evaluate_organization checks that it had written
    nothing at all), since the helper's connection does not see this transaction's rows."""
    mine, *theirs = PARTS
    helper = _PartHelper(organization, active, theirs)
    helper.start()
    try:
        counts = [
            evaluate(sql.violations_sql(active, organization.pk, part=mine), _part_filter(mine))
        ]
        for part in theirs:
            with helper.next_part() as spool, connection.cursor() as cursor:
                text, params = sql.violations_sql(active, organization.pk, part=part)
                cursor.execute("DROP TABLE IF EXISTS policies_violations")
                cursor.execute(
                    f"CREATE TEMPORARY TABLE policies_violations ON COMMIT DROP AS {text} "
                    "WITH NO DATA",
                    params,
                )
                with cursor.copy("COPY policies_violations FROM STDIN (FORMAT binary)") as copy:
                    spool.seek(0)
                    while block := spool.read(1 << 20):
                        copy.write(block)
                cursor.execute("ANALYZE policies_violations")
            counts.append(evaluate((_STAGED, []), _part_filter(part)))
    except BaseException:
        helper.cancel()
        raise
    finally:
        helper.join()
        helper.discard()
    failing, new, resolved = (sum(column) for column in zip(*counts, strict=True))
    return failing, new, resolved


class _PartHelper(threading.Thread):
    """The violations of `parts` (sql.violations_sql's `part`), one after the other, computed
    by this thread's own database connection (Django's connections are per thread) in a
    read-only transaction in the organization's tenant scope, each into a spooled file in
    COPY's binary format, handed over in order by next_part(). The connection is closed at
    the end; `error` holds what went wrong (next_part() raises it)."""

    def __init__(
        self,
        organization: Organization,
        active: list[tuple[int, Any]],
        parts: list[tuple[int, int, int]],
    ) -> None:
        super().__init__(name="evaluation-parts", daemon=True)
        self.organization, self.active, self.parts = organization, active, parts
        self.error: BaseException | None = None
        self._ready: queue.Queue[Any] = queue.Queue()
        self._stopping = threading.Event()
        self._raw: Any = None

    def run(self) -> None:
        own = connection  # django.db.connection: in this thread, this thread's connection
        try:
            with transaction.atomic(), own.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
                self._raw = own.connection
                with tenant_scope(self.organization):
                    cursor.execute("SET LOCAL work_mem = '256MB'")
                    cursor.execute("SET LOCAL jit = off")
                    for part in self.parts:
                        if self._stopping.is_set():
                            break
                        self._ready.put(self._compute(cursor, part))
        except BaseException as error:  # noqa: BLE001 - handed to the evaluating thread
            self.error = error
            self._ready.put(error)
        finally:
            self._raw = None
            own.close()

    def _compute(self, cursor: Any, part: tuple[int, int, int]) -> tempfile.SpooledTemporaryFile:
        spool = tempfile.SpooledTemporaryFile(max_size=16 << 20)  # noqa: SIM115 - closed by the caller
        try:
            text, params = sql.violations_sql(self.active, self.organization.pk, part=part)
            with cursor.copy(f"COPY ({text}) TO STDOUT (FORMAT binary)", params) as copy:
                for block in copy:
                    spool.write(block)
        except BaseException:
            spool.close()
            raise
        return spool

    def next_part(self) -> tempfile.SpooledTemporaryFile:
        """The next part's rows (the caller closes the file), once computed."""
        item = self._ready.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def cancel(self) -> None:
        """Stop computing (the evaluation failed): the statement running is cancelled."""
        self._stopping.set()
        raw = self._raw
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.cancel_safe()

    def discard(self) -> None:
        """Close the files of parts computed but not taken (after a failure)."""
        while not self._ready.empty():
            item = self._ready.get_nowait()
            if not isinstance(item, BaseException):
                item.close()


def _lock(organization: Organization) -> None:
    """One evaluation of an organization at a time (until the transaction ends)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, organization.pk])


def _grants_digest(organization: Organization) -> str:
    """A digest of which teams hold which account: scopes by team and findings' owner teams
    depend on it."""
    held = teams_by_account(organization)
    text = ",".join(f"{pk}:{slug}" for pk in sorted(held) for slug in held[pk][1])
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _state(organization: Organization) -> EvaluationState | None:
    return EvaluationState.objects.for_org(organization).filter(engine=ENGINE_VERSION).first()


def _active_versions(rules: Sequence[Rule]) -> dict[str, int]:
    return {str(rule.pk): rule.version for rule in rules if rule.active}


def _remember_rules(organization: Organization, rules: Sequence[Rule]) -> None:
    """The rules were evaluated over every resource: the ledger records their versions (an
    inactive rule, its findings resolved, is forgotten)."""
    state = _state(organization)
    if state is None:
        return  # no ledger yet: the next run evaluates everything
    for rule in rules:
        if rule.active:
            state.rules[str(rule.pk)] = rule.version
        else:
            state.rules.pop(str(rule.pk), None)
    state.save(update_fields=["rules"])


_LIVE = (
    "SELECT r.id, r.fingerprint FROM inventory_resource r "
    "WHERE r.organization_id = %s AND r.deleted_at IS NULL"
)


def _record_all_resources(organization: Organization) -> int:
    """The ledger of resources becomes every live resource's present fingerprint. Returns how
    many live resources."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM policies_evaluatedresource WHERE organization_id = %s", [organization.pk]
        )
        cursor.execute(
            "INSERT INTO policies_evaluatedresource (organization_id, resource_id, fingerprint) "
            f"SELECT %s, l.id, l.fingerprint FROM ({_LIVE}) l",
            [organization.pk, organization.pk],
        )
        return cursor.rowcount


CHANGED = ("SELECT id FROM policies_changed", [])  # the staged resources, as a resource_query


def _stage(select: str, params: list[Any]) -> int:
    """Into the temporary table policies_changed (id, fingerprint; NULL when not live), for
    this transaction: the resources `select` yields. Returns how many."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS policies_changed")
        cursor.execute(
            f"CREATE TEMPORARY TABLE policies_changed ON COMMIT DROP AS {select}", params
        )
        return cursor.rowcount


def _stage_changed(organization: Organization) -> int:
    """Stage the live resources whose fingerprint differs from the ledger's or that it lacks,
    and the resources it holds that are no longer live."""
    return _stage(
        "SELECT coalesce(l.id, e.resource_id) AS id, l.fingerprint "
        f"FROM ({_LIVE}) l FULL JOIN (SELECT e.resource_id, e.fingerprint "
        "FROM policies_evaluatedresource e WHERE e.organization_id = %s) e "
        "ON e.resource_id = l.id WHERE l.fingerprint IS DISTINCT FROM e.fingerprint",
        [organization.pk, organization.pk],
    )


def _record_changed(organization: Organization) -> None:
    """The ledger takes the staged fingerprints (read before the evaluation)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM policies_evaluatedresource e USING policies_changed c "
            "WHERE e.organization_id = %s AND e.resource_id = c.id",
            [organization.pk],
        )
        cursor.execute(
            "INSERT INTO policies_evaluatedresource (organization_id, resource_id, fingerprint) "
            "SELECT %s, c.id, c.fingerprint FROM policies_changed c "
            "WHERE c.fingerprint IS NOT NULL",
            [organization.pk],
        )


_RETIRE = """
INSERT INTO policies_findingevent (organization_id, finding_id, rule_pk, rule_slug, rule_version,
    resource_id, account_id, kind, found_key, severity, exemption_id, event, from_status,
    to_status, open_delta, exempt_delta, at)
SELECT f.organization_id, f.id, f.rule_id,
    (SELECT r.rule_id FROM policies_rule r WHERE r.id = f.rule_id), f.rule_version,
    f.resource_id, f.account_id, f.kind, f.found_key, f.severity,
    CASE WHEN f.status = 'exempted' THEN f.exemption_id END, %s, f.status, 'resolved',
    CASE WHEN f.status = 'open' THEN -1 ELSE 0 END,
    CASE WHEN f.status = 'exempted' THEN -1 ELSE 0 END, %s
FROM policies_finding f WHERE f.organization_id = %s AND f.status <> 'resolved' AND {where}
"""


def retire_findings(
    organization: Organization, where: str, params: Sequence[Any], *, event: str
) -> int:
    """Append `event` (to resolved, from its status) to the ledger for each unresolved finding
    `where` selects (SQL over `f`, policies_finding, whose rules still exist), before the
    caller deletes them: a finding leaves the history resolved, never silently. Lapsed
    exemptions are written down first. Returns how many events."""
    exemptions.expire(organization)
    with connection.cursor() as cursor:
        cursor.execute(_RETIRE.format(where=where), [event, clock.now(), organization.pk, *params])
        return cursor.rowcount


def delete_findings_of(rule: Rule) -> int:
    """Delete a rule's findings (the rule is being deleted), their unresolved ones retired in
    the ledger first (rule_retired). Returns how many findings were deleted."""
    organization = rule.organization
    with transaction.atomic():
        retire_findings(
            organization,
            "f.rule_id = %s",
            [rule.pk],
            event=FindingEvent.RULE_RETIRED,
        )
        return (
            Finding.objects.for_org(organization).filter(rule=rule)._raw_delete(Finding.objects.db)
        )


@transaction.atomic
def evaluate_organization(
    organization: Organization, *, trigger: str = "manual", force: bool = False
) -> dict:
    """Bring every finding of the organization up to date: what changed since the last run
    (the ledger, above), or everything when `force` or nothing is known. Then the day's score
    snapshot (policies.scoring.scores) when findings changed or the day has none. One
    policy.evaluate event with the counts."""
    with connection.cursor() as cursor:
        # Nothing written by this transaction yet (no transaction id): connections of their own
        # see what it sees, so a full run may be split (_evaluate_in_parts).
        cursor.execute("SELECT pg_current_xact_id_if_assigned() IS NULL")
        (unwritten,) = cursor.fetchone()
    _lock(organization)
    exemptions.expire(organization)  # even when nothing else changed (evaluate_rules does too)
    with connection.cursor() as cursor:  # hashes of a million rows in memory (this transaction)
        cursor.execute("SET LOCAL work_mem = '256MB'")
    rules = list(Rule.objects.for_org(organization))
    active = _active_versions(rules)
    grants = _grants_digest(organization)
    state = _state(organization)
    result: dict[str, Any] = {"trigger": trigger, "rules": len(active)}
    full = force or state is None or state.grants != grants
    if full or _ledger_lost(organization):
        live = _record_all_resources(organization)  # the fingerprints before the rules read
        split = unwritten and live >= SPLIT_MIN_RESOURCES
        counts = evaluate_rules(organization, rules, split=split)
        result.update(mode="full", rules_evaluated=len(active), resources_evaluated="all")
    else:
        changed = [
            rule for rule in rules if state.rules.get(str(rule.pk)) != active.get(str(rule.pk))
        ]
        counts = {"new": 0, "resolved": 0}
        if changed:
            part = evaluate_rules(organization, changed)
            counts = {"new": part["new"], "resolved": part["resolved"]}
        resources = _stage_changed(organization)
        if resources:
            part = evaluate_rules(organization, rules, resource_query=CHANGED)
            counts = {k: counts[k] + part[k] for k in counts}
            _record_changed(organization)
        result.update(
            mode="incremental", rules_evaluated=len(changed), resources_evaluated=resources
        )
    result.update(new=counts["new"], resolved=counts["resolved"], failing=_open_count(organization))
    EvaluationState.objects.for_org(organization).delete()
    EvaluationState.objects.create(
        organization=organization,
        rules=active,
        grants=grants,
        engine=ENGINE_VERSION,
        evaluated_at=clock.now(),
    )

    unchanged = not (counts["new"] or counts["resolved"] or result["mode"] == "full")
    today = ScoreSnapshot.objects.for_org(organization).filter(
        day=clock.now().date(), source=ScoreSnapshot.MEASURED
    )
    result["snapshot_rows"] = 0 if unchanged and today.exists() else take_snapshot(organization)
    audit.record(audit_events.EVALUATE, data=result)
    return result


def _ledger_lost(organization: Organization) -> bool:
    """The ledger is empty while live resources exist: PostgreSQL emptied it after a crash (an
    unlogged table), or it was never written."""
    live = Resource.objects.for_org(organization).filter(deleted_at__isnull=True)
    return not EvaluatedResource.objects.for_org(organization).exists() and live.exists()


def _open_count(organization: Organization) -> int:
    return Finding.objects.for_org(organization).open().count()


def _touched_by(scan: ScanRun) -> tuple[str, list[Any]]:
    """Resources the scan created, changed the tags of, deleted or restored: its TagEvent rows
    (changed, deleted, restored) and the resources it saw first."""
    return (
        "SELECT e.resource_id FROM inventory_tagevent e "
        "WHERE e.organization_id = %s AND e.scan_id = %s "
        "UNION SELECT n.id FROM inventory_resource n "
        "WHERE n.organization_id = %s AND n.first_scan_id = %s",
        [scan.organization_id, scan.pk, scan.organization_id, scan.pk],
    )


@transaction.atomic
def evaluate_after_scan(scan: ScanRun, actor: Any = None) -> dict | None:
    """Incremental evaluation after a scan: every rule, only the resources the scan touched
    (deleted ones have their findings resolved). Nothing (and no event) when the organization
    has no active rule."""
    organization = scan.organization
    rules = list(Rule.objects.for_org(organization))
    if not any(rule.active for rule in rules):
        return None
    _lock(organization)
    touched = _touched_by(scan)
    _stage(
        "SELECT r.id, CASE WHEN r.deleted_at IS NULL THEN r.fingerprint END AS fingerprint "
        f"FROM inventory_resource r WHERE r.id = ANY(ARRAY({touched[0]})) "
        "AND r.organization_id = %s",
        [*touched[1], organization.pk],
    )
    counts = evaluate_rules(organization, rules, resource_query=CHANGED)
    if _state(organization) is not None:
        _record_changed(organization)
    return _scan_evaluated(scan, rules, counts, actor)


def _scan_evaluated(scan: ScanRun, rules: list[Rule], counts: dict, actor: Any) -> dict:
    result = {"trigger": "scan", "scan": scan.pk, "rules": sum(r.active for r in rules), **counts}
    audit.record(audit_events.EVALUATE, target=scan, data=result, actor=actor)
    return result
