"""EKS scanners: tagged and never-tagged clusters and node groups, and their relationships."""

import json

import boto3

from inventory.scanners.eks import ClusterScanner, NodegroupScanner

from .conftest import ACCOUNT, REGION, scan


def _estate():
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet_a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24", AvailabilityZone=f"{REGION}a")[
        "Subnet"
    ]["SubnetId"]
    subnet_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.2.0/24", AvailabilityZone=f"{REGION}b")[
        "Subnet"
    ]["SubnetId"]
    sg = ec2.create_security_group(GroupName="eks", Description="eks", VpcId=vpc)["GroupId"]
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="eks", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"})
    )["Role"]["Arn"]
    eks = boto3.client("eks", region_name=REGION)
    eks.create_cluster(
        name="prod",
        roleArn=role,
        resourcesVpcConfig={"subnetIds": [subnet_a, subnet_b], "securityGroupIds": [sg]},
        tags={"Owner": "alice", "Env": "prod"},
    )
    eks.create_cluster(name="lab", roleArn=role, resourcesVpcConfig={"subnetIds": [subnet_a]})
    eks.create_nodegroup(
        clusterName="prod",
        nodegroupName="general",
        subnets=[subnet_a, subnet_b],
        nodeRole=role,
        tags={"Team": "platform"},
    )
    eks.create_nodegroup(
        clusterName="prod", nodegroupName="spot", subnets=[subnet_b], nodeRole=role
    )
    # The same node group name in another cluster is another node group.
    eks.create_nodegroup(
        clusterName="lab", nodegroupName="general", subnets=[subnet_a], nodeRole=role
    )
    return locals()


def _ec2(resource):
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:{resource}"


def _relations(record):
    return {(r.kind, r.target_arn) for r in record.relations}


def test_clusters_tagged_and_never_tagged(ctx):
    e = _estate()
    found = scan(ClusterScanner, ctx)
    assert set(found) == {"prod", "lab"}
    prod = found["prod"]
    assert prod.arn == f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/prod"
    assert prod.name == "prod"
    assert prod.tags == {"Owner": "alice", "Env": "prod"}
    assert prod.config["status"] == "ACTIVE"
    assert _relations(prod) == {
        ("in_subnet", _ec2(f"subnet/{e['subnet_a']}")),
        ("in_subnet", _ec2(f"subnet/{e['subnet_b']}")),
        ("security_group", _ec2(f"security-group/{e['sg']}")),
    }
    lab = found["lab"]
    assert lab.arn == f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/lab"
    assert lab.tags == {}
    assert _relations(lab) == {("in_subnet", _ec2(f"subnet/{e['subnet_a']}"))}


def test_nodegroups_tagged_and_never_tagged(ctx):
    e = _estate()
    found = scan(NodegroupScanner, ctx)
    assert set(found) == {"prod/general", "prod/spot", "lab/general"}
    general = found["prod/general"]
    assert general.arn.startswith(f"arn:aws:eks:{REGION}:{ACCOUNT}:nodegroup/prod/general/")
    assert general.name == "general"
    assert general.tags == {"Team": "platform"}
    assert _relations(general) == {
        ("in_cluster", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/prod"),
        ("in_subnet", _ec2(f"subnet/{e['subnet_a']}")),
        ("in_subnet", _ec2(f"subnet/{e['subnet_b']}")),
    }
    spot = found["prod/spot"]
    assert spot.arn.startswith(f"arn:aws:eks:{REGION}:{ACCOUNT}:nodegroup/prod/spot/")
    assert spot.tags == {}
    other = found["lab/general"]
    assert other.name == "general"
    assert other.tags == {}
    assert _relations(other) == {
        ("in_cluster", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/lab"),
        ("in_subnet", _ec2(f"subnet/{e['subnet_a']}")),
    }


def test_every_page_is_followed(ctx, small_pages):
    _estate()
    pages = list(ClusterScanner().pages(ctx))
    assert len(pages) >= 2
    assert {r.resource_id for page in pages for r in page} == {"prod", "lab"}
    pages = list(NodegroupScanner().pages(ctx))
    assert len(pages) >= 3
    assert {r.resource_id for page in pages for r in page} == {
        "prod/general",
        "prod/spot",
        "lab/general",
    }
