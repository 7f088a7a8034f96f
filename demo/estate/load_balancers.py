"""Load balancers in front of their own fleets: an internet-facing ALB (whose listener ECS and
CloudFront use), an internal NLB and a legacy classic ELB."""

from __future__ import annotations

from .ec2 import fleet
from .session import Member, Site
from .tagging import optional_tags


def alb(member: Member, site: Site) -> None:
    elbv2 = member.client("elbv2", site.region)
    prefix, tagger = member.plan.prefix, member.tagger
    app = member.plan.apps[0]
    web = fleet(member, site, app, 2, "private-a", "web")
    web += fleet(member, site, app, 2, "private-b", "web")
    lb = elbv2.create_load_balancer(
        Name=f"{prefix}-web-alb",
        Subnets=[site.subnets["public-a"][0], site.subnets["public-b"][0]],
        SecurityGroups=[site.groups["web"]],
        Scheme="internet-facing",
        Type="application",
        **optional_tags(tagger.tags(app)),
    )["LoadBalancers"][0]
    site.alb_arn, site.alb_dns = lb["LoadBalancerArn"], lb["DNSName"]
    group = elbv2.create_target_group(
        Name=f"{prefix}-web-tg",
        Protocol="HTTP",
        Port=80,
        VpcId=site.vpc,
        TargetType="instance",
        HealthCheckPath="/health",
        **optional_tags(tagger.tags(app)),
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": i, "Port": 80} for i in web])
    site.alb_listener = elbv2.create_listener(
        LoadBalancerArn=site.alb_arn,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )["Listeners"][0]["ListenerArn"]
    member.made("elasticloadbalancing:loadbalancer")
    member.made("elasticloadbalancing:targetgroup")


def nlb(member: Member, site: Site) -> None:
    elbv2 = member.client("elbv2", site.region)
    prefix, tagger = member.plan.prefix, member.tagger
    app = member.plan.apps[1]
    targets = fleet(member, site, app, 3, "private-b")
    lb = elbv2.create_load_balancer(
        Name=f"{prefix}-ingest-nlb",
        Subnets=site.private_subnets(),
        Scheme="internal",
        Type="network",
        **optional_tags(tagger.tags(app)),
    )["LoadBalancers"][0]
    group = elbv2.create_target_group(
        Name=f"{prefix}-ingest-tg",
        Protocol="TCP",
        Port=443,
        VpcId=site.vpc,
        TargetType="instance",
        **optional_tags(tagger.tags(app)),
    )["TargetGroups"][0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": i} for i in targets])
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="TCP",
        Port=443,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )
    member.made("elasticloadbalancing:loadbalancer")
    member.made("elasticloadbalancing:targetgroup")


def classic_elb(member: Member, site: Site) -> None:
    elb = member.client("elb", site.region)
    app = member.plan.apps[-1]
    targets = fleet(member, site, app, 2, "private-a")
    name = f"{member.plan.prefix}-legacy-elb"
    elb.create_load_balancer(
        LoadBalancerName=name,
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080}],
        Subnets=site.private_subnets(),
        SecurityGroups=[site.groups["app"]],
        Scheme="internal",
        **optional_tags(member.tagger.tags(app)),
    )
    elb.register_instances_with_load_balancer(
        LoadBalancerName=name, Instances=[{"InstanceId": i} for i in targets]
    )
    member.made("elb:loadbalancer")
