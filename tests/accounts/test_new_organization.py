"""A signed-in user creates an organization from the portal (or the API) and owns it; the
deployment decides who may (TAGSENSE_ORG_CREATION); the admin cannot make an ownerless one."""

import pytest
from django.test import Client

from accounts import tokens
from accounts.models import Membership, Organization
from audit.models import AuditEvent
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def newcomer():
    return UserFactory(email="first@example.com")


def test_a_user_with_no_organization_is_offered_to_create_one_and_then_owns_it(newcomer):
    client = client_for(newcomer)
    home = client.get("/").content.decode()
    assert 'href="/organizations/new/"' in home

    form = client.get("/organizations/new/")
    assert form.status_code == 200 and 'name="name"' in form.content.decode()
    response = client.post("/organizations/new/", {"name": "Initech", "slug": ""})
    assert response.status_code == 302 and response["Location"] == "/o/initech/"

    dashboard = client.get("/o/initech/")
    assert dashboard.status_code == 200
    assert "You are owner of this organization." in dashboard.content.decode()
    org = Organization.objects.get(slug="initech")
    with tenant_scope(org):
        membership = Membership.objects.get(organization=org)
        actions = list(AuditEvent.objects.order_by("seq").values_list("action", "actor_label"))
    assert membership.user == newcomer and membership.role == "owner" and membership.accepted_at
    assert actions == [("org.create", newcomer.email), ("org.member_add", newcomer.email)]


def test_a_member_of_an_organization_can_create_another_from_the_switcher(org, owner):
    client = client_for(owner)
    page = client.get(f"/o/{org.slug}/").content.decode()
    assert 'href="/organizations/new/"' in page  # in the organization switcher
    client.post("/organizations/new/", {"name": "Acme Labs", "slug": "acme-labs"})
    switcher = client.get(f"/o/{org.slug}/").content.decode()
    assert 'href="/o/acme-labs/"' in switcher


@pytest.mark.parametrize(
    "slug, message",
    [
        ("saml-7", "may not begin with"),
        ("oidc-acme", "may not begin with"),
        ("openid", "may not begin with"),
        ("acme", "is taken"),
    ],
)
def test_reserved_and_taken_short_names_are_refused_and_nothing_is_created(
    org, newcomer, slug, message
):
    before = Organization.objects.count()
    response = client_for(newcomer).post("/organizations/new/", {"name": "X", "slug": slug})
    assert response.status_code == 200 and message in response.content.decode()
    assert Organization.objects.count() == before
    with all_tenants():
        assert not Membership.objects.filter(user=newcomer).exists()


def test_only_superusers_create_organizations_when_the_deployment_says_so(settings, newcomer):
    settings.TAGSENSE_ORG_CREATION = "superusers"
    client = client_for(newcomer)
    assert 'href="/organizations/new/"' not in client.get("/").content.decode()
    assert client.get("/organizations/new/").status_code == 403
    assert client.post("/organizations/new/", {"name": "Rogue"}).status_code == 403
    assert client.post("/api/v1/organizations/", {"name": "Rogue"}).status_code == 403
    assert not Organization.objects.filter(name="Rogue").exists()

    boss = UserFactory(email="boss@example.com", is_superuser=True, is_staff=True)
    response = client_for(boss).post("/organizations/new/", {"name": "Sanctioned"})
    assert response.status_code == 302
    assert Organization.objects.filter(slug="sanctioned").exists()


def test_anonymous_visitors_are_sent_to_sign_in():
    response = Client().post("/organizations/new/", {"name": "Nope"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert Client().post("/api/v1/organizations/", {"name": "Nope"}).status_code == 401
    assert not Organization.objects.filter(name="Nope").exists()


def test_the_api_creates_an_organization_owned_by_the_caller(newcomer):
    client = client_for(newcomer)
    response = client.post(
        "/api/v1/organizations/", {"name": "Umbrella", "slug": "umbrella"}, "application/json"
    )
    assert response.status_code == 201, response.content
    assert response.json() == {
        "slug": "umbrella",
        "name": "Umbrella",
        "created_at": response.json()["created_at"],
        "role": "owner",
    }
    assert [o["slug"] for o in client.get("/api/v1/organizations/").json()] == ["umbrella"]
    refused = client.post(
        "/api/v1/organizations/", {"name": "S", "slug": "saml-1"}, "application/json"
    )
    assert refused.status_code == 400 and "may not begin with" in refused.content.decode()


def test_an_api_token_cannot_create_an_organization(org, owner):

    with tenant_scope(org):
        membership = Membership.objects.get(organization=org, user=owner)
        _, secret = tokens.create_personal_token(membership, name="ci", scope="write")
    response = Client().post(
        "/api/v1/organizations/",
        {"name": "Via token"},
        "application/json",
        headers={"authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 403
    assert not Organization.objects.filter(name="Via token").exists()


def _admin_client():
    boss = UserFactory(email="root@example.com", is_superuser=True, is_staff=True)
    return client_for(boss), boss


def test_the_admin_add_form_requires_an_owner_and_creates_the_owner_membership(newcomer):
    client, boss = _admin_client()
    refused = client.post("/admin/accounts/organization/add/", {"name": "Orphan", "slug": "orphan"})
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    assert not Organization.objects.filter(slug="orphan").exists()

    client.post(
        "/admin/accounts/organization/add/",
        {"name": "Adopted", "slug": "adopted", "owner": newcomer.pk},
    )
    org = Organization.objects.get(slug="adopted")
    with tenant_scope(org):
        assert list(Membership.objects.values_list("user__email", "role")) == [
            (newcomer.email, "owner")
        ]
        assert AuditEvent.objects.filter(action="org.create").exists()
    assert client_for(newcomer).get("/o/adopted/").status_code == 200


def test_the_admin_cannot_remove_an_organizations_last_owner(org, owner):
    client, _ = _admin_client()
    with all_tenants():
        membership = Membership.objects.get(organization=org, user=owner)
    response = client.post(
        f"/admin/accounts/organization/{org.pk}/change/",
        {
            "name": org.name,
            "slug": org.slug,
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": membership.pk,
            "memberships-0-organization": org.pk,
            "memberships-0-user": owner.pk,
            "memberships-0-role": "owner",
            "memberships-0-DELETE": "on",
        },
    )
    assert response.status_code == 200
    assert "at least one owner" in response.content.decode()
    with all_tenants():
        assert Membership.objects.filter(pk=membership.pk).exists()
