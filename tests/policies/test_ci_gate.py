"""The CI gate's verdict on real plans (fixtures/terraform_gate, made by its generate.py with
terraform 1.11 and hashicorp/aws 5.100.0): resources without tags under a provider without
default tags fail, the same resources pass once constant default tags carry the keys, default
tags known only after apply leave the tags undetermined, provider aliases and providers passed
into modules are followed, a partly unknown tag map still has its known keys judged, and
unchanged resources are checked unless only changes are asked for."""

from pathlib import Path

import pytest

from policies.ci.check import WHOLE_MAP_UNKNOWN, check
from policies.ci.cloudformation import parse_cloudformation
from policies.ci.plan import DocumentError, parse_terraform_plan
from policies.ci.report import build_report
from policies.engine.spec import parse_rules

FIXTURES = Path(__file__).parent / "fixtures" / "terraform_gate"

RULES = parse_rules("""
version: 1
rules:
  - id: owner
    title: Owner is required
    check: required_key
    key: Owner
    severity: high
    enforcement: enforced
  - id: cost-center
    title: CostCenter is required
    check: required_key
    key: CostCenter
    severity: high
    enforcement: enforced
  - id: cost-center-format
    title: Cost centres look like cc-1234
    check: allowed_values
    key: CostCenter
    values: {regex: "^cc-[0-9]{4}$"}
    enforcement: enforced
""")

# resources.tf, planned under each provider of no_defaults/, constant_defaults/, unknown_defaults/
UNTAGGED = [
    "aws_sqs_queue.untagged",
    "aws_sqs_queue.empty_tags",
    "aws_sqs_queue.counted[0]",
    "aws_sqs_queue.counted[1]",
    'aws_sqs_queue.each["a"]',
    'aws_sqs_queue.each["b"]',
    'module.queues.aws_sqs_queue.this["jobs"]',
    'module.queues.aws_sqs_queue.this["dead-letters"]',
    "aws_vpc.main",
    "aws_vpc_security_group_egress_rule.untagged",  # plugin framework
]


def _report(scenario, **options):
    planned = parse_terraform_plan((FIXTURES / scenario / "plan.json").read_bytes(), **options)
    report = build_report(check(planned, RULES), [r.id for r in RULES], "terraform")
    return report, {r["address"]: r for r in report["resources"]}


def _enforced(resource):
    return sorted(
        (v["rule_id"], v["kind"], v["key"]) for v in resource["violations"] if v["enforced"]
    )


def _missing(resource):
    return sorted(v["key"] for v in resource["violations"] if v["kind"] == "missing")


def _advisory(resource):
    return sorted(v["rule_id"] for v in resource["violations"] if not v["enforced"])


@pytest.mark.parametrize("scenario", ["no_defaults", "empty_variable_defaults"])
def test_untagged_resources_without_default_tags_miss_every_required_key(scenario):
    """Also when the default tags are a root variable whose value, in the plan, is empty."""
    report, by_address = _report(scenario)
    assert (report["exit_code"], report["passed"]) == (1, False)
    for address in UNTAGGED:
        assert by_address[address]["checked"], address
        assert _missing(by_address[address]) == ["CostCenter", "Owner"], address
        assert by_address[address]["tags"] == {}
        assert not by_address[address]["tags_unknown"], address
    assert _missing(by_address["aws_sqs_queue.owner_only"]) == ["CostCenter"]


@pytest.mark.parametrize(
    "scenario, extra",
    [
        ("constant_defaults", {}),
        ("variable_defaults", {}),  # default_tags = var.dt, its value in the plan's variables
        ("numeric_defaults", {"Tier": "3", "Critical": "true"}),  # as the provider stores them
    ],
)
def test_the_same_resources_pass_once_constant_default_tags_carry_the_keys(scenario, extra):
    report, by_address = _report(scenario)
    assert (report["exit_code"], report["passed"]) == (0, True)
    for address in UNTAGGED:
        expected = {"Owner": "platform", "CostCenter": "cc-1000", **extra}
        assert by_address[address]["tags"] == expected
        assert by_address[address]["violations"] == [], address
    # the resource's own tag wins over the default
    assert by_address["aws_sqs_queue.owner_only"]["tags"]["Owner"] == "team-a"
    # no false positive anywhere: the only remarks are advisories on values known after apply
    assert all(_enforced(r) == [] for r in report["resources"])


def test_a_known_key_is_judged_when_another_value_is_unknown():
    # plugin-framework resources keep the known part of the map (item 2 of issue 14)
    _, no_defaults = _report("no_defaults")
    wrong_case = no_defaults["aws_vpc_security_group_ingress_rule.wrong_case"]
    assert wrong_case["unknown_tag_keys"] == ["Vpc"] and not wrong_case["tags_unknown"]
    assert _enforced(wrong_case) == [("owner", "wrong_case", "Owner")]
    # an unknown CostCenter counts as present; only its value's check waits for the scan
    unknown_value = no_defaults["aws_vpc_security_group_ingress_rule.unknown_cost_center"]
    assert _enforced(unknown_value) == []
    assert _advisory(unknown_value) == ["cost-center-format"]
    # an SDK resource makes the whole map unknown when one value is: undetermined, advisory
    subnet = no_defaults["aws_subnet.a"]
    assert subnet["tags_unknown"] and _advisory(subnet) == [WHOLE_MAP_UNKNOWN]
    assert _enforced(subnet) == []

    _, aliases = _report("aliases")
    bad_value = aliases["aws_vpc_security_group_ingress_rule.bare_bad_value"]
    assert bad_value["unknown_tag_keys"] == ["Vpc"]
    assert _enforced(bad_value) == [("cost-center-format", "bad_value", "CostCenter")]
    # constant default tags merged with a partly unknown map of the resource's own
    merged = aliases["aws_vpc_security_group_ingress_rule.default_unknown_value"]
    assert merged["tags"] == {"Owner": "platform", "CostCenter": "cc-1000"}
    assert merged["unknown_tag_keys"] == ["Vpc"] and merged["violations"] == []


def test_default_tags_known_only_after_apply_leave_the_tags_undetermined():
    report, by_address = _report("unknown_defaults")
    for address in [*UNTAGGED, "aws_sqs_queue.owner_only", "aws_sqs_queue.own_good_values"]:
        resource = by_address[address]
        assert resource["tags_unknown"], address
        assert (
            resource["unknown_reason"] == "its provider's default_tags are known only after apply"
        )
        assert _advisory(resource) == [WHOLE_MAP_UNKNOWN] and _enforced(resource) == []
    # The resource's own tags are known and win over the defaults: a bad value of its own fails
    # the gate now; whether a key is missing waits (a default may add it).
    bad = by_address["aws_sqs_queue.own_bad_value"]
    assert bad["tags_unknown"] and _advisory(bad) == [WHOLE_MAP_UNKNOWN]
    assert _enforced(bad) == [("cost-center-format", "bad_value", "CostCenter")]
    assert (report["exit_code"], report["passed"]) == (1, False)
    assert {r["address"] for r in report["resources"] if _enforced(r)} == {
        "aws_sqs_queue.own_bad_value"
    }


def test_provider_aliases_and_providers_passed_into_modules():
    report, by_address = _report("aliases")
    assert report["exit_code"] == 1
    missing = {address: _missing(r) for address, r in by_address.items() if not r["tags_unknown"]}
    both = ["CostCenter", "Owner"]
    assert missing == {
        # aws.bare: no default tags
        "aws_sqs_queue.bare_untagged": both,
        "aws_sqs_queue.bare_owner_only": ["CostCenter"],
        'module.bare.aws_sqs_queue.this["jobs"]': both,
        'module.bare.aws_sqs_queue.this["dead-letters"]': both,
        'module.wrapped_bare.module.inner[0].aws_sqs_queue.this["jobs"]': both,
        'module.wrapped_bare.module.inner[0].aws_sqs_queue.this["dead-letters"]': both,
        "aws_vpc_security_group_ingress_rule.bare_bad_value": [],
        # a module's own provider, with default tags carrying Owner only
        "module.legacy.aws_sqs_queue.own_provider": ["CostCenter"],
        # the default provider's constant default tags, inherited or passed on
        "aws_sqs_queue.default_untagged": [],
        "aws_vpc.hub": [],
        "aws_vpc_security_group_ingress_rule.default_unknown_value": [],
        'module.inherits.aws_sqs_queue.this["jobs"]': [],
        'module.inherits.aws_sqs_queue.this["dead-letters"]': [],
        'module.wrapped_default.module.inner[0].aws_sqs_queue.this["jobs"]': [],
        'module.wrapped_default.module.inner[0].aws_sqs_queue.this["dead-letters"]': [],
        # default tags from a variable (known while planning), into a module with for_each
        "aws_sqs_queue.vars_untagged": [],
        'module.vars["x"].aws_sqs_queue.this["jobs"]': [],
        'module.vars["x"].aws_sqs_queue.this["dead-letters"]': [],
        'module.vars["y.z]"].aws_sqs_queue.this["jobs"]': [],
        'module.vars["y.z]"].aws_sqs_queue.this["dead-letters"]': [],
        # a dynamic default_tags block: absent from the configuration, present in tags_all
        "aws_sqs_queue.dyn_untagged": [],
    }
    assert by_address['module.vars["y.z]"].aws_sqs_queue.this["jobs"]']["tags"] == {
        "Owner": "from-variable",
        "CostCenter": "cc-2000",
    }
    # default tags that depend on a resource attribute known only after apply
    derived = by_address["aws_sqs_queue.derived_untagged"]
    assert derived["tags_unknown"] and _enforced(derived) == []


def test_unchanged_resources_are_checked_unless_only_changes_are_asked_for():
    report, by_address = _report("noop")
    assert report["exit_code"] == 1
    old = by_address["aws_sqs_queue.old_untagged"]
    assert (old["action"], old["checked"], _missing(old)) == (
        "no-op",
        True,
        ["CostCenter", "Owner"],
    )
    assert by_address["aws_sqs_queue.old_tagged"]["checked"]
    assert by_address["aws_sqs_queue.to_delete"]["checked"] is False

    report, by_address = _report("noop", changed_only=True)
    assert (report["exit_code"], report["passed"]) == (0, True)
    old = by_address["aws_sqs_queue.old_untagged"]
    assert (old["checked"], old["skip_reason"]) == (False, "unchanged")
    assert [r["action"] for r in report["resources"] if r["checked"]] == ["create", "update"]


@pytest.mark.parametrize(
    "name, says",
    [("plan.tfplan", "binary plan file"), ("plan-events.jsonl", "`terraform plan -json` event")],
)
def test_terraform_outputs_that_are_not_a_plan_say_what_they_are(name, says):
    body = (FIXTURES / "no_defaults" / name).read_bytes()
    for parse in (parse_terraform_plan, parse_cloudformation):
        with pytest.raises(DocumentError) as error:
            parse(body)
        assert says in str(error.value)
        assert "run `terraform show -json plan.tfplan`" in str(error.value)
    # one event alone is one JSON object, not a stream: still named
    first = body.splitlines()[0] if name.endswith(".jsonl") else body
    with pytest.raises(DocumentError, match=says):
        parse_terraform_plan(first)
