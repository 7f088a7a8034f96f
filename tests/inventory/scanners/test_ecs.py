"""ECS scanners: tagged and never-tagged clusters and services, and services' clusters."""

from dataclasses import replace

import boto3

from inventory.scanners.ecs import ClusterScanner, ServiceScanner

from .conftest import ACCOUNT, REGION, scan


def _estate():
    ecs = boto3.client("ecs", region_name=REGION)
    ecs.create_cluster(
        clusterName="prod",
        tags=[{"key": "Name", "value": "production"}, {"key": "Owner", "value": "alice"}],
    )
    ecs.create_cluster(clusterName="scratch")
    ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )
    ecs.create_service(
        cluster="prod",
        serviceName="api",
        taskDefinition="web",
        desiredCount=0,
        tags=[{"key": "Team", "value": "payments"}],
    )
    ecs.create_service(cluster="prod", serviceName="worker", taskDefinition="web", desiredCount=0)
    # The same name in another cluster is another service.
    ecs.create_service(cluster="scratch", serviceName="api", taskDefinition="web", desiredCount=0)
    return ecs


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


def _cluster_arn(name):
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{name}"


def test_clusters_tagged_and_never_tagged(ctx):
    _estate()
    found = scan(ClusterScanner, ctx)
    assert set(found) == {"prod", "scratch"}
    prod = found["prod"]
    assert prod.arn == _cluster_arn("prod")
    assert prod.name == "prod"
    assert prod.tags == {"Name": "production", "Owner": "alice"}
    assert prod.config["status"] == "ACTIVE"
    scratch = found["scratch"]
    assert scratch.arn == _cluster_arn("scratch")
    assert scratch.tags == {}


def test_services_tagged_and_never_tagged(ctx):
    _estate()
    found = scan(ServiceScanner, ctx)
    assert set(found) == {"prod/api", "prod/worker", "scratch/api"}
    api = found["prod/api"]
    assert api.arn == f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/api"
    assert api.name == "api"
    assert api.tags == {"Team": "payments"}
    assert [(r.kind, r.target_arn) for r in api.relations] == [("in_cluster", _cluster_arn("prod"))]
    worker = found["prod/worker"]
    assert worker.arn == f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/worker"
    assert worker.tags == {}
    other = found["scratch/api"]
    assert other.name == "api"
    assert other.tags == {}
    assert [(r.kind, r.target_arn) for r in other.relations] == [
        ("in_cluster", _cluster_arn("scratch"))
    ]


def test_clusters_are_described_in_batches_of_a_hundred(ctx):
    ecs = _estate()
    for i in range(105):
        ecs.create_cluster(clusterName=f"c-{i:03d}", tags=[{"key": "Index", "value": str(i)}])
    calls = []
    found = scan(ClusterScanner, _spying(ctx, calls))
    assert len(found) == 2 + 105
    assert all(found[f"c-{i:03d}"].tags == {"Index": str(i)} for i in range(105))
    batches = [len(p["clusters"]) for op, p in calls if op == "DescribeClusters"]
    assert sum(batches) == 107
    assert max(batches) == 100
    assert all(p["include"] == ["TAGS"] for op, p in calls if op == "DescribeClusters")


def test_services_are_described_in_batches_of_ten(ctx):
    ecs = _estate()
    for i in range(23):
        ecs.create_service(
            cluster="scratch",
            serviceName=f"job-{i:02d}",
            taskDefinition="web",
            desiredCount=0,
            tags=[{"key": "Index", "value": str(i)}],
        )
    calls = []
    found = scan(ServiceScanner, _spying(ctx, calls))
    assert len(found) == 3 + 23
    assert all(found[f"scratch/job-{i:02d}"].tags == {"Index": str(i)} for i in range(23))
    batches = [len(p["services"]) for op, p in calls if op == "DescribeServices"]
    assert sum(batches) == 3 + 23
    assert max(batches) == 10


def test_service_network_and_load_balancer_relations(ctx):
    ecs = _estate()
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="svc", Description="svc", VpcId=vpc)["GroupId"]
    target_group = boto3.client("elbv2", region_name=REGION).create_target_group(
        Name="svc", Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip"
    )["TargetGroups"][0]["TargetGroupArn"]
    ecs.create_service(
        cluster="prod",
        serviceName="edge",
        taskDefinition="web",
        desiredCount=0,
        networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [sg]}},
        loadBalancers=[
            {"targetGroupArn": target_group, "containerName": "web", "containerPort": 80}
        ],
    )
    edge = scan(ServiceScanner, ctx)["prod/edge"]
    assert {(r.kind, r.target_arn) for r in edge.relations} == {
        ("in_cluster", _cluster_arn("prod")),
        ("in_subnet", f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{subnet}"),
        ("security_group", f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{sg}"),
        ("target_group", target_group),
    }
