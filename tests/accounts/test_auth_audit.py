"""Sign-in, sign-out and failed sign-in stand in the audit log of the user's organizations."""

import pytest
from django.test import Client

from audit.models import AuditEvent
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _actions(organization):
    with tenant_scope(organization):
        return list(AuditEvent.objects.order_by("seq").values_list("action", "actor_label"))


def _login(client, email, password):
    return client.post(
        "/accounts/login/",
        {"login": email, "password": password},
        REMOTE_ADDR="203.0.113.7",
        HTTP_USER_AGENT="pytest-browser",
    )


def test_login_is_recorded_in_each_of_the_users_organizations(org, other_org, owner, password):
    MembershipFactory(organization=other_org, user=owner)
    response = _login(Client(), owner.email, password)
    assert response.status_code == 302
    for organization in (org, other_org):
        assert ("auth.login", owner.email) in _actions(organization)
    with tenant_scope(org):
        event = AuditEvent.objects.get(action="auth.login")
    assert event.ip_address == "203.0.113.7"
    assert event.user_agent == "pytest-browser"
    assert event.request_id


def test_logout_is_recorded(org, owner, password):
    client = Client()
    _login(client, owner.email, password)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert ("auth.logout", owner.email) in _actions(org)


def test_failed_login_is_recorded_without_the_password(org, owner):
    response = _login(Client(), owner.email, "wrong-password-123")
    assert response.status_code == 200
    assert b"not correct" in response.content or b"incorrect" in response.content.lower()
    with tenant_scope(org):
        event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.data == {"email": owner.email}
    assert "wrong-password-123" not in str(event.data)


def test_failed_login_for_an_unknown_address_goes_to_the_global_chain():
    _login(Client(), "nobody@nowhere.example", "whatever-password")
    with all_tenants():
        event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.organization_id is None
    assert event.data == {"email": "nobody@nowhere.example"}


def test_login_page_renders_and_home_leads_to_the_dashboard(org, owner, password):
    client = Client()
    assert client.get("/accounts/login/").status_code == 200
    _login(client, owner.email, password)
    response = client.get("/", follow=True)
    assert response.redirect_chain[-1][0] == f"/o/{org.slug}/"
    assert "Acme Corp" in response.content.decode()


def test_user_without_organization_is_told_so(password):

    user = UserFactory(email="lonely@example.com")
    client = Client()
    _login(client, user.email, password)
    page = client.get("/").content.decode()
    assert "You do not belong to any organization yet" in page
