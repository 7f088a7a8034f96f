"""The AWS Organization in the management account: its OUs and member accounts, and in each
member account the roles TagSense and the estate's services use."""

from __future__ import annotations

import json
import random
from typing import Any

from botocore.client import BaseClient

from .plan import (
    ACCESS_ROLE,
    ACCOUNT_PLANS,
    MANAGEMENT_ACCOUNT_ID,
    OUS,
    READ_ONLY_ACTIONS,
    READ_ONLY_ROLE,
    AccountPlan,
)
from .session import Estate, EstateError, Member

# Roles the estate's services run as: (role name, the service that assumes it).
SERVICE_ROLES = (
    ("lambda-exec", "lambda.amazonaws.com"),
    ("eks-cluster", "eks.amazonaws.com"),
    ("eks-node", "ec2.amazonaws.com"),
    ("ecs-task-exec", "ecs-tasks.amazonaws.com"),
)


def create_organization(estate: Estate) -> str:
    """The organization, its OUs and one member account per plan (estate.members); its id.
    Refuses a server that already holds an organization."""
    org = estate.client("organizations", "us-east-1")
    _refuse_existing(estate, org)
    organization = org.create_organization(FeatureSet="ALL")["Organization"]
    if organization["MasterAccountId"] != MANAGEMENT_ACCOUNT_ID:
        raise EstateError(f"unexpected management account {organization['MasterAccountId']}")
    root = org.list_roots()["Roots"][0]["Id"]
    ous = {
        name: org.create_organizational_unit(
            ParentId=root, Name=name, Tags=[{"Key": "Owner", "Value": "cloud-platform"}]
        )["OrganizationalUnit"]["Id"]
        for name in OUS
    }
    for plan in ACCOUNT_PLANS:
        account_id = _create_account(org, plan)
        org.move_account(
            AccountId=account_id, SourceParentId=root, DestinationParentId=ous[plan.ou]
        )
        rng = random.Random(f"{estate.seed}:{plan.slug}")
        estate.members.append(Member(estate, plan, account_id, rng))
    return organization["Id"]


def _refuse_existing(estate: Estate, org: BaseClient) -> None:
    try:
        existing = org.describe_organization()["Organization"]
    except org.exceptions.AWSOrganizationsNotInUseException:
        existing = None
    if existing:
        raise EstateError(
            f"{estate.endpoint_url} already holds organization {existing['Id']}: seed a fresh "
            "moto server, or reset it first (POST /moto-api/reset, or --reset)"
        )


def _create_account(org: BaseClient, plan: AccountPlan) -> str:
    status = org.create_account(
        Email=f"aws+{plan.slug}@example.com",
        AccountName=plan.name,
        RoleName=ACCESS_ROLE,
        Tags=[
            {"Key": "Owner", "Value": "cloud-platform@example.com"},
            {"Key": "Environment", "Value": plan.environments[0][0]},
        ],
    )["CreateAccountStatus"]
    if status["State"] != "SUCCEEDED":  # moto completes at once; AWS would be polled
        raise EstateError(f"account {plan.name}: {status}")
    return status["AccountId"]


def _trust(principal: dict[str, str], condition: dict | None = None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "sts:AssumeRole",
    }
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _policy(actions: list[str]) -> str:
    statement = {"Effect": "Allow", "Action": actions, "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def create_roles(member: Member) -> None:
    """OrganizationAccountAccessRole if missing, TagSenseReadOnly (with the estate's external
    id, if any) and the services' roles, into member.roles."""
    iam = member.client("iam", "us-east-1")
    management = f"arn:aws:iam::{MANAGEMENT_ACCOUNT_ID}:root"
    # Organizations made OrganizationAccountAccessRole with the account (moto does too);
    # make it only if it is missing, with the trust policy AWS gives it. Inline policies:
    # moto loads AWS managed policies (AdministratorAccess, ReadOnlyAccess) only with
    # MOTO_IAM_LOAD_MANAGED_POLICIES=true, and a server started by hand may lack it.
    try:
        iam.get_role(RoleName=ACCESS_ROLE)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(RoleName=ACCESS_ROLE, AssumeRolePolicyDocument=_trust({"AWS": management}))
        iam.put_role_policy(
            RoleName=ACCESS_ROLE, PolicyName="Administrator", PolicyDocument=_policy(["*"])
        )
    external_id = member.estate.external_id
    condition = {"StringEquals": {"sts:ExternalId": external_id}} if external_id else None
    role = iam.create_role(
        RoleName=READ_ONLY_ROLE,
        AssumeRolePolicyDocument=_trust({"AWS": management}, condition),
        Description="TagSense inventory scans (read-only)",
        Tags=[{"Key": "Owner", "Value": "cloud-platform@example.com"}],
    )["Role"]
    iam.put_role_policy(
        RoleName=READ_ONLY_ROLE,
        PolicyName="TagSenseInventoryRead",
        PolicyDocument=_policy(READ_ONLY_ACTIONS),
    )
    member.roles[READ_ONLY_ROLE] = role["Arn"]
    for name, service in SERVICE_ROLES:
        member.roles[name] = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=_trust({"Service": service})
        )["Role"]["Arn"]
