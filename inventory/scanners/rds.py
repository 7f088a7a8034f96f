"""RDS: DB instances and DB clusters (Aurora and Multi-AZ clusters).

DescribeDBInstances and DescribeDBClusters also return Neptune and DocumentDB resources, which
share the RDS API and ARN format. They are kept here on purpose (no Engine filter) so that they
are inventoried at all; their config carries Engine, so they can be told apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import (
    Relation,
    ResourceRecord,
    ScanContext,
    Scanner,
    name_from_tags,
    pick,
    register,
    tag_list_to_dict,
)


class RdsScanner(Scanner):
    service = "rds"


def _security_groups(ctx: ScanContext, item: dict[str, Any]) -> list[Relation]:
    return [
        Relation("security_group", ctx.arn("ec2", f"security-group/{group['VpcSecurityGroupId']}"))
        for group in item.get("VpcSecurityGroups", [])
        if group.get("VpcSecurityGroupId")
    ]


@register
class DbInstanceScanner(RdsScanner):
    resource_type = "rds:db"
    label = "RDS DB instance"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("rds")
        for page in self.paginate(client, "describe_db_instances"):
            yield [self.record(ctx, item) for item in page.get("DBInstances", [])]

    def record(self, ctx: ScanContext, item: dict[str, Any]) -> ResourceRecord:
        db_id = item["DBInstanceIdentifier"]
        tags = tag_list_to_dict(item.get("TagList"))
        relations = []
        subnet_group = item.get("DBSubnetGroup") or {}
        for subnet in subnet_group.get("Subnets", []):
            if subnet.get("SubnetIdentifier"):
                relations.append(
                    Relation("in_subnet", ctx.arn("ec2", f"subnet/{subnet['SubnetIdentifier']}"))
                )
        relations.extend(_security_groups(ctx, item))
        if item.get("DBClusterIdentifier"):
            relations.append(
                Relation("in_cluster", ctx.arn("rds", f"cluster:{item['DBClusterIdentifier']}"))
            )
        config = pick(
            item,
            "Engine",
            "EngineVersion",
            "DBInstanceClass",
            "DBInstanceStatus",
            "MultiAZ",
            "StorageEncrypted",
            "AllocatedStorage",
            "InstanceCreateTime",
        )
        return ResourceRecord(
            arn=item.get("DBInstanceArn") or ctx.arn("rds", f"db:{db_id}"),
            resource_type=self.resource_type,
            resource_id=db_id,
            region=ctx.region,
            name=name_from_tags(tags, db_id),
            tags=tags,
            config=config,
            relations=relations,
        )


@register
class DbClusterScanner(RdsScanner):
    resource_type = "rds:cluster"
    label = "RDS DB cluster"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("rds")
        for page in self.paginate(client, "describe_db_clusters"):
            yield [self.record(ctx, item) for item in page.get("DBClusters", [])]

    def record(self, ctx: ScanContext, item: dict[str, Any]) -> ResourceRecord:
        cluster_id = item["DBClusterIdentifier"]
        tags = tag_list_to_dict(item.get("TagList"))
        config = pick(
            item,
            "Engine",
            "EngineVersion",
            "EngineMode",
            "Status",
            "MultiAZ",
            "StorageEncrypted",
            "ClusterCreateTime",
        )
        return ResourceRecord(
            arn=item.get("DBClusterArn") or ctx.arn("rds", f"cluster:{cluster_id}"),
            resource_type=self.resource_type,
            resource_id=cluster_id,
            region=ctx.region,
            name=name_from_tags(tags, cluster_id),
            tags=tags,
            config=config,
            relations=_security_groups(ctx, item),
        )
