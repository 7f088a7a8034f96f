"""The rules generated from AWS tag policies find what AWS's evaluation finds.

Random policy trees (root, OUs, account; @@assign, @@append, @@remove, child controls,
wildcard values) are combined with aws.documents.effective_policy; the rules
aws.imported.generated_specs makes of the result are evaluated by the reference evaluator
(policies.engine.reference, the Python engine; tests/policies/test_sql_engine.py shows the SQL
engine agrees with it) and compared with aws.documents.noncompliance on random resources. As in
docs/aws-tag-policies.md, AWS's value result on a wrongly capitalized key is left out: TagSense asks
for the rename first.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.aws import documents as atp
from policies.aws import imported
from policies.engine.reference import ResourceView, evaluate_resource, suggested_fix

ACCOUNT = "444444444444"
KINDS = {"capitalization": "wrong_case", "value": "bad_value", "missing": "missing"}
POLICY_KEYS = ("costcenter", "owner", "project")
SPELLINGS = {
    "costcenter": ("CostCenter", "costcenter", "costCenter", "COSTCENTER"),
    "owner": ("Owner", "owner", "OWNER"),
    "project": ("Project", "project"),
}
PATTERNS = ("100", "200", "300*", "*@example.com", "team-?-*", "a?b", "*", "", "x*y", "ops.+*")
# Values an AWS tag can hold (letters, digits, white space and _ . : / = + - @): never `?`.
VALUES = ("100", "300", "3001", "a@example.com", "team-1-x", "team--x", "axb", "", "x", "ops.+1")
TYPES_AWS = ("ec2:instance", "ec2:ALL_SUPPORTED", "s3:bucket", "s3:*", "dynamodb:table")
CONTROLS = (["@@all"], ["@@none"], ["@@assign"], ["@@append", "@@remove"], ["@@append"])


def _taggable() -> list[str]:
    return imported._taggable_scanner_types()


def _list_setting(draw, pool):
    setting = {}
    for operator in draw(
        st.lists(st.sampled_from(["@@assign", "@@append", "@@remove"]), max_size=2, unique=True)
    ):
        setting[operator] = draw(st.lists(st.sampled_from(pool), max_size=4, unique=True))
    return setting


@st.composite
def documents(draw):
    tags = {}
    for policy_key in draw(st.lists(st.sampled_from(POLICY_KEYS), max_size=3, unique=True)):
        written = draw(st.sampled_from(SPELLINGS[policy_key]))
        entry = {}
        if draw(st.booleans()):
            entry["tag_key"] = {"@@assign": draw(st.sampled_from(SPELLINGS[policy_key]))}
        for name, pool in (
            ("tag_value", PATTERNS),
            ("enforced_for", TYPES_AWS),
            ("report_required_tag_for", TYPES_AWS),
        ):
            setting = _list_setting(draw, pool)
            if setting:
                entry[name] = setting
        for name in list(entry):
            if draw(st.integers(0, 4)) == 0:
                entry[name]["@@operators_allowed_for_child_policies"] = draw(
                    st.sampled_from(CONTROLS)
                )
        if entry:
            tags[written] = entry
    return {"tags": tags}


trees = st.lists(st.lists(documents(), max_size=2), min_size=1, max_size=4)
resources = st.tuples(
    st.sampled_from(sorted(atp.AWS_TYPE_BY_SCANNER_TYPE)),
    st.dictionaries(
        st.sampled_from([s for spellings in SPELLINGS.values() for s in spellings] + ["Other"]),
        st.sampled_from(VALUES),
        max_size=4,
    ),
)


def aws_findings(effective, resource_type, tags):
    return {
        (n.expected_key, KINDS[n.kind])
        for n in atp.noncompliance(effective, atp.aws_resource_type(resource_type), tags)
        if not (n.kind == "value" and n.found_key != n.expected_key)
    }


def rule_findings(specs, resource_type, tags):
    view = ResourceView(resource_type, tags, ACCOUNT, "eu-west-1")
    return {(spec.key, v.kind) for spec in specs for v in evaluate_resource(spec, view)}


@pytest.mark.django_db
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, samples=st.lists(resources, min_size=1, max_size=6))
def test_generated_rules_find_what_aws_evaluation_finds_on_random_trees(tree, samples):
    effective = atp.effective_policy(tree)
    specs, problems = imported.generated_specs(ACCOUNT, effective)
    assert problems == []
    taggable = set(_taggable())
    for resource_type, tags in samples:
        if resource_type not in taggable:
            continue
        assert rule_findings(specs, resource_type, tags) == aws_findings(
            effective, resource_type, tags
        ), (effective.rendered(), resource_type, tags)


def _policy(values):
    return atp.effective_policy(
        [
            [
                {
                    "tags": {
                        "team": {
                            "tag_key": {"@@assign": "Team"},
                            "tag_value": {"@@assign": list(values)},
                        }
                    }
                }
            ]
        ]
    )


@pytest.mark.django_db
def test_many_and_long_wildcard_values_become_one_rule_that_checks_them():
    """40 wildcard values (a regex of alternatives over 200 characters, refused before), a
    thousand literal and wildcard values, values of AWS's 256 characters, and `?` literal."""
    long_prefix = "p" * 255
    cases = [
        [f"team-{i:02d}-*" for i in range(40)],
        [f"v{i}" for i in range(900)] + [f"w{i}-*" for i in range(300)],
        [long_prefix + "*", "q" * 256, "a?b*"],
    ]
    for values in cases:
        effective = _policy(values)
        specs, problems = imported.generated_specs(ACCOUNT, effective)
        assert problems == []
        [values_rule] = [s for s in specs if s.check == "allowed_values"]
        assert values_rule.id.endswith("-values") and values_rule.values.kind == "wildcards"
        probes = [
            "team-07-x",
            "team-39-",
            "team-40-x",
            "v899",
            "v900",
            "w299-9",
            "w300-1",
            long_prefix,
            long_prefix + "zz",
            "q" * 256,
            "q" * 255,
            "a_bc",
            "axbc",
            "",
        ]
        for value in probes:
            tags = {"Team": value}
            assert rule_findings(specs, "ec2:instance", tags) == aws_findings(
                effective, "ec2:instance", tags
            ), value


@pytest.mark.django_db
def test_both_spellings_are_reported_and_the_fix_removes_the_other_one():

    effective = _policy(["a", "b"])
    specs, _ = imported.generated_specs(ACCOUNT, effective)
    tags = {"Team": "x", "team": "a"}
    assert (
        rule_findings(specs, "ec2:instance", tags)
        == {
            ("Team", "bad_value"),
            ("Team", "wrong_case"),
        }
        == aws_findings(effective, "ec2:instance", tags)
    )
    view = ResourceView("ec2:instance", tags, ACCOUNT, "eu-west-1")
    [duplicate] = [s for s in specs if s.check == "duplicate_key"]
    [violation] = evaluate_resource(duplicate, view)
    assert suggested_fix(violation, duplicate.check) == "remove tag team (Team is set)"
