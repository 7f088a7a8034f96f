"""The CI check endpoint and the documented client (docs/ci.md) against the live portal: a
plan whose resources lack a required tag fails, and passes once the tag comes through the
provider's default_tags — both plans made by terraform from tests/policies/fixtures/terraform."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from django.test import Client

from accounts import tokens
from accounts.models import Membership
from policies import services
from policies.ci import cli
from policies.spec import parse_rules
from tagsense.tenancy.db import tenant_scope

FIXTURES = Path(__file__).parent / "fixtures" / "terraform"
PLAN = FIXTURES / "plan.json"
OWNER_RULE = """
version: 1
rules:
  - id: owner-required
    title: Every resource names its Owner
    check: required_key
    key: Owner
    severity: high
    enforcement: enforced
"""


def _rules(organization):
    with tenant_scope(organization):
        for spec in parse_rules(OWNER_RULE):
            services.create_rule(organization, spec)


def _ci_token(organization, owner, scope="ci"):
    with tenant_scope(organization):
        account = tokens.create_service_account(
            organization, name=f"pipeline-{scope}", role="viewer", by=owner
        )
        _, secret = tokens.create_service_account_token(account, name="ci", scope=scope, by=owner)
    return secret


def _post(client, org, body, source="terraform", content_type="application/json"):
    return client.post(
        f"/api/v1/o/{org.slug}/policies/ci-check/?source={source}",
        body,
        content_type=content_type,
    )


def _plan_with_owner_in_default_tags(tmp_path: Path) -> Path:
    """The fixture's configuration with Owner added to the provider's default_tags, planned by
    terraform offline (regenerate.sh: local provider mirror, fake credentials)."""
    work = tmp_path / "terraform"
    shutil.copytree(FIXTURES, work)
    main = (work / "main.tf").read_text()
    assert 'ManagedBy  = "terraform"' in main
    (work / "main.tf").write_text(
        main.replace(
            'ManagedBy  = "terraform"', 'ManagedBy  = "terraform"\n      Owner = "platform"', 1
        )
    )
    out = tmp_path / "plan-with-owner.json"
    subprocess.run(["sh", str(work / "regenerate.sh"), str(out)], check=True, capture_output=True)  # noqa: S603, S607
    return out


@pytest.mark.django_db(transaction=True)
def test_the_client_fails_a_plan_without_owner_and_passes_once_default_tags_carry_it(
    live_server, org, owner, tmp_path, capsys
):
    _rules(org)
    secret = _ci_token(org, owner)
    args = ["check", "--url", live_server.url, "--org", org.slug, "--token", secret]
    junit = tmp_path / "tags.xml"
    assert cli.main([*args, str(PLAN), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "aws_instance.web" in out and "owner-required" in out
    assert 'name="owner-required"' in junit.read_text()
    fixed = _plan_with_owner_in_default_tags(tmp_path)
    assert cli.main([*args, str(fixed)]) == 0


@pytest.mark.django_db
def test_the_answer_names_the_violations_and_the_rules(org, owner):
    _rules(org)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {_ci_token(org, owner)}")
    answer = _post(client, org, PLAN.read_bytes()).json()
    assert answer["exit_code"] == 1
    # the organization's rule, and the advisory for tags known only after apply (the subnet)
    assert answer["rules"] == ["owner-required", "tags-unknown"]
    by_address = {r["address"]: r for r in answer["resources"]}
    assert [v["rule_id"] for v in by_address["aws_instance.web"]["violations"]] == [
        "owner-required"
    ]
    assert by_address["aws_sqs_queue.retired"]["checked"] is False  # a deletion


@pytest.mark.django_db
def test_bad_documents_are_400_naming_the_place(org, owner):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {_ci_token(org, owner)}")
    broken = json.loads(PLAN.read_text())
    broken["resource_changes"][1]["change"]["after"]["tags_all"] = ["not", "a", "map"]
    response = _post(client, org, json.dumps(broken))
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert error["path"] == "resource_changes[1].change.after.tags_all"
    assert _post(client, org, b"{not json").status_code == 400
    assert _post(client, org, PLAN.read_bytes(), source="pulumi").status_code == 400
    template = b"Resources:\n  Web:\n    Type: AWS::EC2::Instance\n    Properties:\n      Tags: 7\n"
    refused = _post(client, org, template, "cloudformation", "application/yaml")
    assert refused.status_code == 400 and refused.json()["errors"][0]["path"]


@pytest.mark.django_db
def test_a_document_of_50_mib_is_413_before_it_is_read(org, owner):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {_ci_token(org, owner)}")
    response = client.post(
        f"/api/v1/o/{org.slug}/policies/ci-check/?source=terraform",
        b"{}",
        content_type="application/json",
        CONTENT_LENGTH=str(50 * 1024 * 1024),
    )
    assert response.status_code == 413


@pytest.mark.django_db
def test_token_scopes_and_organizations(org, other_org, owner, outsider):
    read = Client(HTTP_AUTHORIZATION=f"Bearer {_ci_token(org, owner, scope='read')}")
    assert _post(read, org, PLAN.read_bytes()).status_code == 403  # read cannot POST
    with tenant_scope(other_org):
        membership = Membership.objects.get(user=outsider)
        _, theirs = tokens.create_personal_token(membership, name="ci", scope="ci")
    foreign = Client(HTTP_AUTHORIZATION=f"Bearer {theirs}")
    assert _post(foreign, org, PLAN.read_bytes()).status_code == 404
