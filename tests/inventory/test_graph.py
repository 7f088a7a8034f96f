"""Graph queries: neighbours, blast radius within N hops (both directions), shortest path."""

import pytest

from inventory import graph
from inventory.models import Edge
from tagsense.tenancy.db import tenant_scope

pytestmark = pytest.mark.django_db

# vpc <-in_vpc- subnet <-in_subnet- instance -attached_volume-> volume <-snapshot_of- snap
EDGES = [
    ("subnet", "in_vpc", "vpc"),
    ("instance", "in_subnet", "subnet"),
    ("instance", "attached_volume", "volume"),
    ("snap", "snapshot_of", "volume"),
    ("lb", "in_subnet", "subnet"),
    ("island", "in_vpc", "other-vpc"),
]


@pytest.fixture
def edges(org, other_org):
    with tenant_scope(org):
        Edge.objects.bulk_create(
            Edge(organization=org, source_arn=s, kind=k, target_arn=t) for s, k, t in EDGES
        )
    with tenant_scope(other_org):
        Edge.objects.create(organization=other_org, source_arn="vpc", kind="x", target_arn="leak")


def _radius(org, arn, depth):
    with tenant_scope(org):
        return {(h.arn, h.depth) for h in graph.blast_radius(org, arn, depth)}


def test_blast_radius_follows_edges_both_ways_within_depth(org, edges):
    assert _radius(org, "vpc", 1) == {("subnet", 1)}
    assert _radius(org, "vpc", 2) == {("subnet", 1), ("instance", 2), ("lb", 2)}
    assert _radius(org, "vpc", 4) == {
        ("subnet", 1),
        ("instance", 2),
        ("lb", 2),
        ("volume", 3),
        ("snap", 4),
    }


def test_blast_radius_never_crosses_organizations(org, other_org, edges):
    assert ("leak", 1) not in _radius(org, "vpc", 3)


def test_neighbours_and_path(org, edges):
    with tenant_scope(org):
        kinds = {(e.source_arn, e.kind) for e in graph.neighbours(org, "subnet")}
        assert kinds == {("subnet", "in_vpc"), ("instance", "in_subnet"), ("lb", "in_subnet")}
        assert graph.path(org, "snap", "lb") == ["snap", "volume", "instance", "subnet", "lb"]
        assert graph.path(org, "snap", "island") == []


def test_dns_origins_resolve_to_the_load_balancer(org, aws_env):
    from inventory.models import Resource
    from tests.inventory.conftest import HOME, make_account

    account = make_account(org, HOME, role=False)
    with tenant_scope(org):
        Resource.objects.create(
            organization=org,
            account=account,
            arn="arn:lb",
            region="eu-west-1",
            resource_type="elasticloadbalancing:loadbalancer",
            resource_id="web",
            config={"DNSName": "web-1.eu-west-1.elb.amazonaws.com"},
            fingerprint="x",
            first_seen="2026-01-01T00:00Z",
            last_seen="2026-01-01T00:00Z",
        )
        Edge.objects.create(
            organization=org,
            source_arn="arn:cf",
            kind="origin_load_balancer",
            target_arn="dns:dualstack.WEB-1.eu-west-1.elb.amazonaws.com",
        )
        assert graph.resolve_dns_targets(org) == 1
        assert Edge.objects.get(source_arn="arn:cf").target_arn == "arn:lb"
