"""The CI check end to end on a real Terraform plan (tests/policies/fixtures/terraform): rules
from the policy-as-code format, the reference evaluator, the JSON and JUnit answer."""

from dataclasses import replace
from pathlib import Path

import pytest

from policies.ci.check import check
from policies.ci.plan import PlannedResource, parse_terraform_plan
from policies.ci.report import build_response, exit_code
from policies.engine.spec import parse_rules

PLAN = Path(__file__).parent / "fixtures" / "terraform" / "plan.json"

RULES = """
version: 1
rules:
  - id: owner-required
    title: Every resource names its Owner
    check: required_key
    key: Owner
    aliases: [owner]
    severity: high
    enforcement: enforced
  - id: cost-centre-format
    title: Cost centres look like cc-1234
    check: allowed_values
    key: CostCenter
    values: {regex: "^cc-[0-9]{4}$"}
    enforcement: enforced
  - id: managed-by
    title: ManagedBy says terraform
    check: allowed_values
    key: ManagedBy
    values: {list: [terraform]}
    severity: low
    enforcement: report
"""


@pytest.fixture
def results():
    return {
        r.address: v for r, v in check(parse_terraform_plan(PLAN.read_bytes()), parse_rules(RULES))
    }


def test_default_tags_count_and_a_missing_owner_fails_the_plan(results):
    # aws_instance.web has only the provider's default_tags: CostCenter passes, Owner misses.
    web = results["aws_instance.web"]
    assert [(v.rule_id, v.kind, v.enforced) for v in web] == [("owner-required", "missing", True)]
    assert "Owner" in web[0].fix
    assert results["aws_vpc.main"] == []


def test_module_resources_are_checked_and_report_only_rules_do_not_fail(results):
    bucket = results["module.logs.aws_s3_bucket.this"]
    assert [(v.rule_id, v.kind, v.enforced) for v in bucket] == [("managed-by", "bad_value", False)]


def test_deletions_data_sources_and_untaggable_types_are_never_flagged(results):
    for address in (
        "aws_sqs_queue.retired",
        "data.aws_iam_policy_document.logs",
        "aws_s3_bucket_policy.logs",
    ):
        assert results[address] == [], address


def test_tags_known_only_after_apply_are_advisory(results):
    [subnet] = results["aws_subnet.a"]
    assert (subnet.kind, subnet.enforced) == ("unknown-value", False)


def test_an_unknown_value_satisfies_a_required_key_but_cannot_be_judged():
    resource = PlannedResource(
        address="aws_instance.x",
        module_address="",
        tf_type="aws_instance",
        resource_type="ec2:instance",
        taggable=True,
        action="create",
        tags={"CostCenter": "cc-1"},
        unknown_tag_keys=("Owner", "ManagedBy"),
    )
    [(_, found)] = check([resource], parse_rules(RULES))
    assert [(v.rule_id, v.kind, v.enforced) for v in found] == [
        ("cost-centre-format", "bad_value", True),
        ("managed-by", "unknown-value", False),
    ]


def test_the_answer_fails_the_build_and_passes_once_default_tags_carry_the_owner():
    rules = parse_rules(RULES)
    planned = parse_terraform_plan(PLAN.read_bytes())
    failing = build_response(check(planned, rules), [r.id for r in rules], "plan.json")
    assert failing["exit_code"] == 1 and 'name="owner-required"' in failing["junit"]
    fixed = [replace(r, tags={**r.tags, "Owner": "platform"}) for r in planned]
    passing = check(fixed, rules)
    assert exit_code(passing) == 0
