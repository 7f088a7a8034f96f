"""Graph queries: neighbours, blast radius within N hops (dependents, dependencies or both),
shortest path."""

import pytest

from inventory import graph
from inventory.models import Edge, Resource
from tagsense.tenancy.db import tenant_scope
from tests.inventory.conftest import HOME, make_account

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


def _radius(org, arn, depth, direction="both"):
    with tenant_scope(org):
        return {(h.arn, h.depth) for h in graph.blast_radius(org, arn, depth, direction)}


def test_blast_radius_both_follows_edges_both_ways_within_depth(org, edges):
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
    for direction in graph.DIRECTIONS:
        assert ("leak", 1) not in _radius(org, "vpc", 3, direction)


def test_neighbours_and_path(org, edges):
    with tenant_scope(org):
        kinds = {(e.source_arn, e.kind) for e in graph.neighbours(org, "subnet")}
        assert kinds == {("subnet", "in_vpc"), ("instance", "in_subnet"), ("lb", "in_subnet")}
        assert graph.path(org, "snap", "lb") == ["snap", "volume", "instance", "subnet", "lb"]
        assert graph.path(org, "snap", "island") == []


def test_dns_origins_resolve_to_the_load_balancer(org, aws_env):

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
            last_written="2026-01-01T00:00Z",
        )
        Edge.objects.create(
            organization=org,
            source_arn="arn:cf",
            kind="origin_load_balancer",
            target_arn="dns:dualstack.WEB-1.eu-west-1.elb.amazonaws.com",
        )
        assert graph.resolve_dns_targets(org) == 1
        assert Edge.objects.get(source_arn="arn:cf").target_arn == "arn:lb"


# A small estate with real ARNs (the ECS rule reads the service from the ARN):
#   vpc <-in_vpc- subnet <-in_subnet- web, db;  vpc <-in_vpc- sg <-security_group- web
#   web -launched_from-> ami <-launched_from- far (in another VPC);  ami -image_snapshot-> ami_snap
#   web -attached_volume-> vol -created_from-> vol_snap;  backup -snapshot_of-> vol
#   lb -target_group-> tg -target-> web;  tg -load_balancer-> lb (recorded from the group)
#   svc (ECS) -target_group-> tg2 <-target_group- lb2;  svc -in_cluster-> cluster
def _arn(kind, name, service="ec2"):
    return f"arn:aws:{service}:eu-west-1:111122223333:{kind}/{name}"


VPC, SUBNET, SG = _arn("vpc", "vpc-1"), _arn("subnet", "subnet-1"), _arn("security-group", "sg-1")
WEB, DB, FAR = _arn("instance", "i-web"), _arn("instance", "i-db"), _arn("instance", "i-far")
FAR_SUBNET, FAR_VPC = _arn("subnet", "subnet-9"), _arn("vpc", "vpc-9")
AMI, AMI_SNAP = "arn:aws:ec2:eu-west-1::image/ami-1", "arn:aws:ec2:eu-west-1::snapshot/snap-ami"
VOL, VOL_SNAP = _arn("volume", "vol-1"), "arn:aws:ec2:eu-west-1::snapshot/snap-origin"
BACKUP = "arn:aws:ec2:eu-west-1::snapshot/snap-backup"
LB = _arn("loadbalancer", "app/web/1", "elasticloadbalancing")
TG = _arn("targetgroup", "web/1", "elasticloadbalancing")
LB2 = _arn("loadbalancer", "app/api/2", "elasticloadbalancing")
TG2 = _arn("targetgroup", "api/2", "elasticloadbalancing")
SVC, CLUSTER = _arn("service", "main/api", "ecs"), _arn("cluster", "main", "ecs")
ESTATE = [
    (SUBNET, "in_vpc", VPC),
    (SG, "in_vpc", VPC),
    (WEB, "in_subnet", SUBNET),
    (WEB, "in_vpc", VPC),
    (WEB, "security_group", SG),
    (DB, "in_subnet", SUBNET),
    (WEB, "launched_from", AMI),
    (FAR, "launched_from", AMI),
    (FAR, "in_subnet", FAR_SUBNET),
    (FAR_SUBNET, "in_vpc", FAR_VPC),
    (AMI, "image_snapshot", AMI_SNAP),
    (WEB, "attached_volume", VOL),
    (VOL, "created_from", VOL_SNAP),
    (BACKUP, "snapshot_of", VOL),
    (LB, "target_group", TG),
    (TG, "target", WEB),
    (TG, "load_balancer", LB),
    (SVC, "target_group", TG2),
    (LB2, "target_group", TG2),
    (SVC, "in_cluster", CLUSTER),
]
STARTS = [VPC, SUBNET, WEB, AMI, VOL, TG, LB, SVC, TG2, CLUSTER]


@pytest.fixture
def estate(org, other_org):
    with tenant_scope(org):
        Edge.objects.bulk_create(
            Edge(organization=org, source_arn=s, kind=k, target_arn=t) for s, k, t in ESTATE
        )
    # Another organization's edges around the same ARNs: never part of org's answers.
    with tenant_scope(other_org):
        for source, kind, target in [
            ("arn:aws:ec2:eu-west-1:999:instance/i-leak", "in_subnet", SUBNET),
            (WEB, "attached_volume", "arn:aws:ec2:eu-west-1:999:volume/vol-leak"),
            ("arn:aws:elasticloadbalancing:eu-west-1:999:targetgroup/x/9", "target", WEB),
        ]:
            Edge.objects.create(
                organization=other_org, source_arn=source, kind=kind, target_arn=target
            )


def test_dependents_of_a_vpc_are_what_sits_in_it_not_what_it_uses(org, estate):
    reached = dict(_radius(org, VPC, 3, "dependents"))
    assert reached == {SUBNET: 1, SG: 1, WEB: 1, DB: 2, TG: 2, LB: 3}
    assert AMI not in reached and VOL not in reached and FAR not in reached


def test_dependents_is_the_default(org, estate):
    with tenant_scope(org):
        assert graph.blast_radius(org, VPC, 3) == graph.blast_radius(org, VPC, 3, "dependents")


def test_dependencies_of_an_instance_are_what_it_relies_on(org, estate):
    assert _radius(org, WEB, 3, "dependencies") == {
        (SUBNET, 1),
        (VPC, 1),
        (SG, 1),
        (AMI, 1),
        (VOL, 1),
        (AMI_SNAP, 2),
        (VOL_SNAP, 2),
    }
    # A target group serves its instances; the instance does not rely on the group.
    assert TG not in dict(_radius(org, WEB, 3, "dependencies"))


def test_kinds_recorded_from_the_other_side_point_the_right_way(org, estate):
    # tg -load_balancer-> lb: the load balancer depends on its group, not the reverse.
    assert _radius(org, TG, 3, "dependents") == {(LB, 1)}
    assert dict(_radius(org, LB, 3, "dependencies")) == {TG: 1, WEB: 2} | {
        a: 3 for a in (SUBNET, VPC, SG, AMI, VOL)
    }
    # An ECS service's tasks are its target group's targets: the group and its load balancer
    # are hurt when the service breaks; a load balancer's own target_group edge is plain.
    assert _radius(org, SVC, 3, "dependents") == {(TG2, 1), (LB2, 2)}
    assert _radius(org, SVC, 3, "dependencies") == {(CLUSTER, 1)}
    assert _radius(org, TG2, 3, "dependencies") == {(SVC, 1), (CLUSTER, 2)}
    assert _radius(org, CLUSTER, 3, "dependents") == {(SVC, 1), (TG2, 2), (LB2, 3)}


def test_both_reaches_across_shared_images(org, estate):
    reached = dict(_radius(org, VPC, 3, "both"))
    assert reached[AMI] == 2 and reached[FAR] == 3 and reached[DB] == 2
    assert dict(_radius(org, VPC, 4, "both"))[FAR_SUBNET] == 4


def test_never_another_organizations_edges(org, other_org, estate):
    leaks = {
        "arn:aws:ec2:eu-west-1:999:instance/i-leak",
        "arn:aws:ec2:eu-west-1:999:volume/vol-leak",
        "arn:aws:elasticloadbalancing:eu-west-1:999:targetgroup/x/9",
    }
    for direction in graph.DIRECTIONS:
        for start in (SUBNET, WEB, VPC):
            with tenant_scope(org):
                assert not leaks & {h.arn for h in graph.blast_radius(org, start, 6, direction)}
                assert not leaks & {h.arn for h in _walk(org, start, 6, direction)}


def _walk(organization, arn: str, depth: int, direction: str) -> list[graph.Hop]:
    """The blast radius by batched queries, one level at a time: the CTE's reference."""
    seen = {arn: 0}
    frontier = [arn]
    for level in range(1, depth + 1):
        step = graph._step(organization, frontier, direction)
        frontier = sorted({n for nexts in step.values() for n in nexts} - seen.keys())
        for n in frontier:
            seen[n] = level
        if not frontier:
            break
    hops = (graph.Hop(a, d) for a, d in seen.items() if a != arn)
    return sorted(hops, key=lambda h: (h.depth, h.arn))


@pytest.mark.parametrize("direction", graph.DIRECTIONS)
def test_batched_walk_gives_the_same_list_as_the_cte(org, estate, direction):
    with tenant_scope(org):
        for start in STARTS:
            for depth in (1, 2, 3, 6):
                cte = graph.blast_radius(org, start, depth, direction)
                assert _walk(org, start, depth, direction) == cte, (start, depth)


def test_an_unknown_direction_is_refused(org, estate):
    with tenant_scope(org), pytest.raises(ValueError):
        graph.blast_radius(org, VPC, 3, "upstream")
