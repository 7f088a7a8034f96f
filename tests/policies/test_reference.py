"""The reference semantics of a rule on one resource: the cases a user would notice."""

import pytest

from inventory.scanners.base import Scanner, _registry
from policies.engine.reference import (
    ResourceView,
    Violation,
    applies,
    evaluate_resource,
    in_scope,
    suggested_fix,
    user_tag_count,
)
from policies.engine.spec import SpecError, parse_rules


def rule(body: str):
    (parsed,) = parse_rules(f"version: 1\nrules:\n  - {{id: r, title: R, {body}}}\n")
    return parsed


def view(tags, resource_type="ec2:instance", account="111111111111", region="eu-west-1", teams=()):
    return ResourceView(resource_type, tags, account, region, frozenset(teams))


OWNER = rule("check: required_key, key: Owner, aliases: [owner_email]")


def kinds(r, tags, **kw):
    return [(v.kind, v.found_key) for v in evaluate_resource(r, view(tags, **kw))]


def test_canonical_key_present_is_compliant():
    assert evaluate_resource(OWNER, view({"Owner": "ana@example.com"})) == []


def test_other_case_is_wrong_case_not_missing():
    (violation,) = evaluate_resource(OWNER, view({"owner": "ana@example.com"}))
    assert violation == Violation(
        "r", "wrong_case", "Owner", "owner", "ana@example.com", "tag owner should be spelt Owner"
    )
    assert suggested_fix(violation) == "rename tag owner to Owner"
    assert kinds(OWNER, {"OWNER": "x"}) == [("wrong_case", "OWNER")]


def test_alias_in_any_case_is_wrong_case():
    assert kinds(OWNER, {"Owner_Email": "x"}) == [("wrong_case", "Owner_Email")]


def test_several_variants_report_the_first_by_code_point():
    assert kinds(OWNER, {"owner": "a", "OWNER": "b", "owner_email": "c"}) == [
        ("wrong_case", "OWNER")
    ]


def test_canonical_key_wins_over_variants_also_present():
    assert kinds(OWNER, {"Owner": "a", "owner": "b"}) == []


def test_case_folding_is_ascii_only():
    # "Ö" is not folded: ÖWNER is not a spelling of Owner; ÄPP is not äpp.
    assert kinds(OWNER, {"ÖWNER": "x"}) == [("missing", None)]
    app = rule("check: required_key, key: äpp")
    assert kinds(app, {"ÄPP": "x"}) == [("missing", None)]
    assert kinds(app, {"äPP": "x"}) == [("wrong_case", "äPP")]


def test_missing_key():
    (violation,) = evaluate_resource(OWNER, view({"Team": "x"}))
    assert (violation.kind, violation.key, violation.found_key) == ("missing", "Owner", None)
    assert suggested_fix(violation) == "add tag Owner"


ENV = rule("check: allowed_values, key: Environment, aliases: [env], values: {list: [prod, dev]}")


def test_allowed_values_from_a_list_are_case_sensitive():
    assert kinds(ENV, {"Environment": "prod"}) == []
    (violation,) = evaluate_resource(ENV, view({"Environment": "Prod"}))
    assert (violation.kind, violation.value) == ("bad_value", "Prod")
    assert violation.expected == "one of prod, dev"
    assert suggested_fix(violation) == "change the value of Environment to one of prod, dev"


def test_allowed_values_say_nothing_about_an_absent_key():
    assert kinds(ENV, {}) == []


def test_allowed_values_under_another_spelling_is_wrong_case():
    assert kinds(ENV, {"env": "prod"}) == [("wrong_case", "env")]
    assert kinds(ENV, {"env": "nonsense"}) == [("wrong_case", "env")]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("ana@example.com", True),
        ("@example.com", True),
        ("ana@example.com.evil", False),
        ("ana@EXAMPLE.COM", False),
        ("ana@sub.example.com", True),
    ],
)
def test_glob_values_match_the_whole_value(value, ok):
    owner = rule("check: allowed_values, key: Owner, values: {glob: '*@*example.com'}")
    assert (evaluate_resource(owner, view({"Owner": value})) == []) is ok


def test_glob_question_mark_is_exactly_one_character():
    r = rule("check: allowed_values, key: Tier, values: {glob: 't?-1.*'}")
    assert kinds(r, {"Tier": "t1-1."}) == []
    assert kinds(r, {"Tier": "tx-1.large"}) == []
    assert kinds(r, {"Tier": "t-1.x"}) == [("bad_value", "Tier")]
    assert kinds(r, {"Tier": "t12-1.x"}) == [("bad_value", "Tier")]
    assert kinds(r, {"Tier": "t1-1x"}) == [("bad_value", "Tier")]  # "." is literal


def test_glob_characters_a_tag_value_cannot_hold_are_refused():
    with pytest.raises(SpecError, match="holds characters a tag value cannot"):
        rule("check: allowed_values, key: Tier, values: {glob: 't[12]'}")


def test_regex_values_must_match_the_whole_value():
    cc = rule(r"check: allowed_values, key: CostCenter, values: {regex: 'CC-[0-9]{4}'}")
    assert kinds(cc, {"CostCenter": "CC-1234"}) == []
    assert kinds(cc, {"CostCenter": "CC-12345"}) == [("bad_value", "CostCenter")]
    assert kinds(cc, {"CostCenter": "xCC-1234"}) == [("bad_value", "CostCenter")]


def test_conditional_rule_applies_only_when_its_condition_holds():
    r = rule(
        "check: required_key, key: DataClassification, when: {key: Environment, values: [prod]}"
    )
    assert kinds(r, {"Environment": "prod"}) == [("missing", None)]
    assert kinds(r, {"Environment": "prod", "DataClassification": "internal"}) == []
    assert kinds(r, {"Environment": "dev"}) == []
    # The condition reads the exact spelling only; environment-* rules report env=prod.
    assert kinds(r, {"environment": "prod"}) == []
    any_value = rule("check: required_key, key: Owner, when: {key: PHI}")
    assert kinds(any_value, {"PHI": ""}) == [("missing", None)]
    assert not applies(any_value, view({}))


def test_prohibited_keys_match_globs_in_any_case_and_never_echo_the_value():
    r = rule("check: prohibited_key, key: '*password*', aliases: ['*secret*']")
    (violation,) = evaluate_resource(r, view({"DB_PASSWORD": "hunter2", "Owner": "a"}))
    assert (violation.kind, violation.found_key, violation.value) == (
        "prohibited",
        "DB_PASSWORD",
        None,
    )
    assert "hunter2" not in violation.message
    assert suggested_fix(violation) == "remove tag DB_PASSWORD"
    assert kinds(r, {"ClientSecret": "x", "admin_password": "y"}) == [
        ("prohibited", "ClientSecret")
    ]
    assert kinds(r, {"Owner": "a", "PassWordless": "b"}) == [("prohibited", "PassWordless")]
    assert kinds(r, {"Owner": "a"}) == []


def test_max_tags_counts_user_tags_only():
    r = rule("check: max_tags, max: 3")
    tags = {"a": "1", "b": "2", "c": "3", "aws:cloudformation:stack-name": "s", "AWS:x": "y"}
    assert user_tag_count(tags) == 3
    assert evaluate_resource(r, view(tags)) == []
    (violation,) = evaluate_resource(r, view({**tags, "d": "4", "e": "5"}))
    assert (violation.kind, violation.count, violation.limit) == ("too_many_tags", 5, 3)
    assert suggested_fix(violation) == "remove 2 user tags (at most 3)"


def test_max_tags_defaults_to_the_aws_limit():
    r = rule("check: max_tags")
    assert r.max == 50
    assert evaluate_resource(r, view({f"k{i}": "" for i in range(50)})) == []
    assert kinds(r, {f"k{i}": "" for i in range(51)}) == [("too_many_tags", None)]


@pytest.mark.parametrize(
    ("scope", "kw", "expected"),
    [
        ("{resource_types: [s3:bucket]}", {}, False),
        ("{resource_types: [s3:bucket]}", {"resource_type": "s3:bucket"}, True),
        ("{resource_types: ['ec2:*']}", {"resource_type": "ec2:volume"}, True),
        ("{resource_types: ['ec2:*']}", {"resource_type": "eks:cluster"}, False),
        ("{accounts: ['222222222222']}", {}, False),
        ("{accounts: ['111111111111']}", {}, True),
        ("{regions: [us-east-1, global]}", {}, False),
        ("{regions: [us-east-1, global]}", {"region": "global"}, True),
        ("{teams: [payments]}", {"teams": ["platform"]}, False),
        ("{teams: [payments]}", {"teams": ["platform", "payments"]}, True),
        ("{teams: [payments]}", {}, False),
        ("{tag_selector: {key: Managed, values: ['true']}}", {}, False),
    ],
)
def test_scope(scope, kw, expected):
    r = rule(f"check: required_key, key: Owner, scope: {scope}")
    assert in_scope(r, view({}, **kw)) is expected
    assert bool(evaluate_resource(r, view({}, **kw))) is expected


def test_scope_by_tag_selector():
    r = rule("check: required_key, key: Owner, scope: {tag_selector: {key: Managed}}")
    assert kinds(r, {"Managed": "terraform"}) == [("missing", None)]
    assert kinds(r, {"managed": "terraform"}) == []


@pytest.fixture
def untaggable_type():
    class Untaggable(Scanner):
        resource_type = "test:untaggable"
        service = "test"
        label = "Untaggable"
        tagging = "none"

        def pages(self, ctx):  # pragma: no cover - never scanned
            yield []

    _registry[Untaggable.resource_type] = Untaggable
    yield Untaggable.resource_type
    del _registry[Untaggable.resource_type]


def test_untaggable_types_are_never_in_scope(untaggable_type):
    assert evaluate_resource(OWNER, view({}, resource_type=untaggable_type)) == []
    assert kinds(OWNER, {}, resource_type="ec2:instance") == [("missing", None)]
    with pytest.raises(SpecError, match="cannot be tagged"):
        rule(f"check: required_key, key: O, scope: {{resource_types: [{untaggable_type}]}}")


def test_evaluation_is_deterministic_whatever_the_tag_order():
    r = rule("check: prohibited_key, key: '*secret*'")
    a = evaluate_resource(r, view({"b_secret": "1", "a_secret": "2"}))
    b = evaluate_resource(r, view({"a_secret": "2", "b_secret": "1"}))
    assert a == b and a[0].found_key == "a_secret"
