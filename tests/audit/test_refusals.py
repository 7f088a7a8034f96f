"""Refusals in the audit log: every 403 refused to a member or token is recorded, once a minute
per caller and source, and a password-guessing loop writes a handful of events, not one each."""

import pytest
from django.core.management import call_command
from django.test import Client

from accounts import tokens
from accounts.models import Membership
from accounts.signals import UNKNOWN_SIGN_IN_REFUSALS_PER_INTERVAL
from audit.models import AuditEvent
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _events(org, action):
    with tenant_scope(org):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def _global(action):
    with all_tenants():
        return AuditEvent.objects.filter(action=action, organization__isnull=True).count()


def test_a_page_refused_to_a_member_is_audited_once_a_minute(org, editor):
    client = client_for(editor)
    page = f"/o/{org.slug}/settings/service-accounts/"
    for _ in range(10):
        assert client.post(page, {"name": "sneaky", "role": "admin"}).status_code == 403
    [event] = _events(org, "org.access_denied")
    assert (event.actor_kind, event.actor_label) == ("user", editor.email)
    assert event.data["path"] == page and event.data["method"] == "POST"
    assert event.data["role"] == "editor"
    # From another source, the same refusal is a new event.
    other = Client(REMOTE_ADDR="192.0.2.50")
    other.force_login(editor)
    assert other.post(page, {"name": "sneaky", "role": "admin"}).status_code == 403
    assert len(_events(org, "org.access_denied")) == 2
    call_command("verify_audit_chain", org=org.slug)  # the chain is whole


def test_an_api_call_refused_to_a_session_is_audited(org, viewer):
    response = client_for(viewer).get(f"/api/v1/o/{org.slug}/audit-events/")
    assert response.status_code == 403
    [event] = _events(org, "org.access_denied")
    assert event.actor_label == viewer.email and event.data["method"] == "GET"


def test_tokens_refused_by_scope_or_role_are_audited_as_the_token(org, admin, viewer):
    with tenant_scope(org):
        membership = Membership.objects.get(user=admin)
        token, secret = tokens.create_personal_token(membership, name="r", scope="read")
        account = tokens.create_service_account(org, name="reader", role="viewer", by=admin)
        robot, robot_secret = tokens.create_service_account_token(
            account, name="ci", scope="write", by=admin
        )
    url = f"/api/v1/o/{org.slug}/policies/rules/"
    for bearer in (secret, robot_secret):
        client = Client(HTTP_AUTHORIZATION=f"Bearer {bearer}")
        for _ in range(5):
            response = client.post(url, {"spec": {}}, content_type="application/json")
            assert response.status_code == 403
    events = _events(org, "org.access_denied")
    assert [(e.actor_kind, e.actor_id) for e in events] == [
        ("token", str(token.pk)),
        ("token", str(robot.pk)),
    ]
    assert "'write' scope" in events[0].data["reason"]
    assert events[1].data["role"] == "viewer"


def test_a_request_that_is_not_refused_writes_no_denial(org, viewer):
    assert client_for(viewer).get(f"/api/v1/o/{org.slug}/members/").status_code == 200
    assert client_for(viewer).get(f"/o/{org.slug}/").status_code == 200
    assert _events(org, "org.access_denied") == []


def test_a_hundred_failed_sign_ins_write_a_handful_of_events(org, owner, password):
    client = Client(REMOTE_ADDR="198.51.100.20")
    for _ in range(100):
        client.post("/accounts/login/", {"login": owner.email, "password": "wrong-password-x"})
    assert len(_events(org, "auth.login_failed")) == 1
    assert len(_events(org, "auth.login_locked")) == 1
    # Another source's refusals are their own events.
    Client(REMOTE_ADDR="198.51.100.21").post(
        "/accounts/login/", {"login": owner.email.upper(), "password": password}
    )
    assert len(_events(org, "auth.login_locked")) == 2


def test_guessing_names_from_many_addresses_cannot_flood_the_global_log(settings, one_cap_window):
    settings.ACCOUNT_RATE_LIMITS = {"login_failed": "1000/15m/ip,1000/15m/key"}
    for n in range(UNKNOWN_SIGN_IN_REFUSALS_PER_INTERVAL + 20):
        Client(REMOTE_ADDR=f"10.8.{n}.1").post(
            "/accounts/login/", {"login": f"guess{n}@nowhere.example", "password": "x" * 12}
        )
    assert _global("auth.login_failed") == UNKNOWN_SIGN_IN_REFUSALS_PER_INTERVAL
