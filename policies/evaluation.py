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
_UPSERT = """
INSERT INTO policies_finding (organization_id, rule_id, resource_id, account_id, rule_version,
    status, kind, found_key, severity, enforcement, owner, owner_teams, first_seen, last_seen,
    resolved_at)
SELECT %s, v.tag, v.resource_id, r.account_id, pr.version, 'open', v.kind, v.found_key,
    coalesce(pr.spec ->> 'severity', 'medium'), coalesce(pr.spec ->> 'enforcement', 'report'),
    left(coalesce(r.tags ->> 'Owner', ''), 256), {teams}, %s, %s, NULL
FROM ({violations}) v
JOIN inventory_resource r ON r.id = v.resource_id
JOIN policies_rule pr ON pr.id = v.tag
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
RETURNING (xmax = 0)
"""

_RESOLVE = """
UPDATE policies_finding f SET status = 'resolved', resolved_at = %s
WHERE f.organization_id = %s AND f.status <> 'resolved' AND f.rule_id = ANY(%s)
  AND f.last_seen < %s {resources}
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
    failing = new = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if active:
            violations, params = sql.violations_sql(
                active, organization.pk, resource_query=resource_query
            )
            cursor.execute(
                _UPSERT.format(teams=sql.teams_json_sql(), violations=violations),
                [organization.pk, now, now, *params],
            )
            inserted = [row[0] for row in cursor.fetchall()]
            failing, new = len(inserted), sum(inserted)
        resources, extra = "", []
        if resource_query is not None:
            resources = f"AND f.resource_id IN ({resource_query[0]})"
            extra = list(resource_query[1])
        cursor.execute(
            _RESOLVE.format(resources=resources),
            [now, organization.pk, [rule.pk for rule in rules], now, *extra],
        )
        resolved = cursor.rowcount
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
