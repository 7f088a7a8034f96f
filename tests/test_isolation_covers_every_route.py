"""The isolation suite covers every route by construction: each organization-scoped page and
API operation, for every HTTP method its view answers, is in tests/isolation.py's ROUTES (so it
is checked for anonymous callers, other organizations and every role), and every other route is
listed in NOT_TENANT_SCOPED with the reason. A new route fails here until it is declared."""

from __future__ import annotations

import re
from collections import defaultdict

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from drf_spectacular.generators import SchemaGenerator

from tests.isolation import NOT_TENANT_SCOPED, NOT_TENANT_SCOPED_PREFIXES, ROUTES

# The methods every view answers by itself: OPTIONS describes, HEAD is GET without a body.
IMPLIED = {"options", "head"}
ORGANIZATION_KWARG = re.compile(r"\borg(anization)?_slug\b")


def _patterns(resolvers, prefix=""):
    """(full pattern, URLPattern) of every route, in resolution order; the pattern joined as
    the resolver joins ResolverMatch.route (a regex's leading ^ dropped after a prefix)."""
    for entry in resolvers:
        pattern = str(entry.pattern)
        full = prefix + pattern.removeprefix("^") if prefix else pattern
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, full)
        else:
            assert isinstance(entry, URLPattern)
            yield full, entry


def _methods(pattern: URLPattern) -> set[str]:
    """The HTTP methods the route's view answers (a function view: every method)."""
    view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    if view is None:
        return {"get", "post", "put", "patch", "delete"}
    return {m for m in view.http_method_names if m not in IMPLIED and hasattr(view, m)}


class _Examples(dict):
    """A value for each placeholder that its converter accepts: a UUID for the ones named
    `..._uuid` (the `uuid` converter), else "1" (which `int`, `slug` and `str` accept)."""

    def __missing__(self, name: str) -> str:
        return "00000000-0000-4000-8000-000000000001" if name.endswith("uuid") else "1"


def _example(route) -> str:
    """The route's path with every placeholder given a value that its converter accepts."""
    return route.path.split("?")[0].format_map(_Examples())


def _declared() -> dict[str, set[str]]:
    """pattern -> the methods ROUTES calls it with."""
    declared = defaultdict(set)
    for route in ROUTES:
        declared[resolve(_example(route)).route].add(route.method)
    return declared


def _missing() -> list[str]:
    declared = _declared()
    missing = []
    for full, pattern in _patterns(get_resolver().url_patterns):
        if full in NOT_TENANT_SCOPED:
            continue
        scoped = bool(ORGANIZATION_KWARG.search(full))
        if not scoped and any(full.startswith(p) for p in NOT_TENANT_SCOPED_PREFIXES):
            continue
        for method in sorted(_methods(pattern) - declared.get(full, set())):
            missing.append(f"{method.upper()} /{full} (name {pattern.name!r})")
    return missing


def test_every_route_and_method_is_in_the_isolation_table_or_listed_as_not_tenant_scoped():
    missing = _missing()
    assert not missing, (
        "Declare in tests/isolation.py (ROUTES or NOT_TENANT_SCOPED):\n" + "\n".join(missing)
    )


def test_every_operation_of_the_api_schema_is_in_the_isolation_table():
    """The OpenAPI document's operations (what clients are told exists), checked on their own:
    each organization-scoped one is in ROUTES."""

    schema = SchemaGenerator().get_schema(request=None, public=True)
    examples = [(_example(route), route.method) for route in ROUTES if route.api]
    missing = []
    for path, operations in schema["paths"].items():
        if "{org_slug}" not in path:
            continue
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        for method in set(operations) - IMPLIED:
            if not any(pattern.match(p) and m == method for p, m in examples):
                missing.append(f"{method.upper()} {path}")
    assert not missing, "Declare in tests/isolation.py's ROUTES:\n" + "\n".join(missing)


def test_nothing_is_listed_as_not_tenant_scoped_that_the_resolver_does_not_have():
    """A stale entry would hide a route added later at the same address."""
    patterns = {full for full, _ in _patterns(get_resolver().url_patterns)}
    assert set(NOT_TENANT_SCOPED) - patterns == set()
