"""EC2: instances, EBS volumes and snapshots, AMIs, VPCs, subnets, security groups."""

from __future__ import annotations

from collections.abc import Iterator

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


class Ec2Scanner(Scanner):
    service = "ec2"


@register
class InstanceScanner(Ec2Scanner):
    resource_type = "ec2:instance"
    label = "EC2 instance"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("ec2")
        for page in self.paginate(client, "describe_instances"):
            records = []
            for reservation in page.get("Reservations", []):
                for item in reservation.get("Instances", []):
                    if item.get("State", {}).get("Name") == "terminated":
                        continue
                    records.append(self.record(ctx, item))
            yield records

    def record(self, ctx: ScanContext, item: dict) -> ResourceRecord:
        instance_id = item["InstanceId"]
        tags = tag_list_to_dict(item.get("Tags"))
        relations = []
        if item.get("SubnetId"):
            relations.append(Relation("in_subnet", ctx.arn("ec2", f"subnet/{item['SubnetId']}")))
        if item.get("VpcId"):
            relations.append(Relation("in_vpc", ctx.arn("ec2", f"vpc/{item['VpcId']}")))
        for group in item.get("SecurityGroups", []):
            relations.append(
                Relation("security_group", ctx.arn("ec2", f"security-group/{group['GroupId']}"))
            )
        for mapping in item.get("BlockDeviceMappings", []):
            volume_id = mapping.get("Ebs", {}).get("VolumeId")
            if volume_id:
                relations.append(Relation("attached_volume", ctx.arn("ec2", f"volume/{volume_id}")))
        if item.get("ImageId"):
            image_arn = f"arn:{ctx.partition}:ec2:{ctx.region}::image/{item['ImageId']}"
            relations.append(Relation("launched_from", image_arn))
        config = pick(
            item,
            "InstanceType",
            "LaunchTime",
            "PrivateIpAddress",
            "PublicIpAddress",
            "Platform",
            "Architecture",
        )
        config["State"] = item.get("State", {}).get("Name")
        return ResourceRecord(
            arn=ctx.arn("ec2", f"instance/{instance_id}"),
            resource_type=self.resource_type,
            resource_id=instance_id,
            region=ctx.region,
            name=name_from_tags(tags),
            tags=tags,
            config=config,
            relations=relations,
        )


@register
class VolumeScanner(Ec2Scanner):
    resource_type = "ec2:volume"
    label = "EBS volume"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("ec2")
        for page in self.paginate(client, "describe_volumes"):
            records = []
            for item in page.get("Volumes", []):
                tags = tag_list_to_dict(item.get("Tags"))
                relations = []
                if item.get("SnapshotId"):
                    snapshot = (
                        f"arn:{ctx.partition}:ec2:{ctx.region}::snapshot/{item['SnapshotId']}"
                    )
                    relations.append(Relation("created_from", snapshot))
                records.append(
                    ResourceRecord(
                        arn=ctx.arn("ec2", f"volume/{item['VolumeId']}"),
                        resource_type=self.resource_type,
                        resource_id=item["VolumeId"],
                        region=ctx.region,
                        name=name_from_tags(tags),
                        tags=tags,
                        config=pick(
                            item, "Size", "VolumeType", "State", "Encrypted", "Iops", "CreateTime"
                        ),
                        relations=relations,
                    )
                )
            yield records


@register
class SnapshotScanner(Ec2Scanner):
    resource_type = "ec2:snapshot"
    label = "EBS snapshot"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("ec2")
        for page in self.paginate(client, "describe_snapshots", OwnerIds=["self"]):
            records = []
            for item in page.get("Snapshots", []):
                tags = tag_list_to_dict(item.get("Tags"))
                relations = []
                if item.get("VolumeId"):
                    relations.append(
                        Relation("snapshot_of", ctx.arn("ec2", f"volume/{item['VolumeId']}"))
                    )
                records.append(
                    ResourceRecord(
                        arn=f"arn:{ctx.partition}:ec2:{ctx.region}::snapshot/{item['SnapshotId']}",
                        resource_type=self.resource_type,
                        resource_id=item["SnapshotId"],
                        region=ctx.region,
                        name=name_from_tags(tags, item.get("Description", "")[:200]),
                        tags=tags,
                        config=pick(item, "VolumeSize", "State", "Encrypted", "StartTime"),
                        relations=relations,
                    )
                )
            yield records


@register
class ImageScanner(Ec2Scanner):
    resource_type = "ec2:image"
    label = "AMI"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("ec2")
        # DescribeImages is not paginated in older API versions; the paginator handles both.
        for page in self.paginate(client, "describe_images", Owners=["self"]):
            records = []
            for item in page.get("Images", []):
                tags = tag_list_to_dict(item.get("Tags"))
                relations = [
                    Relation(
                        "image_snapshot",
                        f"arn:{ctx.partition}:ec2:{ctx.region}::snapshot/{m['Ebs']['SnapshotId']}",
                    )
                    for m in item.get("BlockDeviceMappings", [])
                    if m.get("Ebs", {}).get("SnapshotId")
                ]
                records.append(
                    ResourceRecord(
                        arn=f"arn:{ctx.partition}:ec2:{ctx.region}::image/{item['ImageId']}",
                        resource_type=self.resource_type,
                        resource_id=item["ImageId"],
                        region=ctx.region,
                        name=item.get("Name") or name_from_tags(tags),
                        tags=tags,
                        config=pick(
                            item, "Architecture", "State", "CreationDate", "PlatformDetails"
                        ),
                        relations=relations,
                    )
                )
            yield records


@register
class VpcScanner(Ec2Scanner):
    resource_type = "ec2:vpc"
    label = "VPC"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("ec2")
        for page in self.paginate(client, "describe_vpcs"):
            records = []
            for item in page.get("Vpcs", []):
                tags = tag_list_to_dict(item.get("Tags"))
                records.append(
                    ResourceRecord(
                        arn=ctx.arn("ec2", f"vpc/{item['VpcId']}"),
                        resource_type=self.resource_type,
                        resource_id=item["VpcId"],
                        region=ctx.region,
                        name=name_from_tags(tags),
                        tags=tags,
                        config=pick(item, "CidrBlock", "IsDefault", "State"),
                    )
                )
            yield records


@register
class SubnetScanner(Ec2Scanner):
    resource_type = "ec2:subnet"
    label = "Subnet"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("ec2")
        for page in self.paginate(client, "describe_subnets"):
            records = []
            for item in page.get("Subnets", []):
                tags = tag_list_to_dict(item.get("Tags"))
                records.append(
                    ResourceRecord(
                        arn=ctx.arn("ec2", f"subnet/{item['SubnetId']}"),
                        resource_type=self.resource_type,
                        resource_id=item["SubnetId"],
                        region=ctx.region,
                        name=name_from_tags(tags),
                        tags=tags,
                        config=pick(item, "CidrBlock", "AvailabilityZone", "DefaultForAz"),
                        relations=[Relation("in_vpc", ctx.arn("ec2", f"vpc/{item['VpcId']}"))],
                    )
                )
            yield records


@register
class SecurityGroupScanner(Ec2Scanner):
    resource_type = "ec2:security-group"
    label = "Security group"

    def pages(self, ctx: ScanContext) -> Iterator[list[ResourceRecord]]:
        client = ctx.client("ec2")
        for page in self.paginate(client, "describe_security_groups"):
            records = []
            for item in page.get("SecurityGroups", []):
                tags = tag_list_to_dict(item.get("Tags"))
                relations = []
                if item.get("VpcId"):
                    relations.append(Relation("in_vpc", ctx.arn("ec2", f"vpc/{item['VpcId']}")))
                records.append(
                    ResourceRecord(
                        arn=ctx.arn("ec2", f"security-group/{item['GroupId']}"),
                        resource_type=self.resource_type,
                        resource_id=item["GroupId"],
                        region=ctx.region,
                        name=item.get("GroupName", ""),
                        tags=tags,
                        config=pick(item, "GroupName", "Description"),
                        relations=relations,
                    )
                )
            yield records
