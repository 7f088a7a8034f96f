"""Elastic Load Balancing: ELBv2 load balancers and target groups, classic load balancers."""

from __future__ import annotations

from collections.abc import Iterator

from botocore.client import BaseClient

from .base import (
    Relation,
    ResourceRecord,
    ScanContext,
    Scanner,
    pick,
    register,
    tag_list_to_dict,
)

# DescribeTags accepts at most 20 ARNs (ELBv2) or 20 names (classic) per call.
TAG_BATCH = 20


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _elbv2_tags(client: BaseClient, arns: list[str]) -> dict[str, dict[str, str]]:
    """{arn: tags} for ELBv2 load balancers or target groups, 20 ARNs a call."""
    tags: dict[str, dict[str, str]] = {}
    for batch in _batches(arns, TAG_BATCH):
        for description in client.describe_tags(ResourceArns=batch).get("TagDescriptions", []):
            tags[description["ResourceArn"]] = tag_list_to_dict(description.get("Tags"))
    return tags


def _target_relation(ctx: ScanContext, target_type: str, target_id: str) -> Relation | None:
    """A registered target as a relation; IP targets are addresses, not resources."""
    if target_type == "instance":
        return Relation("target", ctx.arn("ec2", f"instance/{target_id}"))
    if target_id.startswith("arn:"):  # lambda and alb target types register ARNs
        return Relation("target", target_id)
    return None


class Elbv2Scanner(Scanner):
    service = "elbv2"
    # Moto's TagResources rejects elbv2 ARNs; the service's AddTags tags them.
    tagging = "service"


@register
class LoadBalancerScanner(Elbv2Scanner):
    resource_type = "elasticloadbalancing:loadbalancer"
    label = "Load balancer (ALB/NLB)"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("elbv2")
        for page in self.paginate(client, "describe_load_balancers"):
            items = page.get("LoadBalancers", [])
            arns = [item["LoadBalancerArn"] for item in items]
            tags = _elbv2_tags(client, arns)
            groups = self.target_groups(client, arns)
            yield [
                self.record(ctx, item, tags.get(arn, {}), groups.get(arn, []))
                for item, arn in zip(items, arns, strict=True)
            ]

    def target_groups(self, client: BaseClient, lb_arns: list[str]) -> dict[str, list[str]]:
        """{load balancer ARN: its target group ARNs} for one page of load balancers.

        One pass over every target group per page, instead of DescribeTargetGroups by
        LoadBalancerArn per load balancer (which fails with TargetGroupNotFound in moto, for a
        load balancer without target groups).
        """
        wanted = set(lb_arns)
        groups: dict[str, list[str]] = {}
        if not wanted:
            return groups
        for page in self.paginate(client, "describe_target_groups"):
            for group in page.get("TargetGroups", []):
                for lb_arn in group.get("LoadBalancerArns", []):
                    if lb_arn in wanted:
                        groups.setdefault(lb_arn, []).append(group["TargetGroupArn"])
        return groups

    def record(
        self, ctx: ScanContext, item: dict, tags: dict[str, str], target_groups: list[str]
    ) -> ResourceRecord:
        arn = item["LoadBalancerArn"]
        relations = []
        for zone in item.get("AvailabilityZones", []):
            if zone.get("SubnetId"):
                relations.append(
                    Relation("in_subnet", ctx.arn("ec2", f"subnet/{zone['SubnetId']}"))
                )
        for group_id in item.get("SecurityGroups", []):
            relations.append(
                Relation("security_group", ctx.arn("ec2", f"security-group/{group_id}"))
            )
        if item.get("VpcId"):
            relations.append(Relation("in_vpc", ctx.arn("ec2", f"vpc/{item['VpcId']}")))
        relations.extend(Relation("target_group", group_arn) for group_arn in target_groups)
        config = pick(item, "Type", "Scheme", "DNSName", "IpAddressType", "CreatedTime")
        config["State"] = item.get("State", {}).get("Code")
        return ResourceRecord(
            arn=arn,
            resource_type=self.resource_type,
            resource_id=item["LoadBalancerName"],
            region=ctx.region,
            name=item["LoadBalancerName"],
            tags=tags,
            config=config,
            relations=relations,
        )


@register
class TargetGroupScanner(Elbv2Scanner):
    resource_type = "elasticloadbalancing:targetgroup"
    label = "Target group"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("elbv2")
        for page in self.paginate(client, "describe_target_groups"):
            items = page.get("TargetGroups", [])
            tags = _elbv2_tags(client, [item["TargetGroupArn"] for item in items])
            yield [
                self.record(ctx, client, item, tags.get(item["TargetGroupArn"], {}))
                for item in items
            ]

    def record(
        self, ctx: ScanContext, client: BaseClient, item: dict, tags: dict[str, str]
    ) -> ResourceRecord:
        arn = item["TargetGroupArn"]
        relations = [
            Relation("load_balancer", lb_arn) for lb_arn in item.get("LoadBalancerArns", [])
        ]
        if item.get("VpcId"):
            relations.append(Relation("in_vpc", ctx.arn("ec2", f"vpc/{item['VpcId']}")))
        # DescribeTargetHealth is not paginated: it returns every target of the group.
        health = client.describe_target_health(TargetGroupArn=arn)
        for description in health.get("TargetHealthDescriptions", []):
            relation = _target_relation(
                ctx, item.get("TargetType", ""), description["Target"]["Id"]
            )
            if relation and relation not in relations:
                relations.append(relation)
        return ResourceRecord(
            arn=arn,
            resource_type=self.resource_type,
            resource_id=item["TargetGroupName"],
            region=ctx.region,
            name=item["TargetGroupName"],
            tags=tags,
            config=pick(item, "Protocol", "Port", "TargetType", "HealthCheckPath"),
            relations=relations,
        )


@register
class ClassicLoadBalancerScanner(Scanner):
    resource_type = "elb:loadbalancer"
    service = "elb"
    label = "Classic load balancer"
    # Moto's TagResources rejects classic ELB ARNs too; the service's AddTags tags them.
    tagging = "service"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("elb")
        for page in self.paginate(client, "describe_load_balancers"):
            items = page.get("LoadBalancerDescriptions", [])
            tags: dict[str, dict[str, str]] = {}
            for batch in _batches([item["LoadBalancerName"] for item in items], TAG_BATCH):
                response = client.describe_tags(LoadBalancerNames=batch)
                for description in response.get("TagDescriptions", []):
                    tags[description["LoadBalancerName"]] = tag_list_to_dict(
                        description.get("Tags")
                    )
            yield [self.record(ctx, item, tags.get(item["LoadBalancerName"], {})) for item in items]

    def record(self, ctx: ScanContext, item: dict, tags: dict[str, str]) -> ResourceRecord:
        name = item["LoadBalancerName"]
        relations = [
            Relation("in_subnet", ctx.arn("ec2", f"subnet/{subnet_id}"))
            for subnet_id in item.get("Subnets", [])
        ]
        for group_id in item.get("SecurityGroups", []):
            relations.append(
                Relation("security_group", ctx.arn("ec2", f"security-group/{group_id}"))
            )
        if item.get("VPCId"):
            relations.append(Relation("in_vpc", ctx.arn("ec2", f"vpc/{item['VPCId']}")))
        for instance in item.get("Instances", []):
            relations.append(
                Relation("target", ctx.arn("ec2", f"instance/{instance['InstanceId']}"))
            )
        return ResourceRecord(
            arn=ctx.arn("elasticloadbalancing", f"loadbalancer/{name}"),
            resource_type=self.resource_type,
            resource_id=name,
            region=ctx.region,
            name=name,
            tags=tags,
            config=pick(item, "Scheme", "DNSName", "CreatedTime"),
            relations=relations,
        )
