"""S3: buckets. Listing is global, so the runner scans once per account; each bucket reports its
own region."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from .base import (
    ResourceRecord,
    ScanContext,
    Scanner,
    name_from_tags,
    pick,
    register,
    tag_list_to_dict,
)

# GetBucketLocation answers None for us-east-1 and the legacy "EU" for eu-west-1.
_LEGACY_LOCATIONS = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@register
class BucketScanner(Scanner):
    resource_type = "s3:bucket"
    service = "s3"
    label = "S3 bucket"
    global_region = "us-east-1"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("s3")
        for page in self.paginate(client, "list_buckets"):
            records = []
            for bucket in page.get("Buckets", []):
                try:
                    record = self.record(ctx, client, bucket)
                except ClientError as error:
                    if _error_code(error) == "NoSuchBucket":  # deleted since it was listed
                        continue
                    raise
                records.append(record)
            yield records

    def record(
        self, ctx: ScanContext, client: BaseClient, bucket: dict[str, Any]
    ) -> ResourceRecord:
        name = bucket["Name"]
        # The client is bound to global_region; botocore's S3 region redirector follows buckets
        # that live elsewhere, so the per-bucket calls below work for every region.
        location = client.get_bucket_location(Bucket=name).get("LocationConstraint")
        region = _LEGACY_LOCATIONS.get(location, location)
        try:
            tags = tag_list_to_dict(client.get_bucket_tagging(Bucket=name).get("TagSet"))
        except ClientError as error:
            if _error_code(error) != "NoSuchTagSet":
                raise
            tags = {}  # never tagged: still a bucket to report
        config: dict[str, Any] = {"Region": region, **pick(bucket, "CreationDate")}
        try:
            versioning = client.get_bucket_versioning(Bucket=name)
        except ClientError as error:
            if _error_code(error) == "NoSuchBucket":
                raise
            # An optional detail: lacking permission for it must not hide the bucket.
        else:
            # A bucket that never had versioning turned on has no Status at all.
            config["Versioning"] = versioning.get("Status", "Disabled")
        return ResourceRecord(
            arn=f"arn:{ctx.partition}:s3:::{name}",
            resource_type=self.resource_type,
            resource_id=name,
            region=region,
            name=name_from_tags(tags, name),
            tags=tags,
            config=config,
        )
