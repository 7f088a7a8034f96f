"""Queries over the relationship graph: neighbours, blast radius, path. Callers are inside the
organization's tenant scope. Edges are followed in both directions: what a VPC holds and what
an instance sits in are both within its reach."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from .models import Edge, Resource

MAX_DEPTH = 6


@dataclass(frozen=True)
class Hop:
    arn: str
    depth: int


def neighbours(organization, arn: str) -> list[Edge]:
    return list(
        Edge.objects.for_org(organization)
        .filter(Q(source_arn=arn) | Q(target_arn=arn))
        .order_by("kind", "source_arn", "target_arn")
    )


def _step(organization, frontier: list[str]) -> dict[str, set[str]]:
    """One hop from each frontier ARN (both directions), batched."""
    found: dict[str, set[str]] = {arn: set() for arn in frontier}
    for start in range(0, len(frontier), 1000):
        chunk = frontier[start : start + 1000]
        for source, target in (
            Edge.objects.for_org(organization)
            .filter(source_arn__in=chunk)
            .values_list("source_arn", "target_arn")
        ):
            found[source].add(target)
        for source, target in (
            Edge.objects.for_org(organization)
            .filter(target_arn__in=chunk)
            .values_list("source_arn", "target_arn")
        ):
            found[target].add(source)
    return found


_BLAST_SQL = """
WITH RECURSIVE reach(arn, depth) AS (
    SELECT %(start)s::varchar, 0
  UNION
    SELECT next.arn, reach.depth + 1
    FROM reach
    CROSS JOIN LATERAL (
        SELECT e.target_arn AS arn FROM inventory_edge e
        WHERE e.organization_id = %(org)s AND e.source_arn = reach.arn
      UNION ALL
        SELECT e.source_arn FROM inventory_edge e
        WHERE e.organization_id = %(org)s AND e.target_arn = reach.arn
    ) AS next
    WHERE reach.depth < %(depth)s
)
SELECT arn, min(depth) FROM reach WHERE arn <> %(start)s GROUP BY arn ORDER BY 2, 1
"""


def blast_radius(organization, arn: str, depth: int = 3) -> list[Hop]:
    """Everything reachable within `depth` hops, nearest first (a recursive CTE on
    PostgreSQL, a batched breadth-first walk elsewhere)."""
    depth = max(1, min(depth, MAX_DEPTH))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_BLAST_SQL, {"start": arn, "org": organization.pk, "depth": depth})
            return [Hop(a, d) for a, d in cursor.fetchall()]
    seen = {arn: 0}
    frontier = [arn]
    for level in range(1, depth + 1):
        step = _step(organization, frontier)
        frontier = sorted({n for targets in step.values() for n in targets} - seen.keys())
        for n in frontier:
            seen[n] = level
        if not frontier:
            break
    return sorted((Hop(a, d) for a, d in seen.items() if a != arn), key=lambda h: (h.depth, h.arn))


def path(organization, source: str, target: str, max_depth: int = MAX_DEPTH) -> list[str]:
    """The shortest chain of ARNs from source to target (both included), or [] if none."""
    if source == target:
        return [source]
    parent: dict[str, str | None] = {source: None}
    frontier = deque([source])
    for _ in range(max_depth):
        step = _step(organization, list(frontier))
        frontier = deque()
        for node, nexts in step.items():
            for n in sorted(nexts):
                if n in parent:
                    continue
                parent[n] = node
                if n == target:
                    chain = [n]
                    while parent[chain[-1]] is not None:
                        chain.append(parent[chain[-1]])
                    return chain[::-1]
                frontier.append(n)
        if not frontier:
            break
    return []


def resolve_dns_targets(organization) -> int:
    """Edges recorded against a DNS name (a CloudFront origin) re-pointed at the load balancer
    that answers for it, once that load balancer is in the inventory."""
    pending = list(Edge.objects.for_org(organization).filter(target_arn__startswith="dns:"))
    if not pending:
        return 0
    names = {e.target_arn[4:].lower().removeprefix("dualstack.") for e in pending}
    by_dns = {}
    for resource_arn, config in (
        Resource.objects.for_org(organization)
        .live()
        .filter(resource_type__in=["elasticloadbalancing:loadbalancer", "elb:loadbalancer"])
        .values_list("arn", "config")
    ):
        dns = str(config.get("DNSName", "")).lower()
        if dns in names:
            by_dns[dns] = resource_arn
    resolved = 0
    for edge in pending:
        name = edge.target_arn[4:].lower().removeprefix("dualstack.")
        if name in by_dns:
            Edge.objects.for_org(organization).filter(pk=edge.pk).update(target_arn=by_dns[name])
            resolved += 1
    return resolved
