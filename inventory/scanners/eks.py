"""EKS: clusters and managed node groups."""

from __future__ import annotations

from collections.abc import Iterator

from botocore.client import BaseClient

from .base import Relation, ResourceRecord, ScanContext, Scanner, pick, register


class EksScanner(Scanner):
    service = "eks"
    # Moto's TagResources rejects EKS ARNs; the service's TagResource tags them.
    tagging = "service"


@register
class ClusterScanner(EksScanner):
    resource_type = "eks:cluster"
    label = "EKS cluster"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("eks")
        for page in self.paginate(client, "list_clusters"):
            yield [
                self.record(ctx, client.describe_cluster(name=name)["cluster"])
                for name in page.get("clusters", [])
            ]

    def record(self, ctx: ScanContext, item: dict) -> ResourceRecord:
        vpc_config = item.get("resourcesVpcConfig") or {}
        relations = [
            Relation("in_subnet", ctx.arn("ec2", f"subnet/{subnet_id}"))
            for subnet_id in vpc_config.get("subnetIds", [])
        ]
        group_ids = list(vpc_config.get("securityGroupIds", []))
        if vpc_config.get("clusterSecurityGroupId"):
            group_ids.append(vpc_config["clusterSecurityGroupId"])
        for group_id in dict.fromkeys(group_ids):
            relations.append(
                Relation("security_group", ctx.arn("ec2", f"security-group/{group_id}"))
            )
        if vpc_config.get("vpcId"):
            relations.append(Relation("in_vpc", ctx.arn("ec2", f"vpc/{vpc_config['vpcId']}")))
        return ResourceRecord(
            arn=item["arn"],
            resource_type=self.resource_type,
            resource_id=item["name"],
            region=ctx.region,
            name=item["name"],
            tags=dict(item.get("tags") or {}),
            config=pick(item, "version", "platformVersion", "status", "createdAt"),
            relations=relations,
        )


@register
class NodegroupScanner(EksScanner):
    resource_type = "eks:nodegroup"
    label = "EKS node group"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("eks")
        for cluster_page in self.paginate(client, "list_clusters"):
            for cluster_name in cluster_page.get("clusters", []):
                yield from self.cluster_pages(ctx, client, cluster_name)

    def cluster_pages(
        self, ctx: ScanContext, client: BaseClient, cluster_name: str
    ) -> Iterator[list[ResourceRecord]]:
        # The node group's own response does not carry the cluster ARN.
        cluster_arn = ctx.arn("eks", f"cluster/{cluster_name}")
        for page in self.paginate(client, "list_nodegroups", clusterName=cluster_name):
            records = []
            for nodegroup_name in page.get("nodegroups", []):
                response = client.describe_nodegroup(
                    clusterName=cluster_name, nodegroupName=nodegroup_name
                )
                records.append(self.record(ctx, response["nodegroup"], cluster_arn))
            yield records

    def record(self, ctx: ScanContext, item: dict, cluster_arn: str) -> ResourceRecord:
        relations = [Relation("in_cluster", cluster_arn)]
        for subnet_id in item.get("subnets", []):
            relations.append(Relation("in_subnet", ctx.arn("ec2", f"subnet/{subnet_id}")))
        return ResourceRecord(
            arn=item["nodegroupArn"],
            # Node group names are unique only within a cluster.
            resource_id=f"{item['clusterName']}/{item['nodegroupName']}",
            resource_type=self.resource_type,
            region=ctx.region,
            name=item["nodegroupName"],
            tags=dict(item.get("tags") or {}),
            config=pick(
                item,
                "status",
                "version",
                "capacityType",
                "instanceTypes",
                "amiType",
                "scalingConfig",
            ),
            relations=relations,
        )
