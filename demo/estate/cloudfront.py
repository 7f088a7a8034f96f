"""CloudFront distributions in front of an S3 bucket (made for it) or the primary site's ALB."""

from __future__ import annotations

from typing import Any

from .session import Member
from .storage import bucket
from .tagging import tag_list


def distribution(member: Member, origin: str) -> None:
    """A distribution whose origin is "s3" or "alb" (the primary site's)."""
    cloudfront = member.client("cloudfront", "us-east-1")
    primary = member.estate.site(member, 0)
    app = member.plan.apps[0]
    if origin == "s3":
        name = bucket(member, primary, "static-assets")
        domain = f"{name}.s3.{primary.region}.amazonaws.com"
        origin_config: dict[str, Any] = {"S3OriginConfig": {"OriginAccessIdentity": ""}}
    else:
        domain = primary.alb_dns
        origin_config = {
            "CustomOriginConfig": {
                "HTTPPort": 80,
                "HTTPSPort": 443,
                "OriginProtocolPolicy": "https-only",
            }
        }
    config = {
        "CallerReference": f"{member.plan.slug}-{origin}-{member.next()}",
        "Comment": f"{app} {origin} origin",
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [{"Id": origin, "DomainName": domain, **origin_config}],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": origin,
            "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }
    tags = member.tagger.tags(app)
    cloudfront.create_distribution_with_tags(
        DistributionConfigWithTags={
            "DistributionConfig": config,
            "Tags": {"Items": tag_list(tags)},
        }
    )
    member.made("cloudfront:distribution")
