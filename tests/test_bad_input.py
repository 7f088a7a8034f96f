"""Bad input is a 4xx, never a 500: every filter of every list page and API endpoint, JSON
bodies and oversized requests (hostile YAML documents: tests/policies/test_hostile_yaml.py).

The GET routes are the isolation suite's (tests/isolation.py), so a new page or endpoint is
covered by declaring it there; an API route's filters are the query parameters its OpenAPI
schema documents, a page's are its filter form's fields (PAGE_FILTERS).
"""

from __future__ import annotations

import json
import re
from functools import cache
from urllib.parse import quote

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from audit.views import AuditFilterForm
from inventory.filters import ResourceFilterForm
from policies.views import FindingListView
from tests.conftest import client_for
from tests.isolation import ROUTES
from tests.test_isolation import _call, module_world, world  # noqa: F401 (the fixtures)

pytestmark = pytest.mark.django_db

# Parameters any list may read: paging, the export switch, the team scope.
COMMON = ("page", "limit", "offset", "cursor", "format", "teams")
PAGE_FILTERS = {
    "inventory": tuple(ResourceFilterForm.base_fields),
    "findings": FindingListView.FILTERS,
    "findings-csv": FindingListView.FILTERS,
    "audit-log": tuple(AuditFilterForm.base_fields),
    "assistant": ("c", "mode"),
    "resource-graph": ("depth", "direction"),
}

# Values a client may send in place of a filter (NUL is tried in every filter at once): text
# where a number is expected, numbers past every column's range or past Python's int() digit
# limit, long text, invalid UTF-8.
GARBAGE = ("abc", "-1", "9" * 30, "1" * 5000, "x" * 3000)
RAW_GARBAGE = ("%FF%FE", "%ED%A0%80")  # invalid UTF-8, a lone surrogate

GET_ROUTES = [r for r in ROUTES if r.method == "get"]


@cache
def _schema_parameters() -> list[tuple[re.Pattern, tuple[str, ...]]]:
    """(path pattern, query parameter names) of every GET operation of the OpenAPI schema."""

    schema = SchemaGenerator().get_schema(request=None, public=True)
    result = []
    for path, operations in schema["paths"].items():
        if "get" not in operations:
            continue
        names = tuple(
            p["name"] for p in operations["get"].get("parameters", []) if p["in"] == "query"
        )
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        result.append((pattern, names))
    return result


def _filters(route) -> tuple[str, ...]:
    path = route.path.split("?")[0]
    if not route.api:
        return COMMON + PAGE_FILTERS.get(route.name, ())
    matches = [
        names
        for pattern, names in _schema_parameters()
        if pattern.match(path.replace("{", "").replace("}", ""))
    ]
    assert matches, f"{route.name}: no GET operation in the OpenAPI schema for {path}"
    return COMMON + matches[0]


def _with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _check(response, url: str, *, nul: bool) -> None:
    status = response.status_code
    if nul:
        assert 400 <= status < 500, (url[:200], status)
    else:
        assert status < 500, (url[:200], status, response.content[:300])
    if status >= 400 and url.startswith("/api/"):
        assert response["Content-Type"] == "application/problem+json", url[:200]


@pytest.mark.parametrize("route", GET_ROUTES, ids=[r.name for r in GET_ROUTES])
def test_garbage_in_any_filter_is_a_4xx_never_a_500(route, world):  # noqa: F811
    """As the organization's owner: NUL in any filter (value or name) is refused outright;
    any other garbage in any one filter is a 4xx or is ignored, never a server error."""
    client = client_for(world.users["owner"])
    url = route.url(world)
    names = _filters(route)
    every_nul = "&".join(f"{name}=%00" for name in names)
    for query in (every_nul, "%00=1", "q%00=x", f"{names[-1]}=a%00b"):
        _check(client.get(_with_query(url, query)), _with_query(url, query), nul=True)
    for name in names:
        for value in GARBAGE:
            target = _with_query(url, f"{name}={quote(value)}")
            _check(client.get(target), target, nul=False)
        for raw in RAW_GARBAGE:
            target = _with_query(url, f"{name}={raw}")
            _check(client.get(target), target, nul=False)


def test_nul_in_a_path_segment_is_a_400(world):  # noqa: F811
    client = client_for(world.users["owner"])
    for url in (f"/o/{world.org}/policies/rules/a%00b/", f"/api/v1/o/{world.org}/x%00/"):
        response = client.get(url)
        assert response.status_code in (400, 404), url
        if url.startswith("/api/"):
            assert response["Content-Type"] == "application/problem+json"


API_PATHS = sorted({r.path for r in ROUTES if r.api})


@pytest.mark.parametrize("path", API_PATHS)
def test_options_on_every_endpoint_is_answered(path, world):  # noqa: F811
    """OPTIONS (CORS preflights, scanners) describes the endpoint, or refuses it; never a 500."""
    url = path.format(**vars(world))
    for client in (client_for(world.users["owner"]), Client()):
        response = client.options(url)
        assert response.status_code in (200, 401), (url, response.status_code)


WRITE_ROUTES = [
    r
    for r in ROUTES
    if r.api and r.method in ("post", "put") and r.data and "ci-check" not in r.path
]


def _nul_variants(data):
    """`data` once per text value in it (keys included), that text with a NUL inside."""
    if isinstance(data, str):
        yield data + "\x00"
    elif isinstance(data, list):
        for i, item in enumerate(data):
            for variant in _nul_variants(item):
                yield [*data[:i], variant, *data[i + 1 :]]
    elif isinstance(data, dict):
        for key, value in data.items():
            yield {**{k: v for k, v in data.items() if k != key}, key + "\x00": value}
            for variant in _nul_variants(value):
                yield {**data, key: variant}


def _send(client, route, url, body: str):
    return getattr(client, route.method)(url, body, content_type="application/json")


def _assert_problem(response, status, url):
    assert response.status_code == status, (url, response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/problem+json", url


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=[r.name for r in WRITE_ROUTES])
def test_hostile_json_bodies_are_a_400(route, world, settings):  # noqa: F811
    """A body nested 50,000 deep (the json module's RecursionError), a NUL in any text of an
    otherwise valid body, an integer of 5,000 digits: 400 problem+json. A body over
    DATA_UPLOAD_MAX_MEMORY_SIZE: 413 problem+json, before it is parsed."""
    client = client_for(world.users["owner"])
    url = route.url(world)
    data = route.data(world)
    for body in ("[" * 50_000 + "]" * 50_000, '{"a": ' * 50_000 + "1" + "}" * 50_000):
        _assert_problem(_send(client, route, url, body), 400, url)
    for variant in _nul_variants(data):
        _assert_problem(_send(client, route, url, json.dumps(variant)), 400, url)
    _assert_problem(_send(client, route, url, '{"n": ' + "1" * 5000 + "}"), 400, url)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    _assert_problem(_send(client, route, url, json.dumps({**data, "pad": "x" * 2000})), 413, url)
