"""The demo estate seeder (demo/estate/), against a real moto_server subprocess.

No database. The server starts once for the module and a small estate is seeded into it; every
check lists what is there through the AWS APIs, inside the member accounts by assume-role, as
TagSense does, rather than trusting the seeder's own summary.
"""

import random
from collections import defaultdict

import boto3
import pytest

from demo.estate import (
    ACCOUNT_PLANS,
    DEFAULT_REGIONS,
    MANAGEMENT_ACCOUNT_ID,
    RESOURCE_TYPES,
    Tagger,
    seed_estate,
    start_moto_server,
    stop_moto_server,
)

RESOURCES = 150
TESTING = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REQUIRED = ("Owner", "Environment", "CostCenter", "Application", "DataClassification")
ENVIRONMENTS = {"prod", "staging", "dev"}
# A key meant as one of REQUIRED but spelt otherwise: owner, OWNER, env, environment, app...
MEANT = {"owner", "environment", "env", "costcenter", "application", "app", "dataclassification"}


@pytest.fixture(scope="module")
def estate():
    with pytest.MonkeyPatch.context() as patch:
        for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
            patch.delenv(key, raising=False)
        proc, endpoint = start_moto_server()
        try:
            yield endpoint, seed_estate(endpoint, resources=RESOURCES)
        finally:
            stop_moto_server(proc)
    assert proc.poll() is not None


def _management(endpoint, service):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", **TESTING)


def _member(endpoint, account_id):
    """A session inside a member account through its TagSenseReadOnly role."""
    credentials = _management(endpoint, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/TagSenseReadOnly", RoleSessionName="test"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def _all(client, operation, key, **kwargs):
    return [
        item
        for page in client.get_paginator(operation).paginate(**kwargs)
        for item in page.get(key, [])
    ]


def _members(endpoint):
    org = _management(endpoint, "organizations")
    return [a for a in _all(org, "list_accounts", "Accounts") if a["Id"] != MANAGEMENT_ACCOUNT_ID]


@pytest.fixture(scope="module")
def listed(estate):
    """{resource type: [(account id, region, item)]}: what the member accounts hold."""
    endpoint, _ = estate
    found = defaultdict(list)
    for account in _members(endpoint):
        account_id = account["Id"]
        session = _member(endpoint, account_id)

        def add(resource_type, items, region, account_id=account_id):
            found[resource_type].extend((account_id, region, item) for item in items)

        for region in DEFAULT_REGIONS:

            def client(service, region=region, session=session):
                return session.client(service, region_name=region, endpoint_url=endpoint)

            ec2 = client("ec2")
            reservations = _all(ec2, "describe_instances", "Reservations")
            add("ec2:instance", [i for r in reservations for i in r["Instances"]], region)
            add("ec2:volume", _all(ec2, "describe_volumes", "Volumes"), region)
            snapshots = _all(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"])
            add("ec2:snapshot", [s for s in snapshots if s["OwnerId"] == account_id], region)
            add("ec2:image", _all(ec2, "describe_images", "Images", Owners=["self"]), region)
            vpcs = _all(ec2, "describe_vpcs", "Vpcs")
            add("ec2:vpc", [v for v in vpcs if not v["IsDefault"]], region)
            subnets = _all(ec2, "describe_subnets", "Subnets")
            add("ec2:subnet", [s for s in subnets if not s["DefaultForAz"]], region)
            groups = _all(ec2, "describe_security_groups", "SecurityGroups")
            add("ec2:security-group", [g for g in groups if g["GroupName"] != "default"], region)
            elbv2 = client("elbv2")
            add(
                "elasticloadbalancing:loadbalancer",
                _all(elbv2, "describe_load_balancers", "LoadBalancers"),
                region,
            )
            add(
                "elasticloadbalancing:targetgroup",
                _all(elbv2, "describe_target_groups", "TargetGroups"),
                region,
            )
            add(
                "elb:loadbalancer",
                _all(client("elb"), "describe_load_balancers", "LoadBalancerDescriptions"),
                region,
            )
            add("lambda:function", _all(client("lambda"), "list_functions", "Functions"), region)
            ecs = client("ecs")
            clusters = _all(ecs, "list_clusters", "clusterArns")
            add("ecs:cluster", clusters, region)
            for cluster in clusters:
                services = _all(ecs, "list_services", "serviceArns", cluster=cluster)
                if services:
                    described = ecs.describe_services(cluster=cluster, services=services)
                    add("ecs:service", described["services"], region)
            eks = client("eks")
            for name in _all(eks, "list_clusters", "clusters"):
                add("eks:cluster", [eks.describe_cluster(name=name)["cluster"]], region)
                for group in _all(eks, "list_nodegroups", "nodegroups", clusterName=name):
                    nodegroup = eks.describe_nodegroup(clusterName=name, nodegroupName=group)
                    add("eks:nodegroup", [nodegroup["nodegroup"]], region)
            rds = client("rds")
            add("rds:db", _all(rds, "describe_db_instances", "DBInstances"), region)
            add("rds:cluster", _all(rds, "describe_db_clusters", "DBClusters"), region)
            add("dynamodb:table", _all(client("dynamodb"), "list_tables", "TableNames"), region)
            add(
                "elasticache:cluster",
                _all(client("elasticache"), "describe_cache_clusters", "CacheClusters"),
                region,
            )
            add(
                "elasticfilesystem:file-system",
                _all(client("efs"), "describe_file_systems", "FileSystems"),
                region,
            )
        s3 = session.client("s3", region_name="us-east-1", endpoint_url=endpoint)
        add("s3:bucket", s3.list_buckets()["Buckets"], "global")
        cloudfront = session.client("cloudfront", region_name="us-east-1", endpoint_url=endpoint)
        distributions = cloudfront.list_distributions()["DistributionList"].get("Items", [])
        add("cloudfront:distribution", distributions, "global")
    return found


def test_organization_has_member_accounts_in_ous(estate):
    endpoint, summary = estate
    org = _management(endpoint, "organizations")
    organization = org.describe_organization()["Organization"]
    assert organization["MasterAccountId"] == MANAGEMENT_ACCOUNT_ID
    assert summary.management_account_id == MANAGEMENT_ACCOUNT_ID
    members = _members(endpoint)
    assert len(members) >= 3
    by_id = {a["account_id"]: a for a in summary.accounts}
    assert set(by_id) == {a["Id"] for a in members}
    paths = set()
    for account in members:
        parent = org.list_parents(ChildId=account["Id"])["Parents"][0]
        assert parent["Type"] == "ORGANIZATIONAL_UNIT"
        name = org.describe_organizational_unit(OrganizationalUnitId=parent["Id"])[
            "OrganizationalUnit"
        ]["Name"]
        grandparent = org.list_parents(ChildId=parent["Id"])["Parents"][0]
        assert grandparent["Type"] == "ROOT"
        assert by_id[account["Id"]]["ou_path"] == f"Root/{name}"
        paths.add(f"Root/{name}")
    assert {"Root/Production", "Root/Development", "Root/Security"} <= paths


def test_read_only_role_in_every_member_account(estate):
    endpoint, summary = estate
    for account in summary.accounts:
        arn = f"arn:aws:iam::{account['account_id']}:role/TagSenseReadOnly"
        assert account["role_arn"] == arn
        session = _member(endpoint, account["account_id"])
        identity = session.client("sts", region_name="us-east-1", endpoint_url=endpoint)
        assert identity.get_caller_identity()["Account"] == account["account_id"]
        iam = session.client("iam", region_name="us-east-1", endpoint_url=endpoint)
        role = iam.get_role(RoleName="TagSenseReadOnly")["Role"]
        assert role["Arn"] == arn
        principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"]
        assert principal == f"arn:aws:iam::{MANAGEMENT_ACCOUNT_ID}:root"
        assert iam.get_role(RoleName="OrganizationAccountAccessRole")["Role"]
        assert set(account["regions"]) == set(DEFAULT_REGIONS)


def test_every_scanned_type_is_in_the_member_accounts(listed):
    missing = [t for t in RESOURCE_TYPES if not listed[t]]
    assert missing == []
    regions = {region for items in listed.values() for _, region, _ in items}
    assert set(DEFAULT_REGIONS) <= regions
    accounts = {account for items in listed.values() for account, _, _ in items}
    assert len(accounts) >= 3


def test_summary_matches_what_is_there(estate, listed):
    _, summary = estate
    assert summary.total >= RESOURCES
    assert summary.total == sum(summary.counts.values())
    assert summary.counts == {t: len(listed[t]) for t in RESOURCE_TYPES}
    assert summary.notes == []
    # Each region's default VPC (moto's, as AWS's) is there too, counted apart.
    assert summary.defaults["ec2:vpc"] == len(summary.accounts) * len(DEFAULT_REGIONS)


def test_resources_are_related(estate, listed):
    endpoint, _ = estate
    subnets = {item["SubnetId"] for _, _, item in listed["ec2:subnet"]}
    groups = {item["GroupId"] for _, _, item in listed["ec2:security-group"]}
    instances = {item["InstanceId"] for _, _, item in listed["ec2:instance"]}
    volumes = {item["VolumeId"] for _, _, item in listed["ec2:volume"]}
    images = {item["ImageId"] for _, _, item in listed["ec2:image"]}
    for _, _, instance in listed["ec2:instance"]:
        assert instance["SubnetId"] in subnets
        assert {g["GroupId"] for g in instance["SecurityGroups"]} <= groups
        assert instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] in volumes
    assert any(i["ImageId"] in images for _, _, i in listed["ec2:instance"])
    assert any(s["VolumeId"] in volumes for _, _, s in listed["ec2:snapshot"])
    assert any(v["Attachments"] and v["Size"] > 8 for _, _, v in listed["ec2:volume"])
    # Load balancers: target groups behind ELBv2 listeners, with instances registered.
    groups_with_lb = [g for _, _, g in listed["elasticloadbalancing:targetgroup"]]
    assert all(g["LoadBalancerArns"] for g in groups_with_lb)
    registered = set()
    for account, region, group in listed["elasticloadbalancing:targetgroup"]:
        elbv2 = _member(endpoint, account).client(
            "elbv2", region_name=region, endpoint_url=endpoint
        )
        health = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])
        registered |= {d["Target"]["Id"] for d in health["TargetHealthDescriptions"]}
    assert registered & instances
    assert all(lb["Instances"] for _, _, lb in listed["elb:loadbalancer"])
    # Containers, Kubernetes, databases, functions.
    assert any(s["loadBalancers"] for _, _, s in listed["ecs:service"])
    clusters = {c["name"] for _, _, c in listed["eks:cluster"]}
    assert {n["clusterName"] for _, _, n in listed["eks:nodegroup"]} == clusters
    assert all(set(n["subnets"]) <= subnets for _, _, n in listed["eks:nodegroup"])
    assert all(db["DBSubnetGroup"]["Subnets"] for _, _, db in listed["rds:db"])
    aurora = [c for _, _, c in listed["rds:cluster"] if c["Engine"].startswith("aurora")]
    assert aurora and aurora[0]["DBClusterMembers"]
    in_vpc = [f for _, _, f in listed["lambda:function"] if f.get("VpcConfig", {}).get("SubnetIds")]
    assert in_vpc and all(set(f["VpcConfig"]["SubnetIds"]) <= subnets for f in in_vpc)
    # CloudFront: one distribution serves from S3, one from a load balancer.
    origins = [
        o["DomainName"]
        for _, _, d in listed["cloudfront:distribution"]
        for o in d["Origins"]["Items"]
    ]
    buckets = {b["Name"] for _, _, b in listed["s3:bucket"]}
    assert any(o.split(".s3.")[0] in buckets for o in origins if ".s3." in o)
    dns_names = {lb["DNSName"] for _, _, lb in listed["elasticloadbalancing:loadbalancer"]}
    assert any(o in dns_names for o in origins)


def _tag_sets(endpoint, listed):
    """Tags of the cheap, numerous types: instances, volumes, buckets, tables, functions."""
    tag_sets = []
    for resource_type in ("ec2:instance", "ec2:volume"):
        for _, _, item in listed[resource_type]:
            tag_sets.append({t["Key"]: t["Value"] for t in item.get("Tags", [])})
    sessions = {}
    for account, region, name in listed["dynamodb:table"] + listed["s3:bucket"]:
        session = sessions.setdefault(account, _member(endpoint, account))
        if region == "global":
            s3 = session.client("s3", region_name="us-east-1", endpoint_url=endpoint)
            try:
                tag_set = s3.get_bucket_tagging(Bucket=name["Name"])["TagSet"]
            except s3.exceptions.ClientError as error:
                assert error.response["Error"]["Code"] == "NoSuchTagSet"
                tag_set = []
        else:
            dynamodb = session.client("dynamodb", region_name=region, endpoint_url=endpoint)
            arn = dynamodb.describe_table(TableName=name)["Table"]["TableArn"]
            tag_set = dynamodb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])
        tag_sets.append({t["Key"]: t["Value"] for t in tag_set})
    for account, region, function in listed["lambda:function"]:
        client = sessions.setdefault(account, _member(endpoint, account)).client(
            "lambda", region_name=region, endpoint_url=endpoint
        )
        tag_sets.append(client.list_tags(Resource=function["FunctionArn"]).get("Tags", {}))
    return tag_sets


def test_tag_hygiene_is_realistically_mixed(estate, listed):
    endpoint, _ = estate
    tag_sets = _tag_sets(endpoint, listed)
    assert len(tag_sets) >= 50
    untagged = [t for t in tag_sets if not t]
    full = [
        t for t in tag_sets if all(k in t for k in REQUIRED) and t["Environment"] in ENVIRONMENTS
    ]
    variant_keys = {
        key
        for tags in tag_sets
        for key in tags
        if key not in REQUIRED and key.lower().replace("-", "") in MEANT
    }
    misspelt = {
        t["Environment"] for t in tag_sets if t.get("Environment", "prod") not in ENVIRONMENTS
    }
    partial = [t for t in tag_sets if t and not any(k.lower() == "environment" for k in t)]
    assert len(untagged) >= 0.10 * len(tag_sets)
    assert 0.45 * len(tag_sets) <= len(full) <= 0.75 * len(tag_sets)
    assert variant_keys & {"owner", "OWNER", "env", "environment", "ENV", "Env"}
    assert misspelt
    assert partial


def test_tags_are_deterministic_per_seed():
    def draw(seed):
        tagger = Tagger(random.Random(f"{seed}:x"), ACCOUNT_PLANS[0])
        return [tagger.tags("checkout") for _ in range(200)], dict(tagger.hygiene)

    first, hygiene = draw(7)
    assert draw(7) == (first, hygiene)
    assert draw(8)[0] != first
    # The deck deals exact shares: 60% full and 13% untagged per 100 resources.
    assert hygiene["full"] == 120 and hygiene["untagged"] == 26
    assert sum(1 for tags in first if not tags) == 26


def test_a_seed_always_seeds_the_same_estate(estate):
    """Seed 7 at 150 resources, as inventory/demo.py seeded it before it was split into
    demo/estate/ (its summary then, taken from both on the same moto): the same resources per
    type, the same hygiene cards drawn and the same number of API calls."""
    _, summary = estate
    assert summary.counts == {
        "ec2:instance": 27, "ec2:volume": 31, "ec2:snapshot": 8, "ec2:image": 4,
        "ec2:vpc": 12, "ec2:subnet": 32, "ec2:security-group": 20,
        "elasticloadbalancing:loadbalancer": 3, "elasticloadbalancing:targetgroup": 5,
        "elb:loadbalancer": 2, "lambda:function": 4, "ecs:cluster": 2, "ecs:service": 3,
        "eks:cluster": 2, "eks:nodegroup": 3, "s3:bucket": 6, "rds:db": 5, "rds:cluster": 1,
        "dynamodb:table": 4, "elasticache:cluster": 3, "elasticfilesystem:file-system": 3,
        "cloudfront:distribution": 3,
    }  # fmt: skip
    assert summary.total == 183
    assert summary.defaults == {"ec2:vpc": 12, "ec2:subnet": 48, "ec2:security-group": 24}
    assert summary.hygiene == {
        "full": 107, "case-variant": 16, "misspelt": 14, "partial": 18, "untagged": 24
    }  # fmt: skip
    assert summary.api_calls == 489
