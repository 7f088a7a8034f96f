"""Team-scoped visibility as members notice it: a viewer sees their team's AWS accounts and
everything under them (pages, CSV, API, graph, dashboard), not another team's; admins and
auditors see everything and choose "My teams" or "All"; grants and revocations take effect at
once, are audited, and never cross organizations."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Membership
from accounts.roles import Role
from audit.models import AuditEvent
from inventory import services
from inventory.access import visible_accounts
from inventory.models import AccountTeamGrant, AwsAccount, Edge, Resource, ScanRun
from tagsense.tenancy.db import all_tenants, tenant_scope
from tests.conftest import client_for
from tests.factories import MembershipFactory, TeamFactory, TeamMembershipFactory, UserFactory

from .conftest import make_account

pytestmark = pytest.mark.django_db

A, B = "111111111111", "222222222222"


def _resource(org, account, name, **extra):
    now = timezone.now()
    return Resource.objects.create(
        organization=org,
        account=account,
        arn=f"arn:aws:ec2:eu-west-1:{account.account_id}:instance/{name}",
        region="eu-west-1",
        resource_type="ec2:instance",
        resource_id=name,
        name=name,
        tags=extra.get("tags", {}),
        fingerprint="x",
        first_seen=now,
        last_written=now,
    )


@pytest.fixture
def estate(org, viewer, aws_env):
    """Team A holds account A (one resource), team B holds account B (two). The viewer is in
    team A. Team A's resource `a-web` uses `b-db` (an edge across the two accounts)."""
    team_a = TeamFactory(organization=org, name="Team A", slug="team-a")
    team_b = TeamFactory(organization=org, name="Team B", slug="team-b")
    TeamMembershipFactory(organization=org, team=team_a, user=viewer)
    account_a = make_account(org, A, name="alpha-prod")
    account_b = make_account(org, B, name="bravo-prod")
    with tenant_scope(org):
        services.grant_account(account_a, team_a)
        services.grant_account(account_b, team_b)
        a_web = _resource(org, account_a, "a-web")
        b_db = _resource(org, account_b, "b-db")
        b_cache = _resource(org, account_b, "b-cache")
        Edge.objects.create(
            organization=org, source_arn=a_web.arn, kind="uses", target_arn=b_db.arn
        )
        Edge.objects.create(
            organization=org, source_arn=b_cache.arn, kind="uses", target_arn=a_web.arn
        )
        scan_b = ScanRun.objects.create(organization=org, started_by="test")
        scan_b.units.create(
            organization=org, account=account_b, region="eu-west-1", resource_type="ec2:instance"
        )
    return {
        "team_a": team_a,
        "team_b": team_b,
        "account_a": account_a,
        "account_b": account_b,
        "a_web": a_web,
        "b_db": b_db,
        "b_cache": b_cache,
        "scan_b": scan_b,
    }


def _csv(client, org):
    response = client.get(f"/o/{org.slug}/inventory/?format=csv&deleted=include")
    return b"".join(response.streaming_content).decode()


def test_a_viewer_sees_their_teams_account_and_nothing_of_another_teams(org, viewer, estate):
    client = client_for(viewer)
    accounts = client.get(f"/o/{org.slug}/inventory/accounts/").content.decode()
    assert "alpha-prod" in accounts and "bravo-prod" not in accounts
    page = client.get(f"/o/{org.slug}/inventory/").content.decode()
    assert "a-web" in page and "b-db" not in page and "b-cache" not in page
    assert "b-db" not in _csv(client, org) and "a-web" in _csv(client, org)
    api = client.get(f"/api/v1/o/{org.slug}/inventory/resources/").json()["results"]
    assert [r["name"] for r in api] == ["a-web"]
    api_accounts = client.get(f"/api/v1/o/{org.slug}/inventory/accounts/").json()
    assert [a["account_id"] for a in api_accounts.get("results", api_accounts)] == [A]
    dashboard = client.get(f"/o/{org.slug}/").context
    assert (dashboard["account_count"], dashboard["resource_count"]) == (1, 1)
    # Filtering by the other account's id shows nothing rather than its resources.
    assert "b-db" not in client.get(f"/o/{org.slug}/inventory/?account={B}").content.decode()
    for path in (
        f"inventory/accounts/{estate['account_b'].pk}/",
        f"inventory/resources/{estate['b_db'].pk}/",
        f"inventory/scans/{estate['scan_b'].pk}/",
    ):
        assert client.get(f"/o/{org.slug}/{path}").status_code == 404
        assert client.get(f"/api/v1/o/{org.slug}/{path}").status_code == 404


def test_the_graph_leaves_out_resources_of_accounts_the_viewer_cannot_see(org, viewer, estate):
    client = client_for(viewer)
    web = estate["a_web"]
    base = f"/api/v1/o/{org.slug}/inventory/resources/{web.pk}"
    hidden = {estate["b_db"].arn, estate["b_cache"].arn}
    for direction in ("dependents", "dependencies", "both"):
        hops = client.get(f"{base}/blast-radius/?direction={direction}").json()["resources"]
        assert not {h["arn"] for h in hops} & hidden, direction
    edges = client.get(f"{base}/neighbours/").json()["edges"]
    assert edges == []
    drawn = client.get(f"/o/{org.slug}/inventory/resources/{web.pk}/graph.json?depth=3").json()
    assert [n["data"]["id"] for n in drawn["nodes"]] == [web.arn]
    assert drawn["edges"] == []
    page = client.get(f"/o/{org.slug}/inventory/resources/{web.pk}/").content.decode()
    assert "b-db" not in page and estate["b_db"].arn not in page
    # The same queries for an admin show both neighbours.
    admin_hops = client_for(_admin(org)).get(f"{base}/blast-radius/?direction=both").json()
    assert {h["arn"] for h in admin_hops["resources"]} == hidden


def _admin(org, email="boss@acme.example", role=Role.ADMIN):
    return MembershipFactory(organization=org, role=role, user=UserFactory(email=email)).user


def test_an_admin_sees_everything_and_can_switch_to_my_teams(org, estate):
    admin = _admin(org)
    client = client_for(admin)
    # In no team: everything, with the switch on "All accounts".
    context = client.get(f"/o/{org.slug}/").context
    assert (context["account_count"], context["resource_count"]) == (2, 3)
    assert context["team_scope"]["scope"] == "all"
    TeamMembershipFactory(organization=org, team=estate["team_b"], user=admin)
    # In a team: the dashboard and lists default to the team's accounts.
    context = client.get(f"/o/{org.slug}/").context
    assert context["team_scope"]["scope"] == "mine"
    assert (context["account_count"], context["resource_count"]) == (1, 2)
    page = client.get(f"/o/{org.slug}/inventory/").content.decode()
    assert "b-db" in page and "a-web" not in page
    # "All" is remembered across pages until switched back.
    client.get(f"/o/{org.slug}/?teams=all")
    assert "a-web" in client.get(f"/o/{org.slug}/inventory/").content.decode()
    assert "a-web" in _csv(client, org)
    client.get(f"/o/{org.slug}/inventory/accounts/?teams=mine")
    assert "alpha-prod" not in client.get(f"/o/{org.slug}/inventory/accounts/").content.decode()
    # Objects outside their teams stay reachable by id whatever the switch says.
    assert client.get(f"/o/{org.slug}/inventory/resources/{estate['a_web'].pk}/").status_code == 200


def test_a_viewer_in_no_team_is_told_why_the_lists_are_empty(org, estate):
    loner = MembershipFactory(
        organization=org, role=Role.VIEWER, user=UserFactory(email="loner@acme.example")
    ).user
    client = client_for(loner)
    for path in ("", "inventory/", "inventory/accounts/", "inventory/scans/"):
        page = client.get(f"/o/{org.slug}/{path}").content.decode()
        assert "You are not in any team" in page, path
        assert "alpha-prod" not in page and "a-web" not in page
    assert client.get(f"/o/{org.slug}/").context["account_count"] == 0


def test_granting_shows_the_account_to_the_teams_viewers_and_revoking_hides_it(
    org, owner, viewer, estate
):
    admin_client, viewer_client = client_for(owner), client_for(viewer)
    account_b, team_a, team_b = estate["account_b"], estate["team_a"], estate["team_b"]
    b_db = f"/o/{org.slug}/inventory/resources/{estate['b_db'].pk}/"
    assert viewer_client.get(b_db).status_code == 404
    teams_url = f"/o/{org.slug}/inventory/accounts/{account_b.pk}/teams/"
    response = admin_client.post(teams_url, {"teams": [team_a.pk, team_b.pk]})
    assert response.status_code == 302
    assert viewer_client.get(b_db).status_code == 200
    assert "bravo-prod" in viewer_client.get(f"/o/{org.slug}/inventory/accounts/").content.decode()
    with tenant_scope(org):  # guardian agrees; its grant rows are tenant rows (RLS)
        assert viewer.has_perm("inventory.hold_awsaccount", account_b)
    team_page = viewer_client.get(f"/o/{org.slug}/teams/{team_a.slug}/").content.decode()
    assert "bravo-prod" in team_page and "alpha-prod" in team_page
    # Untick team A: the account is a 404 again for its viewer.
    admin_client.post(teams_url, {"teams": [team_b.pk]})
    assert viewer_client.get(b_db).status_code == 404
    with tenant_scope(org):
        events = list(
            AuditEvent.objects.filter(action__startswith="aws_account.team_").order_by("seq")
        )
    assert [(e.action, e.data["team"], e.actor_label) for e in events[-2:]] == [
        ("aws_account.team_grant", "team-a", owner.email),
        ("aws_account.team_revoke", "team-a", owner.email),
    ]


def test_leaving_the_team_or_deleting_it_takes_the_accounts_away(org, viewer, estate):

    client = client_for(viewer)
    a_web = f"/o/{org.slug}/inventory/resources/{estate['a_web'].pk}/"
    assert client.get(a_web).status_code == 200
    with tenant_scope(org):
        account_services.remove_team_member(estate["team_a"], user=viewer)
    assert client.get(a_web).status_code == 404
    with tenant_scope(org):
        assert (
            not type(viewer)
            .objects.get(pk=viewer.pk)
            .has_perm("inventory.hold_awsaccount", estate["account_a"])
        )
    with tenant_scope(org):
        account_services.add_team_member(estate["team_a"], user=viewer)
    assert client.get(a_web).status_code == 200
    with tenant_scope(org):
        account_services.delete_team(estate["team_a"])
        assert not AccountTeamGrant.objects.filter(content_object=estate["account_a"]).exists()
    assert client.get(a_web).status_code == 404


def test_an_auditor_sees_everything_but_cannot_grant(org, auditor, estate):
    client = client_for(auditor)
    page = client.get(f"/o/{org.slug}/inventory/").content.decode()
    assert "a-web" in page and "b-db" in page
    account_b = estate["account_b"]
    detail = client.get(f"/o/{org.slug}/inventory/accounts/{account_b.pk}/").content.decode()
    assert "Team B" in detail and "Save teams" not in detail
    response = client.post(
        f"/o/{org.slug}/inventory/accounts/{account_b.pk}/teams/",
        {"teams": [estate["team_a"].pk]},
    )
    assert response.status_code == 403
    with tenant_scope(org):
        assert not AccountTeamGrant.objects.filter(
            content_object=account_b, group__name=f"tagsense-team-{estate['team_a'].pk}"
        ).exists()


def test_an_editor_scans_only_accounts_their_teams_hold(org, editor, estate):
    TeamMembershipFactory(organization=org, team=estate["team_a"], user=editor)
    client = client_for(editor)
    with tenant_scope(org):
        before = ScanRun.objects.count()
    response = client.post(
        f"/api/v1/o/{org.slug}/inventory/scans/", {"accounts": [B]}, content_type="application/json"
    )
    assert response.status_code == 400
    assert (
        response.json()
        == client.post(
            f"/api/v1/o/{org.slug}/inventory/scans/",
            {"accounts": ["333333333333"]},
            content_type="application/json",
        ).json()
    )
    response = client.post(
        f"/api/v1/o/{org.slug}/inventory/scans/",
        {"types": ["ec2:vpc"]},
        content_type="application/json",
    )
    assert response.status_code == 202, response.content
    with tenant_scope(org):
        assert ScanRun.objects.count() == before + 1
        scan = ScanRun.objects.get(pk=response.json()["id"])
        assert scan.scope["accounts"] == [A]


def test_a_grant_never_crosses_organizations(org, other_org, estate, other_team):
    with tenant_scope(org), pytest.raises(services.ServiceError):
        services.grant_account(estate["account_a"], other_team)
    with all_tenants():
        assert not AccountTeamGrant.objects.filter(
            group__name=f"tagsense-team-{other_team.pk}"
        ).exists()
    # The page only offers, and only accepts, the organization's own teams.
    owner = _admin(org, "owner2@acme.example", Role.OWNER)
    response = client_for(owner).post(
        f"/o/{org.slug}/inventory/accounts/{estate['account_a'].pk}/teams/",
        {"teams": [estate["team_a"].pk, other_team.pk]},
    )
    assert response.status_code == 302
    with all_tenants():
        assert not AccountTeamGrant.objects.filter(
            group__name=f"tagsense-team-{other_team.pk}"
        ).exists()
        assert AwsAccount.objects.filter(organization=other_org).count() == 0


def test_the_visibility_filter_is_one_query_whatever_the_estate(org, viewer, estate):
    """No list of account ids is built in Python: the filter is a subquery in the SQL."""

    with tenant_scope(org):
        membership = Membership.objects.select_related("organization").get(
            organization=org, user=viewer
        )
        with CaptureQueriesContext(connection) as queries:
            names = list(Resource.objects.restrict(membership).values_list("name", flat=True))
        assert names == ["a-web"]
        assert len(queries) == 1, [q["sql"] for q in queries]
        sql = queries[0]["sql"]
        assert "inventory_accountteamgrant" in sql and "accounts_user_groups" in sql
        assert str(visible_accounts(membership).query).count("SELECT") >= 2


def test_a_run_over_visible_and_hidden_accounts_shows_only_the_visible_part(org, viewer, estate):
    with tenant_scope(org):
        scan = ScanRun.objects.create(
            organization=org,
            started_by="admin",
            scope={"accounts": [A, B], "regions": [], "types": []},
            units_total=2,
            units_done=2,
            new=7,
            changed=5,
        )
        for account, new, changed in ((estate["account_a"], 3, 1), (estate["account_b"], 4, 4)):
            scan.units.create(
                organization=org,
                account=account,
                region="eu-west-1",
                resource_type="ec2:instance",
                status="succeeded",
                new=new,
                changed=changed,
            )
    client = client_for(viewer)
    api = client.get(f"/api/v1/o/{org.slug}/inventory/scans/{scan.pk}/").json()
    assert api["scope"]["accounts"] == [A]  # not the hidden account's id
    assert (api["units_total"], api["new"], api["changed"]) == (1, 3, 1)
    listed = client.get(f"/api/v1/o/{org.slug}/inventory/scans/").json()["results"]
    assert {(s["id"], s["new"]) for s in listed} == {(scan.pk, 3)}
    page = client.get(f"/o/{org.slug}/inventory/scans/{scan.pk}/").content.decode()
    assert B not in page


def test_my_teams_means_the_same_on_the_scans_page_as_on_the_dashboard(org, owner, estate):
    """An owner in team A, on "My teams": the scans page counts what the run did in team A's
    account, as the dashboard counts team A's resources; "All accounts" counts everything."""
    TeamMembershipFactory(organization=org, team=estate["team_a"], user=owner)
    with tenant_scope(org):
        scan = ScanRun.objects.create(
            organization=org,
            started_by="admin",
            status="succeeded",
            scope={"accounts": [A, B], "regions": [], "types": []},
            units_total=2,
            units_done=2,
            new=7,
            changed=5,
        )
        for account, new, changed in ((estate["account_a"], 3, 1), (estate["account_b"], 4, 4)):
            scan.units.create(
                organization=org,
                account=account,
                region="eu-west-1",
                resource_type="ec2:instance",
                status="succeeded",
                new=new,
                changed=changed,
            )
    client = client_for(owner)
    dashboard = client.get(f"/o/{org.slug}/").context
    assert dashboard["team_scope"]["scope"] == "mine" and dashboard["account_count"] == 1
    scans = {s.pk: s for s in client.get(f"/o/{org.slug}/inventory/scans/").context["scans"]}
    assert (scans[scan.pk].units_total, scans[scan.pk].new, scans[scan.pk].changed) == (1, 3, 1)
    assert scans[scan.pk].scope["accounts"] == [A]
    assert estate["scan_b"].pk not in scans  # a run over team B's account only: not "mine"

    client.get(f"/o/{org.slug}/?teams=all")
    scans = {s.pk: s for s in client.get(f"/o/{org.slug}/inventory/scans/").context["scans"]}
    assert (scans[scan.pk].units_total, scans[scan.pk].new, scans[scan.pk].changed) == (2, 7, 5)
    assert estate["scan_b"].pk in scans
