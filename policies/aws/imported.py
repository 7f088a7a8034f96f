"""AWS Organizations tag policies imported into TagSense: the writes (import, update, delete,
each versioned and audited), each registered account's effective policy, and the TagSense
rules generated from it so the SQL engine produces the findings.

Callers run inside the organization's tenant scope and have checked the actor's role (writes:
`manage`). How AWS combines and evaluates policies is policies.aws.documents; this module only
decides which documents apply to which account and how an effective policy becomes rules.
docs/aws-tag-policies.md ("Imported policies") describes the mapping and where it differs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Max

import audit
from inventory.models import AwsAccount
from tagsense.tenancy.context import current

from .. import audit_events, services
from ..engine.reference import type_matches
from ..engine.spec import (
    TAG_VALUE_RE,
    WILDCARD_VALUE_RE,
    RuleSpec,
    Scope,
    SpecError,
    ValueMatcher,
    _known_types,
    rule_to_dict,
)
from ..models import AwsTagPolicy, AwsTagPolicyVersion, Rule, spec_from_dict
from . import documents as atp

if TYPE_CHECKING:
    from accounts.models import Organization
    from inventory.models import AwsAccount

RULE_PREFIX = "awstp-"
# AWS Organizations' limits ("Quotas and service limits for AWS Organizations"; the API
# reference of CreatePolicy and AttachPolicy): a policy's name is 1-128 ASCII characters; at
# most 10 tag policies attached directly to one root, OU or account; at most 1,000 tag
# policies in an organization.
MAX_NAME = 128
MAX_ATTACHED_PER_TARGET = 10
MAX_POLICIES = 1_000
INVALID_INPUT = "InvalidInputException"
_LOCK_CLASS = 0x7461_6770  # pg_advisory_xact_lock(class, organization): tag-policy writes
DUPLICATE = "DuplicatePolicyException"
ATTACHMENT_LIMIT = "MAX_POLICY_TYPE_ATTACHMENT_LIMIT_EXCEEDED"
EFFECTIVE_NOT_FOUND = "EffectivePolicyNotFoundException"
POLICY_NUMBER_LIMIT = "POLICY_NUMBER_LIMIT_EXCEEDED"
_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
# `"tag_value": {"@@assign": []}` means no value is compliant: a pattern nothing matches in
# Python's re.fullmatch nor in PostgreSQL's anchored ~ (an end of text followed by a letter).
NO_VALUE_PATTERN = "$a"


# --- the writes ------------------------------------------------------------------------------


def _actor_label() -> str:
    return current().actor.label


def _check_target(target_type: str, target: str) -> tuple[str, str]:
    """The target as stored, or TagPolicyError naming `target`."""
    target = (target or "").strip()
    if target_type == AwsTagPolicy.ROOT:
        return target_type, ""
    if target_type == AwsTagPolicy.OU:
        parts = target.strip("/").split("/")
        if len(parts) < 2 or any(not part.strip() for part in parts) or len(target) > 1000:
            raise atp.TagPolicyError(
                [
                    atp.TagPolicyProblem(
                        "target",
                        "an OU is named by its path as discovery shows it, from the root: "
                        "Root/Production/Web",
                    )
                ]
            )
        return target_type, "/".join(parts)
    if target_type == AwsTagPolicy.ACCOUNT:
        if not _ACCOUNT_RE.match(target):
            raise atp.TagPolicyError(
                [atp.TagPolicyProblem("target", "an AWS account id is 12 digits")]
            )
        return target_type, target
    raise atp.TagPolicyError([atp.TagPolicyProblem("target_type", "expected root, ou or account")])


def _check_name(organization: Organization, name: str, exclude: int | None = None) -> str:
    """The name as stored: AWS's rule (1-128 characters of the ASCII range) and, for display,
    one line; a name taken is AWS's DuplicatePolicyException."""
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME or not name.isascii() or any(ord(c) < 32 for c in name):
        raise atp.TagPolicyError(
            [
                atp.TagPolicyProblem(
                    "name",
                    f"a name of 1-{MAX_NAME} ASCII characters on one line (AWS Organizations "
                    "refuses other characters in a policy name)",
                )
            ],
            code=INVALID_INPUT,
        )
    taken = AwsTagPolicy.objects.for_org(organization).filter(name=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise atp.TagPolicyError(
            [atp.TagPolicyProblem("name", f"a policy named {name!r} exists already")],
            code=DUPLICATE,
        )
    return name


def _check_room(
    organization: Organization, target_type: str, target: str, exclude: int | None = None
) -> None:
    """AWS's quotas on attaching one more tag policy to the target (ConstraintViolationException
    with AWS's reason). Callers hold the organization's policies locked (_lock_policies)."""
    policies = AwsTagPolicy.objects.for_org(organization)
    if exclude is not None:
        policies = policies.exclude(pk=exclude)
    elif policies.count() >= MAX_POLICIES:
        raise atp.TagPolicyError(
            [
                atp.TagPolicyProblem(
                    "",
                    f"the organization has {MAX_POLICIES} tag policies, as many as AWS "
                    "Organizations allows",
                )
            ],
            code=atp.CONSTRAINT,
            reason=POLICY_NUMBER_LIMIT,
        )
    attached = policies.filter(target_type=target_type, target=target).count()
    if attached >= MAX_ATTACHED_PER_TARGET:
        where = "the root" if target_type == AwsTagPolicy.ROOT else f"{target_type} {target}"
        raise atp.TagPolicyError(
            [
                atp.TagPolicyProblem(
                    "target",
                    f"{where} has {attached} tag policies attached directly; AWS Organizations "
                    f"allows at most {MAX_ATTACHED_PER_TARGET} per root, OU or account",
                )
            ],
            code=atp.CONSTRAINT,
            reason=ATTACHMENT_LIMIT,
        )


def _lock_policies(organization: Organization) -> None:
    """Serialize the organization's tag-policy writes until the transaction ends, so that two
    concurrent imports cannot both see room for one more policy on a target."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, organization.pk])


def _document_text(document: str | bytes) -> str:
    """The document validated by parse_policy (TagPolicyError with JSON paths), as text."""
    atp.parse_policy(document)
    return document.decode("utf-8") if isinstance(document, bytes) else document


def _version(policy: AwsTagPolicy, change: str) -> None:
    AwsTagPolicyVersion.objects.create(
        organization_id=policy.organization_id,
        policy=policy if change != AwsTagPolicyVersion.DELETE else None,
        name=policy.name,
        version=policy.version,
        change=change,
        document=policy.document,
        target_type=policy.target_type,
        target=policy.target,
        position=policy.position,
        changed_by=_actor_label(),
    )


def _event_data(policy: AwsTagPolicy) -> dict[str, Any]:
    return {
        "policy": policy.name,
        "version": policy.version,
        "target_type": policy.target_type,
        "target": policy.target,
        "position": policy.position,
    }


@transaction.atomic
def import_tag_policy(
    organization: Organization,
    *,
    name: str,
    document: str | bytes,
    target_type: str,
    target: str = "",
    position: int | None = None,
) -> AwsTagPolicy:
    """Attach a new policy (after the policies already attached to the target unless
    `position` says otherwise) and regenerate the rules. Raises TagPolicyError (nothing saved).
    The policy returned carries `rule_problems`: what of the organization's effective policies
    could not be turned into rules (sync_generated_rules), for the caller to show."""
    text = _document_text(document)
    target_type, target = _check_target(target_type, target)
    _lock_policies(organization)
    name = _check_name(organization, name)
    _check_room(organization, target_type, target)
    if position is None:
        last = (
            AwsTagPolicy.objects.for_org(organization)
            .filter(target_type=target_type, target=target)
            .aggregate(m=Max("position"))["m"]
        )
        position = 0 if last is None else last + 1
    policy = AwsTagPolicy.objects.create(
        organization=organization,
        name=name,
        document=text,
        target_type=target_type,
        target=target,
        position=position,
        updated_by=_actor_label(),
    )
    _version(policy, AwsTagPolicyVersion.CREATE)
    rules = sync_generated_rules(organization)
    audit.record(
        audit_events.AWS_TAG_POLICY_IMPORT, target=policy, data={**_event_data(policy), **rules}
    )
    policy.rule_problems = rules["rule_problems"]
    return policy


@transaction.atomic
def update_tag_policy(
    policy: AwsTagPolicy,
    *,
    name: str | None = None,
    document: str | bytes | None = None,
    target_type: str | None = None,
    target: str | None = None,
    position: int | None = None,
) -> AwsTagPolicy:
    """A new version when anything changes (no change records nothing); rules regenerated.
    The policy returned carries `rule_problems`, as import_tag_policy's."""
    organization = policy.organization
    _lock_policies(organization)
    policy = AwsTagPolicy.objects.select_for_update().get(pk=policy.pk)
    new = {
        "name": policy.name if name is None else _check_name(organization, name, policy.pk),
        "document": policy.document if document is None else _document_text(document),
        "position": policy.position if position is None else position,
    }
    new["target_type"], new["target"] = _check_target(
        policy.target_type if target_type is None else target_type,
        policy.target if target is None else target,
    )
    changes = {k: [getattr(policy, k), v] for k, v in new.items() if getattr(policy, k) != v}
    if not changes:
        policy.rule_problems = rule_problems(organization)
        return policy
    if (new["target_type"], new["target"]) != (policy.target_type, policy.target):
        _check_room(organization, new["target_type"], new["target"], exclude=policy.pk)
    for key, value in new.items():
        setattr(policy, key, value)
    policy.version += 1
    policy.updated_by = _actor_label()
    policy.save()
    _version(policy, AwsTagPolicyVersion.UPDATE)
    rules = sync_generated_rules(organization)
    audit.record(
        audit_events.AWS_TAG_POLICY_UPDATE,
        target=policy,
        data={**_event_data(policy), "changed": sorted(changes), **rules},
    )
    policy.rule_problems = rules["rule_problems"]
    return policy


@transaction.atomic
def delete_tag_policy(policy: AwsTagPolicy) -> None:
    """Detach and delete the policy (its versions stay); rules regenerated."""
    organization = policy.organization
    policy.version += 1
    _version(policy, AwsTagPolicyVersion.DELETE)
    data = _event_data(policy)
    target = ("policies.awstagpolicy", str(policy.pk), policy.name)
    policy.delete()
    rules = sync_generated_rules(organization)
    audit.record(audit_events.AWS_TAG_POLICY_DELETE, target=target, data={**data, **rules})


# --- effective policies ----------------------------------------------------------------------


@dataclass
class Level:
    label: str  # "root", "OU Root/Production", "account 111111111111"
    policies: list[AwsTagPolicy]


@dataclass
class AccountPolicy:
    """One registered account's effective policy and the documents it comes from."""

    account: AwsAccount
    levels: list[Level]
    effective: atp.EffectivePolicy
    ignored: list[dict[str, Any]] = field(default_factory=list)

    @property
    def policy_count(self) -> int:
        return sum(len(level.policies) for level in self.levels)

    @property
    def found(self) -> bool:
        """Whether the account has an effective tag policy at all: AWS has none (its
        DescribeEffectivePolicy answers EffectivePolicyNotFoundException) when no tag policy
        is attached to the root, an OU on the account's path or the account. A policy whose
        keys were all removed by lower levels still makes one (with no keys)."""
        return self.policy_count > 0

    @property
    def error(self) -> str | None:
        return None if self.found else EFFECTIVE_NOT_FOUND

    @property
    def rendered(self) -> dict[str, Any] | None:
        return self.effective.rendered() if self.found else None

    @property
    def rendered_json(self) -> str:
        return self.effective.rendered_json()


def ou_prefixes(ou_path: str) -> list[str]:
    """The OUs on a discovered path, from the top: "Root/Prod/Web" -> Root/Prod, Root/Prod/Web
    (the first segment is the root itself)."""
    parts = [part for part in (ou_path or "").split("/") if part]
    return ["/".join(parts[:i]) for i in range(2, len(parts) + 1)]


def _by_target(policies) -> dict[tuple[str, str], list[AwsTagPolicy]]:
    grouped: dict[tuple[str, str], list[AwsTagPolicy]] = {}
    for policy in sorted(policies, key=lambda p: (p.position, p.pk)):
        grouped.setdefault((policy.target_type, policy.target), []).append(policy)
    return grouped


def account_policy(account: AwsAccount, grouped: dict[tuple[str, str], list[AwsTagPolicy]]):
    """The account's levels (root, each OU of its ou_path from the top, the account) and the
    effective policy computed from them with aws.documents.effective_policy."""
    levels = [Level("root", grouped.get((AwsTagPolicy.ROOT, ""), []))]
    for ou in ou_prefixes(account.ou_path):
        levels.append(Level(f"OU {ou}", grouped.get((AwsTagPolicy.OU, ou), [])))
    levels.append(
        Level(
            f"account {account.account_id}",
            grouped.get((AwsTagPolicy.ACCOUNT, account.account_id), []),
        )
    )
    parsed = [
        [atp.parse_policy(p.document, name=p.name) for p in level.policies] for level in levels
    ]
    effective = atp.effective_policy(parsed)
    ignored = [
        {
            "level": levels[item.level].label,
            "policy": item.policy,
            "path": item.path,
            "operator": item.operator,
            "reason": item.reason,
        }
        for item in effective.ignored
    ]
    return AccountPolicy(account, levels, effective, ignored)


def account_policies(organization: Organization, accounts) -> list[AccountPolicy]:
    """Effective policies of `accounts` (a queryset the caller restricted)."""
    grouped = _by_target(AwsTagPolicy.objects.for_org(organization))
    return [account_policy(account, grouped) for account in accounts]


# --- generated rules -------------------------------------------------------------------------


def _key_slug(policy_key: str) -> str:
    """A rule-id part for a policy key: the key itself when it is a short slug, else a short
    slug of it and 8 hex digits of its hash (ids stay unique and within 64 characters)."""
    lowered = policy_key.lower()
    slug = re.sub(r"[^a-z0-9]+", "-", lowered).strip("-")
    if slug == lowered and 0 < len(slug) <= 20:
        return slug
    digest = hashlib.sha1(lowered.encode(), usedforsecurity=False).hexdigest()[:8]
    head = slug[:12].strip("-")
    return f"{head}-{digest}" if head else digest


def value_matcher(values: tuple[str, ...] | None) -> ValueMatcher:
    """AWS's tag_value as a TagSense matcher: no list (any value) is the glob `*`; literal
    values a list; values with AWS's `*` wildcard (any number of them, mixed with literal
    ones) the kind `wildcards`, matched in linear time whatever their number and length; the
    empty list, or a list of values no AWS tag can hold, a pattern nothing matches.

    A value holding a character no AWS tag value can (AWS allows letters, digits, white space
    and _ . : / = + - @) can never be matched by a resource's tag, so it is left out: the rule
    then accepts exactly the tags AWS's evaluation accepts."""
    if values is None:
        return ValueMatcher("glob", pattern="*")
    if not any("*" in value for value in values):
        possible = tuple(value for value in values if TAG_VALUE_RE.match(value))
        return (
            ValueMatcher("list", items=possible)
            if possible
            else ValueMatcher("regex", pattern=NO_VALUE_PATTERN)
        )
    possible = tuple(value for value in values if WILDCARD_VALUE_RE.match(value))
    if not possible:
        return ValueMatcher("regex", pattern=NO_VALUE_PATTERN)
    return ValueMatcher("wildcards", items=possible)


def _one_line(text: str) -> str:
    """A rule title's text: white space (newlines, tabs) as single spaces."""
    return " ".join(text.split())


def _taggable_scanner_types() -> list[str]:

    known = _known_types()
    return sorted(t for t in atp.AWS_TYPE_BY_SCANNER_TYPE if known.get(t, "none") != "none")


def generated_specs(
    account_id: str, effective: atp.EffectivePolicy
) -> tuple[list[RuleSpec], list[str]]:
    """The rules that check an account's effective policy, and why a policy key could not be
    turned into a rule (a key or value TagSense's rule format refuses). Per policy key:

    - `<base>-required`: required_key on the types report_required_tag_for covers (report:
      AWS never enforces a missing key);
    - `<base>-values` (report) and `<base>-values-enforced` (enforced_for's types):
      allowed_values with the policy's values, or any value when it lists none, so that a
      key in the wrong capitalization is always reported (wrong_case), as AWS does;
    - `<base>-spelling` and `<base>-spelling-enforced` (the same types): duplicate_key, so
      that a resource with the key spelt right AND another spelling (CostCenter and
      costCenter) is reported for the other spelling, as AWS does for each tag it carries.
    """
    types = _taggable_scanner_types()
    specs: list[RuleSpec] = []
    problems: list[str] = []
    for tag in effective.tags.values():
        key = tag.required_key
        base = f"{RULE_PREFIX}{account_id}-{_key_slug(tag.policy_key)}"
        required = [t for t in atp.scanner_types_for(tag.report_required_tag_for) if t in types]
        enforced = [t for t in atp.scanner_types_for(tag.enforced_for) if t in types]
        reported = [t for t in types if t not in enforced]
        matcher = value_matcher(tag.tag_value)
        what = (
            f"values {', '.join(tag.tag_value)}"
            if tag.tag_value
            else ("no value" if tag.tag_value == () else "any value")
        )
        candidates: list[RuleSpec] = []
        origin = f"Generated from the effective AWS tag policy of account {account_id}."
        if required:
            candidates.append(
                RuleSpec(
                    id=f"{base}-required",
                    title=_one_line(f"AWS tag policy: {key} is required")[:200],
                    description=origin,
                    check="required_key",
                    key=key,
                    scope=Scope(resource_types=tuple(required), accounts=(account_id,)),
                    enforcement="report",
                )
            )
        for suffix, scoped, enforcement in (
            ("values", reported, "report"),
            ("values-enforced", enforced, "enforced"),
        ):
            if not scoped:
                continue
            candidates.append(
                RuleSpec(
                    id=f"{base}-spelling{suffix.removeprefix('values')}",
                    title=_one_line(f"AWS tag policy: {key} in one spelling only")[:200],
                    description=origin,
                    check="duplicate_key",
                    key=key,
                    scope=Scope(resource_types=tuple(scoped), accounts=(account_id,)),
                    enforcement=enforcement,  # type: ignore[arg-type]
                )
            )
            candidates.append(
                RuleSpec(
                    id=f"{base}-{suffix}",
                    title=_one_line(f"AWS tag policy: {key} spelt exactly, {what}")[:200],
                    description=origin,
                    check="allowed_values",
                    key=key,
                    values=matcher,
                    scope=Scope(resource_types=tuple(scoped), accounts=(account_id,)),
                    enforcement=enforcement,  # type: ignore[arg-type]
                )
            )
        for spec in candidates:
            try:  # through the parser: a generated rule is exactly as valid as a written one
                specs.append(spec_from_dict(rule_to_dict(spec)))
            except SpecError as exc:
                problems.append(f"{tag.policy_key}: {'; '.join(str(p) for p in exc.problems)}")
                break
    return specs, problems


def desired_rules(organization: Organization) -> tuple[dict[str, RuleSpec], list[str]]:

    desired: dict[str, RuleSpec] = {}
    problems: list[str] = []
    for item in account_policies(organization, AwsAccount.objects.for_org(organization)):
        specs, why = generated_specs(item.account.account_id, item.effective)
        desired.update((spec.id, spec) for spec in specs)
        problems.extend(f"account {item.account.account_id}, {p}" for p in why)
    return desired, problems


@transaction.atomic
def sync_generated_rules(organization: Organization) -> dict[str, list[str]]:
    """Bring the generated rules (origin aws_tag_policy) in line with every account's effective
    policy: create, update and delete through policies.services, so each change is a rule
    version with its own policy.rule_* event and is evaluated at once. Called after every
    tag policy change and when discovery changes accounts or their OU paths."""

    desired, problems = desired_rules(organization)
    existing = {
        rule.rule_id: rule
        for rule in Rule.objects.for_org(organization)
        .filter(origin=Rule.AWS_TAG_POLICY)
        .select_for_update()
    }
    created, updated, deleted = [], [], []
    for rule_id, spec in sorted(desired.items()):
        rule = existing.get(rule_id)
        if rule is None:
            try:
                services.create_rule(organization, spec, origin=Rule.AWS_TAG_POLICY)
            except SpecError as exc:  # a rule people wrote holds the id
                problems.append(f"{rule_id}: {'; '.join(p.message for p in exc.problems)}")
                continue
            created.append(rule_id)
        else:
            before = rule.version
            if services.update_rule(rule, spec, active=True).version != before:
                updated.append(rule_id)
    for rule_id, rule in sorted(existing.items()):
        if rule_id not in desired:
            services.delete_rule(rule)
            deleted.append(rule_id)
    return {
        "rules_created": created,
        "rules_updated": updated,
        "rules_deleted": deleted,
        "rule_problems": problems,
    }


def rule_problems(organization: Organization) -> list[str]:
    """What of the accounts' effective policies TagSense cannot check: policy keys no rule can
    be generated for (a key no AWS tag can have, such as one starting with aws:) and generated
    rule ids a rule people wrote holds. Empty when every effective policy is checked."""
    desired, problems = desired_rules(organization)
    held = (
        Rule.objects.for_org(organization)
        .filter(rule_id__in=list(desired))
        .exclude(origin=Rule.AWS_TAG_POLICY)
        .values_list("rule_id", flat=True)
    )
    problems.extend(
        f"{rule_id}: a rule not generated from tag policies holds the id" for rule_id in held
    )
    return problems


def has_tag_policies(organization: Organization) -> bool:
    return (
        AwsTagPolicy.objects.for_org(organization).exists()
        or Rule.objects.for_org(organization).filter(origin=Rule.AWS_TAG_POLICY).exists()
    )


# --- export: the organization's rules as an AWS tag policy -------------------------------------


def _aws_types(resource_types: Iterable[str]) -> tuple[str, ...]:
    """AWS's `service:type` for the scopes' TagSense types ("*" and "service:*" expand to every
    type TagSense knows AWS's name of); types AWS's tag policies do not name are left out."""
    patterns = list(resource_types)
    return tuple(
        sorted(
            {
                aws
                for scanner, aws in atp.AWS_TYPE_BY_SCANNER_TYPE.items()
                if any(type_matches(pattern, scanner) for pattern in patterns)
            }
        )
    )


def _unexportable(spec: RuleSpec) -> str | None:
    """Why a tag policy cannot say what the rule says, or None."""
    if spec.check == "prohibited_key":
        return "a tag policy cannot prohibit a key"
    if spec.check == "max_tags":
        return "a tag policy cannot limit the number of tags"
    if spec.when is not None:
        return "a tag policy has no conditions (`when`)"
    scope = spec.scope
    if scope.accounts or scope.regions or scope.teams or scope.tag_selector is not None:
        return (
            "a tag policy applies where it is attached (root, OU, account), not to accounts, "
            "regions, teams or tags named in a rule: attach the exported policy there instead"
        )
    if spec.check == "allowed_values" and spec.values is not None:
        if spec.values.kind == "regex":
            return "a tag policy allows listed values with `*` wildcards, not regular expressions"
        if spec.values.kind == "glob" and "?" in spec.values.pattern:
            return "a tag policy's value wildcard is `*` only, not `?`"
        patterns = spec.values.items if spec.values.kind == "wildcards" else (spec.values.pattern,)
        if spec.values.kind != "list" and any(p.count("*") > 1 for p in patterns):
            return "a tag policy allows one `*` in a value"
    if not _aws_types(scope.resource_types):
        return "none of its resource types has a name in AWS tag policies"
    return None


def export_tag_policy(rules: Iterable[Rule]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The active rules as one AWS Organizations tag policy (aws.documents.export_policy, which
    validates it) and the rules left out, each with why: `{"rule", "reason"}`.

    Per tag key (its capitalization from the rules): `tag_value` from an allowed-values rule
    (its list, or its glob); `report_required_tag_for` from required-key rules (their types);
    `enforced_for` from enforced allowed-values rules (AWS then refuses non-compliant values
    on those types; it never refuses a missing tag). Rules for one key that disagree (two
    spellings, two value lists) are left out after the first."""
    entries: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, str]] = []
    for rule in sorted(rules, key=lambda r: r.rule_id):
        if not rule.active:
            continue
        spec = rule.rule_spec
        reason = _unexportable(spec)
        entry = entries.get(spec.key.lower())
        if reason is None and entry is not None and entry["key"] != spec.key:
            reason = f"the key is spelt {entry['key']!r} by rule {entry['rules'][0]!r}"
        values = None
        if reason is None and spec.check == "allowed_values" and spec.values is not None:
            values = (
                tuple(spec.values.items)
                if spec.values.kind in ("list", "wildcards")
                else (spec.values.pattern,)
            )
            if entry is not None and entry["values"] not in (None, values):
                reason = f"other values are allowed by rule {entry['rules'][0]!r}"
        if reason is not None:
            skipped.append({"rule": rule.rule_id, "reason": reason})
            continue
        entry = entries.setdefault(
            spec.key.lower(),
            {"key": spec.key, "values": None, "enforced": set(), "report": set(), "rules": []},
        )
        entry["rules"].append(rule.rule_id)
        types = _aws_types(spec.scope.resource_types)
        if spec.check == "required_key":
            entry["report"].update(types)
        else:
            entry["values"] = values
            if spec.enforcement == "enforced":
                entry["enforced"].update(types)
    document = atp.export_policy(
        atp.ExportRule(
            key=entry["key"],
            values=entry["values"],
            enforced_for=tuple(sorted(entry["enforced"])),
            report_required_for=tuple(sorted(entry["report"])),
        )
        for entry in entries.values()
    )
    return document, skipped
