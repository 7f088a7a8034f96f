"""EC2 scanners: tagged and never-tagged resources, and their relationships."""

import boto3

from inventory.scanners.ec2 import (
    ImageScanner,
    InstanceScanner,
    SecurityGroupScanner,
    SnapshotScanner,
    SubnetScanner,
    VolumeScanner,
    VpcScanner,
)

from .conftest import ACCOUNT, REGION, scan


def _estate():
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "Name", "Value": "core"}])
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    image = "ami-12c6146b"  # any id: moto's public AMI catalogue is not loaded in tests
    tagged = ec2.run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet,
        SecurityGroupIds=[sg],
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Name", "Value": "web-1"}, {"Key": "Owner", "Value": "alice"}],
            }
        ],
    )["Instances"][0]["InstanceId"]
    untagged = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet)[
        "Instances"
    ][0]["InstanceId"]
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8)["VolumeId"]
    snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
    ami = ec2.create_image(InstanceId=tagged, Name="golden")["ImageId"]
    return locals()


def test_instances_tagged_and_never_tagged(ctx):
    e = _estate()
    found = scan(InstanceScanner, ctx)
    assert {e["tagged"], e["untagged"]} <= set(found)
    web = found[e["tagged"]]
    assert web.tags == {"Name": "web-1", "Owner": "alice"}
    assert web.name == "web-1"
    assert web.arn == f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{e['tagged']}"
    assert found[e["untagged"]].tags == {}
    kinds = {(r.kind, r.target_arn.rsplit(":", 1)[1]) for r in web.relations}
    assert ("in_subnet", f"subnet/{e['subnet']}") in kinds
    assert ("in_vpc", f"vpc/{e['vpc']}") in kinds
    assert ("security_group", f"security-group/{e['sg']}") in kinds
    assert any(kind == "attached_volume" for kind, _ in kinds)
    assert any(kind == "launched_from" for kind, _ in kinds)


def test_volumes_snapshots_and_images(ctx):
    e = _estate()
    volumes = scan(VolumeScanner, ctx)
    assert volumes[e["volume"]].config["Size"] == 8
    snapshots = scan(SnapshotScanner, ctx)
    snap = snapshots[e["snapshot"]]
    assert snap.arn == f"arn:aws:ec2:{REGION}::snapshot/{e['snapshot']}"
    assert [r.kind for r in snap.relations] == ["snapshot_of"]
    images = scan(ImageScanner, ctx)
    assert images[e["ami"]].name == "golden"
    assert set(images) == {e["ami"]}


def test_network_resources(ctx):
    e = _estate()
    vpcs = scan(VpcScanner, ctx)
    assert vpcs[e["vpc"]].name == "core"
    assert any(v.config.get("IsDefault") for v in vpcs.values())  # moto's default VPC too
    subnets = scan(SubnetScanner, ctx)
    assert subnets[e["subnet"]].relations[0].target_arn.endswith(f"vpc/{e['vpc']}")
    groups = scan(SecurityGroupScanner, ctx)
    assert groups[e["sg"]].name == "web"
