"""What the member accounts hold, counted through the list/describe APIs after seeding (not the
seeder's own tally): per resource type, the defaults AWS made by itself, and the snapshots
moto lists that the accounts do not own."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from botocore.client import BaseClient

from .session import Estate, Member


def census(estate: Estate) -> tuple[Counter[str], Counter[str], int]:
    """(resources per type, AWS-made defaults per type, foreign snapshots) over every member
    account: the regional types in each region it uses, S3 and CloudFront once."""
    counts: Counter[str] = Counter()
    defaults: Counter[str] = Counter()
    foreign = 0
    for member in estate.members:
        for region in member.sites:
            foreign += _count_ec2(member, region, counts, defaults)
            _count_balancers_and_functions(member, region, counts)
            _count_containers(member, region, counts)
            _count_data(member, region, counts)
        home = estate.regions[0]
        counts["s3:bucket"] += len(member.client("s3", home).list_buckets()["Buckets"])
        distributions = member.client("cloudfront", home).list_distributions()
        counts["cloudfront:distribution"] += len(
            distributions.get("DistributionList", {}).get("Items", [])
        )
    return counts, defaults, foreign


def _count_ec2(member: Member, region: str, counts: Counter, defaults: Counter) -> int:
    """EC2's types into counts (AWS's default VPCs, subnets and groups into defaults); returns
    how many listed snapshots another account owns."""
    ec2 = member.client("ec2", region)
    foreign = 0
    for item in items(ec2, "describe_instances", "Reservations"):
        counts["ec2:instance"] += sum(i["State"]["Name"] != "terminated" for i in item["Instances"])
    counts["ec2:volume"] += len(items(ec2, "describe_volumes", "Volumes"))
    for snap in items(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"]):
        if snap.get("OwnerId") == member.account_id:
            counts["ec2:snapshot"] += 1
        else:
            foreign += 1
    counts["ec2:image"] += len(items(ec2, "describe_images", "Images", ["self"]))
    for vpc in items(ec2, "describe_vpcs", "Vpcs"):
        (defaults if vpc.get("IsDefault") else counts)["ec2:vpc"] += 1
    for subnet in items(ec2, "describe_subnets", "Subnets"):
        (defaults if subnet.get("DefaultForAz") else counts)["ec2:subnet"] += 1
    for group in items(ec2, "describe_security_groups", "SecurityGroups"):
        default = group.get("GroupName") == "default"
        (defaults if default else counts)["ec2:security-group"] += 1
    return foreign


def _count_balancers_and_functions(member: Member, region: str, counts: Counter) -> None:
    elbv2 = member.client("elbv2", region)
    counts["elasticloadbalancing:loadbalancer"] += len(
        items(elbv2, "describe_load_balancers", "LoadBalancers")
    )
    counts["elasticloadbalancing:targetgroup"] += len(
        items(elbv2, "describe_target_groups", "TargetGroups")
    )
    counts["elb:loadbalancer"] += len(
        items(member.client("elb", region), "describe_load_balancers", "LoadBalancerDescriptions")
    )
    counts["lambda:function"] += len(
        items(member.client("lambda", region), "list_functions", "Functions")
    )


def _count_containers(member: Member, region: str, counts: Counter) -> None:
    ecs = member.client("ecs", region)
    for cluster in items(ecs, "list_clusters", "clusterArns"):
        counts["ecs:cluster"] += 1
        counts["ecs:service"] += len(items(ecs, "list_services", "serviceArns", cluster=cluster))
    eks = member.client("eks", region)
    for cluster in items(eks, "list_clusters", "clusters"):
        counts["eks:cluster"] += 1
        counts["eks:nodegroup"] += len(
            items(eks, "list_nodegroups", "nodegroups", clusterName=cluster)
        )


def _count_data(member: Member, region: str, counts: Counter) -> None:
    rds = member.client("rds", region)
    counts["rds:db"] += len(items(rds, "describe_db_instances", "DBInstances"))
    counts["rds:cluster"] += len(items(rds, "describe_db_clusters", "DBClusters"))
    counts["dynamodb:table"] += len(
        items(member.client("dynamodb", region), "list_tables", "TableNames")
    )
    counts["elasticache:cluster"] += len(
        items(member.client("elasticache", region), "describe_cache_clusters", "CacheClusters")
    )
    counts["elasticfilesystem:file-system"] += len(
        items(member.client("efs", region), "describe_file_systems", "FileSystems")
    )


def items(client: BaseClient, operation: str, key: str, owners: Iterable[str] = (), **kwargs):
    """Every item of a paginated list/describe call."""
    if owners:
        kwargs["Owners"] = list(owners)
    found: list[Any] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        found.extend(page.get(key, []))
    return found
