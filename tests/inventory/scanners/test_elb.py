"""Elastic Load Balancing scanners: ALB/NLB, target groups and classic load balancers."""

from dataclasses import replace

import boto3

from inventory.scanners.elb import (
    ClassicLoadBalancerScanner,
    LoadBalancerScanner,
    TargetGroupScanner,
)

from .conftest import ACCOUNT, REGION, scan

LISTENER = [{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}]


def _network():
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet_a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24", AvailabilityZone=f"{REGION}a")[
        "Subnet"
    ]["SubnetId"]
    subnet_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.2.0/24", AvailabilityZone=f"{REGION}b")[
        "Subnet"
    ]["SubnetId"]
    sg = ec2.create_security_group(GroupName="lb", Description="lb", VpcId=vpc)["GroupId"]
    image = "ami-12c6146b"  # any id: moto's public AMI catalogue is not loaded in tests
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet_a)[
        "Instances"
    ][0]["InstanceId"]
    return vpc, subnet_a, subnet_b, sg, instance


def _estate():
    vpc, subnet_a, subnet_b, sg, instance = _network()
    elbv2 = boto3.client("elbv2", region_name=REGION)
    alb = elbv2.create_load_balancer(
        Name="web",
        Subnets=[subnet_a, subnet_b],
        SecurityGroups=[sg],
        Tags=[{"Key": "Owner", "Value": "alice"}, {"Key": "Env", "Value": "prod"}],
    )["LoadBalancers"][0]["LoadBalancerArn"]
    nlb = elbv2.create_load_balancer(Name="bare", Subnets=[subnet_a, subnet_b], Type="network")[
        "LoadBalancers"
    ][0]["LoadBalancerArn"]
    tagged_tg = elbv2.create_target_group(
        Name="web-tg",
        Protocol="HTTP",
        Port=80,
        VpcId=vpc,
        TargetType="instance",
        Tags=[{"Key": "Team", "Value": "platform"}],
    )["TargetGroups"][0]["TargetGroupArn"]
    bare_tg = elbv2.create_target_group(Name="bare-tg", Protocol="TCP", Port=443, VpcId=vpc)[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=alb,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tagged_tg}],
    )
    elbv2.register_targets(TargetGroupArn=tagged_tg, Targets=[{"Id": instance}])
    elb = boto3.client("elb", region_name=REGION)
    elb.create_load_balancer(
        LoadBalancerName="legacy",
        Listeners=LISTENER,
        Subnets=[subnet_a],
        SecurityGroups=[sg],
        Tags=[{"Key": "Name", "Value": "legacy-web"}, {"Key": "Owner", "Value": "bob"}],
    )
    elb.register_instances_with_load_balancer(
        LoadBalancerName="legacy", Instances=[{"InstanceId": instance}]
    )
    elb.create_load_balancer(LoadBalancerName="old", Listeners=LISTENER, Subnets=[subnet_b])
    return locals()


def _relations(record):
    return {(r.kind, r.target_arn) for r in record.relations}


def _ec2(resource):
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:{resource}"


def _spying(ctx, calls):
    """The context, with every API call's operation name and parameters appended to calls."""

    def client(service):
        result = ctx.client(service)
        result.meta.events.register(
            "before-parameter-build",
            lambda params, model, **_: calls.append((model.name, dict(params))),
        )
        return result

    return replace(ctx, client=client)


def test_load_balancers_tagged_and_never_tagged(ctx):
    e = _estate()
    found = scan(LoadBalancerScanner, ctx)
    assert set(found) == {"web", "bare"}
    web = found["web"]
    assert web.arn == e["alb"]
    assert web.arn.startswith(
        f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/app/web/"
    )
    assert web.name == "web"
    assert web.tags == {"Owner": "alice", "Env": "prod"}
    assert web.config["Type"] == "application"
    assert _relations(web) == {
        ("in_subnet", _ec2(f"subnet/{e['subnet_a']}")),
        ("in_subnet", _ec2(f"subnet/{e['subnet_b']}")),
        ("security_group", _ec2(f"security-group/{e['sg']}")),
        ("in_vpc", _ec2(f"vpc/{e['vpc']}")),
        ("target_group", e["tagged_tg"]),
    }
    bare = found["bare"]
    # The ARN is the one the API returns (moto 5.2 puts "app/" in NLB ARNs where AWS has "net/").
    assert bare.arn == e["nlb"]
    assert bare.arn.startswith(f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/")
    assert bare.config["Type"] == "network"
    assert bare.tags == {}
    assert not any(r.kind == "target_group" for r in bare.relations)


def test_target_groups(ctx):
    e = _estate()
    found = scan(TargetGroupScanner, ctx)
    assert set(found) == {"web-tg", "bare-tg"}
    web = found["web-tg"]
    assert web.arn == e["tagged_tg"]
    assert web.arn.startswith(
        f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/web-tg/"
    )
    assert web.name == "web-tg"
    assert web.tags == {"Team": "platform"}
    assert _relations(web) == {
        ("load_balancer", e["alb"]),
        ("in_vpc", _ec2(f"vpc/{e['vpc']}")),
        ("target", _ec2(f"instance/{e['instance']}")),
    }
    bare = found["bare-tg"]
    assert bare.tags == {}
    assert _relations(bare) == {("in_vpc", _ec2(f"vpc/{e['vpc']}"))}


def test_classic_load_balancers(ctx):
    e = _estate()
    found = scan(ClassicLoadBalancerScanner, ctx)
    assert set(found) == {"legacy", "old"}
    legacy = found["legacy"]
    assert legacy.arn == f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/legacy"
    assert legacy.name == "legacy"
    assert legacy.tags == {"Name": "legacy-web", "Owner": "bob"}
    assert _relations(legacy) == {
        ("in_subnet", _ec2(f"subnet/{e['subnet_a']}")),
        ("security_group", _ec2(f"security-group/{e['sg']}")),
        ("in_vpc", _ec2(f"vpc/{e['vpc']}")),
        ("target", _ec2(f"instance/{e['instance']}")),
    }
    old = found["old"]
    assert old.arn == f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:loadbalancer/old"
    assert old.tags == {}
    assert ("in_subnet", _ec2(f"subnet/{e['subnet_b']}")) in _relations(old)
    assert not any(r.kind == "target" for r in old.relations)


def test_every_page_is_followed(ctx, small_pages):
    e = _estate()
    pages = list(LoadBalancerScanner().pages(ctx))
    assert len(pages) >= 2
    found = {r.resource_id: r for page in pages for r in page}
    assert set(found) == {"web", "bare"}
    assert found["web"].tags == {"Owner": "alice", "Env": "prod"}
    assert ("target_group", e["tagged_tg"]) in _relations(found["web"])
    pages = list(ClassicLoadBalancerScanner().pages(ctx))
    assert len(pages) >= 2
    assert {r.resource_id for page in pages for r in page} == {"legacy", "old"}


def test_tags_are_read_in_batches_of_twenty(ctx):
    _, subnet_a, _, _, _ = _network()
    elb = boto3.client("elb", region_name=REGION)
    for i in range(25):
        elb.create_load_balancer(
            LoadBalancerName=f"lb-{i:02d}",
            Listeners=LISTENER,
            Subnets=[subnet_a],
            Tags=[{"Key": "Index", "Value": str(i)}],
        )
    calls = []
    found = scan(ClassicLoadBalancerScanner, _spying(ctx, calls))
    assert len(found) == 25
    assert all(found[f"lb-{i:02d}"].tags == {"Index": str(i)} for i in range(25))
    batches = [len(p["LoadBalancerNames"]) for op, p in calls if op == "DescribeTags"]
    assert batches == [20, 5]


def test_elbv2_tags_are_read_in_batches_of_twenty(ctx):
    vpc, subnet_a, subnet_b, _, _ = _network()
    elbv2 = boto3.client("elbv2", region_name=REGION)
    for i in range(22):
        elbv2.create_target_group(
            Name=f"tg-{i:02d}",
            Protocol="HTTP",
            Port=80,
            VpcId=vpc,
            Tags=[{"Key": "Index", "Value": str(i)}],
        )
    calls = []
    found = scan(TargetGroupScanner, _spying(ctx, calls))
    assert len(found) == 22
    assert all(found[f"tg-{i:02d}"].tags == {"Index": str(i)} for i in range(22))
    batches = [len(p["ResourceArns"]) for op, p in calls if op == "DescribeTags"]
    assert batches == [20, 2]
