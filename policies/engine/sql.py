# ruff: noqa: S608 - only constants and compiled fragments are interpolated; values are parameters
"""The rules as SQL: the same meaning as policies/engine/reference.py, set-based over the inventory.

``compile_rule(rule)`` turns one RuleSpec into a SELECT over ``inventory_resource`` yielding
``(resource_id, kind, found_key)`` for every live resource of the organization that violates the
rule; ``violations_sql(rules)`` joins several with UNION ALL (one statement for all rules).
docs/policies.md is the reference; a hypothesis test (tests/policies/test_sql_engine.py)
compares this module with reference.py on random resources and rules.

How each definition of docs/policies.md is written in SQL:

- fold: ``lower(k COLLATE "C")``, which changes A-Z only whatever the database's locale (a
  plain ``lower()`` follows the locale);
- "first by code point": ``min(k COLLATE "C")`` (UTF-8 byte order is code point order);
- glob: ``LIKE`` after escaping ``\\ % _`` and turning ``*``/``?`` into ``%``/``_`` (a run of
  ``*`` into one ``%``); wildcards: ``LIKE ANY`` of the values written the same way, ``?``
  left literal;
- regex: ``~ '^(?:' || p || ')$'`` after two rewrites that make PostgreSQL's advanced regular
  expressions read the pattern as Python does: ``.`` outside a class becomes ``[^\\n]``
  (PostgreSQL's ``.`` also matches a newline) and ``$`` becomes ``(?:$|(?=\\n$))`` (Python's
  ``$`` also matches before a final newline). Syntax the two read differently otherwise is
  refused by spec.vet_regex, so no rule reaching here holds it. A stored regex that
  policies.engine.matching cannot run (saved before vet_regex refused it) matches no value, as in
  Python.

The statements filter the organization explicitly; row-level security is the second wall.
Assumes the caller runs inside tenant_scope(organization).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection

from accounts.team_groups import GROUP_PREFIX
from inventory.scanners.base import scanners

from . import matching
from .spec import RuleSpec, fold


def _fold_sql(expression: str) -> str:
    # lower() under the "C" collation changes A-Z only, byte by byte: exactly spec.fold, and
    # an order of magnitude cheaper than translate(), which looks each character up.
    return f'lower(({expression}) COLLATE "C")'


def like_pattern(glob: str, *, question: bool = True) -> str:
    """The rules' glob as a LIKE pattern (escape character backslash). Without `question`, a
    ``?`` is itself (AWS tag policies' wildcards: ``*`` only)."""
    out = []
    for index, char in enumerate(glob):
        if char == "*":
            if glob[index - 1 : index] != "*":  # a run of * is one %: PostgreSQL does the same
                out.append("%")
        elif char == "?" and question:
            out.append("_")
        elif char in "\\%_":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def postgres_regex(pattern: str) -> str:
    """A pattern vet_regex accepted, as an anchored PostgreSQL ARE meaning re.fullmatch."""
    out, i, in_class, class_start = [], 0, False, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "]" and not class_start:
                in_class = False
            class_start = False
            out.append(char)
        elif char == "[":
            in_class = class_start = True
            out.append(char)
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
        elif char == ".":
            out.append("[^\\n]")
        elif char == "$":
            out.append("(?:$|(?=\\n$))")
        else:
            out.append(char)
        i += 1
    return "^(?:" + "".join(out) + ")$"


class _Sql:
    """SQL text and its parameters, in the order they appear (psycopg %s placeholders)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, text: str, *params: Any) -> _Sql:
        self.parts.append(text)
        self.params.extend(params)
        return self

    def extend(self, other: tuple[str, list[Any]]) -> _Sql:
        return self.add(other[0], *other[1])

    def text(self, sep: str = " ") -> str:
        return sep.join(self.parts)


def _untaggable_types() -> list[str]:

    return sorted(t for t, cls in scanners().items() if cls.tagging == "none")


def _teams_of_account_sql(
    account: str = "r.account_id", organization: str = "r.organization_id"
) -> str:
    """Team slugs holding an AWS account (by default r's: a resource's) through
    inventory.access's grants: a guardian group permission to the team's group, named
    tagsense-team-<team id>."""

    return (
        "SELECT t.slug FROM inventory_accountteamgrant g "
        "JOIN auth_group ag ON ag.id = g.group_id "
        "JOIN auth_permission p ON p.id = g.permission_id AND p.codename = 'hold_awsaccount' "
        f"JOIN accounts_team t ON ag.name = '{GROUP_PREFIX}' || t.id::text "
        f"AND t.organization_id = {organization} "
        f"WHERE g.content_object_id = {account} AND g.organization_id = {organization}"
    )


def teams_json_sql() -> str:
    """A jsonb array of the slugs of the teams holding r's account, sorted."""
    return (
        "(SELECT coalesce(jsonb_agg(s.slug ORDER BY s.slug), '[]'::jsonb) "
        f"FROM ({_teams_of_account_sql()}) s)"
    )


def _value_matches(rule: RuleSpec, value: tuple[str, list[Any]]) -> tuple[str, list[Any]]:
    """The rule's value condition on `value`, the text of its key (an expression with its
    parameters)."""
    matcher = rule.values
    assert matcher is not None
    text, params = value
    if matcher.kind == "list":
        return f"{text} = ANY(%s)", [*params, list(matcher.items)]
    if matcher.kind == "glob":
        return f"{text} LIKE %s", [*params, like_pattern(matcher.pattern)]
    if matcher.kind == "wildcards":
        # One LIKE per value, any of them: each linear in the value, however many there are
        # (no regex of alternatives, so no length limit on the list).
        patterns = [like_pattern(item, question=False) for item in matcher.items]
        return f"{text} LIKE ANY(%s)", [*params, patterns]
    if not matching.runnable(matcher.pattern):
        # A stored pattern the Python engines cannot run either (saved before vet_regex
        # refused it): it matches no value in every engine (spec.regex_matches).
        return f"(CASE WHEN {text} IS NULL THEN NULL::boolean ELSE false END)", list(params)
    return f"{text} ~ %s", [*params, postgres_regex(matcher.pattern)]


class _Keys:
    """The tag keys the rules read. Without columns, each read is an operator on the row's
    tags; with columns, each key's value is read once per row into a column ``kv<n>`` of the
    resources' level (``r.tags ->> key``) and every rule reads that column: a jsonb lookup
    per key and row instead of one per rule and row."""

    def __init__(self, columns: bool) -> None:
        self.columns: dict[str, str] | None = {} if columns else None

    def _column(self, key: str) -> str:
        assert self.columns is not None
        return self.columns.setdefault(key, f"kv{len(self.columns)}")

    def value(self, key: str, alias: str) -> tuple[str, list[Any]]:
        if self.columns is None:
            return f"({alias}.tags ->> %s)", [key]
        return f"{alias}.{self._column(key)}", []

    def present(self, key: str, alias: str) -> tuple[str, list[Any]]:
        if self.columns is None:
            return f"({alias}.tags ? %s)", [key]
        # A JSON null value reads as NULL: then the key operator says whether it is there.
        return f"({alias}.{self._column(key)} IS NOT NULL OR {alias}.tags ? %s)", [key]

    def columns_sql(self) -> list[tuple[str, list[Any]]]:
        """The columns for the resources' level (alias r), with their parameters."""
        return [(f"r.tags ->> %s AS {c}", [k]) for k, c in (self.columns or {}).items()]


# --- the violations: every rule in one pass over the resources ---------------------------------
#
# Each live resource is read once. Four levels:
#   b  the resource's columns, its account's AWS id and teams (when a rule scopes by them) and
#      `t`, the folded JSON text of its tags (when a rule needs a key-level check);
#   c  what several rules share, computed once per row: per group of rules with the same key
#      and aliases the case variant (only where the key is absent), per prohibited-key rule the
#      first matching key, and the count of user tags. Each enumerates the row's keys only
#      when `t` says it may find something (_needle): most rows are never enumerated;
#   d  the indexes of the rules the row violates (an int array, usually empty or short);
#   v  the array unnested: a row per violation, where the rule's kind and found key are
#      computed (a CASE on the index), only for violations.
# OFFSET 0 keeps each level from being pulled up, so each column is computed once per row.
# (A VALUES list per row, the obvious form, re-initialises its expressions for every row:
# 70 µs a row for 25 rules.)

# Characters the JSON text of a key spells differently from the key (escaped).
_ESCAPED_IN_JSON = frozenset('"\\') | frozenset(chr(c) for c in range(0x20))


def _needle(folded: str) -> str | None:
    """A string that the folded JSON text of a tag set (``lower(tags::text COLLATE "C")``)
    contains whenever the set has a key whose fold matches `folded` (a folded key, or a glob
    with ``*`` and ``?``): the glob's longest literal run, with the key's opening or closing
    quote where the run starts or ends the glob (a key appears in that text between quotes,
    spelled as itself where it holds no character JSON escapes). None when no such string is
    sure: the run holds a character JSON escapes, or the glob has no literal text."""
    runs: list[str] = []
    run: list[str] = []
    start = True
    for char in folded:
        if char in "*?":
            if run:
                runs.append(('"' if start else "") + "".join(run))
            run, start = [], False
        else:
            run.append(char)
    if run:
        runs.append(('"' if start else "") + "".join(run) + '"')
    elif start:  # the empty key
        runs.append('""')
    runs = [r for r in runs if r.strip('"')] or runs
    if not runs:
        return None
    best = max(runs, key=len)
    if any(char in _ESCAPED_IN_JSON for char in best.strip('"')) or not best:
        return None
    return best


def _prefilter(folded: Iterable[str]) -> tuple[str, list[Any]] | None:
    """A condition on `t` true whenever a key matching one of the folded globs may be present
    (strpos: a Boyer-Moore search, several times faster than LIKE '%...%'), or None."""
    needles = [_needle(f) for f in folded]
    sure = [n for n in needles if n is not None]
    if not needles or len(sure) < len(needles):
        return None
    unique = sorted(set(sure))
    return "(" + " OR ".join("strpos(b.t, %s) > 0" for _ in unique) + ")", unique


def _second_spelling(folded_key: str, folded_aliases: list[str]) -> tuple[str, list[Any]] | None:
    """A condition on `t` true whenever a tag set that has the key also has another of its
    spellings: the folded key's text at least twice, or an alias's text; None when no needle
    is sure (_needle)."""
    needle = _needle(folded_key)
    aliases = [_needle(alias) for alias in folded_aliases]
    sure = [alias for alias in aliases if alias is not None]
    if needle is None or len(sure) < len(aliases):
        return None
    terms = ["strpos(substr(b.t, strpos(b.t, %s) + 1), %s) > 0"]
    params: list[Any] = [needle, needle]
    for alias in sorted(set(sure)):
        terms.append("strpos(b.t, %s) > 0")
        params.append(alias)
    return "(" + " OR ".join(terms) + ")", params


def _min_text_length(keys: int) -> int:
    """The shortest JSON text of a tag set with `keys` keys: ``{"": 0, "": 0}`` is 7 characters
    a key (quotes, colon, space, a one-character value, comma and space between pairs, braces);
    its length in bytes is at least that (octet_length: no walk over the characters)."""
    return 7 * keys


def _scope_expr(rule: RuleSpec, keys: _Keys | None = None) -> tuple[str, list[Any]]:
    """The rule's scope and `when` as one condition on a row of level c ("true" if none)."""
    keys = keys or _Keys(columns=False)
    scope = rule.scope
    terms: list[str] = []
    params: list[Any] = []
    if "*" not in scope.resource_types:
        exact = [t for t in scope.resource_types if not t.endswith(":*")]
        alternatives = ["c.resource_type = ANY(%s)"]
        params.append(exact)
        for prefix in (t[:-1] for t in scope.resource_types if t.endswith(":*")):
            alternatives.append("starts_with(c.resource_type, %s)")
            params.append(prefix)
        terms.append("(" + " OR ".join(alternatives) + ")")
    if scope.accounts:
        terms.append("c.aws_id = ANY(%s)")
        params.append(list(scope.accounts))
    if scope.regions:
        terms.append("c.region = ANY(%s)")
        params.append(list(scope.regions))
    if scope.teams:
        terms.append("c.teams && %s::text[]")
        params.append(list(scope.teams))
    for selector in (scope.tag_selector, rule.when):
        if selector is None:
            continue
        text, values = keys.present(selector.key, "c")
        terms.append(text)
        params.extend(values)
        if selector.values:
            text, values = keys.value(selector.key, "c")
            terms.append(f"{text} = ANY(%s)")
            params.extend([*values, list(selector.values)])
    return (" AND ".join(terms) or "true"), params


def _wanted(rule: RuleSpec) -> list[str]:
    return sorted({fold(rule.key), *(fold(a) for a in rule.aliases)})


def live_resources_sql(
    organization_id: int,
    rules: Iterable[RuleSpec],
    *,
    columns: Sequence[tuple[str, Sequence[Any]]] = (),
    resource_ids: Sequence[int] | None = None,
    resource_query: tuple[str, Sequence[Any]] | None = None,
    account_pks: Sequence[int] | None = None,
    part: tuple[int, int, int] | None = None,
) -> tuple[str, list[Any]]:
    """A SELECT of the organization's live resources the rules are checked on (untaggable
    types excluded) with the columns _scope_expr reads on its row ``c``: id, account_id, tags,
    resource_type, region and, when one of `rules` scopes by account or team, aws_id and teams
    (its account's 12-digit id and the slugs of the teams holding it); then `columns`
    (expressions on ``r``, the resource, with their parameters). Optionally only
    `resource_ids`, only the ids `resource_query` (a SELECT with its parameters) yields, only
    resources of `account_pks` (AwsAccount primary keys), and only the `part` (start, stop, n):
    the resources whose id modulo n is in [start, stop) (parts computed by several connections,
    each resource in one)."""
    by_account = any(rule.scope.accounts or rule.scope.teams for rule in rules)
    base = _Sql().add("SELECT r.id, r.account_id, r.tags, r.resource_type, r.region")
    if by_account:
        base.add(", a.aws_id, a.teams")
    for column, params in columns:
        base.add(f", {column}", *params)
    base.add("FROM inventory_resource r")
    if by_account:
        base.add(
            "LEFT JOIN (SELECT a.id, a.account_id AS aws_id, "
            f"ARRAY({_teams_of_account_sql('a.id', 'a.organization_id')})::text[] AS teams "
            "FROM inventory_awsaccount a WHERE a.organization_id = %s) a ON a.id = r.account_id",
            organization_id,
        )
    base.add("WHERE r.organization_id = %s AND r.deleted_at IS NULL", organization_id)
    untaggable = _untaggable_types()
    if untaggable:
        base.add("AND NOT (r.resource_type = ANY(%s))", untaggable)
    if resource_ids is not None:
        base.add("AND r.id = ANY(%s)", list(resource_ids))
    if resource_query is not None:
        # An array of the ids: probes of the primary key, never a scan of the organization's
        # rows, whatever the statistics say.
        base.add(f"AND r.id = ANY(ARRAY({resource_query[0]}))", *resource_query[1])
    if account_pks is not None:
        base.add("AND r.account_id = ANY(%s)", list(account_pks))
    if part is not None:
        start, stop, n = part
        base.add("AND mod(r.id, %s) >= %s AND mod(r.id, %s) < %s", n, start, n, stop)
    return base.text(), base.params


def _other_spelling_column(
    condition: _Sql, key: str, spellings: tuple[str, ...], name: str
) -> tuple[str, ...]:
    """`CASE WHEN condition THEN <the first key other than `key` whose folded spelling is one
    of `spellings`> END AS name`: the found key of a case variant (wrong_case, and the other
    spelling beside the exact key for duplicate_key), text first and its parameters after."""
    column = _Sql().add("CASE WHEN").extend((condition.text(), condition.params))
    column.add(
        f'THEN (SELECT min(k COLLATE "C") FROM jsonb_object_keys(b.tags) k '
        f"WHERE k <> %s AND {_fold_sql('k')} = ANY(%s)) END AS {name}",
        key,
        list(spellings),
    )
    return (column.text(), *column.params)


_NO_VIOLATIONS = (
    "SELECT NULL::bigint AS tag, NULL::bigint AS resource_id, NULL AS kind, "
    "NULL AS found_key, NULL::bigint AS account_id, NULL AS owner WHERE false"
)


def violations_sql(
    rules: Iterable[tuple[Any, RuleSpec]],
    organization_id: int,
    *,
    resource_ids: Sequence[int] | None = None,
    resource_query: tuple[str, Sequence[Any]] | None = None,
    account_pks: Sequence[int] | None = None,
    part: tuple[int, int, int] | None = None,
) -> tuple[str, list[Any]]:
    """One SELECT of (tag, resource_id, kind, found_key, account_id, owner): every violation of
    the rules among the organization's live resources, each tagged with the caller's
    identifier of its rule, in one pass over the resources. Optionally only `resource_ids`,
    only the ids `resource_query` (a SELECT with its parameters: the resources a scan touched)
    yields, only resources of `account_pks` (AwsAccount primary keys: a member's visible
    accounts), and only a `part` of them (live_resources_sql)."""
    rules = list(rules)
    if not rules:
        return _NO_VIOLATIONS, []
    specs = [rule for _, rule in rules]
    keys = _Keys(columns=True)
    shared = _SharedColumns(keys)
    shared.add_rules(specs)
    hits = _Hits(keys, shared)
    for index, rule in enumerate(specs):
        hits.add(index, rule)

    # Level b: the resources.
    extra: list[tuple[str, list[Any]]] = (
        [(f"{_fold_sql('r.tags::text')} AS t", [])] if shared.uses_t else []
    )
    base = _Sql().extend(
        live_resources_sql(
            organization_id,
            specs,
            columns=[*extra, *keys.columns_sql()],
            resource_ids=resource_ids,
            resource_query=resource_query,
            account_pks=account_pks,
            part=part,
        )
    )
    base.add("OFFSET 0")
    return _violations_statement([tag for tag, _ in rules], base, shared.sql, hits)


class _SharedColumns:
    """Level c: what several rules share, a column each: per group of rules with the same
    key and aliases, the case variant of the key (variant_of) or its other spelling beside
    the exact key (duplicate_of); per prohibited-key rule, by index, the first matching key
    (prohibited_of); the count of user tags. `uses_t`: a column reads `t`."""

    def __init__(self, keys: _Keys) -> None:
        self.keys = keys
        self.sql = _Sql()
        self.uses_t = False
        self.variant_of: dict[tuple[str, tuple[str, ...]], str] = {}
        self.duplicate_of: dict[tuple[str, tuple[str, ...]], str] = {}
        self.prohibited_of: dict[int, str] = {}

    def add_rules(self, specs: Sequence[RuleSpec]) -> None:
        for rule in specs:
            if rule.check == "duplicate_key":
                self._duplicate(rule)
        for rule in specs:
            if rule.check in ("required_key", "allowed_values"):
                self._variant(rule)
        for index, rule in enumerate(specs):
            if rule.check == "prohibited_key":
                self._prohibited(index, rule)
        limits = [
            rule.max if rule.max is not None else 50 for rule in specs if rule.check == "max_tags"
        ]
        if limits:
            self.uses_t = True
            self.sql.add(
                "CASE WHEN octet_length(b.t) >= %s THEN (SELECT count(*) "
                f"FROM jsonb_object_keys(b.tags) k WHERE left({_fold_sql('k')}, 4) <> 'aws:') "
                "END AS n_user_tags",
                _min_text_length(min(limits) + 1),
            )

    def _duplicate(self, rule: RuleSpec) -> None:
        group = (rule.key, tuple(_wanted(rule)))
        if group in self.duplicate_of:
            return
        self.duplicate_of[group] = name = f"w{len(self.duplicate_of)}"
        # The first other spelling, only where the exact key is present too, and only when `t`
        # holds the folded key twice or an alias's text (the exact key accounts for one).
        prefilter = _second_spelling(fold(rule.key), [fold(a) for a in rule.aliases])
        present, present_params = self.keys.present(rule.key, "b")
        condition = _Sql().add(present, *present_params)
        self._spelling_column(condition, prefilter, group, name)

    def _variant(self, rule: RuleSpec) -> None:
        group = (rule.key, tuple(_wanted(rule)))
        if group in self.variant_of:
            return
        self.variant_of[group] = name = f"v{len(self.variant_of)}"
        prefilter = _prefilter(group[1])
        present, present_params = self.keys.present(rule.key, "b")
        condition = _Sql().add(f"NOT {present}", *present_params)
        self._spelling_column(condition, prefilter, group, name)

    def _spelling_column(
        self,
        condition: _Sql,
        prefilter: tuple[str, list[Any]] | None,
        group: tuple[str, tuple[str, ...]],
        name: str,
    ) -> None:
        if prefilter is not None:
            self.uses_t = True
            condition.add("AND").extend(prefilter)
        self.sql.add(*_other_spelling_column(condition, group[0], group[1], name))

    def _prohibited(self, index: int, rule: RuleSpec) -> None:
        self.prohibited_of[index] = name = f"p{index}"
        patterns = [fold(p) for p in (rule.key, *rule.aliases)]
        prefilter = _prefilter(patterns)
        found = (
            f'(SELECT min(k COLLATE "C") FROM jsonb_object_keys(b.tags) k '
            f"WHERE {_fold_sql('k')} LIKE ANY(%s))"
        )
        like = [like_pattern(p) for p in patterns]
        if prefilter is None:
            self.sql.add(f"{found} AS {name}", like)
            return
        self.uses_t = True
        column = _Sql().add("CASE WHEN").extend(prefilter)
        column.add(f"THEN {found} END AS {name}", like)
        self.sql.add(column.text(), *column.params)


class _Hits:
    """Levels d and v: per rule (by index), when a row violates it (`hits`), and for a
    violation its kind (`kinds`) and found key (`founds`), CASE branches on the index."""

    def __init__(self, keys: _Keys, shared: _SharedColumns) -> None:
        self.keys, self.shared = keys, shared
        self.hits, self.kinds, self.founds = _Sql(), _Sql(), _Sql()

    def add(self, index: int, rule: RuleSpec) -> None:
        scope, scope_params = _scope_expr(rule, self.keys)
        if rule.check == "max_tags":
            limit = rule.max if rule.max is not None else 50
            self.hits.add(f"CASE WHEN c.n_user_tags > %s AND {scope} THEN {index} END", limit)
            self.hits.params.extend(scope_params)
            self.kinds.add(f"WHEN {index} THEN 'too_many_tags'")
            self.founds.add(f"WHEN {index} THEN NULL")
        elif rule.check == "duplicate_key":
            column = self.shared.duplicate_of[(rule.key, tuple(_wanted(rule)))]
            self._found_column(index, column, "wrong_case", scope, scope_params)
        elif rule.check == "prohibited_key":
            column = self.shared.prohibited_of[index]
            self._found_column(index, column, "prohibited", scope, scope_params)
        else:
            variant = self.shared.variant_of[(rule.key, tuple(_wanted(rule)))]
            if rule.check == "required_key":
                self._required(index, rule, variant, scope, scope_params)
            else:
                self._allowed_values(index, rule, variant, scope, scope_params)

    def _found_column(
        self, index: int, column: str, kind: str, scope: str, scope_params: list[Any]
    ) -> None:
        """A rule violated where its level-c column found a key."""
        self.hits.add(f"CASE WHEN c.{column} IS NOT NULL AND {scope} THEN {index} END")
        self.hits.params.extend(scope_params)
        self.kinds.add(f"WHEN {index} THEN '{kind}'")
        self.founds.add(f"WHEN {index} THEN d.{column}")

    def _required(
        self, index: int, rule: RuleSpec, variant: str, scope: str, scope_params: list[Any]
    ) -> None:
        present, present_params = self.keys.present(rule.key, "c")
        self.hits.add(f"CASE WHEN NOT {present} AND {scope} THEN {index} END", *present_params)
        self.hits.params.extend(scope_params)
        self.kinds.add(
            f"WHEN {index} THEN CASE WHEN d.{variant} IS NULL THEN 'missing' ELSE 'wrong_case' END"
        )
        self.founds.add(f"WHEN {index} THEN d.{variant}")

    def _allowed_values(
        self, index: int, rule: RuleSpec, variant: str, scope: str, scope_params: list[Any]
    ) -> None:
        match, match_params = _value_matches(rule, self.keys.value(rule.key, "c"))
        present, present_params = self.keys.present(rule.key, "c")
        self.hits.add(
            f"CASE WHEN {scope} AND CASE WHEN {present} THEN NOT coalesce({match}, "
            f"false) ELSE c.{variant} IS NOT NULL END THEN {index} END",
            *scope_params,
            *present_params,
            *match_params,
        )
        present, present_params = self.keys.present(rule.key, "d")
        self.kinds.add(
            f"WHEN {index} THEN CASE WHEN {present} THEN 'bad_value' ELSE 'wrong_case' END",
            *present_params,
        )
        self.founds.add(
            f"WHEN {index} THEN CASE WHEN {present} THEN %s ELSE d.{variant} END",
            *present_params,
            rule.key,
        )


def _violations_statement(
    tags: list[Any], base: _Sql, shared: _Sql, hits: _Hits
) -> tuple[str, list[Any]]:
    """Levels c, d and v around the resources' level b (`base`)."""
    level_c = _Sql().add("SELECT b.*")
    if shared.parts:
        level_c.add(", " + shared.text(", "), *shared.params)
    level_c.add("FROM (").extend((base.text(), base.params)).add(") b OFFSET 0")
    statement = _Sql().add(
        "SELECT (%s::bigint[])[v.i + 1] AS tag, d.id AS resource_id, "
        f"(CASE v.i {hits.kinds.text()} END)::text AS kind, ",
        tags,
        *hits.kinds.params,
    )
    statement.add(f"(CASE v.i {hits.founds.text()} END)::text AS found_key, ", *hits.founds.params)
    statement.add("d.account_id, left(coalesce(d.tags ->> 'Owner', ''), 256) AS owner FROM")
    statement.add(
        f"(SELECT c.*, array_remove(ARRAY[{hits.hits.text(', ')}]::int[], NULL) AS hits",
        *hits.hits.params,
    )
    statement.add("FROM (").extend((level_c.text(), level_c.params)).add(") c OFFSET 0) d")
    statement.add("CROSS JOIN LATERAL unnest(d.hits) v (i)")
    return statement.text(), statement.params


def compile_rule(
    rule: RuleSpec, organization_id: int, *, tag: Any = None, **options: Any
) -> tuple[str, list[Any]]:
    """violations_sql() of one rule."""
    return violations_sql([(tag, rule)], organization_id, **options)


def count_and_sample(
    rule: RuleSpec, organization_id: int, limit: int, **options: Any
) -> tuple[int, list[tuple[int, str, str | None]]]:
    """How many resources the rule flags and the first `limit` of them (by resource id), in
    one statement: a window count, never the whole list in Python."""

    text, params = compile_rule(rule, organization_id, **options)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT v.resource_id, v.kind, v.found_key, count(*) OVER () FROM ({text}) v "
            "ORDER BY v.resource_id LIMIT %s",
            [*params, limit],
        )
        rows = cursor.fetchall()
    if not rows:
        return 0, []
    return rows[0][3], [(r[0], r[1], r[2]) for r in rows]


def run(rule: RuleSpec, organization_id: int, **options: Any) -> list[tuple[int, str, str | None]]:
    """(resource_id, kind, found_key) of the rule's violations, by resource id."""

    text, params = compile_rule(rule, organization_id, **options)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT x.resource_id, x.kind, x.found_key FROM ({text}) x ORDER BY x.resource_id",
            params,
        )
        rows: list[tuple[int, str, str | None]] = cursor.fetchall()
    return rows


def applies_flags_sql(rules: Iterable[RuleSpec]) -> tuple[str, list[Any], list[int | None]]:
    """Which of the rules apply to the row c of live_resources_sql() (scope and `when`:
    exactly the resources the rules are checked on; the scores' "in scope"): a text of
    '0'/'1' characters, one per distinct condition among the rules, and for each rule the
    index of its character (None: the rule applies to every row). Rules with the same
    condition share a character, so each condition is computed once per row."""
    flags = _Sql()
    index_of: dict[tuple[str, str], int] = {}
    indexes: list[int | None] = []
    for rule in rules:
        scope, params = _scope_expr(rule)
        if scope == "true":
            indexes.append(None)
            continue
        key = (scope, repr(params))
        if key not in index_of:
            index_of[key] = len(flags.parts)
            flags.add(f"CASE WHEN {scope} THEN '1' ELSE '0' END", *params)
        indexes.append(index_of[key])
    text = "(" + flags.text(" || ") + ")" if flags.parts else "''"
    return text, flags.params, indexes
