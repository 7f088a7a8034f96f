"""Rules into findings, set-based: one INSERT ... SELECT ... ON CONFLICT for every violation
of the evaluated rules (new findings, still failing ones, reopened resolved ones) and one
UPDATE resolving the findings that no longer fail. Never a statement per resource.

Three ways in: a full run for an organization (evaluate_organization: a button and the API),
after a scan for the resources it touched (evaluate_after_scan, called by
inventory.runner.finish_scan), and for the rules a change touched (evaluate_rules, called by
policies.services). Callers run inside the organization's tenant scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.utils import timezone

import audit

from . import sql
from .models import Finding, Rule

if TYPE_CHECKING:
    from accounts.models import Organization
    from inventory.models import ScanRun

# ruff: noqa: S608 - the statements interpolate only compiled fragments; values are parameters
# One statement: the violations once (materialized), the upsert writing only findings that are
# new, reopened or changed (an unchanged finding is not rewritten: a re-evaluation with nothing
# changed writes nothing), and the resolution of the evaluated rules' findings that are not
# among the violations (a hashed anti-join, not a last_seen comparison that would need every
# failing finding rewritten). Teams are computed once per account, not once per finding.
_EVALUATE = """
WITH {touched} v AS MATERIALIZED ({violations}),
teams AS MATERIALIZED (
    SELECT r.account_id, {teams} AS owner_teams
    FROM (SELECT a.id AS account_id, a.organization_id FROM inventory_awsaccount a
          WHERE a.organization_id = %s) r
),
up AS (
    INSERT INTO policies_finding (organization_id, rule_id, resource_id, account_id,
        rule_version, status, kind, found_key, severity, enforcement, owner, owner_teams,
        first_seen, last_seen, resolved_at)
    SELECT %s, v.tag, v.resource_id, v.account_id, pr.version, 'open', v.kind, v.found_key,
        coalesce(pr.spec ->> 'severity', 'medium'), coalesce(pr.spec ->> 'enforcement', 'report'),
        v.owner, coalesce(t.owner_teams, '[]'::jsonb), %s, %s, NULL
    FROM v
    JOIN policies_rule pr ON pr.id = v.tag
    LEFT JOIN teams t ON t.account_id = v.account_id
    ON CONFLICT (organization_id, rule_id, resource_id) DO UPDATE SET
        account_id = EXCLUDED.account_id,
        rule_version = EXCLUDED.rule_version,
        kind = EXCLUDED.kind,
        found_key = EXCLUDED.found_key,
        severity = EXCLUDED.severity,
        enforcement = EXCLUDED.enforcement,
        owner = EXCLUDED.owner,
        owner_teams = EXCLUDED.owner_teams,
        last_seen = EXCLUDED.last_seen,
        first_seen = CASE WHEN policies_finding.status = 'resolved'
            THEN EXCLUDED.first_seen ELSE policies_finding.first_seen END,
        status = CASE WHEN policies_finding.status = 'resolved'
            THEN 'open' ELSE policies_finding.status END,
        resolved_at = NULL
    WHERE policies_finding.status = 'resolved' OR policies_finding.resolved_at IS NOT NULL
        OR (policies_finding.account_id, policies_finding.rule_version, policies_finding.kind,
            policies_finding.found_key, policies_finding.severity,
            policies_finding.enforcement, policies_finding.owner, policies_finding.owner_teams)
        IS DISTINCT FROM (EXCLUDED.account_id, EXCLUDED.rule_version, EXCLUDED.kind,
            EXCLUDED.found_key, EXCLUDED.severity, EXCLUDED.enforcement, EXCLUDED.owner,
            EXCLUDED.owner_teams)
    RETURNING (xmax = 0) AS inserted
),
resolved AS (
    UPDATE policies_finding f SET status = 'resolved', resolved_at = %s
    WHERE f.organization_id = %s AND f.status <> 'resolved' AND f.rule_id = ANY(%s) {resources}
      AND NOT EXISTS (SELECT 1 FROM v WHERE v.tag = f.rule_id AND v.resource_id = f.resource_id)
    RETURNING 1
)
SELECT (SELECT count(*) FROM v), (SELECT count(*) FROM up WHERE inserted),
    (SELECT count(*) FROM resolved)
"""


def evaluate_rules(
    organization: Organization,
    rules: Sequence[Rule],
    *,
    resource_query: tuple[str, Sequence[Any]] | None = None,
) -> dict[str, int]:
    """Evaluate `rules` over the organization's live resources (only those `resource_query`
    selects, when given) and bring their findings up to date. Inactive rules resolve their
    open findings. Returns {"failing", "new", "resolved"}."""
    now = timezone.now()
    active = [(rule.pk, rule.rule_spec) for rule in rules if rule.active]
    touched, touched_params, resources, scoped = "", [], "", None
    if resource_query is not None:
        touched = f"touched (id) AS MATERIALIZED ({resource_query[0]}),"
        touched_params = list(resource_query[1])
        scoped = ("SELECT id FROM touched", [])
        resources = "AND f.resource_id = ANY(ARRAY(SELECT id FROM touched))"
    violations, params = sql.violations_sql(active, organization.pk, resource_query=scoped)
    with transaction.atomic(), connection.cursor() as cursor:
        # This transaction only: hashes of a million violations in memory, and no JIT (its
        # compilation of 25 rules' expressions cost more than the statement ran).
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            _EVALUATE.format(
                touched=touched,
                violations=violations,
                teams=sql.teams_json_sql(),
                resources=resources,
            ),
            [
                *touched_params,
                *params,
                organization.pk,
                organization.pk,
                now,
                now,
                now,
                organization.pk,
                [rule.pk for rule in rules],
            ],
        )
        failing, new, resolved = cursor.fetchone()
    return {"failing": failing, "new": new, "resolved": resolved}


def delete_findings_of(rule: Rule) -> int:
    return (
        Finding.objects.for_org(rule.organization).filter(rule=rule)._raw_delete(Finding.objects.db)
    )


@transaction.atomic
def evaluate_organization(organization: Organization, *, trigger: str = "manual") -> dict:
    """A full run: every rule of the organization over every live resource, then the day's
    score snapshot (policies.scores); one policy.evaluate event with the counts."""
    rules = list(Rule.objects.for_org(organization))
    counts = evaluate_rules(organization, rules)
    result = {
        "trigger": trigger,
        "rules": sum(1 for r in rules if r.active),
        **counts,
    }
    from .scores import take_snapshot

    result["snapshot_rows"] = take_snapshot(organization)  # the day's scores, on demand
    audit.record("policy.evaluate", data=result)
    return result


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
    counts = evaluate_rules(organization, rules, resource_query=_touched_by(scan))
    result = {"trigger": "scan", "scan": scan.pk, "rules": sum(r.active for r in rules), **counts}
    audit.record("policy.evaluate", target=scan, data=result, actor=actor)
    return result
