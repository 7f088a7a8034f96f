"""Inventory fixtures: moto's in-process AWS with several accounts reached by assume-role."""

import boto3

from inventory.models import AwsAccount
from tagsense.tenancy.db import tenant_scope

HOME = "123456789012"  # moto's default account: TagSense's own credentials
MEMBER = "111111111111"
REGIONS = ["eu-west-1", "us-east-1"]


def member_session(account_id: str, region: str) -> boto3.Session:
    """Credentials inside another moto account, as TagSense gets them."""
    credentials = boto3.client("sts", region_name=region).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/TagSenseReadOnly", RoleSessionName="seed"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


def make_account(organization, account_id, *, regions=REGIONS, role=True, name=""):
    with tenant_scope(organization):
        return AwsAccount.objects.create(
            organization=organization,
            account_id=account_id,
            name=name or f"acct-{account_id[-4:]}",
            role_arn=f"arn:aws:iam::{account_id}:role/TagSenseReadOnly" if role else "",
            regions=regions,
        )
