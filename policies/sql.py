# ruff: noqa: S608 - only constants and compiled fragments are interpolated; values are parameters
"""The rules as SQL: the same meaning as policies/evaluate.py, set-based over the inventory.

``compile_rule(rule)`` turns one RuleSpec into a SELECT over ``inventory_resource`` yielding
``(resource_id, kind, found_key)`` for every live resource of the organization that violates the
rule; ``violations_sql(rules)`` joins several with UNION ALL (one statement for all rules).
docs/policies.md is the reference; a hypothesis test (tests/policies/test_sql_engine.py)
compares this module with evaluate.py on random resources and rules.

How each definition of docs/policies.md is written in SQL:

- fold: ``translate(k, 'A..Z', 'a..z')``, never ``lower()`` (locale-dependent);
- "first by code point": ``min(k COLLATE "C")`` (UTF-8 byte order is code point order);
- glob: ``LIKE`` after escaping ``\\ % _`` and turning ``*``/``?`` into ``%``/``_``;
- regex: ``~ '^(?:' || p || ')$'`` after two rewrites that make PostgreSQL's advanced regular
  expressions read the pattern as Python does: ``.`` outside a class becomes ``[^\\n]``
  (PostgreSQL's ``.`` also matches a newline) and ``$`` becomes ``(?:$|(?=\\n$))`` (Python's
  ``$`` also matches before a final newline). Syntax the two read differently otherwise is
  refused by spec.vet_regex, so no rule reaching here holds it.

The statements filter the organization explicitly; row-level security is the second wall.
Assumes the caller runs inside tenant_scope(organization).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .spec import RuleSpec, fold

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"


def _fold_sql(expression: str) -> str:
    return f"translate({expression}, '{_UPPER}', '{_LOWER}')"


def like_pattern(glob: str) -> str:
    """The rules' glob as a LIKE pattern (escape character backslash)."""
    out = []
    for char in glob:
        if char == "*":
            out.append("%")
        elif char == "?":
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


@dataclass
class _Sql:
    """A fragment and its parameters, in order (psycopg %s placeholders)."""

    parts: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, text: str, *params: Any) -> None:
        self.parts.append(text)
        self.params.extend(params)


def _untaggable_types() -> list[str]:
    from inventory.scanners.base import scanners

    return sorted(t for t, cls in scanners().items() if cls.tagging == "none")


def _teams_of_account_sql() -> str:
    """Team slugs holding the resource's AWS account (inventory.access's grants: a guardian
    group permission to the team's group, named tagsense-team-<team id>)."""
    from accounts.team_groups import GROUP_PREFIX

    return (
        "SELECT t.slug FROM inventory_accountteamgrant g "
        "JOIN auth_group ag ON ag.id = g.group_id "
        "JOIN auth_permission p ON p.id = g.permission_id AND p.codename = 'hold_awsaccount' "
        f"JOIN accounts_team t ON ag.name = '{GROUP_PREFIX}' || t.id::text "
        "AND t.organization_id = r.organization_id "
        "WHERE g.content_object_id = r.account_id AND g.organization_id = r.organization_id"
    )


def teams_json_sql() -> str:
    """A jsonb array of the slugs of the teams holding r's account, sorted."""
    return (
        "(SELECT coalesce(jsonb_agg(s.slug ORDER BY s.slug), '[]'::jsonb) "
        f"FROM ({_teams_of_account_sql()}) s)"
    )


def _selector(sql: _Sql, key: str, values: Sequence[str]) -> None:
    sql.add("AND r.tags ? %s", key)
    if values:
        sql.add("AND (r.tags ->> %s) = ANY(%s)", key, list(values))


def _scope(sql: _Sql, rule: RuleSpec) -> None:
    scope = rule.scope
    untaggable = _untaggable_types()
    if untaggable:
        sql.add("AND NOT (r.resource_type = ANY(%s))", untaggable)
    if "*" not in scope.resource_types:
        exact = [t for t in scope.resource_types if not t.endswith(":*")]
        services = [t[:-1] for t in scope.resource_types if t.endswith(":*")]
        alternatives = ["r.resource_type = ANY(%s)"]
        params: list[Any] = [exact]
        for prefix in services:
            alternatives.append("starts_with(r.resource_type, %s)")
            params.append(prefix)
        sql.add("AND (" + " OR ".join(alternatives) + ")", *params)
    if scope.accounts:
        sql.add(
            "AND r.account_id IN (SELECT a.id FROM inventory_awsaccount a "
            "WHERE a.organization_id = r.organization_id AND a.account_id = ANY(%s))",
            list(scope.accounts),
        )
    if scope.regions:
        sql.add("AND r.region = ANY(%s)", list(scope.regions))
    if scope.teams:
        sql.add(
            f"AND EXISTS (SELECT 1 FROM ({_teams_of_account_sql()}) s WHERE s.slug = ANY(%s))",
            list(scope.teams),
        )
    if scope.tag_selector is not None:
        _selector(sql, scope.tag_selector.key, scope.tag_selector.values)
    if rule.when is not None:
        _selector(sql, rule.when.key, rule.when.values)


def _value_matches(rule: RuleSpec) -> tuple[str, list[Any]]:
    matcher = rule.values
    assert matcher is not None
    if matcher.kind == "list":
        return "(r.tags ->> %s) = ANY(%s)", [rule.key, list(matcher.items)]
    if matcher.kind == "glob":
        return "(r.tags ->> %s) LIKE %s", [rule.key, like_pattern(matcher.pattern)]
    return "(r.tags ->> %s) ~ %s", [rule.key, postgres_regex(matcher.pattern)]


def _check(rule: RuleSpec) -> tuple[str, str, list[Any]]:
    """(lateral subquery giving kind and found_key, its parameters)."""
    keys = "jsonb_object_keys(r.tags) k"
    if rule.check == "max_tags":
        limit = rule.max if rule.max is not None else 50
        return (
            f"SELECT CASE WHEN count(*) > %s THEN 'too_many_tags' END AS kind, "
            f"NULL::text AS found_key FROM {keys} "
            f"WHERE left({_fold_sql('k')}, 4) <> 'aws:'",
            "",
            [limit],
        )
    if rule.check == "prohibited_key":
        patterns = [like_pattern(fold(p)) for p in (rule.key, *rule.aliases)]
        return (
            "SELECT CASE WHEN min(k COLLATE \"C\") IS NOT NULL THEN 'prohibited' END AS kind, "
            f'min(k COLLATE "C") AS found_key FROM {keys} '
            f"WHERE {_fold_sql('k')} LIKE ANY(%s)",
            "",
            [patterns],
        )
    wanted = sorted({fold(rule.key), *(fold(a) for a in rule.aliases)})
    # The first case variant, looked for only when the key itself is absent (a one-time filter
    # of the aggregate: the keys are enumerated for those rows only), once per row (an
    # aggregate in FROM is not pulled up and duplicated into each reference).
    variant = (
        f'(SELECT min(k COLLATE "C") AS variant FROM {keys} '
        f"WHERE NOT (r.tags ? %s) AND k <> %s AND {_fold_sql('k')} = ANY(%s)) v"
    )
    if rule.check == "required_key":
        return (
            "SELECT CASE WHEN r.tags ? %s THEN NULL WHEN v.variant IS NOT NULL "
            "THEN 'wrong_case' ELSE 'missing' END AS kind, "
            "CASE WHEN r.tags ? %s THEN NULL ELSE v.variant END AS found_key "
            f"FROM {variant}",
            "",
            [rule.key, rule.key, rule.key, rule.key, wanted],
        )
    match, match_params = _value_matches(rule)
    return (
        f"SELECT CASE WHEN r.tags ? %s THEN CASE WHEN {match} THEN NULL ELSE 'bad_value' END "
        "WHEN v.variant IS NOT NULL THEN 'wrong_case' END AS kind, "
        "CASE WHEN r.tags ? %s THEN %s ELSE v.variant END AS found_key "
        f"FROM {variant}",
        "",
        [rule.key, *match_params, rule.key, rule.key, rule.key, rule.key, wanted],
    )


def compile_rule(
    rule: RuleSpec,
    organization_id: int,
    *,
    tag: Any = None,
    resource_ids: Sequence[int] | None = None,
    resource_query: tuple[str, Sequence[Any]] | None = None,
    account_pks: Sequence[int] | None = None,
) -> tuple[str, list[Any]]:
    """One SELECT of (tag, resource_id, kind, found_key) for the rule's violations among the
    organization's live resources, optionally only `resource_ids` and only `account_pks`
    (AwsAccount primary keys: a member's visible accounts). `resource_query` is a SELECT of
    resource ids with its parameters (the resources a scan touched). `tag` is selected as is (the
    caller's rule identifier in a UNION of several rules)."""
    check_sql, _, check_params = _check(rule)
    sql = _Sql()
    sql.add(
        "SELECT %s::bigint AS tag, r.id AS resource_id, c.kind, c.found_key, r.account_id, "
        "left(coalesce(r.tags ->> 'Owner', ''), 256) AS owner "
        f"FROM inventory_resource r CROSS JOIN LATERAL ({check_sql}) c "
        "WHERE r.organization_id = %s AND r.deleted_at IS NULL",
        tag,
        *check_params,
        organization_id,
    )
    if resource_ids is not None:
        sql.add("AND r.id = ANY(%s)", list(resource_ids))
    if resource_query is not None:
        # An array of the ids: probes of the primary key, never a scan of the organization's
        # rows, whatever the statistics say.
        sql.add(f"AND r.id = ANY(ARRAY({resource_query[0]}))", *resource_query[1])
    if account_pks is not None:
        sql.add("AND r.account_id = ANY(%s)", list(account_pks))
    _scope(sql, rule)
    sql.add("AND c.kind IS NOT NULL")
    return " ".join(sql.parts), sql.params


def violations_sql(
    rules: Iterable[tuple[Any, RuleSpec]],
    organization_id: int,
    **options: Any,
) -> tuple[str, list[Any]]:
    """One statement for several rules: UNION ALL of compile_rule(), each tagged."""
    parts, params = [], []
    for tag, rule in rules:
        text, values = compile_rule(rule, organization_id, tag=tag, **options)
        parts.append(f"({text})")
        params.extend(values)
    if not parts:
        return (
            "SELECT NULL::bigint AS tag, NULL::bigint AS resource_id, NULL AS kind, "
            "NULL AS found_key, NULL::bigint AS account_id, NULL AS owner WHERE false",
            [],
        )
    return " UNION ALL ".join(parts), params


def count_and_sample(
    rule: RuleSpec, organization_id: int, limit: int, **options: Any
) -> tuple[int, list[tuple[int, str, str | None]]]:
    """How many resources the rule flags and the first `limit` of them (by resource id), in
    one statement: a window count, never the whole list in Python."""
    from django.db import connection

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
    from django.db import connection

    text, params = compile_rule(rule, organization_id, **options)
    with connection.cursor() as cursor:
        cursor.execute(text + " ORDER BY r.id", params)
        return [(row[1], row[2], row[3]) for row in cursor.fetchall()]


def applies_sql(
    rules: Iterable[tuple[Any, RuleSpec]],
    organization_id: int,
    *,
    account_pks: Sequence[int] | None = None,
) -> tuple[str, list[Any]]:
    """(rule_pk, resource_id, account_id, resource_type) for every live resource each rule
    applies to (its scope and `when`, untaggable types excluded: exactly the resources
    compile_rule checks), optionally only in `account_pks`. The scores' "in scope"."""
    parts, params = [], []
    for tag, rule in rules:
        sql = _Sql()
        sql.add(
            "SELECT %s::bigint AS rule_pk, r.id AS resource_id, r.account_id, r.resource_type "
            "FROM inventory_resource r WHERE r.organization_id = %s AND r.deleted_at IS NULL",
            tag,
            organization_id,
        )
        if account_pks is not None:
            sql.add("AND r.account_id = ANY(%s)", list(account_pks))
        _scope(sql, rule)
        parts.append("(" + " ".join(sql.parts) + ")")
        params.extend(sql.params)
    if not parts:
        return (
            "SELECT NULL::bigint AS rule_pk, NULL::bigint AS resource_id, "
            "NULL::bigint AS account_id, NULL::text AS resource_type WHERE false",
            [],
        )
    return " UNION ALL ".join(parts), params


def teams_of_account_sql() -> str:
    """Team slugs holding r.account_id (r has organization_id and account_id)."""
    return _teams_of_account_sql()
