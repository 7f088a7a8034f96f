"""Health checks, static assets served from the repo, security headers, the admin."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone

import audit
from accounts import audit_events as accounts_events
from audit.models import AuditEvent
from inventory import services
from inventory.models import Resource
from tagsense.celery import app
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for
from tests.factories import TeamMembershipFactory, UserFactory
from tests.inventory.conftest import HOME, make_account

REPO = Path(settings.BASE_DIR)


def test_healthz_answers_without_a_database():
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.content == b"ok"


@pytest.mark.django_db
def test_readyz_checks_database_and_broker():
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_says_which_dependency_is_down(monkeypatch):

    # Celery reads CELERY_BROKER_URL from the environment before its configuration: set both,
    # as a deployment that sets the variable does (the configuration first, so that undoing it
    # restores the configured URL, not the environment's).
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert "broker unreachable" in response.json()["detail"]
    assert "database" not in response.json()["detail"]


@pytest.mark.django_db
def test_pages_load_htmx_and_css_from_our_static_files(org, owner):
    page = client_for(owner).get(f"/o/{org.slug}/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)
    assert "/static/vendor/htmx/htmx-2.0.11.min.js" in assets
    assert all(a.startswith("/static/") for a in assets), assets
    assert finders.find("vendor/htmx/htmx-2.0.11.min.js")


def test_no_template_reaches_for_a_cdn_or_inline_script():
    for template in (REPO / "templates").rglob("*.html"):
        text = template.read_text()
        assert not re.search(r'(?:src|href)="(?:https?:)?//', text), template
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template


@pytest.mark.django_db
def test_security_headers(org, owner):
    response = client_for(owner).get(f"/o/{org.slug}/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert "HX-Request" in response["Vary"]
    assert len(response["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_audit_page_filters_and_answers_htmx_with_a_fragment(org, auditor):

    with tenant_scope(org):
        audit.record(accounts_events.TEAM_CREATE, data={"name": "alpha"})
        audit.record(accounts_events.TEAM_DELETE, data={"name": "alpha"})
    client = client_for(auditor)
    full = client.get(f"/o/{org.slug}/audit/", {"action": "team.delete"}).content.decode()
    assert "<html" in full and "team.delete" in full and "team.create</code>" not in full
    fragment = client.get(
        f"/o/{org.slug}/audit/", {"action": "team.create"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "<html" not in fragment and "team.create" in fragment


@pytest.mark.django_db
def test_the_assistant_answers_without_a_model_until_one_is_configured(org, viewer):
    page = client_for(viewer).get(f"/o/{org.slug}/assistant/").content.decode()
    assert "offline analyst answers" in page and "Compliance Auditor" in page


@pytest.mark.django_db
def test_superuser_admin_sees_every_organization_and_changes_are_audited(org, other_org, team):

    root = UserFactory(email="root@example.com", is_superuser=True, is_staff=True)
    client = client_for(root)
    listing = client.get("/admin/accounts/organization/").content.decode()
    assert "Acme Corp" in listing and "Globex" in listing
    response = client.post(
        f"/admin/accounts/team/{team.pk}/change/",
        {"organization": org.pk, "slug": "platform", "name": "Platform (renamed)"},
    )
    assert response.status_code == 302
    with tenant_scope(org):
        event = AuditEvent.objects.get(action="admin.change")
    assert event.actor_label == "root@example.com"
    assert event.target_repr == "Platform (renamed)"


@pytest.mark.django_db
def test_admin_is_for_superusers_only(org, owner):
    response = client_for(owner).get("/admin/accounts/organization/")
    assert response.status_code == 302
    with all_tenants():
        assert not AuditEvent.objects.filter(action__startswith="admin.").exists()


@pytest.mark.django_db
def test_untrusted_text_renders_inert_in_settings_and_audit_pages(org, owner):
    client = client_for(owner)
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    client.post(f"/o/{org.slug}/settings/teams/add/", {"name": "Ops " + hostile})
    for path in ("settings/", "audit/"):
        page = client.get(f"/o/{org.slug}/{path}").content.decode()
        assert "<script>alert(1)" not in page, path
        assert "<img src=x" not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


@pytest.mark.django_db
def test_login_page_does_not_offer_sign_up_when_it_is_closed():
    page = Client().get("/accounts/login/").content.decode()
    assert "Sign in to TagSense" in page
    assert "/accounts/signup/" not in page
    assert "created by your organization" in page


@pytest.mark.django_db
def test_dashboard_charts_the_tagged_share_per_type(org, viewer, team, aws_env):

    account = make_account(org, HOME, role=False)
    TeamMembershipFactory(organization=org, team=team, user=viewer)  # viewers see their teams'
    now = timezone.now()
    with tenant_scope(org):
        services.grant_account(account, team)
        for i, tags in enumerate([{"Owner": "a"}, {}, {}, {"Owner": "b"}]):
            Resource.objects.create(
                organization=org,
                account=account,
                arn=f"arn:x:{i}",
                region="eu-west-1",
                resource_type="ec2:volume",
                resource_id=str(i),
                tags=tags,
                fingerprint="x",
                first_seen=now,
                last_written=now,
            )
    page = client_for(viewer).get(f"/o/{org.slug}/").content.decode()
    assert '<meter min="0" max="100" low="60" high="90" optimum="100" value="50"' in page
    assert "2 untagged" in page and "(50%)" in page
