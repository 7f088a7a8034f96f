"""The reference semantics of a tag rule, for one resource at a time.

``evaluate_resource(rule, view)`` is what a rule means: the set-based SQL implementation must give
the same answer for every rule and resource (a hypothesis test compares them). Each step below is
spelled out in docs/policies.md; a change here is a change of meaning and goes there too.

Pure Python, no Django, no database: CI checks call it on planned resources.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from inventory.scanners.base import scanners

from . import matching
from .spec import RuleSpec, fold

ViolationKind = Literal["missing", "wrong_case", "bad_value", "prohibited", "too_many_tags"]


@dataclass(frozen=True)
class ResourceView:
    """What a rule may look at: the type, the tags, where the resource lives and which teams
    hold its AWS account (team slugs)."""

    resource_type: str
    tags: Mapping[str, str]
    account_id: str = ""
    region: str = ""
    teams: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Violation:
    rule_id: str
    kind: ViolationKind
    key: str | None  # the rule's canonical key (None for too_many_tags)
    found_key: str | None  # the key found on the resource (wrong_case, bad_value, prohibited)
    value: str | None  # the value found (never for prohibited: it may be a secret)
    message: str
    expected: str | None = None  # bad_value: what would be accepted
    count: int | None = None  # too_many_tags: user tags on the resource
    limit: int | None = None  # too_many_tags: the rule's maximum


@functools.lru_cache(maxsize=1024)
def _tagging_of(resource_type: str) -> str | None:

    cls = scanners().get(resource_type)
    return cls.tagging if cls is not None else None


def type_matches(pattern: str, resource_type: str) -> bool:
    """``*`` every type; ``service:*`` every type of that service; else the exact type."""
    if pattern == "*":
        return True
    if pattern.endswith(":*"):
        return resource_type.startswith(pattern[:-1])
    return pattern == resource_type


def in_scope(rule: RuleSpec, view: ResourceView) -> bool:
    """Whether the rule looks at this resource at all (its condition ``when`` is not part of
    scope: see applies()). Untaggable types are never in scope."""
    if _tagging_of(view.resource_type) == "none":
        return False
    scope = rule.scope
    if not any(type_matches(p, view.resource_type) for p in scope.resource_types):
        return False
    if scope.accounts and view.account_id not in scope.accounts:
        return False
    if scope.regions and view.region not in scope.regions:
        return False
    if scope.teams and not (set(scope.teams) & view.teams):
        return False
    return scope.tag_selector is None or scope.tag_selector.matches(view.tags)


def applies(rule: RuleSpec, view: ResourceView) -> bool:
    """In scope and, for a conditional rule, its condition holds."""
    return in_scope(rule, view) and (rule.when is None or rule.when.matches(view.tags))


def variants(rule: RuleSpec, tags: Mapping[str, str]) -> list[str]:
    """The resource's keys, other than the exact canonical key, that are the rule's key under
    another spelling: equal to the key or to an alias after ASCII case folding. Sorted by code
    point, so the first one is the one reported."""
    wanted = {fold(rule.key), *(fold(alias) for alias in rule.aliases)}
    return sorted(k for k in tags if k != rule.key and fold(k) in wanted)


@functools.lru_cache(maxsize=1024)
def _folded_patterns(key: str, aliases: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(fold(p) for p in (key, *aliases))


def _any_glob(patterns: tuple[str, ...], folded_key: str) -> bool:
    """Whether a folded key matches one of the folded globs (spec.glob_match, ignoring case,
    with each side folded once instead of per pattern)."""
    return any(matching.glob_match(p, folded_key) for p in patterns)


def user_tag_count(tags: Mapping[str, str]) -> int:
    """Tags that count towards AWS's 50: every key not starting with aws: (in any case)."""
    return sum(1 for key in tags if not fold(key).startswith("aws:"))


def evaluate_resource(rule: RuleSpec, view: ResourceView) -> list[Violation]:
    """The rule's violation on this resource: an empty list, or exactly one Violation."""
    if not applies(rule, view):
        return []
    violation = _check(rule, view.tags)
    return [] if violation is None else [violation]


def _check(rule: RuleSpec, tags: Mapping[str, str]) -> Violation | None:
    if rule.check == "max_tags":
        count = user_tag_count(tags)
        limit = rule.max if rule.max is not None else 50
        if count <= limit:
            return None
        return Violation(
            rule.id,
            "too_many_tags",
            None,
            None,
            None,
            f"{count} user tags, at most {limit} allowed",
            count=count,
            limit=limit,
        )

    if rule.check == "prohibited_key":
        patterns = _folded_patterns(rule.key, rule.aliases)
        found = sorted(k for k in tags if _any_glob(patterns, fold(k)))
        if not found:
            return None
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return Violation(
            rule.id,
            "prohibited",
            rule.key,
            found[0],
            None,
            f"tag {found[0]} is not allowed{more}",
        )

    if rule.check == "duplicate_key":
        others = variants(rule, tags) if rule.key in tags else []
        if not others:
            return None
        more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
        return Violation(
            rule.id,
            "wrong_case",
            rule.key,
            others[0],
            tags[others[0]],
            f"tag {others[0]} repeats {rule.key} in another spelling{more}",
        )

    if rule.key in tags:
        if rule.check == "required_key":
            return None
        value = tags[rule.key]
        if rule.values is None or rule.values.matches(value):
            return None
        expected = rule.values.describe()
        return Violation(
            rule.id,
            "bad_value",
            rule.key,
            rule.key,
            value,
            f"{rule.key}={value!r} is not allowed: expected {expected}",
            expected=expected,
        )

    others = variants(rule, tags)
    if others:
        found_key = others[0]
        return Violation(
            rule.id,
            "wrong_case",
            rule.key,
            found_key,
            tags[found_key],
            f"tag {found_key} should be spelt {rule.key}",
        )
    if rule.check == "required_key":
        return Violation(rule.id, "missing", rule.key, None, None, f"tag {rule.key} is missing")
    return None  # allowed_values says nothing about a key that is absent


def suggested_fix(violation: Violation, check: str = "") -> str:
    """One line telling a person what to change on the resource (`check`: the rule's)."""
    if violation.kind == "missing":
        return f"add tag {violation.key}"
    if violation.kind == "wrong_case" and check == "duplicate_key":
        return f"remove tag {violation.found_key} ({violation.key} is set)"
    if violation.kind == "wrong_case":
        return f"rename tag {violation.found_key} to {violation.key}"
    if violation.kind == "bad_value":
        return f"change the value of {violation.key} to {violation.expected}"
    if violation.kind == "prohibited":
        return f"remove tag {violation.found_key}"
    excess = (violation.count or 0) - (violation.limit or 0)
    plural = "s" if excess != 1 else ""
    return f"remove {excess} user tag{plural} (at most {violation.limit})"
