"""Two-factor authentication: enrolment, sign-in with a TOTP code or a recovery code, and
organizations that require it of their members."""

import base64
import hashlib
import hmac
import re
import struct
import time

import allauth.mfa.totp.internal.auth as totp
import pytest
from allauth.mfa.adapter import get_adapter
from allauth.mfa.base.internal.flows import delete_and_cleanup
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.test import Client, RequestFactory

from accounts import services
from audit.models import AuditEvent
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def rfc6238(secret: str, at: float, digits: int = 6, period: int = 30) -> str:
    """A TOTP code computed here, independently of allauth (RFC 6238 over RFC 4226)."""
    key = base64.b32decode(secret, casefold=True)
    digest = hmac.new(key, struct.pack(">Q", int(at) // period), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**digits:0{digits}d}"


class Clock:
    """Stands in for the `time` module allauth's TOTP check reads, so a test can move to the
    next 30-second step (a code is accepted once only)."""

    def __init__(self):
        self.now = time.time()

    def time(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):

    fake = Clock()
    monkeypatch.setattr(totp, "time", fake)
    return fake


def _login(client, email, password):
    return client.post("/accounts/login/", {"login": email, "password": password})


def _actions(organization):
    with tenant_scope(organization):
        return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


def _enrol(client, clock, password) -> str:
    """Set up an authenticator app through the pages, as a user would; returns the secret."""
    page = client.get("/accounts/2fa/totp/activate/")
    # allauth asks for the password again before a change of sign-in methods.
    assert page.status_code == 302 and page["Location"].startswith("/accounts/reauthenticate/")
    client.post(page["Location"], {"password": password})
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    html = page.content.decode()
    secret = re.search(r'value="([A-Z2-7]{32})"', html).group(1)
    assert re.search(r'<img[^>]+src="data:image/svg\+xml', html)  # the QR code, inline
    response = client.post("/accounts/2fa/totp/activate/", {"code": rfc6238(secret, clock.now)})
    assert response.status_code == 302, response.content.decode()[:2000]
    return secret


def test_enrolment_then_sign_in_asks_for_the_code(org, owner, password, clock):
    client = Client()
    _login(client, owner.email, password)
    secret = _enrol(client, clock, password)
    assert Authenticator.objects.filter(user=owner, type="totp").exists()
    assert Authenticator.objects.filter(user=owner, type="recovery_codes").exists()
    # Stored encrypted: the secret itself is nowhere in the row.
    stored = Authenticator.objects.get(user=owner, type="totp").data["secret"]
    assert secret not in stored
    actions = _actions(org)
    assert "auth.mfa_add" in actions and "auth.mfa_recovery_codes" in actions
    with tenant_scope(org):
        for event in AuditEvent.objects.filter(action__startswith="auth.mfa"):
            assert secret not in str(event.data)
    client.post("/accounts/logout/")

    client = Client()
    response = _login(client, owner.email, password)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/authenticate/"
    # The password alone does not open the portal.
    assert client.get(f"/o/{org.slug}/")["Location"].startswith("/accounts/login/")

    clock.now += 30
    wrong = "000000" if rfc6238(secret, clock.now) != "000000" else "111111"
    refused = client.post("/accounts/2fa/authenticate/", {"code": wrong})
    assert refused.status_code == 200
    assert "Incorrect code" in refused.content.decode()
    assert "auth.mfa_failed" in _actions(org)

    response = client.post("/accounts/2fa/authenticate/", {"code": rfc6238(secret, clock.now)})
    assert response.status_code == 302
    assert client.get(f"/o/{org.slug}/").status_code == 200
    assert _actions(org).count("auth.login") == 2


def test_a_recovery_code_works_once(org, owner, password, clock):

    TOTP.activate(owner, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")

    codes = RecoveryCodes.activate(owner).get_unused_codes()
    assert len(codes) == 10

    client = Client()
    _login(client, owner.email, password)
    response = client.post("/accounts/2fa/authenticate/", {"code": codes[0]})
    assert response.status_code == 302
    assert client.get(f"/o/{org.slug}/").status_code == 200
    assert "auth.mfa_recovery_code_used" in _actions(org)
    with tenant_scope(org):
        event = AuditEvent.objects.get(action="auth.mfa_recovery_code_used")
    assert codes[0] not in str(event.data)
    client.post("/accounts/logout/")

    again = Client()
    _login(again, owner.email, password)
    refused = again.post("/accounts/2fa/authenticate/", {"code": codes[0]})
    assert refused.status_code == 200
    assert "Incorrect code" in refused.content.decode()
    assert again.get(f"/o/{org.slug}/")["Location"].startswith("/accounts/login/")
    # Another unused code still works.
    assert again.post("/accounts/2fa/authenticate/", {"code": codes[1]}).status_code == 302


def test_mfa_pages_need_a_signed_in_user():
    for path in ("/accounts/2fa/", "/accounts/2fa/totp/activate/"):
        response = Client().get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_the_user_menu_leads_to_two_factor_settings(org, viewer):
    page = client_for(viewer).get(f"/o/{org.slug}/").content.decode()
    assert 'href="/accounts/2fa/"' in page
    assert client_for(viewer).get("/accounts/2fa/").status_code == 200


# --- organizations that require it ----------------------------------------------------------


@pytest.fixture
def strict_org(org):
    with tenant_scope(org):
        services.set_require_mfa(org, require=True)
    org.refresh_from_db()
    return org


def test_a_member_without_mfa_is_sent_to_set_it_up(strict_org, viewer, other_org):
    MembershipFactory(organization=other_org, user=viewer)
    client = client_for(viewer)
    response = client.get(f"/o/{strict_org.slug}/inventory/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/2fa/totp/activate/"
    page = client.get(response["Location"], follow=True).content.decode()
    assert "Acme Corp requires two-factor authentication" in page
    # The other organization does not require it: its pages still work.
    assert client.get(f"/o/{other_org.slug}/").status_code == 200
    assert client.get(f"/api/v1/o/{other_org.slug}/").status_code == 200


def test_htmx_requests_get_a_full_page_redirect(strict_org, viewer):
    response = client_for(viewer).get(f"/o/{strict_org.slug}/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/2fa/totp/activate/"


def test_the_api_refuses_a_session_without_mfa_with_a_problem(strict_org, viewer):
    response = client_for(viewer).get(f"/api/v1/o/{strict_org.slug}/members/")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 403
    assert "requires two-factor authentication" in body["detail"]
    assert "/accounts/2fa/" in body["detail"]


def test_a_member_with_mfa_goes_through(strict_org, viewer):

    TOTP.activate(viewer, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    client = client_for(viewer)
    assert client.get(f"/o/{strict_org.slug}/").status_code == 200
    assert client.get(f"/api/v1/o/{strict_org.slug}/members/").status_code == 200


def test_a_non_member_still_gets_404_not_a_hint(strict_org, outsider):
    assert client_for(outsider).get(f"/o/{strict_org.slug}/").status_code == 404


def test_member_of_a_strict_organization_cannot_remove_the_authenticator(strict_org, viewer):

    totp = TOTP.activate(viewer, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").instance
    assert get_adapter().can_delete_authenticator(totp) is False
    with tenant_scope(strict_org):
        services.set_require_mfa(strict_org, require=False)
    assert get_adapter().can_delete_authenticator(totp) is True


def test_owner_turns_the_requirement_on_and_it_is_audited(org, owner, admin):
    client = client_for(owner)
    page = client.get(f"/o/{org.slug}/settings/").content.decode()
    assert "Require two-factor authentication for all members" in page
    assert "admin@acme.example" in page  # listed among members without it
    response = client.post(f"/o/{org.slug}/settings/security/", {"require_mfa": "on"})
    assert response.status_code == 302
    org.refresh_from_db()
    assert org.require_mfa is True
    with tenant_scope(org):
        event = AuditEvent.objects.filter(action="org.update").latest("seq")
    assert event.data == {"require_mfa": [False, True]}
    # The owner has no authenticator yet either: the next page sends them to set one up.
    assert client.get(f"/o/{org.slug}/settings/")["Location"] == "/accounts/2fa/totp/activate/"


def test_removing_the_authenticator_is_audited(org, owner):

    totp = TOTP.activate(owner, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP").instance
    RecoveryCodes.activate(owner)
    request = RequestFactory().post("/")
    request.user = owner
    delete_and_cleanup(request, totp)
    assert not Authenticator.objects.filter(user=owner).exists()
    assert _actions(org).count("auth.mfa_remove") == 1


def test_account_and_mfa_pages_render_in_our_layout_without_inline_script(owner, password):
    """allauth's templates come from the package: check what they render, not their source."""

    client = Client()
    _login(client, owner.email, password)
    client.post("/accounts/reauthenticate/", {"password": password})

    def check(path):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert '<section class="card' in html, path
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html), path

    for path in ("/accounts/2fa/", "/accounts/2fa/totp/activate/", "/accounts/password/change/"):
        check(path)
    TOTP.activate(owner, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    RecoveryCodes.activate(owner)
    for path in ("/accounts/2fa/recovery-codes/", "/accounts/2fa/totp/deactivate/"):
        check(path)
    signed_out = Client()
    _login(signed_out, owner.email, password)  # stops at the second factor
    anonymous = Client()
    for client_, path in (
        (signed_out, "/accounts/2fa/authenticate/"),
        (anonymous, "/accounts/login/"),
        (anonymous, "/accounts/password/reset/"),
    ):
        html = client_.get(path).content.decode()
        assert '<section class="card narrow">' in html, path
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
