"""An admin invites; the user sees nothing of the organization, nor it of them, until they
accept. Only an owner makes owners."""

import pytest
from django.test import Client

from accounts.models import Membership
from audit.models import AuditEvent
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invitee():
    return UserFactory(email="newcomer@example.com")


def _invite(client, org, email, role="viewer"):
    return client.post(
        f"/o/{org.slug}/settings/members/add/", {"email": email, "role": role}, follow=True
    )


def _pending(org, user):
    with all_tenants():
        return Membership.objects.get(organization=org, user=user)


def test_an_invited_user_has_no_access_until_they_accept(org, admin, invitee, password):
    page = _invite(client_for(admin), org, invitee.email).content.decode()
    assert "invited as viewer" in page
    client = client_for(invitee)
    assert client.get(f"/o/{org.slug}/").status_code == 404
    assert client.get(f"/api/v1/o/{org.slug}/").status_code == 404
    home = client.get("/").content.decode()
    assert "Invitations" in home and "Acme Corp" in home and admin.email in home

    invitation = _pending(org, invitee)
    response = client.post(f"/invitations/{invitation.pk}/accept/")
    assert response.status_code == 302 and response["Location"] == f"/o/{org.slug}/"
    assert client.get(f"/o/{org.slug}/").status_code == 200
    with tenant_scope(org):
        actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-2:] == ["org.member_add", "org.member_accept"]


def test_the_organization_sees_no_sign_in_of_a_user_who_has_not_accepted(
    org, admin, invitee, password
):

    _invite(client_for(admin), org, invitee.email)
    Client().post("/accounts/login/", {"login": invitee.email, "password": password})
    signed_in = AuditEvent.objects.filter(action="auth.login", actor_label=invitee.email)
    with tenant_scope(org):
        assert not signed_in.exists()
    with all_tenants():
        assert signed_in.filter(organization=None).exists()


def test_declining_removes_the_invitation(org, admin, invitee):
    _invite(client_for(admin), org, invitee.email)
    invitation = _pending(org, invitee)
    client_for(invitee).post(f"/invitations/{invitation.pk}/decline/")
    with all_tenants():
        assert not Membership.objects.filter(pk=invitation.pk).exists()
    with tenant_scope(org):
        assert AuditEvent.objects.filter(action="org.member_decline").count() == 1


def test_nobody_answers_someone_elses_invitation(org, admin, invitee, viewer):
    _invite(client_for(admin), org, invitee.email)
    invitation = _pending(org, invitee)
    for answer in ("accept", "decline"):
        assert client_for(viewer).post(f"/invitations/{invitation.pk}/{answer}/").status_code == 404
    assert client_for(invitee).post(f"/invitations/{invitation.pk}/steal/").status_code == 404
    assert _pending(org, invitee).accepted_at is None


def test_only_an_owner_invites_an_owner(org, admin, owner, invitee):
    page = _invite(client_for(admin), org, invitee.email, role="owner").content.decode()
    assert "only an owner can grant the owner role" in page
    with all_tenants():
        assert not Membership.objects.filter(user=invitee).exists()
    _invite(client_for(owner), org, invitee.email, role="owner")
    assert _pending(org, invitee).role == "owner"


def test_a_member_of_another_org_cannot_be_targeted_by_id(org, owner, other_org, outsider):
    with all_tenants():
        theirs = Membership.objects.get(organization=other_org, user=outsider)
    client = client_for(owner)
    assert (
        client.post(
            f"/o/{org.slug}/settings/members/{theirs.pk}/role/", {"role": "viewer"}
        ).status_code
        == 404
    )
    assert client.post(f"/o/{org.slug}/settings/members/{theirs.pk}/remove/").status_code == 404
    with all_tenants():
        assert Membership.objects.get(pk=theirs.pk).role == "owner"


def test_bad_ids_in_team_member_forms_are_refused_without_error(org, owner, team, outsider):
    client = client_for(owner)
    for value in ("not-a-number", str(outsider.pk), "99999999999999999999"):
        response = client.post(
            f"/o/{org.slug}/teams/{team.slug}/members/add/", {"user": value}, follow=True
        )
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()
    assert not team.memberships.exists()
