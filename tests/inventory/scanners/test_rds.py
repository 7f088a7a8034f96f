"""RDS scanners: DB instances and clusters, tagged and never tagged, and their relationships."""

import boto3

from inventory.scanners.rds import DbClusterScanner, DbInstanceScanner

from .conftest import ACCOUNT, REGION, scan


def _estate():
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.2.0.0/16")["Vpc"]["VpcId"]
    subnet_a = ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.1.0/24", AvailabilityZone=f"{REGION}a")[
        "Subnet"
    ]["SubnetId"]
    subnet_b = ec2.create_subnet(VpcId=vpc, CidrBlock="10.2.2.0/24", AvailabilityZone=f"{REGION}b")[
        "Subnet"
    ]["SubnetId"]
    sg = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    rds = boto3.client("rds", region_name=REGION)
    rds.create_db_subnet_group(
        DBSubnetGroupName="db-subnets",
        DBSubnetGroupDescription="db",
        SubnetIds=[subnet_a, subnet_b],
    )
    rds.create_db_instance(
        DBInstanceIdentifier="orders-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="password123",
        DBSubnetGroupName="db-subnets",
        VpcSecurityGroupIds=[sg],
        Tags=[{"Key": "Name", "Value": "Orders"}, {"Key": "Owner", "Value": "carol"}],
    )
    rds.create_db_instance(
        DBInstanceIdentifier="scratch-db",
        DBInstanceClass="db.t3.micro",
        Engine="mysql",
        AllocatedStorage=20,
        MasterUsername="admin",
        MasterUserPassword="password123",
    )
    rds.create_db_cluster(
        DBClusterIdentifier="aurora-main",
        Engine="aurora-postgresql",
        MasterUsername="admin",
        MasterUserPassword="password123",
        DBSubnetGroupName="db-subnets",
        VpcSecurityGroupIds=[sg],
        Tags=[{"Key": "Team", "Value": "payments"}],
    )
    rds.create_db_cluster(
        DBClusterIdentifier="aurora-plain",
        Engine="aurora-mysql",
        MasterUsername="admin",
        MasterUserPassword="password123",
    )
    rds.create_db_instance(
        DBInstanceIdentifier="aurora-main-1",
        DBInstanceClass="db.r6g.large",
        Engine="aurora-postgresql",
        DBClusterIdentifier="aurora-main",
    )
    return locals()


def test_db_instances_tagged_and_never_tagged(ctx):
    e = _estate()
    found = scan(DbInstanceScanner, ctx)
    assert {"orders-db", "scratch-db", "aurora-main-1"} <= set(found)
    orders = found["orders-db"]
    assert orders.resource_type == "rds:db"
    assert orders.tags == {"Name": "Orders", "Owner": "carol"}
    assert orders.name == "Orders"
    assert orders.arn == f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders-db"
    assert orders.config["Engine"] == "postgres"
    relations = {(r.kind, r.target_arn) for r in orders.relations}
    assert relations == {
        ("in_subnet", f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{e['subnet_a']}"),
        ("in_subnet", f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{e['subnet_b']}"),
        ("security_group", f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{e['sg']}"),
    }
    scratch = found["scratch-db"]
    assert scratch.tags == {}
    assert scratch.name == "scratch-db"
    assert scratch.arn == f"arn:aws:rds:{REGION}:{ACCOUNT}:db:scratch-db"
    assert not any(r.kind == "in_cluster" for r in scratch.relations)


def test_cluster_member_points_at_its_cluster(ctx):
    _estate()
    member = scan(DbInstanceScanner, ctx)["aurora-main-1"]
    cluster_arn = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:aurora-main"
    assert ("in_cluster", cluster_arn) in {(r.kind, r.target_arn) for r in member.relations}


def test_db_clusters_tagged_and_never_tagged(ctx):
    e = _estate()
    found = scan(DbClusterScanner, ctx)
    assert set(found) == {"aurora-main", "aurora-plain"}
    main = found["aurora-main"]
    assert main.resource_type == "rds:cluster"
    assert main.tags == {"Team": "payments"}
    assert main.name == "aurora-main"
    assert main.arn == f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:aurora-main"
    assert main.config["Engine"] == "aurora-postgresql"
    assert [(r.kind, r.target_arn) for r in main.relations] == [
        ("security_group", f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{e['sg']}")
    ]
    plain = found["aurora-plain"]
    assert plain.tags == {}
    assert plain.arn == f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:aurora-plain"
