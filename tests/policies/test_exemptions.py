"""Exemptions: requested with a justification, approved by an admin other than the requester,
exempted findings stay exempted while failing, and expiry reopens them (beat and read time)."""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import tokens
from accounts.models import Membership
from audit.models import AuditEvent
from inventory import services as inventory_services
from inventory.models import AwsAccount
from policies import evaluation, services
from policies.models import Exemption, Finding
from policies.tasks import expire_exemptions
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for
from tests.factories import TeamMembershipFactory
from tests.policies.test_evaluation import OWNER
from tests.policies.test_rules import make_resources

pytestmark = pytest.mark.django_db

FUTURE = (timezone.now() + timedelta(days=30)).date().isoformat()


@pytest.fixture
def failing(org, team, editor):
    """Three resources failing owner-required: two in the team's account, one elsewhere."""

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


def test_expiry_reopens_findings_when_read(org, failing, editor, admin, owner):
    """Read time: the lapsed exemption's finding reads as open and the exemption as expired,
    with nothing written (the daily task writes it down: the next test)."""
    _approved_then_expired(org, failing, editor, admin)
    assert statuses(org) == ["exempted", "open", "open"]
    client = client_for(owner)  # sees every account
    listed = client.get(f"/api/v1/o/{org.slug}/policies/findings/").json()["results"]
    assert sorted(f["status"] for f in listed) == ["open", "open", "open"]
    [exemption] = client.get(f"/api/v1/o/{org.slug}/policies/exemptions/").json()["results"]
    assert exemption["status"] == "expired"
    assert statuses(org) == ["exempted", "open", "open"]  # stored as it was
    assert only_exemption(org).status == "approved"
    assert actions(org)[-1] == ("policy.exemption_approve", admin.email)


def test_a_request_after_expiry_writes_the_expiry_down_first(org, failing, editor, admin):
    """A request is a write: the lapsed exemption is expired (audited) before the request takes
    its reopened finding, which then stays open while the new request is pending."""
    _approved_then_expired(org, failing, editor, admin)
    response = client_for(editor).post(
        f"/o/{org.slug}/findings/exemptions/",
        {"finding": [failing[0].pk], "justification": "again", "expires_at": FUTURE},
    )
    assert response.status_code == 302
    with tenant_scope(org):
        first, second = Exemption.objects.order_by("pk")
        finding = Finding.objects.select_related("exemption").get(pk=failing[0].pk)
    assert (first.status, second.status, second.finding_count) == ("expired", "pending", 1)
    assert (finding.exemption_id, finding.current_status) == (second.pk, "open")
    assert statuses(org) == ["open", "open", "open"]
    assert actions(org)[-2:] == [
        ("policy.exemption_expire", "policies.expire_exemptions"),
        ("policy.exemption_request", editor.email),
    ]


def _writes(queries) -> list[str]:
    """The statements that write, but for the session's own bookkeeping."""
    return [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().split(" ", 1)[0].upper() in ("INSERT", "UPDATE", "DELETE")
        and "django_session" not in q["sql"]
    ]


def test_reads_never_write_and_show_a_lapsed_exemption_as_not_in_force(org, failing, editor, admin):

    _approved_then_expired(org, failing, editor, admin)
    client = client_for(admin)
    api = f"/api/v1/o/{org.slug}/policies"
    pages = [
        f"/o/{org.slug}/",
        f"/o/{org.slug}/findings/",
        f"/o/{org.slug}/findings/?status=open",
        f"/o/{org.slug}/findings/?status=exempted",
        f"/o/{org.slug}/findings/resource/{failing[0].resource_id}/",
        f"/o/{org.slug}/findings/exemptions/",
        f"/o/{org.slug}/policies/frameworks/",
        f"{api}/findings/",
        f"{api}/findings/?status=open",
        f"{api}/findings/?status=exempted",
        f"{api}/findings/counts/",
        f"{api}/exemptions/",
        f"{api}/scores/",
    ]
    answers = {}
    for url in pages:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200, url
        assert _writes(queries.captured_queries) == [], url
        answers[url] = response
    assert statuses(org) == ["exempted", "open", "open"]  # nothing written down
    assert only_exemption(org).status == "approved"

    def results(url):
        return answers[f"{api}/{url}"].json()["results"]

    assert sorted(f["status"] for f in results("findings/")) == ["open", "open", "open"]
    assert len(results("findings/?status=open")) == 3
    assert results("findings/?status=exempted") == []
    [counts] = answers[f"{api}/findings/counts/"].json()
    assert (counts["open"], counts["exempted"], counts["resolved"]) == (3, 0, 0)
    [exemption] = results("exemptions/")
    assert exemption["status"] == "expired"
    score = answers[f"{api}/scores/"].json()["organization"]
    assert (score["compliant"], score["in_scope"]) == (0, 3)  # the exemption counts no more
    html = answers[f"/o/{org.slug}/findings/"].content.decode()
    assert "status-exempted" not in html and html.count('class="status status-open"') == 3
    only_exempted = answers[f"/o/{org.slug}/findings/?status=exempted"].content.decode()
    assert 'class="status status-' not in only_exempted  # no finding listed
    resource = answers[f"/o/{org.slug}/findings/resource/{failing[0].resource_id}/"]
    assert "status-open" in resource.content.decode()
    assert f"#{exemption['id']} expired" in resource.content.decode()
    listing = answers[f"/o/{org.slug}/findings/exemptions/"].content.decode()
    assert "status-expired" in listing and "status-approved" not in listing
    export = client.get(f"/o/{org.slug}/findings/?format=csv")  # audited: an export writes
    csv = b"".join(export.streaming_content).decode()
    assert '"exempted"' not in csv and csv.count(',"open",') == 3


def test_an_exemption_in_force_still_exempts(org, failing, editor, admin):
    """The read-time filter takes only lapsed exemptions: one in force exempts, in the lists,
    the counts and the scores."""
    client_for(editor).post(
        f"/o/{org.slug}/findings/exemptions/",
        {"finding": [failing[0].pk], "justification": "x", "expires_at": FUTURE},
    )
    client = client_for(admin)
    client.post(f"/o/{org.slug}/findings/exemptions/{only_exemption(org).pk}/approve/")
    api = f"/api/v1/o/{org.slug}/policies"
    [exempted] = client.get(f"{api}/findings/?status=exempted").json()["results"]
    assert (exempted["id"], exempted["status"]) == (failing[0].pk, "exempted")
    assert len(client.get(f"{api}/findings/?status=open").json()["results"]) == 2
    [counts] = client.get(f"{api}/findings/counts/").json()
    assert (counts["open"], counts["exempted"]) == (2, 1)
    score = client.get(f"{api}/scores/").json()["organization"]
    assert (score["compliant"], score["in_scope"]) == (1, 3)


def test_the_daily_task_expires_exemptions(org, failing, editor, admin):

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

    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


def _personal_token(org, user):

    with tenant_scope(org):
        membership = Membership.objects.get(user=user)
        return tokens.create_personal_token(membership, name="script", scope="write")[1]


def _service_account(org, by, role="admin"):

    with tenant_scope(org):
        return tokens.create_service_account(org, name=f"robot-{role}", role=role, by=by)


def _service_account_token(org, account, by, name="ci"):

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

    migration = importlib.import_module("policies.migrations.0008_exemption_requester_principal")
    account = _service_account(org, admin)
    robot = _bearer(_service_account_token(org, account, admin))
    pk = _request(robot, org)
    with tenant_scope(org):
        Exemption.objects.filter(pk=pk).update(requested_by_principal="")
    unknown = robot.post(_api(org, f"{pk}/approve/"))  # nothing recorded: not a robot's call
    assert unknown.status_code == 400 and only_exemption(org).status == "pending"

    with all_tenants():  # migrate runs as the tables' owner, whom row-level security does not bind
        migration.fill_principals(apps, None)
    assert only_exemption(org).requested_by_principal == f"service_account:{account.pk}"
    assert robot.post(_api(org, f"{pk}/approve/")).status_code == 400
    assert client_for(owner).post(_api(org, f"{pk}/approve/")).status_code == 200
