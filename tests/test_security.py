"""Request and session security: headers, session timeouts, sign-in lock-out, passwords."""

import importlib
import re
import sys
import time

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from accounts.models import User
from audit.models import AuditEvent
from tagsense.security import SESSION_SEEN, SESSION_STARTED
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def _directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part
    }


def _events(organization, action):
    with tenant_scope(organization):
        return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/o/acme/", "/o/acme/settings/", "/api/v1/o/acme/"])
def test_pages_and_api_carry_the_security_headers(org, owner, path):
    response = client_for(owner).get(path)
    assert response.status_code == 200
    csp = _directives(response)
    assert csp["script-src"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp["default-src"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"


def test_sign_in_page_carries_the_policy_too():
    response = Client().get("/accounts/login/")
    assert _directives(response)["script-src"] == ["'self'"]


def test_api_docs_load_their_start_up_script_as_a_file(owner):
    client = client_for(owner)
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    script = re.search(r'<script src="([^"]*script=[^"]*)"', html).group(1)
    js = client.get(script.replace("&amp;", "&"))
    assert js.status_code == 200 and "SwaggerUIBundle" in js.content.decode()


def test_report_only_mode_switches_the_header(settings, org, owner):
    settings.TAGSENSE_CSP_REPORT_ONLY = True
    response = client_for(owner).get(f"/o/{org.slug}/")
    assert "Content-Security-Policy" not in response
    assert "frame-ancestors 'none'" in response["Content-Security-Policy-Report-Only"]


def test_session_and_csrf_cookies_are_httponly_and_samesite(owner, password):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    token = page.cookies["csrftoken"]
    assert token["samesite"] == "Lax"
    response = client.post(
        "/accounts/login/",
        {"login": owner.email, "password": password, "csrfmiddlewaretoken": token.value},
    )
    assert response.status_code == 302
    session = response.cookies["sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"


def test_a_post_without_the_csrf_token_is_refused(org, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(f"/o/{org.slug}/settings/organization/", {"name": "Hijacked"})
    assert response.status_code == 403
    org.refresh_from_db()
    assert org.name == "Acme Corp"


def test_production_settings_turn_on_secure_cookies_and_hsts(monkeypatch):

    monkeypatch.setenv("DJANGO_SECRET_KEY", "x" * 60)
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "tagsense.example.com")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@127.0.0.1:5432/x")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("EMAIL_URL", "smtp+tls://mailer:pw@smtp.example.com:587")
    monkeypatch.setenv("DEFAULT_FROM_EMAIL", "tagsense@example.com")
    monkeypatch.setenv("AUDIT_CHAIN_KEY", "k" * 40)
    monkeypatch.delenv("TRUSTED_PROXY_COUNT", raising=False)
    monkeypatch.delenv("CACHE_URL", raising=False)
    monkeypatch.delitem(sys.modules, "tagsense.settings.production", raising=False)
    monkeypatch.delitem(sys.modules, "tagsense.settings.base", raising=False)
    # Production refuses to start on a per-process cache (the stop button, lock-outs).
    with pytest.raises(ImproperlyConfigured, match="CACHE_URL"):
        importlib.import_module("tagsense.settings.production")
    monkeypatch.setenv("CACHE_URL", "redis://127.0.0.1:6379/1")
    monkeypatch.delitem(sys.modules, "tagsense.settings.production", raising=False)
    monkeypatch.delitem(sys.modules, "tagsense.settings.base", raising=False)
    production = importlib.import_module("tagsense.settings.production")
    assert "redis" in production.CACHES["default"]["BACKEND"].lower()
    assert production.SESSION_COOKIE_SECURE and production.CSRF_COOKIE_SECURE
    assert production.SECURE_HSTS_SECONDS >= 31536000
    assert production.SECURE_SSL_REDIRECT
    # X-Forwarded-Proto is believed only when a proxy is declared.
    assert not hasattr(production, "SECURE_PROXY_SSL_HEADER")
    monkeypatch.setenv("TRUSTED_PROXY_COUNT", "1")
    monkeypatch.delitem(sys.modules, "tagsense.settings.production")
    monkeypatch.delitem(sys.modules, "tagsense.settings.base")
    production = importlib.import_module("tagsense.settings.production")
    assert production.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")


@pytest.mark.parametrize("missing", ["EMAIL_URL", "DEFAULT_FROM_EMAIL"])
def test_production_settings_refuse_to_start_without_mail(monkeypatch, missing):
    """Without mail the first just-in-time SSO sign-in failed with 500 (its confirmation
    e-mail went to Django's default SMTP server on localhost)."""

    for name, value in {
        "DJANGO_SECRET_KEY": "x" * 60,
        "DJANGO_ALLOWED_HOSTS": "tagsense.example.com",
        "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587",
        "DEFAULT_FROM_EMAIL": "TagSense <tagsense@example.com>",
        "AUDIT_CHAIN_KEY": "k" * 40,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(missing)
    for module in ("tagsense.settings.production", "tagsense.settings.base"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImproperlyConfigured, match=missing):
        importlib.import_module("tagsense.settings.production")
    monkeypatch.setenv(
        missing,
        "smtp+tls://mailer:secret@smtp.example.com:587"
        if missing == "EMAIL_URL"
        else "TagSense <tagsense@example.com>",
    )
    for module in ("tagsense.settings.production", "tagsense.settings.base"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    production = importlib.import_module("tagsense.settings.production")
    assert production.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
    assert (production.EMAIL_HOST, production.EMAIL_PORT) == ("smtp.example.com", 587)
    assert production.EMAIL_USE_TLS and production.EMAIL_HOST_USER == "mailer"
    assert production.DEFAULT_FROM_EMAIL == "TagSense <tagsense@example.com>"
    assert production.SERVER_EMAIL == production.DEFAULT_FROM_EMAIL


# --- session timeouts -----------------------------------------------------------------------


def _signed_in(owner, password):
    client = Client()
    assert (
        client.post("/accounts/login/", {"login": owner.email, "password": password}).status_code
        == 302
    )
    return client


def _age_session(client, **seconds_ago):
    session = client.session
    now = time.time()
    if "started" in seconds_ago:
        session[SESSION_STARTED] = now - seconds_ago["started"]
    if "seen" in seconds_ago:
        session[SESSION_SEEN] = now - seconds_ago["seen"]
    session.save()


def test_an_idle_session_is_signed_out_with_a_message(org, owner, password):
    client = _signed_in(owner, password)
    assert client.get(f"/o/{org.slug}/").status_code == 200
    _age_session(client, seen=31 * 60)
    response = client.get(f"/o/{org.slug}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    page = client.get(response["Location"]).content.decode()
    assert "You were signed out after 30 minutes without activity" in page
    [event] = _events(org, "auth.session_expired")
    assert event.data == {"email": owner.email, "reason": "idle"}
    assert not _events(org, "auth.logout")
    # Signed out for good: the next request is anonymous too.
    assert client.get(f"/o/{org.slug}/").status_code == 302


def test_an_expired_htmx_poll_sends_the_whole_window_to_sign_in(org, owner, password):
    client = _signed_in(owner, password)
    _age_session(client, seen=31 * 60)
    response = client.get(
        f"/o/{org.slug}/inventory/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver/o/{org.slug}/inventory/scans/",
    )
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/login/?next=/o/acme/inventory/scans/"


def test_a_session_ends_at_its_absolute_limit_even_when_active(org, owner, password):
    client = _signed_in(owner, password)
    _age_session(client, started=12 * 3600 + 5, seen=10)
    response = client.get(f"/api/v1/o/{org.slug}/")
    assert response.status_code == 401
    [event] = _events(org, "auth.session_expired")
    assert event.data["reason"] == "absolute"


def test_an_active_session_within_its_limits_goes_on(org, owner, password):
    client = _signed_in(owner, password)
    _age_session(client, started=11 * 3600, seen=29 * 60)
    assert client.get(f"/o/{org.slug}/").status_code == 200
    # The request counts as activity: the idle clock starts again.
    assert time.time() - client.session[SESSION_SEEN] < 5
    assert not _events(org, "auth.session_expired")


def test_timeouts_come_from_settings(settings, org, owner, password):
    settings.TAGSENSE_SESSION_IDLE_TIMEOUT = 120
    client = _signed_in(owner, password)
    _age_session(client, seen=121)
    assert client.get(f"/o/{org.slug}/").status_code == 302
    assert "after 2 minutes without activity" in client.get("/accounts/login/").content.decode()


# --- lock-out -------------------------------------------------------------------------------

LOCKED = "Too many failed sign-in attempts"


def _attempt(email, password, ip):
    client = Client()
    response = client.post(
        "/accounts/login/", {"login": email, "password": password}, REMOTE_ADDR=ip
    )
    return client, response


def test_an_account_locks_after_five_failures_from_anywhere(org, owner, admin, password):
    for n in range(5):
        _, response = _attempt(owner.email, "wrong-password-x", f"198.51.100.{n}")
        assert LOCKED not in response.content.decode()
    client, response = _attempt(owner.email, password, "198.51.100.200")
    assert response.status_code == 200
    assert LOCKED in response.content.decode()
    assert client.get(f"/o/{org.slug}/").status_code == 302  # not signed in
    [event] = _events(org, "auth.login_locked")
    assert event.data == {"email": owner.email}
    assert event.ip_address == "198.51.100.200"
    assert password not in str(event.data)
    # Another account from the same addresses is not affected.
    _, response = _attempt(admin.email, password, "198.51.100.0")
    assert response.status_code == 302


def test_an_address_locks_after_twenty_failures_across_accounts(org, owner, password):
    for n in range(20):
        _, response = _attempt(f"probe{n // 4}@nowhere.example", "guess-guess-1", "203.0.113.9")
        assert LOCKED not in response.content.decode()
    _, response = _attempt(owner.email, password, "203.0.113.9")
    assert LOCKED in response.content.decode()
    with all_tenants():
        refused = AuditEvent.objects.filter(action="auth.login_locked")
        assert [e.data["email"] for e in refused] == [owner.email]
    # The same account from another address still signs in.
    _, response = _attempt(owner.email, password, "203.0.113.10")
    assert response.status_code == 302


def test_successful_sign_ins_do_not_count_as_failures(owner, password):
    for _ in range(8):
        _, response = _attempt(owner.email, password, "192.0.2.1")
        assert response.status_code == 302


# --- passwords ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Sh0rt-pass", "too short"),
        ("password1234", "too common"),
        ("839201746358", "entirely numeric"),
        ("marguerite.fontaine", "too similar"),
    ],
)
def test_sign_up_refuses_weak_passwords(settings, password, message):
    settings.ACCOUNT_ALLOW_SIGNUP = True
    email = "marguerite.fontaine@example.com"
    response = Client().post(
        "/accounts/signup/", {"email": email, "password1": password, "password2": password}
    )
    assert response.status_code == 200
    assert message in response.content.decode()

    assert not User.objects.filter(email=email).exists()


def test_sign_up_accepts_a_strong_password(settings):
    settings.ACCOUNT_ALLOW_SIGNUP = True
    strong = "plover-ridge-47-quietly"
    response = Client().post(
        "/accounts/signup/",
        {"email": "new@example.com", "password1": strong, "password2": strong},
    )
    assert response.status_code == 302


def test_password_change_refuses_a_weak_one_and_audits_a_good_one(org, owner, password):
    client = _signed_in(owner, password)
    weak = client.post(
        "/accounts/password/change/",
        {"oldpassword": password, "password1": "acme12345", "password2": "acme12345"},
    )
    assert weak.status_code == 200
    assert "too short" in weak.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(password)
    strong = "granite-osprey-9-lantern"
    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": password, "password1": strong, "password2": strong},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(strong)
    assert _events(org, "auth.password_change")


def test_password_reset_page_works(owner):

    response = Client().post("/accounts/password/reset/", {"email": owner.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and "/accounts/password/reset/key/" in mail.outbox[0].body


def test_user_factory_password_is_strong_enough():
    """The fixtures' password passes the validators (so tests sign in like users do)."""

    validate_password(PASSWORD, UserFactory.build(email="someone@example.com"))


@pytest.mark.parametrize("key", [None, "short-key"])
def test_production_settings_refuse_to_start_without_an_audit_chain_key(monkeypatch, key):
    """Production keys the audit chain with its own secret: absent or short, it does not start."""

    for name, value in {
        "DJANGO_SECRET_KEY": "x" * 60,
        "DJANGO_ALLOWED_HOSTS": "tagsense.example.com",
        "DATABASE_URL": "postgres://u@127.0.0.1:5432/x",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "EMAIL_URL": "consolemail://",
        "DEFAULT_FROM_EMAIL": "tagsense@example.com",
    }.items():
        monkeypatch.setenv(name, value)
    if key is None:
        monkeypatch.delenv("AUDIT_CHAIN_KEY", raising=False)
    else:
        monkeypatch.setenv("AUDIT_CHAIN_KEY", key)
    for module in ("tagsense.settings.production", "tagsense.settings.base"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(ImproperlyConfigured, match="AUDIT_CHAIN_KEY"):
        importlib.import_module("tagsense.settings.production")
