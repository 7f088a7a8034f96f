"""Audit details that used to go wrong: address and number spellings, hostile headers,
proxies, bulk admin deletes, password changes, duplicate submits, huge page sizes."""

import pytest
from django.core.management import call_command
from django.db import IntegrityError
from django.test import Client

import audit
from accounts import audit_events as accounts_events
from accounts import services
from accounts.models import User
from audit.models import AuditEvent, normalise_ip
from tagsense.tenancy import context
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "address, stored",
    [
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("fe80::1%eth0", "fe80::1"),
        ("::1.2.3.4", "::102:304"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("not an address", None),
    ],
)
def test_unusual_addresses_and_numbers_keep_the_chain_intact(org, address, stored, capsys):
    with context.use(ip_address=address), tenant_scope(org):
        audit.record(accounts_events.TEAM_CREATE, data={"big": 1e16, "neg": -0.0, "pi": 3.14159})
    with tenant_scope(org):
        event = AuditEvent.objects.get()
    # PostgreSQL may spell an address its own way (::1.2.3.4); the hash reads it normalised.
    assert normalise_ip(event.ip_address) == stored
    call_command("verify_audit_chain", "--org", org.slug)
    assert "intact, 1 events" in capsys.readouterr().out


def test_control_characters_in_the_user_agent_are_dropped(org, owner, password):
    response = Client().post(
        "/accounts/login/",
        {"login": owner.email, "password": "wrong-password-xyz"},
        HTTP_USER_AGENT="evil\x00agent\x1b[31m",
    )
    assert response.status_code == 200
    with tenant_scope(org):
        event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.user_agent == "evilagent[31m"


def test_forwarded_for_is_read_only_behind_trusted_proxies(org, owner, settings, password):
    headers = {"HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.4", "REMOTE_ADDR": "10.0.0.9"}
    login = {"login": owner.email, "password": password}
    Client().post("/accounts/login/", login, **headers)
    settings.TRUSTED_PROXY_COUNT = 1
    Client().post("/accounts/login/", login, **headers)
    with tenant_scope(org):
        addresses = list(
            AuditEvent.objects.filter(action="auth.login")
            .order_by("seq")
            .values_list("ip_address", flat=True)
        )
    assert addresses == ["10.0.0.9", "198.51.100.4"]


def test_bulk_delete_in_the_admin_records_each_object(org):
    root = UserFactory(email="root@example.com", is_superuser=True, is_staff=True)
    teams = [TeamFactory(organization=org, name=f"Doomed {i}") for i in range(3)]
    response = client_for(root).post(
        "/admin/accounts/team/",
        {"action": "delete_selected", "_selected_action": [t.pk for t in teams], "post": "yes"},
    )
    assert response.status_code == 302
    with tenant_scope(org):
        deleted = AuditEvent.objects.filter(action="admin.delete")
        assert sorted(deleted.values_list("target_repr", flat=True)) == [
            "Doomed 0",
            "Doomed 1",
            "Doomed 2",
        ]
        assert {e.actor_label for e in deleted} == {"root@example.com"}


def test_password_change_is_recorded(org, owner, password):
    client = client_for(owner)
    response = client.post(
        "/accounts/password/change/",
        {
            "oldpassword": password,
            "password1": "a-much-better-pass-42",
            "password2": "a-much-better-pass-42",
        },
    )
    assert response.status_code == 302
    with tenant_scope(org):
        event = AuditEvent.objects.get(action="auth.password_change")
    assert "a-much-better-pass-42" not in str(event.data)


def test_a_duplicate_insert_race_becomes_a_clear_refusal():
    def racing_insert():
        raise IntegrityError("duplicate key value violates unique constraint")

    with pytest.raises(services.ServiceError, match="exists already"):
        services._insert(racing_insert, "a team named 'x' exists already")


def test_api_page_size_is_capped(org, auditor):
    with tenant_scope(org):
        for _ in range(3):
            audit.record(accounts_events.TEAM_CREATE)
    response = client_for(auditor).get(
        f"/api/v1/o/{org.slug}/audit-events/", {"limit": "100000000000000000000"}
    )
    assert response.status_code == 200
    assert len(response.json()["results"]) <= 500


def test_setup_demo_records_a_reset_of_a_changed_demo_password(capsys):

    call_command("setup_demo")
    admin = User.objects.get(email="admin@demo.tagsense.local")
    admin.set_password("changed-by-someone-123")
    admin.save()
    call_command("setup_demo")
    with all_tenants():
        assert AuditEvent.objects.filter(action="auth.password_reset").count() == 1
    admin.refresh_from_db()
    assert admin.check_password("tagsense-demo-password")
