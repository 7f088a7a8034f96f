"""Issue 13: an identity provider can never reach an account outside its organization, neither
through a provider id another organization's IdP shares (slug "oidc-acme" against acme's OpenID
provider), nor through an old link, nor by changing the account's e-mail address or password
from the session it opened; and a just-in-time sign-in that fails leaves nothing behind."""

from __future__ import annotations

import importlib
import types

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection

from accounts import oidc, services
from accounts.models import Membership, OIDCConfiguration, Organization, User
from accounts.sso import provisioning
from accounts.sso.saml import provider_id
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.accounts.test_saml import (
    assert_refused,
    browser,
    configure,
    connect,
    events,
    logged_in_as,
    membership_of,
    reauthenticate,
    sign_in,
)
from tests.factories import PASSWORD, MembershipFactory, UserFactory
from tests.saml_idp import TestIdP

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def idp():
    return TestIdP("acme-idp")


@pytest.fixture(scope="session")
def other_idp():
    return TestIdP("globex-idp")


@pytest.fixture
def saml_org(org, idp):
    configure(org, idp)
    return org


RESERVED = [
    "oidc-acme",
    "saml-12",
    "saml",
    "oidc",
    "OIDC-acme",
    "oidc_acme",
    "openid-acme",
    "openid_connect",
]


# --- provider ids ---------------------------------------------------------------------------


def test_provider_ids_name_the_organization_id_and_the_protocol(org, other_org):
    assert provider_id(org) == f"saml-{org.pk}"
    assert oidc.provider_id(org) == f"oidc-{org.pk}"
    ids = {f(o) for f in (provider_id, oidc.provider_id) for o in (org, other_org)}
    assert len(ids) == 4  # no two organizations, no two protocols share one


@pytest.mark.parametrize("slug", RESERVED)
def test_a_slug_that_looks_like_a_provider_id_is_refused_everywhere(owner, slug):
    with pytest.raises(services.ServiceError, match="may not begin"):
        services.create_organization(name="Takeover", slug=slug, owner=owner)
    with pytest.raises(ValidationError):
        Organization.objects.create(name="Takeover", slug=slug)
    with pytest.raises(ValidationError):
        Organization(name="Takeover", slug=slug).full_clean()
    assert not Organization.objects.filter(slug__iexact=slug).exists()


@pytest.mark.parametrize("slug", ["samlcorp", "oidcorp", "acme-saml", "openidea"])
def test_slugs_merely_containing_the_words_are_allowed(owner, slug):
    assert services.create_organization(name="Fine", slug=slug, owner=owner).slug == slug


def test_renaming_an_organization_to_a_reserved_slug_is_refused(org):
    org.slug = "oidc-globex"
    with pytest.raises(ValidationError):
        org.save()
    org.refresh_from_db()
    assert org.slug == "acme"
    org.name = "Acme renamed"
    org.save()  # a save that keeps the slug is not affected


@pytest.mark.parametrize("slug", ["oidc-acme", "saml-7"])
def test_the_django_admin_refuses_reserved_slugs(org, slug):
    staff = UserFactory(email="operator@example.com", is_staff=True, is_superuser=True)
    client = browser()
    client.force_login(staff)
    add = client.post(
        "/admin/accounts/organization/add/",
        {
            "name": "Takeover",
            "slug": slug,
            "settings": "{}",
            "membership_set-TOTAL_FORMS": "0",
            "membership_set-INITIAL_FORMS": "0",
        },
        secure=True,
    )
    assert add.status_code == 200 and "may not begin" in add.content.decode()
    change = client.post(
        f"/admin/accounts/organization/{org.pk}/change/",
        {
            "name": org.name,
            "slug": slug,
            "settings": "{}",
            "membership_set-TOTAL_FORMS": "0",
            "membership_set-INITIAL_FORMS": "0",
        },
        secure=True,
    )
    assert change.status_code == 200 and "may not begin" in change.content.decode()
    assert not Organization.objects.filter(slug=slug).exists()


# --- an existing link signs in only through its own organization's provider ----------------


def test_a_link_made_through_another_provider_never_signs_in(saml_org, other_org, other_idp):
    """A member of acme linked (by whatever way, e.g. a row from before the provider ids
    changed) under globex's provider id: globex's IdP asserting that identity is refused."""
    configure(other_org, other_idp)
    victim = UserFactory(email="victim@acme.example")
    MembershipFactory(organization=saml_org, user=victim)
    SocialAccount.objects.create(
        user=victim, provider=provider_id(other_org), uid="victim@acme.example"
    )
    client = browser()
    response = sign_in(client, other_org.slug, other_idp, "victim@acme.example")
    assert_refused(response, other_org, "not linked to a member of this organization")
    assert logged_in_as(client) is None
    assert membership_of(other_org, victim) is None
    assert "victim@acme.example" not in str([e.data for e in events(other_org, "sso.login")])


def test_a_removed_member_is_not_signed_back_in_by_the_idp(saml_org, idp, viewer):
    connect(viewer, saml_org.slug, idp)
    with tenant_scope(saml_org):
        Membership.objects.for_org(saml_org).filter(user=viewer).delete()
    client = browser()
    response = sign_in(client, saml_org.slug, idp, viewer.email)
    assert_refused(response, saml_org, "not linked to a member")
    assert logged_in_as(client) is None
    assert membership_of(saml_org, viewer) is None


def test_a_link_through_the_organizations_own_provider_still_signs_in(saml_org, idp, viewer):
    connect(viewer, saml_org.slug, idp)
    client = browser()
    sign_in(client, saml_org.slug, idp, viewer.email)
    assert logged_in_as(client) == viewer


# --- the data migration ---------------------------------------------------------------------


def test_the_migration_moves_apps_and_links_to_the_new_ids(org, other_org, owner, outsider):
    migration = importlib.import_module("accounts.migrations.0006_sso_provider_ids")
    # The world before: SAML provider id = slug, OpenID = "oidc-<slug>", and an organization
    # whose slug "oidc-acme" made its SAML IdP share acme's OpenID namespace.
    squatter = Organization.objects.create(name="Squatter", slug="squatter")
    Organization.objects.filter(pk=squatter.pk).update(slug="oidc-acme")
    for organization in (other_org, squatter):
        slug = Organization.objects.get(pk=organization.pk).slug
        SocialApp.objects.create(provider="saml", provider_id=slug, client_id=slug, name=slug)
    with tenant_scope(org):
        OIDCConfiguration.objects.create(
            organization=org, issuer="https://idp.example.net", client_id="c", discovery={}
        )
    saml_link = SocialAccount.objects.create(user=outsider, provider="globex", uid="g-1")
    ambiguous = SocialAccount.objects.create(user=owner, provider="oidc-acme", uid="sub-1")

    with all_tenants():  # migrate runs as the owner, whom row-level security does not bind
        migration.forwards(django_apps(), types.SimpleNamespace(connection=connection))

    apps = {a.client_id: a.provider_id for a in SocialApp.objects.filter(provider="saml")}
    assert apps == {"globex": f"saml-{other_org.pk}", "oidc-acme": f"saml-{squatter.pk}"}
    saml_link.refresh_from_db()
    assert saml_link.provider == f"saml-{other_org.pk}"
    # Nobody can tell whether acme's OpenID provider or the squatter's IdP made this link.
    assert not SocialAccount.objects.filter(pk=ambiguous.pk).exists()


def test_the_migration_moves_openid_links(org, owner):
    migration = importlib.import_module("accounts.migrations.0006_sso_provider_ids")
    with tenant_scope(org):
        OIDCConfiguration.objects.create(
            organization=org, issuer="https://idp.example.net", client_id="c", discovery={}
        )
    link = SocialAccount.objects.create(user=owner, provider="oidc-acme", uid="sub-1")
    with all_tenants():  # migrate runs as the owner, whom row-level security does not bind
        migration.forwards(django_apps(), types.SimpleNamespace(connection=connection))
    link.refresh_from_db()
    assert link.provider == oidc.provider_id(org)


def django_apps():

    return apps


# --- re-authentication before changing the account ------------------------------------------


def test_an_sso_session_cannot_add_an_email_address_without_the_password(saml_org, idp, viewer):
    """The take-over's second step: add an address, then reset the password through it."""
    connect(viewer, saml_org.slug, idp)
    client = browser()
    sign_in(client, saml_org.slug, idp, viewer.email)
    assert logged_in_as(client) == viewer
    response = client.post(
        "/accounts/email/", {"action_add": "", "email": "attacker@evil.example"}, secure=True
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/")
    assert not EmailAddress.objects.filter(email="attacker@evil.example").exists()
    reauthenticate(client)
    client.post("/accounts/email/", {"action_add": "", "email": "second@acme.example"}, secure=True)
    assert EmailAddress.objects.filter(user=viewer, email="second@acme.example").exists()


def test_a_password_session_cannot_change_addresses_without_the_password_either(viewer):
    client = browser()
    client.force_login(viewer)
    EmailAddress.objects.create(user=viewer, email=viewer.email, primary=True, verified=True)
    other = EmailAddress.objects.create(user=viewer, email="old@acme.example", verified=True)
    for data in (
        {"action_add": "", "email": "attacker@evil.example"},
        {"action_primary": "", "email": other.email},
        {"action_remove": "", "email": viewer.email},
    ):
        response = client.post("/accounts/email/", data, secure=True)
        assert response["Location"].startswith("/accounts/reauthenticate/"), data
    assert EmailAddress.objects.get(user=viewer, primary=True).email == viewer.email
    assert EmailAddress.objects.filter(user=viewer).count() == 2


def test_setting_a_password_on_an_sso_account_needs_reauthentication(saml_org, idp):
    client = browser()
    sign_in(client, saml_org.slug, idp, "jit@acme.example")
    user = logged_in_as(client)
    assert user is not None and not user.has_usable_password()
    response = client.post(
        "/accounts/password/set/",
        {"password1": "a-new-long-password-1", "password2": "a-new-long-password-1"},
        secure=True,
    )
    assert response.status_code in (302, 403)
    assert response.status_code == 403 or "/accounts/reauthenticate" in response["Location"]
    user.refresh_from_db()
    assert not user.has_usable_password()


def test_changing_the_password_needs_the_current_one(viewer):
    client = browser()
    client.force_login(viewer)
    client.post(
        "/accounts/password/change/",
        {"oldpassword": "", "password1": "x-new-long-password", "password2": "x-new-long-password"},
        secure=True,
    )
    viewer.refresh_from_db()
    assert viewer.check_password(PASSWORD)


# --- just-in-time provisioning is all or nothing --------------------------------------------


class FailingMailBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("no mail server")


@pytest.mark.parametrize("failure", ["mail", "provisioning"])
def test_a_failed_first_sign_in_leaves_no_account(saml_org, idp, settings, monkeypatch, failure):
    if failure == "mail":
        settings.EMAIL_BACKEND = f"{__name__}.FailingMailBackend"
        settings.ACCOUNT_EMAIL_VERIFICATION = "mandatory"
    else:
        real = provisioning.audit.record

        def record(event, *args, **kwargs):
            if event.name == "sso.login":  # the last step of provisioning, after the membership
                raise RuntimeError("the audit log is unavailable")
            return real(event, *args, **kwargs)

        monkeypatch.setattr(provisioning.audit, "record", record)
    client = browser()
    client.raise_request_exception = False
    response = sign_in(client, saml_org.slug, idp, "new@acme.example")
    assert response.status_code == 500
    assert not User.objects.filter(email="new@acme.example").exists()
    assert not SocialAccount.objects.filter(uid="new@acme.example").exists()
    assert not EmailAddress.objects.filter(email="new@acme.example").exists()
    with tenant_scope(saml_org):
        assert (
            not Membership.objects.for_org(saml_org).filter(user__email="new@acme.example").exists()
        )
