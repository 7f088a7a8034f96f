"""AWS Organizations tag policies: parse, combine into the effective policy, evaluate, export.

Pure Python: no database, no AWS call. AWS's documentation is the specification; each rule
below cites the page it comes from (the full list and the decisions taken where the pages are
silent are in docs/aws-tag-policies.md):

- SYNTAX: "Tag policy syntax and examples"
  https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_example-tag-policies.html
- INHERITANCE: "Understanding management policy inheritance" / "Inheritance operators"
  https://docs.aws.amazon.com/organizations/latest/userguide/policy-operators.html
  https://docs.aws.amazon.com/organizations/latest/userguide/inheritance-examples.html
- ENFORCEMENT: "Enforce tagging consistency"
  https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_policies_tag-policies-enforcement.html

Entry points: parse_policy(), effective_policy(), evaluate(), export_policy(), and the
resource-type table AWS_TYPE_BY_SCANNER_TYPE.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

ASSIGN = "@@assign"
APPEND = "@@append"
REMOVE = "@@remove"
CHILD_CONTROL = "@@operators_allowed_for_child_policies"
ALL = "@@all"
NONE = "@@none"
VALUE_OPERATORS: frozenset[str] = frozenset({ASSIGN, APPEND, REMOVE})

TAG_KEY = "tag_key"
TAG_VALUE = "tag_value"
ENFORCED_FOR = "enforced_for"
REPORT_REQUIRED = "report_required_tag_for"
LIST_SETTINGS = (TAG_VALUE, ENFORCED_FOR, REPORT_REQUIRED)
SETTINGS = (TAG_KEY, *LIST_SETTINGS)

# Limits AWS documents: tag keys 1-128 characters, values 0-256 (Organizations API "Tag"
# type), and a tag policy document of at most 10,000 characters, white space included
# ("Quotas and service limits for AWS Organizations"; SYNTAX: "All characters in your tag
# policy are subject to a maximum size").
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
MAX_DOCUMENT_CHARACTERS = 10_000

# The names of the errors AWS Organizations answers with (API reference, "Errors" of
# CreatePolicy, UpdatePolicy and AttachPolicy; DescribeEffectivePolicy).
MALFORMED = "MalformedPolicyDocumentException"
CONSTRAINT = "ConstraintViolationException"
CONTENT_LIMIT = "POLICY_CONTENT_LIMIT_EXCEEDED"

ALL_SUPPORTED = "ALL_SUPPORTED"
# "service:type", "service:ALL_SUPPORTED", or the older spelling "service:*" that AWS's
# inheritance examples still use ("redshift:*"). SYNTAX: "You can't use a wildcard to specify
# all services or to specify a resource for all services."
_SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")


# --- errors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagPolicyProblem:
    """One thing wrong with a document: where (a JSON path, or a line and column) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class TagPolicyError(ValueError):
    """Every problem found in a tag policy document, each naming its JSON path.

    Raised whole: a caller that gets it has nothing partly parsed to save. An API answers it
    with a 4xx whose `errors` are `[problem.as_dict() for problem in error.problems]`.
    `code` is the name of the error AWS Organizations answers the same request with
    (MalformedPolicyDocumentException for a document it cannot read,
    ConstraintViolationException for a quota, with `reason` naming which one).
    """

    def __init__(
        self,
        problems: Sequence[TagPolicyProblem],
        source: str = "",
        *,
        code: str = MALFORMED,
        reason: str = "",
    ) -> None:
        self.problems = list(problems)
        self.source = source
        self.code = code
        self.reason = reason
        prefix = f"{source}: " if source else ""
        count = len(self.problems)
        head = f"{prefix}the tag policy has {count} problem{'s' if count != 1 else ''}"
        super().__init__(head + ": " + "; ".join(str(problem) for problem in self.problems))


# --- parsed documents ------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    """One setting of one policy key (tag_key, tag_value, enforced_for, report_required_tag_for).

    `assign` is a str for tag_key and a tuple of str for the list settings; None when the
    document does not use the operator. `allowed_for_children` is None when the document
    says nothing, else the set of value-setting operators children may use.
    """

    assign: str | tuple[str, ...] | None = None
    append: tuple[str, ...] | None = None
    remove: tuple[str, ...] | None = None
    allowed_for_children: frozenset[str] | None = None


@dataclass(frozen=True)
class PolicyTag:
    """A policy key (case-insensitive identity) and its settings."""

    policy_key: str
    settings: dict[str, Setting]
    allowed_for_children: frozenset[str] | None = None


@dataclass(frozen=True)
class TagPolicy:
    """A parsed tag policy document. `tags` is keyed by the lowercased policy key."""

    tags: dict[str, PolicyTag]
    allowed_for_children: frozenset[str] | None = None
    name: str = ""


def parse_policy(document: str | bytes | Mapping[str, Any], name: str = "") -> TagPolicy:
    """Parse and validate one tag policy document (JSON text or an already decoded dict).

    Raises TagPolicyError listing every problem found, each with its JSON path
    (`tags.costcenter.tag_value.@@assign[2]`); malformed JSON names the line and column.
    `name` labels the document in the error (a file name, a policy id).
    """
    problems: list[TagPolicyProblem] = []
    if isinstance(document, str | bytes):
        if isinstance(document, bytes):
            try:
                text = document.decode("utf-8")
            except UnicodeDecodeError as error:
                raise TagPolicyError(
                    [TagPolicyProblem(f"byte {error.start + 1}", "the file is not UTF-8 text")],
                    name,
                ) from None
        else:
            text = document
        if len(text) > MAX_DOCUMENT_CHARACTERS:
            raise TagPolicyError(
                [
                    TagPolicyProblem(
                        "",
                        f"the document has {len(text)} characters; AWS allows at most "
                        f"{MAX_DOCUMENT_CHARACTERS} in a tag policy",
                    )
                ],
                name,
                code=CONSTRAINT,
                reason=CONTENT_LIMIT,
            )
        try:
            data = json.loads(text, object_pairs_hook=_reject_duplicates)
        except _DuplicateKey as duplicate:
            raise TagPolicyError(
                [
                    TagPolicyProblem(
                        "", f"the key {duplicate.key!r} appears twice in one JSON object"
                    )
                ],
                name,
            ) from None
        except json.JSONDecodeError as error:
            raise TagPolicyError(
                [
                    TagPolicyProblem(
                        f"line {error.lineno} column {error.colno}",
                        f"malformed JSON: {error.msg}",
                    )
                ],
                name,
            ) from None
    else:
        data = document
    policy = _parse_document(data, problems)
    if problems:
        raise TagPolicyError(problems, name)
    assert policy is not None  # no problems means a policy was built
    return TagPolicy(policy.tags, policy.allowed_for_children, name)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _parse_document(data: Any, problems: list[TagPolicyProblem]) -> TagPolicy | None:
    if not isinstance(data, Mapping):
        problems.append(
            TagPolicyProblem("", f"a tag policy is a JSON object, not {_type_name(data)}")
        )
        return None
    problems.extend(
        TagPolicyProblem(str(key), 'unknown key: a tag policy has only the top-level key "tags"')
        for key in data
        if key != "tags"
    )
    if "tags" not in data:
        problems.append(
            TagPolicyProblem("tags", 'missing: a tag policy starts with the key "tags"')
        )
        return None
    tags_node = data["tags"]
    if not isinstance(tags_node, Mapping):
        problems.append(TagPolicyProblem("tags", f"must be an object, not {_type_name(tags_node)}"))
        return None
    return _parse_tags(tags_node, problems)


def _parse_tags(tags_node: Mapping[Any, Any], problems: list[TagPolicyProblem]) -> TagPolicy:
    """The policy keys under `tags` (and its child control), keyed by the lowercased key."""
    allowed = None
    tags: dict[str, PolicyTag] = {}
    for policy_key, node in tags_node.items():
        path = f"tags.{policy_key}"
        if policy_key == CHILD_CONTROL:
            allowed = _parse_child_control(node, path, problems)
            continue
        refusal = _policy_key_refusal(policy_key, tags)
        if refusal is not None:
            problems.append(TagPolicyProblem(path, refusal))
            continue
        tag = _parse_policy_tag(policy_key, node, path, problems)
        if tag is not None:
            tags[policy_key.lower()] = tag
    return TagPolicy(tags, allowed)


def _policy_key_refusal(policy_key: object, tags: Mapping[str, PolicyTag]) -> str | None:
    """Why `policy_key` cannot name a policy key under `tags` (the keys accepted so far),
    or None."""
    if not isinstance(policy_key, str):
        return "a policy key must be a string"
    if policy_key.startswith("@@"):
        return (
            f"{policy_key} cannot be used here: under tags only policy keys and "
            f"{CHILD_CONTROL} are allowed"
        )
    if not policy_key.strip():
        return "a policy key cannot be empty"
    if len(policy_key) > MAX_KEY_LENGTH:
        return (
            f"the policy key has {len(policy_key)} characters; "
            f"tag keys have at most {MAX_KEY_LENGTH}"
        )
    repeated = tags.get(policy_key.lower())
    if repeated is not None:
        return f"policy keys are not case sensitive: {policy_key!r} repeats {repeated.policy_key!r}"
    return None


def _parse_policy_tag(
    policy_key: str, node: Any, path: str, problems: list[TagPolicyProblem]
) -> PolicyTag | None:
    if not isinstance(node, Mapping):
        problems.append(
            TagPolicyProblem(
                path,
                f"must be an object of settings ({', '.join(SETTINGS)}), not {_type_name(node)}",
            )
        )
        return None
    allowed = None
    settings: dict[str, Setting] = {}
    for name, value in node.items():
        setting_path = f"{path}.{name}"
        if name == CHILD_CONTROL:
            allowed = _parse_child_control(value, setting_path, problems)
        elif name in VALUE_OPERATORS:
            problems.append(
                TagPolicyProblem(
                    setting_path,
                    f"{name} applies to a setting ({', '.join(SETTINGS)}), not to the policy key",
                )
            )
        elif name in SETTINGS:
            setting = _parse_setting(policy_key, name, value, setting_path, problems)
            if setting is not None:
                settings[name] = setting
        else:
            problems.append(
                TagPolicyProblem(
                    setting_path, f"unknown setting; expected one of {', '.join(SETTINGS)}"
                )
            )
    return PolicyTag(policy_key, settings, allowed)


def _parse_setting(
    policy_key: str, name: str, node: Any, path: str, problems: list[TagPolicyProblem]
) -> Setting | None:
    if not isinstance(node, Mapping):
        problems.append(
            TagPolicyProblem(
                path,
                f"must be an object of operators such as {{{ASSIGN!r}: ...}}, "
                f"not {_type_name(node)}",
            )
        )
        return None
    before = len(problems)
    values: dict[str, Any] = {}
    allowed = None
    for operator, value in node.items():
        operator_path = f"{path}.{operator}"
        if operator == CHILD_CONTROL:
            allowed = _parse_child_control(value, operator_path, problems)
        elif operator not in VALUE_OPERATORS:
            problems.append(
                TagPolicyProblem(
                    operator_path,
                    f"unknown operator; expected {ASSIGN}, {APPEND}, {REMOVE} or {CHILD_CONTROL}",
                )
            )
        elif name == TAG_KEY:
            if operator != ASSIGN:
                problems.append(
                    TagPolicyProblem(
                        operator_path,
                        f"tag_key is a single value: only {ASSIGN} applies to it "
                        f"({APPEND} and {REMOVE} are for lists)",
                    )
                )
            else:
                values[operator] = _parse_tag_key(policy_key, value, operator_path, problems)
        else:
            values[operator] = _parse_list(name, value, operator_path, problems)
    if not node:
        problems.append(
            TagPolicyProblem(
                path, f"declares nothing: use {ASSIGN}, {APPEND}, {REMOVE} or {CHILD_CONTROL}"
            )
        )
    if len(problems) > before:
        return None
    return Setting(
        assign=values.get(ASSIGN),
        append=values.get(APPEND),
        remove=values.get(REMOVE),
        allowed_for_children=allowed,
    )


def _parse_tag_key(
    policy_key: str, value: Any, path: str, problems: list[TagPolicyProblem]
) -> str | None:
    if not isinstance(value, str):
        problems.append(TagPolicyProblem(path, f"must be a string, not {_type_name(value)}"))
        return None
    if not value:
        problems.append(TagPolicyProblem(path, "a tag key cannot be empty"))
        return None
    if len(value) > MAX_KEY_LENGTH:
        problems.append(
            TagPolicyProblem(
                path, f"{len(value)} characters; tag keys have at most {MAX_KEY_LENGTH}"
            )
        )
        return None
    if "*" in value:
        problems.append(
            TagPolicyProblem(
                path, "wildcards are allowed in tag values and resource types, not in tag keys"
            )
        )
        return None
    if value.lower() != policy_key.lower():
        problems.append(
            TagPolicyProblem(
                path,
                f"{value!r} must match the policy key {policy_key!r} except for capitalization",
            )
        )
        return None
    return value


def _parse_list(
    name: str, value: Any, path: str, problems: list[TagPolicyProblem]
) -> tuple[str, ...]:
    if not isinstance(value, list):
        problems.append(
            TagPolicyProblem(path, f"must be a list of strings, not {_type_name(value)}")
        )
        return ()
    items: list[str] = []
    for index, item in enumerate(value):
        item_path = f"{path}[{index}]"
        if not isinstance(item, str):
            problems.append(
                TagPolicyProblem(item_path, f"must be a string, not {_type_name(item)}")
            )
            continue
        if name == TAG_VALUE:
            if len(item) > MAX_VALUE_LENGTH:
                problems.append(
                    TagPolicyProblem(
                        item_path,
                        f"{len(item)} characters; tag values have at most {MAX_VALUE_LENGTH}",
                    )
                )
                continue
            if item.count("*") > 1:
                problems.append(
                    TagPolicyProblem(
                        item_path,
                        f"{item!r} has {item.count('*')} wildcards; AWS allows one per tag "
                        "value (*@example.com is allowed, *@*.com is not)",
                    )
                )
                continue
        else:
            message = _resource_type_problem(item)
            if message:
                problems.append(TagPolicyProblem(item_path, message))
                continue
        items.append(item)
    return tuple(items)


def _resource_type_problem(item: str) -> str:
    service, colon, kind = item.partition(":")
    if not colon:
        return f"{item!r} is not of the form service:type (such as ec2:instance)"
    if service == "*" or "*" in service:
        return f"{item!r}: a wildcard cannot stand for every service"
    if not _SERVICE_RE.match(service):
        return f"{item!r}: {service!r} is not a service name (lowercase, such as ec2)"
    if kind in (ALL_SUPPORTED, "*"):
        return ""
    if "*" in kind:
        return (
            f"{item!r}: a wildcard stands only for a whole type ({service}:{ALL_SUPPORTED} "
            f"or {service}:*)"
        )
    if not _TYPE_RE.match(kind):
        return f"{item!r}: {kind!r} is not a resource type"
    return ""


def _parse_child_control(
    value: Any, path: str, problems: list[TagPolicyProblem]
) -> frozenset[str] | None:
    if not isinstance(value, list) or not value:
        problems.append(
            TagPolicyProblem(
                path,
                f'must be a non-empty list such as ["{ALL}"], ["{NONE}"] or '
                f'["{ASSIGN}", "{APPEND}"], not {_type_name(value)}',
            )
        )
        return None
    allowed: set[str] = set()
    bad = False
    for index, item in enumerate(value):
        if item in (ALL, NONE):
            if len(value) > 1:
                problems.append(
                    TagPolicyProblem(
                        f"{path}[{index}]", f"{item} cannot be combined with other operators"
                    )
                )
                bad = True
            elif item == ALL:
                allowed = set(VALUE_OPERATORS)
        elif item in VALUE_OPERATORS:
            allowed.add(item)
        else:
            problems.append(
                TagPolicyProblem(
                    f"{path}[{index}]",
                    f"{item!r} is not {ALL}, {NONE}, {ASSIGN}, {APPEND} or {REMOVE}",
                )
            )
            bad = True
    return None if bad else frozenset(allowed)


# --- the effective policy --------------------------------------------------------------------


@dataclass(frozen=True)
class EffectiveTag:
    """One policy key of the effective policy.

    `tag_key` is None when no policy assigned it; AWS then requires the lowercase policy key
    (SYNTAX: "If case treatment isn't defined, lowercase is the default case treatment").
    `tag_value` None means any value is compliant; an empty tuple means no value is.
    """

    policy_key: str
    tag_key: str | None
    tag_value: tuple[str, ...] | None
    enforced_for: tuple[str, ...]
    report_required_tag_for: tuple[str, ...]

    @property
    def required_key(self) -> str:
        return self.tag_key if self.tag_key is not None else self.policy_key.lower()


@dataclass(frozen=True)
class IgnoredOperation:
    """A child policy's operator that an ancestor's child control operator disallowed."""

    level: int
    policy: str
    path: str
    operator: str
    reason: str


@dataclass(frozen=True)
class EffectivePolicy:
    tags: dict[str, EffectiveTag]  # keyed by lowercased policy key
    ignored: tuple[IgnoredOperation, ...] = ()

    def rendered(self) -> dict[str, Any]:
        """The effective policy as AWS displays it: values, no operators.

        Empty enforced_for / report_required_tag_for lists are left out (AWS's example 3
        shows a removed enforced_for as absent); an empty tag_value list is kept, since it
        means "no value is compliant" (SYNTAX, example "Prevent use of a tag key").
        """
        tags: dict[str, Any] = {}
        for tag in self.tags.values():
            entry: dict[str, Any] = {}
            if tag.tag_key is not None:
                entry[TAG_KEY] = tag.tag_key
            if tag.tag_value is not None:
                entry[TAG_VALUE] = list(tag.tag_value)
            if tag.enforced_for:
                entry[ENFORCED_FOR] = list(tag.enforced_for)
            if tag.report_required_tag_for:
                entry[REPORT_REQUIRED] = list(tag.report_required_tag_for)
            tags[tag.policy_key] = entry
        return {"tags": tags}

    def rendered_json(self) -> str:
        return json.dumps(self.rendered(), indent=4, ensure_ascii=False)


@dataclass
class _State:
    policy_key: str
    tag_key: str | None = None
    lists: dict[str, list[str] | None] = field(
        default_factory=lambda: {name: None for name in LIST_SETTINGS}
    )

    def effective(self) -> EffectiveTag:
        tag_value = self.lists[TAG_VALUE]
        return EffectiveTag(
            policy_key=self.policy_key,
            tag_key=self.tag_key,
            tag_value=None if tag_value is None else tuple(tag_value),
            enforced_for=tuple(self.lists[ENFORCED_FOR] or ()),
            report_required_tag_for=tuple(self.lists[REPORT_REQUIRED] or ()),
        )


PolicyInput = TagPolicy | str | bytes | Mapping[str, Any]


def effective_policy(levels: Sequence[Sequence[PolicyInput]]) -> EffectivePolicy:
    """Combine the policies attached along root -> OU(s) -> account into the effective policy.

    `levels[0]` holds the policies attached to the root, the last entry those attached to the
    account; each level lists its policies in the order they were attached. Raw documents are
    parsed first; a TagPolicyError names the level and policy (`levels[1][0]`).

    How (INHERITANCE, "Inheritance operators" and "Inheritance examples" 1-6):
    - @@assign overwrites the inherited value (a whole list for lists); @@append adds values
      not already present; @@remove takes values out. A setting may use several operators:
      they apply in the order assign, append, remove.
    - Policies at one level apply in attachment order, except that a single level assigns a
      setting once: a later policy's @@assign of a setting an earlier policy at the same level
      already assigned is ignored (example 6: PROJECT, attached first, wins over project).
    - @@operators_allowed_for_child_policies on a node (tags, a policy key, or a setting)
      restricts the value-setting operators that policies at LOWER levels may use on that node
      and everything under it. Several declarations at one level intersect (example 5); a
      lower level can narrow but never widen what is inherited (the note under "Child control
      operators"). A disallowed operator is ignored, the rest of that policy still applies
      (example 4: the child's @@assign "PROJECT" on a locked tag_key is dropped while its
      @@append to tag_value takes effect). Every ignored operator is listed in `ignored`.
    """
    merge = _Merge()
    for level_index, level in enumerate(_parsed_levels(levels)):
        merge.add_level(level_index, level)
    return merge.result()


def _parsed_levels(levels: Sequence[Sequence[PolicyInput]]) -> list[list[TagPolicy]]:
    """Every level's policies parsed; a TagPolicyError lists the problems of all of them,
    each path prefixed with the policy's place (`levels[1][0]`)."""
    parsed: list[list[TagPolicy]] = []
    problems: list[TagPolicyProblem] = []
    for level_index, level in enumerate(levels):
        parsed_level: list[TagPolicy] = []
        for policy_index, document in enumerate(level):
            if isinstance(document, TagPolicy):
                parsed_level.append(document)
                continue
            label = f"levels[{level_index}][{policy_index}]"
            try:
                parsed_level.append(parse_policy(document, name=label))
            except TagPolicyError as error:
                problems.extend(
                    TagPolicyProblem(f"{label} {problem.path}".strip(), problem.message)
                    for problem in error.problems
                )
        parsed.append(parsed_level)
    if problems:
        raise TagPolicyError(problems)
    return parsed


class _Merge:
    """The effective policy being combined, one level at a time from the root down."""

    def __init__(self) -> None:
        self.state: dict[str, _State] = {}
        # Restrictions in force, by node: () is the tags node, (key,) a policy key,
        # (key, setting) one setting.
        self.inherited: dict[tuple[str, ...], frozenset[str]] = {}
        self.ignored: list[IgnoredOperation] = []

    def add_level(self, level_index: int, level: Sequence[TagPolicy]) -> None:
        """Apply one level's policies in attachment order; its child controls then restrict
        the levels below."""
        declared: dict[tuple[str, ...], frozenset[str]] = {}
        assigned_here: set[tuple[str, str]] = set()
        for policy_index, policy in enumerate(level):
            label = policy.name or f"levels[{level_index}][{policy_index}]"
            for node, operators in _child_controls(policy):
                _declare(declared, node, operators)
            for lowered, tag in policy.tags.items():
                for name, setting in tag.settings.items():
                    allowed = _allowed(self.inherited, lowered, name)
                    for operator, operand in _operations(setting):
                        reason = _ignored_because(
                            operator, allowed, (lowered, name) in assigned_here
                        )
                        if reason is not None:
                            path = f"tags.{tag.policy_key}.{name}.{operator}"
                            self.ignored.append(
                                IgnoredOperation(level_index, label, path, operator, reason)
                            )
                            continue
                        _apply(self._entry(lowered, tag.policy_key), name, operator, operand)
                        if operator == ASSIGN:
                            assigned_here.add((lowered, name))
        for node, operators in declared.items():
            self.inherited[node] = self.inherited.get(node, frozenset(VALUE_OPERATORS)) & operators

    def _entry(self, lowered: str, policy_key: str) -> _State:
        entry = self.state.get(lowered)
        if entry is None:
            entry = self.state[lowered] = _State(policy_key)
        return entry

    def result(self) -> EffectivePolicy:
        tags = {lowered: entry.effective() for lowered, entry in self.state.items()}
        return EffectivePolicy(tags, tuple(self.ignored))


def _child_controls(
    policy: TagPolicy,
) -> Iterator[tuple[tuple[str, ...], frozenset[str] | None]]:
    """Every node of the policy with what it declares children may use (None: nothing)."""
    yield (), policy.allowed_for_children
    for lowered, tag in policy.tags.items():
        yield (lowered,), tag.allowed_for_children
        for name, setting in tag.settings.items():
            yield (lowered, name), setting.allowed_for_children


def _operations(setting: Setting) -> Iterator[tuple[str, str | tuple[str, ...]]]:
    """The setting's operators the document uses, in the order they apply."""
    for operator, operand in (
        (ASSIGN, setting.assign),
        (APPEND, setting.append),
        (REMOVE, setting.remove),
    ):
        if operand is not None:
            yield operator, operand


def _ignored_because(operator: str, allowed: frozenset[str], assigned_here: bool) -> str | None:
    """Why an operation is ignored (a parent's child control, or an earlier @@assign at the
    same level), or None when it applies."""
    if operator not in allowed:
        return _refusal(allowed, operator)
    if operator == ASSIGN and assigned_here:
        return "a policy attached earlier at the same level already assigned this setting"
    return None


def _declare(
    declared: dict[tuple[str, ...], frozenset[str]],
    node: tuple[str, ...],
    operators: frozenset[str] | None,
) -> None:
    if operators is not None:
        declared[node] = declared.get(node, frozenset(VALUE_OPERATORS)) & operators


def _allowed(
    inherited: Mapping[tuple[str, ...], frozenset[str]], lowered: str, name: str
) -> frozenset[str]:
    allowed = frozenset(VALUE_OPERATORS)
    for node in ((), (lowered,), (lowered, name)):
        if node in inherited:
            allowed &= inherited[node]
    return allowed


def _refusal(allowed: frozenset[str], operator: str) -> str:
    if not allowed:
        return f"a parent policy allows no operators here ({CHILD_CONTROL}: [{NONE!r}])"
    return (
        f"a parent policy allows only {', '.join(sorted(allowed))} here, not {operator} "
        f"({CHILD_CONTROL})"
    )


def _apply(entry: _State, name: str, operator: str, operand: str | tuple[str, ...]) -> None:
    if name == TAG_KEY:
        assert isinstance(operand, str)  # the parser allows only @@assign of a string
        entry.tag_key = operand
        return
    assert isinstance(operand, tuple)
    current = entry.lists[name]
    if operator == ASSIGN:
        entry.lists[name] = _unique(operand)
    elif operator == APPEND:
        merged = list(current or [])
        merged.extend(value for value in operand if value not in merged)
        entry.lists[name] = _unique(merged)
    elif current is not None:  # @@remove of something never set changes nothing
        entry.lists[name] = [value for value in current if value not in operand]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# --- evaluation ------------------------------------------------------------------------------

NoncomplianceKind = Literal["capitalization", "value", "missing"]


@dataclass(frozen=True)
class Noncompliance:
    """One reason a resource does not comply with the effective tag policy.

    `enforced` is True when the resource type is in the key's enforced_for, i.e. AWS would
    refuse a tagging write that produced this state. A missing key is never enforced:
    "Basic compliance rules do not enforce tag compliance on resources that are created
    without tags. This capability does not enforce missing tag keys." (ENFORCEMENT).
    """

    policy_key: str
    expected_key: str
    kind: NoncomplianceKind
    found_key: str | None
    found_value: str | None
    enforced: bool
    allowed_values: tuple[str, ...] | None = None


def noncompliance(
    effective: EffectivePolicy, resource_type_aws: str, tags: Mapping[str, str]
) -> list[Noncompliance]:
    """Check one resource's tags against the effective policy, as AWS does.

    `resource_type_aws` is AWS's `service:type` (see aws_resource_type() for a scanner type).
    For every policy key, every resource tag whose key equals it ignoring case is checked:
    - capitalization: the key is not exactly the policy's tag_key (or the lowercase policy
      key when no tag_key is assigned);
    - value: the policy lists values and the tag's value matches none of them (case
      sensitive; one `*` in a listed value stands for any run of characters, so `300*`
      accepts `300` and `3001`, and `*` alone accepts every value);
    - missing: report_required_tag_for covers the type and no tag has the key in any case
      (a key present in the wrong case is reported as capitalization, not as missing).
    Tags the policy does not name are not evaluated (SYNTAX, example 1).
    """
    results: list[Noncompliance] = []
    for tag in effective.tags.values():
        expected = tag.required_key
        enforced = covers(tag.enforced_for, resource_type_aws)
        present = [(key, value) for key, value in tags.items() if key.lower() == expected.lower()]
        if not present:
            if covers(tag.report_required_tag_for, resource_type_aws):
                results.append(
                    Noncompliance(tag.policy_key, expected, "missing", None, None, False)
                )
            continue
        for key, value in sorted(present):
            if key != expected:
                results.append(
                    Noncompliance(tag.policy_key, expected, "capitalization", key, value, enforced)
                )
            if tag.tag_value is not None and not value_allowed(tag.tag_value, value):
                results.append(
                    Noncompliance(
                        tag.policy_key,
                        expected,
                        "value",
                        key,
                        value,
                        enforced,
                        tag.tag_value,
                    )
                )
    return results


def value_allowed(allowed: Iterable[str], value: str) -> bool:
    """True when `value` equals an allowed value, or matches one with its single `*`."""
    for pattern in allowed:
        if "*" not in pattern:
            if value == pattern:
                return True
            continue
        prefix, _, suffix = pattern.partition("*")
        if (
            len(value) >= len(prefix) + len(suffix)
            and value.startswith(prefix)
            and value.endswith(suffix)
        ):
            return True
    return False


def covers(resource_types: Iterable[str], resource_type_aws: str) -> bool:
    """True when the list names the type, or its service with ALL_SUPPORTED (or `*`).

    AWS's ALL_SUPPORTED means the service's types that support tag policies; TagSense cannot
    know that list offline, so it treats ALL_SUPPORTED as every type of the service.
    """
    service = resource_type_aws.partition(":")[0]
    for entry in resource_types:
        entry_service, _, kind = entry.partition(":")
        if entry == resource_type_aws:
            return True
        if entry_service == service and kind in (ALL_SUPPORTED, "*"):
            return True
    return False


# --- TagSense scanner types and AWS tag-policy resource types --------------------------------

# Every scanner's resource_type (inventory/scanners/) -> the `service:type` that AWS tag
# policies use for it. They are the same string except for the classic load balancer: its ARN
# is arn:aws:elasticloadbalancing:...:loadbalancer/<name>, so tag policies know it as
# elasticloadbalancing:loadbalancer, like ALBs and NLBs. The table names types; whether AWS
# supports ENFORCEMENT for a type is AWS's list ("Resources that support enforcement").
AWS_TYPE_BY_SCANNER_TYPE: dict[str, str] = {
    "cloudfront:distribution": "cloudfront:distribution",
    "dynamodb:table": "dynamodb:table",
    "ec2:image": "ec2:image",
    "ec2:instance": "ec2:instance",
    "ec2:security-group": "ec2:security-group",
    "ec2:snapshot": "ec2:snapshot",
    "ec2:subnet": "ec2:subnet",
    "ec2:volume": "ec2:volume",
    "ec2:vpc": "ec2:vpc",
    "ecs:cluster": "ecs:cluster",
    "ecs:service": "ecs:service",
    "eks:cluster": "eks:cluster",
    "eks:nodegroup": "eks:nodegroup",
    "elasticache:cluster": "elasticache:cluster",
    "elasticfilesystem:file-system": "elasticfilesystem:file-system",
    "elasticloadbalancing:loadbalancer": "elasticloadbalancing:loadbalancer",
    "elasticloadbalancing:targetgroup": "elasticloadbalancing:targetgroup",
    "elb:loadbalancer": "elasticloadbalancing:loadbalancer",
    "lambda:function": "lambda:function",
    "rds:cluster": "rds:cluster",
    "rds:db": "rds:db",
    "s3:bucket": "s3:bucket",
}


def aws_resource_type(scanner_type: str) -> str:
    """AWS's tag-policy `service:type` for a TagSense scanner type (ValueError if unknown)."""
    try:
        return AWS_TYPE_BY_SCANNER_TYPE[scanner_type]
    except KeyError:
        raise ValueError(f"no AWS tag-policy resource type for {scanner_type!r}") from None


def scanner_types_for(resource_types: Iterable[str]) -> list[str]:
    """The TagSense scanner types an enforced_for / report_required_tag_for list covers."""
    types = list(resource_types)
    return sorted(
        scanner for scanner, aws in AWS_TYPE_BY_SCANNER_TYPE.items() if covers(types, aws)
    )


# --- export ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportRule:
    """A neutral rule to write as a tag policy.

    `key` is the tag key with the capitalization to require; `values` None allows any value;
    the type lists hold AWS `service:type` strings (aws_resource_type() converts scanner
    types) or `service:ALL_SUPPORTED`.
    """

    key: str
    values: tuple[str, ...] | None = None
    enforced_for: tuple[str, ...] = ()
    report_required_for: tuple[str, ...] = ()


def export_policy(rules: Iterable[ExportRule]) -> dict[str, Any]:
    """A tag policy document (with @@assign operators) for the rules, validated by parse_policy.

    The policy key is the lowercased tag key, as in AWS's examples. Raises TagPolicyError
    when a rule cannot be expressed (a wildcard in a key, two rules for one key, a document
    over AWS's 10,000 characters once written compactly).
    """
    tags: dict[str, Any] = {}
    problems: list[TagPolicyProblem] = []
    for index, rule in enumerate(rules):
        policy_key = rule.key.lower()
        if policy_key in tags:
            problems.append(
                TagPolicyProblem(f"rules[{index}]", f"a second rule for the key {rule.key!r}")
            )
            continue
        entry: dict[str, Any] = {TAG_KEY: {ASSIGN: rule.key}}
        if rule.values is not None:
            entry[TAG_VALUE] = {ASSIGN: list(rule.values)}
        if rule.enforced_for:
            entry[ENFORCED_FOR] = {ASSIGN: list(rule.enforced_for)}
        if rule.report_required_for:
            entry[REPORT_REQUIRED] = {ASSIGN: list(rule.report_required_for)}
        tags[policy_key] = entry
    if problems:
        raise TagPolicyError(problems, "export")
    document = {"tags": tags}
    parse_policy(export_json(document), name="export")
    return document


def export_json(document: Mapping[str, Any]) -> str:
    """The compact JSON text AWS stores (white space counts against its size limit)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)
