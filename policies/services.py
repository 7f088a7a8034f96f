"""The writes of the policies app: rules (each change versioned and audited) and their import.

Callers run inside the organization's tenant scope and have checked the actor's role (rules:
`manage`). Every function is one transaction: a SpecError leaves nothing saved.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count, Q
from django.utils.text import slugify

import audit
from inventory.access import visible_accounts
from inventory.models import Resource
from tagsense.jsonq import JsonArrayHas
from tagsense.tenancy.context import current

from . import audit_events, evaluation
from .engine import sql
from .engine.reference import Violation, suggested_fix, user_tag_count
from .engine.spec import (
    RULE_ID_RE,
    RuleSpec,
    SpecError,
    SpecProblem,
    builtin_rules,
    dump_rules,
    parse_rules,
    rule_to_dict,
)
from .evaluation import delete_findings_of
from .frameworks import CONTROL_ID_RE, builtin_frameworks
from .models import Control, Framework, Rule, RuleVersion, lapsed_exemption
from .scoring.scores import control_findings

if TYPE_CHECKING:
    from accounts.models import Membership, Organization

MERGE, REPLACE = "merge", "replace"
PREVIEW_SAMPLE = 20


def parse_one(text: str | bytes) -> RuleSpec:
    """A rule file holding exactly one rule (the editor's and the API's unit)."""
    rules = parse_rules(text)
    if len(rules) != 1:
        raise SpecError([SpecProblem("rules", f"expected exactly one rule, found {len(rules)}")])
    return rules[0]


def _actor_label() -> str:
    return current().actor.label


def _version(rule: Rule, change: str) -> RuleVersion:
    return RuleVersion.objects.create(
        organization_id=rule.organization_id,
        rule=rule if change != RuleVersion.DELETE else None,
        rule_slug=rule.rule_id,
        version=rule.version,
        change=change,
        spec=rule.spec,
        active=rule.active,
        changed_by=_actor_label(),
    )


def _after_change(rule: Rule) -> dict[str, int]:
    """Re-evaluate the changed rule (policies.evaluation); its counts go into the rule's event."""

    return evaluation.evaluate_rules(rule.organization, [rule])


@transaction.atomic
def create_rule(
    organization: Organization, spec: RuleSpec, *, active: bool = True, origin: str = Rule.USER
) -> Rule:
    """`origin` marks a rule another part of TagSense generates (Rule.ORIGINS)."""
    if Rule.objects.for_org(organization).filter(rule_id=spec.id).exists():
        raise SpecError([SpecProblem("rules[0].id", f"a rule with id {spec.id!r} exists already")])
    rule = Rule.objects.create(
        organization=organization,
        rule_id=spec.id,
        spec=rule_to_dict(spec),
        active=active,
        origin=origin,
        updated_by=_actor_label(),
    )
    _version(rule, RuleVersion.CREATE)
    counts = _after_change(rule)
    audit.record(
        audit_events.RULE_CREATE,
        target=rule,
        data={"rule": rule.rule_id, "version": rule.version, "spec": rule.spec, **counts},
    )
    return rule


@transaction.atomic
def update_rule(rule: Rule, spec: RuleSpec | None = None, *, active: bool | None = None) -> Rule:
    """A new version when the spec or the active flag changes; no change records nothing."""
    rule = Rule.objects.select_for_update().get(pk=rule.pk)
    if spec is not None and spec.id != rule.rule_id:
        raise SpecError(
            [SpecProblem("rules[0].id", f"the id cannot change (this rule is {rule.rule_id!r})")]
        )
    new_spec = rule_to_dict(spec) if spec is not None else rule.spec
    new_active = rule.active if active is None else active
    if new_spec == rule.spec and new_active == rule.active:
        return rule
    changes: dict[str, Any] = {}
    if new_spec != rule.spec:
        changes["spec"] = [rule.spec, new_spec]
    if new_active != rule.active:
        changes["active"] = [rule.active, new_active]
    rule.spec, rule.active = new_spec, new_active
    rule.version += 1
    rule.updated_by = _actor_label()
    rule.save()
    _version(rule, RuleVersion.UPDATE)
    counts = _after_change(rule)
    audit.record(
        audit_events.RULE_UPDATE,
        target=rule,
        data={"rule": rule.rule_id, "version": rule.version, **changes, **counts},
    )
    return rule


@transaction.atomic
def delete_rule(rule: Rule) -> None:
    """The rule goes with its findings; its versions stay (a last one records the deletion)."""

    rule.version += 1
    _version(rule, RuleVersion.DELETE)
    deleted = delete_findings_of(rule)
    audit.record(
        audit_events.RULE_DELETE,
        target=rule,
        data={"rule": rule.rule_id, "version": rule.version, "findings_deleted": deleted},
    )
    rule.delete()


@transaction.atomic
def import_rules(organization: Organization, text: str | bytes, mode: str = MERGE) -> dict:
    """Apply a rule file. `merge` creates the file's new rules and updates changed ones, and
    leaves other rules alone; `replace` also deletes the rules the file does not hold (never
    the rules generated from AWS tag policies, whose ids a file may not use). A rule
    whose spec is unchanged is untouched (no version). One audit event, policy.rule_import,
    lists what changed; a bad file raises SpecError and saves nothing."""
    if mode not in (MERGE, REPLACE):
        raise SpecError([SpecProblem("mode", "expected merge or replace")])
    rules = parse_rules(text)
    existing = {r.rule_id: r for r in Rule.objects.for_org(organization).select_for_update()}
    created, updated, deleted = [], [], []
    label = _actor_label()
    touched: list[Rule] = []
    generated = sorted(
        spec.id for spec in rules if spec.id in existing and existing[spec.id].origin != Rule.USER
    )
    if generated:
        raise SpecError(
            [
                SpecProblem(
                    "rules", f"{rule_id} is generated from AWS tag policies; choose another id"
                )
                for rule_id in generated
            ]
        )
    for spec in rules:
        data = rule_to_dict(spec)
        rule = existing.get(spec.id)
        if rule is None:
            rule = Rule.objects.create(
                organization=organization, rule_id=spec.id, spec=data, updated_by=label
            )
            _version(rule, RuleVersion.CREATE)
            created.append(spec.id)
        elif rule.spec != data:
            rule.spec, rule.updated_by = data, label
            rule.version += 1
            rule.save()
            _version(rule, RuleVersion.UPDATE)
            updated.append(spec.id)
        else:
            continue
        touched.append(rule)
    if mode == REPLACE:
        wanted = {spec.id for spec in rules}
        for rule_id, rule in sorted(existing.items()):
            # Generated rules belong to their generator (policies.aws.imported), not to files.
            if rule_id not in wanted and rule.origin == Rule.USER:
                rule.version += 1
                _version(rule, RuleVersion.DELETE)
                delete_findings_of(rule)
                rule.delete()
                deleted.append(rule_id)
    counts: dict[str, int] = {}
    if touched:
        counts = evaluation.evaluate_rules(organization, touched)
    result = {"mode": mode, "created": created, "updated": updated, "deleted": deleted}
    audit.record(
        audit_events.RULE_IMPORT,
        data={**result, "unchanged": len(rules) - len(created) - len(updated), **counts},
    )
    return result


def export_rules(rules) -> str:
    """The rules (a queryset or list of Rule) as one canonical rule file."""
    return dump_rules(rule.rule_spec for rule in rules)


def preview(membership: Membership, spec: RuleSpec, limit: int = PREVIEW_SAMPLE) -> dict:
    """What the rule would flag among the live resources the member may see, before saving:
    the count and up to `limit` resources with the violation's kind and found key."""

    visible = list(visible_accounts(membership).values_list("pk", flat=True))
    count, sample_rows = sql.count_and_sample(
        spec, membership.organization_id, limit, account_pks=visible
    )
    by_id = Resource.objects.restrict(membership).in_bulk([r[0] for r in sample_rows])
    sample = [
        {"resource": by_id[rid], "kind": kind, "found_key": found}
        for rid, kind, found in sample_rows
        if rid in by_id
    ]
    return {"count": count, "sample": sample}


def fix_for(finding) -> str:
    """The one-line fix of a finding (policies.engine.reference.suggested_fix), from its rule and,
    for too_many_tags, the resource's current tags."""

    spec = finding.rule.rule_spec
    count = limit = None
    if finding.kind == "too_many_tags":
        count = user_tag_count(finding.resource.tags)
        limit = spec.max if spec.max is not None else 50
    violation = Violation(
        rule_id=spec.id,
        kind=finding.kind,
        key=spec.key or None,
        found_key=finding.found_key,
        value=None,
        message="",
        expected=spec.values.describe() if spec.values is not None else None,
        count=count,
        limit=limit,
    )
    return suggested_fix(violation, spec.check)


def filter_findings(queryset, params) -> Any:
    """The findings filters shared by the page, its CSV and the API: rule (id), severity,
    status, account (12-digit id), type, team (slug of a team holding the account), key (the
    rule's key or the key found), framework + control (the slug of one of the organization's
    frameworks and a control id of it: the findings of the active rules evidencing it, as its
    page counts them; a framework or control it does not hold matches nothing)."""

    if params.get("rule"):
        queryset = queryset.filter(rule__rule_id=params["rule"])
    if params.get("severity"):
        queryset = queryset.filter(severity=params["severity"])
    if params.get("status"):
        queryset = queryset.with_status(params["status"])
    if params.get("account"):
        queryset = queryset.filter(account__account_id=params["account"])
    if params.get("type"):
        queryset = queryset.filter(resource__resource_type=params["type"])
    if params.get("team"):
        queryset = _with_team(queryset, params["team"])
    if params.get("key"):
        queryset = queryset.filter(Q(found_key=params["key"]) | Q(rule__spec__key=params["key"]))
    if params.get("framework") or params.get("control"):
        queryset = _of_control(queryset, params.get("framework") or "", params.get("control") or "")
    return queryset


def _of_control(queryset, framework: str, control_id: str):
    """The findings of one control, looked up in the organization of the findings themselves
    (an unknown framework or control, or only one of the two, matches nothing)."""

    control = (
        Control.objects.filter(
            organization__in=queryset.order_by().values("organization"),
            framework__slug=framework,
            control_id=control_id,
        ).first()
        if framework and control_id
        else None
    )
    return queryset.none() if control is None else control_findings(queryset, control)


def _with_team(queryset, slug: str):
    """Findings whose owner teams hold `slug` exactly (tagsense.jsonq)."""

    return queryset.filter(JsonArrayHas("owner_teams", slug))


def counts_per_rule(findings) -> list[dict]:
    """Findings per rule and status, most open first: [{rule, open, exempted, resolved}]."""

    rows = (
        findings.order_by()
        .values("rule__rule_id")
        .annotate(
            # As of now: an exemption past its expiry exempts nothing (FindingQuerySet).
            open=Count("id", filter=Q(status="open") | lapsed_exemption()),
            exempted=Count("id", filter=Q(status="exempted") & ~lapsed_exemption()),
            resolved=Count("id", filter=Q(status="resolved")),
        )
    )
    return sorted(
        (
            {
                "rule": r["rule__rule_id"],
                "open": r["open"],
                "exempted": r["exempted"],
                "resolved": r["resolved"],
            }  # fmt: skip
            for r in rows
        ),
        key=lambda r: (-r["open"], r["rule"]),
    )


# Frameworks -----------------------------------------------------------------------------------


def builtin_library() -> dict:
    """The built-in frameworks (policies/data/frameworks) by id; the same for every
    organization."""

    return builtin_frameworks()


def _install_rules(organization: Organization, rule_ids: list[str]) -> list[str]:
    """Create the built-in rules (policies/data/rules.yaml) the organization lacks, each with
    its first version, and evaluate them. An existing rule of the same id is kept as the
    organization adjusted it. Returns the ids created. The caller records the event."""

    library = {rule.id: rule for rule in builtin_rules()}
    existing = set(
        Rule.objects.for_org(organization)
        .filter(rule_id__in=rule_ids)
        .values_list("rule_id", flat=True)
    )
    created: list[Rule] = []
    label = _actor_label()
    for rule_id in sorted(set(rule_ids) - existing):
        rule = Rule.objects.create(
            organization=organization,
            rule_id=rule_id,
            spec=rule_to_dict(library[rule_id]),
            updated_by=label,
        )
        _version(rule, RuleVersion.CREATE)
        created.append(rule)
    if created:
        evaluation.evaluate_rules(organization, created)
    return [rule.rule_id for rule in created]


@transaction.atomic
def enable_framework(organization: Organization, framework_id: str):
    """Enable a built-in framework: its controls are copied into the organization and the rules
    they cite that the organization lacks are installed (versioned, evaluated). One
    policy.framework_enable event. Enabling it again refreshes its controls from the data file
    and installs rules deleted since. Raises KeyError for an unknown id. Needs `manage`."""

    spec = builtin_library()[framework_id]
    framework, new = (
        Framework.objects.for_org(organization)
        .select_for_update()
        .get_or_create(
            organization=organization,
            slug=spec.id,
            defaults={
                "name": spec.name,
                "version": spec.version,
                "source": spec.source,
                "builtin": True,
            },  # fmt: skip
        )
    )
    if not framework.builtin:
        raise SpecError([SpecProblem("id", f"a custom framework {spec.id!r} exists already")])
    framework.name, framework.version, framework.source = spec.name, spec.version, spec.source
    framework.save()
    Control.objects.for_org(organization).filter(framework=framework).delete()
    Control.objects.bulk_create(
        Control(
            organization=organization,
            framework=framework,
            control_id=c.id,
            title=c.title,
            rationale=c.rationale,
            rule_ids=list(c.rules),
            position=i,
        )
        for i, c in enumerate(spec.controls)
    )
    cited = sorted({r for c in spec.controls for r in c.rules})
    installed = _install_rules(organization, cited)
    audit.record(
        audit_events.FRAMEWORK_ENABLE,
        target=framework,
        data={
            "framework": spec.id,
            "version": spec.version,
            "new": new,
            "rules_installed": installed,
            "controls": len(spec.controls),
        },  # fmt: skip
    )
    return framework


def parse_controls(text: str) -> list[tuple[str, str, list[str]]]:
    """Controls written one a line as ``id | title | rule-id rule-id ...`` (rules optional).
    Raises SpecError naming every bad line."""

    controls, problems, seen = [], [], set()
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) < 2 or not parts[0] or not parts[1] or len(parts) > 3:
            problems.append(SpecProblem(f"controls line {number}", "expected id | title | rules"))
            continue
        control_id, title = parts[0], parts[1]
        rules = parts[2].replace(",", " ").split() if len(parts) == 3 else []
        if not CONTROL_ID_RE.match(control_id):
            problems.append(SpecProblem(f"controls line {number}", "a control id has no spaces"))
        elif control_id in seen:
            problems.append(SpecProblem(f"controls line {number}", f"duplicate id {control_id!r}"))
        bad = [r for r in rules if not RULE_ID_RE.match(r)]
        if bad:
            problems.append(SpecProblem(f"controls line {number}", f"not a rule id: {bad[0]!r}"))
        seen.add(control_id)
        controls.append((control_id, " ".join(title.split())[:2000], rules))
    if not controls and not problems:
        problems.append(SpecProblem("controls", "give at least one control"))
    if problems:
        raise SpecError(problems)
    return controls


@transaction.atomic
def create_framework(organization: Organization, name: str, controls_text: str):
    """A custom framework: a name and controls (parse_controls). Its slug comes from the name
    and never collides with a built-in id. One policy.framework_create event. Needs `manage`."""

    name = " ".join((name or "").split())[:200]
    if not name:
        raise SpecError([SpecProblem("name", "give the framework a name")])
    controls = parse_controls(controls_text)
    base = slugify(name)[:50] or "framework"
    taken = set(Framework.objects.for_org(organization).values_list("slug", flat=True))
    taken |= set(builtin_library()) | {"new", "enable", "builtin"}  # the page routes' own words
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    framework = Framework.objects.create(organization=organization, slug=slug, name=name)
    Control.objects.bulk_create(
        Control(
            organization=organization,
            framework=framework,
            control_id=cid,
            title=title,
            rule_ids=rules,
            position=i,
        )  # fmt: skip
        for i, (cid, title, rules) in enumerate(controls)
    )
    audit.record(
        audit_events.FRAMEWORK_CREATE,
        target=framework,
        data={"framework": slug, "name": name, "controls": [c[0] for c in controls]},
    )
    return framework


@transaction.atomic
def map_control_rules(control, rule_ids: list[str]):
    """Set the rules that evidence a control (ids of the organization's rules; an unknown id is
    refused). One policy.framework_update event with the before and after. Needs `manage`."""

    control = Control.objects.select_for_update().select_related("framework").get(pk=control.pk)
    wanted = sorted(set(rule_ids))
    known = set(
        Rule.objects.for_org(control.organization)
        .filter(rule_id__in=wanted)
        .values_list("rule_id", flat=True)
    )
    missing = [r for r in wanted if r not in known or not RULE_ID_RE.match(r)]
    if missing:
        raise SpecError([SpecProblem("rules", f"no rule with id {r!r}") for r in missing])
    before = list(control.rule_ids)
    if before == wanted:
        return control
    control.rule_ids = wanted
    control.save(update_fields=["rule_ids"])
    audit.record(
        audit_events.FRAMEWORK_UPDATE,
        target=control.framework,
        data={
            "framework": control.framework.slug,
            "control": control.control_id,
            "rules": [before, wanted],
        },  # fmt: skip
    )
    return control


@transaction.atomic
def delete_framework(framework) -> None:
    """Remove a framework (built-in: disable) with its controls; its rules and snapshots stay.
    One policy.framework_delete event. Needs `manage`."""
    audit.record(
        audit_events.FRAMEWORK_DELETE,
        target=framework,
        data={"framework": framework.slug, "builtin": framework.builtin},
    )
    framework.delete()
