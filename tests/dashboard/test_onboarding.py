"""A new organization's dashboard guides its owner from nothing to a first scan: connect an AWS
account (trust policy, CloudFormation template and quick-create link with the account's external
id), scan, enable a framework, invite members. Each step shows done or not; only roles that may
take a step see its action."""

import html
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from accounts.models import Organization
from inventory import role as inventory_role
from inventory import runner
from inventory.models import AwsAccount, ScanRun
from policies import services as policy_services
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.inventory.conftest import MEMBER, member_session

pytestmark = pytest.mark.django_db

PRINCIPAL = "arn:aws:iam::123456789012:role/tagsense-web"


def _steps(page: str) -> dict[str, str]:
    """{step: "done" | "todo"} as the checklist shows it."""

    return dict(
        (step, state)
        for state, step in re.findall(r'class="step (done|todo)" data-step="(\w+)"', page)
    )


def test_a_new_owner_is_guided_from_an_empty_organization_to_a_first_scan(aws_env, settings):
    settings.TAGSENSE_AWS_PRINCIPAL_ARN = PRINCIPAL
    user = UserFactory(email="first@example.com")
    client = client_for(user)
    client.post("/organizations/new/", {"name": "Initech", "slug": "initech"})

    page = client.get("/o/initech/").content.decode()
    assert "Get started" in page and "0 of 4 done" in page
    assert _steps(page) == {
        "account": "todo",
        "scan": "todo",
        "framework": "todo",
        "members": "todo",
    }
    assert 'href="/o/initech/inventory/accounts/#register"' in page
    assert "No framework enabled yet" not in page  # no empty compliance card

    # 1. Register the account; the dashboard then shows how to create its role.
    role_arn = f"arn:aws:iam::{MEMBER}:role/TagSenseReadOnly"
    client.post(
        "/o/initech/inventory/accounts/",
        {
            "account_id": MEMBER,
            "name": "prod",
            "role_arn": role_arn,
            "regions": "eu-west-1",
            "enabled": "on",
        },
    )
    org = Organization.objects.get(slug="initech")
    with tenant_scope(org):
        account = AwsAccount.objects.get()
    page = client.get("/o/initech/").content.decode()
    assert _steps(page)["account"] == "done" and "1 of 4 done" in page
    assert account.external_id in page and PRINCIPAL in page  # the trust policy
    template_link = f"/o/initech/inventory/accounts/role-template.yaml?account={MEMBER}"
    assert template_link in page

    # The template the page links to creates the role with that trust policy.
    template = client.get(template_link)
    assert template.status_code == 200
    assert template["Content-Disposition"] == 'attachment; filename="tagsense-role.yaml"'
    document = yaml.safe_load(template.content)
    assert document["Parameters"]["ExternalId"]["Default"] == account.external_id
    assert document["Parameters"]["TrustedPrincipalArn"]["Default"] == PRINCIPAL
    stack_in_member = member_session(MEMBER, "eu-west-1").client("cloudformation")
    stack_in_member.create_stack(
        StackName="TagSenseReadOnly",
        TemplateBody=template.content.decode(),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    iam = member_session(MEMBER, "us-east-1").client("iam")
    trust = iam.get_role(RoleName="TagSenseReadOnly")["Role"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"AWS": PRINCIPAL}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": account.external_id}}

    # 2. "Scan now" from the dashboard starts the scan; once it ran, the step is done.
    member_session(MEMBER, "eu-west-1").client("ec2").run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1
    )
    assert 'action="/o/initech/inventory/scans/start/"' in page
    response = client.post("/o/initech/inventory/scans/start/", {"account": MEMBER})
    assert response.status_code == 302, response
    with tenant_scope(org):
        scan = ScanRun.objects.get()
    assert response["Location"] == f"/o/initech/inventory/scans/{scan.pk}/"
    runner.run_scan_inline(scan, actor=Actor.for_user(user), workers=1)
    page = client.get("/o/initech/").content.decode()
    assert _steps(page)["scan"] == "done" and "2 of 4 done" in page
    assert 'data-step="account"' in page and account.external_id not in page  # guide moved on


def test_the_quick_create_link_carries_the_external_id_and_the_principal(org, owner, settings):
    settings.TAGSENSE_AWS_PRINCIPAL_ARN = PRINCIPAL
    settings.TAGSENSE_ROLE_TEMPLATE_URL = "https://tagsense-public.s3.amazonaws.com/role.yaml"
    with tenant_scope(org):
        account = AwsAccount.objects.create(
            organization=org, account_id=MEMBER, role_arn="", regions=["eu-central-1"]
        )
    for url in ("/o/acme/", f"/o/acme/inventory/accounts/{account.pk}/"):
        response = client_for(owner).get(url)
        link = next(
            a
            for a in _links(response.content.decode())
            if a.startswith("https://console.aws.amazon.com/cloudformation/")
        )
        parts = urlsplit(link)
        assert parse_qs(parts.query) == {"region": ["eu-central-1"]}
        assert parts.fragment.startswith("/stacks/create/review?")
        params = parse_qs(parts.fragment.partition("?")[2])
        assert params == {
            "templateURL": ["https://tagsense-public.s3.amazonaws.com/role.yaml"],
            "stackName": ["TagSenseReadOnly"],
            "param_ExternalId": [account.external_id],
            "param_RoleName": ["TagSenseReadOnly"],
            "param_TrustedPrincipalArn": [PRINCIPAL],
        }


def _links(page: str) -> list[str]:

    return [html.unescape(h) for h in re.findall(r'href="([^"]+)"', page)]


def test_each_role_sees_only_the_actions_it_may_take(org, users_by_role):
    pages = {
        role: client_for(u).get("/o/acme/").content.decode() for role, u in users_by_role.items()
    }
    for role, page in pages.items():
        assert "Get started" in page, role
        assert _steps(page)["members"] == "done"  # five members
        manages = role in ("owner", "admin")
        assert ('href="/o/acme/inventory/accounts/#register"' in page) is manages, role
        assert ('href="/o/acme/policies/frameworks/"' in page and "Choose a framework" in page) is (
            manages
        ), role
        if not manages:
            assert "Ask an owner or admin of Acme Corp to connect an AWS account" in page, role
            assert "Ask an owner or admin to enable a framework" in page, role


def test_a_viewer_is_never_shown_the_scan_button_nor_the_role_template(org, viewer, owner):
    with tenant_scope(org):
        account = AwsAccount.objects.create(organization=org, account_id=MEMBER)
    page = client_for(viewer).get("/o/acme/").content.decode()
    assert "scans/start/" not in page and account.external_id not in page
    owner_page = client_for(owner).get("/o/acme/").content.decode()
    assert "scans/start/" in owner_page and account.external_id in owner_page
    template = f"/o/acme/inventory/accounts/role-template.yaml?account={MEMBER}"
    assert client_for(viewer).get(template).status_code == 403
    assert client_for(owner).get(template).status_code == 200
    assert client_for(owner).get(template.replace(MEMBER, "999999999999")).status_code == 404


def test_another_organizations_account_is_not_templated(org, other_org, owner):
    with tenant_scope(other_org):
        AwsAccount.objects.create(organization=other_org, account_id=MEMBER)
    url = f"/o/acme/inventory/accounts/role-template.yaml?account={MEMBER}"
    assert client_for(owner).get(url).status_code == 404


def test_the_checklist_disappears_once_every_step_is_done(org, owner, admin):

    with tenant_scope(org):
        account = AwsAccount.objects.create(organization=org, account_id=MEMBER)
        ScanRun.objects.create(organization=org, started_by="t", status="succeeded")
        policy_services.enable_framework(org, sorted(policy_services.builtin_library())[0])
    assert account.pk
    page = client_for(owner).get("/o/acme/").content.decode()
    assert "Get started" not in page


def test_the_role_template_grants_exactly_the_documented_read_only_actions():
    """docs/inventory.md lists the actions; the template grants those and nothing else."""

    doc = Path(__file__).resolve().parents[2].joinpath("docs/inventory.md").read_text()
    listed = re.search(r'"Action": \[(.*?)\]', doc, re.S).group(1)
    documented = json.loads(f"[{listed}]")
    document = yaml.safe_load(inventory_role.cloudformation_template())
    [policy] = document["Resources"]["TagSenseRole"]["Properties"]["Policies"]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert sorted(statement["Action"]) == sorted(documented)
    assert all(":Describe" in a or ":List" in a or ":Get" in a for a in statement["Action"])
