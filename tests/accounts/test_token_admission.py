"""API tokens are credentials issued to programs: an organization's two-factor and single
sign-on requirements bind the people signing in with a browser, never a token (personal or a
service account's), for every kind of request. A browser session is still held to them."""

import pytest
from django.test import Client

from accounts import tokens
from accounts.models import Membership, Organization
from policies.models import Rule
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

SPEC = {"id": "owner-required", "title": "Owner", "check": "required_key", "key": "Owner"}


def _rules(org, tail=""):
    return f"/api/v1/o/{org.slug}/policies/rules/{tail}"


def _personal_token(org, user):
    with tenant_scope(org):
        membership = Membership.objects.get(user=user)
        return tokens.create_personal_token(membership, name="script", scope="write")[1]


def _service_account_token(org, by):
    with tenant_scope(org):
        account = tokens.create_service_account(org, name="terraform", role="admin", by=by)
        return tokens.create_service_account_token(account, name="ci", scope="write", by=by)[1]


def _require(org, requirement):
    Organization.objects.filter(pk=org.pk).update(**{requirement: True})


@pytest.mark.parametrize("requirement", ["require_mfa", "sso_required"])
@pytest.mark.parametrize("kind", ["personal", "service account"])
def test_tokens_work_in_every_method_where_the_organization_binds_people(
    org, admin, kind, requirement
):
    secret = (
        _personal_token(org, admin) if kind == "personal" else _service_account_token(org, admin)
    )
    _require(org, requirement)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    created = api.post(_rules(org), {"spec": SPEC}, content_type="application/json")
    assert created.status_code == 201, created.content
    assert api.get(_rules(org)).json()["count"] == 1
    assert api.head(_rules(org)).status_code == 200
    assert api.options(_rules(org)).status_code == 200
    assert api.get(f"/api/v1/o/{org.slug}/").json()["role"] == "admin"
    changed = api.put(
        _rules(org, "owner-required/"),
        {"spec": {**SPEC, "severity": "high"}},
        content_type="application/json",
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    assert api.delete(_rules(org, "owner-required/")).status_code == 204
    with tenant_scope(org):
        assert not Rule.objects.exists()


@pytest.mark.parametrize("kind", ["personal", "service account"])
def test_the_other_admission_checks_still_bind_tokens(org, other_org, admin, viewer, kind):
    """Another organization's URL is a 404, a role or scope that does not allow the request a
    403, with or without the organization's two-factor requirement."""
    _require(org, "require_mfa")
    if kind == "personal":
        secret = _personal_token(org, viewer)
    else:
        with tenant_scope(org):
            account = tokens.create_service_account(org, name="reader", role="viewer", by=admin)
            secret = tokens.create_service_account_token(
                account, name="ci", scope="write", by=admin
            )[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get(_rules(org)).status_code == 200
    assert api.get(_rules(other_org)).status_code == 404
    refused = api.post(_rules(org), {"spec": SPEC}, content_type="application/json")
    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/problem+json"


def test_a_browser_session_is_still_held_to_two_factor(org, admin):
    _require(org, "require_mfa")
    response = client_for(admin).get(_rules(org))
    assert response.status_code == 403
    assert "two-factor" in response.json()["detail"]
