"""The offline analyst: a backend that needs no model.

It writes a Markdown analysis from the grounding facts (assistant.grounding: request.facts) for
each mode: Tagging Strategist (keys to standardise first, case variants, coverage), Compliance
Auditor (framework and control status, failing controls and their evidence), Cost Optimizer
(untagged dollars, spend by team and account; says so when there is no cost data),
Remediation Engineer (the top fixes in policies.engine.reference.suggested_fix wording with AWS CLI
commands to copy, never run) and free chat (an overview). It also answers "which <things> lack
a <Key> tag?" in chat with one query_inventory call, which assistant.chat runs as any model's
(with the member's permissions, audited, its resources cited), and links the resources found.

Deterministic: the same facts (and, for the question, the same inventory) give the same text.
Every string that came from AWS is shown as a code span or a cleaned link label.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from typing import Any

from .. import untrusted
from .base import Done, Event, Request, TextDelta, ToolCall, ToolCallEvent, Usage

WORDS_PER_CHUNK = 4
TAKING_OVER = "The provider stopped mid-answer; the offline analyst answers from the data:"
ARNS_PER_CALL = 20  # the Resource Groups Tagging API's limit per call


class OfflineAnalyst:
    """Answers with one tool call, as a model does: for the missing-tag question its first turn
    asks for query_inventory (assistant.chat runs it in the member's scope, audits and cites
    it) and its second writes the answer from the result; without the tools offered, or for
    any other question, it writes the mode's analysis at once."""

    name = "offline"
    model = "offline-analyst"
    CALL_ID = "offline-1"

    def stream(self, request: Request) -> Iterator[Event]:
        asked = _missing_tag_request(request)
        result = _tool_result(request, self.CALL_ID) if asked is not None else None
        if asked is not None and result is None and _offers(request, "query_inventory"):
            call = ToolCall(id=self.CALL_ID, name="query_inventory", arguments=asked["arguments"])
            yield ToolCallEvent(call)
            yield Usage(0, 0)
            yield Done("tool_use")
            return
        if asked is not None and result is not None:
            text = missing_tag_answer(asked, result)
        else:
            text = self.answer(request)
        last = request.messages[-1] if request.messages else None
        if last is not None and last.role == "assistant" and last.content and not last.tool_calls:
            # A provider failed mid-answer (assistant.failover): its words stay on the page.
            text = f"\n\n*{TAKING_OVER}*\n\n{text}"
        for chunk in chunks(text):
            yield TextDelta(chunk)
        yield Usage(0, 0)
        yield Done("end")

    def answer(self, request: Request) -> str:
        """The mode's analysis of the grounding facts."""
        facts = request.facts or {}
        if not facts:
            return "I have no data about this organization's estate yet: nothing to analyse."
        mode = request.mode if request.mode in _WRITERS else "chat"
        return _WRITERS[mode](facts)


def _missing_tag_request(request: Request) -> dict[str, Any] | None:
    if (request.mode or "chat") != "chat" or not request.facts:
        return None
    return missing_tag_question(_last_user_message(request))


def _offers(request: Request, tool: str) -> bool:
    return request.tool_choice != "none" and any(spec.name == tool for spec in request.tools)


def _tool_result(request: Request, call_id: str) -> str | None:
    """The content of the tool result answering `call_id` after the last question, if any."""
    for message in reversed(request.messages):
        if message.role == "user":
            return None
        if message.role == "tool" and message.tool_call_id == call_id:
            return message.content
    return None


def missing_tag_answer(asked: dict[str, Any], content: str) -> str:
    """The answer to the missing-tag question from query_inventory's result (its JSON, or
    the error the tool gave)."""
    try:
        found = json.loads(content)
    except ValueError:
        found = None
    if not isinstance(found, dict) or "total" not in found:
        error = found.get("error") if isinstance(found, dict) else None
        return f"I could not search the inventory: {untrusted.code(str(error or content), 200)}"
    arguments = asked["arguments"]
    what = asked["what"]
    key = untrusted.code(arguments["missing_tag"], 64)
    filters = (
        [f"type {untrusted.code(arguments['resource_type'])}"]
        if "resource_type" in (arguments)
        else []
    )
    if "tag" in arguments:
        filters.append(f"tag {untrusted.code(arguments['tag'])}")
    searched = (
        f"Searched the live resources you can see ({', '.join(filters) or 'every type'}; "
        f"tag keys and values match in any letter case, so "
        f"{untrusted.code(arguments['missing_tag'].lower(), 64)} counts as {key})."
    )
    if not found["total"]:
        return f"None of the {what} you can see lacks the {key} tag.\n\n{searched}"
    lines = [
        f"**{found['total']} {what} lack the {key} tag:**",
        "",
        *(
            f"- {_link(r['name'], r['url'])} — {untrusted.code(r['arn'], 200)} "
            f"({r['account']}, {r['region']})"
            for r in found["resources"]
        ),
    ]
    if found["total"] > len(found["resources"]):
        lines.append(f"- … and {found['total'] - len(found['resources'])} more.")
    lines += ["", searched]
    return "\n".join(lines)


def chunks(text: str, words: int = WORDS_PER_CHUNK) -> Iterator[str]:
    """`text` in pieces of a few words each; joined, they give `text` back exactly."""
    piece, count = "", 0
    for token in re.findall(r"\s+|\S+", text):
        piece += token
        if not token.isspace():
            count += 1
            if count == words:
                yield piece
                piece, count = "", 0
    if piece:
        yield piece


def _last_user_message(request: Request) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.content
    return ""


# The question "which production instances lack an Owner tag?" -------------------------------

_MISSING = re.compile(
    r"\b(?:lacks?|lacking|missing|without|(?:with|have|has)\s+no)\s+"
    r"(?:an?\s+|the\s+|any\s+)?[`'\"]?(?P<key>[\w.:/+=@-]{1,128})[`'\"]?\s+tags?\b",
    re.IGNORECASE,
)
_TYPES = (
    (r"\b(?:ec2\s+)?instances?\b|\bservers?\b|\bvms?\b", "ec2:instance", "instances"),
    (r"\bbuckets?\b", "s3:bucket", "buckets"),
    (r"\bvolumes?\b", "ec2:volume", "volumes"),
    (r"\bsnapshots?\b", "ec2:snapshot", "snapshots"),
    (r"\bfunctions?\b|\blambdas?\b", "lambda:function", "functions"),
    (r"\bdatabases?\b|\brds\b", "rds:db", "databases"),
    (r"\btables?\b", "dynamodb:table", "tables"),
)
_ENVIRONMENTS = (
    (r"\bprod(?:uction)?\b", "prod", "production"),
    (r"\bstag(?:ing|e)\b", "staging", "staging"),
    (r"\bdev(?:elopment)?\b", "dev", "development"),
)


def missing_tag_question(text: str) -> dict[str, Any] | None:
    """For a question asking which resources lack a tag: the query_inventory arguments and how
    to name what was asked ("production instances"); None for any other text. The type comes
    from a word (instances, buckets, ...), the environment from prod/production, staging,
    dev/development as the tag Environment=<prod|staging|dev>."""
    asked = _MISSING.search(text or "")
    if asked is None:
        return None
    arguments: dict[str, Any] = {"missing_tag": asked["key"], "limit": 50}
    what = "resources"
    for pattern, resource_type, plural in _TYPES:
        if re.search(pattern, text, re.IGNORECASE):
            arguments["resource_type"], what = resource_type, plural
            break
    for pattern, value, adjective in _ENVIRONMENTS:
        if re.search(pattern, text, re.IGNORECASE):
            arguments["tag"] = f"Environment={value}"
            what = f"{adjective} {what}"
            break
    return {"arguments": arguments, "what": what}


# Writing ------------------------------------------------------------------------------------


def _link(label: str, url: str) -> str:
    text = untrusted.clean(label, 80).replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    return f"[{text}]({url})"


def _percent(score: dict[str, Any]) -> str:
    if score.get("percent") is None:
        return "no resource in scope"
    return f"{score['percent']} % ({score['compliant']} of {score['in_scope']} compliant)"


def _money(amount: str, currency: str = "USD") -> str:
    value = f"{float(amount):,.2f}"
    return f"${value}" if currency == "USD" else f"{value} {currency}"


def _findings(n: int) -> str:
    return f"{n} open finding{'' if n == 1 else 's'}"


def _kinds(by_kind: dict[str, int]) -> str:
    return ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in by_kind.items())


def _header(title: str, facts: dict[str, Any]) -> list[str]:
    org, member = facts.get("organization", {}), facts.get("member", {})
    scope = member.get("sees", "")
    return [
        f"## {title}: {untrusted.clean(org.get('name', ''), 100)}",
        "",
        f"_From the data you may see ({scope}). Nothing here has been changed._"
        if scope
        else "_Nothing here has been changed._",
        "",
    ] + ([f"Focused on {', '.join(facts['focus'])}, as asked.", ""] if facts.get("focus") else [])


def strategist(facts: dict[str, Any]) -> str:
    lines = _header("Tagging Strategist", facts)
    inventory = facts.get("inventory", {})
    total = inventory.get("resources", 0)
    lines.append(
        f"Of **{total}** live resources, **{inventory.get('untagged', 0)}** "
        f"({inventory.get('untagged_percent', 0)} %) carry no tag at all."
    )
    keys = {row["key"].lower(): row for row in facts.get("tag_keys", [])}
    rules = facts.get("top_violations", [])
    order: list[tuple[str, str]] = []  # (key as the rules spell it, why)
    for rule in rules:
        if rule.get("key") and rule["key"].lower() not in {k.lower() for k, _ in order}:
            order.append(
                (
                    rule["key"],
                    f"rule {_link(rule['rule_id'], rule['url'])} has {_findings(rule['open'])} "
                    f"({_kinds(rule['by_kind'])})",
                )
            )
    for row in facts.get("tag_keys", []):
        if len(row["spellings"]) > 1 and row["key"].lower() not in {k.lower() for k, _ in order}:
            order.append((row["key"], f"spelt {len(row['spellings'])} ways"))
    lines += ["", "### Standardise these keys first"]
    if not order:
        lines.append("No rule has open findings and no key is spelt two ways: nothing urgent.")
    for number, (key, why) in enumerate(order[:5], start=1):
        row = keys.get(key.lower())
        coverage = (
            f"on {row['resources']} of {total} resources ({row['percent']} %)"
            if row
            else "on no resource yet"
        )
        lines.append(f"{number}. {untrusted.code(key)} — {coverage}; {why}.")
    variants = [row for row in facts.get("tag_keys", []) if len(row["spellings"]) > 1]
    lines += ["", "### Case variants to merge"]
    if not variants:
        lines.append("Every key is spelt one way.")
    for row in variants:
        canonical = next(
            (k for k, _ in order if k.lower() == row["key"].lower()), row["spellings"][0]["key"]
        )
        others = [s for s in row["spellings"] if s["key"] != canonical]
        lines.append(
            f"- {untrusted.code(canonical)}: rename "
            + ", ".join(f"{untrusted.code(s['key'])} ({s['resources']})" for s in others)
        )
    lines += ["", "### Coverage by key", "", "| Key | Resources | Coverage | Spellings |"]
    lines.append("|---|---:|---:|---:|")
    for row in facts.get("tag_keys", []):
        lines.append(
            f"| {untrusted.code(row['key'])} | {row['resources']} | {row['percent']} % "
            f"| {len(row['spellings'])} |"
        )
    return "\n".join(lines)


def auditor(facts: dict[str, Any]) -> str:
    lines = _header("Compliance Auditor", facts)
    compliance = facts.get("compliance", {})
    lines.append(f"Overall: **{_percent(compliance.get('overall', {}))}**.")
    rules = {rule["rule_id"]: rule for rule in facts.get("top_violations", [])}
    frameworks = compliance.get("frameworks", [])
    if not frameworks:
        lines += ["", "No framework is enabled: enable one on the Frameworks page to audit."]
    for framework in frameworks:
        failing = [c for c in framework["controls"] if c["status"] == "fail"]
        lines += [
            "",
            f"### {_link(framework['name'], framework['url'])}: {_percent(framework)}",
            "",
            f"{len(failing)} of {len(framework['controls'])} controls failing.",
            "",
            "| Control | Status | Compliant | Failing resources |",
            "|---|---|---:|---:|",
        ]
        for control in framework["controls"]:
            lines.append(
                f"| {_link(control['control_id'], control['url'])} "
                f"{untrusted.clean(control['title'], 60)} | {control['status']} "
                f"| {control['percent'] if control['percent'] is not None else '–'} % "
                f"| {control['failing']} |"
            )
        for control in failing:
            lines += ["", f"**{control['control_id']} fails** — evidence:"]
            for rule_id in control["rules"]:
                rule = rules.get(rule_id)
                if rule is None:
                    continue
                examples = ", ".join(_link(e["name"], e["url"]) for e in rule["examples"])
                lines.append(
                    f"- rule {_link(rule_id, rule['url'])} ({rule['severity']}): "
                    f"[{_findings(rule['open'])}]({rule['findings_url']}) "
                    f"({_kinds(rule['by_kind'])}); e.g. {examples}"
                )
    return "\n".join(lines)


def cost(facts: dict[str, Any]) -> str:
    lines = _header("Cost Optimizer", facts)
    spend = facts.get("spend")
    inventory = facts.get("inventory", {})
    if not spend:
        lines += [
            "**There is no cost data** for the accounts you can see, so I cannot say what "
            "untagged resources cost or how spend splits by team. Once costs are imported "
            "from AWS Cost Explorer, this analysis shows the untagged dollars and the spend "
            "by team and account.",
            "",
            f"What I can say without costs: {inventory.get('untagged', 0)} of "
            f"{inventory.get('resources', 0)} resources carry no tag at all, and "
            f"{_percent(facts.get('compliance', {}).get('overall', {}))}.",
        ]
        return "\n".join(lines)
    currency = spend["currency"]
    period = spend["period"]
    lines += [
        f"Spend from {period['start']} to {period['end']} ({period['days']} days, {currency})"
        + (" — demo data, not measured." if spend.get("demo_data") else "."),
        "",
        f"- In scope of the rules: **{_money(spend['in_scope'], currency)}**",
        f"- Allocated (compliant resources): **{_money(spend['compliant'], currency)}**"
        + (f" ({spend['percent']} % of spend)" if spend.get("percent") is not None else ""),
        f"- **Untagged dollars** (resources failing a rule): "
        f"**{_money(spend['untagged_dollars'], currency)}**",
    ]
    compliance = facts.get("compliance", {})
    for label, title in (("team", "team"), ("account", "account")):
        rows = [r for r in compliance.get(f"by_{label}", []) if "spend" in r]
        if not rows:
            continue
        rows.sort(key=lambda r: (-float(r["spend"]["untagged_dollars"]), r[label]))
        lines += [
            "",
            f"### Spend by {title}",
            "",
            f"| {title.title()} | Spend | Untagged dollars | Compliant spend |",
            "|---|---:|---:|---:|",
        ]
        for row in rows:
            name = row[label] + (f" ({row['name']})" if row.get("name") else "")
            pct = row["spend"]["percent"]
            lines.append(
                f"| {untrusted.clean(name, 80)} | {_money(row['spend']['in_scope'], currency)} "
                f"| {_money(row['spend']['untagged_dollars'], currency)} "
                f"| {'–' if pct is None else f'{pct} %'} |"
            )
    return "\n".join(lines)


def _commands(example_groups: dict[tuple, list[str]], key: str) -> list[str]:
    """AWS CLI commands (as text) fixing each group of ARNs: (kind, found key, region)."""
    out = []
    for (kind, found_key, region), arns in sorted(example_groups.items()):
        for start in range(0, len(arns), ARNS_PER_CALL):
            batch = " ".join(shlex.quote(a) for a in arns[start : start + ARNS_PER_CALL])
            base = f"aws resourcegroupstaggingapi {{}} --region {shlex.quote(region)} \\\n"
            base += f"  --resource-arn-list {batch} \\\n"
            if kind == "missing":
                out.append(
                    base.format("tag-resources")
                    + f"  --tags {shlex.quote(f'{key}=<{key.lower()}>')}"
                )
            elif kind == "wrong_case" and found_key:
                out.append(
                    base.format("tag-resources")
                    + f"  --tags {shlex.quote(f'{key}=<value of {found_key}>')}"
                )
                out.append(
                    base.format("untag-resources") + f"  --tag-keys {shlex.quote(found_key)}"
                )
            elif kind == "bad_value":
                out.append(
                    base.format("tag-resources")
                    + f"  --tags {shlex.quote(f'{key}=<allowed value>')}"
                )
            elif kind == "prohibited" and found_key:
                out.append(
                    base.format("untag-resources") + f"  --tag-keys {shlex.quote(found_key)}"
                )
    return out


def remediation(facts: dict[str, Any]) -> str:
    lines = _header("Remediation Engineer", facts)
    rules = facts.get("top_violations", [])
    if not rules:
        lines.append("No open findings among the resources you can see: nothing to fix.")
        return "\n".join(lines)
    lines.append(
        "The fixes that close the most open findings first. The commands are text for you "
        "to review, complete (replace each `<…>`) and run with your own AWS credentials; "
        "TagSense has run nothing."
    )
    for number, rule in enumerate(rules[:5], start=1):
        fixes = sorted({e["fix"] for e in rule["examples"]})
        lines += [
            "",
            f"### {number}. {_link(rule['rule_id'], rule['url'])} ({rule['severity']}): "
            f"{_findings(rule['open'])}",
            "",
            f"Fix: {'; '.join(untrusted.clean(f, 120) for f in fixes) or 'see the findings'}. "
            f"Examples: " + ", ".join(_link(e["name"], e["url"]) for e in rule["examples"]) + ".",
        ]
        groups: dict[tuple, list[str]] = {}
        for example in rule["examples"]:
            group = (example["kind"], example.get("found_key") or "", example["region"])
            groups.setdefault(group, []).append(example["arn"])
        commands = _commands(groups, rule.get("key", "")) if rule.get("key") else []
        if commands:
            lines += ["", "```bash", "\n\n".join(commands), "```"]
        if rule["open"] > len(rule["examples"]):
            lines.append(
                f"\n{rule['open'] - len(rule['examples'])} more: "
                f"[all open findings of {rule['rule_id']}]({rule['findings_url']})."
            )
    return "\n".join(lines)


def chat(facts: dict[str, Any]) -> str:
    lines = _header("Overview", facts)
    inventory = facts.get("inventory", {})
    compliance = facts.get("compliance", {})
    lines.append(
        f"**{inventory.get('resources', 0)}** live resources in "
        f"{inventory.get('accounts', 0)} accounts; {inventory.get('untagged', 0)} "
        f"([{inventory.get('untagged_percent', 0)} %]({inventory.get('untagged_url', '')})) "
        f"carry no tag. Compliance: **{_percent(compliance.get('overall', {}))}**."
    )
    for framework in compliance.get("frameworks", []):
        lines.append(f"- {_link(framework['name'], framework['url'])}: {_percent(framework)}")
    rules = facts.get("top_violations", [])[:3]
    if rules:
        lines += ["", "Most open findings:"]
        lines += [
            f"- {_link(r['rule_id'], r['url'])} ({r['severity']}): {r['open']} open" for r in rules
        ]
    spend = facts.get("spend")
    if spend:
        lines += [
            "",
            f"Untagged dollars: **{_money(spend['untagged_dollars'], spend['currency'])}** of "
            f"{_money(spend['in_scope'], spend['currency'])}.",
        ]
    lines += [
        "",
        "I run without a language model here, so I answer from these figures. Ask me "
        "*which production instances lack an Owner tag?* (or buckets, volumes, functions, "
        "databases lacking any tag), or switch to the Tagging Strategist, Compliance "
        "Auditor, Cost Optimizer or Remediation Engineer for their analyses.",
    ]
    return "\n".join(lines)


_WRITERS = {
    "chat": chat,
    "strategist": strategist,
    "auditor": auditor,
    "cost": cost,
    "remediation": remediation,
}
