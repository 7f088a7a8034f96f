"""CloudFront distribution scanner: global, tagged and never tagged, and origin relationships."""

import boto3
import pytest

from inventory.scanners.base import Relation, ScanContext
from inventory.scanners.cloudfront import DistributionScanner, origin_relation

from .conftest import ACCOUNT, scan

GLOBAL = DistributionScanner.global_region
ELB = "web-lb-1234567890.eu-west-1.elb.amazonaws.com"


@pytest.fixture
def global_ctx(aws):
    """The context the runner builds for a global scanner: its global_region."""
    session = boto3.Session(region_name=GLOBAL)
    return ScanContext(
        account_id=ACCOUNT,
        region=GLOBAL,
        partition="aws",
        client=lambda service: session.client(service, region_name=GLOBAL),
    )


def _config(reference, origins, comment=""):
    return {
        "CallerReference": reference,
        "Comment": comment,
        "Enabled": True,
        "Origins": {
            "Quantity": len(origins),
            "Items": [
                {
                    "Id": f"origin-{i}",
                    "DomainName": domain,
                    "CustomOriginConfig": {
                        "HTTPPort": 80,
                        "HTTPSPort": 443,
                        "OriginProtocolPolicy": "https-only",
                    },
                }
                if ".elb." in domain
                else {
                    "Id": f"origin-{i}",
                    "DomainName": domain,
                    "S3OriginConfig": {"OriginAccessIdentity": ""},
                }
                for i, domain in enumerate(origins)
            ],
        },
        "DefaultCacheBehavior": {
            "TargetOriginId": "origin-0",
            "ViewerProtocolPolicy": "allow-all",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }


def _estate():
    cf = boto3.client("cloudfront", region_name=GLOBAL)
    tagged = cf.create_distribution_with_tags(
        DistributionConfigWithTags={
            "DistributionConfig": _config(
                "tagged",
                ["assets.s3.amazonaws.com", "media.example.s3.eu-west-1.amazonaws.com", ELB],
                comment="Main site",
            ),
            "Tags": {
                "Items": [{"Key": "Name", "Value": "www"}, {"Key": "Owner", "Value": "frank"}]
            },
        }
    )["Distribution"]["Id"]
    untagged = cf.create_distribution(
        DistributionConfig=_config("plain", ["static.s3.amazonaws.com"])
    )["Distribution"]["Id"]
    return locals()


def test_global_region():
    assert GLOBAL == "us-east-1"


def test_distributions_tagged_and_never_tagged(global_ctx):
    e = _estate()
    found = scan(DistributionScanner, global_ctx)
    assert set(found) == {e["tagged"], e["untagged"]}
    www = found[e["tagged"]]
    assert www.resource_type == "cloudfront:distribution"
    assert www.region == "global"
    assert www.tags == {"Name": "www", "Owner": "frank"}
    assert www.name == "www"
    assert www.arn == f"arn:aws:cloudfront::{ACCOUNT}:distribution/{e['tagged']}"
    assert www.relations == [
        Relation("origin", "arn:aws:s3:::assets"),
        Relation("origin", "arn:aws:s3:::media.example"),
        Relation("origin_load_balancer", f"dns:{ELB}"),
    ]
    plain = found[e["untagged"]]
    assert plain.tags == {}
    assert plain.region == "global"
    assert plain.name == e["untagged"]  # no Name tag, comment or alias: the id
    assert plain.arn == f"arn:aws:cloudfront::{ACCOUNT}:distribution/{e['untagged']}"
    assert plain.relations == [Relation("origin", "arn:aws:s3:::static")]


@pytest.mark.parametrize(
    ("domain", "expected"),
    [
        ("logs.s3.amazonaws.com", Relation("origin", "arn:aws:s3:::logs")),
        ("a.b.c.s3.us-gov-west-1.amazonaws.com", Relation("origin", "arn:aws:s3:::a.b.c")),
        ("legacy.s3-eu-west-1.amazonaws.com", Relation("origin", "arn:aws:s3:::legacy")),
        ("site.s3-website-us-east-1.amazonaws.com", Relation("origin", "arn:aws:s3:::site")),
        ("site.s3-website.eu-central-1.amazonaws.com", Relation("origin", "arn:aws:s3:::site")),
        ("my.s3.bucket.s3.amazonaws.com", Relation("origin", "arn:aws:s3:::my.s3.bucket")),
        (ELB, Relation("origin_load_balancer", f"dns:{ELB}")),
        (f"dualstack.{ELB}", Relation("origin_load_balancer", f"dns:{ELB}")),
        ("api.example.com", None),
        ("ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com", None),
    ],
)
def test_origin_relation(domain, expected):
    assert origin_relation(domain) == expected
