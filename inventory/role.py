"""The read-only role TagSense assumes in each AWS account: its name, its permissions, its trust
policy, and a CloudFormation template that creates it (served by the portal; docs/inventory.md).

The template is the same for every account and organization: the principal TagSense runs as
(`TrustedPrincipalArn`) and the account's external id (`ExternalId`) are parameters. A copy
served for one account has that account's values as the parameters' defaults; the copy an
operator publishes to S3 for the console's quick-create link (settings.TAGSENSE_ROLE_TEMPLATE_URL)
gets them from the link's `param_` values instead.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import yaml
from django.conf import settings
from django.urls import reverse

if TYPE_CHECKING:
    from .models import AwsAccount

ROLE_NAME = "TagSenseReadOnly"
# What the scanners call, exactly (docs/inventory.md lists the same).
READ_ONLY_ACTIONS = (
    "ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeSnapshots",
    "ec2:DescribeImages", "ec2:DescribeVpcs", "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups", "ec2:DescribeRegions",
    "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:DescribeTags",
    "lambda:ListFunctions", "lambda:ListTags",
    "ecs:ListClusters", "ecs:DescribeClusters", "ecs:ListServices", "ecs:DescribeServices",
    "eks:ListClusters", "eks:DescribeCluster", "eks:ListNodegroups", "eks:DescribeNodegroup",
    "s3:ListAllMyBuckets", "s3:GetBucketLocation", "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "rds:DescribeDBInstances", "rds:DescribeDBClusters",
    "dynamodb:ListTables", "dynamodb:DescribeTable", "dynamodb:ListTagsOfResource",
    "elasticache:DescribeCacheClusters", "elasticache:ListTagsForResource",
    "elasticfilesystem:DescribeFileSystems",
    "cloudfront:ListDistributions", "cloudfront:ListTagsForResource",
)  # fmt: skip
PLACEHOLDER_PRINCIPAL = "arn:aws:iam::<tagsense-account>:role/<tagsense-runtime-role>"
PRINCIPAL_PATTERN = r"^arn:aws[a-z-]*:iam::\d{12}:(root|role/.+|user/.+)$"


def principal_arn() -> str:
    """The principal TagSense's own credentials belong to (settings.TAGSENSE_AWS_PRINCIPAL_ARN),
    or "" when the deployment has not said."""
    return settings.TAGSENSE_AWS_PRINCIPAL_ARN


def trust_policy(external_id: str) -> str:
    """The role's trust policy for one account, as JSON to paste into IAM."""
    statement = {
        "Effect": "Allow",
        "Principal": {"AWS": principal_arn() or PLACEHOLDER_PRINCIPAL},
        "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, indent=2)


def cloudformation_template(*, external_id: str = "", role_name: str = ROLE_NAME) -> str:
    """The CloudFormation template (YAML) creating the role. With `external_id`, it and the
    deployment's principal are the parameters' defaults."""
    principal: dict[str, Any] = {
        "Type": "String",
        "Description": "The IAM principal TagSense runs as (it assumes this role)",
        "AllowedPattern": PRINCIPAL_PATTERN,
    }
    if principal_arn():
        principal["Default"] = principal_arn()
    external: dict[str, Any] = {
        "Type": "String",
        "Description": "The external id TagSense shows on the account's page",
        "MinLength": 2,
        "MaxLength": 1224,
        "AllowedPattern": r"^[\w+=,.@:/-]+$",
    }
    if external_id:
        external["Default"] = external_id
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "Read-only role TagSense assumes to inventory this account's resources "
        "and their tags",
        "Parameters": {
            "TrustedPrincipalArn": principal,
            "ExternalId": external,
            "RoleName": {"Type": "String", "Default": role_name},
        },
        "Resources": {
            "TagSenseRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": {"Ref": "RoleName"},
                    "Description": "TagSense inventory scans (read-only)",
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": {"Ref": "TrustedPrincipalArn"}},
                                "Action": "sts:AssumeRole",
                                "Condition": {
                                    "StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}
                                },
                            }
                        ],
                    },
                    "Policies": [
                        {
                            "PolicyName": "TagSenseInventoryRead",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": list(READ_ONLY_ACTIONS),
                                        "Resource": "*",
                                    }
                                ],
                            },
                        }
                    ],
                },
            }
        },
        "Outputs": {"RoleArn": {"Value": {"Fn::GetAtt": ["TagSenseRole", "Arn"]}}},
    }
    return yaml.safe_dump(template, sort_keys=False, width=100)


def quick_create_url(external_id: str, *, region: str = "us-east-1") -> str:
    """The CloudFormation console's quick-create link for the role, with the external id (and
    the principal, when known) filled in; "" when no published template URL is configured
    (the console only reads templates from S3, so it cannot read the portal's copy)."""
    template_url = settings.TAGSENSE_ROLE_TEMPLATE_URL
    if not template_url:
        return ""
    params = {
        "templateURL": template_url,
        "stackName": ROLE_NAME,
        "param_ExternalId": external_id,
        "param_RoleName": ROLE_NAME,
    }
    if principal_arn():
        params["param_TrustedPrincipalArn"] = principal_arn()
    query = urlencode(params, quote_via=quote, safe=":/")
    return (
        f"https://console.aws.amazon.com/cloudformation/home?region={quote(region)}"
        f"#/stacks/create/review?{query}"
    )


def role_arn_for(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{ROLE_NAME}"


def connect_context(account: AwsAccount, organization) -> dict:
    """What an admin needs to create the account's role: its trust policy, the quick-create
    link (when a published template is configured), the template's address and a CLI command."""
    region = (account.regions or ["us-east-1"])[0]
    template_url = reverse("account-role-template", kwargs={"org_slug": organization.slug})
    parameters = [f"ParameterKey=ExternalId,ParameterValue={account.external_id}"]
    if principal_arn():
        parameters.append(f"ParameterKey=TrustedPrincipalArn,ParameterValue={principal_arn()}")
    return {
        "trust_policy": trust_policy(account.external_id),
        "quick_create_url": quick_create_url(account.external_id, region=region),
        "role_template_url": f"{template_url}?account={account.account_id}",
        "principal_known": bool(principal_arn()),
        "create_stack_command": (
            f"aws cloudformation create-stack --stack-name {ROLE_NAME} "
            "--template-body file://tagsense-role.yaml --capabilities CAPABILITY_NAMED_IAM "
            f"--parameters {' '.join(parameters)}"
        ),
        "expected_role_arn": role_arn_for(account.account_id),
    }
