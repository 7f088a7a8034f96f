"""OpenID Connect sign-in end to end against a real OpenID provider (node's oidc-provider,
tests/oidc_idp.py), driven like a browser with `requests` through Django's live server:
TagSense's SSO start → the provider's login and consent forms → the callback."""

from __future__ import annotations

import socket
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from allauth.socialaccount.models import SocialApp
from django.contrib.sessions.models import Session
from django.test import Client

from accounts import oidc
from accounts.models import Membership, OIDCConfiguration, Organization, TeamMembership, User
from accounts.roles import Role
from accounts.sso.config import add_group_mapping, set_sso_required
from accounts.sso.metadata import IdPSettings
from accounts.sso.saml import configure_saml
from audit.models import AuditEvent
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for, store_tenant_keys
from tests.factories import TeamFactory
from tests.oidc_idp import post_form, start
from tests.saml_idp import shared_idp

ACME_CLIENT = ("tagsense-acme", "acme-client-secret-4b1d")
GLOBEX_CLIENT = ("tagsense-globex", "globex-client-secret-77aa")
ACCOUNTS = {
    "ada": {
        "email": "ada@acme.example",
        "email_verified": True,
        "given_name": "Ada",
        "family_name": "Lovelace",
        "groups": ["eng", "tagsense-admins"],
    },
    "grace": {"email": "grace@globex.example", "email_verified": True, "groups": ["eng"]},
    "admin-lookalike": {"email": "admin@acme.example", "email_verified": True, "groups": []},
}


@pytest.fixture
def provider(live_server, org, other_org):
    """The provider knows TagSense's redirect URIs, which name each organization's id (a new
    one in every test), so it is started for each test."""

    def client(organization, client_id, secret):
        callback = f"{live_server.url}{callback_path(organization)}"
        return {"client_id": client_id, "client_secret": secret, "redirect_uris": [callback]}

    running = start([client(org, *ACME_CLIENT), client(other_org, *GLOBEX_CLIENT)], ACCOUNTS)
    yield running
    running.stop()


def login_path(organization) -> str:
    return f"/accounts/oidc/oidc-{organization.pk}/login/"


def callback_path(organization) -> str:
    return login_path(organization) + "callback/"


@pytest.fixture
def insecure_localhost(settings):
    settings.OIDC_ALLOW_INSECURE_LOCALHOST = True


def configure(organization, provider, client, **extra):
    with tenant_scope(organization):
        return oidc.configure_oidc(
            organization,
            oidc.OIDCSettings(
                issuer=provider.issuer,
                client_id=client[0],
                client_secret=client[1],
                scopes="openid email profile groups",
                **extra,
            ),
        )


@pytest.fixture
def oidc_org(org, provider, insecure_localhost):
    configure(org, provider, ACME_CLIENT)
    return org


@pytest.fixture
def platform(org):
    return TeamFactory(organization=org, name="Platform", slug="platform")


@pytest.fixture
def mappings(oidc_org, platform):
    with tenant_scope(oidc_org):
        add_group_mapping(oidc_org, group="eng", team=platform)
        add_group_mapping(oidc_org, group="tagsense-admins", role=Role.ADMIN)


class Flow:
    """One browser's trip through the sign-in; keeps what a test may want to look at."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.authorization_request = ""

    def sign_in(self, org_slug: str, login: str) -> requests.Response:
        page = self.session.get(
            f"{self.base_url}/accounts/sso/", params={"organization": org_slug}, timeout=30
        )
        assert page.status_code == 200, page.text[:500]
        organization = Organization.objects.get(slug=org_slug)
        assert page.url.endswith(login_path(organization))
        started = self.session.post(
            page.url,
            data={"csrfmiddlewaretoken": self.session.cookies["csrftoken"]},
            headers={"Referer": page.url},
            allow_redirects=False,
            timeout=30,
        )
        assert started.status_code == 302, started.text[:500]
        self.authorization_request = started.headers["Location"]
        login_page = self.session.get(self.authorization_request, timeout=30)
        consent_page = post_form(self.session, login_page, login=login, password="any")
        return post_form(self.session, consent_page)

    def signed_in_user(self) -> User | None:

        key = self.session.cookies.get("sessionid")
        session = Session.objects.filter(session_key=key).first() if key else None
        user_id = session.get_decoded().get("_auth_user_id") if session else None
        return User.objects.get(pk=user_id) if user_id else None


def events(organization, action):
    with tenant_scope(organization):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def membership_of(organization, user):
    with tenant_scope(organization):
        return Membership.objects.for_org(organization).filter(user=user).first()


def teams_of(organization, user):
    with tenant_scope(organization):
        return sorted(
            TeamMembership.objects.for_org(organization)
            .filter(user=user)
            .values_list("team__slug", flat=True)
        )


# --- the flow -------------------------------------------------------------------------------


def test_authorization_code_flow_with_pkce_signs_in_and_provisions(live_server, oidc_org, mappings):
    flow = Flow(live_server.url)
    response = flow.sign_in(oidc_org.slug, "ada")
    assert response.status_code == 200
    assert response.url.startswith(live_server.url)

    query = parse_qs(urlsplit(flow.authorization_request).query)
    assert flow.authorization_request.startswith(oidc.configuration(oidc_org).issuer + "/auth")
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43  # base64url of a SHA-256 digest
    assert query["client_id"] == [ACME_CLIENT[0]]
    assert set(query["scope"][0].split()) == {"openid", "email", "profile", "groups"}

    user = flow.signed_in_user()
    assert user is not None and user.email == "ada@acme.example"
    membership = membership_of(oidc_org, user)
    assert membership.role == Role.ADMIN and not membership.is_pending
    assert teams_of(oidc_org, user) == ["platform"]
    [login] = events(oidc_org, "sso.login")
    assert login.data == {"email": "ada@acme.example", "groups": ["eng", "tagsense-admins"]}
    assert [e.data["via"] for e in events(oidc_org, "org.member_add")] == ["sso"]
    assert events(oidc_org, "team.member_add")[-1].data["via"] == "sso"

    # The next sign-in is the same account, re-provisioned.
    again = Flow(live_server.url)
    again.sign_in(oidc_org.slug, "ada")
    assert again.signed_in_user() == user
    assert len(events(oidc_org, "sso.login")) == 2
    assert [e.data["email"] for e in events(oidc_org, "auth.login")] == ["ada@acme.example"]


def test_provider_refuses_a_sign_in_without_pkce(live_server, oidc_org):
    """The provider requires PKCE, so the flow above proves TagSense sent a verifier too."""
    configuration = oidc.configuration(oidc_org)
    params = {
        "client_id": ACME_CLIENT[0],
        "response_type": "code",
        "scope": "openid",
        "redirect_uri": f"{live_server.url}{callback_path(oidc_org)}",
        "state": "x" * 20,
    }
    response = requests.get(
        configuration.discovery["authorization_endpoint"],
        params=params,
        allow_redirects=False,
        timeout=30,
    )
    refusal = parse_qs(urlsplit(response.headers["Location"]).query)
    assert refusal["error"] == ["invalid_request"]
    assert "requires PKCE" in refusal["error_description"][0]


def test_wrong_client_secret_is_refused_with_a_clear_page_and_audited(
    live_server, org, provider, insecure_localhost
):
    configure(org, provider, (ACME_CLIENT[0], "not-the-secret"))
    flow = Flow(live_server.url)
    response = flow.sign_in(org.slug, "ada")
    assert response.status_code == 403
    assert "Single sign-on refused" in response.text
    assert "client credentials" in response.text
    assert flow.signed_in_user() is None
    [rejected] = events(org, "sso.login_rejected")
    assert "client credentials" in rejected.data["reason"]
    assert "not-the-secret" not in str(rejected.data)
    assert not User.objects.filter(email="ada@acme.example").exists()


def test_organization_b_provider_cannot_sign_into_organization_a(
    live_server, org, other_org, provider, insecure_localhost, admin
):
    configure(org, provider, ACME_CLIENT)
    configure(other_org, provider, GLOBEX_CLIENT)
    # Globex's provider vouches for an e-mail that is an Acme member's: refused.
    flow = Flow(live_server.url)
    response = flow.sign_in(other_org.slug, "admin-lookalike")
    assert response.status_code == 403
    assert "already exists" in response.text
    assert flow.signed_in_user() is None
    assert events(other_org, "sso.login_rejected")
    assert membership_of(other_org, admin) is None
    assert membership_of(org, admin).role == Role.ADMIN

    # A new person signed in by Globex's provider joins Globex, and only Globex.
    flow = Flow(live_server.url)
    flow.sign_in(other_org.slug, "grace")
    grace = flow.signed_in_user()
    assert grace is not None and grace.email == "grace@globex.example"
    assert membership_of(other_org, grace) is not None
    assert membership_of(org, grace) is None
    assert not events(org, "sso.login")


def test_mandatory_sso_accepts_oidc_sign_ins(live_server, oidc_org):
    with tenant_scope(oidc_org):
        set_sso_required(oidc_org, required=True)
    flow = Flow(live_server.url)
    flow.sign_in(oidc_org.slug, "ada")
    assert flow.signed_in_user() is not None
    # The session counts as the organization's single sign-on: its pages open.
    dashboard = flow.session.get(f"{live_server.url}/o/{oidc_org.slug}/", allow_redirects=False)
    assert dashboard.status_code == 200
    assert not events(oidc_org, "auth.password_login_refused")


# --- configuration --------------------------------------------------------------------------


def test_secret_is_encrypted_at_rest_and_never_in_socialapp_or_audit(oidc_org):
    with tenant_scope(oidc_org):
        row = OIDCConfiguration.objects.get()
    assert ACME_CLIENT[1] not in row.client_secret_encrypted
    assert not SocialApp.objects.filter(provider=oidc.PROVIDER).exists()
    [configured] = events(oidc_org, "sso.oidc_configure")
    assert ACME_CLIENT[1] not in str(configured.data)
    assert configured.data["secret_changed"] is True
    [app] = oidc.apps(oidc.provider_id(oidc_org))
    assert app.secret == ACME_CLIENT[1]
    assert app.settings["oauth_pkce_enabled"] is True
    assert oidc.organization_for_app(app) == oidc_org


def test_secret_survives_secret_key_rotation_with_fallback(oidc_org, settings):
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-after-rotation"  # noqa: S105
    store_tenant_keys()  # rotation runs migrate, which stores the new key for the database
    [app] = oidc.apps(oidc.provider_id(oidc_org))
    assert app.secret == ACME_CLIENT[1]
    settings.SECRET_KEY_FALLBACKS = []
    assert oidc.apps(oidc.provider_id(oidc_org)) == []


def test_a_stored_socialapp_cannot_impersonate_an_organizations_provider(oidc_org):
    stored = SocialApp.objects.create(
        provider=oidc.PROVIDER,
        provider_id=oidc.provider_id(oidc_org),
        client_id=ACME_CLIENT[0],
        settings={"organization": oidc_org.pk},
    )
    assert oidc.organization_for_app(stored) is None


def test_admin_configures_oidc_on_the_sso_page(org, admin, provider, insecure_localhost):

    client = client_for(admin)
    page = client.get(f"/o/{org.slug}/settings/sso/")
    assert callback_path(org) in page.content.decode()
    response = client.post(
        f"/o/{org.slug}/settings/sso/oidc/",
        {
            "issuer": provider.issuer,
            "client_id": ACME_CLIENT[0],
            "client_secret": ACME_CLIENT[1],
            "groups_claim": "groups",
            "scopes": "email groups",
        },
        follow=True,
    )
    body = response.content.decode()
    assert "OpenID provider saved." in body
    assert ACME_CLIENT[1] not in body
    row = oidc.configuration(org)
    assert row.scopes == "openid email groups"
    # Saving again without a secret keeps the saved one.
    client.post(
        f"/o/{org.slug}/settings/sso/oidc/",
        {"issuer": provider.issuer, "client_id": ACME_CLIENT[0], "groups_claim": "roles"},
    )
    [app] = oidc.apps(oidc.provider_id(org))
    assert app.secret == ACME_CLIENT[1] and app.settings["groups_claim"] == "roles"
    assert [e.data["secret_changed"] for e in events(org, "sso.oidc_configure")] == [True, False]


def test_issuer_must_match_discovery_and_use_https(org, provider, settings):
    settings.OIDC_ALLOW_INSECURE_LOCALHOST = False
    with pytest.raises(oidc.ServiceError, match="https"):
        configure(org, provider, ACME_CLIENT)
    settings.OIDC_ALLOW_INSECURE_LOCALHOST = True
    mismatched = provider.issuer.replace("127.0.0.1", "localhost")
    with tenant_scope(org), pytest.raises(oidc.ServiceError, match="another issuer"):
        oidc.configure_oidc(
            org, oidc.OIDCSettings(issuer=mismatched, client_id="x", client_secret="y")
        )
    with tenant_scope(org), pytest.raises(oidc.ServiceError, match="https"):
        oidc.configure_oidc(
            org,
            oidc.OIDCSettings(issuer="http://idp.example.net", client_id="x", client_secret="y"),
        )
    with tenant_scope(org), pytest.raises(oidc.ServiceError, match="secret is required"):
        oidc.configure_oidc(org, oidc.OIDCSettings(issuer=provider.issuer, client_id="x"))
    assert oidc.configuration(org) is None
    with all_tenants():
        assert not AuditEvent.objects.filter(action="sso.oidc_configure").exists()


def test_login_page_offers_oidc_and_a_choice_when_both_are_configured(
    live_server, oidc_org, provider
):

    client = Client()
    response = client.get("/accounts/sso/", {"organization": oidc_org.slug})
    assert response["Location"] == login_path(oidc_org)
    idp = shared_idp()
    with tenant_scope(oidc_org):
        configure_saml(
            oidc_org,
            IdPSettings(entity_id=idp.entity_id, sso_url=idp.sso_url, certificates=[idp.cert_pem]),
        )
    body = client.get("/accounts/sso/", {"organization": oidc_org.slug}).content.decode()
    assert f'href="{login_path(oidc_org)}"' in body
    assert 'href="/accounts/saml/acme/login/"' in body


@pytest.mark.parametrize(
    "issuer", ["https://169.254.169.254/latest", "https://127.0.0.1:8443", "https://10.0.0.7"]
)
def test_an_issuer_at_an_internal_address_is_never_fetched(org, issuer, monkeypatch):

    def no_connection(*args, **kwargs):
        raise AssertionError("no connection may be opened to an internal address")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    with tenant_scope(org), pytest.raises(oidc.ServiceError, match="only from public addresses"):
        oidc.configure_oidc(org, oidc.OIDCSettings(issuer=issuer, client_id="x", client_secret="y"))
    assert oidc.configuration(org) is None
