"""Tag rules as data: the policy-as-code format (YAML, ``version: 1``) and its parser.

``parse_rules(text)`` reads a rule file and either returns every rule or raises one
``SpecError`` listing every problem with its place (rule index and id, field path, YAML line).
Nothing is returned half-checked, so a caller that saves the result after a successful parse
never saves part of a bad file. ``dump_rules(rules)`` writes the canonical form;
``parse_rules(dump_rules(rules)) == rules`` for every valid rule list.

The format and the exact meaning of every field are documented in docs/policies.md, which is
the reference the set-based SQL implementation has to match. This module holds no Django
state and may be imported from CI tools.
"""

from __future__ import annotations

import functools
import re
import re._constants as sre_constants  # Python 3.11: the regex parser's opcodes
import re._parser as sre_parser  # Python 3.11: used only to vet patterns, never to match
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from inventory.scanners.base import scanners
from policies import yaml_limits
from policies.engine import matching

FORMAT_VERSION = 1
MAX_TEXT_BYTES = 1_000_000
MAX_RULES = 1_000
MAX_LIST_ITEMS = 500
# Allowed values a rule may list (list or wildcards): as many as an AWS tag policy of 10,000
# characters can hold (`"1",` is four), so that every imported policy becomes a rule.
MAX_VALUE_ITEMS = 5_000
MAX_REGEX_LENGTH = 200
MAX_REPEAT_COUNT = 1_000  # the largest m or n in a regex's {m,n}
MAX_REGEX_STATES = 2_000  # the largest automaton a regex may expand to (policies.engine.matching)
MAX_GLOB_LENGTH = 256  # a glob's characters, wildcards included (as long as a tag value)
AWS_MAX_USER_TAGS = 50

CHECKS = ("required_key", "allowed_values", "prohibited_key", "max_tags", "duplicate_key")
SEVERITIES = ("high", "medium", "low")
ENFORCEMENTS = ("enforced", "report")
VALUE_KINDS = ("list", "glob", "regex", "wildcards")

Check = Literal["required_key", "allowed_values", "prohibited_key", "max_tags", "duplicate_key"]
Severity = Literal["high", "medium", "low"]
Enforcement = Literal["enforced", "report"]
ValueKind = Literal["list", "glob", "regex", "wildcards"]

RULE_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# AWS tag keys and values: letters, digits, white space and _ . : / = + - @ (any script).
_TAG_CHARS = r"[\w\s.:/=+\-@]"
TAG_KEY_RE = re.compile(rf"^{_TAG_CHARS}{{1,128}}$")
TAG_VALUE_RE = re.compile(rf"^{_TAG_CHARS}{{0,256}}$")
KEY_GLOB_RE = re.compile(rf"^(?:{_TAG_CHARS}|[*?]){{1,128}}$")
WILDCARD_VALUE_RE = re.compile(rf"^(?:{_TAG_CHARS}|\*){{0,{MAX_GLOB_LENGTH}}}$")
# Free text: no control characters (and no Unicode line separators, which YAML folds);
# a title is one line of at most 200 characters, a description at most 2,000 and may hold
# line breaks and tabs.
_NOT_TEXT = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029"
TITLE_RE = re.compile(rf"^(?=.*\S)[^{_NOT_TEXT}\t\n]{{1,200}}\Z")
DESCRIPTION_RE = re.compile(rf"^[^{_NOT_TEXT}]{{0,2000}}\Z")
TITLE_WHAT = "a one-line title (1-200 characters, no control characters)"
DESC_WHAT = "a description (at most 2,000 characters, no control characters)"
ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
REGION_RE = re.compile(r"^(?:global|[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})$")
TEAM_RE = re.compile(r"^[-a-zA-Z0-9_]{1,64}$")

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """ASCII-only lower case: A-Z become a-z, nothing else changes.

    Every case-insensitive comparison of the rules uses this, not str.lower(), so that SQL can
    do the same with lower(k COLLATE "C") whatever the database's locale.
    """
    if text.isascii():  # the usual case; str.lower() is then the same and much faster
        return text.lower()
    return text.translate(_ASCII_LOWER)


def glob_match(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """Whether the rules' glob matches the whole text: ``*`` any run of characters (also
    none), ``?`` exactly one character, every other character literal (no classes, no
    escapes). Linear in the text whatever the glob (policies.engine.matching)."""
    if ignore_case:
        pattern, text = _folded(pattern), fold(text)
    return matching.glob_match(pattern, text)


@functools.lru_cache(maxsize=4096)
def _folded(pattern: str) -> str:
    """fold() of a rule's pattern: a handful of patterns, matched against every tag key."""
    return fold(pattern)


def regex_matches(pattern: str, value: str) -> bool:
    """``re.fullmatch(pattern, value)``, in linear time (policies.engine.matching). A stored pattern
    the linear engine cannot run (possessive repeats, or an automaton past
    matching.MAX_PROGRAM states: only rules saved before vet_regex refused them) matches no
    value, as in the SQL engine (policies.engine.sql)."""
    try:
        return matching.regex_fullmatch(pattern, value)
    except matching.UnsupportedPattern:
        return False


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagSelector:
    """A resource matches when it has the tag ``key`` (exact spelling) and, when ``values`` is
    not empty, that tag's value is exactly one of them."""

    key: str
    values: tuple[str, ...] = ()

    def matches(self, tags: Mapping[str, str]) -> bool:
        if self.key not in tags:
            return False
        return not self.values or tags[self.key] in self.values


@dataclass(frozen=True)
class ValueMatcher:
    """Allowed values: ``list`` exact (case-sensitive) members, ``glob`` one glob pattern,
    ``regex`` one Python regular expression that must match the whole value, ``wildcards``
    values in which ``*`` stands for any run of characters and every other character,
    ``?`` included, for itself (AWS tag policies' values)."""

    kind: ValueKind
    items: tuple[str, ...] = ()  # kind == "list" or "wildcards"
    pattern: str = ""  # kind == "glob" or "regex"

    def matches(self, value: str) -> bool:
        if self.kind == "list":
            return value in self.items
        if self.kind == "wildcards":
            return any(matching.wildcard_match(item, value) for item in self.items)
        if self.kind == "glob":
            return glob_match(self.pattern, value)
        return regex_matches(self.pattern, value)

    def describe(self) -> str:
        if self.kind == "list":
            return "one of " + ", ".join(self.items)
        if self.kind == "wildcards":
            return "one of " + ", ".join(self.items) + " (* stands for any characters)"
        return f"matching {self.kind} {self.pattern}"


@dataclass(frozen=True)
class Scope:
    """Which resources a rule looks at. Empty tuples mean "all"."""

    resource_types: tuple[str, ...] = ("*",)
    accounts: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    tag_selector: TagSelector | None = None


@dataclass(frozen=True)
class RuleSpec:
    id: str
    title: str
    check: Check
    key: str = ""  # empty for max_tags
    aliases: tuple[str, ...] = ()
    values: ValueMatcher | None = None  # allowed_values only
    max: int | None = None  # max_tags only
    when: TagSelector | None = None
    scope: Scope = field(default_factory=Scope)
    severity: Severity = "medium"
    enforcement: Enforcement = "report"
    description: str = ""


# --- errors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecProblem:
    where: str  # "rules[2] (owner-required).values.regex"
    message: str
    line: int | None = None  # 1-based line of the YAML text, when known

    def __str__(self) -> str:
        at = f"line {self.line}, " if self.line else ""
        return f"{at}{self.where}: {self.message}"


class SpecError(ValueError):
    """A rule or framework file that cannot be used; ``problems`` names every fault found."""

    def __init__(self, problems: Iterable[SpecProblem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "invalid policy file")

    def as_dicts(self) -> list[dict[str, Any]]:
        return [{"where": p.where, "message": p.message, "line": p.line} for p in self.problems]


# --- YAML with line numbers ------------------------------------------------------------------

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Constructor(yaml.SafeLoader):
    """Builds scalars, with numbers and dates bounded (policies/yaml_limits.py)."""


yaml_limits.bound_scalars(_Constructor)


class Node:
    """A loaded YAML value together with the line it starts on (1-based)."""

    __slots__ = ("value", "line")

    def __init__(self, value: Any, line: int):
        self.value = value
        self.line = line


def load_yaml(text: str | bytes, *, what: str = "file") -> Node:
    """Safe-load one YAML (or JSON) document into Nodes. Refuses oversized text, anchors and
    aliases (no billion laughs), deep nesting and overlong numbers (policies/yaml_limits.py),
    duplicate mapping keys and non-text mapping keys."""
    if isinstance(text, bytes):
        if len(text) > MAX_TEXT_BYTES:
            raise SpecError([SpecProblem(what, f"larger than {MAX_TEXT_BYTES} bytes")])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SpecError([SpecProblem(what, f"not UTF-8 text (byte {exc.start})")]) from None
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise SpecError([SpecProblem(what, f"larger than {MAX_TEXT_BYTES} bytes")])
    try:
        yaml_limits.screen(text, _Loader)
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml_limits.RefusedYAML as exc:
        raise SpecError([SpecProblem(what, exc.problem or "", _line(exc))]) from None
    except yaml.MarkedYAMLError as exc:
        message = f"not valid YAML or JSON: {exc.problem or exc.context}"
        raise SpecError([SpecProblem(what, message, _line(exc))]) from None
    except yaml.YAMLError as exc:
        raise SpecError([SpecProblem(what, f"not valid YAML or JSON: {exc}")]) from None
    if len(nodes) != 1 or nodes[0] is None:
        raise SpecError([SpecProblem(what, "expected exactly one YAML document")])
    problems: list[SpecProblem] = []
    root = _convert(nodes[0], "", problems, _Constructor(""))
    if problems:
        raise SpecError(problems)
    return root


_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{name}" for name in ("map", "seq", "str", "int", "float", "bool", "null")
}


def _line(exc: yaml.MarkedYAMLError) -> int | None:
    """The 1-based line a YAML error points at, when it has one."""
    mark = exc.problem_mark or exc.context_mark
    return mark.line + 1 if mark is not None else None


def _convert(
    node: yaml.Node, where: str, problems: list[SpecProblem], constructor: yaml.SafeLoader
) -> Node:
    line = node.start_mark.line + 1
    if node.tag not in _PLAIN_TAGS:
        problems.append(SpecProblem(where or "file", f"unsupported YAML tag {node.tag}", line))
        return Node(None, line)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != (
                "tag:yaml.org,2002:str"
            ):
                problems.append(SpecProblem(where or "file", "mapping keys must be text", key_line))
                continue
            key = key_node.value
            if key in result:
                problems.append(SpecProblem(_join(where, key), "appears twice", key_line))
                continue
            result[key] = _convert(value_node, _join(where, key), problems, constructor)
        return Node(result, line)
    if isinstance(node, yaml.SequenceNode):
        items = [
            _convert(item, f"{where}[{i}]", problems, constructor)
            for i, item in enumerate(node.value)
        ]
        return Node(items, line)
    try:
        value = constructor.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        problems.append(SpecProblem(where, f"unreadable value: {exc}", line))
        value = None
    return Node(value, line)


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _type_name(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean (quote yes/no/on/off to mean text)"
    if isinstance(value, int | float):
        return "a number (put it in quotes to mean text)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


# --- the parser ------------------------------------------------------------------------------


class _Reader:
    """Collects problems while reading typed fields out of Nodes."""

    def __init__(self, *, stored: bool = False) -> None:
        self.problems: list[SpecProblem] = []
        self.stored = stored  # reading a saved rule back: see parse_rules

    def fail(self, where: str, message: str, node: Node | None) -> None:
        self.problems.append(SpecProblem(where or "file", message, node.line if node else None))

    def mapping(
        self, node: Node, where: str, allowed: Iterable[str], required: Iterable[str] = ()
    ) -> dict[str, Node] | None:
        if not isinstance(node.value, dict):
            self.fail(where, f"expected a mapping, found {_type_name(node.value)}", node)
            return None
        allowed = tuple(allowed)
        for key, child in node.value.items():
            if key not in allowed:
                self.fail(
                    _join(where, key),
                    f"unknown field {key!r} (expected one of: {', '.join(allowed)})",
                    child,
                )
        for key in required:
            if key not in node.value:
                self.fail(_join(where, key), "is required", node)
        return {k: v for k, v in node.value.items() if k in allowed}

    def text(
        self, node: Node, where: str, pattern: re.Pattern[str] | None = None, what: str = ""
    ) -> str | None:
        if not isinstance(node.value, str):
            self.fail(where, f"expected text, found {_type_name(node.value)}", node)
            return None
        if pattern is not None and not pattern.match(node.value):
            self.fail(where, f"{node.value!r} is not {what}", node)
            return None
        return node.value

    def choice(self, node: Node, where: str, choices: tuple[str, ...]) -> str | None:
        value = self.text(node, where)
        if value is not None and value not in choices:
            self.fail(where, f"{value!r} is not one of: {', '.join(choices)}", node)
            return None
        return value

    def texts(
        self,
        node: Node,
        where: str,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
        *,
        non_empty: bool = False,
        limit: int = MAX_LIST_ITEMS,
    ) -> tuple[str, ...] | None:
        if not isinstance(node.value, list):
            self.fail(where, f"expected a list, found {_type_name(node.value)}", node)
            return None
        if len(node.value) > limit:
            self.fail(where, f"more than {limit} items", node)
            return None
        if non_empty and not node.value:
            self.fail(where, "must not be empty", node)
            return None
        result: list[str] = []
        ok = True
        for i, item in enumerate(node.value):
            value = self.text(item, f"{where}[{i}]", pattern, what)
            if value is None:
                ok = False
            elif value in result:
                self.fail(f"{where}[{i}]", f"{value!r} is listed twice", item)
                ok = False
            else:
                result.append(value)
        return tuple(result) if ok else None


def _known_types() -> dict[str, str]:
    """Resource type -> tagging ("tagging-api" | "service" | "none"), from the scanners."""

    return {name: cls.tagging for name, cls in scanners().items()}


def resource_type_pattern_ok(pattern: str, known: Iterable[str]) -> bool:
    """``*``, a registered type, or ``<service>:*`` for a service with a registered type."""
    known = set(known)
    if pattern == "*" or pattern in known:
        return True
    if pattern.endswith(":*"):
        service = pattern[:-1]
        return any(name.startswith(service) for name in known)
    return False


def vet_regex(pattern: str, *, shapes: bool = True) -> str | None:
    """Why the pattern is refused, or None. Python ``re`` syntax; at most MAX_REGEX_LENGTH
    characters; no look-around, backreferences, inline flags, named or atomic groups,
    possessive repeats, or anchors other than ^ and $ (they would not mean the same in
    PostgreSQL); none of the shapes of catastrophic backtracking (_backtracking_problem); at
    most MAX_REGEX_STATES states once expanded. Matching is linear whatever the shape
    (policies.engine.matching): the shapes are refused so that no engine, ours or PostgreSQL's, is
    ever asked to run them. Without `shapes`, only the syntax is checked (a saved rule read
    back: parse_rules's `stored`)."""
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"longer than {MAX_REGEX_LENGTH} characters"
    try:
        with warnings.catch_warnings():  # "possible nested set": refused below anyway
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(pattern)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    if re.search(r"\(\?(?!:)", pattern):
        return "only plain (...) and (?:...) groups are allowed"
    if re.search(r"\\(?:[1-9]|[AZbBG])", pattern):
        return r"backreferences and \A \Z \b \B \G are not allowed"
    dialect = _dialect_problem(pattern)
    if dialect is not None:
        return dialect
    try:
        parsed = sre_parser.parse(pattern)
    except re.error as exc:  # pragma: no cover - re.compile above already parsed it
        return f"not a valid regular expression: {exc}"
    if not shapes:
        return None
    shape = _backtracking_problem(parsed)
    if shape is not None:
        return shape
    if matching.automaton_size(pattern) > MAX_REGEX_STATES:
        return (
            f"too large once its repeats are expanded (more than {MAX_REGEX_STATES} states): "
            "use smaller repeat counts"
        )
    return None


_BOUND_RE = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _dialect_problem(pattern: str) -> str | None:
    """Syntax that Python's ``re`` and PostgreSQL's ``~`` read differently, refused so that
    both engines agree (docs/policies.md, "Regular expressions in SQL"):

    - a backslash may only escape punctuation: ``\\d \\w \\s`` are Unicode-aware in Python and
      locale-dependent in PostgreSQL, and ``\\x``/``\\u`` escapes take different lengths;
    - ``{`` only as a bound ``{m}``, ``{m,}``, ``{m,n}`` (``{,n}`` is Python-only, and a lone
      ``{`` is literal in one and an error in the other);
    - inside ``[...]``, no ``[`` followed by ``: . =`` (PostgreSQL's character classes and
      collating elements).
    """
    i, in_class, class_start = 0, False, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            following = pattern[i + 1 : i + 2]
            if following not in _PUNCTUATION:
                return (
                    f"the escape \\{following} is not allowed: a backslash may only escape "
                    "punctuation (write [0-9] for \\d, [ ] for a space, the character itself "
                    "otherwise)"
                )
            i += 2
            continue
        if in_class:
            if char == "[" and pattern[i + 1 : i + 2] in (":", ".", "="):
                return "[: [. and [= inside a character class are not allowed"
            if char == "]" and not class_start:
                in_class = False
            class_start = False
            i += 1
            continue
        if char == "[":
            in_class, class_start = True, True
            i += 1
            if pattern[i : i + 1] == "^":
                i += 1
            continue
        if char == "{":
            bound = _BOUND_RE.match(pattern, i)
            if bound is None:
                return "{ is only allowed in a repeat bound such as {2}, {2,} or {2,5}"
            i = bound.end()
            continue
        i += 1
    return None


_REPEATS = {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT}
_POSSESSIVE = getattr(sre_constants, "POSSESSIVE_REPEAT", None)
_ANY_CHAR = None  # a first-character set too large to list: overlaps everything
_MAX_CLASS_LISTED = 512


def _backtracking_problem(items: Any) -> str | None:
    """Why the parsed pattern has a shape that makes a backtracking engine take exponential
    time, or None: a repeat inside a repeat (``(a+)+``, ``(a{1,100}){1,100}``), or an
    alternation inside a repeat whose branches can start alike (``(a|aa)+``, ``(a|a)*``,
    ``(x|y?)+``). Counts above MAX_REPEAT_COUNT and possessive repeats (Python-only) too."""
    return _walk_repeats(items, inside=None)


def _walk_repeats(items: Any, *, inside: str | None) -> str | None:
    """`inside`: None outside any repeat of more than one, else "bounded" or "unbounded"."""
    for op, arg in items:
        if _POSSESSIVE is not None and op == _POSSESSIVE:
            return "possessive repeats such as a*+ are not allowed (PostgreSQL has none)"
        if op in _REPEATS:
            low, high, sub = arg
            if max(low, 0 if high == sre_constants.MAXREPEAT else high) > MAX_REPEAT_COUNT:
                return f"repeat counts above {MAX_REPEAT_COUNT} are not allowed"
            unbounded = high == sre_constants.MAXREPEAT or high > 100
            if high > 1 and inside is not None:
                if unbounded or inside == "unbounded":
                    return "nested unbounded repeats such as (a+)+ can take exponential time"
                return "nested repeats such as (a{1,100}){1,100} can take exponential time"
            here = inside if high <= 1 else ("unbounded" if unbounded else "bounded")
            found = _walk_repeats(sub, inside=here)
        elif op == sre_constants.SUBPATTERN:
            found = _walk_repeats(arg[-1], inside=inside)
        elif op == sre_constants.BRANCH:
            found = next((f for f in (_walk_repeats(b, inside=inside) for b in arg[1]) if f), None)
            if found is None and inside is not None and _branches_overlap(arg[1]):
                found = (
                    "an alternation inside a repeat whose branches can match the same text, "
                    "such as (a|aa)+ or (a|a)*, can take exponential time"
                )
        else:
            found = None
        if found is not None:
            return found
    return None


def _first_chars(items: Any) -> tuple[set[int] | None, bool]:
    """(the code points a match of `items` can start with, or _ANY_CHAR; whether it can match
    the empty string)."""
    first: set[int] | None = set()
    for op, arg in items:
        chars, nullable = _item_first_chars(op, arg)
        first = _ANY_CHAR if first is None or chars is None else first | chars
        if not nullable:
            return first, False
    return first, True


def _item_first_chars(op: Any, arg: Any) -> tuple[set[int] | None, bool]:
    """_first_chars of one parsed item."""
    if op == sre_constants.LITERAL:
        return {arg}, False
    if op == sre_constants.IN:
        return _class_chars(arg), False
    if op in (sre_constants.NOT_LITERAL, sre_constants.ANY):
        return _ANY_CHAR, False
    if op == sre_constants.SUBPATTERN:
        return _first_chars(arg[-1])
    if op == sre_constants.BRANCH:
        return _branches_first_chars(arg[1])
    if op in _REPEATS or op == _POSSESSIVE:
        chars, nullable = _first_chars(arg[2])
        return chars, nullable or arg[0] == 0
    if op == sre_constants.AT:
        return set(), True
    return _ANY_CHAR, True  # anything else is refused before this is asked


def _class_chars(members: Any) -> set[int] | None:
    """The code points of a character class; _ANY_CHAR when it is negated, holds a category
    (\\d, \\w, ...) or a range too wide to list."""
    chars: set[int] = set()
    for member, value in members:
        if member == sre_constants.LITERAL:
            chars.add(value)
        elif member == sre_constants.RANGE and value[1] - value[0] < _MAX_CLASS_LISTED:
            chars.update(range(value[0], value[1] + 1))
        else:
            return _ANY_CHAR
    return chars


def _branches_first_chars(branches: list[Any]) -> tuple[set[int] | None, bool]:
    chars: set[int] | None = set()
    nullable = False
    for branch in branches:
        branch_chars, branch_nullable = _first_chars(branch)
        nullable = nullable or branch_nullable
        chars = _ANY_CHAR if chars is None or branch_chars is None else chars | branch_chars
    return chars, nullable


def _branches_overlap(branches: list[Any]) -> bool:
    seen: set[int] = set()
    for branch in branches:
        chars, nullable = _first_chars(branch)
        if nullable or chars is None or seen & chars:
            return True
        seen |= chars
    return False


_RULE_FIELDS = (
    "id",
    "title",
    "description",
    "check",
    "key",
    "aliases",
    "values",
    "max",
    "when",
    "scope",
    "severity",
    "enforcement",
)
_NEEDS_KEY = {"required_key", "allowed_values", "prohibited_key", "duplicate_key"}


def parse_rules(
    text: str | bytes, *, known_types: Mapping[str, str] | None = None, stored: bool = False
) -> list[RuleSpec]:
    """Every rule of a policy file, or SpecError naming every problem (nothing partial).

    ``known_types`` (resource type -> tagging) defaults to the scanner registry. ``stored``:
    the text is a rule read back from the database, whose globs and regexes are not held to
    the limits on their shape and size (vet_regex's `shapes`, MAX_GLOB_LENGTH), which came
    after some rules were saved: such a rule keeps working (policies.engine.matching runs any shape
    in linear time) and is refused only when someone edits it.
    """
    root = load_yaml(text, what="file")
    reader = _Reader(stored=stored)
    top = reader.mapping(root, "", ("version", "rules"), ("version", "rules"))
    if top is None or reader.problems:
        raise SpecError(reader.problems)
    version = top["version"]
    if version.value != FORMAT_VERSION or isinstance(version.value, bool):
        reader.fail("version", f"unsupported version {version.value!r} (expected 1)", version)
    rules_node = top["rules"]
    if not isinstance(rules_node.value, list):
        reader.fail("rules", f"expected a list, found {_type_name(rules_node.value)}", rules_node)
        raise SpecError(reader.problems)
    if len(rules_node.value) > MAX_RULES:
        reader.fail("rules", f"more than {MAX_RULES} rules", rules_node)
        raise SpecError(reader.problems)
    types = dict(_known_types() if known_types is None else known_types)
    rules: list[RuleSpec] = []
    seen: dict[str, int] = {}
    for index, node in enumerate(rules_node.value):
        rule = _parse_rule(reader, node, index, types)
        if rule is None:
            continue
        if rule.id in seen:
            reader.fail(
                f"rules[{index}] ({rule.id}).id",
                f"duplicate id {rule.id!r}, first used by rules[{seen[rule.id]}]",
                node.value["id"],
            )
            continue
        seen[rule.id] = index
        rules.append(rule)
    if reader.problems:
        raise SpecError(reader.problems)
    return rules


def _parse_rule(
    reader: _Reader, node: Node, index: int, types: Mapping[str, str]
) -> RuleSpec | None:
    before = len(reader.problems)
    label = _rule_label(node, index)
    fields = reader.mapping(node, label, _RULE_FIELDS, ("id", "title", "check"))
    if fields is None:
        return None
    rule = _RuleFields(reader, node, fields, label)
    rule_id = rule.text("id", RULE_ID_RE, "a slug (a-z, 0-9, -; at most 64)")
    title = rule.text("title", TITLE_RE, TITLE_WHAT)
    description = rule.text("description", DESCRIPTION_RE, DESC_WHAT) or ""
    check = rule.choice("check", CHECKS)
    key = rule.key(check)
    aliases = rule.aliases(check, key)
    values = rule.values(check)
    maximum = rule.maximum(check)
    when = _parse_selector(reader, fields["when"], rule.at("when")) if "when" in fields else None
    scope = (
        _parse_scope(reader, fields["scope"], rule.at("scope"), types)
        if "scope" in fields
        else Scope()
    )
    severity = rule.choice("severity", SEVERITIES) or "medium"
    enforcement = rule.choice("enforcement", ENFORCEMENTS) or "report"

    if len(reader.problems) > before or rule_id is None or title is None or check is None:
        return None
    return RuleSpec(
        id=rule_id,
        title=title,
        description=description,
        check=check,  # type: ignore[arg-type]
        key=key,
        aliases=aliases,
        values=values,
        max=maximum,
        when=when,
        scope=scope or Scope(),
        severity=severity,  # type: ignore[arg-type]
        enforcement=enforcement,  # type: ignore[arg-type]
    )


def _rule_label(node: Node, index: int) -> str:
    """How problems name the rule: `rules[3]`, with its id when it has one (`rules[3] (x)`)."""
    if isinstance(node.value, dict) and isinstance(node.value.get("id", Node(0, 0)).value, str):
        return f"rules[{index}] ({node.value['id'].value})"
    return f"rules[{index}]"


def _key_syntax(check: str | None) -> tuple[re.Pattern[str], str]:
    """What the rule's key and aliases must look like (prohibited_key takes globs)."""
    if check == "prohibited_key":
        return KEY_GLOB_RE, "a tag key or glob (1-128 letters, digits, spaces, _ . : / = + - @ * ?)"
    return TAG_KEY_RE, "a tag key (1-128 letters, digits, spaces and _ . : / = + - @)"


class _RuleFields:
    """The fields of one rule, read in the file's documented order; problems go to the reader,
    named by the rule's label. `check` is None when it is missing or wrong: the fields that
    depend on it are then read as far as they can be."""

    def __init__(self, reader: _Reader, node: Node, fields: dict[str, Node], label: str) -> None:
        self.reader, self.node, self.fields, self.label = reader, node, fields, label

    def at(self, name: str) -> str:
        return _join(self.label, name)

    def text(self, name: str, pattern: re.Pattern[str], what: str) -> str | None:
        if name not in self.fields:
            return None
        return self.reader.text(self.fields[name], self.at(name), pattern, what)

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        if name not in self.fields:
            return None
        return self.reader.choice(self.fields[name], self.at(name), choices)

    def _unused(self, name: str, check: str | None) -> bool:
        """True (and a problem) when the check is known and takes no `name` field."""
        if check is not None and check not in _NEEDS_KEY:
            self.reader.fail(self.at(name), f"not used by check {check}", self.fields[name])
            return True
        return False

    def key(self, check: str | None) -> str:
        if "key" not in self.fields:
            if check in _NEEDS_KEY:
                self.reader.fail(self.at("key"), f"is required by check {check}", self.node)
            return ""
        if self._unused("key", check):
            return ""
        key = self.reader.text(self.fields["key"], self.at("key"), *_key_syntax(check)) or ""
        if key and fold(key).startswith("aws:") and check != "prohibited_key":
            self.reader.fail(
                self.at("key"), "keys starting with aws: are reserved by AWS", self.fields["key"]
            )
        return key

    def aliases(self, check: str | None, key: str) -> tuple[str, ...]:
        if "aliases" not in self.fields or self._unused("aliases", check):
            return ()
        node = self.fields["aliases"]
        aliases = self.reader.texts(node, self.at("aliases"), *_key_syntax(check)) or ()
        for i, alias in enumerate(aliases):
            if alias == key:
                self.reader.fail(f"{self.at('aliases')}[{i}]", "is the key itself", node.value[i])
        return aliases

    def values(self, check: str | None) -> ValueMatcher | None:
        if "values" not in self.fields:
            if check == "allowed_values":
                self.reader.fail(
                    self.at("values"), "is required by check allowed_values", self.node
                )
            return None
        if check != "allowed_values":
            self.reader.fail(
                self.at("values"), "only used by check allowed_values", self.fields["values"]
            )
            return None
        return _parse_values(self.reader, self.fields["values"], self.at("values"))

    def maximum(self, check: str | None) -> int | None:
        if "max" not in self.fields:
            return AWS_MAX_USER_TAGS if check == "max_tags" else None
        node = self.fields["max"]
        if check != "max_tags":
            self.reader.fail(self.at("max"), "only used by check max_tags", node)
        elif not isinstance(node.value, int) or isinstance(node.value, bool):
            self.reader.fail(
                self.at("max"), f"expected a number, found {_type_name(node.value)}", node
            )
        elif not 0 <= node.value <= AWS_MAX_USER_TAGS:
            self.reader.fail(self.at("max"), f"must be between 0 and {AWS_MAX_USER_TAGS}", node)
        else:
            return node.value
        return None


def _parse_values(reader: _Reader, node: Node, where: str) -> ValueMatcher | None:
    fields = reader.mapping(node, where, VALUE_KINDS)
    if fields is None:
        return None
    if len(fields) != 1:
        reader.fail(where, "give exactly one of: list, glob, regex", node)
        return None
    ((kind, child),) = fields.items()
    sub = _join(where, kind)
    if kind == "list":
        items = reader.texts(
            child, sub, TAG_VALUE_RE, "a tag value", non_empty=True, limit=MAX_VALUE_ITEMS
        )
        return ValueMatcher("list", items=items) if items is not None else None
    if kind == "wildcards":
        items = reader.texts(
            child,
            sub,
            WILDCARD_VALUE_RE,
            "a tag value, * standing for any characters",
            non_empty=True,
            limit=MAX_VALUE_ITEMS,
        )
        return ValueMatcher("wildcards", items=items) if items is not None else None
    pattern = reader.text(child, sub)
    if pattern is None:
        return None
    if kind == "glob":
        if len(pattern) > MAX_GLOB_LENGTH and not reader.stored:
            reader.fail(sub, f"a glob is at most {MAX_GLOB_LENGTH} characters", child)
            return None
        if not TAG_VALUE_RE.match(pattern.replace("*", "").replace("?", "")):
            reader.fail(sub, f"{pattern!r} holds characters a tag value cannot", child)
            return None
        return ValueMatcher("glob", pattern=pattern)
    why = vet_regex(pattern, shapes=not reader.stored)
    if why is not None:
        reader.fail(sub, why, child)
        return None
    return ValueMatcher("regex", pattern=pattern)


def _parse_selector(reader: _Reader, node: Node, where: str) -> TagSelector | None:
    fields = reader.mapping(node, where, ("key", "values"), ("key",))
    if fields is None or "key" not in fields:
        return None
    key = reader.text(fields["key"], _join(where, "key"), TAG_KEY_RE, "a tag key")
    values: tuple[str, ...] | None = ()
    if "values" in fields:
        values = reader.texts(fields["values"], _join(where, "values"), TAG_VALUE_RE, "a tag value")
    if key is None or values is None:
        return None
    return TagSelector(key, values)


def _parse_scope(reader: _Reader, node: Node, where: str, types: Mapping[str, str]) -> Scope | None:
    fields = reader.mapping(
        node, where, ("resource_types", "accounts", "regions", "teams", "tag_selector")
    )
    if fields is None:
        return None
    before = len(reader.problems)
    resource_types: tuple[str, ...] | None = ("*",)
    if "resource_types" in fields:
        sub = _join(where, "resource_types")
        resource_types = reader.texts(fields["resource_types"], sub, non_empty=True)
        for i, name in enumerate(resource_types or ()):
            item = fields["resource_types"].value[i]
            if not resource_type_pattern_ok(name, types):
                reader.fail(
                    f"{sub}[{i}]",
                    f"unknown resource type {name!r} (known: *, {', '.join(sorted(types))})",
                    item,
                )
            elif types.get(name) == "none":
                reader.fail(f"{sub}[{i}]", f"{name} cannot be tagged", item)
    accounts: tuple[str, ...] | None = ()
    regions: tuple[str, ...] | None = ()
    teams: tuple[str, ...] | None = ()
    if "accounts" in fields:
        accounts = reader.texts(
            fields["accounts"], _join(where, "accounts"), ACCOUNT_RE, "a 12-digit account id"
        )
    if "regions" in fields:
        regions = reader.texts(
            fields["regions"], _join(where, "regions"), REGION_RE, "an AWS region or global"
        )
    if "teams" in fields:
        teams = reader.texts(fields["teams"], _join(where, "teams"), TEAM_RE, "a team slug")
    selector = None
    if "tag_selector" in fields:
        selector = _parse_selector(reader, fields["tag_selector"], _join(where, "tag_selector"))
    if len(reader.problems) > before:
        return None
    return Scope(
        resource_types=resource_types or ("*",),
        accounts=accounts or (),
        regions=regions or (),
        teams=teams or (),
        tag_selector=selector,
    )


# --- the writer ------------------------------------------------------------------------------


def rule_to_dict(rule: RuleSpec) -> dict[str, Any]:
    """The canonical mapping of a rule: fields in the documented order, defaults left out
    except severity and enforcement, which are always written so a reviewer sees them."""
    data: dict[str, Any] = {"id": rule.id, "title": rule.title}
    if rule.description:
        data["description"] = rule.description
    data["check"] = rule.check
    if rule.key:
        data["key"] = rule.key
    if rule.aliases:
        data["aliases"] = list(rule.aliases)
    if rule.values is not None:
        if rule.values.kind in ("list", "wildcards"):
            data["values"] = {rule.values.kind: list(rule.values.items)}
        else:
            data["values"] = {rule.values.kind: rule.values.pattern}
    if rule.max is not None:
        data["max"] = rule.max
    if rule.when is not None:
        data["when"] = _selector_to_dict(rule.when)
    scope = _scope_to_dict(rule.scope)
    if scope:
        data["scope"] = scope
    data["severity"] = rule.severity
    data["enforcement"] = rule.enforcement
    return data


def _selector_to_dict(selector: TagSelector) -> dict[str, Any]:
    data: dict[str, Any] = {"key": selector.key}
    if selector.values:
        data["values"] = list(selector.values)
    return data


def _scope_to_dict(scope: Scope) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if scope.resource_types != ("*",):
        data["resource_types"] = list(scope.resource_types)
    for name in ("accounts", "regions", "teams"):
        if getattr(scope, name):
            data[name] = list(getattr(scope, name))
    if scope.tag_selector is not None:
        data["tag_selector"] = _selector_to_dict(scope.tag_selector)
    return data


class _Dumper(yaml.SafeDumper):
    """Indents list items under their key, as people write YAML by hand."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump_rules(rules: Iterable[RuleSpec]) -> str:
    """The canonical YAML of a rule list; parse_rules() reads it back to equal rules."""
    document = {"version": FORMAT_VERSION, "rules": [rule_to_dict(rule) for rule in rules]}
    return yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


# --- the built-in library --------------------------------------------------------------------

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def builtin_rules() -> list[RuleSpec]:
    """The rule library shipped in policies/data/rules.yaml (reviewable data, not code)."""
    return parse_rules((DATA_DIR / "rules.yaml").read_bytes())
