"""Storage: S3 buckets, DynamoDB tables and EFS file systems (with a mount target per private
subnet)."""

from __future__ import annotations

from typing import Any

from .session import Member, Site
from .tagging import optional_tags, tag_list


def bucket(member: Member, site: Site, purpose: str = "") -> str:
    s3 = member.client("s3", site.region)
    rng = member.rng
    app = rng.choice(member.plan.apps)
    purpose = purpose or rng.choice(("logs", "artifacts", "exports", "backups", "uploads"))
    name = f"{member.plan.prefix}-{app}-{purpose}-{member.next():04d}-{member.account_id}"
    kwargs: dict[str, Any] = {"Bucket": name}
    if site.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": site.region}
    s3.create_bucket(**kwargs)
    tags = member.tagger.tags(app)
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(tags)})
    member.made("s3:bucket")
    return name


def table(member: Member, site: Site) -> None:
    dynamodb = member.client("dynamodb", site.region)
    rng = member.rng
    app = rng.choice(member.plan.apps)
    thing = rng.choice(("sessions", "orders", "events", "state", "cache", "jobs"))
    kwargs: dict[str, Any] = {
        "TableName": f"{app}-{thing}-{member.next():04d}",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    }
    if rng.random() < 0.7:
        kwargs["BillingMode"] = "PAY_PER_REQUEST"
    else:
        kwargs["ProvisionedThroughput"] = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    tags = member.tagger.tags(app)
    if tags:
        kwargs["Tags"] = tag_list(tags)
    dynamodb.create_table(**kwargs)
    member.made("dynamodb:table")


def file_system(member: Member, site: Site) -> None:
    efs = member.client("efs", site.region)
    app = member.rng.choice(member.plan.apps)
    tags = member.tagger.tags(app, name=f"{app}-shared")
    file_system_id = efs.create_file_system(
        CreationToken=f"{member.plan.prefix}-{app}-{member.next()}",
        PerformanceMode="generalPurpose",
        Encrypted=True,
        **optional_tags(tags),
    )["FileSystemId"]
    for subnet in ("private-a", "private-b"):
        efs.create_mount_target(
            FileSystemId=file_system_id,
            SubnetId=site.subnets[subnet][0],
            SecurityGroups=[site.groups["app"]],
        )
    member.made("elasticfilesystem:file-system")
