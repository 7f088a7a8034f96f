"""SAML sign-in end to end: the test IdP (tests/saml_idp.py) signs responses, the browser
(Django's test client) carries them through allauth's ACS to our strict finish view."""

from __future__ import annotations

import base64
import datetime as dt
import socket
import uuid
import zlib
from pathlib import Path

import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import login
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, RequestFactory
from lxml import etree

from accounts import tokens
from accounts.models import (
    Membership,
    Organization,
    SAMLAssertion,
    SSOGroupMapping,
    TeamMembership,
    User,
)
from accounts.roles import Role
from accounts.services import ServiceError
from accounts.sso.config import add_group_mapping, set_break_glass, set_sso_required
from accounts.sso.metadata import (
    METADATA_TIMEOUT,
    IdPSettings,
    describe_certificate,
    fetch_metadata,
)
from accounts.sso.refusals import REFUSALS_PER_ORGANIZATION_PER_INTERVAL
from accounts.sso.saml import (
    ReplayError,
    configure_saml,
    consume_assertion,
    idp_settings,
    provider_id,
    saml_app,
)
from accounts.sso.session import SAML_SESSION_KEY, SESSION_IDP_KEY
from audit.models import AuditEvent
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.factories import PASSWORD, MembershipFactory, TeamFactory, UserFactory
from tests.saml_idp import (
    EMAIL,
    GIVEN,
    GROUPS,
    HOST,
    OMIT,
    SURNAME,
    TestIdP,
    encode,
    request_id_from_redirect,
    sp_urls,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def idp():
    return TestIdP("acme-idp")


@pytest.fixture(scope="session")
def other_idp():
    return TestIdP("globex-idp")


def configure(organization, identity_provider, **extra):
    with tenant_scope(organization):
        return configure_saml(
            organization,
            IdPSettings(
                entity_id=identity_provider.entity_id,
                sso_url=identity_provider.sso_url,
                slo_url=identity_provider.slo_url,
                certificates=[identity_provider.cert_pem],
                groups_attribute=GROUPS,
                **extra,
            ),
        )


@pytest.fixture
def saml_org(org, idp):
    configure(org, idp)
    return org


@pytest.fixture
def platform(org):
    return TeamFactory(organization=org, name="Platform", slug="platform")


@pytest.fixture
def mappings(saml_org, platform):
    with tenant_scope(saml_org):
        add_group_mapping(saml_org, group="eng", team=platform)
        add_group_mapping(saml_org, group="tagsense-admins", role=Role.ADMIN)
        add_group_mapping(saml_org, group="tagsense-editors", role=Role.EDITOR)


def browser() -> Client:
    return Client(HTTP_HOST=HOST)


def start(client: Client, org_slug: str, identity_provider: TestIdP, **data) -> str:
    response = client.post(f"/accounts/saml/{org_slug}/login/", data, secure=True)
    assert response.status_code == 302
    assert response["Location"].startswith(identity_provider.sso_url + "?SAMLRequest=")
    return request_id_from_redirect(response["Location"])


def deliver(client: Client, org_slug: str, xml: str):
    posted = client.post(
        f"/accounts/saml/{org_slug}/acs/", {"SAMLResponse": encode(xml)}, secure=True
    )
    assert posted.status_code == 302
    return client.get(posted["Location"], secure=True)


def attributes(email: str, groups: list[str]) -> dict[str, list[str]]:
    return {EMAIL: [email], GIVEN: ["Ada"], SURNAME: ["Lovelace"], GROUPS: groups}


def signed_response(identity_provider, org_slug, request_id, email, groups=(), **kwargs):
    assertion = identity_provider.assertion(
        org_slug=org_slug,
        in_response_to=request_id,
        name_id=email,
        attributes=attributes(email, list(groups)),
        **kwargs,
    )
    return identity_provider.response(assertion, org_slug=org_slug, in_response_to=request_id)


def connect(user, org_slug, identity_provider, email=None):
    """The account's holder, signed in with their password, connects the organization's IdP
    (allauth's connect flow); afterwards single sign-on signs them in."""
    client = browser()
    client.force_login(user)
    reauthenticate(client)
    request_id = start(client, org_slug, identity_provider, process="connect")
    xml = signed_response(identity_provider, org_slug, request_id, email or user.email)
    deliver(client, org_slug, xml)
    organization = Organization.objects.get(slug=org_slug)
    assert SocialAccount.objects.filter(user=user, provider=provider_id(organization)).exists()


def reauthenticate(client: Client, password: str = PASSWORD) -> None:
    """Connecting an IdP (like changing e-mail addresses) asks for the password again."""
    response = client.post("/accounts/reauthenticate/", {"password": password}, secure=True)
    assert response.status_code == 302, response.content[:300]


def sign_in(client, org_slug, identity_provider, email, groups=()):
    request_id = start(client, org_slug, identity_provider)
    xml = signed_response(identity_provider, org_slug, request_id, email, groups)
    return deliver(client, org_slug, xml)


def logged_in_as(client: Client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def events(organization, action):
    with tenant_scope(organization):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


def assert_refused(response, organization, reason_part):
    assert response.status_code in (400, 403)
    body = response.content.decode()
    assert "Single sign-on refused" in body
    assert reason_part.lower() in body.lower()
    rejected = events(organization, "sso.login_rejected")
    assert rejected, "a refused sign-in leaves an audit event"
    assert reason_part.lower() in rejected[-1].data["reason"].lower()
    new_minute()


def new_minute() -> None:
    """Refusals are audited once a minute per action, organization and source
    (sso.refusals.refusal_audit_allowed): forget the claims, so the next refusal is audited too."""

    cache.clear()


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


# --- the happy path and provisioning ------------------------------------------------------


def test_signed_response_logs_in_and_provisions_teams_and_role(saml_org, mappings, idp):
    client = browser()
    response = sign_in(client, saml_org.slug, idp, "ada@acme.example", ["eng", "tagsense-admins"])
    assert response.status_code == 302, response.content[:500]
    user = logged_in_as(client)
    assert user is not None and user.email == "ada@acme.example"
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    membership = membership_of(saml_org, user)
    assert membership.role == Role.ADMIN and not membership.is_pending
    assert teams_of(saml_org, user) == ["platform"]
    assert [e.data["via"] for e in events(saml_org, "org.member_add")] == ["sso"]
    assert events(saml_org, "sso.login")[-1].data["groups"] == ["eng", "tagsense-admins"]
    # the account is bound to this organization's IdP
    assert SocialAccount.objects.get(user=user).provider == f"saml-{saml_org.pk}"
    assert client.get(f"/o/{saml_org.slug}/").status_code == 200


def test_removed_group_removes_team_and_role_at_next_login(saml_org, mappings, idp):
    first = browser()
    sign_in(first, saml_org.slug, idp, "ada@acme.example", ["eng", "tagsense-admins"])
    user = logged_in_as(first)
    second = browser()
    sign_in(second, saml_org.slug, idp, "ada@acme.example", ["tagsense-editors", "unmapped"])
    assert logged_in_as(second) == user
    assert teams_of(saml_org, user) == []
    assert membership_of(saml_org, user).role == Role.EDITOR
    assert [e.data["role"] for e in events(saml_org, "org.member_role_change")] == [
        ["admin", "editor"]
    ]
    assert len(events(saml_org, "team.member_remove")) == 1


def test_highest_role_wins_and_teams_outside_mappings_are_left_alone(saml_org, mappings, idp):
    other_team = TeamFactory(organization=saml_org, name="Manual", slug="manual")
    user = UserFactory(email="bo@acme.example")
    MembershipFactory(organization=saml_org, user=user, role=Role.VIEWER)
    with tenant_scope(saml_org):
        TeamMembership.objects.create(organization=saml_org, team=other_team, user=user)
    connect(user, saml_org.slug, idp)
    client = browser()
    sign_in(client, saml_org.slug, idp, "bo@acme.example", ["tagsense-editors", "tagsense-admins"])
    assert logged_in_as(client) == user  # an existing member of only this organization is linked
    assert membership_of(saml_org, user).role == Role.ADMIN
    assert teams_of(saml_org, user) == ["manual"]


def test_owners_are_never_demoted_by_sso(saml_org, mappings, idp, owner):
    connect(owner, saml_org.slug, idp)
    client = browser()
    sign_in(client, saml_org.slug, idp, owner.email, [])
    assert logged_in_as(client) == owner
    assert membership_of(saml_org, owner).role == Role.OWNER
    assert events(saml_org, "org.member_role_change") == []


def test_pending_invitation_is_accepted_by_sso(saml_org, idp):
    user = UserFactory(email="invited@acme.example")
    MembershipFactory(organization=saml_org, user=user, role=Role.EDITOR, accepted_at=None)
    connect(user, saml_org.slug, idp)
    client = browser()
    sign_in(client, saml_org.slug, idp, user.email, [])
    membership = membership_of(saml_org, user)
    assert not membership.is_pending and membership.role == Role.EDITOR  # no role mappings


# --- refused responses --------------------------------------------------------------------


def test_unsigned_assertion_is_refused(saml_org, idp):
    client = browser()
    request_id = start(client, saml_org.slug, idp)
    assertion = idp.assertion(
        org_slug=saml_org.slug,
        in_response_to=request_id,
        name_id="eve@acme.example",
        attributes=attributes("eve@acme.example", []),
        sign=False,
    )
    xml = idp.response(assertion, org_slug=saml_org.slug, in_response_to=request_id)
    assert_refused(deliver(client, saml_org.slug, xml), saml_org, "signed")
    assert logged_in_as(client) is None
    assert not User.objects.filter(email="eve@acme.example").exists()


def test_signed_message_with_unsigned_assertion_is_refused(saml_org, idp):
    client = browser()
    request_id = start(client, saml_org.slug, idp)
    assertion = idp.assertion(
        org_slug=saml_org.slug,
        in_response_to=request_id,
        name_id="eve@acme.example",
        attributes=attributes("eve@acme.example", []),
        sign=False,
    )
    xml = idp.response(assertion, org_slug=saml_org.slug, in_response_to=request_id, sign=True)
    assert_refused(deliver(client, saml_org.slug, xml), saml_org, "assertion")
    assert logged_in_as(client) is None


def test_assertion_signed_by_another_key_is_refused(saml_org, idp, other_idp):
    client = browser()
    request_id = start(client, saml_org.slug, idp)
    assertion = other_idp.assertion(
        org_slug=saml_org.slug,
        in_response_to=request_id,
        name_id="eve@acme.example",
        attributes=attributes("eve@acme.example", []),
    ).replace(other_idp.entity_id, idp.entity_id)  # claims to be acme's IdP
    xml = idp.response(assertion, org_slug=saml_org.slug, in_response_to=request_id)
    assert_refused(deliver(client, saml_org.slug, xml), saml_org, "signature")
    assert logged_in_as(client) is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"audience": "https://evil.example.org/sp"}, "audience"),
        ({"recipient": "https://evil.example.org/acs"}, "SubjectConfirmation"),
        (
            {
                "not_before": dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
                "not_on_or_after": dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
            },
            "expired",
        ),
        ({"not_before": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)}, "not yet valid"),
    ],
    ids=["wrong-audience", "wrong-recipient", "expired", "not-yet-valid"],
)
def test_signed_but_wrong_assertion_is_refused(saml_org, idp, change, reason):
    client = browser()
    request_id = start(client, saml_org.slug, idp)
    xml = signed_response(idp, saml_org.slug, request_id, "eve@acme.example", **change)
    assert_refused(deliver(client, saml_org.slug, xml), saml_org, reason)
    assert logged_in_as(client) is None


def test_wrong_destination_is_refused(saml_org, idp):
    client = browser()
    request_id = start(client, saml_org.slug, idp)
    assertion = idp.assertion(
        org_slug=saml_org.slug,
        in_response_to=request_id,
        name_id="eve@acme.example",
        attributes=attributes("eve@acme.example", []),
    )
    xml = idp.response(
        assertion,
        org_slug=saml_org.slug,
        in_response_to=request_id,
        destination="https://evil.example.org/acs",
    )
    assert_refused(deliver(client, saml_org.slug, xml), saml_org, "received at")


ACS = sp_urls("acme")["acs"]
ENTITY = sp_urls("acme")["entity_id"]


@pytest.mark.parametrize(
    ("assertion_change", "destination", "reason"),
    [
        ({"audience": OMIT}, None, "no Audience"),
        ({"audience": f"https://evil.example.org/sp {ENTITY}"}, None, None),  # one names us: ok
        ({"recipient": OMIT}, OMIT, "Destination is missing"),
        ({"recipient": OMIT}, None, "Recipient is missing"),
        ({}, OMIT, "Destination is missing"),
        ({"recipient": ACS + "evil"}, None, "Recipient"),
        ({"recipient": "https://evil.example.org/?next=" + ACS}, None, "Recipient"),
        ({}, ACS + "../../globex/acs/", "dot segments"),
        ({}, ACS + "%2e%2e/", "dot segments"),
        ({}, ACS + "?x=1", "Destination"),
        ({"recipient": ACS + "./"}, None, "dot segments"),
    ],
    ids=[
        "no-audience",
        "two-audiences-one-ours",
        "no-destination-no-recipient",
        "no-recipient",
        "no-destination",
        "acs-prefix-of-recipient",
        "acs-inside-recipient",
        "destination-dot-segments",
        "destination-encoded-dot-segments",
        "destination-with-query",
        "recipient-dot-segment",
    ],
)
def test_response_not_bound_exactly_to_this_acs_and_audience_is_refused(
    saml_org, idp, assertion_change, destination, reason
):
    """python3-saml tolerates these (response.py: a missing Audience, Destination or
    Recipient; a Destination that merely starts with, or a Recipient that merely contains, the
    ACS URL); docs/sso.md promises each is checked."""
    client = browser()
    request_id = start(client, saml_org.slug, idp)
    assertion = idp.assertion(
        org_slug=saml_org.slug,
        in_response_to=request_id,
        name_id="eve@acme.example",
        attributes=attributes("eve@acme.example", []),
        **assertion_change,
    )
    xml = idp.response(
        assertion, org_slug=saml_org.slug, in_response_to=request_id, destination=destination
    )
    response = deliver(client, saml_org.slug, xml)
    if reason is None:
        assert response.status_code == 302 and logged_in_as(client) is not None
        return
    assert_refused(response, saml_org, reason)
    assert logged_in_as(client) is None
    assert not User.objects.filter(email="eve@acme.example").exists()


def test_every_audience_restriction_must_name_this_sp(saml_org, idp):
    client = browser()
    request_id = start(client, saml_org.slug, idp)
    assertion = idp.assertion(
        org_slug=saml_org.slug,
        in_response_to=request_id,
        name_id="eve@acme.example",
        attributes=attributes("eve@acme.example", []),
    )
    second = "<saml:AudienceRestriction><saml:Audience>https://evil.example.org/sp</saml:Audience></saml:AudienceRestriction>"  # noqa: E501
    assertion = assertion.replace("</saml:Conditions>", second + "</saml:Conditions>")
    assertion = idp.sign(
        assertion.split("<ds:Signature")[0] + assertion.split("</ds:Signature>")[1]
    )
    xml = idp.response(assertion, org_slug=saml_org.slug, in_response_to=request_id)
    assert_refused(deliver(client, saml_org.slug, xml), saml_org, "audience")


def test_replayed_assertion_is_refused(saml_org, idp):
    victim = browser()
    request_id = start(victim, saml_org.slug, idp)
    xml = signed_response(idp, saml_org.slug, request_id, "ada@acme.example")
    assert deliver(victim, saml_org.slug, xml).status_code == 302
    assert logged_in_as(victim) is not None
    attacker = browser()
    start(attacker, saml_org.slug, idp)
    assert_refused(deliver(attacker, saml_org.slug, xml), saml_org, "replay")
    assert logged_in_as(attacker) is None


def test_response_to_a_request_this_browser_did_not_make_is_refused(saml_org, idp):
    client = browser()
    start(client, saml_org.slug, idp)
    xml = signed_response(idp, saml_org.slug, "_forged-request-id", "ada@acme.example")
    assert_refused(deliver(client, saml_org.slug, xml), saml_org, "InResponseTo")
    assert logged_in_as(client) is None


def test_signature_wrapping_is_refused(saml_org, idp):
    """XSW: a real user's signed assertion is kept (so a signature verifies) while a forged
    assertion for the attacker sits where the SP reads the subject from."""
    client = browser()

    def assertions(request_id):
        genuine = idp.assertion(
            org_slug=saml_org.slug,
            in_response_to=request_id,
            name_id="ada@acme.example",
            attributes=attributes("ada@acme.example", []),
        )
        forged = idp.assertion(
            org_slug=saml_org.slug,
            in_response_to=request_id,
            name_id="mallory@acme.example",
            attributes=attributes("mallory@acme.example", ["tagsense-admins"]),
            sign=False,
        )
        return genuine.split("?>")[-1], forged

    for wrap in (
        # the genuine assertion hidden in the response's Extensions, the forged one in its place
        lambda genuine, forged: (genuine, forged),
        # both, the forged one first
        lambda genuine, forged: ("", forged + genuine),
        # the genuine one hidden inside the forged one
        lambda genuine, forged: (
            "",
            forged.replace("<saml:Conditions", genuine + "<saml:Conditions"),
        ),
    ):
        request_id = start(client, saml_org.slug, idp)
        extensions, body = wrap(*assertions(request_id))
        xml = idp.response(
            body, org_slug=saml_org.slug, in_response_to=request_id, extensions=extensions
        )
        response = deliver(client, saml_org.slug, xml)
        assert response.status_code in (400, 403), response.content[:300]
        assert logged_in_as(client) is None
        new_minute()
    assert not User.objects.filter(email="mallory@acme.example").exists()
    assert len(events(saml_org, "sso.login_rejected")) == 3


# --- an IdP is bound to its organization -------------------------------------------------


def test_assertion_for_organization_a_cannot_sign_into_organization_b(
    saml_org, other_org, idp, other_idp
):
    configure(other_org, other_idp)
    client = browser()
    start(client, other_org.slug, other_idp)
    request_id = start(client, saml_org.slug, idp)
    xml = signed_response(idp, saml_org.slug, request_id, "ada@acme.example")
    # acme's IdP response delivered at globex's ACS
    response = deliver(client, other_org.slug, xml)
    assert_refused(response, other_org, "")
    assert logged_in_as(client) is None
    assert not User.objects.filter(email="ada@acme.example").exists()


def test_same_idp_for_two_organizations_still_binds_each_response(saml_org, other_org, idp):
    configure(other_org, idp)  # same IdP and certificate: only the audience tells them apart
    client = browser()
    start(client, other_org.slug, idp)
    request_id = start(client, saml_org.slug, idp)
    xml = signed_response(idp, saml_org.slug, request_id, "ada@acme.example")
    assert_refused(deliver(client, other_org.slug, xml), other_org, "received at")
    # even addressed to globex's ACS, an assertion for acme's audience is refused there
    request_id = start(client, other_org.slug, idp)
    assertion = idp.assertion(
        org_slug=other_org.slug,
        in_response_to=request_id,
        name_id="ada@acme.example",
        attributes=attributes("ada@acme.example", []),
        audience=sp_urls(saml_org.slug)["entity_id"],
    )
    xml = idp.response(assertion, org_slug=other_org.slug, in_response_to=request_id)
    assert_refused(deliver(client, other_org.slug, xml), other_org, "audience")
    assert logged_in_as(client) is None


def test_sso_provisions_only_the_idps_organization(saml_org, other_org, idp, other_idp):
    configure(other_org, other_idp)
    client = browser()
    sign_in(client, saml_org.slug, idp, "ada@acme.example", [])
    user = logged_in_as(client)
    assert membership_of(saml_org, user) is not None
    assert membership_of(other_org, user) is None
    assert client.get(f"/o/{other_org.slug}/").status_code == 404


def test_idp_cannot_take_over_a_member_of_another_organization(saml_org, idp, outsider):
    """acme's admin controls acme's IdP; globex's owner must stay out of its reach."""
    client = browser()
    response = sign_in(client, saml_org.slug, idp, outsider.email, ["tagsense-admins"])
    assert_refused(response, saml_org, "already exists")
    assert logged_in_as(client) is None
    assert not SocialAccount.objects.filter(user=outsider).exists()
    assert membership_of(saml_org, outsider) is None


# --- SSO-mandatory and break-glass --------------------------------------------------------


def password_login(email, password):
    client = Client()
    response = client.post("/accounts/login/", {"login": email, "password": password})
    return client, response


def test_password_login_refused_when_sso_is_mandatory(saml_org, admin, owner, password):
    with tenant_scope(saml_org):
        set_sso_required(saml_org, required=True)
    client, response = password_login(admin.email, password)
    assert logged_in_as(client) is None
    page = client.get(response["Location"]).content.decode()
    assert "requires single sign-on" in page
    refused = events(saml_org, "auth.password_login_refused")
    assert [e.data["email"] for e in refused] == [admin.email]
    assert "password" not in str(refused[0].data).replace("password_login", "")
    # an owner not marked break-glass is refused too
    client, _ = password_login(owner.email, password)
    assert logged_in_as(client) is None


def test_break_glass_owner_keeps_password_login(saml_org, owner, password):
    owner_membership = membership_of(saml_org, owner)
    with tenant_scope(saml_org):
        set_sso_required(saml_org, required=True)
        set_break_glass(owner_membership, break_glass=True, by=owner_membership)
    client, _ = password_login(owner.email, password)
    assert logged_in_as(client) == owner


def test_password_login_allowed_when_sso_is_optional(saml_org, admin, password):
    client, _ = password_login(admin.email, password)
    assert logged_in_as(client) == admin


def require_sso(organization):
    with tenant_scope(organization):
        set_sso_required(organization, required=True)


def test_password_session_from_before_sso_became_mandatory_is_refused(
    saml_org, admin, password, idp
):
    connect(admin, saml_org.slug, idp)  # the admin connected the IdP to their account earlier
    client = browser()
    client.post("/accounts/login/", {"login": admin.email, "password": password})
    assert logged_in_as(client) == admin
    assert client.get(f"/o/{saml_org.slug}/").status_code == 200
    api = f"/api/v1/o/{saml_org.slug}/inventory/accounts/"
    assert client.get(api).status_code == 200
    require_sso(saml_org)
    page = client.get(f"/o/{saml_org.slug}/settings/")
    assert page.status_code == 403
    body = page.content.decode()
    assert "Acme Corp requires single sign-on" in body
    new_minute()
    assert f'href="/accounts/sso/?organization={saml_org.slug}"' in body
    refused_api = client.get(api)
    assert refused_api.status_code == 403
    assert f"/accounts/sso/?organization={saml_org.slug}" in refused_api.json()["detail"]
    refused = events(saml_org, "sso.session_refused")
    assert [(e.data["email"], e.data["path"]) for e in refused] == [
        (admin.email, f"/o/{saml_org.slug}/settings/"),
        (admin.email, api),
    ]
    assert refused[0].actor_label == admin.email
    # Signing in through the organization's IdP (the page's button) opens the pages again.
    sign_in(client, saml_org.slug, idp, admin.email)
    assert logged_in_as(client) == admin
    assert client.get(f"/o/{saml_org.slug}/settings/", secure=True).status_code == 200
    assert client.get(api, secure=True).status_code == 200


def test_api_tokens_are_not_bound_by_mandatory_sso(saml_org, admin):

    with tenant_scope(saml_org):
        membership = Membership.objects.get(user=admin)
        _, secret = tokens.create_personal_token(
            membership, name="ci", scope="read", expires_in_days=30
        )
    require_sso(saml_org)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get(f"/api/v1/o/{saml_org.slug}/inventory/accounts/").status_code == 200
    assert events(saml_org, "sso.session_refused") == []


def test_a_session_from_organization_a_idp_opens_organization_a_only(
    saml_org, other_org, idp, other_idp
):
    """Whoever runs acme's IdP vouches for people in acme only: a session it opened never
    reaches another organization the same account belongs to (one its IdP may even have
    created before that organization invited the address)."""
    configure(other_org, other_idp)
    client = browser()
    sign_in(client, saml_org.slug, idp, "ada@acme.example")
    user = logged_in_as(client)
    MembershipFactory(organization=other_org, user=user, role=Role.ADMIN)  # invited, joined
    assert client.get(f"/o/{saml_org.slug}/", secure=True).status_code == 200
    response = client.get(f"/o/{other_org.slug}/", secure=True)
    new_minute()
    assert response.status_code == 403
    assert "opened through another organization" in response.content.decode()
    api = client.get(f"/api/v1/o/{other_org.slug}/inventory/accounts/", secure=True)
    assert api.status_code == 403
    assert len(events(other_org, "sso.session_refused")) == 2
    assert events(saml_org, "sso.session_refused") == []
    require_sso(other_org)  # and once globex requires SSO, still only its own IdP's sessions
    assert client.get(f"/o/{other_org.slug}/", secure=True).status_code == 403
    require_sso(saml_org)
    assert client.get(f"/o/{saml_org.slug}/", secure=True).status_code == 200


def test_any_other_sign_in_in_the_same_session_forgets_the_idp(saml_org, admin, idp):
    """Django keeps a session's data when the same user signs in again: a sign-in that is not
    a SAML one must not inherit the IdP's mark."""

    connect(admin, saml_org.slug, idp)
    client = browser()
    sign_in(client, saml_org.slug, idp, admin.email)
    assert client.session[SESSION_IDP_KEY] == saml_org.pk
    request = RequestFactory().get("/")
    request.session = SessionStore(client.session.session_key)
    request.user = admin
    login(request, admin, backend="django.contrib.auth.backends.ModelBackend")
    assert request.session.get("_auth_user_id") == str(admin.pk)
    assert SESSION_IDP_KEY not in request.session


def test_break_glass_owner_opens_pages_with_a_password_session(saml_org, owner, password):
    owner_membership = membership_of(saml_org, owner)
    client, _ = password_login(owner.email, password)
    with tenant_scope(saml_org):
        set_sso_required(saml_org, required=True)
        set_break_glass(owner_membership, break_glass=True, by=owner_membership)
    assert client.get(f"/o/{saml_org.slug}/settings/").status_code == 200
    assert client.get(f"/api/v1/o/{saml_org.slug}/inventory/accounts/").status_code == 200
    with tenant_scope(saml_org):
        set_break_glass(owner_membership, break_glass=False, by=owner_membership)
    assert client.get(f"/o/{saml_org.slug}/settings/").status_code == 403


def test_sso_cannot_be_mandatory_without_an_idp(org):
    with tenant_scope(org), pytest.raises(ServiceError):
        set_sso_required(org, required=True)


def test_only_owners_can_be_break_glass(org, owner, admin):
    with tenant_scope(org), pytest.raises(ServiceError):
        set_break_glass(membership_of(org, admin), break_glass=True, by=membership_of(org, owner))


# --- the settings page --------------------------------------------------------------------


def test_admin_configures_idp_by_hand_and_sees_sp_addresses(org, admin, idp):
    client = browser()
    client.force_login(admin)
    response = client.post(
        f"/o/{org.slug}/settings/sso/idp/",
        {
            "entity_id": idp.entity_id,
            "sso_url": idp.sso_url,
            "slo_url": idp.slo_url,
            "certificate": idp.cert_pem,
            "groups_attribute": GROUPS,
        },
        secure=True,
    )
    assert response.status_code == 302
    app = saml_app(org)
    assert (app.provider, app.provider_id, app.client_id) == ("saml", f"saml-{org.pk}", org.slug)
    assert app.settings["advanced"]["want_assertion_signed"] is True
    configured = events(org, "sso.configure")
    assert len(configured) == 1 and configured[0].data["entity_id"] == idp.entity_id
    assert "BEGIN CERTIFICATE" not in str(configured[0].data)
    page = client.get(f"/o/{org.slug}/settings/sso/", secure=True).content.decode()
    assert sp_urls(org.slug)["entity_id"] in page and sp_urls(org.slug)["acs"] in page
    body = app.settings["idp"]["x509cert"]
    assert body[:40] not in page  # the certificate is described, never echoed
    assert describe_certificate(body)["sha256"] in page


def test_admin_configures_idp_from_uploaded_metadata(org, admin, idp):

    client = browser()
    client.force_login(admin)
    upload = SimpleUploadedFile("idp.xml", idp.metadata().encode(), "text/xml")
    client.post(f"/o/{org.slug}/settings/sso/idp/", {"metadata_file": upload}, secure=True)
    config = idp_settings(saml_app(org))
    assert (config.entity_id, config.sso_url, config.slo_url) == (
        idp.entity_id,
        idp.sso_url,
        idp.slo_url,
    )
    assert config.source == "metadata-xml"


def test_bad_certificate_and_bad_metadata_are_refused(org, admin):

    client = browser()
    client.force_login(admin)
    client.post(
        f"/o/{org.slug}/settings/sso/idp/",
        {"entity_id": "x", "sso_url": "https://idp.example.net/sso", "certificate": "<b>no</b>"},
    )
    bad = SimpleUploadedFile(
        "idp.xml", b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><x>&e;</x>"
    )
    client.post(f"/o/{org.slug}/settings/sso/idp/", {"metadata_file": bad})
    assert saml_app(org) is None
    assert events(org, "sso.configure") == []


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/metadata",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost:8443/idp.xml",
        "https://[::ffff:10.0.0.1]/idp.xml",
    ],
)
def test_metadata_url_to_an_internal_address_is_refused(org, admin, url, monkeypatch):

    def no_connection(*args, **kwargs):
        raise AssertionError("no connection may be opened to an internal address")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    client = browser()
    client.force_login(admin)
    response = client.post(
        f"/o/{org.slug}/settings/sso/idp/", {"metadata_url": url}, secure=True, follow=True
    )
    assert "reads it only from public addresses" in response.content.decode()
    assert saml_app(org) is None
    assert events(org, "sso.configure") == []


def test_metadata_host_with_any_private_address_is_refused(monkeypatch):

    def resolve(host, port, *args, **kwargs):
        assert host == "idp.example.net"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(ServiceError, match="public addresses"):
        fetch_metadata("https://idp.example.net/metadata")


def test_metadata_is_fetched_from_the_address_that_was_checked(monkeypatch):
    """DNS rebinding: the name is resolved once; the connection goes to that address."""

    answers = iter(["93.184.215.14", "127.0.0.1"])
    connected = []

    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    def connect(address, timeout=None, *args, **kwargs):
        connected.append((address, timeout))
        raise ConnectionRefusedError

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(socket, "create_connection", connect)
    with pytest.raises(ServiceError, match="nothing could be fetched"):
        fetch_metadata("https://idp.example.net/metadata")
    assert connected == [(("93.184.215.14", 443), METADATA_TIMEOUT)]


def test_metadata_url_must_be_https(org):
    with pytest.raises(ServiceError, match="https"):
        fetch_metadata("http://idp.example.net/metadata")


def test_sp_metadata_names_the_organizations_acs(saml_org):
    response = browser().get(f"/accounts/saml/{saml_org.slug}/metadata/", secure=True)
    assert response.status_code == 200
    xml = response.content.decode()
    assert f'entityID="{sp_urls(saml_org.slug)["entity_id"]}"' in xml
    assert sp_urls(saml_org.slug)["acs"] in xml


def test_group_names_and_attributes_are_escaped(saml_org, admin, platform):
    with tenant_scope(saml_org):
        add_group_mapping(saml_org, group="<script>alert(1)</script>", team=platform)
    client = browser()
    client.force_login(admin)
    page = client.get(f"/o/{saml_org.slug}/settings/sso/", secure=True).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_mapping_rules(saml_org, platform):
    with tenant_scope(saml_org):
        with pytest.raises(ServiceError):
            add_group_mapping(saml_org, group="x", role=Role.OWNER)
        with pytest.raises(ServiceError):
            add_group_mapping(saml_org, group="x", team=platform, role=Role.ADMIN)
        add_group_mapping(saml_org, group="x", role=Role.EDITOR)
        with pytest.raises(ServiceError):
            add_group_mapping(saml_org, group="x", role=Role.ADMIN)
        assert SSOGroupMapping.objects.for_org(saml_org).count() == 1


def test_replay_cache_forgets_expired_assertions(saml_org):
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).timestamp()
    consume_assertion(saml_org, "_old", past)
    with pytest.raises(ReplayError):
        consume_assertion(saml_org, "_old", past)
    with all_tenants():
        SAMLAssertion.objects.filter(assertion_id="_old").update(
            expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        )
    consume_assertion(saml_org, "_other", None)  # purges the expired one
    consume_assertion(saml_org, "_old", past)


def test_login_page_leads_to_the_organizations_idp(saml_org):
    client = browser()
    assert 'action="/accounts/sso/"' in client.get("/accounts/login/").content.decode()
    response = client.get("/accounts/sso/", {"organization": saml_org.slug.upper()})
    assert response["Location"] == f"/accounts/saml/{saml_org.slug}/login/"
    response = client.get("/accounts/sso/", {"organization": "no-such-org"}, follow=True)
    assert "has no single sign-on" in response.content.decode()


def logout_request(
    identity_provider, org_slug, name_id, issuer=None, session_indexes=(), destination=None
):

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    indexes = "".join(f"<samlp:SessionIndex>{i}</samlp:SessionIndex>" for i in session_indexes)
    xml = (
        '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
        f'ID="_l{uuid.uuid4().hex}" Version="2.0" IssueInstant="{now}" '
        f'Destination="{destination or sp_urls(org_slug)["sls"]}">'
        f"<saml:Issuer>{issuer or identity_provider.entity_id}</saml:Issuer>"
        '<saml:NameID Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress">'
        f"{name_id}</saml:NameID>{indexes}</samlp:LogoutRequest>"
    )
    compressor = zlib.compressobj(wbits=-15)
    deflated = compressor.compress(xml.encode()) + compressor.flush()
    return base64.b64encode(deflated).decode()


def single_logout(client, org_slug, identity_provider, name_id, *, sign=True, **kwargs):
    saml_request = logout_request(identity_provider, org_slug, name_id, **kwargs)
    data = identity_provider.sign_redirect(saml_request) if sign else {"SAMLRequest": saml_request}
    return client.get(f"/accounts/saml/{org_slug}/sls/", data, secure=True)


def test_single_logout_from_the_idp_ends_the_session(saml_org, idp):
    client = browser()
    sign_in(client, saml_org.slug, idp, "ada@acme.example")
    assert logged_in_as(client) is not None
    forged = single_logout(
        client, saml_org.slug, idp, "ada@acme.example", issuer="https://evil.example"
    )
    assert forged.status_code == 400
    assert logged_in_as(client) is not None
    response = single_logout(client, saml_org.slug, idp, "ada@acme.example")
    assert response.status_code == 302
    assert response["Location"].startswith(idp.slo_url + "?SAMLResponse=")
    assert logged_in_as(client) is None
    user = User.objects.get(email="ada@acme.example")
    assert [e.data for e in events(saml_org, "auth.logout")] == [
        {"email": user.email, "via": "sso"}
    ]
    rejected = events(saml_org, "sso.logout_rejected")
    assert len(rejected) == 1 and rejected[0].data["email"] == user.email
    assert "issuer" in rejected[0].data["reason"].lower()


def test_an_unsigned_logout_request_ends_no_session(saml_org, idp):
    """An <img src=".../sls/?SAMLRequest=..."> on any page must not sign anyone out."""
    client = browser()
    sign_in(client, saml_org.slug, idp, "ada@acme.example")
    response = single_logout(client, saml_org.slug, idp, "ada@acme.example", sign=False)
    assert response.status_code == 400
    assert "not signed" in response.content.decode()
    assert logged_in_as(client) is not None
    assert "not signed" in events(saml_org, "sso.logout_rejected")[-1].data["reason"]
    assert events(saml_org, "auth.logout") == []


def test_single_logout_ends_only_the_session_of_that_name_id_and_session_index(saml_org, idp):
    client = browser()
    sign_in(client, saml_org.slug, idp, "ada@acme.example")
    stored = client.session[SAML_SESSION_KEY]
    assert stored["name_id"] == "ada@acme.example" and stored["session_index"].startswith("_s")
    for kwargs in (
        {"name_id": "bob@acme.example"},  # another person of the same IdP
        {"name_id": "ada@acme.example", "session_indexes": ["_s-another-session"]},
    ):
        response = single_logout(client, saml_org.slug, idp, **kwargs)
        assert response.status_code == 302  # answered like any other request
        assert logged_in_as(client) is not None
        new_minute()
    reasons = [e.data["reason"] for e in events(saml_org, "sso.logout_rejected")]
    assert len(reasons) == 2 and "NameID" in reasons[0] and "SessionIndex" in reasons[1]
    response = single_logout(
        client,
        saml_org.slug,
        idp,
        "ada@acme.example",
        session_indexes=["_s-other", stored["session_index"]],
    )
    assert response.status_code == 302
    assert logged_in_as(client) is None


def test_single_logout_never_ends_a_session_its_idp_did_not_open(
    saml_org, other_org, idp, other_idp, admin, password
):
    """globex's IdP (or acme's, for a password session) signs a valid logout request naming
    the browser's user: the session stays, and the answer is the one any browser gets."""
    configure(other_org, other_idp)
    sso_client = browser()
    sign_in(sso_client, saml_org.slug, idp, "ada@acme.example")
    password_client = browser()
    password_client.post("/accounts/login/", {"login": admin.email, "password": password})
    assert logged_in_as(password_client) == admin
    anonymous = browser()

    def answer(client, org_slug, identity_provider, name_id):
        response = single_logout(client, org_slug, identity_provider, name_id)
        assert response.status_code == 302
        return response["Location"].split("?")[0]

    # another organization's IdP, at its own single logout address
    assert answer(sso_client, other_org.slug, other_idp, "ada@acme.example") == answer(
        anonymous, other_org.slug, other_idp, "nobody@acme.example"
    )
    assert logged_in_as(sso_client) is not None
    # acme's own IdP, against a password session
    answer(password_client, saml_org.slug, idp, admin.email)
    assert logged_in_as(password_client) == admin
    # globex's log learns nothing about who held the session
    assert all(e.data["email"] == "" for e in events(other_org, "sso.logout_rejected"))
    assert "ada@acme.example" not in str([e.data for e in events(other_org, "sso.logout_rejected")])
    assert events(saml_org, "auth.logout") == [] and events(other_org, "auth.logout") == []


@pytest.mark.parametrize(
    "destination",
    [
        "https://evil.example.org/accounts/saml/acme/sls/",
        f"https://{HOST}/accounts/saml/acme/sls/../../globex/sls/",
        f"https://{HOST}/accounts/saml/acme/sls/extra",
    ],
)
def test_logout_request_for_another_address_is_refused(saml_org, idp, destination):
    client = browser()
    sign_in(client, saml_org.slug, idp, "ada@acme.example")
    response = single_logout(
        client, saml_org.slug, idp, "ada@acme.example", destination=destination
    )
    assert response.status_code == 400
    assert logged_in_as(client) is not None


def test_signed_messages_wanted_refuses_an_unsigned_logout_request(idp, org):
    configure(org, idp, want_message_signed=True)
    client = browser()
    request_id = start(client, org.slug, idp)
    assertion = idp.assertion(
        org_slug=org.slug,
        in_response_to=request_id,
        name_id="ada@acme.example",
        attributes=attributes("ada@acme.example", []),
    )
    xml = idp.response(assertion, org_slug=org.slug, in_response_to=request_id, sign=True)
    deliver(client, org.slug, xml)
    assert logged_in_as(client) is not None
    sls = f"/accounts/saml/{org.slug}/sls/"
    unsigned = logout_request(idp, org.slug, "ada@acme.example")
    response = client.get(sls, {"SAMLRequest": unsigned}, secure=True)
    assert response.status_code == 400
    assert "not signed" in response.content.decode()
    assert logged_in_as(client) is not None
    assert "not signed" in events(org, "sso.logout_rejected")[-1].data["reason"]
    new_minute()
    # the same request signed by another key is refused too
    other = TestIdP("forger").sign_redirect(unsigned)
    assert client.get(sls, other, secure=True).status_code == 400
    assert logged_in_as(client) is not None
    assert len(events(org, "sso.logout_rejected")) == 2
    response = client.get(sls, idp.sign_redirect(unsigned), secure=True)
    assert response.status_code == 302
    assert logged_in_as(client) is None
    assert events(org, "auth.logout")[-1].data["via"] == "sso"


def test_an_admins_idp_cannot_sign_in_as_the_owner(saml_org, idp, owner, admin):
    """An admin who points the organization at an IdP they control and asserts the owner's
    address is refused: existing accounts are never linked by e-mail."""
    client = browser()
    response = sign_in(client, saml_org.slug, idp, owner.email, [])
    assert_refused(response, saml_org, "already exists")
    assert logged_in_as(client) is None
    assert not SocialAccount.objects.filter(user=owner).exists()


def test_only_a_member_can_connect_the_organizations_idp(saml_org, idp, outsider):
    client = browser()
    client.force_login(outsider)
    request_id = start(client, saml_org.slug, idp, process="connect")
    response = deliver(
        client, saml_org.slug, signed_response(idp, saml_org.slug, request_id, outsider.email)
    )
    assert_refused(response, saml_org, "only a member")
    assert not SocialAccount.objects.filter(user=outsider).exists()


def test_the_connections_page_names_only_my_organizations_idps(
    saml_org, other_org, idp, other_idp, viewer
):
    configure(other_org, other_idp)
    client = browser()
    client.force_login(viewer)
    page = client.get("/accounts/3rdparty/", secure=True).content.decode()
    assert f"/accounts/saml/{saml_org.slug}/login/" in page
    assert other_org.slug not in page and other_org.name not in page


def test_the_sp_metadata_url_the_sso_page_shows_answers_before_any_idp_is_saved(org, admin, idp):
    """An admin gives the IdP this URL first, and only then has the IdP's metadata to save."""

    page = Client(HTTP_HOST=HOST)
    page.force_login(admin)
    settings_page = page.get(f"/o/{org.slug}/settings/sso/", secure=True).content.decode()
    url = f"https://{HOST}/accounts/saml/{org.slug}/metadata/"
    assert url in settings_page

    before = browser().get(url, secure=True)
    assert before.status_code == 200
    assert before["Content-Type"].startswith("application/samlmetadata+xml")
    ns = {"md": "urn:oasis:names:tc:SAML:2.0:metadata"}
    root = etree.fromstring(before.content)
    assert root.get("entityID") == url
    acs = root.find(".//md:AssertionConsumerService", ns)
    assert acs.get("Location") == f"https://{HOST}/accounts/saml/{org.slug}/acs/"
    sp = root.find("md:SPSSODescriptor", ns)
    assert sp.get("WantAssertionsSigned") == "true"

    configure(org, idp)  # saving the IdP changes nothing the IdP was told
    after = browser().get(url, secure=True)
    assert after.status_code == 200

    def told(response):  # validUntil moves with the clock
        document = etree.fromstring(response.content)
        document.attrib.pop("validUntil", None)
        return etree.tostring(document)

    assert told(after) == told(before)


def test_no_sp_metadata_for_an_organization_that_does_not_exist(org):
    assert browser().get("/accounts/saml/nowhere/metadata/", secure=True).status_code == 404


# --- refusals anyone can provoke are audited within a cap --------------------------------------


def _from(ip: str) -> Client:
    return Client(HTTP_HOST=HOST, REMOTE_ADDR=ip)


@pytest.mark.parametrize(
    ("action", "provoke"),
    [
        (
            "sso.logout_rejected",
            lambda client, slug, n: client.get(
                f"/accounts/saml/{slug}/sls/", {"SAMLRequest": f"x{n}"}, secure=True
            ),
        ),
        (
            "sso.login_rejected",
            lambda client, slug, n: client.get(f"/accounts/saml/{slug}/acs/finish/", secure=True),
        ),
    ],
)
def test_unauthenticated_refusals_cannot_flood_the_organizations_chain(
    saml_org, other_org, idp, action, provoke, one_cap_window
):
    """Garbage logout requests and empty ACS finishes, 100 from one source and then one from
    each of 100 sources: one event for the first source, at most the organization's cap in all,
    and another organization's first refusal is still audited."""
    one = _from("203.0.113.9")
    for n in range(100):
        assert provoke(one, saml_org.slug, n).status_code in (400, 403)
    assert len(events(saml_org, action)) == 1
    assert provoke(_from("198.51.100.1"), saml_org.slug, 0).status_code in (400, 403)
    assert len(events(saml_org, action)) == 2, "a different source gets its first event"
    for n in range(100):
        provoke(_from(f"2001:db8:{n}::1"), saml_org.slug, n)
    assert len(events(saml_org, action)) == REFUSALS_PER_ORGANIZATION_PER_INTERVAL
    configure(other_org, idp)
    provoke(_from("203.0.113.9"), other_org.slug, 0)
    assert len(events(other_org, action)) == 1


def test_password_session_refusals_are_audited_once_a_minute_per_member(saml_org, admin, password):
    client = _from("203.0.113.9")
    client.post("/accounts/login/", {"login": admin.email, "password": password})
    require_sso(saml_org)
    api = f"/api/v1/o/{saml_org.slug}/inventory/accounts/"
    for n in range(50):
        assert client.get(f"/o/{saml_org.slug}/settings/?n={n}").status_code == 403
        assert client.get(api).status_code == 403
    assert len(events(saml_org, "sso.session_refused")) == 1


def test_audit_caps_are_documented():

    text = " ".join((Path(__file__).parents[2] / "docs" / "security.md").read_text().split())
    for action in ("sso.login_rejected", "sso.logout_rejected", "sso.session_refused"):
        assert action in text
    assert "per action, organization and client source" in text


def test_single_logout_and_acs_finish_without_a_host_header_never_fail(saml_org, idp):
    """An HTTP/1.0 request carries no Host header: refused (4xx), never a server error."""
    client = Client(raise_request_exception=False)  # no HTTP_HOST in the request's META
    unsigned = logout_request(idp, saml_org.slug, "ada@acme.example")
    for data in ({"SAMLRequest": unsigned}, idp.sign_redirect(unsigned), {"SAMLRequest": "x"}):
        response = client.get(f"/accounts/saml/{saml_org.slug}/sls/", data, secure=True)
        assert response.status_code == 400
    posted = client.post(
        f"/accounts/saml/{saml_org.slug}/acs/", {"SAMLResponse": encode("<x/>")}, secure=True
    )
    assert posted.status_code == 302
    finished = client.get(posted["Location"], secure=True)
    assert finished.status_code == 400
