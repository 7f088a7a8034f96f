"""Imported AWS tag policies: import and refusal, effective policy per account (inheritance
along the OU path), generated rules and their findings, regeneration, other organizations."""

from __future__ import annotations

import json
import uuid

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from inventory import services as inventory_services
from inventory.discovery import Discovered, register_discovered
from inventory.models import AwsAccount, Resource
from policies.aws import documents as atp
from policies.aws import imported
from policies.models import AwsTagPolicy, AwsTagPolicyVersion, Finding, Rule
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.policies.test_aws_documents import POLICY_A, POLICY_B, POLICY_C, POLICY_E, POLICY_F

pytestmark = pytest.mark.django_db

OU1, OU2 = "Root/OU1", "Root/OU2"


def api(org, path=""):
    return f"/api/v1/o/{org.slug}/policies/aws-tag-policies/{path}"


def page(org, path=""):
    return f"/o/{org.slug}/policies/aws/{path}"


def make_account(organization, account_id, ou_path=""):

    with tenant_scope(organization):
        return AwsAccount.objects.create(
            organization=organization, account_id=account_id, ou_path=ou_path
        )


def make_resource(organization, account, resource_type, tags, name):

    now = timezone.now()
    service, _, kind = resource_type.partition(":")
    with tenant_scope(organization):
        return Resource.objects.create(
            organization=organization,
            account=account,
            arn=f"arn:aws:{service}:eu-west-1:{account.account_id}:{kind}/{uuid.uuid4().hex}",
            region="eu-west-1",
            resource_type=resource_type,
            resource_id=name,
            name=name,
            tags=tags,
            fingerprint="x",
            first_seen=now,
            last_written=now,
        )


def attach(client, org, name, document, target_type="root", target=""):
    response = client.post(
        api(org),
        {"name": name, "document": document, "target_type": target_type, "target": target},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def open_findings(organization):
    with tenant_scope(organization):
        return {
            (f.resource.name, f.rule.rule_id): (f.kind, f.found_key, f.enforcement)
            for f in Finding.objects.for_org(organization)
            .filter(status="open")
            .select_related("resource", "rule")
        }


@pytest.fixture
def accounts(org):
    return {
        "ou1": make_account(org, "111111111111", OU1),
        "ou2": make_account(org, "222222222222", OU2),
        "root": make_account(org, "333333333333", "Root"),
    }


def test_documented_policies_at_root_and_ous_give_each_account_its_effective_policy(
    org, admin, accounts
):
    """AWS's inheritance examples 1 and 2: A at the root, B on OU1 (assign), C on OU2
    (append)."""
    client = client_for(admin)
    attach(client, org, "A", POLICY_A)
    attach(client, org, "B", POLICY_B, "ou", OU1)
    attach(client, org, "C", POLICY_C, "ou", "/Root/OU2/")  # stored as Root/OU2

    response = client.get(api(org, "effective/"))
    assert response.status_code == 200
    by_account = {item["account_id"]: item for item in response.json()}
    ou1 = by_account["111111111111"]["effective_policy"]["tags"]["costcenter"]
    assert ou1 == {
        "tag_key": "CostCenter",
        "tag_value": ["Sandbox"],
        "enforced_for": ["redshift:*", "dynamodb:table"],
    }
    ou2 = by_account["222222222222"]["effective_policy"]["tags"]["costcenter"]
    assert ou2["tag_value"] == ["Development", "Support", "Marketing"]
    root_only = by_account["333333333333"]["effective_policy"]["tags"]["costcenter"]
    assert root_only == {"tag_key": "CostCenter", "tag_value": ["Development", "Support"]}
    assert by_account["111111111111"]["levels"] == [
        {"level": "root", "policies": ["A"]},
        {"level": "OU Root/OU1", "policies": ["B"]},
        {"level": "account 111111111111", "policies": []},
    ]
    one = client.get(api(org, "effective/222222222222/"))
    assert one.json()["effective_policy"]["tags"]["costcenter"]["tag_value"][-1] == "Marketing"

    with tenant_scope(org):
        rules = {r.rule_id: r for r in Rule.objects.for_org(org).filter(origin="aws_tag_policy")}
    enforced = rules["awstp-111111111111-costcenter-values-enforced"]
    assert enforced.spec["scope"] == {
        "resource_types": ["dynamodb:table"],
        "accounts": ["111111111111"],
    }
    assert enforced.spec["values"] == {"list": ["Sandbox"]} and enforced.enforcement == "enforced"
    assert rules["awstp-222222222222-costcenter-values"].spec["values"] == {
        "list": ["Development", "Support", "Marketing"]
    }
    assert "awstp-222222222222-costcenter-values-enforced" in rules  # C appends dynamodb:table
    assert not any(r.endswith("-required") for r in rules)  # no report_required_tag_for


def test_findings_appear_for_an_accounts_noncompliant_resources(org, admin, accounts):
    ou1, ou2 = accounts["ou1"], accounts["ou2"]
    make_resource(org, ou1, "ec2:instance", {"CostCenter": "Development"}, "web-dev")
    make_resource(org, ou1, "ec2:instance", {"costcenter": "Sandbox"}, "web-lower")
    make_resource(org, ou1, "ec2:instance", {"CostCenter": "Sandbox"}, "web-ok")
    make_resource(org, ou1, "ec2:instance", {"Name": "x"}, "web-untagged")
    make_resource(org, ou1, "dynamodb:table", {"CostCenter": "Support"}, "table-bad")
    make_resource(org, ou2, "ec2:instance", {"CostCenter": "Marketing"}, "ou2-ok")
    client = client_for(admin)
    attach(client, org, "A", POLICY_A)
    attach(client, org, "B", POLICY_B, "ou", OU1)
    attach(client, org, "C", POLICY_C, "ou", OU2)

    got = open_findings(org)
    assert got == {
        ("web-dev", "awstp-111111111111-costcenter-values"): (
            "bad_value",
            "CostCenter",
            "report",
        ),
        ("web-lower", "awstp-111111111111-costcenter-values"): (
            "wrong_case",
            "costcenter",
            "report",
        ),
        ("table-bad", "awstp-111111111111-costcenter-values-enforced"): (
            "bad_value",
            "CostCenter",
            "enforced",
        ),
    }
    listed = client.get(f"/api/v1/o/{org.slug}/policies/findings/?account=111111111111&status=open")
    assert listed.status_code == 200
    assert len(listed.json()["results"]) == 3
    page_html = client.get(page(org, "effective/")).content.decode()
    assert "Open findings from its tag policy" in page_html


def test_generated_rules_find_what_aws_evaluation_finds(org, admin):
    """For sample resources, the findings of the generated rules and aws.documents.noncompliance
    on the same tags name the same keys with the same kinds. AWS also reports the value of a
    wrongly capitalized key; TagSense asks for the rename first (docs/aws-tag-policies.md), so
    those AWS value results are left out of the comparison."""
    policy = {
        "tags": {
            "costcenter": {
                "tag_key": {"@@assign": "CostCenter"},
                "tag_value": {"@@assign": ["100", "200", "300*"]},
                "enforced_for": {"@@assign": ["ec2:instance"]},
                "report_required_tag_for": {"@@assign": ["ec2:ALL_SUPPORTED"]},
            },
            "owner": {
                "tag_key": {"@@assign": "Owner"},
                "tag_value": {"@@assign": ["*@example.com", "ops+*@corp.example", "root"]},
                "report_required_tag_for": {"@@assign": ["s3:bucket"]},
            },
            "project": {"tag_key": {"@@assign": "Project"}},
            "legacy": {"tag_value": {"@@assign": []}},
        }
    }
    account = make_account(org, "444444444444", "Root/Prod")
    samples = [
        ("ec2:instance", {}),
        ("ec2:instance", {"CostCenter": "100", "Project": "x"}),
        ("ec2:instance", {"CostCenter": "3001", "project": "y"}),
        ("ec2:instance", {"costcenter": "999", "Owner": "ann@example.com"}),
        ("ec2:volume", {"CostCenter": "42", "Owner": "ops+pager@corp.example"}),
        ("ec2:vpc", {"COSTCENTER": "300", "Owner": "bob@elsewhere.com", "legacy": "1"}),
        ("s3:bucket", {"CostCenter": "200"}),
        ("s3:bucket", {"owner": "root", "Legacy": "", "PROJECT": "p"}),
        ("s3:bucket", {"Owner": "ops+@corp.example", "CostCenter": "300"}),
        ("lambda:function", {"Owner": "rooty", "Other": "x"}),
    ]
    resources = [
        make_resource(org, account, rtype, tags, f"r{i}") for i, (rtype, tags) in enumerate(samples)
    ]
    attach(client_for(admin), org, "sample", json.dumps(policy), "ou", "Root/Prod")

    effective = atp.effective_policy([[policy]])
    kinds = {"capitalization": "wrong_case", "value": "bad_value", "missing": "missing"}
    with tenant_scope(org):
        found = list(Finding.objects.for_org(org).filter(status="open").select_related("rule"))
    assert found  # the samples are mostly non-compliant
    for resource, (rtype, tags) in zip(resources, samples, strict=True):
        aws = {
            (n.expected_key, kinds[n.kind])
            for n in atp.noncompliance(effective, atp.aws_resource_type(rtype), tags)
            if not (n.kind == "value" and n.found_key != n.expected_key)
        }
        ours = {(f.rule.spec["key"], f.kind) for f in found if f.resource_id == resource.pk}
        assert ours == aws, (rtype, tags)


def test_a_bad_document_is_400_with_its_json_path_and_nothing_is_saved(org, admin, accounts):
    client = client_for(admin)
    bad = {"tags": {"costcenter": {"tag_value": {"@@assign": ["100", 200]}}}}
    response = client.post(
        api(org),
        {"name": "bad", "document": json.dumps(bad), "target_type": "root"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["path"] == "tags.costcenter.tag_value.@@assign[1]"
    broken = client.post(
        api(org), {"name": "x", "document": '{"tags": {'}, content_type="application/json"
    )
    assert broken.status_code == 400 and broken.json()["errors"][0]["path"].startswith("line 1")
    no_ou = client.post(
        api(org),
        {"name": "x", "document": POLICY_A, "target_type": "ou", "target": "Production"},
        content_type="application/json",
    )
    assert no_ou.status_code == 400 and no_ou.json()["errors"][0]["path"] == "target"
    form = client.post(
        page(org), {"name": "bad", "document": json.dumps(bad), "target_type": "root"}
    )
    assert form.status_code == 400
    assert "tags.costcenter.tag_value.@@assign[1]" in form.content.decode()
    with tenant_scope(org):
        assert not AwsTagPolicy.objects.for_org(org).exists()
        assert not AwsTagPolicyVersion.objects.for_org(org).exists()
        assert not Rule.objects.for_org(org).exists()
        assert not AuditEvent.objects.filter(action__startswith="policy.").exists()


def test_update_and_delete_regenerate_rules_with_versions_and_events(org, admin, accounts):
    make_resource(org, accounts["ou1"], "ec2:instance", {"CostCenter": "Development"}, "web")
    client = client_for(admin)
    created = attach(client, org, "A", POLICY_A)
    assert ("web", "awstp-111111111111-costcenter-values") not in open_findings(org)
    moved = client.put(
        api(org, f"{created['id']}/"),
        {"document": POLICY_B, "target_type": "ou", "target": OU1},
        content_type="application/json",
    )
    assert moved.status_code == 200 and moved.json()["version"] == 2
    assert open_findings(org)[("web", "awstp-111111111111-costcenter-values")][0] == "bad_value"
    with tenant_scope(org):
        generated = set(
            Rule.objects.for_org(org)
            .filter(origin="aws_tag_policy")
            .values_list("rule_id", flat=True)
        )
        [update] = AuditEvent.objects.filter(action="policy.aws_tag_policy_update")
    assert generated == {
        "awstp-111111111111-costcenter-values",
        "awstp-111111111111-costcenter-values-enforced",
        "awstp-111111111111-costcenter-spelling",
        "awstp-111111111111-costcenter-spelling-enforced",
    }
    assert set(update.data["changed"]) == {"document", "target", "target_type"}
    assert "awstp-222222222222-costcenter-values" in update.data["rules_deleted"]

    assert client.delete(api(org, f"{created['id']}/")).status_code == 204
    with tenant_scope(org):
        assert not Rule.objects.for_org(org).filter(origin="aws_tag_policy").exists()
        assert not Finding.objects.for_org(org).exists()
        versions = list(
            AwsTagPolicyVersion.objects.for_org(org)
            .order_by("version")
            .values_list("change", flat=True)
        )
        actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert versions == ["create", "update", "delete"]
    assert {"policy.aws_tag_policy_import", "policy.aws_tag_policy_delete"} <= actions
    assert {"policy.rule_create", "policy.rule_delete"} <= actions


def test_an_account_moving_to_another_ou_gets_that_ous_policy(
    org, admin, accounts, django_capture_on_commit_callbacks
):

    make_resource(org, accounts["ou1"], "ec2:instance", {"CostCenter": "Sandbox"}, "web")
    client = client_for(admin)
    attach(client, org, "A", POLICY_A)
    attach(client, org, "B", POLICY_B, "ou", OU1)
    assert open_findings(org) == {}
    management = make_account(org, "999999999999", "Root")
    moved = Discovered("111111111111", "", "", "ACTIVE", OU2, registered=True)
    with django_capture_on_commit_callbacks(execute=True), tenant_scope(org):
        register_discovered(management, [moved])  # rules follow once it commits
    assert open_findings(org)[("web", "awstp-111111111111-costcenter-values")][0] == "bad_value"


def test_ignored_operators_are_shown_and_policy_text_is_escaped(org, admin, viewer, accounts):
    client = client_for(admin)
    attach(client, org, "E", POLICY_E)
    attach(client, org, "F <b>", POLICY_F, "ou", OU1)
    hostile = {"tags": {"team": {"tag_value": {"@@assign": ["<script>alert(1)</script>"]}}}}
    attach(client, org, "hostile", json.dumps(hostile), "account", "111111111111")
    item = client.get(api(org, "effective/111111111111/")).json()
    assert item["effective_policy"]["tags"]["project"] == {
        "tag_key": "Project",
        "tag_value": ["Maintenance", "Escalations", "Escalations - research"],
    }
    [ignored] = item["ignored"]
    assert (ignored["level"], ignored["operator"]) == ("OU Root/OU1", "@@assign")
    html = client.get(page(org, "effective/")).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)" in html
    assert "F &lt;b&gt;" in html and "@@assign" in html
    listing = client_for(viewer).get(page(org))
    assert listing.status_code == 200 and "Import a tag policy" not in listing.content.decode()


def test_another_organizations_policies_and_accounts_are_404(org, other_org, admin, outsider):
    make_account(other_org, "555555555555", "Root/Theirs")
    theirs = attach(client_for(outsider), other_org, "theirs", POLICY_A)
    client = client_for(admin)
    assert client.get(api(org, f"{theirs['id']}/")).status_code == 404
    assert client.delete(api(org, f"{theirs['id']}/")).status_code == 404
    assert client.get(page(org, f"{theirs['id']}/")).status_code == 404
    assert client.get(api(org, "effective/555555555555/")).status_code == 404
    assert client.get(page(org, "effective/555555555555/")).status_code == 404
    assert client.get(api(org)).json()["results"] == []
    with tenant_scope(org):
        assert not Rule.objects.for_org(org).exists()


def test_generated_values_match_aws_wildcards():
    matcher = imported.value_matcher(("*@example.com", "ops.+*", "root"))
    assert matcher.kind == "wildcards"
    for value in ("a@example.com", "@example.com", "ops.+x", "root"):
        assert matcher.matches(value), value
    for value in ("a@exampleXcom", "opsx+x", "rooty", "Root"):
        assert not matcher.matches(value), value
    assert imported.value_matcher(("300*",)).matches("300")
    assert not imported.value_matcher(()).matches("")
    assert imported.value_matcher(None).matches("")


def test_accounts_registered_or_deleted_get_or_lose_their_generated_rules(
    org, admin, accounts, django_capture_on_commit_callbacks
):

    attach(client_for(admin), org, "A", POLICY_A)
    # The rules follow once each change commits (inventory announces, policies listens).
    with django_capture_on_commit_callbacks(execute=True), tenant_scope(org):
        added = inventory_services.register_account(org, account_id="666666666666")
    with tenant_scope(org):
        ids = set(Rule.objects.for_org(org).values_list("rule_id", flat=True))
    assert "awstp-666666666666-costcenter-values" in ids
    with django_capture_on_commit_callbacks(execute=True), tenant_scope(org):
        inventory_services.delete_account(added)
    with tenant_scope(org):
        ids = set(Rule.objects.for_org(org).values_list("rule_id", flat=True))
    assert "awstp-666666666666-costcenter-values" not in ids
    assert "awstp-111111111111-costcenter-values" in ids


def test_a_rule_file_neither_replaces_nor_takes_over_generated_rules(org, admin, accounts):
    client = client_for(admin)
    attach(client, org, "A", POLICY_A)
    rules = f"/api/v1/o/{org.slug}/policies/import/"
    own = (
        "version: 1\nrules:\n  - id: {id}\n    title: T\n    check: required_key\n    key: Owner\n"
    )
    replaced = client.post(
        rules, {"yaml": own.format(id="owner"), "mode": "replace"}, content_type="application/json"
    )
    assert replaced.status_code == 200 and replaced.json()["deleted"] == []
    taken = client.post(
        rules,
        {"yaml": own.format(id="awstp-111111111111-costcenter-values"), "mode": "merge"},
        content_type="application/json",
    )
    assert taken.status_code == 400
    assert "generated from AWS tag policies" in taken.content.decode()
    with tenant_scope(org):
        rule = Rule.objects.for_org(org).get(rule_id="awstp-111111111111-costcenter-values")
    assert rule.spec["key"] == "CostCenter" and rule.origin == "aws_tag_policy"
    listed = client.get(
        f"/api/v1/o/{org.slug}/policies/rules/awstp-111111111111-costcenter-values/"
    )
    assert listed.json()["origin"] == "aws_tag_policy"


def post_policy(client, org, name, document, target_type="root", target=""):
    return client.post(
        api(org),
        {"name": name, "document": document, "target_type": target_type, "target": target},
        content_type="application/json",
    )


@pytest.mark.parametrize(
    ("target_type", "target", "other"),
    [
        ("root", "", ("ou", OU1)),
        ("ou", OU1, ("ou", OU2)),
        ("account", "111111111111", ("root", "")),
    ],
)
def test_an_eleventh_policy_on_one_target_is_refused_as_aws_does(
    org, admin, accounts, target_type, target, other
):
    """AWS attaches at most 10 tag policies directly to one root, OU or account; the 11th, by
    import or by moving a policy there, is its ConstraintViolationException."""
    client = client_for(admin)
    for i in range(imported.MAX_ATTACHED_PER_TARGET):
        attach(client, org, f"p{i}", POLICY_A, target_type, target)
    refused = post_policy(client, org, "eleventh", POLICY_A, target_type, target)
    assert refused.status_code == 400
    assert refused["Content-Type"].startswith("application/problem+json")
    body = refused.json()
    assert (body["code"], body["reason"]) == (
        "ConstraintViolationException",
        "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED",
    )
    assert body["errors"][0]["path"] == "target"
    elsewhere = attach(client, org, "elsewhere", POLICY_A, *other)
    moved = client.put(
        api(org, f"{elsewhere['id']}/"),
        {"target_type": target_type, "target": target},
        content_type="application/json",
    )
    assert moved.status_code == 400 and moved.json()["reason"] == body["reason"]
    form = client.post(
        page(org),
        {"name": "form", "document": POLICY_A, "target_type": target_type, "target": target},
    )
    assert form.status_code == 400
    assert "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED" in form.content.decode()
    with tenant_scope(org):
        attached = AwsTagPolicy.objects.for_org(org).filter(target_type=target_type, target=target)
        names = set(attached.values_list("name", flat=True))
    assert len(names) == 10 and "eleventh" not in names and "elsewhere" not in names
    # Changing a policy already on the full target is not one more attachment.
    with tenant_scope(org):
        first = AwsTagPolicy.objects.for_org(org).get(name="p0")
    renamed = client.put(
        api(org, f"{first.pk}/"),
        {"name": "p0-renamed", "target_type": target_type, "target": target},
        content_type="application/json",
    )
    assert renamed.status_code == 200, renamed.content


def test_awss_other_limits_and_error_names(org, admin, accounts, monkeypatch):
    client = client_for(admin)
    padded = json.dumps(json.loads(POLICY_A), indent=1) + " " * 10_000
    big = post_policy(client, org, "big", padded)
    assert big.status_code == 400
    assert (big.json()["code"], big.json()["reason"]) == (
        "ConstraintViolationException",
        "POLICY_CONTENT_LIMIT_EXCEEDED",
    )
    bad = post_policy(client, org, "bad", '{"tags": {"x": {"tag_value": {"@@assign": [1]}}}}')
    assert bad.json()["code"] == "MalformedPolicyDocumentException" and "reason" not in bad.json()
    for name in ("Kostenstelle – Ä", "x" * 129, "two\nlines", ""):
        refused = post_policy(client, org, name, POLICY_A)
        assert refused.status_code == 400, name
        assert refused.json()["code"] == "InvalidInputException", name
    attach(client, org, "A", POLICY_A)
    again = post_policy(client, org, "A", POLICY_A, "ou", OU1)
    assert again.status_code == 400 and again.json()["code"] == "DuplicatePolicyException"
    monkeypatch.setattr(imported, "MAX_POLICIES", 2)
    attach(client, org, "B", POLICY_B, "ou", OU1)
    full = post_policy(client, org, "C", POLICY_C, "ou", OU2)
    assert (full.json()["code"], full.json()["reason"]) == (
        "ConstraintViolationException",
        "POLICY_NUMBER_LIMIT_EXCEEDED",
    )
    with tenant_scope(org):
        assert set(AwsTagPolicy.objects.for_org(org).values_list("name", flat=True)) == {"A", "B"}


def test_an_account_without_any_tag_policy_has_none_not_an_empty_one(org, admin, accounts):
    """AWS's DescribeEffectivePolicy answers EffectivePolicyNotFoundException when no tag
    policy is attached anywhere above the account; an empty policy would claim one applies."""
    client = client_for(admin)
    attach(client, org, "B", POLICY_B, "ou", OU1)
    none = client.get(api(org, "effective/222222222222/"))
    assert none.status_code == 404
    assert none["Content-Type"].startswith("application/problem+json")
    assert none.json()["code"] == "EffectivePolicyNotFoundException"
    missing = client.get(api(org, "effective/999999999999/"))
    assert missing.status_code == 404 and "code" not in missing.json()
    found = client.get(api(org, "effective/111111111111/"))
    assert found.status_code == 200 and found.json()["error"] is None
    listed = {i["account_id"]: i for i in client.get(api(org, "effective/")).json()}
    assert listed["222222222222"]["effective_policy"] is None
    assert listed["222222222222"]["error"] == "EffectivePolicyNotFoundException"
    assert listed["111111111111"]["effective_policy"]["tags"]["costcenter"]["tag_value"] == [
        "Sandbox"
    ]
    html = client.get(page(org, "effective/222222222222/")).content.decode()
    assert "EffectivePolicyNotFoundException" in html and '{\n    "tags": {}' not in html
    assert '"tags": {}' not in html
    # A policy whose every key a lower level removes still makes an effective policy.
    emptied = {"tags": {"costcenter": {"tag_value": {"@@remove": ["Sandbox"]}}}}
    attach(client, org, "E", json.dumps(emptied), "account", "333333333333")
    assert client.get(api(org, "effective/333333333333/")).status_code == 200


def test_a_policy_with_many_wildcard_values_is_checked_not_silently_dropped(org, admin, accounts):
    """40 values team-00-* ... team-39-* made a regex of alternatives over the 200-character
    limit: the import said 201 and no value rule existed. Now the values are a rule of their
    own kind, and its findings are AWS's."""
    values = [f"team-{i:02d}-*" for i in range(40)] + [f"svc-{i}" for i in range(300)]
    values += ["x" * 255 + "*", "y" * 256]
    policy = {
        "tags": {"team": {"tag_key": {"@@assign": "Team"}, "tag_value": {"@@assign": values}}}
    }
    tags_by_name = {
        "ok-wild": {"Team": "team-39-payments"},
        "ok-literal": {"Team": "svc-299"},
        "ok-long": {"Team": "x" * 256},
        "bad": {"Team": "team-40-payments"},
        "bad-long": {"Team": "y" * 255},
        "both": {"Team": "svc-1", "team": "svc-1"},
    }
    for name, tags in tags_by_name.items():
        make_resource(org, accounts["ou1"], "ec2:instance", tags, name)
    created = attach(client_for(admin), org, "teams", json.dumps(policy), "ou", OU1)
    assert created["rule_problems"] == []
    with tenant_scope(org):
        rule = Rule.objects.for_org(org).get(rule_id="awstp-111111111111-team-values")
    assert rule.spec["values"] == {"wildcards": values}
    got = {name: kind for (name, _), (kind, _, _) in open_findings(org).items()}
    assert got == {"bad": "bad_value", "bad-long": "bad_value", "both": "wrong_case"}
    effective = atp.effective_policy([[policy]])
    for name, tags in tags_by_name.items():
        aws = {n.kind for n in atp.noncompliance(effective, "ec2:instance", tags)}
        assert bool(aws) == (name in got), name


def test_what_cannot_become_a_rule_is_shown_not_only_audited(org, admin, accounts):
    """A policy key no TagSense rule can hold (an aws: key, a character no tag key has) is
    accepted as AWS accepts it, and the answer and the page say it is not checked."""
    policy = {
        "tags": {
            "aws:cloudformation": {"tag_value": {"@@assign": ["x"]}},
            "a#b": {"tag_key": {"@@assign": "A#b"}},
        }
    }
    client = client_for(admin)
    created = attach(client, org, "odd", json.dumps(policy))
    problems = created["rule_problems"]
    assert any("aws:cloudformation" in p for p in problems) and any("a#b" in p for p in problems)
    listing = client.get(page(org)).content.decode()
    assert "TagSense cannot check part of the effective policies" in listing
    assert "aws:cloudformation" in listing
    form = client.post(
        page(org),
        {"name": "odd2", "document": json.dumps(policy), "target_type": "ou", "target": OU1},
        follow=True,
    )
    assert "TagSense cannot check part of the effective tag policies" in form.content.decode()
    renamed = client.put(
        api(org, f"{created['id']}/"), {"name": "odd-renamed"}, content_type="application/json"
    )
    assert renamed.json()["rule_problems"] == problems
