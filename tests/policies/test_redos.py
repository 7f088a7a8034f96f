"""Globs and regexes that make a backtracking engine take exponential time (issue 13).

Every entry point that takes a pattern refuses the dangerous shapes with a message naming the
problem (the API, the rule editor, the YAML import), and every place that matches one (the
reference evaluator, both policy engines, the CI check) decides in linear time, also for a
rule saved before the shapes were refused. No test measures time: each dangerous match runs
under `generous_limit`, an alarm at 20 s, where the linear engine takes milliseconds and
Python's `re` takes hours (the alarm interrupts `re`, so before the fix these tests fail
rather than hang).
"""

from __future__ import annotations

import contextlib
import json
import re
import signal

import pytest
from django.test import Client

from policies import evaluation
from policies.aws import imported as aws_imported
from policies.engine import matching
from policies.engine.reference import ResourceView, evaluate_resource
from policies.engine.spec import RuleSpec, ValueMatcher, vet_regex
from policies.models import Finding, Rule
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.policies.test_ci_endpoint import _ci_token
from tests.policies.test_rules import api, make_resources, rules_of

STARS = "*" * 150 + "x"


@contextlib.contextmanager
def generous_limit(seconds: int = 20):
    def _fail(signum, frame):
        raise AssertionError(f"still matching after {seconds} s: a backtracking engine ran")

    previous = signal.signal(signal.SIGALRM, _fail)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# (kind, pattern, value, does the value match): the patterns as a rule saved before vetting
# refused them would hold them; expected results are re.fullmatch's (it would take hours).
PATHOLOGICAL = [
    ("glob", STARS, "a" * 5000, False),
    ("glob", STARS, "a" * 5000 + "x", True),
    ("glob", STARS, "a" * 21, False),
    ("glob", "*a" * 40 + "*b", "a" * 3000, False),
    ("glob", "?*" * 60 + "x", "ab" * 2000, False),
    ("regex", "^(a|aa)+$", "a" * 60 + "b", False),
    ("regex", "^(a|aa)+$", "a" * 60, True),
    ("regex", "(a+)+$", "a" * 60 + "!", False),
    ("regex", "(a|a)*", "a" * 60 + "b", False),
    ("regex", "(.*)*x", "a" * 5000, False),
    ("regex", "(.*)*x", "a" * 5000 + "x", True),
    ("regex", ".*" * 60 + "x", "a" * 200, False),
    ("regex", "a?" * 40 + "a" * 40, "a" * 40, True),
    ("regex", "(?:[a-z]+){0,20}-", "a" * 200, False),
    # Past the linear engine's largest automaton, or syntax it does not run: no value matches
    # (the SQL engine says the same; see test_stored_rules_with_refused_patterns_...).
    ("regex", "^(a{1,100}){1,100}b$", "a" * 60 + "b", False),
    ("regex", "a*+b", "aab", False),
]


@pytest.mark.parametrize(("kind", "pattern", "value", "expected"), PATHOLOGICAL)
def test_the_evaluator_decides_pathological_patterns_at_once(kind, pattern, value, expected):
    rule = RuleSpec(
        id="r",
        title="r",
        check="allowed_values",
        key="Env",
        values=ValueMatcher(kind, pattern=pattern),
    )
    with generous_limit():
        assert rule.values.matches(value) is expected
        violations = evaluate_resource(rule, ResourceView("ec2:instance", {"Env": value}))
    assert [v.kind for v in violations] == ([] if expected else ["bad_value"])


def test_prohibited_key_globs_are_linear_too():
    rule = RuleSpec(
        id="r", title="r", check="prohibited_key", key="*" * 127 + "x", aliases=("*a" * 60 + "*b",)
    )
    with generous_limit():
        assert evaluate_resource(rule, ResourceView("ec2:instance", {"A" * 128: "v"})) == []
        [found] = evaluate_resource(rule, ResourceView("ec2:instance", {"A" * 127 + "B": "v"}))
    assert found.found_key == "A" * 127 + "B"


def test_the_linear_engine_agrees_with_re_on_the_shapes_it_replaces():

    shapes = ["(a|ab)(c|bcd)(d*)", "a$\n?", "^a|b$", "(?:a|b)*?c", "[^a]+", "x.y", "[]a]+$"]
    texts = ["", "a", "abcd", "abcdd", "a\n", "b\n", "bbc", "x\ny", "xay", "]a]\n", "\n"]
    for shape in shapes:
        for text in texts:
            assert matching.regex_fullmatch(shape, text) is (
                re.fullmatch(shape, text) is not None
            ), (shape, text)


# --- refused wherever a rule is written ---------------------------------------------------------

REFUSED = [
    ("^(a|aa)+$", "alternation inside a repeat"),
    ("^(a{1,100}){1,100}b$", "nested repeats"),
    ("(a+)+$", "nested unbounded"),
    ("(.*)*", "nested unbounded"),
    ("(a|a)*", "alternation inside a repeat"),
    (r"(a)\1", "backreferences"),
    ("(?=a)a", "only plain"),
    ("a*+", "possessive"),
    ("a" * 201, "longer than 200"),
    ("[0-9]{5000}", "repeat counts above 1000"),
]


def _rule_yaml(values: str) -> str:
    return (
        "version: 1\nrules:\n  - id: env\n    title: Env\n    check: allowed_values\n"
        f"    key: Env\n    values: {values}\n"
    )


@pytest.mark.parametrize(("pattern", "fragment"), REFUSED)
def test_dangerous_regexes_are_a_400_naming_the_problem_everywhere(org, admin, pattern, fragment):
    assert fragment in (vet_regex(pattern) or "")
    client = client_for(admin)
    spec = {"id": "env", "title": "Env", "check": "allowed_values", "key": "Env"}
    spec["values"] = {"regex": pattern}
    created = client.post(api(org, "rules/"), {"spec": spec}, content_type="application/json")
    assert created.status_code == 400, created.content
    assert fragment in json.dumps(created.json())
    text = _rule_yaml(json.dumps({"regex": pattern}))
    imported = client.post(api(org, "import/"), {"yaml": text}, content_type="application/json")
    assert imported.status_code == 400 and fragment in json.dumps(imported.json())
    editor = client.post(f"/o/{org.slug}/policies/rules/new/", {"yaml": text})
    assert editor.status_code == 400
    assert fragment in editor.content.decode()
    page_import = client.post(f"/o/{org.slug}/policies/import/", {"yaml": text, "mode": "merge"})
    assert page_import.status_code == 400 and fragment in page_import.content.decode()
    assert rules_of(org) == {}


def test_an_overlong_glob_is_refused_and_a_long_star_run_is_accepted(org, admin):
    client = client_for(admin)
    long = client.post(
        api(org, "import/"),
        {"yaml": _rule_yaml(json.dumps({"glob": "*" * 300 + "x"}))},
        content_type="application/json",
    )
    assert long.status_code == 400 and "at most 256 characters" in json.dumps(long.json())
    with generous_limit():
        stars = client.post(
            api(org, "import/"),
            {"yaml": _rule_yaml(json.dumps({"glob": STARS}))},
            content_type="application/json",
        )
    assert stars.status_code == 200, stars.content


# --- evaluation, CI check and AWS import with such patterns -------------------------------------

LEGACY = {
    "stars": {"glob": STARS},
    "alternation": {"regex": "^(a|aa)+$"},
    "nested": {"regex": "^(a{1,100}){1,100}b$"},
    "possessive": {"regex": "a*+b"},
}


def _save_legacy_rules(organization) -> None:
    """Rules as they were saved before vet_regex refused their patterns (straight into the
    table, as an older version would have written them)."""
    with tenant_scope(organization):
        for name, values in LEGACY.items():
            Rule.objects.create(
                organization=organization,
                rule_id=name,
                spec={"id": name, "title": name, "check": "allowed_values", "key": "Env",
                      "values": values, "severity": "medium", "enforcement": "enforced"},
            )  # fmt: skip


def test_stored_rules_with_refused_patterns_are_evaluated_by_the_sql_engine(org):

    resources = make_resources(org, tags_list=[{"Env": "a" * 60 + "b"}, {"Env": "a" * 40 + "x"}])
    _save_legacy_rules(org)
    with tenant_scope(org), generous_limit():
        rules = list(Rule.objects.for_org(org))
        evaluation.evaluate_rules(org, rules)
        flagged = {
            (f.rule.rule_id, f.resource_id)
            for f in Finding.objects.for_org(org).filter(status="open").select_related("rule")
        }
    first, second = (r.pk for r in resources)
    assert flagged == {
        ("stars", first),  # ends in b, not x
        ("alternation", first),
        ("alternation", second),
        ("nested", first),  # past the largest automaton: matches no value, in both engines
        ("nested", second),
        ("possessive", first),  # PostgreSQL cannot even compile it: matches no value
        ("possessive", second),
    }


def _template(value: str) -> bytes:
    return json.dumps(
        {
            "Resources": {
                "Bucket": {
                    "Type": "AWS::S3::Bucket",
                    "Properties": {"Tags": [{"Key": "Env", "Value": value}]},
                }
            }
        }
    ).encode()


def _ci_check(client, org, value: str):
    return client.post(
        f"/api/v1/o/{org.slug}/policies/ci-check/?source=cloudformation",
        _template(value),
        content_type="application/json",
    )


def test_the_ci_check_decides_pathological_rules_at_once(org, owner):
    _save_legacy_rules(org)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {_ci_token(org, owner)}")
    with generous_limit():
        response = _ci_check(client, org, "a" * 20 + "b")  # 21 characters
    assert response.status_code == 200, response.content
    [resource] = response.json()["resources"]
    assert sorted(v["rule_id"] for v in resource["violations"]) == sorted(LEGACY)
    with generous_limit():
        passing = _ci_check(client, org, "a" * 5000 + "x")
    [resource] = passing.json()["resources"]
    assert "stars" not in {v["rule_id"] for v in resource["violations"]}


def test_a_ci_check_past_its_time_limit_is_a_422_not_a_hung_worker(org, owner, settings):
    _save_legacy_rules(org)
    settings.TAGSENSE_CI_CHECK_SECONDS = -1  # the deadline has passed before the first match
    client = Client(HTTP_AUTHORIZATION=f"Bearer {_ci_token(org, owner)}")
    response = _ci_check(client, org, "a" * 21)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert "took more than -1 seconds" in response.json()["detail"]


def test_time_limit_stops_a_long_match():
    with pytest.raises(matching.EvaluationTimeout), matching.time_limit(-1):
        matching.regex_fullmatch("[a-z]*", "a" * 10_000)
    assert matching.regex_fullmatch("[a-z]*", "a" * 10_000)  # no limit outside the block


def test_aws_tag_policy_wildcards_give_linear_matchers(org, admin):

    values = tuple(f"team{i}-*-svc" for i in range(20)) + ("*",)
    matcher = aws_imported.value_matcher(values)
    with generous_limit():
        assert matcher.matches("team3-" + "x" * 5000 + "-svc")
        assert aws_imported.value_matcher(values[:-1]).matches("team3-" + "-" * 5000) is False
        assert aws_imported.value_matcher(("*x",)).matches("a" * 5000) is False
