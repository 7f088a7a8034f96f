"""Discovery from AWS Organizations: member accounts with OU paths, proposed then registered."""

import boto3
import pytest

from audit.models import AuditEvent
from inventory.models import AwsAccount
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for

from .conftest import HOME, make_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def aws_organization(aws_env):
    client = boto3.client("organizations", region_name="us-east-1")
    client.create_organization(FeatureSet="ALL")
    root = client.list_roots()["Roots"][0]["Id"]
    prod = client.create_organizational_unit(ParentId=root, Name="Production")[
        "OrganizationalUnit"
    ]["Id"]
    web = client.create_organizational_unit(ParentId=prod, Name="Web")["OrganizationalUnit"]["Id"]
    ids = {}
    for name, parent in (("shop-prod", web), ("sandbox", root)):
        status = client.create_account(AccountName=name, Email=f"{name}@example.com")
        account_id = client.describe_create_account_status(
            CreateAccountRequestId=status["CreateAccountStatus"]["Id"]
        )["CreateAccountStatus"]["AccountId"]
        if parent != root:
            client.move_account(
                AccountId=account_id, SourceParentId=root, DestinationParentId=parent
            )
        ids[name] = account_id
    return ids


def test_discover_then_register_with_ou_paths(org, admin, aws_organization):
    management = make_account(org, HOME, role=False, regions=["eu-west-1"], name="mgmt")
    client = client_for(admin)
    url = f"/o/{org.slug}/inventory/accounts/{management.pk}/discover/"
    preview = client.post(url).content.decode()
    assert "Root/Production/Web" in preview and "shop-prod" in preview
    with tenant_scope(org):
        assert AwsAccount.objects.count() == 1  # a preview registers nothing
    client.post(url, {"register": "1", "role_name": "AuditRole"})
    with tenant_scope(org):
        shop = AwsAccount.objects.get(account_id=aws_organization["shop-prod"])
        sandbox = AwsAccount.objects.get(account_id=aws_organization["sandbox"])
        event = AuditEvent.objects.get(action="aws_account.discover")
    assert shop.ou_path == "Root/Production/Web"
    assert sandbox.ou_path == "Root"
    assert shop.role_arn == f"arn:aws:iam::{shop.account_id}:role/AuditRole"
    assert shop.regions == ["eu-west-1"] and shop.discovered_from_id == management.pk
    assert sorted(event.data["registered"]) == sorted(aws_organization.values())
