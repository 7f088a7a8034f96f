"""Membership and team rules that protect an organization from locking itself out."""

import pytest

from accounts import services
from accounts.models import Membership, Team
from accounts.roles import Role
from audit.models import AuditEvent
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def _membership(org, user):
    with tenant_scope(org):
        return Membership.objects.select_related("user", "organization").get(user=user)


def test_the_last_owner_cannot_be_demoted_or_removed(org, owner):
    me = _membership(org, owner)
    with tenant_scope(org):
        with pytest.raises(services.ServiceError, match="at least one owner"):
            services.change_role(me, role=Role.ADMIN, by=me)
        with pytest.raises(services.ServiceError, match="at least one owner"):
            services.remove_member(me, by=me)
        assert AuditEvent.objects.filter(action__startswith="org.member").count() == 0


def test_an_admin_cannot_grant_the_owner_role(org, admin, viewer):
    by = _membership(org, admin)
    target = _membership(org, viewer)
    with tenant_scope(org), pytest.raises(services.ServiceError, match="only an owner"):
        services.change_role(target, role=Role.OWNER, by=by)


def test_removing_a_member_removes_their_team_places(org, owner, viewer, team):
    with tenant_scope(org):
        services.add_team_member(team, user=viewer)
        services.remove_member(_membership(org, viewer), by=_membership(org, owner))
        assert not team.memberships.exists()


def test_a_refused_change_shows_its_reason_and_changes_nothing(org, owner):
    client = client_for(owner)
    response = client.post(
        f"/o/{org.slug}/settings/members/add/",
        {"email": "unknown@example.com", "role": "viewer"},
        follow=True,
    )
    assert "no user with the address" in response.content.decode()
    with tenant_scope(org):
        assert (
            not AuditEvent.objects.filter(action="org.member_add")
            .exclude(data__email=owner.email)
            .exists()
        )


def test_creating_a_team_twice_is_refused(org, owner):
    client = client_for(owner)
    client.post(f"/o/{org.slug}/settings/teams/add/", {"name": "Data"})
    response = client.post(f"/o/{org.slug}/settings/teams/add/", {"name": "Data"}, follow=True)
    assert "exists already" in response.content.decode()
    with tenant_scope(org):
        assert Team.objects.filter(slug="data").count() == 1


def test_dashboard_and_settings_show_the_organization(org, owner, team):
    client = client_for(owner)
    page = client.get(f"/o/{org.slug}/").content.decode()
    assert "Acme Corp" in page and "Recent activity" in page
    settings_page = client.get(f"/o/{org.slug}/settings/").content.decode()
    assert owner.email in settings_page and "Platform" in settings_page


def test_viewer_dashboard_hides_the_audit_panel(org, viewer):
    page = client_for(viewer).get(f"/o/{org.slug}/").content.decode()
    assert "Recent activity" not in page
