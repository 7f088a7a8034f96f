"""Conditions on JSON columns that hold for any key or item text.

Django's key lookups (`tags__Owner`, KeyTextTransform) build a JSON path from the key: a key of
digits becomes an array index ("2024" never matches). These conditions pass the key and value as
parameters instead, never as part of a path, to jsonb operators. Keys and values compare exactly
(case and all); only JSON strings match a value.

Use them as filter conditions: `queryset.filter(JsonKeyIs("tags", key, value))`,
`queryset.exclude(JsonKeyIs("tags", key))`, `queryset.filter(JsonArrayHas("owner_teams", slug))`.
"""

from __future__ import annotations

from django.db import NotSupportedError
from django.db.models import BooleanField, F, Func, Value


class _JsonCondition(Func):
    output_field = BooleanField()

    def _parts(self, compiler, connection):
        sqls, params = [], []
        for expression in self.get_source_expressions():
            sql, expression_params = compiler.compile(expression)
            sqls.append(sql)
            params.extend(expression_params)
        return sqls, params

    def as_sql(self, compiler, connection, **extra_context):
        raise NotSupportedError(f"{type(self).__name__} supports PostgreSQL only")


class JsonKeyIs(_JsonCondition):
    """The JSON object in `field` has the key `key` — with the string `value`, when given."""

    def __init__(self, field: str, key: str, value: str | None = None):
        expressions = [F(field), Value(str(key))]
        if value is not None:
            expressions.append(Value(str(value)))
        super().__init__(*expressions)

    def as_postgresql(self, compiler, connection, **extra_context):
        (column, key, *value), params = self._parts(compiler, connection)
        if not value:
            return f"jsonb_exists({column}, {key}::text)", params
        return f"({column} @> jsonb_build_object({key}::text, {value[0]}::text))", params


class JsonArrayHas(_JsonCondition):
    """The JSON array in `field` holds the string `item`."""

    def __init__(self, field: str, item: str):
        super().__init__(F(field), Value(str(item)))

    def as_postgresql(self, compiler, connection, **extra_context):
        (column, item), params = self._parts(compiler, connection)
        return f"({column} @> jsonb_build_array({item}::text))", params
