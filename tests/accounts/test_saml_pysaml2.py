"""SAML round trip against a real IdP implementation (pysaml2, tests/pysaml2_idp.py).

The admin configures the IdP from the metadata pysaml2 publishes; the IdP learns TagSense from
the SP metadata TagSense publishes; the browser (Django's test client) carries TagSense's
AuthnRequest to pysaml2 and pysaml2's signed response back to TagSense's ACS.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import Membership, TeamMembership, User
from accounts.roles import Role
from accounts.sso.config import add_group_mapping
from accounts.sso.saml import saml_app
from accounts.sso.session import SESSION_IDP_KEY
from audit.models import AuditEvent
from inventory import services as inventory_services
from tagsense.tenancy.db import tenant_scope
from tests.factories import TeamFactory
from tests.inventory.conftest import make_account
from tests.pysaml2_idp import PySAML2IdP, authn_request_xml
from tests.saml_idp import EMAIL, GIVEN, GROUPS, HOST, SURNAME, sp_urls

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def keys_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("pysaml2-idp")


@pytest.fixture(scope="module")
def idp(keys_dir):
    return PySAML2IdP("okta-like", keys_dir)


def browser() -> Client:
    return Client(HTTP_HOST=HOST)


def connect(org, admin, identity_provider: PySAML2IdP) -> None:
    """The admin uploads the IdP's metadata on the settings page; the IdP reads TagSense's."""
    client = browser()
    client.force_login(admin)
    upload = SimpleUploadedFile("idp.xml", identity_provider.metadata().encode(), "text/xml")
    response = client.post(
        f"/o/{org.slug}/settings/sso/idp/",
        {"metadata_file": upload, "groups_attribute": GROUPS},
        secure=True,
    )
    assert response.status_code == 302
    assert saml_app(org) is not None, "the metadata was accepted"
    sp_metadata = browser().get(f"/accounts/saml/{org.slug}/metadata/", secure=True)
    assert sp_metadata.status_code == 200
    identity_provider.trust_sp(sp_metadata.content.decode())


def sign_in(client, org, identity_provider, email, groups, *, signer=None):
    """SP-initiated: TagSense's login → AuthnRequest (redirect) → IdP → POST to the ACS."""
    response = client.post(f"/accounts/saml/{org.slug}/login/", secure=True)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(identity_provider.sso_url + "?SAMLRequest=")
    assert sp_urls(org.slug)["acs"] in authn_request_xml(location)
    acs, saml_response = (signer or identity_provider).respond(
        location,
        email=email,
        attributes={EMAIL: [email], GIVEN: ["Grace"], SURNAME: ["Hopper"], GROUPS: groups},
    )
    assert acs == sp_urls(org.slug)["acs"]  # from TagSense's own SP metadata
    posted = client.post(urlpath(acs), {"SAMLResponse": saml_response}, secure=True)
    assert posted.status_code == 302
    return client.get(posted["Location"], secure=True)


def urlpath(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def events(organization, action):
    with tenant_scope(organization):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


@pytest.fixture
def estate(org, admin, idp, aws_env):
    """acme's IdP is pysaml2; group `sre` maps to team SRE, `tagsense-editors` to editor.
    Team SRE holds account alpha-prod; team Data holds bravo-prod."""
    connect(org, admin, idp)
    sre = TeamFactory(organization=org, name="SRE", slug="sre")
    data = TeamFactory(organization=org, name="Data", slug="data")
    alpha = make_account(org, "111111111111", name="alpha-prod")
    bravo = make_account(org, "222222222222", name="bravo-prod")
    with tenant_scope(org):
        add_group_mapping(org, group="sre", team=sre)
        add_group_mapping(org, group="data", team=data)
        add_group_mapping(org, group="tagsense-editors", role=Role.EDITOR)
        inventory_services.grant_account(alpha, sre)
        inventory_services.grant_account(bravo, data)
    return {"sre": sre, "data": data}


def test_pysaml2_signed_response_signs_in_provisions_and_scopes_the_dashboard(
    org, other_org, estate, idp
):
    client = browser()
    response = sign_in(client, org, idp, "grace@acme.example", ["sre", "tagsense-editors", "x"])
    assert response.status_code == 302, response.content[:500]
    user = User.objects.get(email="grace@acme.example")
    assert client.session.get("_auth_user_id") == str(user.pk)
    assert (user.first_name, user.last_name) == ("Grace", "Hopper")
    with tenant_scope(org):
        membership = Membership.objects.for_org(org).get(user=user)
        teams = list(
            TeamMembership.objects.for_org(org).filter(user=user).values_list("team__slug")
        )
    assert membership.role == Role.EDITOR and not membership.is_pending
    assert teams == [("sre",)]
    assert not Membership.objects.filter(user=user, organization=other_org).exists()
    login = events(org, "sso.login")
    assert [e.data["groups"] for e in login] == [["sre", "tagsense-editors", "x"]]
    added = events(org, "team.member_add")
    assert [(e.data["email"], e.data["via"]) for e in added] == [("grace@acme.example", "sso")]
    assert [e.data["via"] for e in events(org, "org.member_add")] == ["sso"]
    assert client.session[SESSION_IDP_KEY] == org.pk  # which IdP opened the session

    # The editor's pages show what team SRE holds and nothing of team Data's.
    dashboard = client.get(f"/o/{org.slug}/", secure=True)
    assert dashboard.status_code == 200
    assert dashboard.context["account_count"] == 1
    accounts = client.get(f"/o/{org.slug}/inventory/accounts/", secure=True).content.decode()
    assert "alpha-prod" in accounts and "bravo-prod" not in accounts
    api = client.get(f"/api/v1/o/{org.slug}/inventory/accounts/", secure=True).json()
    assert [a["account_id"] for a in api.get("results", api)] == ["111111111111"]


def test_pysaml2_group_change_moves_the_user_between_teams(org, estate, idp):
    sign_in(browser(), org, idp, "grace@acme.example", ["sre"])
    client = browser()
    sign_in(client, org, idp, "grace@acme.example", ["data"])
    accounts = client.get(f"/o/{org.slug}/inventory/accounts/", secure=True).content.decode()
    assert "bravo-prod" in accounts and "alpha-prod" not in accounts
    removed = events(org, "team.member_remove")
    assert [e.data["email"] for e in removed] == ["grace@acme.example"]


def test_response_signed_by_another_pysaml2_key_is_refused(org, estate, idp, keys_dir):
    impostor = PySAML2IdP("impostor", keys_dir)
    impostor.entity_id = idp.entity_id  # claims to be acme's IdP, signs with its own key
    impostor.sso_url = idp.sso_url
    impostor.trust_sp(idp.sp_metadata[-1])
    client = browser()
    response = sign_in(client, org, idp, "mallory@acme.example", ["sre"], signer=impostor)
    assert response.status_code == 403
    assert "Single sign-on refused" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(email="mallory@acme.example").exists()
    rejected = events(org, "sso.login_rejected")
    assert len(rejected) == 1 and "signature" in rejected[0].data["reason"].lower()
    assert events(org, "sso.login") == []
