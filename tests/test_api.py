"""The API base: scoped reads, problem+json errors, the OpenAPI schema and its docs page."""

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

import audit
from accounts import audit_events as accounts_events
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_members_and_teams_of_the_organization(org, owner, viewer, team):
    client = client_for(viewer)
    members = client.get(f"/api/v1/o/{org.slug}/members/").json()
    assert {m["email"] for m in members["results"]} == {owner.email, viewer.email}
    teams = client.get(f"/api/v1/o/{org.slug}/teams/").json()
    assert [t["slug"] for t in teams["results"]] == ["platform"]
    detail = client.get(f"/api/v1/o/{org.slug}/").json()
    assert detail == {
        "slug": "acme",
        "name": "Acme Corp",
        "created_at": detail["created_at"],
        "role": "viewer",
    }


def test_audit_events_filter_by_action(org, auditor):
    with tenant_scope(org):
        audit.record(accounts_events.TEAM_CREATE, data={"name": "a"})
        audit.record(accounts_events.TEAM_DELETE, data={"name": "a"})
    client = client_for(auditor)
    body = client.get(f"/api/v1/o/{org.slug}/audit-events/", {"action": "team.delete"}).json()
    assert [e["action"] for e in body["results"]] == ["team.delete"]
    assert body["results"][0]["hash"]


def test_errors_are_problem_details(org, viewer):
    client = client_for(viewer)
    forbidden = client.get(f"/api/v1/o/{org.slug}/audit-events/")
    assert forbidden.status_code == 403
    assert forbidden["Content-Type"] == "application/problem+json"
    assert forbidden.json()["title"] == "Forbidden"
    missing = client.get("/api/v1/no/such/endpoint/")
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/problem+json"
    assert missing.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not found.",
    }


def test_openapi_schema_lists_the_endpoints(viewer):
    response = client_for(viewer).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/organizations/",
        "/api/v1/o/{org_slug}/",
        "/api/v1/o/{org_slug}/members/",
        "/api/v1/o/{org_slug}/teams/",
        "/api/v1/o/{org_slug}/audit-events/",
        "/api/v1/o/{org_slug}/inventory/accounts/",
        "/api/v1/o/{org_slug}/inventory/scans/",
        "/api/v1/o/{org_slug}/inventory/resources/",
        "/api/v1/o/{org_slug}/inventory/resources/{id}/{query}/",
        "/api/v1/o/{org_slug}/policies/rules/",
        "/api/v1/o/{org_slug}/policies/rules/{rule_id}/",
        "/api/v1/o/{org_slug}/policies/rules/{rule_id}/versions/",
        "/api/v1/o/{org_slug}/policies/import/",
        "/api/v1/o/{org_slug}/policies/export/",
        "/api/v1/o/{org_slug}/policies/preview/",
        "/api/v1/o/{org_slug}/policies/evaluate/",
        "/api/v1/o/{org_slug}/policies/findings/",
        "/api/v1/o/{org_slug}/policies/findings/counts/",
        "/api/v1/o/{org_slug}/policies/exemptions/",
        "/api/v1/o/{org_slug}/policies/exemptions/{id}/approve/",
    ):
        assert path in paths


def test_swagger_ui_is_served_from_our_static_files(viewer):
    page = client_for(viewer).get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()


def test_the_openapi_schema_generates_without_warnings(tmp_path):
    """Colliding operation ids, unresolvable authenticators or serializers: any warning fails
    (the production deploy check treats drf-spectacular's warnings as errors too)."""

    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").stat().st_size > 0


def _operations():

    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", path, operation


def test_every_operation_documents_the_problems_it_can_answer():
    """Every error is problem+json (tagsense.api): 400 (a malformed request is refused before
    any view), 401 and 403 everywhere, 404 on organization paths, 413 and 415 with a body."""
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for label, path, operation in _operations():
        expected = {"400", "401", "403"}
        if path.startswith("/api/v1/o/{org_slug}/"):
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"413", "415"}
        for code in expected:
            assert operation["responses"].get(code, {}).get("content") == problem, (label, code)


def test_the_lists_answered_whole_are_not_documented_as_pages(org, owner):
    """A list the API answers as a JSON array is documented as an array, not as a
    {count, next, previous, results} page (what a generated client would expect)."""
    client = client_for(owner)
    documented = {label: op for label, _, op in _operations()}
    for path in (
        "policies/findings/counts/",
        "policies/aws-tag-policies/effective/",
        "policies/frameworks/",
        "policies/frameworks/builtin/",
        "tokens/",
        "service-accounts/",
    ):
        answer = client.get(f"/api/v1/o/{org.slug}/{path}")
        assert answer.status_code == 200 and isinstance(answer.json(), list), path
        schema = documented[f"GET /api/v1/o/{{org_slug}}/{path}"]["responses"]["200"]
        assert schema["content"]["application/json"]["schema"]["type"] == "array", path


def test_an_aws_account_id_is_twelve_ascii_digits(org, owner):
    """Python's `\\d` also matches other scripts' digits: those are not account ids."""
    client = client_for(owner)
    url = f"/api/v1/o/{org.slug}/inventory/accounts/"
    for account_id in ("٢١٠٩٨٧٦٥٤٣٢١", "２１０９８７６５４３２１"):  # Arabic-Indic, full-width
        refused = client.post(url, {"account_id": account_id}, content_type="application/json")
        assert refused.status_code == 400, account_id
        assert refused.json()["errors"] == {"account_id": ["an AWS account id is 12 digits"]}
    created = client.post(url, {"account_id": "210987654321"}, content_type="application/json")
    assert created.status_code == 201
