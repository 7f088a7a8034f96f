"""EC2: each site's network (VPC, subnets, security groups), fleets of instances with their root
volumes, golden AMIs, data volumes (a third left unattached) and snapshots."""

from __future__ import annotations

from .plan import INSTANCE_TYPES, PUBLIC_AMI
from .session import Member, Site
from .tagging import spec, tag_list


def network(member: Member, site: Site) -> None:
    """The site's VPC; two private subnets (and two public ones in the primary region); the
    app security group (and web and db in the primary region)."""
    ec2 = member.client("ec2", site.region)
    tagger, prefix = member.tagger, member.plan.prefix
    env = tagger.environment()
    vpc_tags = tagger.tags("core-network", env, f"{prefix}-{site.region}-vpc")
    site.vpc = ec2.create_vpc(
        CidrBlock=f"10.{site.number}.0.0/16", TagSpecifications=spec("vpc", vpc_tags)
    )["Vpc"]["VpcId"]
    member.made("ec2:vpc")
    layout = [("private-a", "a", 0), ("private-b", "b", 1)]
    if site.index == 0:
        layout += [("public-a", "a", 10), ("public-b", "b", 11)]
    for name, zone, octet in layout:
        tags = tagger.tags("core-network", env, f"{prefix}-{name}")
        subnet = ec2.create_subnet(
            VpcId=site.vpc,
            CidrBlock=f"10.{site.number}.{octet}.0/24",
            AvailabilityZone=f"{site.region}{zone}",
            TagSpecifications=spec("subnet", tags),
        )["Subnet"]
        site.subnets[name] = (subnet["SubnetId"], subnet["AvailabilityZone"])
        member.made("ec2:subnet")
    for name in ("app", "web", "db") if site.index == 0 else ("app",):
        tags = tagger.tags("core-network", env, f"{prefix}-{name}")
        site.groups[name] = ec2.create_security_group(
            GroupName=f"{prefix}-{name}",
            Description=f"{name} tier",
            VpcId=site.vpc,
            TagSpecifications=spec("security-group", tags),
        )["GroupId"]
        member.made("ec2:security-group")


def fleet(
    member: Member,
    site: Site,
    app: str,
    count: int,
    subnet: str = "private-a",
    group: str = "app",
) -> list[str]:
    """count instances of one app, launched in one call and tagged in a few.

    An instance and its root volume each draw their own hygiene card; the resources that
    end up with the same tags are tagged by one CreateTags call.
    """
    ec2 = member.client("ec2", site.region)
    env = member.tagger.environment()
    subnet_id, zone = site.subnets[subnet]
    groups = [site.groups[group]]
    if group != "app":
        groups.append(site.groups["app"])
    response = ec2.run_instances(
        ImageId=site.golden_ami or PUBLIC_AMI,
        MinCount=count,
        MaxCount=count,
        InstanceType=member.rng.choice(INSTANCE_TYPES),
        SubnetId=subnet_id,
        SecurityGroupIds=groups,
    )
    by_tags: dict[tuple, list[str]] = {}
    ids = []
    for instance in response["Instances"]:
        ids.append(instance["InstanceId"])
        site.instances.append((instance["InstanceId"], zone, app))
        _tag_instance_and_volumes(member, site, instance, app, env, by_tags)
    member.made("ec2:instance", len(ids))
    for tags, resource_ids in by_tags.items():
        if tags:
            ec2.create_tags(Resources=resource_ids, Tags=tag_list(dict(tags)))
    return ids


def _tag_instance_and_volumes(
    member: Member, site: Site, instance: dict, app: str, env: str, by_tags: dict
) -> None:
    """Draw the tags of one new instance and of its root volumes, into by_tags (tags: ids)."""
    tags = member.tagger.tags(app, env, f"{app}-{env}")
    by_tags.setdefault(tuple(tags.items()), []).append(instance["InstanceId"])
    for mapping in instance.get("BlockDeviceMappings", []):
        volume_id = mapping.get("Ebs", {}).get("VolumeId")
        if volume_id:
            site.volumes.append(volume_id)
            member.made("ec2:volume")
            tags = member.tagger.tags(app, env, f"{app}-{env}-root")
            by_tags.setdefault(tuple(tags.items()), []).append(volume_id)


def image(member: Member, site: Site, instance: tuple[str, str, str]) -> str:
    """An AMI of the instance (and the snapshot AWS makes for it)."""
    ec2 = member.client("ec2", site.region)
    instance_id, _, app = instance
    tags = member.tagger.tags(app)
    image_id = ec2.create_image(
        InstanceId=instance_id,
        Name=f"{app}-{member.next():04d}",
        Description=f"{app} image",
        TagSpecifications=spec("image", tags),
    )["ImageId"]
    # AWS and moto both snapshot the instance's storage for the AMI (see the package doc).
    member.made("ec2:image")
    member.made("ec2:snapshot")
    return image_id


def data_volume(member: Member, site: Site) -> None:
    ec2 = member.client("ec2", site.region)
    rng = member.rng
    instance_id, zone, app = rng.choice(site.instances)
    tags = member.tagger.tags(app, name=f"{app}-data")
    volume_id = ec2.create_volume(
        AvailabilityZone=zone,
        Size=rng.choice((20, 50, 100, 200, 500)),
        VolumeType=rng.choice(("gp3", "gp3", "gp2")),
        TagSpecifications=spec("volume", tags),
    )["VolumeId"]
    site.volumes.append(volume_id)
    member.made("ec2:volume")
    attached = site.devices.get(instance_id, 0)
    # About a third stay unattached: the orphaned volumes a cost review looks for.
    if rng.random() < 0.65 and attached < 10:
        ec2.attach_volume(
            VolumeId=volume_id,
            InstanceId=instance_id,
            Device=f"/dev/sd{'fghijklmnop'[attached]}",
        )
        site.devices[instance_id] = attached + 1


def snapshot(member: Member, site: Site) -> None:
    ec2 = member.client("ec2", site.region)
    rng = member.rng
    volume_id = rng.choice(site.volumes)
    app = rng.choice(member.plan.apps)
    tags = member.tagger.tags(app)
    ec2.create_snapshot(
        VolumeId=volume_id,
        Description=f"{rng.choice(('nightly', 'weekly', 'pre-upgrade'))} backup",
        TagSpecifications=spec("snapshot", tags),
    )
    member.made("ec2:snapshot")
