"""EFS: file systems."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .base import ResourceRecord, ScanContext, Scanner, pick, register, tag_list_to_dict


@register
class FileSystemScanner(Scanner):
    resource_type = "elasticfilesystem:file-system"
    service = "efs"
    label = "EFS file system"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("efs")
        for page in self.paginate(client, "describe_file_systems"):
            yield [self.record(ctx, item) for item in page.get("FileSystems", [])]

    def record(self, ctx: ScanContext, item: dict[str, Any]) -> ResourceRecord:
        fs_id = item["FileSystemId"]
        tags = tag_list_to_dict(item.get("Tags"))
        config = pick(
            item,
            "LifeCycleState",
            "PerformanceMode",
            "ThroughputMode",
            "Encrypted",
            "CreationTime",
        )
        size = item.get("SizeInBytes", {}).get("Value")
        if size is not None:
            config["SizeInBytes"] = size
        return ResourceRecord(
            arn=item.get("FileSystemArn") or ctx.arn("elasticfilesystem", f"file-system/{fs_id}"),
            resource_type=self.resource_type,
            resource_id=fs_id,
            region=ctx.region,
            # EFS copies the Name tag into the Name field; fall back to the tag itself.
            name=item.get("Name") or tags.get("Name", ""),
            tags=tags,
            config=config,
        )
