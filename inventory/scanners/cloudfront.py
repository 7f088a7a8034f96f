"""CloudFront: distributions (a global service) and the origins they serve from."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from botocore.client import BaseClient

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

# A bucket's REST or website endpoint: NAME.s3.amazonaws.com, NAME.s3.REGION.amazonaws.com,
# NAME.s3-REGION.amazonaws.com, NAME.s3-website-REGION.amazonaws.com,
# NAME.s3-website.REGION.amazonaws.com (and the .com.cn forms). Bucket names may contain dots;
# the region part never does, so the greedy NAME group still stops at the right place.
_S3_ORIGIN = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9.-]*)"
    r"\.s3(?:-website)?(?:[.-][a-z]{2}(?:-[a-z]+)+-\d+)?"
    r"\.amazonaws\.com(?:\.cn)?$"
)
_ELB_SUFFIX = ".elb.amazonaws.com"


def origin_relation(domain: str, partition: str = "aws") -> Relation | None:
    """The relation a distribution has to an origin's domain, if we recognise the origin."""
    domain = domain.lower().rstrip(".")
    match = _S3_ORIGIN.match(domain)
    if match:
        return Relation("origin", f"arn:{partition}:s3:::{match['bucket']}")
    if domain.endswith(_ELB_SUFFIX):
        # The load balancer is named only by its DNS name here; its ARN cannot be derived from
        # it, so the target is "dns:<name>" and the runner resolves it to the load balancer's
        # ARN later. "dualstack." is an alias of the same name and is dropped to match DNSName.
        domain = domain.removeprefix("dualstack.")
        return Relation("origin_load_balancer", f"dns:{domain}")
    return None


@register
class DistributionScanner(Scanner):
    resource_type = "cloudfront:distribution"
    service = "cloudfront"
    label = "CloudFront distribution"
    global_region = "us-east-1"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("cloudfront")
        for page in self.paginate(client, "list_distributions"):
            items = page.get("DistributionList", {}).get("Items", [])
            yield [self.record(ctx, client, item) for item in items]

    def record(self, ctx: ScanContext, client: BaseClient, item: dict[str, Any]) -> ResourceRecord:
        dist_id = item["Id"]
        arn = (
            item.get("ARN")
            or f"arn:{ctx.partition}:cloudfront::{ctx.account_id}:distribution/{dist_id}"
        )
        # ListTagsForResource is not paginated: one call returns every tag.
        response = client.list_tags_for_resource(Resource=arn)
        tags = tag_list_to_dict(response.get("Tags", {}).get("Items"))
        relations: list[Relation] = []
        for origin in item.get("Origins", {}).get("Items", []):
            relation = origin_relation(origin.get("DomainName", ""), ctx.partition)
            if relation and relation not in relations:
                relations.append(relation)
        aliases = item.get("Aliases", {}).get("Items", [])
        config = pick(item, "DomainName", "Status", "Enabled", "PriceClass", "LastModifiedTime")
        if aliases:
            config["Aliases"] = aliases[:20]
        return ResourceRecord(
            arn=arn,
            resource_type=self.resource_type,
            resource_id=dist_id,
            region="global",
            name=name_from_tags(tags, item.get("Comment") or (aliases[:1] or [""])[0] or dist_id),
            tags=tags,
            config=config,
            relations=relations,
        )
