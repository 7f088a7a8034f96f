"""docs/api.md's table of policies endpoints matches the URLconf: every method of every route is
listed once, each listed path resolves to the route it names, and the scope and role it states
are the ones the code asks for. An endpoint added without a row, or a row left after its
endpoint went, fails here."""

from __future__ import annotations

import re
from pathlib import Path

from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse

from accounts.tokens import required_scope

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
PREFIX = "api/v1/o/<slug:org_slug>/policies/"
METHODS = ("get", "post", "put", "patch", "delete")

# docs/api.md's names for the URL parameters, and a value of each to resolve a path with.
PARAMETERS = {
    "org_slug": ("<org>", "acme"),
    "rule_id": ("<rule-id>", "owner-required"),
    "slug": ("<slug>", "soc2"),
    "pk": ("<id>", "7"),
    "account_id": ("<account-id>", "123456789012"),
}
ROLES = {"any": "view", "editor+": "change", "admin+": "manage"}


def routes() -> dict[tuple[str, str], URLPattern]:
    """(method, path as the doc writes it) of every policies API route."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern), pattern

    found = {}
    for route, pattern in walk(get_resolver().url_patterns):
        if not route.startswith(PREFIX):
            continue
        path = "/" + re.sub(
            r"<(?:\w+:)?(\w+)>", lambda m: PARAMETERS[m.group(1)][0], route
        )  # fmt: skip
        for method in METHODS:
            if hasattr(pattern.callback.cls, method):
                found[(method.upper(), path)] = pattern
    return found


def documented() -> list[tuple[str, str, str, str]]:
    """(method, path, scope, role) of each row of the policies table."""
    section = DOC.read_text().split("## Policies endpoints", 1)[1].split("\n## ", 1)[0]
    row = re.compile(r"^\| `(\w+)` \| `([^`]+)` \| (\w+) \| ([\w+]+) \|", re.MULTILINE)
    return row.findall(section)


def test_every_policies_endpoint_is_documented_once():
    rows = [(method, path) for method, path, _, _ in documented()]
    assert len(rows) == len(set(rows))
    assert set(rows) == set(routes())


def test_each_documented_path_resolves_with_its_scope_and_role():
    known = routes()
    for method, path, scope, role in documented():
        pattern = known[(method, path)]
        concrete = path
        for name, value in PARAMETERS.values():
            concrete = concrete.replace(name, value)
        match = resolve(concrete)
        assert match.url_name == pattern.name, path
        assert reverse(match.url_name, kwargs=match.kwargs) == concrete
        view = pattern.callback.cls(**pattern.callback.initkwargs)
        action = view.read_action if method == "GET" else view.write_action
        assert ROLES[role] == action, (method, path)
        assert (required_scope(method, match.url_name) or "read") == scope, (method, path)
