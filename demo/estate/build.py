"""The order of seeding: the organization and its roles; per member account a skeleton (a network,
a first instance and a golden AMI per site, then its expensive resources and distributions);
then the cheap resources up to the target, split over accounts and regions by weight; then a
census and the summary."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import containers, databases, ec2, lambda_, load_balancers, storage
from .census import census
from .cloudfront import distribution
from .organization import create_organization, create_roles
from .plan import (
    DEFAULT_REGIONS,
    MANAGEMENT_ACCOUNT_ID,
    READ_ONLY_ROLE,
    RESOURCE_TYPES,
    largest_remainder,
)
from .session import Estate, Member, Site
from .tagging import HYGIENE

# The expensive resources an AccountPlan places, by the names its placements use.
PLACE: dict[str, Callable[[Member, Site], None]] = {
    "alb": load_balancers.alb,
    "nlb": load_balancers.nlb,
    "classic-elb": load_balancers.classic_elb,
    "ecs": containers.ecs,
    "eks": containers.eks,
    "rds-mysql": databases.rds_mysql,
    "rds-postgres": databases.rds_postgres,
    "rds-aurora": databases.rds_aurora,
    "elasticache": databases.elasticache,
    "efs": storage.file_system,
}
# The cheap resources' shares of a site's budget (instances count with their root volumes,
# images with their snapshots).
CHEAP_MIX = {"instance": 0.46, "volume": 0.10, "snapshot": 0.12, "image": 0.06}
CHEAP_MIX |= {"bucket": 0.08, "table": 0.08, "function": 0.10}
# A member account's budget over its regions, primary first.
REGION_WEIGHTS = (0.5, 0.3, 0.2)


@dataclass
class EstateSummary:
    management_account_id: str
    organization_id: str
    # [{"account_id", "name", "ou_path", "role_arn", "regions"}], role_arn is TagSenseReadOnly's.
    accounts: list[dict[str, Any]]
    # Resources in the member accounts per resource type, counted through the AWS APIs after
    # seeding, without the ones AWS makes by itself (see defaults).
    counts: dict[str, int]
    total: int
    # Made by AWS (moto), not by the seeder, and found by a scan too: each region's default VPC
    # and its subnets, and the default security group of every VPC.
    defaults: dict[str, int] = field(default_factory=dict)
    # How many resources drew each tag-hygiene card (resources tagged through the Tagger).
    hygiene: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    api_calls: int = 0
    notes: list[str] = field(default_factory=list)


def seed_estate(
    endpoint_url: str,
    resources: int = 2000,
    seed: int = 7,
    regions: Sequence[str] = DEFAULT_REGIONS,
    *,
    external_id: str = "",
) -> EstateSummary:
    """Seed a demo estate of at least `resources` resources into the moto server at
    endpoint_url, which must not hold an organization yet. external_id, if given, becomes the
    sts:ExternalId condition of every TagSenseReadOnly role's trust policy."""
    estate = Estate(endpoint_url, resources, seed, regions, external_id)
    started = time.monotonic()
    organization_id = create_organization(estate)
    number = 0
    for member in estate.members:
        member.login()
        create_roles(member)
        number = skeleton(member, number)
    _fill_to_target(estate)
    return _summary(estate, organization_id, started)


def skeleton(member: Member, number: int) -> int:
    """Networks, a first instance and a golden AMI per site; every expensive type. number is
    the last site number used (a VPC's second CIDR octet); returns the new last one."""
    estate = member.estate
    for index in range(len(estate.regions)):
        region = estate.region_of(member, index)
        number += 1
        site = Site(region=region, index=index, number=number)
        member.sites[region] = site
        ec2.network(member, site)
        app = member.rng.choice(member.plan.apps)
        ec2.fleet(member, site, app, 1, "private-a")
        if index == 0:
            site.golden_ami = ec2.image(member, site, site.instances[0])
    for index, kinds in sorted(member.plan.placements.items()):
        site = estate.site(member, index)
        for kind in kinds:
            PLACE[kind](member, site)
    for origin in member.plan.distributions:
        distribution(member, origin)
    return number


def _fill_to_target(estate: Estate) -> None:
    """Cheap resources until the estate holds at least estate.resources: the budget left by
    the skeletons split over accounts by weight, then over each account's regions."""
    budget = max(0, estate.resources - sum(estate.created.values()))
    shares = largest_remainder(budget, [m.plan.weight for m in estate.members])
    for member, share in zip(estate.members, shares, strict=True):
        region_weights = list(REGION_WEIGHTS[: len(estate.regions)])
        region_weights += [0.2] * (len(estate.regions) - len(region_weights))
        parts = largest_remainder(share, region_weights)
        for index, part in enumerate(parts):
            fill(member, estate.site(member, index), part, primary=index == 0)
    # Rounding leaves the count at or above the target; top up with tables if not.
    position = 0
    while sum(estate.created.values()) < estate.resources:
        member = estate.members[position % len(estate.members)]
        storage.table(member, member.sites[estate.region_of(member, position)])
        position += 1


def fill(member: Member, site: Site, budget: int, primary: bool) -> None:
    """budget cheap resources in one site, mostly instances and their volumes."""
    units = dict(zip(CHEAP_MIX, largest_remainder(budget, list(CHEAP_MIX.values())), strict=True))
    instances = math.ceil(units["instance"] / 2)  # each comes with its root volume
    images = math.ceil(units["image"] / 2)  # each comes with its snapshot
    rng = member.rng
    while instances > 0:
        size = min(instances, rng.randint(2, 8))
        app = rng.choice(member.plan.apps)
        subnet = rng.choice(("private-a", "private-b"))
        ec2.fleet(member, site, app, size, subnet)
        instances -= size
    minimum = 1 if primary else 0  # one of each cheap type in every account
    for _ in range(max(units["volume"], minimum)):
        ec2.data_volume(member, site)
    for _ in range(images):
        ec2.image(member, site, rng.choice(site.instances))
    for _ in range(max(units["snapshot"], minimum)):
        ec2.snapshot(member, site)
    for _ in range(max(units["bucket"], minimum)):
        storage.bucket(member, site)
    for _ in range(max(units["table"], minimum)):
        storage.table(member, site)
    for _ in range(max(units["function"], minimum)):
        lambda_.function(member, site)


def _summary(estate: Estate, organization_id: str, started: float) -> EstateSummary:
    """The census's counts and what the seeding did; seconds from `started` to the end."""
    counts, defaults, foreign = census(estate)
    hygiene: Counter[str] = Counter()
    for member in estate.members:
        hygiene.update(member.tagger.hygiene)
    return EstateSummary(
        management_account_id=MANAGEMENT_ACCOUNT_ID,
        organization_id=organization_id,
        accounts=[_account(estate, m) for m in estate.members],
        counts={t: counts.get(t, 0) for t in RESOURCE_TYPES},
        total=sum(counts.values()),
        defaults=dict(defaults),
        hygiene={name: hygiene.get(name, 0) for name, _ in HYGIENE},
        seconds=round(time.monotonic() - started, 1),
        api_calls=estate.api_calls,
        notes=_notes(estate.created, counts, foreign),
    )


def _account(estate: Estate, member: Member) -> dict[str, Any]:
    return {
        "account_id": member.account_id,
        "name": member.plan.name,
        "ou_path": member.ou_path,
        "role_arn": member.roles[READ_ONLY_ROLE],
        "regions": [estate.region_of(member, i) for i in range(len(estate.regions))],
    }


def _notes(created: Counter[str], counts: Counter[str], foreign: int) -> list[str]:
    """Where the census disagrees with what was created, and why a scan may see more."""
    notes = []
    for resource_type in RESOURCE_TYPES:
        if counts.get(resource_type, 0) != created.get(resource_type, 0):
            notes.append(
                f"{resource_type}: {counts.get(resource_type, 0)} found, "
                f"{created.get(resource_type, 0)} created"
            )
    if foreign:
        notes.append(
            f"{foreign} snapshots not owned by the member accounts are listed by "
            "DescribeSnapshots(OwnerIds=['self']) (moto ignores OwnerIds; these belong to "
            "moto's default AMIs): a scan will report them. Start moto_server with "
            "MOTO_EC2_LOAD_DEFAULT_AMIS=false to avoid them."
        )
    return notes
