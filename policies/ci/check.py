"""The CI check itself: planned resources (a Terraform plan or a CloudFormation template)
evaluated against tag rules with the reference evaluator (policies/engine/reference.py).

A planned resource is seen as `ResourceView(type, tags)`: its TagSense type when TagSense knows
it (so a rule scoped to `ec2:instance` applies to `aws_instance`), else its Terraform or
CloudFormation type (so rules for every type still apply to it). Account, region and teams are
unknown before apply: rules scoped by them do not apply in CI.

Values known only after apply:
- a key whose value is unknown counts as present (a required key is satisfied), and a rule on
  its allowed values cannot be decided: it gives an advisory `unknown-value` violation instead
  of a failure;
- a resource whose tag keys are unknown (the plugin SDK makes the whole map unknown as soon as
  one value is; default tags known only after apply) cannot be checked at all: one advisory
  `unknown-value` violation says so (the next scan will check it).

Every other key is judged: a plugin-framework resource with one unknown value still fails on a
missing, wrongly spelt or badly valued known key (policies/ci/plan.py decides what is known).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from policies.ci.plan import UNKNOWN_DEFAULTS, UNKNOWN_OWN, PlannedResource
from policies.engine.matching import check_deadline
from policies.engine.reference import ResourceView, evaluate_resource, suggested_fix
from policies.engine.spec import RuleSpec

UNKNOWN = "\x00(known after apply)"  # a placeholder no real tag value can equal
WHOLE_MAP_UNKNOWN = "tags-unknown"


@dataclass(frozen=True)
class CiViolation:
    """A violation in the shape of policies.ci.report.ReportedViolation."""

    rule_id: str
    severity: str
    enforced: bool
    kind: str
    message: str
    key: str | None
    fix: str = ""


def check(
    planned: Sequence[PlannedResource], rules: Sequence[RuleSpec]
) -> list[tuple[PlannedResource, list[CiViolation]]]:
    """Every planned resource with its violations (none for resources that are not checked:
    deletions, data sources, untaggable types). Inside policies.engine.matching.time_limit, raises
    EvaluationTimeout once the limit has passed."""
    results = []
    for resource in planned:
        results.append((resource, _violations(resource, rules) if resource.checked else []))
    return results


def _violations(resource: PlannedResource, rules: Sequence[RuleSpec]) -> list[CiViolation]:
    resource_type = resource.resource_type or resource.tf_type
    if resource.tags_unknown:
        undetermined = CiViolation(
            rule_id=WHOLE_MAP_UNKNOWN,
            severity="low",
            enforced=False,
            kind="unknown-value",
            message=f"{resource.unknown_reason or UNKNOWN_OWN}: the next scan checks them",
            key=None,
        )
        if resource.unknown_reason != UNKNOWN_DEFAULTS or not resource.tags:
            return [undetermined]
        # Only the provider's defaults are unknown: the resource's own tags are known, and an
        # own tag wins over a default of the same key, so their values are judged now. Which
        # keys are missing (a default may add them) waits for the scan.
        own = set(resource.tags)
        return [undetermined] + [
            v
            for v in _judged(resource_type, resource.tags, set(), rules)
            if v.kind == "bad_value" and v.key in own
        ]
    return _judged(resource_type, resource.tags, set(resource.unknown_tag_keys), rules)


def _judged(
    resource_type: str, known: dict[str, str], unknown: set[str], rules: Sequence[RuleSpec]
) -> list[CiViolation]:
    tags = {**known, **{key: UNKNOWN for key in unknown}}
    view = ResourceView(resource_type=resource_type, tags=tags)
    found = []
    for rule in rules:
        check_deadline()  # a plan of many resources stops at the deadline too, not only a value
        for violation in evaluate_resource(rule, view):
            enforced = rule.enforcement == "enforced"
            kind: str = violation.kind  # or "unknown-value", the CI check's own kind
            message = violation.message
            if violation.found_key in unknown and kind == "bad_value":
                enforced = False
                kind = "unknown-value"
                message = (
                    f"the value of {violation.found_key} is known only after apply: rule "
                    f"{rule.id} is checked at the next scan"
                )
            found.append(
                CiViolation(
                    rule_id=rule.id,
                    severity=rule.severity,
                    enforced=enforced,
                    kind=kind,
                    message=message,
                    key=violation.key or violation.found_key,
                    fix="" if kind == "unknown-value" else suggested_fix(violation, rule.check),
                )
            )
    return found
