"""The second wall: PostgreSQL row-level security under the application's own database role."""

import pytest
from django.db import connection, transaction
from django.db.utils import ProgrammingError

from accounts import views as account_views
from accounts.models import Membership, Team
from audit.models import AuditEvent
from tagsense.tenancy.db import POLICY_NAME, all_tenants, tenant_models, tenant_scope
from tests.conftest import client_for
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_orgs_of_teams(org, other_org):
    mine = [TeamFactory(organization=org, name=f"Acme team {i}") for i in range(3)]
    theirs = [TeamFactory(organization=other_org, name=f"Globex team {i}") for i in range(2)]
    return mine, theirs


def _raw(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_the_app_runs_as_a_role_that_owns_nothing_and_cannot_bypass_rls():
    (user, bypass, superuser) = _raw(
        "SELECT current_user, rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user"
    )[0]
    assert user == "tagsense_app"
    assert not bypass and not superuser
    owners = _raw(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename = 'accounts_team'"
    )
    assert owners != [("tagsense_app",)]


def test_every_tenant_table_has_rls_enabled_and_the_policy():
    tables = {model._meta.db_table for model in tenant_models()}
    assert {"accounts_team", "accounts_membership", "audit_auditevent"} <= tables
    rows = _raw(
        "SELECT c.relname, c.relrowsecurity, "
        f"EXISTS (SELECT 1 FROM pg_policies p WHERE p.tablename = c.relname "
        f"AND p.policyname = '{POLICY_NAME}') "
        "FROM pg_class c WHERE c.relkind = 'r'"
    )
    state = {name: (enabled, has_policy) for name, enabled, has_policy in rows}
    for table in tables:
        assert state[table] == (True, True), table


def test_unfiltered_query_in_org_a_returns_none_of_org_b(org, other_org, two_orgs_of_teams):
    mine, theirs = two_orgs_of_teams
    with tenant_scope(org):
        names = set(Team.objects.all().values_list("name", flat=True))
        raw_names = {row[0] for row in _raw("SELECT name FROM accounts_team")}
    assert names == {t.name for t in mine}
    assert raw_names == names


def test_no_tenant_set_returns_nothing_rather_than_everything(two_orgs_of_teams):
    assert Team.objects.count() == 0
    assert _raw("SELECT count(*) FROM accounts_team") == [(0,)]
    assert _raw("SELECT count(*) FROM accounts_membership") == [(0,)]
    assert _raw("SELECT count(*) FROM audit_auditevent") == [(0,)]
    with all_tenants():
        assert Team.objects.count() == 5


def test_inside_a_page_request_for_org_a_an_unfiltered_query_sees_only_a(
    org, owner, other_org, two_orgs_of_teams, monkeypatch
):
    seen = {}
    original = account_views.DashboardView.get_context_data

    def spy(self, **kwargs):
        seen["orm"] = set(Team.objects.all().values_list("organization_id", flat=True))
        seen["raw"] = {row[0] for row in _raw("SELECT organization_id FROM accounts_team")}
        seen["members"] = {
            row[0] for row in _raw("SELECT DISTINCT organization_id FROM accounts_membership")
        }
        return original(self, **kwargs)

    monkeypatch.setattr(account_views.DashboardView, "get_context_data", spy)
    response = client_for(owner).get(f"/o/{org.slug}/")
    assert response.status_code == 200
    assert seen == {"orm": {org.pk}, "raw": {org.pk}, "members": {org.pk}}


def test_writing_a_row_for_another_organization_is_refused(org, other_org):
    with pytest.raises(ProgrammingError, match="row-level security"), tenant_scope(org):
        Team.objects.create(organization=other_org, name="Smuggled", slug="smuggled")


def test_nested_scopes_restore_the_outer_tenant(org, other_org, two_orgs_of_teams):
    with tenant_scope(org):
        with tenant_scope(other_org):
            assert Team.objects.count() == 2
        assert Team.objects.count() == 3


def test_a_failed_inner_scope_leaves_the_outer_tenant_intact(org, other_org, two_orgs_of_teams):
    with tenant_scope(org):
        with pytest.raises(RuntimeError), tenant_scope(other_org):
            raise RuntimeError("boom")
        assert Team.objects.count() == 3


def test_a_nested_scope_of_the_same_tenant_sets_nothing_again_and_still_sees_its_rows(
    org, other_org, two_orgs_of_teams, django_assert_max_num_queries
):
    with tenant_scope(org):
        # A savepoint and its release, and the count: the settings are the outer scope's.
        with django_assert_max_num_queries(3), tenant_scope(org):
            assert Team.objects.count() == 3
        with tenant_scope(other_org), tenant_scope(other_org):  # an inner, different tenant
            assert Team.objects.count() == 2
            with pytest.raises(RuntimeError), tenant_scope(other_org):
                raise RuntimeError("boom")
            assert Team.objects.count() == 2
        assert Team.objects.count() == 3
    with tenant_scope(other_org):  # a new transaction: its scope sets its settings again
        assert Team.objects.count() == 2
    with transaction.atomic():
        with tenant_scope(org):
            assert Team.objects.count() == 3
        assert Team.objects.count() == 0  # the rest of the transaction has no tenant again
        with tenant_scope(other_org):
            assert Team.objects.count() == 2


def test_memberships_are_visible_to_their_user_across_organizations(org, other_org, owner):
    from tagsense.tenancy.resolve import memberships_of
    from tests.factories import MembershipFactory

    MembershipFactory(organization=other_org, user=owner)
    assert {m.organization_id for m in memberships_of(owner)} == {org.pk, other_org.pk}
    with tenant_scope(org):
        # Without the user setting, the tenant sees only its own members.
        assert set(Membership.objects.values_list("organization_id", flat=True)) == {org.pk}


def test_the_app_role_cannot_change_audit_rows_even_where_rls_admits_them(org, owner):
    import audit

    with tenant_scope(org):
        audit.record("team.create", data={"name": "x"})
    with (
        pytest.raises(ProgrammingError, match="permission denied for table audit_auditevent"),
        transaction.atomic(),
        tenant_scope(org),
    ):
        AuditEvent.objects.all().update(action="org.update")


def test_a_request_scope_cannot_touch_the_users_memberships_elsewhere(org, other_org, owner):
    from tests.factories import MembershipFactory

    elsewhere = MembershipFactory(organization=other_org, user=owner, role="viewer")
    mine = Membership.objects.none()
    from tagsense.tenancy.resolve import resolve_membership

    mine = resolve_membership(owner, org.slug)
    with tenant_scope(org, membership=mine):
        assert Membership.objects.filter(pk=elsewhere.pk).update(role="owner") == 0
        assert not Membership.objects.filter(pk=elsewhere.pk).exists()
    with all_tenants():
        assert Membership.objects.get(pk=elsewhere.pk).role == "viewer"


def test_the_users_own_rows_are_read_only(other_org, owner):
    from tagsense.tenancy.db import user_scope

    with pytest.raises(ProgrammingError, match="row-level security"), user_scope(owner):
        Membership.objects.create(organization=other_org, user=owner, role="owner")
    with user_scope(owner):
        assert Membership.objects.filter(user=owner).update(role="viewer") == 0
