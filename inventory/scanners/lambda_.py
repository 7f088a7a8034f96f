"""Lambda functions (the module name avoids the keyword)."""

from __future__ import annotations

from collections.abc import Iterator

from botocore.client import BaseClient

from .base import Relation, ResourceRecord, ScanContext, Scanner, pick, register


@register
class FunctionScanner(Scanner):
    resource_type = "lambda:function"
    service = "lambda"
    label = "Lambda function"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("lambda")
        for page in self.paginate(client, "list_functions"):
            yield [self.record(ctx, client, item) for item in page.get("Functions", [])]

    def record(self, ctx: ScanContext, client: BaseClient, item: dict) -> ResourceRecord:
        name = item["FunctionName"]
        # ListFunctions returns the unqualified ARN, which is the one tags belong to.
        arn = item["FunctionArn"]
        tags = dict(client.list_tags(Resource=arn).get("Tags") or {})
        relations = []
        vpc_config = item.get("VpcConfig") or {}
        for subnet_id in vpc_config.get("SubnetIds", []):
            relations.append(Relation("in_subnet", ctx.arn("ec2", f"subnet/{subnet_id}")))
        for group_id in vpc_config.get("SecurityGroupIds", []):
            relations.append(
                Relation("security_group", ctx.arn("ec2", f"security-group/{group_id}"))
            )
        if vpc_config.get("VpcId"):
            relations.append(Relation("in_vpc", ctx.arn("ec2", f"vpc/{vpc_config['VpcId']}")))
        if item.get("Role"):
            relations.append(Relation("execution_role", item["Role"]))
        config = pick(
            item,
            "Runtime",
            "Handler",
            "MemorySize",
            "Timeout",
            "PackageType",
            "Architectures",
            "LastModified",
        )
        return ResourceRecord(
            arn=arn,
            resource_type=self.resource_type,
            resource_id=name,
            region=ctx.region,
            name=name,
            tags=tags,
            config=config,
            relations=relations,
        )
