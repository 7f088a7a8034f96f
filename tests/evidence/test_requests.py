"""Asking for a package by page and API: who may, what a bad request answers (400 naming the
field, nothing kept, nothing queued), and polling an export through the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts import tokens
from accounts.models import Membership
from accounts.roles import Role
from audit.models import AuditEvent
from evidence.models import EvidenceExport
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.evidence.conftest import ACCOUNT

pytestmark = pytest.mark.django_db

TODAY = timezone.now().date()
GOOD = {
    "frameworks": ["baseline"],
    "period_start": (TODAY - timedelta(days=5)).isoformat(),
    "period_end": TODAY.isoformat(),
}
# (case, change to GOOD, the field the answer names)
BAD = [
    ("end-in-the-future", {"period_end": (TODAY + timedelta(days=1)).isoformat()}, "period_end"),
    (
        "start-in-the-future",
        {
            "period_start": (TODAY + timedelta(days=2)).isoformat(),
            "period_end": TODAY.isoformat(),
        },
        "period_start",
    ),
    ("reversed", {"period_start": TODAY.isoformat(), "period_end": "2020-01-01"}, "period_end"),
    ("no-framework", {"frameworks": []}, "frameworks"),
    ("unknown-framework", {"frameworks": ["no-such-framework"]}, "frameworks"),
    ("framework-not-enabled", {"frameworks": ["hipaa"]}, "frameworks"),
    ("their-framework", {"frameworks": ["theirs"]}, "frameworks"),
    ("unknown-control", {"controls": ["baseline/NOPE-9"]}, "controls"),
    ("control-without-framework", {"controls": ["BL-1"]}, "controls"),
    ("control-of-another-framework", {"controls": ["soc2/CC6.1"]}, "controls"),
    ("unknown-team", {"teams": ["nobody"]}, "teams"),
    ("their-team", {"teams": ["secret"]}, "teams"),
    ("unknown-account", {"accounts": ["333333333333"]}, "accounts"),
    ("their-account", {"accounts": ["999999999999"]}, "accounts"),
    ("malformed-account", {"accounts": ["12345"]}, "accounts"),
]
IDS = [case for case, _, _ in BAD]


@pytest.fixture
def world(org, estate, theirs):
    return org


def _nothing_kept(org, before):
    with tenant_scope(org):
        assert not EvidenceExport.objects.exists()
        assert AuditEvent.objects.filter(action="evidence.export_request").count() == 0
        assert AuditEvent.objects.count() == before


def _count(org):
    with tenant_scope(org):
        return AuditEvent.objects.count()


@pytest.mark.parametrize(("case", "change", "field"), BAD, ids=IDS)
def test_a_bad_api_request_is_a_400_naming_the_field(
    world, auditor, case, change, field, django_capture_on_commit_callbacks
):
    client = client_for(auditor)  # signing in is audited: count from here
    before = _count(world)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            f"/api/v1/o/{world.slug}/evidence/exports/",
            {**GOOD, **change},
            content_type="application/json",
        )
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert list(errors) == [field], errors
    assert queued == []
    _nothing_kept(world, before)


@pytest.mark.parametrize(("case", "change", "field"), BAD, ids=IDS)
def test_a_bad_page_request_is_a_400_with_the_fields_error(
    world, auditor, case, change, field, django_capture_on_commit_callbacks
):
    client = client_for(auditor)
    before = _count(world)
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(f"/o/{world.slug}/evidence/", {**GOOD, **change})
    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == [field], form.errors
    assert f'id="{field}-errors"' in response.content.decode()
    assert queued == []
    _nothing_kept(world, before)


def test_a_hostile_name_is_shown_escaped(world, auditor):
    response = client_for(auditor).post(
        f"/o/{world.slug}/evidence/", {**GOOD, "teams": ["<script>alert(1)</script>"]}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)" in body


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.AUDITOR])
def test_owners_admins_and_auditors_request_and_poll(
    world, users_by_role, role, django_capture_on_commit_callbacks
):
    client = client_for(users_by_role[role])
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            f"/api/v1/o/{world.slug}/evidence/exports/",
            {"frameworks": ["baseline"], "accounts": [ACCOUNT]},
            content_type="application/json",
        )
    assert response.status_code == 202, response.content
    assert len(queued) == 1  # the build, once the request commits
    body = response.json()
    assert body["status"] == "queued" and body["progress"] == 0
    assert body["scope"] == {
        "frameworks": ["baseline"],
        "controls": [],
        "teams": [],
        "accounts": [ACCOUNT],
    }
    # The default period: the last 30 days, today included.
    assert body["period_start"].startswith((TODAY - timedelta(days=29)).isoformat())
    assert body["download_url"] is None and body["sha256"] == ""
    polled = client.get(body["url"]).json()
    assert polled["id"] == body["id"] and polled["status"] == "queued"
    listed = client.get(f"/api/v1/o/{world.slug}/evidence/exports/").json()["results"]
    assert [e["id"] for e in listed] == [body["id"]]
    with tenant_scope(world):
        event = AuditEvent.objects.get(action="evidence.export_request")
    assert event.actor_label == users_by_role[role].email
    assert event.data["export"] == body["id"]


@pytest.mark.parametrize("role", [Role.EDITOR, Role.VIEWER])
def test_editors_and_viewers_are_refused(world, users_by_role, role):
    client = client_for(users_by_role[role])
    api = client.post(
        f"/api/v1/o/{world.slug}/evidence/exports/", GOOD, content_type="application/json"
    )
    page = client.post(f"/o/{world.slug}/evidence/", GOOD)
    assert (api.status_code, page.status_code) == (403, 403)
    assert client.get(f"/o/{world.slug}/evidence/").status_code == 403
    with tenant_scope(world):
        assert not EvidenceExport.objects.exists()


def test_the_page_proposes_the_last_30_days_and_the_enabled_frameworks(world, auditor):
    page = client_for(auditor).get(f"/o/{world.slug}/evidence/").content.decode()
    assert f'value="{(TODAY - timedelta(days=29)).isoformat()}"' in page
    assert f'value="{TODAY.isoformat()}"' in page
    assert 'value="baseline"' in page and "theirs" not in page
    assert f'href="/o/{world.slug}/evidence/"' in page  # the menu links here


def test_a_token_needs_the_write_scope_to_request(world, auditor):
    with tenant_scope(world):
        _, secret = tokens.create_personal_token(
            Membership.objects.get(user=auditor), name="ro", scope="read"
        )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    url = f"/api/v1/o/{world.slug}/evidence/exports/"
    assert client.get(url).status_code == 200
    refused = client.post(url, GOOD, content_type="application/json")
    assert refused.status_code == 403 and "scope" in refused.json()["detail"]
