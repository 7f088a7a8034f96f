"""The estate's shape: the management account, the member accounts (AccountPlan) with their
OUs, applications and expensive resources, every application's right tag values, and the
resource types TagSense scans. Data only, and the one rule that splits a budget."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

MANAGEMENT_ACCOUNT_ID = "123456789012"  # moto's default account: the "testing" credentials
MANAGEMENT_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
DEFAULT_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
READ_ONLY_ROLE = "TagSenseReadOnly"
ACCESS_ROLE = "OrganizationAccountAccessRole"
# What TagSenseReadOnly may do: list and describe every scanned type, read tags.
READ_ONLY_ACTIONS = [
    "ec2:Describe*",
    "elasticloadbalancing:Describe*",
    "lambda:List*",
    "lambda:GetFunction",
    "ecs:List*",
    "ecs:Describe*",
    "eks:List*",
    "eks:Describe*",
    "s3:ListAllMyBuckets",
    "s3:GetBucketLocation",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "rds:Describe*",
    "rds:ListTagsForResource",
    "dynamodb:ListTables",
    "dynamodb:DescribeTable",
    "dynamodb:ListTagsOfResource",
    "elasticache:Describe*",
    "elasticache:ListTagsForResource",
    "elasticfilesystem:Describe*",
    "cloudfront:ListDistributions",
    "cloudfront:ListTagsForResource",
    "tag:GetResources",
    "tag:GetTagKeys",
    "tag:GetTagValues",
]
# Stands for a public Amazon Linux AMI: owned by Amazon, not by the estate (see the module doc).
PUBLIC_AMI = "ami-0c02fb55956c7d316"

# Every resource type TagSense scans (inventory/scanners/), in the scanners' names.
RESOURCE_TYPES = (
    "ec2:instance",
    "ec2:volume",
    "ec2:snapshot",
    "ec2:image",
    "ec2:vpc",
    "ec2:subnet",
    "ec2:security-group",
    "elasticloadbalancing:loadbalancer",
    "elasticloadbalancing:targetgroup",
    "elb:loadbalancer",
    "lambda:function",
    "ecs:cluster",
    "ecs:service",
    "eks:cluster",
    "eks:nodegroup",
    "s3:bucket",
    "rds:db",
    "rds:cluster",
    "dynamodb:table",
    "elasticache:cluster",
    "elasticfilesystem:file-system",
    "cloudfront:distribution",
)


@dataclass(frozen=True)
class AccountPlan:
    slug: str
    name: str
    ou: str
    prefix: str  # short, for names with length limits
    environments: tuple[tuple[str, int], ...]  # (value, weight)
    apps: tuple[str, ...]
    weight: float  # share of the cheap resources
    # Expensive resources, by the account's region index (0 = its primary region).
    placements: dict[int, tuple[str, ...]] = field(default_factory=dict)
    distributions: tuple[str, ...] = ()  # CloudFront origins: "s3" or "alb"


OUS = ("Production", "Development", "Security")

ACCOUNT_PLANS = (
    AccountPlan(
        "prod-workloads",
        "Prod Workloads",
        "Production",
        "pw",
        (("prod", 9), ("staging", 1)),
        ("checkout", "catalog", "search", "web-frontend", "payments-api", "identity"),
        0.35,
        {0: ("alb", "ecs", "rds-mysql", "elasticache", "efs"), 1: ("classic-elb", "eks")},
        ("s3", "alb"),
    ),
    AccountPlan(
        "prod-data",
        "Prod Data",
        "Production",
        "pd",
        (("prod", 1),),
        ("data-lake", "etl", "reporting", "analytics"),
        0.25,
        {0: ("nlb", "rds-aurora", "elasticache"), 1: ("efs",)},
    ),
    AccountPlan(
        "development",
        "Development",
        "Development",
        "dev",
        (("dev", 7), ("staging", 3)),
        ("checkout", "catalog", "search", "sandbox", "ml-experiments"),
        0.28,
        {0: ("alb", "ecs", "eks", "rds-postgres"), 1: ("classic-elb", "elasticache")},
        ("s3",),
    ),
    AccountPlan(
        "security",
        "Security Tooling",
        "Security",
        "sec",
        (("prod", 1),),
        ("siem", "log-archive", "vpn", "guardduty-export"),
        0.12,
        {0: ("efs",)},
    ),
)

# Every application's owner, cost center and data classification: the "right" tag values.
APPS = {
    "checkout": ("payments-team@example.com", "CC-1010", "confidential"),
    "catalog": ("catalog-team@example.com", "CC-1020", "internal"),
    "search": ("search-team@example.com", "CC-1020", "internal"),
    "web-frontend": ("web-team@example.com", "CC-1030", "public"),
    "payments-api": ("payments-team@example.com", "CC-1010", "restricted"),
    "identity": ("identity-team@example.com", "CC-1040", "restricted"),
    "data-lake": ("data-eng@example.com", "CC-2010", "confidential"),
    "etl": ("data-eng@example.com", "CC-2010", "confidential"),
    "reporting": ("bi-team@example.com", "CC-2020", "internal"),
    "analytics": ("bi-team@example.com", "CC-2020", "confidential"),
    "sandbox": ("platform-team@example.com", "CC-3010", "internal"),
    "ml-experiments": ("ml-team@example.com", "CC-3020", "confidential"),
    "siem": ("security-ops@example.com", "CC-4010", "restricted"),
    "log-archive": ("security-ops@example.com", "CC-4010", "restricted"),
    "vpn": ("network-team@example.com", "CC-4020", "internal"),
    "guardduty-export": ("security-ops@example.com", "CC-4010", "restricted"),
    "core-network": ("network-team@example.com", "CC-4020", "internal"),
}

INSTANCE_TYPES = ("t3.micro", "t3.small", "t3.medium", "m6i.large", "m6i.xlarge", "c6i.large")
LAMBDA_ZIP_SOURCE = "def handler(event, context):\n    return {'statusCode': 200}\n"


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """total split in proportion to weights, in whole numbers that add up to total."""
    if total <= 0 or not weights:
        return [0] * len(weights)
    scale = sum(weights)
    exact = [total * w / scale for w in weights]
    parts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts
