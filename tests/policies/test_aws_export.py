"""The organization's rules written as one AWS tag policy: what a tag policy can say, and what
it cannot (named with the reason)."""

from __future__ import annotations

import json

import pytest

from policies import services
from policies.aws import documents
from policies.engine.spec import builtin_rules, parse_rules
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

RULES = parse_rules(
    """
version: 1
rules:
  - {id: owner, title: o, check: required_key, key: Owner, scope: {resource_types: ["ec2:*"]}}
  - id: env
    title: e
    check: allowed_values
    key: Environment
    values: {list: [prod, dev]}
    enforcement: enforced
    scope: {resource_types: ["s3:bucket", "ec2:instance"]}
  - {id: env-required, title: r, check: required_key, key: Environment}
  - {id: cc, title: c, check: allowed_values, key: CostCenter, values: {glob: "CC-*"}}
  - {id: cc-regex, title: c, check: allowed_values, key: CostCenter, values: {regex: "CC-[0-9]+"}}
  - {id: secrets, title: s, check: prohibited_key, key: "*password*"}
  - {id: many, title: m, check: max_tags, max: 40}
  - {id: prod-class, title: p, check: required_key, key: DataClassification,
     when: {key: Environment, values: [prod]}}
  - {id: owner-lower, title: l, check: required_key, key: owner}
"""
)


def test_the_rules_as_a_tag_policy_that_parses_back(org, viewer):
    with tenant_scope(org):
        for spec in RULES:
            services.create_rule(org, spec)
        services.create_rule(org, parse_rules(
            "version: 1\nrules:\n  - {id: team-off, title: x, check: required_key, key: Team}\n"
        )[0], active=False)  # fmt: skip
    answer = client_for(viewer).get(f"/api/v1/o/{org.slug}/policies/aws-tag-policies/export/")
    assert answer.status_code == 200, answer.content
    body = answer.json()
    tags = body["policy"]["tags"]
    assert set(tags) == {"owner", "environment", "costcenter"}  # Team is inactive
    assert tags["owner"]["tag_key"] == {"@@assign": "Owner"}
    assert "ec2:instance" in tags["owner"]["report_required_tag_for"]["@@assign"]
    assert "s3:bucket" not in tags["owner"]["report_required_tag_for"]["@@assign"]
    assert tags["environment"]["tag_value"] == {"@@assign": ["prod", "dev"]}
    assert tags["environment"]["enforced_for"] == {"@@assign": ["ec2:instance", "s3:bucket"]}
    assert "s3:bucket" in tags["environment"]["report_required_tag_for"]["@@assign"]
    assert tags["costcenter"]["tag_value"] == {"@@assign": ["CC-*"]}
    assert "enforced_for" not in tags["costcenter"]  # a report-only rule
    reasons = {s["rule"]: s["reason"] for s in body["skipped"]}
    assert set(reasons) == {"cc-regex", "secrets", "many", "prod-class", "owner-lower"}
    assert "regular expressions" in reasons["cc-regex"]
    assert "prohibit" in reasons["secrets"] and "conditions" in reasons["prod-class"]
    assert "'Owner'" in reasons["owner-lower"]
    # AWS's own syntax, read back by the importer's parser.
    parsed = documents.parse_policy(body["policy"])
    assert set(parsed.tags) == {"owner", "environment", "costcenter"}
    effective = documents.effective_policy([[parsed]])
    assert {tag.tag_key for tag in effective.tags.values()} == {
        "Owner",
        "Environment",
        "CostCenter",
    }

    page = client_for(viewer).get(f"/o/{org.slug}/policies/aws/export.json")
    assert page.status_code == 200 and page["Content-Type"] == "application/json"
    assert json.loads(page.content) == body["policy"]


def test_the_built_in_library_exports(org, admin):
    with tenant_scope(org):
        for spec in builtin_rules():
            services.create_rule(org, spec)
    body = client_for(admin).get(f"/api/v1/o/{org.slug}/policies/aws-tag-policies/export/").json()
    assert {"owner", "environment", "costcenter", "application"} <= set(body["policy"]["tags"])
    assert body["skipped"]  # the prohibited-key, max-tags and conditional rules
