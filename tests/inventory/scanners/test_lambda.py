"""Lambda scanner: tagged and never-tagged functions, and their VPC relationships."""

import io
import json
import zipfile

import boto3

from inventory.scanners.lambda_ import FunctionScanner

from .conftest import ACCOUNT, REGION, scan

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", "def handle(event, context):\n    return event\n")
    return buffer.getvalue()


def _estate():
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="fn", Description="fn", VpcId=vpc)["GroupId"]
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="lambda-exec", AssumeRolePolicyDocument=json.dumps(TRUST)
    )["Role"]["Arn"]
    client = boto3.client("lambda", region_name=REGION)
    common = {"Runtime": "python3.11", "Role": role, "Handler": "handler.handle"}
    client.create_function(
        FunctionName="resize",
        Code={"ZipFile": _zip()},
        MemorySize=256,
        VpcConfig={"SubnetIds": [subnet], "SecurityGroupIds": [sg]},
        Tags={"Owner": "alice", "CostCentre": "42"},
        **common,
    )
    client.create_function(FunctionName="cron", Code={"ZipFile": _zip()}, **common)
    return locals()


def test_functions_tagged_and_never_tagged(ctx):
    e = _estate()
    found = scan(FunctionScanner, ctx)
    assert set(found) == {"resize", "cron"}
    resize = found["resize"]
    assert resize.arn == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:resize"
    assert resize.name == "resize"
    assert resize.tags == {"Owner": "alice", "CostCentre": "42"}
    assert resize.config["Runtime"] == "python3.11"
    assert resize.config["MemorySize"] == 256
    relations = {(r.kind, r.target_arn) for r in resize.relations}
    assert ("in_subnet", f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{e['subnet']}") in relations
    assert ("security_group", f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{e['sg']}") in (
        relations
    )
    assert ("execution_role", e["role"]) in relations
    cron = found["cron"]
    assert cron.arn == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:cron"
    assert cron.tags == {}
    # Outside a VPC: no network relations, only the execution role.
    assert [(r.kind, r.target_arn) for r in cron.relations] == [("execution_role", e["role"])]


def test_tags_follow_changes(ctx):
    _estate()
    client = boto3.client("lambda", region_name=REGION)
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:cron"
    client.tag_resource(Resource=arn, Tags={"Env": "dev"})
    client.untag_resource(
        Resource=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:resize", TagKeys=["Owner"]
    )
    found = scan(FunctionScanner, ctx)
    assert found["cron"].tags == {"Env": "dev"}
    assert found["resize"].tags == {"CostCentre": "42"}
