"""Exemptions: requested with a justification, approved by an admin other than the requester,
exempted findings stay exempted while failing, and expiry reopens them (beat and read time)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from policies import evaluation, services
from policies.models import Exemption, Finding
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for
from tests.policies.test_evaluation import OWNER
from tests.policies.test_rules import make_resources

pytestmark = pytest.mark.django_db

FUTURE = (timezone.now() + timedelta(days=30)).date().isoformat()


@pytest.fixture
def failing(org, team, editor):
    """Three resources failing owner-required: two in the team's account, one elsewhere."""
    from inventory import services as inventory_services
    from inventory.models import AwsAccount
    from tests.factories import TeamMembershipFactory

    make_resources(org, "111111111111", [{}, {"owner": "x"}])
    make_resources(org, "999999999999", [{}])
    TeamMembershipFactory(organization=org, team=team, user=editor)
    with tenant_scope(org):
        inventory_services.grant_account(AwsAccount.objects.get(account_id="111111111111"), team)
        services.create_rule(org, OWNER)
        # By resource, not by id: the order the evaluation inserts them in is the plan's.
        return list(
            Finding.objects.order_by("resource__account__account_id", "resource__resource_id")
        )


def statuses(org):
    with tenant_scope(org):
        return sorted(Finding.objects.values_list("status", flat=True))


def actions(org):
    with tenant_scope(org):
        return list(
            AuditEvent.objects.filter(action__startswith="policy.exemption")
            .order_by("seq")
            .values_list("action", "actor_label")
        )


def only_exemption(org):
    with tenant_scope(org):
        return Exemption.objects.get()


def test_an_editor_requests_and_another_admin_approves(org, failing, editor, admin, owner):
    client = client_for(editor)
    response = client.post(
        f"/o/{org.slug}/findings/exemptions/",
        {"finding": [failing[0].pk], "justification": "legacy", "expires_at": FUTURE},
    )
    assert response.status_code == 302
    exemption = only_exemption(org)
    assert (exemption.status, exemption.finding_count) == ("pending", 1)
    assert statuses(org) == ["open", "open", "open"]
    forbidden = client.post(f"/o/{org.slug}/findings/exemptions/{exemption.pk}/approve/")
    assert forbidden.status_code == 403
    client_for(admin).post(f"/o/{org.slug}/findings/exemptions/{exemption.pk}/approve/")
    assert statuses(org) == ["exempted", "open", "open"]
    assert only_exemption(org).decided_by_label == admin.email
    assert actions(org) == [
        ("policy.exemption_request", editor.email),
        ("policy.exemption_approve", admin.email),
    ]
    with tenant_scope(org):  # still failing: an evaluation leaves it exempted
        evaluation.evaluate_organization(org)
    assert statuses(org) == ["exempted", "open", "open"]


def test_the_requester_cannot_approve_their_own(org, failing, admin, owner):
    api = f"/api/v1/o/{org.slug}/policies/exemptions/"
    created = client_for(admin).post(
        api,
        {"filters": {"rule": "owner-required"}, "justification": "migration",
         "expires_at": FUTURE + "T00:00:00Z"},
        content_type="application/json",
    )  # fmt: skip
    assert created.status_code == 201 and created.json()["finding_count"] == 3
    pk = created.json()["id"]
    own = client_for(admin).post(f"{api}{pk}/approve/")
    assert own.status_code == 400 and "requester" in str(own.json()["errors"])
    assert only_exemption(org).status == "pending"
    approved = client_for(owner).post(f"{api}{pk}/approve/")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert statuses(org) == ["exempted"] * 3


def test_a_bulk_request_only_takes_findings_the_member_may_see(org, failing, editor, admin):
    client_for(editor).post(
        f"/o/{org.slug}/findings/exemptions/",
        {"scope": "filtered", "rule": "owner-required", "justification": "x", "expires_at": FUTURE},
    )
    exemption = only_exemption(org)
    assert exemption.finding_count == 2
    with tenant_scope(org):
        accounts = set(exemption.findings.values_list("account__account_id", flat=True))
    assert accounts == {"111111111111"}


def test_rejected_requests_exempt_nothing(org, failing, editor, admin):
    client_for(editor).post(
        f"/o/{org.slug}/findings/exemptions/",
        {"finding": [f.pk for f in failing[:2]], "justification": "x", "expires_at": FUTURE},
    )
    pk = only_exemption(org).pk
    client_for(admin).post(f"/o/{org.slug}/findings/exemptions/{pk}/reject/")
    assert only_exemption(org).status == "rejected"
    assert statuses(org) == ["open"] * 3
    again = client_for(admin).post(f"/api/v1/o/{org.slug}/policies/exemptions/{pk}/approve/")
    assert again.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"justification": " ", "expires_at": FUTURE},
        {"justification": "x", "expires_at": "2001-01-01"},
        {"justification": "x", "expires_at": "soon"},
    ],
)
def test_a_request_needs_a_justification_and_a_future_expiry(org, failing, editor, body):
    response = client_for(editor).post(
        f"/o/{org.slug}/findings/exemptions/", {"finding": [failing[0].pk], **body}
    )
    assert response.status_code == 302
    with tenant_scope(org):
        assert not Exemption.objects.exists()
    assert actions(org) == []


def _approved_then_expired(org, failing, editor, admin):
    client_for(editor).post(
        f"/o/{org.slug}/findings/exemptions/",
        {"finding": [failing[0].pk], "justification": "x", "expires_at": FUTURE},
    )
    pk = only_exemption(org).pk
    client_for(admin).post(f"/o/{org.slug}/findings/exemptions/{pk}/approve/")
    with tenant_scope(org):
        Exemption.objects.filter(pk=pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def test_expiry_reopens_findings_when_read(org, failing, editor, admin, viewer):
    _approved_then_expired(org, failing, editor, admin)
    assert statuses(org) == ["exempted", "open", "open"]
    client_for(viewer).get(f"/api/v1/o/{org.slug}/policies/findings/")
    assert statuses(org) == ["open", "open", "open"]
    assert only_exemption(org).status == "expired"
    assert actions(org)[-1] == ("policy.exemption_expire", "policies.expire_exemptions")


def test_the_daily_task_expires_exemptions(org, failing, editor, admin):
    from policies.tasks import expire_exemptions

    _approved_then_expired(org, failing, editor, admin)
    assert expire_exemptions() == 1
    assert statuses(org) == ["open", "open", "open"]
    assert expire_exemptions() == 0


def test_another_organizations_exemption_is_404(org, other_org, failing, admin, outsider):
    make_resources(other_org, "222222222222", [{}])
    with tenant_scope(other_org):
        services.create_rule(other_org, OWNER)
    client_for(outsider).post(
        f"/api/v1/o/{other_org.slug}/policies/exemptions/",
        {"filters": {}, "justification": "theirs", "expires_at": FUTURE + "T00:00:00Z"},
        content_type="application/json",
    )
    with tenant_scope(other_org):
        theirs = Exemption.objects.get()
    client = client_for(admin)
    assert client.post(f"/o/{org.slug}/findings/exemptions/{theirs.pk}/approve/").status_code == 404
    api = client.post(f"/api/v1/o/{org.slug}/policies/exemptions/{theirs.pk}/approve/")
    assert api.status_code == 404
    assert "theirs" not in client.get(f"/o/{org.slug}/findings/exemptions/").content.decode()
    listed = client.get(f"/api/v1/o/{org.slug}/policies/findings/").json()
    assert {f["account_id"] for f in listed["results"]} == {"111111111111", "999999999999"}
    with tenant_scope(other_org):
        assert Exemption.objects.get().status == "pending"


def test_editors_see_only_exemptions_touching_their_teams_accounts(org, failing, editor, admin):
    with tenant_scope(org):
        hidden = list(
            Finding.objects.filter(account__account_id="999999999999").values_list("pk", flat=True)
        )
    client_for(admin).post(
        f"/o/{org.slug}/findings/exemptions/",
        {"finding": hidden, "justification": "other team's secret", "expires_at": FUTURE},
    )
    page = client_for(editor).get(f"/o/{org.slug}/findings/exemptions/").content.decode()
    assert "other team&#x27;s secret" not in page and "No exemptions." in page
    api = client_for(editor).get(f"/api/v1/o/{org.slug}/policies/exemptions/").json()
    assert api["count"] == 0
    assert client_for(admin).get(f"/api/v1/o/{org.slug}/policies/exemptions/").json()["count"] == 1


# --- separation of duties between principals --------------------------------------------------

API_BODY = {
    "filters": {"rule": "owner-required"},
    "justification": "migration",
    "expires_at": FUTURE + "T00:00:00Z",
}


def _api(org, tail=""):
    return f"/api/v1/o/{org.slug}/policies/exemptions/{tail}"


def _bearer(secret):
    from django.test import Client

    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def _personal_token(org, user):
    from accounts import tokens
    from accounts.models import Membership

    with tenant_scope(org):
        membership = Membership.objects.get(user=user)
        return tokens.create_personal_token(membership, name="script", scope="write")[1]


def _service_account(org, by, role="admin"):
    from accounts import tokens

    with tenant_scope(org):
        return tokens.create_service_account(org, name=f"robot-{role}", role=role, by=by)


def _service_account_token(org, account, by, name="ci"):
    from accounts import tokens

    with tenant_scope(org):
        return tokens.create_service_account_token(account, name=name, scope="write", by=by)[1]


def _request(client, org):
    created = client.post(_api(org), API_BODY, content_type="application/json")
    assert created.status_code == 201, created.content
    return created.json()["id"]


@pytest.mark.parametrize("decision", ["approve", "reject"])
@pytest.mark.parametrize("requested_with", ["session", "token"])
def test_a_person_cannot_decide_their_own_request_with_their_other_credential(
    org, failing, admin, owner, requested_with, decision
):
    session, token = client_for(admin), _bearer(_personal_token(org, admin))
    requester, decider = (session, token) if requested_with == "session" else (token, session)
    pk = _request(requester, org)
    own = decider.post(_api(org, f"{pk}/{decision}/"))
    assert own.status_code == 400 and "requester" in str(own.json()["errors"])
    assert only_exemption(org).status == "pending"
    assert statuses(org) == ["open"] * 3
    assert only_exemption(org).requested_by_principal == f"user:{admin.pk}"


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_service_account_cannot_decide_its_own_request_with_another_token(
    org, failing, admin, decision
):
    account = _service_account(org, admin)
    first = _bearer(_service_account_token(org, account, admin, "first"))
    second = _bearer(_service_account_token(org, account, admin, "second"))
    pk = _request(first, org)
    for client in (first, second):
        own = client.post(_api(org, f"{pk}/{decision}/"))
        assert own.status_code == 400 and "requester" in str(own.json()["errors"])
    exemption = only_exemption(org)
    assert exemption.status == "pending" and statuses(org) == ["open"] * 3
    assert exemption.requested_by_principal == f"service_account:{account.pk}"
    # Another principal, a person who may manage, decides it.
    assert client_for(admin).post(_api(org, f"{pk}/approve/")).status_code == 200
    assert statuses(org) == ["exempted"] * 3


def test_a_service_account_approves_what_a_person_requested_when_its_role_allows(
    org, failing, admin
):
    pk = _request(client_for(admin), org)
    viewer_account = _service_account(org, admin, role="viewer")
    refused = _bearer(_service_account_token(org, viewer_account, admin)).post(
        _api(org, f"{pk}/approve/")
    )
    assert refused.status_code == 403
    account = _service_account(org, admin, role="admin")
    approved = _bearer(_service_account_token(org, account, admin)).post(
        _api(org, f"{pk}/approve/")
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert statuses(org) == ["exempted"] * 3
    exemption = only_exemption(org)
    assert exemption.requested_by_principal == f"user:{admin.pk}"
    assert exemption.decided_by_principal == f"service_account:{account.pk}"
    assert exemption.decided_by_label.startswith("service account robot-admin via token")


def test_existing_requests_get_their_principal_from_the_audit_log(org, failing, admin, owner):
    """Migration 0008 fills in the principal of requests made before it, a service account's
    from the token its audit event names; a request whose requester is unknown is left to a
    person."""
    import importlib

    from django.apps import apps

    migration = importlib.import_module("policies.migrations.0008_exemption_requester_principal")
    account = _service_account(org, admin)
    robot = _bearer(_service_account_token(org, account, admin))
    pk = _request(robot, org)
    with tenant_scope(org):
        Exemption.objects.filter(pk=pk).update(requested_by_principal="")
    unknown = robot.post(_api(org, f"{pk}/approve/"))  # nothing recorded: not a robot's call
    assert unknown.status_code == 400 and only_exemption(org).status == "pending"
    from tagsense.tenancy.db import all_tenants

    with all_tenants():  # migrate runs as the tables' owner, whom row-level security does not bind
        migration.fill_principals(apps, None)
    assert only_exemption(org).requested_by_principal == f"service_account:{account.pk}"
    assert robot.post(_api(org, f"{pk}/approve/")).status_code == 400
    assert client_for(owner).post(_api(org, f"{pk}/approve/")).status_code == 200
