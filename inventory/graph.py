"""Queries over the relationship graph: neighbours, blast radius, path. Callers are inside the
organization's tenant scope.

An edge is stored source -> target where the source depends on the target: it sits in it
(instance -> subnet -> VPC), uses it (instance -> volume, security group, AMI; load balancer ->
target group -> instance; CloudFront -> origin) or was made from it (volume -> the snapshot it
was created from, snapshot -> the volume it copies). A few kinds are recorded from the other
side, by the scanner of the resource depended on: `_REVERSED` lists them. Blast radius follows
the dependency either way (`DEPENDENTS`, `DEPENDENCIES`) or ignores it (`BOTH`)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from .models import Edge, Resource

MAX_DEPTH = 6

DEPENDENTS = "dependents"  # what is affected if it breaks or changes: edges followed backwards
DEPENDENCIES = "dependencies"  # what it relies on: edges followed forwards
BOTH = "both"  # everything connected, whatever the direction
DIRECTIONS = (DEPENDENTS, DEPENDENCIES, BOTH)

# Kinds whose target depends on their source, keyed by kind: the AWS service of the source ARN
# for which this holds, or "" for every source.
#   load_balancer: target group -> its load balancer; the load balancer forwards to the group.
#   target_group from an ECS service: the service registers its tasks in the group, so the
#     group (and its load balancer) depend on the service, as a group depends on its `target`
#     instances. From a load balancer, target_group is the plain direction.
_REVERSED = {"load_balancer": "", "target_group": "ecs"}
# The same test in SQL over an edge `e`, built from the constants above (no outside input). The
# leading `kind IN` lets an index on (organization, source_arn, kind) find only these kinds.
_REVERSED_SQL = "(e.kind IN ({}) AND ({}))".format(
    ", ".join(f"'{kind}'" for kind in _REVERSED),
    " OR ".join(
        f"(e.kind = '{kind}'"
        + (f" AND split_part(e.source_arn, ':', 3) = '{service}'" if service else "")
        + ")"
        for kind, service in _REVERSED.items()
    ),
)


def is_reversed(kind: str, source_arn: str) -> bool:
    """True when the edge's target depends on its source (see _REVERSED)."""
    service = _REVERSED.get(kind)
    if service is None:
        return False
    return not service or source_arn.split(":")[2:3] == [service]


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


def _step(organization, frontier: list[str], direction: str = BOTH) -> dict[str, set[str]]:
    """One hop from each frontier ARN in `direction`, batched."""
    found: dict[str, set[str]] = {arn: set() for arn in frontier}
    edges = Edge.objects.for_org(organization)
    outgoing, incoming = edges, edges
    if direction == DEPENDENTS:  # only reversed kinds lead from a source to what depends on it
        outgoing = edges.filter(kind__in=_REVERSED)
    elif direction == DEPENDENCIES:
        incoming = edges.filter(kind__in=_REVERSED)
    for start in range(0, len(frontier), 1000):
        chunk = frontier[start : start + 1000]
        rows = outgoing.filter(source_arn__in=chunk).values_list("source_arn", "kind", "target_arn")
        for source, kind, target in rows:
            if direction == BOTH or (direction == DEPENDENCIES) != is_reversed(kind, source):
                found[source].add(target)
        rows = incoming.filter(target_arn__in=chunk).values_list("source_arn", "kind", "target_arn")
        for source, kind, target in rows:
            if direction == BOTH or (direction == DEPENDENTS) != is_reversed(kind, source):
                found[target].add(source)
    return found


def _step_sql(direction: str) -> str:
    """The ARNs one hop from `walk.frontier` in `direction`, as SQL."""
    forward = (
        "SELECT e.target_arn FROM inventory_edge e"
        " WHERE e.organization_id = %(org)s AND e.source_arn = ANY(walk.frontier)"
    )
    backward = (
        "SELECT e.source_arn FROM inventory_edge e"
        " WHERE e.organization_id = %(org)s AND e.target_arn = ANY(walk.frontier)"
    )
    if direction == DEPENDENTS:
        return f"{backward} AND NOT {_REVERSED_SQL}\n UNION ALL {forward} AND {_REVERSED_SQL}"
    if direction == DEPENDENCIES:
        return f"{forward} AND NOT {_REVERSED_SQL}\n UNION ALL {backward} AND {_REVERSED_SQL}"
    return f"{forward}\n UNION ALL {backward}"


# Breadth first, one row per level: `frontier` holds the ARNs first reached at `depth`, `seen`
# every ARN reached so far, so each resource is expanded once, at its nearest depth.
_BLAST_SQL = """
WITH RECURSIVE walk(depth, frontier, seen) AS (
    SELECT 0, ARRAY[%(start)s::varchar], ARRAY[%(start)s::varchar]
  UNION ALL
    SELECT walk.depth + 1, found.arns, walk.seen || found.arns
    FROM walk
    CROSS JOIN LATERAL (
        SELECT array_agg(next.arn) AS arns
        FROM (({step}) EXCEPT SELECT unnest(walk.seen)) AS next(arn)
    ) AS found
    WHERE walk.depth < %(depth)s AND found.arns IS NOT NULL
)
SELECT arn, depth FROM walk CROSS JOIN unnest(walk.frontier) AS arn
WHERE depth > 0 ORDER BY depth, arn COLLATE "C"
"""
BLAST_SQL = {d: _BLAST_SQL.format(step=_step_sql(d)) for d in DIRECTIONS}


def blast_radius(organization, arn: str, depth: int = 3, direction: str = DEPENDENTS) -> list[Hop]:
    """Every resource within `depth` hops of `arn` in `direction`, each at its nearest depth,
    ordered by depth then ARN (one recursive CTE). The default, DEPENDENTS, is the blast radius
    proper: what is affected if `arn` breaks or changes."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
    depth = max(1, min(depth, MAX_DEPTH))
    with connection.cursor() as cursor:
        cursor.execute(BLAST_SQL[direction], {"start": arn, "org": organization.pk, "depth": depth})
        return [Hop(a, d) for a, d in cursor.fetchall()]


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
