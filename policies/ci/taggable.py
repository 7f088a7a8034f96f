"""Which Terraform and CloudFormation resource types are taggable, and which TagSense type
(the inventory scanners' `resource_type`, e.g. "ec2:instance") each one is.

Terraform: taggability comes from data/terraform_aws_taggable.json, generated from the AWS
provider's own schema by scripts/gen_ci_taggable.py (a type is taggable iff its schema has a
`tags` attribute; provider `default_tags` reach it iff it also has `tags_all`). A type that
is not in that file (a newer provider, another provider) is reported as not taggable and
`known=False`, so it is never flagged by mistake.

CloudFormation: there is no schema on this machine, so the table below is written by hand for
the types TagSense scans and common untaggable ones. An unlisted type is taggable iff its
template gives it a `Tags` property (`known=False`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypedDict

_DATA = Path(__file__).resolve().parent / "data" / "terraform_aws_taggable.json"


@dataclass(frozen=True, slots=True)
class TypeInfo:
    resource_type: str | None  # TagSense's type, None when TagSense does not scan it
    taggable: bool
    known: bool  # False: the type is not in the table, taggable is a guess (see module doc)
    default_tags: bool = False  # Terraform: provider default_tags reach it (has tags_all)
    tag_property: str = "Tags"  # CloudFormation: the property holding its tags
    tag_blocks: bool = False  # Terraform: tagged by repeated `tag {}` blocks (ASG)


# Terraform type -> TagSense type, for every type the inventory scanners cover.
TERRAFORM_TO_TAGSENSE: dict[str, str] = {
    "aws_instance": "ec2:instance",
    "aws_spot_instance_request": "ec2:instance",
    "aws_ebs_volume": "ec2:volume",
    "aws_ebs_snapshot": "ec2:snapshot",
    "aws_ebs_snapshot_copy": "ec2:snapshot",
    "aws_ebs_snapshot_import": "ec2:snapshot",
    "aws_ami": "ec2:image",
    "aws_ami_copy": "ec2:image",
    "aws_ami_from_instance": "ec2:image",
    "aws_vpc": "ec2:vpc",
    "aws_default_vpc": "ec2:vpc",
    "aws_subnet": "ec2:subnet",
    "aws_default_subnet": "ec2:subnet",
    "aws_security_group": "ec2:security-group",
    "aws_default_security_group": "ec2:security-group",
    "aws_lb": "elasticloadbalancing:loadbalancer",
    "aws_alb": "elasticloadbalancing:loadbalancer",
    "aws_lb_target_group": "elasticloadbalancing:targetgroup",
    "aws_alb_target_group": "elasticloadbalancing:targetgroup",
    "aws_elb": "elb:loadbalancer",
    "aws_lambda_function": "lambda:function",
    "aws_ecs_cluster": "ecs:cluster",
    "aws_ecs_service": "ecs:service",
    "aws_eks_cluster": "eks:cluster",
    "aws_eks_node_group": "eks:nodegroup",
    "aws_s3_bucket": "s3:bucket",
    "aws_db_instance": "rds:db",
    "aws_rds_cluster": "rds:cluster",
    "aws_dynamodb_table": "dynamodb:table",
    "aws_elasticache_cluster": "elasticache:cluster",
    "aws_efs_file_system": "elasticfilesystem:file-system",
    "aws_cloudfront_distribution": "cloudfront:distribution",
}

_TS = "Tags"
# CloudFormation type -> (TagSense type or None, property holding the tags or None if the
# type takes no tags). The tag property may be a [{Key, Value}] list or a {key: value} map;
# cloudformation.py accepts both.
CLOUDFORMATION_TYPES: dict[str, tuple[str | None, str | None]] = {
    # Types TagSense scans.
    "AWS::EC2::Instance": ("ec2:instance", _TS),
    "AWS::EC2::Volume": ("ec2:volume", _TS),
    "AWS::EC2::VPC": ("ec2:vpc", _TS),
    "AWS::EC2::Subnet": ("ec2:subnet", _TS),
    "AWS::EC2::SecurityGroup": ("ec2:security-group", _TS),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": ("elasticloadbalancing:loadbalancer", _TS),
    "AWS::ElasticLoadBalancingV2::TargetGroup": ("elasticloadbalancing:targetgroup", _TS),
    "AWS::ElasticLoadBalancing::LoadBalancer": ("elb:loadbalancer", _TS),
    "AWS::Lambda::Function": ("lambda:function", _TS),
    "AWS::Serverless::Function": ("lambda:function", _TS),  # SAM: a {key: value} map
    "AWS::ECS::Cluster": ("ecs:cluster", _TS),
    "AWS::ECS::Service": ("ecs:service", _TS),
    "AWS::EKS::Cluster": ("eks:cluster", _TS),
    "AWS::EKS::Nodegroup": ("eks:nodegroup", _TS),  # a {key: value} map
    "AWS::S3::Bucket": ("s3:bucket", _TS),
    "AWS::RDS::DBInstance": ("rds:db", _TS),
    "AWS::RDS::DBCluster": ("rds:cluster", _TS),
    "AWS::DynamoDB::Table": ("dynamodb:table", _TS),
    "AWS::ElastiCache::CacheCluster": ("elasticache:cluster", _TS),
    "AWS::EFS::FileSystem": ("elasticfilesystem:file-system", "FileSystemTags"),
    "AWS::CloudFront::Distribution": ("cloudfront:distribution", _TS),
    # Taggable, not scanned by TagSense.
    "AWS::CloudFormation::Stack": (None, _TS),
    "AWS::DynamoDB::GlobalTable": (None, None),  # tags live per replica: not read here
    "AWS::EC2::EIP": (None, _TS),
    "AWS::EC2::InternetGateway": (None, _TS),
    "AWS::EC2::NatGateway": (None, _TS),
    "AWS::EC2::NetworkInterface": (None, _TS),
    "AWS::EC2::RouteTable": (None, _TS),
    "AWS::ElastiCache::ReplicationGroup": (None, _TS),
    "AWS::IAM::Role": (None, _TS),
    "AWS::IAM::User": (None, _TS),
    "AWS::KMS::Key": (None, _TS),
    "AWS::Logs::LogGroup": (None, _TS),
    "AWS::SNS::Topic": (None, _TS),
    "AWS::SQS::Queue": (None, _TS),
    "AWS::SSM::Parameter": (None, _TS),  # a {key: value} map
    "AWS::SecretsManager::Secret": (None, _TS),
    "AWS::StepFunctions::StateMachine": (None, _TS),
    "AWS::ApiGateway::RestApi": (None, _TS),
    "AWS::ApiGatewayV2::Api": (None, _TS),  # a {key: value} map
    # Not taggable.
    "AWS::CloudFormation::CustomResource": (None, None),
    "AWS::CloudFormation::WaitCondition": (None, None),
    "AWS::CloudFormation::WaitConditionHandle": (None, None),
    "AWS::EC2::Route": (None, None),
    "AWS::EC2::SecurityGroupEgress": (None, None),
    "AWS::EC2::SecurityGroupIngress": (None, None),
    "AWS::EC2::SubnetRouteTableAssociation": (None, None),
    "AWS::EC2::VPCGatewayAttachment": (None, None),
    "AWS::EC2::VolumeAttachment": (None, None),
    "AWS::EC2::EIPAssociation": (None, None),
    "AWS::ElasticLoadBalancingV2::Listener": (None, None),
    "AWS::ElasticLoadBalancingV2::ListenerRule": (None, None),
    "AWS::IAM::InstanceProfile": (None, None),
    "AWS::IAM::Policy": (None, None),
    "AWS::IAM::UserToGroupAddition": (None, None),
    "AWS::Lambda::Permission": (None, None),
    "AWS::Lambda::Version": (None, None),
    "AWS::Route53::RecordSet": (None, None),
    "AWS::S3::BucketPolicy": (None, None),
    "AWS::SNS::Subscription": (None, None),
    "AWS::SNS::TopicPolicy": (None, None),
    "AWS::SQS::QueuePolicy": (None, None),
    "AWS::ApiGateway::Deployment": (None, None),
    "AWS::ApiGateway::Method": (None, None),
    "AWS::ApiGateway::Resource": (None, None),
}


class TerraformTable(TypedDict):
    provider: str
    version: str
    types: dict[str, str]  # type name -> "tags_all" | "tags_only" | "tag_blocks" | "untaggable"


@cache
def terraform_table() -> TerraformTable:
    """The generated provider table: {"version": ..., "types": {name: "tags_all"|...}}."""
    raw = json.loads(_DATA.read_text())
    types: dict[str, str] = {}
    for kind in ("tags_all", "tags_only", "tag_blocks", "untaggable"):
        for name in raw[kind]:
            types[name] = kind
    return {"provider": raw["provider"], "version": raw["version"], "types": types}


def terraform_type_info(tf_type: str) -> TypeInfo:
    """Taggability of an AWS provider resource type (managed resources only)."""
    kind = terraform_table()["types"].get(tf_type)
    resource_type = TERRAFORM_TO_TAGSENSE.get(tf_type)
    if kind is None:
        return TypeInfo(resource_type, taggable=False, known=False)
    return TypeInfo(
        resource_type,
        taggable=kind != "untaggable",
        known=True,
        default_tags=kind == "tags_all",
        tag_blocks=kind == "tag_blocks",
    )


def cloudformation_type_info(cfn_type: str, properties: dict[str, Any] | None = None) -> TypeInfo:
    """Taggability of a CloudFormation type; `properties` decides for unlisted types."""
    entry = CLOUDFORMATION_TYPES.get(cfn_type)
    if entry is not None:
        resource_type, prop = entry
        return TypeInfo(
            resource_type, taggable=prop is not None, known=True, tag_property=prop or ""
        )
    if cfn_type.startswith("Custom::"):
        return TypeInfo(None, taggable=False, known=True, tag_property="")
    has_tags = properties is not None and "Tags" in properties
    return TypeInfo(None, taggable=has_tags, known=False)
