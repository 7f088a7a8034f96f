"""JSON and JUnit rendering of violations, and the exit code."""

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from policies.ci.plan import PlannedResource
from policies.ci.report import build_report, build_response, exit_code, render_junit


@dataclass
class V:  # anything with these attributes is a violation (report.Violation)
    rule_id: str
    enforced: bool
    message: str
    key: str | None = "Owner"
    severity: str = "high"
    kind: str = "missing"


def _r(address, skip="", **kw):
    return PlannedResource(
        address=address,
        module_address="",
        tf_type="aws_instance",
        resource_type="ec2:instance",
        taggable=not skip,
        action="delete" if skip == "deleted" else "create",
        skip_reason=skip,
        **kw,
    )


def _parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)  # noqa: S314 (our own output, as a CI server would read it)


RESULTS = [
    (_r("aws_instance.a", tags={"Owner": "x"}), []),
    (
        _r("aws_instance.b"),
        [V("owner", True, "Owner is missing"), V("cost", False, "no CostCenter")],
    ),
    (_r("aws_instance.gone", skip="deleted"), []),
]
RULES = ["owner", "cost"]


def test_exit_code_counts_only_enforced_violations():
    assert exit_code(RESULTS) == 1
    assert exit_code([(RESULTS[1][0], [V("cost", False, "advisory")])]) == 0
    assert exit_code([]) == 0


def test_json_report():
    report = build_report(RESULTS, RULES, source="terraform")
    assert report["summary"] == {
        "resources": 3,
        "checked": 2,
        "skipped": 1,
        "violations": 2,
        "enforced_violations": 1,
    }
    assert report["exit_code"] == 1
    b = report["resources"][1]
    assert b["violations"][0] == {
        "rule_id": "owner",
        "severity": "high",
        "enforced": True,
        "kind": "missing",
        "message": "Owner is missing",
        "key": "Owner",
    }
    assert report["resources"][2]["skip_reason"] == "deleted"


def test_junit_one_testcase_per_checked_resource_and_rule():
    """Checked resources: one testcase per rule. A resource that is not checked: one skipped
    testcase, not one per rule (a plan's many deletions would otherwise swamp the report)."""
    root = _parse(render_junit(build_report(RESULTS, RULES)))
    assert root.tag == "testsuites"
    (suite,) = root
    assert {k: suite.get(k) for k in ("tests", "failures", "skipped", "errors")} == {
        "tests": "5",
        "failures": "1",
        "skipped": "1",
        "errors": "0",
    }
    cases = {(c.get("classname"), c.get("name")): c for c in suite.iter("testcase")}
    assert len(cases) == 5
    failure = cases[("aws_instance.b", "owner")].find("failure")
    assert failure.get("message") == "Owner is missing"
    assert failure.get("type") == "missing"
    # Advisory: the case passes, the message is in system-out.
    advisory = cases[("aws_instance.b", "cost")]
    assert advisory.find("failure") is None
    assert (
        "advisory: [high] cost missing key=Owner: no CostCenter" in advisory.find("system-out").text
    )
    assert cases[("aws_instance.gone", "not checked")].find("skipped").get("message") == "deleted"
    assert list(cases[("aws_instance.a", "owner")]) == []  # passed


def test_junit_survives_control_characters_and_markup():
    results = [(_r("aws_instance.x"), [V("r<1>", True, 'bad "value" \x00\x1b & more')])]
    root = _parse(render_junit(build_report(results)))
    failure = root.find("testsuite/testcase/failure")
    assert failure.get("message") == 'bad "value" \ufffd\ufffd & more'
    assert root.find("testsuite/testcase").get("name") == "r<1>"


def test_junit_without_rules_has_one_case_per_resource():
    root = _parse(render_junit(build_report(RESULTS[:1])))
    assert [c.get("name") for c in root.iter("testcase")] == ["tag-policy"]


def test_response_carries_junit_of_the_same_report():
    response = build_response(RESULTS, RULES)
    assert _parse(response["junit"]).find("testsuite").get("failures") == "1"
