"""The tools the model may call, run with the asking member's permissions.

Every read goes through restrict(membership): an editor or viewer limited to their teams gets
only their teams' accounts' resources and findings, and another organization's never (row-level
security is the second wall). A resource named by ARN that the member may not see is answered
exactly like one that does not exist. Unknown tools, unknown or badly typed arguments come back
as `error` (text the model can read and correct), never as an exception.

`content` is compact JSON for the model, at most MAX_ROWS rows and MAX_CONTENT characters;
`citations` link the portal pages of the resources, rules, findings and controls it used.
Tag keys and values in it are cleaned and secret-looking values redacted (assistant.untrusted).

Tag filters compare keys (and values) ignoring ASCII case by default, as the policies treat
case variants (policies.engine.spec.fold: Owner, owner and OWNER are one key); `key_case: "exact"`
asks for the spelling as given. So "which production instances lack an Owner tag?" is one
call: {"resource_type": "ec2:instance", "tag": "Environment=prod", "missing_tag": "Owner"}.

Assumes the caller runs inside the membership's organization's tenant scope.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from inventory import graph
from inventory.access import hidden_arns
from inventory.history import timeline
from inventory.models import Resource, TagEvent
from policies.engine.spec import fold
from policies.models import Finding, Framework, Rule
from policies.scoring import scores
from policies.services import filter_findings, fix_for
from tagsense.jsonq import JsonKeyIs

from . import untrusted
from .backends.base import ToolCall, ToolSpec
from .grounding import org_url

if TYPE_CHECKING:
    from accounts.models import Membership

MAX_ROWS = 50
DEFAULT_ROWS = 20
MAX_CONTENT = 12_000


@dataclass(frozen=True)
class Citation:
    label: str
    url: str


@dataclass
class ToolResult:
    content: str
    citations: list[Citation] = field(default_factory=list)
    error: str | None = None


class ToolError(ValueError):
    """An argument the tool cannot use: its message goes back to the model."""


def _limit(default: int = DEFAULT_ROWS) -> dict[str, Any]:
    return {
        "type": "integer",
        "minimum": 1,
        "maximum": MAX_ROWS,
        "description": f"Rows to return (default {default}, at most {MAX_ROWS}).",
    }


_KEY_CASE = {
    "type": "string",
    "enum": ["any", "exact"],
    "description": "any (default): tag keys and values match ignoring ASCII case, as the "
    "policies treat case variants; exact: the spelling as given.",
}
_ARN = {"type": "string", "maxLength": 2048, "description": "The resource's ARN."}
_ACCOUNT = {"type": "string", "pattern": r"^\d{12}$", "description": "12-digit AWS account id."}
_TYPE = {
    "type": "string",
    "maxLength": 64,
    "description": "Resource type as TagSense names it, e.g. ec2:instance, s3:bucket, "
    "rds:db, lambda:function; 'ec2:*' for every type of a service.",
}


def _schema(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        name="query_inventory",
        description="Search the live resources the user may see. Filters combine (AND). "
        "Example: production instances without an Owner tag: resource_type=ec2:instance, "
        "tag=Environment=prod, missing_tag=Owner. Returns the total and up to `limit` "
        "resources with their tags and portal links.",
        parameters=_schema(
            {
                "resource_type": _TYPE,
                "account_id": _ACCOUNT,
                "region": {"type": "string", "maxLength": 32, "description": "e.g. eu-west-1"},
                "tag": {
                    "type": "string",
                    "maxLength": 400,
                    "description": "Key=value: resources whose tag Key has this value.",
                },
                "has_tag": {
                    "type": "string",
                    "maxLength": 128,
                    "description": "Resources carrying this tag key.",
                },
                "missing_tag": {
                    "type": "string",
                    "maxLength": 128,
                    "description": "Resources without this tag key (in any spelling, unless "
                    "key_case=exact).",
                },
                "untagged": {"type": "boolean", "description": "Only resources with no tag."},
                "text": {
                    "type": "string",
                    "maxLength": 200,
                    "description": "Part of the name, id or ARN.",
                },
                "key_case": _KEY_CASE,
                "limit": _limit(),
            }
        ),
    ),
    ToolSpec(
        name="list_findings",
        description="Findings (a tag rule failing on a resource) among the accounts the user "
        "may see, with the suggested fix of each. Default status: open.",
        parameters=_schema(
            {
                "rule_id": {"type": "string", "maxLength": 64},
                "status": {"type": "string", "enum": ["open", "resolved", "exempted"]},
                "severity": {"type": "string", "enum": ["high", "medium", "low"]},
                "account_id": _ACCOUNT,
                "resource_type": _TYPE,
                "key": {
                    "type": "string",
                    "maxLength": 128,
                    "description": "The rule's tag key or the key found on the resource.",
                },
                "limit": _limit(),
            }
        ),
    ),
    ToolSpec(
        name="blast_radius",
        description="What depends on a resource (direction=dependents, the default), what it "
        "relies on (dependencies) or both, up to `depth` hops, nearest first.",
        parameters=_schema(
            {
                "arn": _ARN,
                "depth": {"type": "integer", "minimum": 1, "maximum": 6},
                "direction": {"type": "string", "enum": ["dependents", "dependencies", "both"]},
                "limit": _limit(),
            },
            required=("arn",),
        ),
    ),
    ToolSpec(
        name="tag_history",
        description="A resource's tag changes, newest first, ending with its first sighting.",
        parameters=_schema({"arn": _ARN, "limit": _limit()}, required=("arn",)),
    ),
    ToolSpec(
        name="compliance_score",
        description="Compliance scores over the accounts the user may see: the organization's "
        "and each framework's (no argument), one framework's controls (framework), or one "
        "control with its failing findings (framework and control).",
        parameters=_schema(
            {
                "framework": {"type": "string", "maxLength": 64, "description": "Its slug."},
                "control": {
                    "type": "string",
                    "maxLength": 64,
                    "description": "A control id of that framework, e.g. CC6.1.",
                },
                "limit": _limit(),
            }
        ),
    ),
)

_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def validate(arguments: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """What is wrong with `arguments` for the schemas above (their small subset of JSON
    Schema: object of string, integer and boolean properties with enum, pattern, maxLength,
    minimum, maximum, required), or None."""
    properties = schema["properties"]
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        return (
            f"unknown argument(s) {', '.join(unknown)}; "
            f"this tool takes: {', '.join(properties) or 'none'}"
        )
    for name in schema.get("required", ()):
        if arguments.get(name) in (None, ""):
            return f"argument {name} is required"
    for name, value in arguments.items():
        if value is None:
            continue
        rule = properties[name]
        if not _TYPES[rule["type"]](value):
            article = "an" if rule["type"] == "integer" else "a"
            return f"argument {name} must be {article} {rule['type']}"
        if "enum" in rule and value not in rule["enum"]:
            return f"argument {name} must be one of {', '.join(rule['enum'])}"
        if "maxLength" in rule and len(value) > rule["maxLength"]:
            return f"argument {name} is longer than {rule['maxLength']} characters"
        if "pattern" in rule and not re.match(rule["pattern"], value):
            return f"argument {name} is not valid: {rule.get('description', rule['pattern'])}"
        if "minimum" in rule and value < rule["minimum"]:
            return f"argument {name} must be at least {rule['minimum']}"
        if "maximum" in rule and value > rule["maximum"]:
            return f"argument {name} must be at most {rule['maximum']}"
    return None


def execute(membership: Membership, call: ToolCall) -> ToolResult:
    """Run one tool call as `membership` (see the module docstring)."""
    spec = next((tool for tool in TOOLS if tool.name == call.name), None)
    if spec is None:
        return _error(
            f"unknown tool {untrusted.quote(call.name, 64)}; tools: "
            + ", ".join(tool.name for tool in TOOLS)
        )
    arguments = call.arguments if isinstance(call.arguments, dict) else {"_invalid": ""}
    if "_invalid" in arguments:
        return _error("the arguments are not a JSON object")
    problem = validate(arguments, spec.parameters)
    if problem:
        return _error(problem)
    arguments = {k: v for k, v in arguments.items() if v is not None}
    try:
        return _RUNNERS[call.name](membership, arguments)
    except ToolError as exc:
        return _error(str(exc))


def _error(message: str) -> ToolResult:
    return ToolResult(content=json.dumps({"error": message}), error=message)


def _dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


def _result(payload: dict[str, Any], rows: str, citations: list[Citation]) -> ToolResult:
    """`payload` as JSON within MAX_CONTENT characters: rows dropped from the end of
    payload[rows] (and `truncated` set) until it fits; citations deduplicated, in order."""
    content = _dumps(payload)
    while len(content) > MAX_CONTENT and payload[rows]:
        payload[rows] = payload[rows][: max(0, len(payload[rows]) * 3 // 4)]
        payload["truncated"] = True
        content = _dumps(payload)
    seen: set[str] = set()
    unique = []
    for citation in citations:
        if citation.url not in seen:
            seen.add(citation.url)
            unique.append(citation)
    return ToolResult(content=content, citations=unique)


def _resource_row(membership: Membership, resource, patterns) -> dict[str, Any]:
    return {
        "name": untrusted.clean(resource.name or resource.resource_id, 80),
        "arn": resource.arn,
        "type": resource.resource_type,
        "account": resource.account.account_id,
        "region": resource.region,
        "tags": untrusted.tags(resource.tags, patterns),
        "url": org_url(membership.organization, "resource-detail", pk=resource.pk),
    }


def _citation(membership: Membership, resource) -> Citation:
    return Citation(
        label=untrusted.clean(resource.name or resource.resource_id, 80),
        url=org_url(membership.organization, "resource-detail", pk=resource.pk),
    )


# Tag filters ----------------------------------------------------------------------------------


def with_tag(queryset, key: str, value: str | None = None, *, any_case: bool, present: bool):
    """Resources of `queryset` that carry (present) or lack (not present) the tag `key` —
    with `value`, when given. any_case: keys and values compare after ASCII case folding
    (policies.engine.spec.fold; lower(x COLLATE "C") in SQL); else exactly."""

    if not any_case:
        condition = JsonKeyIs("tags", key, value)
        return queryset.filter(condition) if present else queryset.exclude(condition)
    sql = (
        'EXISTS (SELECT 1 FROM jsonb_each_text("inventory_resource"."tags") t '
        'WHERE lower(t.key COLLATE "C") = %s'
    )
    params = [fold(key)]
    if value is not None:
        sql += ' AND lower(t.value COLLATE "C") = %s'
        params.append(fold(value))
    name = f"_tag_{len(queryset.query.annotations)}"
    # Constant SQL; the key and value are parameters.
    matches = RawSQL(sql + ")", params, output_field=BooleanField())  # noqa: S611
    return queryset.alias(**{name: matches}).filter(**{name: present})


def _of_type(queryset, resource_type: str, lookup: str = "resource_type"):
    if resource_type.endswith(":*"):
        return queryset.filter(**{f"{lookup}__startswith": resource_type[:-1]})
    return queryset.filter(**{lookup: resource_type})


# The tools ------------------------------------------------------------------------------------


def query_inventory(membership: Membership, args: dict[str, Any]) -> ToolResult:

    any_case = args.get("key_case", "any") == "any"
    queryset = Resource.objects.restrict(membership).live().select_related("account")
    if "resource_type" in args:
        queryset = _of_type(queryset, args["resource_type"].strip())
    if "account_id" in args:
        queryset = queryset.filter(account__account_id=args["account_id"])
    if "region" in args:
        queryset = queryset.filter(region=args["region"].strip())
    if "text" in args:
        term = args["text"].strip()
        queryset = queryset.filter(
            Q(name__icontains=term) | Q(resource_id__icontains=term) | Q(arn__icontains=term)
        )
    if "tag" in args:
        key, equals, value = args["tag"].partition("=")
        if not equals or not key.strip():
            raise ToolError("argument tag is written Key=value, e.g. Environment=prod")
        queryset = with_tag(queryset, key.strip(), value.strip(), any_case=any_case, present=True)
    if args.get("has_tag", "").strip():
        queryset = with_tag(queryset, args["has_tag"].strip(), any_case=any_case, present=True)
    if args.get("missing_tag", "").strip():
        queryset = with_tag(queryset, args["missing_tag"].strip(), any_case=any_case, present=False)
    if args.get("untagged"):
        queryset = queryset.filter(tags={})
    total = queryset.count()
    patterns = untrusted.prohibited_patterns(membership.organization)
    resources = list(queryset.order_by("resource_type", "name", "arn")[: args.get("limit", 20)])
    payload = {
        "total": total,
        "filters": {k: v for k, v in args.items() if k != "limit"},
        "resources": [_resource_row(membership, r, patterns) for r in resources],
    }
    return _result(payload, "resources", [_citation(membership, r) for r in resources])


def list_findings(membership: Membership, args: dict[str, Any]) -> ToolResult:

    if (
        "rule_id" in args
        and not Rule.objects.restrict(membership).filter(rule_id=args["rule_id"]).exists()
    ):
        raise ToolError(f"no rule with id {untrusted.quote(args['rule_id'], 64)}")
    params = {
        "rule": args.get("rule_id"),
        "status": args.get("status", Finding.OPEN),
        "severity": args.get("severity"),
        "account": args.get("account_id"),
        "key": args.get("key"),
    }
    queryset = filter_findings(
        Finding.objects.restrict(membership).select_related(
            "rule", "resource", "account", "exemption"
        ),
        params,
    )
    if "resource_type" in args:
        queryset = _of_type(queryset, args["resource_type"].strip(), "resource__resource_type")
    total = queryset.count()
    findings = list(queryset.order_by("rule__rule_id", "resource__arn")[: args.get("limit", 20)])
    rows, citations = [], []
    for finding in findings:
        resource = finding.resource
        rows.append(
            {
                "rule_id": finding.rule.rule_id,
                "severity": finding.severity,
                "status": finding.current_status,
                "kind": finding.kind,
                "found_key": untrusted.clean(finding.found_key, 64) if finding.found_key else None,
                "fix": fix_for(finding),
                "resource": {
                    "name": untrusted.clean(resource.name or resource.resource_id, 80),
                    "arn": resource.arn,
                    "type": resource.resource_type,
                    "account": finding.account.account_id,
                    "url": org_url(membership.organization, "resource-detail", pk=resource.pk),
                },
                "rule_url": org_url(
                    membership.organization, "rule-edit", rule_id=finding.rule.rule_id
                ),
            }
        )
        citations.append(_citation(membership, resource))
        citations.append(
            Citation(
                label=f"rule {finding.rule.rule_id}",
                url=org_url(membership.organization, "rule-edit", rule_id=finding.rule.rule_id),
            )
        )
    query = {k: v for k, v in params.items() if v}
    if "resource_type" in args:
        query["type"] = args["resource_type"]
    findings_url = org_url(membership.organization, "findings") + "?" + urlencode(query)
    citations.append(Citation(label="these findings", url=findings_url))
    payload = {"total": total, "findings_url": findings_url, "findings": rows}
    return _result(payload, "findings", citations)


def _visible_resource(membership: Membership, arn: str):
    """The live or deleted resource with this ARN if the member may see it; else ToolError
    (the same for a missing and a hidden one)."""

    resource = (
        Resource.objects.restrict(membership).select_related("account").filter(arn=arn).first()
    )
    if resource is None:
        raise ToolError(f"no resource you may see has the ARN {untrusted.quote(arn, 200)}")
    return resource


def blast_radius(membership: Membership, args: dict[str, Any]) -> ToolResult:

    resource = _visible_resource(membership, args["arn"])
    depth = args.get("depth", 3)
    direction = args.get("direction", graph.DEPENDENTS)
    hops = graph.blast_radius(membership.organization, resource.arn, depth, direction)
    hidden = hidden_arns(membership, [h.arn for h in hops])
    hops = [h for h in hops if h.arn not in hidden]
    shown = hops[: args.get("limit", 20)]
    known = {
        r.arn: r
        for r in Resource.objects.restrict(membership)
        .select_related("account")
        .filter(arn__in=[h.arn for h in shown])
    }
    rows, citations = [], [_citation(membership, resource)]
    for hop in shown:
        r = known.get(hop.arn)
        row: dict[str, Any] = {"arn": hop.arn, "depth": hop.depth}
        if r is not None:
            row.update(
                name=untrusted.clean(r.name or r.resource_id, 80),
                type=r.resource_type,
                untagged=not r.tags,
                url=org_url(membership.organization, "resource-detail", pk=r.pk),
            )
            citations.append(_citation(membership, r))
        else:
            row["name"] = None  # not in the inventory (yet): a DNS name, another account
        rows.append(row)
    payload = {
        "resource": {
            "name": untrusted.clean(resource.name or resource.resource_id, 80),
            "arn": resource.arn,
            "url": org_url(membership.organization, "resource-detail", pk=resource.pk),
        },
        "direction": direction,
        "depth": depth,
        "total": len(hops),
        "affected": rows,
    }
    return _result(payload, "affected", citations)


def tag_history(membership: Membership, args: dict[str, Any]) -> ToolResult:

    resource = _visible_resource(membership, args["arn"])
    patterns = untrusted.prohibited_patterns(membership.organization)
    events = timeline(resource, TagEvent.objects.restrict(membership), args.get("limit", 20))

    def value(key: str, text: str | None) -> str | None:
        return None if text is None else untrusted.tag_value(key, text, patterns)

    rows = []
    for event in events:
        row: dict[str, Any] = {
            "when": event.seen_at.isoformat() if event.seen_at else None,
            "kind": event.kind,
        }
        if event.kind == TagEvent.DISCOVERED:
            row["tags"] = untrusted.tags(event.tags, patterns)
        else:
            row["changes"] = [
                {
                    "key": untrusted.clean(c.get("key", ""), 64),
                    "kind": c.get("kind", ""),
                    "old": value(c.get("key", ""), c.get("old")),
                    "new": value(c.get("key", ""), c.get("new")),
                }
                for c in event.changes or []
            ]
        rows.append(row)
    payload = {
        "resource": _resource_row(membership, resource, patterns),
        "deleted": resource.deleted_at is not None,
        "events": rows,
    }
    return _result(payload, "events", [_citation(membership, resource)])


def compliance_score(membership: Membership, args: dict[str, Any]) -> ToolResult:

    organization = membership.organization
    card = scores.scorecard(organization, scores.account_scope(membership))
    frameworks = Framework.objects.restrict(membership).prefetch_related("controls")

    def score(s) -> dict[str, Any]:
        row = {"percent": s.percent, "in_scope": s.in_scope, "compliant": s.compliant}
        if s.spend is not None:
            row["spend_percent"] = s.spend.percent
            row["untagged_dollars"] = str(s.spend.failing.quantize(Decimal("0.01")))
        return row

    if "framework" not in args:
        if "control" in args:
            raise ToolError("argument control needs framework (the control's framework slug)")
        rows, citations = [], []
        for framework in frameworks:
            url = org_url(membership.organization, "framework-detail", slug=framework.slug)
            rows.append(
                {
                    "framework": framework.slug,
                    "name": framework.name,
                    "url": url,
                    **score(card.frameworks.get(framework.slug, scores.EMPTY)),
                }
            )
            citations.append(Citation(label=framework.name, url=url))
        payload = {"organization": score(card.organization), "frameworks": rows}
        return _result(payload, "frameworks", citations)

    framework = frameworks.filter(slug=args["framework"]).first()
    if framework is None:
        known = ", ".join(frameworks.values_list("slug", flat=True)) or "none enabled"
        raise ToolError(
            f"no framework {untrusted.quote(args['framework'], 64)}; frameworks: {known}"
        )
    url = org_url(membership.organization, "framework-detail", slug=framework.slug)
    controls = list(framework.controls.all())
    if "control" not in args:
        rows = []
        citations = [Citation(label=framework.name, url=url)]
        for control in controls:
            s = card.controls.get(scores.control_key(framework.slug, control.control_id))
            s = s or scores.EMPTY
            control_url = f"{url}#control-{control.pk}"
            rows.append(
                {
                    "control": control.control_id,
                    "title": untrusted.clean(control.title, 120),
                    "status": scores.control_status(control, s, card.rules_by_id),
                    "rules": control.rule_ids,
                    "url": control_url,
                    **score(s),
                }
            )
            citations.append(
                Citation(label=f"{framework.name} {control.control_id}", url=control_url)
            )
        payload = {
            "framework": framework.slug,
            "name": framework.name,
            "url": url,
            **score(card.frameworks.get(framework.slug, scores.EMPTY)),
            "controls": rows,
        }
        return _result(payload, "controls", citations)

    control = next((c for c in controls if c.control_id == args["control"]), None)
    if control is None:
        known = ", ".join(c.control_id for c in controls) or "none"
        raise ToolError(
            f"no control {untrusted.quote(args['control'], 64)} in {framework.slug}; "
            f"controls: {known}"
        )
    s = card.controls.get(scores.control_key(framework.slug, control.control_id)) or scores.EMPTY
    status = scores.control_status(control, s, card.rules_by_id)
    control_url = f"{url}#control-{control.pk}"
    citations = [Citation(label=f"{framework.name} {control.control_id}", url=control_url)]
    failing = []
    if status == "fail":
        for finding in scores.failing_findings(membership, control)[: args.get("limit", 20)]:
            failing.append(
                {
                    "rule_id": finding.rule.rule_id,
                    "kind": finding.kind,
                    "fix": fix_for(finding),
                    "resource": untrusted.clean(
                        finding.resource.name or finding.resource.resource_id, 80
                    ),
                    "arn": finding.resource.arn,
                    "url": org_url(
                        membership.organization, "resource-detail", pk=finding.resource.pk
                    ),
                }
            )
            citations.append(_citation(membership, finding.resource))
    payload = {
        "framework": framework.slug,
        "control": control.control_id,
        "title": untrusted.clean(control.title, 200),
        "status": status,
        "rules": control.rule_ids,
        "url": control_url,
        **score(s),
        "failing_findings": failing,
    }
    return _result(payload, "failing_findings", citations)


_RUNNERS: dict[str, Callable[[Membership, dict[str, Any]], ToolResult]] = {
    "query_inventory": query_inventory,
    "list_findings": list_findings,
    "blast_radius": blast_radius,
    "tag_history": tag_history,
    "compliance_score": compliance_score,
}
