"""ECS: clusters and services."""

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

# DescribeClusters takes at most 100 clusters a call, DescribeServices at most 10 services.
CLUSTER_BATCH = 100
SERVICE_BATCH = 10


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class EcsScanner(Scanner):
    service = "ecs"


@register
class ClusterScanner(EcsScanner):
    resource_type = "ecs:cluster"
    label = "ECS cluster"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("ecs")
        for page in self.paginate(client, "list_clusters"):
            records = []
            for batch in _batches(page.get("clusterArns", []), CLUSTER_BATCH):
                response = client.describe_clusters(clusters=batch, include=["TAGS"])
                records.extend(self.record(ctx, item) for item in response.get("clusters", []))
            yield records

    def record(self, ctx: ScanContext, item: dict) -> ResourceRecord:
        return ResourceRecord(
            arn=item["clusterArn"],
            resource_type=self.resource_type,
            resource_id=item["clusterName"],
            region=ctx.region,
            name=item["clusterName"],
            tags=tag_list_to_dict(item.get("tags")),
            config=pick(
                item,
                "status",
                "activeServicesCount",
                "runningTasksCount",
                "registeredContainerInstancesCount",
                "capacityProviders",
            ),
        )


@register
class ServiceScanner(EcsScanner):
    resource_type = "ecs:service"
    label = "ECS service"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("ecs")
        for cluster_page in self.paginate(client, "list_clusters"):
            for cluster_arn in cluster_page.get("clusterArns", []):
                yield from self.cluster_pages(ctx, client, cluster_arn)

    def cluster_pages(
        self, ctx: ScanContext, client: BaseClient, cluster_arn: str
    ) -> Iterator[list[ResourceRecord]]:
        for page in self.paginate(client, "list_services", cluster=cluster_arn):
            records = []
            for batch in _batches(page.get("serviceArns", []), SERVICE_BATCH):
                response = client.describe_services(
                    cluster=cluster_arn, services=batch, include=["TAGS"]
                )
                records.extend(self.record(ctx, item) for item in response.get("services", []))
            yield records

    def record(self, ctx: ScanContext, item: dict) -> ResourceRecord:
        cluster_arn = item["clusterArn"]
        cluster_name = cluster_arn.rsplit("/", 1)[-1]
        relations = [Relation("in_cluster", cluster_arn)]
        network = item.get("networkConfiguration", {}).get("awsvpcConfiguration", {})
        for subnet_id in network.get("subnets", []):
            relations.append(Relation("in_subnet", ctx.arn("ec2", f"subnet/{subnet_id}")))
        for group_id in network.get("securityGroups", []):
            relations.append(
                Relation("security_group", ctx.arn("ec2", f"security-group/{group_id}"))
            )
        for balancer in item.get("loadBalancers", []):
            if balancer.get("targetGroupArn"):
                relations.append(Relation("target_group", balancer["targetGroupArn"]))
        return ResourceRecord(
            arn=item["serviceArn"],
            # Service names are unique only within a cluster.
            resource_id=f"{cluster_name}/{item['serviceName']}",
            resource_type=self.resource_type,
            region=ctx.region,
            name=item["serviceName"],
            tags=tag_list_to_dict(item.get("tags")),
            config=pick(
                item,
                "status",
                "launchType",
                "desiredCount",
                "runningCount",
                "taskDefinition",
                "schedulingStrategy",
            ),
            relations=relations,
        )
