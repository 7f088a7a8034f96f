"""Containers: an ECS cluster with Fargate services (the storefront behind the site's ALB, when
there is one) and an EKS cluster with its node groups."""

from __future__ import annotations

from typing import Any

from .session import Member, Site
from .tagging import optional_tags


def ecs(member: Member, site: Site) -> None:
    client = member.client("ecs", site.region)
    app = member.plan.apps[0]
    cluster = client.create_cluster(
        clusterName=f"{member.plan.prefix}-apps",
        **optional_tags(member.tagger.tags(app), "tags", "key", "value"),
    )["cluster"]["clusterArn"]
    member.made("ecs:cluster")
    services = ("storefront", "order-worker") if site.index == 0 else ("storefront",)
    if member.plan.slug != "prod-workloads":
        services = ("storefront",)
    for service in services:
        _ecs_service(member, site, cluster, service, app)


def _ecs_service(member: Member, site: Site, cluster: str, service: str, app: str) -> None:
    """A Fargate service and its task definition; the storefront joins the site's ALB."""
    client = member.client("ecs", site.region)
    prefix = member.plan.prefix
    task = client.register_task_definition(
        family=f"{prefix}-{service}",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        executionRoleArn=member.roles["ecs-task-exec"],
        containerDefinitions=[
            {
                "name": service,
                "image": f"public.ecr.aws/nginx/nginx:{service}",
                "portMappings": [{"containerPort": 8080}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    kwargs: dict[str, Any] = {}
    if service == "storefront" and site.alb_listener:
        group = _alb_path_target_group(member, site, service, app)
        kwargs["loadBalancers"] = [
            {"targetGroupArn": group, "containerName": service, "containerPort": 8080}
        ]
    client.create_service(
        cluster=cluster,
        serviceName=service,
        taskDefinition=task,
        desiredCount=member.rng.randint(2, 6),
        launchType="FARGATE",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": site.private_subnets(),
                "securityGroups": [site.groups["app"]],
                "assignPublicIp": "DISABLED",
            }
        },
        **kwargs,
        **optional_tags(member.tagger.tags(app), "tags", "key", "value"),
    )
    member.made("ecs:service")


def _alb_path_target_group(member: Member, site: Site, service: str, app: str) -> str:
    """An IP target group for the service, forwarded /shop/* by the site's ALB listener."""
    elbv2 = member.client("elbv2", site.region)
    group = elbv2.create_target_group(
        Name=f"{member.plan.prefix}-{service}-tg",
        Protocol="HTTP",
        Port=8080,
        VpcId=site.vpc,
        TargetType="ip",
        **optional_tags(member.tagger.tags(app)),
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_rule(
        ListenerArn=site.alb_listener,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/shop/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": group}],
    )
    member.made("elasticloadbalancing:targetgroup")
    return group


def eks(member: Member, site: Site) -> None:
    client = member.client("eks", site.region)
    prefix, tagger = member.plan.prefix, member.tagger
    app = member.plan.apps[2]
    subnets = site.private_subnets()
    name = f"{prefix}-platform"
    client.create_cluster(
        name=name,
        version="1.30",
        roleArn=member.roles["eks-cluster"],
        resourcesVpcConfig={"subnetIds": subnets, "securityGroupIds": [site.groups["app"]]},
        **optional_tags(tagger.tags(app), "tags", mapping=True),
    )
    member.made("eks:cluster")
    groups = ("general", "spot") if member.plan.slug == "prod-workloads" else ("general",)
    for group in groups:
        client.create_nodegroup(
            clusterName=name,
            nodegroupName=group,
            nodeRole=member.roles["eks-node"],
            subnets=subnets,
            scalingConfig={"minSize": 2, "maxSize": 6, "desiredSize": 3},
            instanceTypes=["m6i.large"],
            capacityType="SPOT" if group == "spot" else "ON_DEMAND",
            **optional_tags(tagger.tags(app), "tags", mapping=True),
        )
        member.made("eks:nodegroup")
