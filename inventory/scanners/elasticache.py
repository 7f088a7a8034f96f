"""ElastiCache: cache clusters (Memcached clusters and the nodes of Redis/Valkey groups)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

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


@register
class CacheClusterScanner(Scanner):
    resource_type = "elasticache:cluster"
    service = "elasticache"
    label = "ElastiCache cluster"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("elasticache")
        for page in self.paginate(client, "describe_cache_clusters"):
            records = []
            for item in page.get("CacheClusters", []):
                try:
                    records.append(self.record(ctx, client, item))
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") == "CacheClusterNotFound":
                        continue  # deleted since it was listed
                    raise
            yield records

    def record(self, ctx: ScanContext, client: BaseClient, item: dict[str, Any]) -> ResourceRecord:
        cluster_id = item["CacheClusterId"]
        arn = item.get("ARN") or ctx.arn("elasticache", f"cluster:{cluster_id}")
        # ListTagsForResource is not paginated: one call returns the whole TagList.
        tags = tag_list_to_dict(client.list_tags_for_resource(ResourceName=arn).get("TagList"))
        relations = [
            Relation("security_group", ctx.arn("ec2", f"security-group/{group['SecurityGroupId']}"))
            for group in item.get("SecurityGroups", [])
            if group.get("SecurityGroupId")
        ]
        config = pick(
            item,
            "Engine",
            "EngineVersion",
            "CacheNodeType",
            "NumCacheNodes",
            "CacheClusterStatus",
            "ReplicationGroupId",
            "CacheClusterCreateTime",
        )
        return ResourceRecord(
            arn=arn,
            resource_type=self.resource_type,
            resource_id=cluster_id,
            region=ctx.region,
            name=name_from_tags(tags, cluster_id),
            tags=tags,
            config=config,
            relations=relations,
        )
