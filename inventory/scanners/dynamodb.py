"""DynamoDB: tables."""

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


@register
class TableScanner(Scanner):
    resource_type = "dynamodb:table"
    service = "dynamodb"
    label = "DynamoDB table"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("dynamodb")
        for page in self.paginate(client, "list_tables"):
            records = []
            for table_name in page.get("TableNames", []):
                try:
                    table = client.describe_table(TableName=table_name)["Table"]
                except ClientError as error:
                    if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                        continue  # deleted since it was listed
                    raise
                records.append(self.record(ctx, client, table))
            yield records

    def record(self, ctx: ScanContext, client: BaseClient, table: dict[str, Any]) -> ResourceRecord:
        table_name = table["TableName"]
        arn = table.get("TableArn") or ctx.arn("dynamodb", f"table/{table_name}")
        tags: dict[str, str] = {}
        # ListTagsOfResource pages with NextToken; the paginator follows every token.
        for page in self.paginate(client, "list_tags_of_resource", ResourceArn=arn):
            tags.update(tag_list_to_dict(page.get("Tags")))
        config = pick(table, "TableStatus", "ItemCount", "TableSizeBytes", "CreationDateTime")
        billing = table.get("BillingModeSummary", {}).get("BillingMode")
        config["BillingMode"] = billing or "PROVISIONED"  # absent for provisioned tables
        return ResourceRecord(
            arn=arn,
            resource_type=self.resource_type,
            resource_id=table_name,
            region=ctx.region,
            name=name_from_tags(tags, table_name),
            tags=tags,
            config=config,
        )
