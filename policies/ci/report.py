"""Violations of planned resources as the CI check's JSON answer and as JUnit XML.

The rule evaluator is not part of this module: anything with the attributes of `Violation`
plugs in. The JSON built here is the response contract of
`POST /api/v1/o/<org>/policies/ci-check/` (docs/ci.md); `render_junit` works from that JSON,
so the server and any consumer of a saved answer render the same XML.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol
from xml.sax.saxutils import escape, quoteattr

from policies.ci.plan import PlannedResource

REPORT_VERSION = 1
NO_RULE = "tag-policy"  # testcase name when no rule applies to the plan at all


class ReportedViolation(Protocol):
    rule_id: str  # stable id of the rule that is broken
    severity: str  # "low" | "medium" | "high" | "critical"
    enforced: bool  # True: fails the check (exit code 1); False: advisory
    kind: str  # "missing" | "invalid-value" | "unknown-value" | ...
    message: str  # one sentence for a person
    key: str | None  # the tag key concerned, if any


Result = tuple[PlannedResource, Sequence[ReportedViolation]]


def exit_code(results: Iterable[Result]) -> int:
    """1 when any enforced violation, else 0."""
    return 1 if any(v.enforced for _, violations in results for v in violations) else 0


def build_report(
    results: Sequence[Result], rules: Sequence[str] = (), source: str = ""
) -> dict[str, Any]:
    """The JSON answer: a summary, the exit code, and every resource with its violations.

    `rules` are the ids of the rules evaluated, so JUnit can show one passing testcase per
    resource and rule; rules that only appear in violations are added.
    """
    resources = []
    violations = enforced = checked = 0
    for resource, found in results:
        checked += resource.checked
        violations += len(found)
        enforced += sum(1 for v in found if v.enforced)
        resources.append(
            {
                "address": resource.address,
                "module_address": resource.module_address,
                "type": resource.tf_type,
                "resource_type": resource.resource_type,
                "action": resource.action,
                "taggable": resource.taggable,
                "checked": resource.checked,
                "skip_reason": resource.skip_reason,
                "tags": resource.tags,
                "unknown_tag_keys": list(resource.unknown_tag_keys),
                "tags_unknown": resource.tags_unknown,
                "unknown_reason": resource.unknown_reason,
                "violations": [
                    {
                        "rule_id": v.rule_id,
                        "severity": v.severity,
                        "enforced": bool(v.enforced),
                        "kind": v.kind,
                        "message": v.message,
                        "key": v.key,
                    }
                    for v in found
                ],
            }
        )
    rule_ids = list(dict.fromkeys([*rules, *(v.rule_id for _, f in results for v in f)]))
    return {
        "version": REPORT_VERSION,
        "source": source,
        "exit_code": 1 if enforced else 0,
        "passed": not enforced,
        "summary": {
            "resources": len(resources),
            "checked": checked,
            "skipped": len(resources) - checked,
            "violations": violations,
            "enforced_violations": enforced,
        },
        "rules": rule_ids,
        "resources": resources,
    }


def build_response(
    results: Sequence[Result], rules: Sequence[str] = (), source: str = ""
) -> dict[str, Any]:
    """The endpoint's 200 body: the report plus its JUnit rendering under "junit"."""
    report = build_report(results, rules, source)
    report["junit"] = render_junit(report)
    return report


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _text(value: Any) -> str:
    """XML 1.0 cannot carry control characters, even escaped: they become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", str(value))


def render_junit(report: dict[str, Any]) -> str:
    """One testcase per checked resource and rule: a failure per enforced violation, advisory
    ones in system-out (the case passes); one skipped testcase for a resource that is not
    checked (deleted, a data source, untaggable). Written as text, not through ElementTree:
    a 5,000-resource plan makes some 100,000 testcases."""
    rules = report.get("rules") or [NO_RULE]
    cases: list[str] = []
    tests = failures = skipped = 0
    for resource in report["resources"]:
        classname = _attr(resource["address"])
        if not resource["checked"]:
            tests += 1
            skipped += 1
            cases.append(
                f'<testcase classname={classname} name="not checked">'
                f"<skipped message={_attr(resource['skip_reason'])} /></testcase>"
            )
            continue
        by_rule: dict[str, list[dict[str, Any]]] = {}
        for violation in resource["violations"]:
            by_rule.setdefault(violation["rule_id"], []).append(violation)
        for rule_id in rules:
            tests += 1
            found = by_rule.get(rule_id)
            if not found:
                cases.append(f"<testcase classname={classname} name={_attr(rule_id)} />")
                continue
            body = []
            hard = [v for v in found if v["enforced"]]
            soft = [v for v in found if not v["enforced"]]
            if hard:
                failures += 1
                message = _attr("; ".join(v["message"] for v in hard))
                text = escape(_text("\n".join(_line(v) for v in hard)))
                body.append(
                    f"<failure type={_attr(hard[0]['kind'])} message={message}>{text}</failure>"
                )
            if soft:
                text = escape(_text("\n".join("advisory: " + _line(v) for v in soft)))
                body.append(f"<system-out>{text}</system-out>")
            cases.append(
                f"<testcase classname={classname} name={_attr(rule_id)}>{''.join(body)}</testcase>"
            )
    counts = f'tests="{tests}" failures="{failures}" errors="0" skipped="{skipped}"'
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        f'<testsuites name="tagsense-ci" {counts}>'
        f'<testsuite name="tagsense-ci" {counts}>{"".join(cases)}</testsuite></testsuites>\n'
    )


def _attr(value: Any) -> str:
    return quoteattr(_text(value))


def _line(v: dict[str, Any]) -> str:
    key = f" key={v['key']}" if v.get("key") else ""
    return f"[{v['severity']}] {v['rule_id']} {v['kind']}{key}: {v['message']}"
