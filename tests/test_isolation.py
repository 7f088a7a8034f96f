"""Every route × anonymous, another organization, and every role; writes leave one event.

The world (two organizations, a user of each role, and one object of each kind in each) is built
once per module, inside a transaction rolled back at its end; each test runs in a savepoint of
it (pytest-django's django_db), as Django's setUpTestData does, so tests stay independent.
"""

import contextlib
import hashlib
import string
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts import tokens
from accounts.models import Membership, Organization, Team
from accounts.roles import Role, role_allows
from accounts.sso.config import add_group_mapping
from accounts.sso.metadata import IdPSettings
from accounts.sso.saml import configure_saml
from assistant import chat
from audit.models import AuditEvent
from evidence import keys as evidence_keys
from evidence import services as evidence_services
from evidence.models import EvidenceExport
from inventory import services as inventory_services
from inventory.models import AwsAccount, Resource, ScanRun, ScanUnit
from policies import exemptions, services
from policies.aws import imported
from policies.engine.spec import RuleSpec
from policies.models import Finding
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for, member_of
from tests.factories import (
    MembershipFactory,
    OrganizationFactory,
    TeamFactory,
    TeamMembershipFactory,
    UserFactory,
)
from tests.isolation import AWS_TAG_POLICY, ROUTE_IDS, ROUTES
from tests.oidc_idp import shared_discovery_issuer
from tests.saml_idp import shared_idp

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def module_world(django_db_setup, django_db_blocker):
    """The world of every route, built once per module and rolled back after its last test."""
    with django_db_blocker.unblock(), _rolled_back():
        yield _build_world()


@pytest.fixture
def world(module_world, aws_env, settings):
    """The module's world, for one test: its own copy of the namespace (a test may repoint
    `my_token_pk`), the database rows rolled back to the savepoint after the test."""
    settings.OIDC_ALLOW_INSECURE_LOCALHOST = True  # the discovery document is on 127.0.0.1
    return SimpleNamespace(**vars(module_world))


@contextlib.contextmanager
def _rolled_back():
    """A transaction around the module that is never committed. Marked as a test case's, as
    Django's TestCase marks its class-wide one, so a durable atomic block inside stays allowed."""
    atomic = transaction.atomic()
    atomic._from_testcase = True
    atomic.__enter__()
    try:
        yield
    finally:
        transaction.set_rollback(True)
        atomic.__exit__(None, None, None)


def _build_world():
    # The people and teams of tests/conftest.py's fixtures, built here once.
    org = OrganizationFactory(name="Acme Corp", slug="acme")
    other_org = OrganizationFactory(name="Globex", slug="globex")
    users_by_role = {
        role: member_of(org, role, f"{role}@acme.example")
        for role in (Role.OWNER, Role.ADMIN, Role.EDITOR, Role.AUDITOR, Role.VIEWER)
    }
    outsider = member_of(other_org, Role.OWNER, "owner@globex.example")
    team = TeamFactory(organization=org, name="Platform", slug="platform")
    other_team = TeamFactory(organization=other_org, name="Globex Secret Team", slug="secret")
    member = MembershipFactory(
        organization=org, role=Role.VIEWER, user=UserFactory(email="target@acme.example")
    )
    team_member = TeamMembershipFactory(organization=org, team=team, user=users_by_role["viewer"])
    TeamMembershipFactory(organization=org, team=team, user=users_by_role["editor"])
    data_team = TeamFactory(organization=org, name="Data", slug="data")
    stranger = UserFactory(email="stranger@example.com")
    account, resource, scan = _inventory(org, "123456789012")
    token_pks, sa_pk, sa_token_pk = _tokens(org, users_by_role)
    answer_pks = _answers(org, users_by_role)
    sso_mapping = _sso(org, team)
    their_account, their_resource, their_scan = _inventory(other_org, "123456789012")
    # An account of the organization held by another team: editors and viewers of `team` (all
    # the world's editors and viewers) must not see it.
    hidden_account, hidden_resource, hidden_scan = _inventory(org, "999999999999", "hidden")
    _grant(account, team)
    _grant(hidden_account, data_team)
    rule = _rule(org, "owner-tagged")
    their_rule = _rule(other_org, "their-rule")
    aws_policy = _aws_policy(org, "acme-tag-policy")
    their_aws_policy = _aws_policy(other_org, "globex-tag-policy")
    # An account with a tag policy of its own, for the effective-policy routes (with none
    # attached anywhere above it, AWS answers EffectivePolicyNotFoundException, a 404); no
    # write route touches it, so its generated rules add no event to theirs.
    effective_account = _inventory(org, "777777777777", "effective")[0]
    _grant(effective_account, team)
    _aws_policy(org, "acme-account-policy", target="777777777777")
    finding_pk, exemption_pk = _exemption(org, users_by_role["editor"], resource)
    # The other organization's own objects of every kind a route names (THEIRS below).
    _, their_exemption_pk = _exemption(other_org, outsider, their_resource)
    their_token_pks, their_sa_pk, their_sa_token_pk = _tokens(other_org, {Role.OWNER: outsider})
    their_answer_pk = _answers(other_org, {Role.OWNER: outsider})[Role.OWNER]
    their_sso_mapping = _sso(other_org, other_team)
    their_team_member = TeamMembershipFactory(
        organization=other_org, team=other_team, user=outsider
    )
    framework, control_pk = _framework(org, "Baseline")
    their_framework, their_control_pk = _framework(other_org, "Their baseline")
    key_token, their_key_token = _evidence_key(org), _evidence_key(other_org)
    export_uuid = _evidence_package(org, framework)
    their_export_uuid = _evidence_package(other_org, their_framework)
    return SimpleNamespace(
        key_token=key_token,
        their_key_token=their_key_token,
        export_uuid=export_uuid,
        their_export_uuid=their_export_uuid,
        framework=framework,
        control_pk=control_pk,
        their_framework=their_framework,
        their_control_pk=their_control_pk,
        finding_pk=finding_pk,
        exemption_pk=exemption_pk,
        rule_id=rule.rule_id,
        their_rule_id=their_rule.rule_id,
        aws_policy_pk=aws_policy.pk,
        their_aws_policy_pk=their_aws_policy.pk,
        account_pk=account.pk,
        resource_pk=resource.pk,
        scan_pk=scan.pk,
        team_pk=team.pk,
        data_team_pk=data_team.pk,
        hidden_account_pk=hidden_account.pk,
        hidden_resource_pk=hidden_resource.pk,
        hidden_scan_pk=hidden_scan.pk,
        their_account_pk=their_account.pk,
        their_resource_pk=their_resource.pk,
        their_scan_pk=their_scan.pk,
        org=org.slug,
        other_org=other_org.slug,
        team=team.slug,
        other_team=other_team.slug,
        member_pk=member.pk,
        owner_member_pk=_membership_pk(org, users_by_role["owner"]),
        sso_mapping_pk=sso_mapping.pk,
        idp_certificate=shared_idp().cert_pem,
        oidc_issuer=shared_discovery_issuer(),
        member_user_pk=member.user_id,
        team_member_pk=team_member.pk,
        stranger_email=stranger.email,
        users=users_by_role,
        outsider=outsider,
        organization=org,
        other_organization=other_org,
        their_member_pk=_membership_pk(other_org, outsider),
        their_exemption_pk=their_exemption_pk,
        their_token_pk=their_token_pks[Role.OWNER],
        their_sa_pk=their_sa_pk,
        their_sa_token_pk=their_sa_token_pk,
        their_answer_pk=their_answer_pk,
        their_sso_mapping_pk=their_sso_mapping.pk,
        their_team_member_pk=their_team_member.pk,
        token_pks=token_pks,  # each role's own personal token
        my_token_pk=token_pks[Role.VIEWER],  # test_each_role points it at the caller's
        sa_pk=sa_pk,
        sa_token_pk=sa_token_pk,
        answer_pks=answer_pks,  # each role's own pending assistant answer
        my_answer_pk=answer_pks[Role.VIEWER],  # test_each_role points it at the caller's
    )


def _rule(organization, rule_id):

    with tenant_scope(organization):
        return services.create_rule(
            organization,
            RuleSpec(id=rule_id, title="CostCenter", check="required_key", key="CostCenter"),
        )


def _aws_policy(organization, name, target="555555555555"):
    """An AWS tag policy attached to an account, by default one the organization has not
    registered, so its writes generate no rules (each route leaves exactly its one event)."""

    with tenant_scope(organization):
        return imported.import_tag_policy(
            organization,
            name=name,
            document=AWS_TAG_POLICY,
            target_type="account",
            target=target,
        )


def _framework(organization, name):
    """A custom framework with one control citing no rule (routes map one to it)."""

    with tenant_scope(organization):
        framework = services.create_framework(organization, name, "IB-1 | Owners are named")
        return framework.slug, framework.controls.get().pk


def _exemption(organization, requester, resource):
    """A pending exemption of the finding on `resource`, requested by `requester`."""

    with tenant_scope(organization):
        finding = Finding.objects.get(resource=resource)
        exemption = exemptions.request(
            Membership.objects.get(user=requester),
            Finding.objects.filter(pk=finding.pk),
            justification="legacy VPC",
            expires_at=timezone.now() + timedelta(days=30),
        )
    return finding.pk, exemption.pk


def _evidence_key(organization):
    """The organization's evidence signing key (a retired one and the active one), as its PEM
    address names it."""

    with tenant_scope(organization):
        evidence_keys.active_key(organization)
        return evidence_keys.url_token(evidence_keys.rotate(organization).fingerprint)


def _evidence_package(organization, framework):
    """A ready evidence package of the organization, its file in place (evidence.services)."""

    body = b"PK\x05\x06" + bytes(18)  # an empty ZIP
    now = timezone.now()
    with tenant_scope(organization):
        export = EvidenceExport.objects.create(
            organization=organization,
            status=EvidenceExport.READY,
            scope={"frameworks": [framework], "controls": [], "teams": [], "accounts": []},
            period_start=now - timedelta(days=7),
            period_end=now,
            requested_at=now,
            finished_at=now,
            progress=100,
            size=len(body),
            sha256=hashlib.sha256(body).hexdigest(),
            expires_at=now + timedelta(days=7),
        )
    path = evidence_services.package_path(export)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return export.uuid


def _membership_pk(organization, user):

    with tenant_scope(organization):
        return Membership.objects.for_org(organization).get(user=user).pk


def _sso(organization, team):
    """The organization's IdP and one group mapping, for the single sign-on routes."""

    idp = shared_idp()
    with tenant_scope(organization):
        configure_saml(
            organization,
            IdPSettings(entity_id=idp.entity_id, sso_url=idp.sso_url, certificates=[idp.cert_pem]),
        )
        return add_group_mapping(organization, group="Engineering", team=team)


def _tokens(organization, users_by_role):

    with tenant_scope(organization):
        token_pks = {
            role: tokens.create_personal_token(
                Membership.objects.get(user=user), name=f"{role} token", scope="read"
            )[0].pk
            for role, user in users_by_role.items()
        }
        account = tokens.create_service_account(
            organization, name="ci", role="viewer", by=users_by_role[Role.OWNER]
        )
        sa_token, _ = tokens.create_service_account_token(
            account, name="ci token", scope="ci", by=users_by_role[Role.OWNER]
        )
    return token_pks, account.pk, sa_token.pk


def _answers(organization, users_by_role):
    """Each role's own pending answer of the assistant, for the stream and stop routes."""

    with tenant_scope(organization):
        return {
            role: chat.ask(Membership.objects.get(user=user), "Which resources are untagged?")[1].pk
            for role, user in users_by_role.items()
        }


def _grant(account, team):
    with tenant_scope(account.organization):
        assert inventory_services.grant_account(account, team)


def _inventory(organization, account_id, label="network"):
    """An account with one resource and one scan (one unit on the account)."""

    now = timezone.now()
    with tenant_scope(organization):
        account = AwsAccount.objects.create(
            organization=organization, account_id=account_id, regions=["eu-west-1"]
        )
        resource = Resource.objects.create(
            organization=organization,
            account=account,
            region="eu-west-1",
            arn=f"arn:aws:ec2:eu-west-1:{account_id}:vpc/vpc-{organization.slug}",
            resource_type="ec2:vpc",
            resource_id=f"vpc-{organization.slug}",
            name=f"{organization.name} {label}",
            tags={"Owner": organization.slug},
            fingerprint="x",
            first_seen=now,
            last_written=now,
        )
        scan = ScanRun.objects.create(organization=organization, started_by="test")
        ScanUnit.objects.create(
            organization=organization,
            scan=scan,
            account=account,
            region="eu-west-1",
            resource_type="ec2:vpc",
            status=ScanUnit.FAILED,
            error_code=f"Denied{account_id}",
        )
    return account, resource, scan


def _call(client, route, world, org_slug=None):
    data = route.data(world) if route.data else {}
    if route.api and route.method != "get":
        return getattr(client, route.method)(
            route.url(world, org_slug), data, content_type="application/json"
        )
    return getattr(client, route.method)(route.url(world, org_slug), data)


def _event_count(organization):
    with tenant_scope(organization):
        return AuditEvent.objects.count()


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_anonymous_is_sent_to_login_or_gets_401(route, world):
    response = _call(Client(), route, world)
    if route.api:
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
    else:
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_another_organization_is_404_like_a_missing_one(route, world):
    client = client_for(world.outsider)  # owner of other_org, nothing in org
    before = _event_count(world.organization)
    forbidden = _call(client, route, world)
    missing = _call(client, route, world, org_slug="no-such-org")
    assert forbidden.status_code == missing.status_code == 404
    if route.api:
        assert forbidden.json() == missing.json()
    assert _event_count(world.organization) == before


@pytest.mark.parametrize("role", Role.values)
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_each_role_gets_exactly_what_it_may(route, role, world):
    client = client_for(world.users[role])
    world.my_token_pk = world.token_pks[role]
    world.my_answer_pk = world.answer_pks[role]
    before = _event_count(world.organization)
    response = _call(client, route, world)
    if role_allows(role, route.action):
        assert response.status_code in route.ok_status, response.content[:300]
        if route.audit:
            with tenant_scope(world.organization):
                new = list(AuditEvent.objects.order_by("seq")[before:])
            assert [e.action for e in new] == [route.audit]
            assert new[0].actor_label == world.users[role].email
        else:
            assert _event_count(world.organization) == before
    else:
        assert response.status_code == 403
        # Nothing changed; the refusal itself is audited, once.
        with tenant_scope(world.organization):
            new = list(AuditEvent.objects.order_by("seq")[before:])
        assert [(e.action, e.actor_label) for e in new] == [
            ("org.access_denied", world.users[role].email)
        ]


def test_another_organizations_object_under_my_slug_is_404(world):
    client = client_for(world.users["owner"])
    assert client.get(f"/o/{world.org}/teams/{world.other_team}/").status_code == 404
    for path in (
        f"inventory/accounts/{world.their_account_pk}/",
        f"inventory/resources/{world.their_resource_pk}/",
        f"inventory/resources/{world.their_resource_pk}/graph.json",
        f"inventory/scans/{world.their_scan_pk}/",
        f"policies/aws/{world.their_aws_policy_pk}/",
        f"policies/frameworks/{world.their_framework}/",
        f"policies/frameworks/{world.their_framework}/controls/{world.their_control_pk}/",
        f"policies/frameworks/{world.framework}/controls/{world.their_control_pk}/",
    ):
        if path.startswith("policies/aws/"):  # the API's path differs from the page's
            api_path = f"policies/aws-tag-policies/{world.their_aws_policy_pk}/"
            assert client.get(f"/api/v1/o/{world.org}/{api_path}").status_code == 404
            assert client.get(f"/o/{world.org}/{path}").status_code == 404, path
            continue
        if "/controls/" not in path:
            assert client.get(f"/o/{world.org}/{path}").status_code == 404, path
        api = client.get(f"/api/v1/o/{world.org}/{path}")
        if "graph.json" not in path:
            assert api.status_code == 404, path
    assert (
        client.post(
            f"/o/{world.org}/inventory/accounts/{world.their_account_pk}/delete/"
        ).status_code
        == 404
    )
    response = client.post(f"/o/{world.org}/teams/{world.other_team}/delete/")
    assert response.status_code in (302, 404)
    with all_tenants():
        assert Team.objects.filter(slug=world.other_team).exists()


# For each placeholder naming one of the organization's objects, the world's object of the
# same kind in the other organization.
THEIRS = {
    "account_pk": "their_account_pk",
    "resource_pk": "their_resource_pk",
    "scan_pk": "their_scan_pk",
    "rule_id": "their_rule_id",
    "aws_policy_pk": "their_aws_policy_pk",
    "framework": "their_framework",
    "control_pk": "their_control_pk",
    "team": "other_team",
    "member_pk": "their_member_pk",
    "owner_member_pk": "their_member_pk",
    "exemption_pk": "their_exemption_pk",
    "sa_pk": "their_sa_pk",
    "sa_token_pk": "their_sa_token_pk",
    "my_token_pk": "their_token_pk",
    "sso_mapping_pk": "their_sso_mapping_pk",
    "team_member_pk": "their_team_member_pk",
    "my_answer_pk": "their_answer_pk",
    "key_token": "their_key_token",
    "export_uuid": "their_export_uuid",
}
# Placeholders the world has no other organization's object for (none now: every object a
# route names has one, so each is also checked by naming theirs under our slug).
OURS_ONLY: set[str] = set()


def _placeholders(path: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(path) if name} - {"org"}


# The routes that name an object in their path (api-trends names a framework in its query: a
# filter, answered like a missing framework's, with no points). A GET on a form's action is a
# 405 before any object is looked up, the same for every id: no answer to compare there.
OBJECT_ROUTES = [
    r for r in ROUTES if _placeholders(r.path.split("?")[0]) & set(THEIRS) and r.ok_status != (405,)
]


def test_every_placeholder_has_another_organizations_object_or_is_listed():
    named = set().union(*(_placeholders(r.path) for r in ROUTES))
    assert named - set(THEIRS) == OURS_ONLY


@pytest.mark.parametrize("route", OBJECT_ROUTES, ids=[r.name for r in OBJECT_ROUTES])
def test_another_organizations_object_under_my_slug_is_404_on_every_route(route, world):
    """The owner of `org`, naming the other organization's object under `org`'s slug: 404 (a
    GET may redirect to the object's page, which is the 404), and nothing is recorded in
    either organization."""
    client = client_for(world.users["owner"])
    theirs = SimpleNamespace(**{**vars(world), **{k: getattr(world, v) for k, v in THEIRS.items()}})
    before = _event_count(world.organization), _event_count(world.other_organization)
    response = _call(client, route, theirs)
    if route.method == "get" and response.status_code == 302:
        response = client.get(response["Location"])
    assert response.status_code == 404, response.content[:300]
    assert (_event_count(world.organization), _event_count(world.other_organization)) == before


def test_lists_never_show_another_organizations_rows(world):
    client = client_for(world.users["owner"])
    page = client.get(f"/o/{world.org}/settings/").content.decode()
    assert "Globex Secret Team" not in page
    assert "owner@globex.example" not in page
    inventory = client.get(f"/o/{world.org}/inventory/").content.decode()
    assert "Acme Corp network" in inventory and "Globex network" not in inventory
    for path in (
        "members/",
        "teams/",
        "audit-events/",
        "inventory/resources/",
        "inventory/accounts/",
        "inventory/scans/",
    ):
        body = client.get(f"/api/v1/o/{world.org}/{path}").content.decode()
        assert "globex" not in body.lower(), path
    orgs = client.get("/api/v1/organizations/").json()
    assert [o["slug"] for o in orgs] == [world.org]


TEAM_SCOPED = [Role.EDITOR, Role.VIEWER]
HIDDEN_PATHS = (
    "inventory/accounts/{hidden_account_pk}/",
    "inventory/resources/{hidden_resource_pk}/",
    "inventory/resources/{hidden_resource_pk}/graph.json",
    "inventory/scans/{hidden_scan_pk}/",
)


@pytest.mark.parametrize("role", Role.values)
def test_an_account_no_team_of_mine_holds_is_404_like_a_missing_one(role, world):
    """Editors and viewers see only their teams' accounts; everything under another account
    is a 404, by page and by API, with the same body as an id that does not exist."""
    client = client_for(world.users[role])
    for template in HIDDEN_PATHS:
        path = template.format(**vars(world))
        missing = template.format(hidden_account_pk=0, hidden_resource_pk=0, hidden_scan_pk=0)
        page = client.get(f"/o/{world.org}/{path}")
        expected = 404 if role in TEAM_SCOPED else 200
        assert page.status_code == expected, (role, path)
        if "graph.json" in path:
            continue
        api = client.get(f"/api/v1/o/{world.org}/{path}")
        assert api.status_code == expected, (role, path)
        if role in TEAM_SCOPED:
            assert api.json() == client.get(f"/api/v1/o/{world.org}/{missing}").json()
    graph = client.get(
        f"/api/v1/o/{world.org}/inventory/resources/{world.hidden_resource_pk}/blast-radius/"
    )
    assert graph.status_code == (404 if role in TEAM_SCOPED else 200)


@pytest.mark.parametrize("role", Role.values)
def test_lists_show_team_scoped_roles_only_their_teams_accounts(role, world):
    client = client_for(world.users[role])
    # Owners, admins and auditors who are in no team see everything by default.
    sees_hidden = role not in TEAM_SCOPED
    pages = {
        "inventory/": "Acme Corp hidden",
        "inventory/accounts/": "999999999999",
        "inventory/scans/": f"/scans/{world.hidden_scan_pk}/",
        "inventory/?format=csv": "999999999999",
    }
    for path, marker in pages.items():
        response = client.get(f"/o/{world.org}/{path}")
        body = b"".join(response.streaming_content) if response.streaming else response.content
        body = body.decode()
        assert "Acme Corp network" in body or "123456789012" in body or "/scans/" in body, path
        assert (marker in body) == sees_hidden, (role, path)
    for path in ("inventory/resources/", "inventory/accounts/", "inventory/scans/"):
        body = client.get(f"/api/v1/o/{world.org}/{path}").json()
        ids = {row["id"] for row in body.get("results", body)}
        hidden = {
            "inventory/resources/": world.hidden_resource_pk,
            "inventory/accounts/": world.hidden_account_pk,
            "inventory/scans/": world.hidden_scan_pk,
        }[path]
        visible = {
            "inventory/resources/": world.resource_pk,
            "inventory/accounts/": world.account_pk,
            "inventory/scans/": world.scan_pk,
        }[path]
        assert visible in ids, (role, path)
        assert (hidden in ids) == sees_hidden, (role, path)


API_ROUTES = [r for r in ROUTES if r.api]


def _bearer(organization, user, scope="write"):

    with tenant_scope(organization):
        _, secret = tokens.create_personal_token(
            Membership.objects.get(user=user), name="isolation", scope=scope
        )
    return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")


@pytest.mark.parametrize("route", API_ROUTES, ids=[r.name for r in API_ROUTES])
def test_another_organizations_token_is_refused_like_a_missing_organization(route, world):
    """With a bearer token instead of a session: another organization's token (its owner's,
    scope write) gets exactly what a missing organization gives, and changes nothing."""

    client = _bearer(Organization.objects.get(slug=world.other_org), world.outsider)
    before = _event_count(world.organization)
    forbidden = _call(client, route, world)
    missing = _call(client, route, world, org_slug="no-such-org")
    assert forbidden.status_code == missing.status_code
    assert forbidden.status_code in (401, 403, 404)
    assert forbidden.json() == missing.json()
    assert _event_count(world.organization) == before


@pytest.mark.parametrize("role", TEAM_SCOPED)
def test_a_team_scoped_members_token_sees_no_hidden_account(role, world):
    client = _bearer(world.organization, world.users[role], scope="read")
    for template in HIDDEN_PATHS:
        if "graph.json" in template:
            continue
        path = template.format(**vars(world))
        missing = template.format(hidden_account_pk=0, hidden_resource_pk=0, hidden_scan_pk=0)
        api = client.get(f"/api/v1/o/{world.org}/{path}")
        assert api.status_code == 404, (role, path)
        assert api.json() == client.get(f"/api/v1/o/{world.org}/{missing}").json()
    listed = client.get(f"/api/v1/o/{world.org}/inventory/accounts/").json()["results"]
    assert "999999999999" not in {a["account_id"] for a in listed}
