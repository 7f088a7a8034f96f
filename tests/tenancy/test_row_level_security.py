"""The second wall: PostgreSQL row-level security under the application's own database role."""

import hashlib
import hmac
import itertools
import time

import psycopg
import pytest
from django.conf import settings
from django.db import connection, transaction
from django.db.utils import ProgrammingError
from django.test import Client

import audit
from accounts import audit_events as accounts_events
from accounts.models import Membership, Team
from audit.models import AuditEvent
from dashboard import views as dashboard_views
from tagsense.tenancy import db as tenancy_db
from tagsense.tenancy.db import POLICY_NAME, all_tenants, tenant_models, tenant_scope, user_scope
from tagsense.tenancy.resolve import memberships_of, resolve_membership
from tests.conftest import client_for, store_tenant_keys
from tests.factories import MembershipFactory, TeamFactory

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
    assert user == settings.DATABASE_APP_ROLE
    assert not bypass and not superuser
    owners = _raw(
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename = 'accounts_team'"
    )
    assert owners != [(settings.DATABASE_APP_ROLE,)]


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
    original = dashboard_views.DashboardView.get_context_data

    def spy(self, **kwargs):
        seen["orm"] = set(Team.objects.all().values_list("organization_id", flat=True))
        seen["raw"] = {row[0] for row in _raw("SELECT organization_id FROM accounts_team")}
        seen["members"] = {
            row[0] for row in _raw("SELECT DISTINCT organization_id FROM accounts_membership")
        }
        return original(self, **kwargs)

    monkeypatch.setattr(dashboard_views.DashboardView, "get_context_data", spy)
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

    MembershipFactory(organization=other_org, user=owner)
    assert {m.organization_id for m in memberships_of(owner)} == {org.pk, other_org.pk}
    with tenant_scope(org):
        # Without the user setting, the tenant sees only its own members.
        assert set(Membership.objects.values_list("organization_id", flat=True)) == {org.pk}


def test_the_app_role_cannot_change_audit_rows_even_where_rls_admits_them(org, owner):

    with tenant_scope(org):
        audit.record(accounts_events.TEAM_CREATE, data={"name": "x"})
    with (
        pytest.raises(ProgrammingError, match="permission denied for table audit_auditevent"),
        transaction.atomic(),
        tenant_scope(org),
    ):
        AuditEvent.objects.all().update(action="org.update")


def test_a_request_scope_cannot_touch_the_users_memberships_elsewhere(org, other_org, owner):

    elsewhere = MembershipFactory(organization=other_org, user=owner, role="viewer")
    mine = Membership.objects.none()

    mine = resolve_membership(owner, org.slug)
    with tenant_scope(org, membership=mine):
        assert Membership.objects.filter(pk=elsewhere.pk).update(role="owner") == 0
        assert not Membership.objects.filter(pk=elsewhere.pk).exists()
    with all_tenants():
        assert Membership.objects.get(pk=elsewhere.pk).role == "viewer"


def test_the_users_own_rows_are_read_only(other_org, owner):

    with pytest.raises(ProgrammingError, match="row-level security"), user_scope(owner):
        Membership.objects.create(organization=other_org, user=owner, role="owner")
    with user_scope(owner):
        assert Membership.objects.filter(user=owner).update(role="viewer") == 0


# --- SQL that forges the tenant settings ------------------------------------------------------

SETTINGS = (tenancy_db.ORG_SETTING, tenancy_db.USER_SETTING, tenancy_db.ALL_SETTING)


@pytest.fixture
def two_tenants(org, other_org, owner, outsider, two_orgs_of_teams):
    """Rows of both organizations in every kind of tenant table the attacker could aim at,
    and a global audit event (no organization) that only all_tenants() may read."""

    for organization in (org, other_org):
        with tenant_scope(organization):
            audit.record(accounts_events.TEAM_CREATE, data={"name": organization.slug})
    audit.record(accounts_events.LOGIN_FAILED, data={"email": "x@example.com"}, organization=None)
    with all_tenants():  # the rows exist: a read that leaked would see them
        assert Team.objects.filter(organization=other_org).count() == 2
        assert AuditEvent.objects.filter(organization=None).count() == 1
    return org, other_org, owner, outsider


def _rows_outside(organization_id):
    """Per tenant table, the rows the current transaction can see of any other organization
    (or of none: the global audit chain)."""
    seen = {}
    with connection.cursor() as cursor:
        for model in tenant_models():
            cursor.execute(
                f'SELECT count(*) FROM "{model._meta.db_table}" '
                "WHERE organization_id IS DISTINCT FROM %s",
                [organization_id],
            )
            seen[model._meta.db_table] = cursor.fetchone()[0]
    return {table: count for table, count in seen.items() if count}


def _forge(values, mac, *, local):
    """What injected SQL running as the app role can do: set any setting, MAC included."""
    names = [*values, tenancy_db.MAC_SETTING] if mac is not None else list(values)
    params = []
    for name in names:
        params += [name, values.get(name, mac), local]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(["set_config(%s, %s, %s)"] * len(names)), params)


def _other_backend_mac(values):
    """A MAC the app really computed for these settings, but on another connection (as if read
    from that connection's pg_stat_activity or a log)."""
    with psycopg.connect(**_login_params()) as other:
        return tenancy_db.tenant_mac(*_backend_of(other), values)


def _backend_of(raw):
    """A raw connection's backend pid and start time, as the app reads them."""
    return raw.execute(f"SELECT pg_backend_pid(), {tenancy_db.BACKEND_START_SQL}").fetchone()


def _login_params():
    database = connection.settings_dict
    return {
        "host": database["HOST"],
        "port": database["PORT"] or 5432,
        "user": database["USER"],
        "password": database["PASSWORD"] or None,
        "dbname": database["NAME"],
    }


def test_sql_that_sets_any_tenant_settings_reads_and_writes_no_other_organization(two_tenants):
    org, other_org, owner, outsider = two_tenants
    choices = (
        ("", str(org.pk), str(other_org.pk)),  # organization
        ("", str(owner.pk), str(outsider.pk)),  # user: every membership of either user
        ("", "on"),  # all tenants
    )
    tried = 0
    with tenant_scope(org):
        assert _rows_outside(org.pk) == {}
        assert Team.objects.count() == 3
        for n, (org_id, user_id, every) in enumerate(itertools.product(*choices)):
            values = dict(zip(SETTINGS, (org_id, user_id, every), strict=True))
            for mac in (None, "", "0" * 64, _other_backend_mac(values)):
                with transaction.atomic():  # each attempt starts from the scope's own settings
                    _forge(values, mac, local=n % 2 == 0)
                    assert _rows_outside(org.pk) == {}, (values, mac)
                    assert Membership.objects.filter(user=outsider).count() == 0
                    with connection.cursor() as cursor:
                        for table in ("accounts_team", "accounts_membership"):
                            cursor.execute(
                                f"UPDATE {table} SET organization_id = organization_id "
                                "WHERE organization_id <> %s",
                                [org.pk],
                            )
                            assert cursor.rowcount == 0, (table, values, mac)
                            cursor.execute(
                                f"DELETE FROM {table} WHERE organization_id <> %s", [org.pk]
                            )
                            assert cursor.rowcount == 0, (table, values, mac)
                    with (
                        pytest.raises(ProgrammingError, match="row-level security"),
                        transaction.atomic(),
                    ):
                        Team.objects.create(organization=other_org, name="Smuggled", slug="s")
                    tried += 1
    assert tried == 3 * 3 * 2 * 4
    with all_tenants():
        assert Team.objects.filter(organization=other_org).count() == 2
        assert Membership.objects.filter(user=outsider, organization=other_org).count() == 1


def test_forged_settings_outside_any_scope_read_nothing(two_tenants):
    org, other_org, owner, outsider = two_tenants
    with transaction.atomic():
        values = {
            tenancy_db.ORG_SETTING: "",
            tenancy_db.USER_SETTING: "",
            "tagsense.all_tenants": "on",
        }
        _forge(values, _other_backend_mac(values), local=True)
        assert _rows_outside(None) == {}
        assert _rows_outside(org.pk) == {}


def test_a_mac_recorded_on_an_earlier_backend_with_the_same_pid_is_worthless(two_tenants):
    """The OS reuses pids: an all-tenants MAC that the app computed on an earlier backend (and
    that PostgreSQL's log may have recorded) must not work on a later backend that got the same
    pid. The earlier backend is simulated: same pid, an earlier start time."""
    org, other_org, owner, outsider = two_tenants
    values = {tenancy_db.ORG_SETTING: "", tenancy_db.USER_SETTING: "", tenancy_db.ALL_SETTING: "on"}

    def recorded_mac():
        with all_tenants():
            return _raw(f"SELECT current_setting('{tenancy_db.MAC_SETTING}')")[0][0]

    connection.ensure_connection()
    with tenant_scope(org):  # the app has read this backend's identity
        pass
    real = getattr(connection, "tagsense_backend", None)
    pid = connection.connection.info.backend_pid
    # Control: replayed on the backend it was made on, the MAC opens every tenant (the
    # documented limit: a MAC binds the connection, not the transaction).
    same_backend = recorded_mac()
    with tenant_scope(org), transaction.atomic():
        _forge(values, same_backend, local=True)
        assert _rows_outside(org.pk) != {}
    for earlier in ("1000000000.000000", "", f"{int(time.time()) - 3600}.123456"):
        connection.tagsense_backend = (connection.connection, pid, earlier)
        try:
            mac = recorded_mac()
        finally:
            connection.tagsense_backend = real
        assert mac != same_backend
        with tenant_scope(org), transaction.atomic():
            _forge(values, mac, local=True)
            assert _rows_outside(org.pk) == {}, earlier
            assert _rows_outside(None) == {}, earlier


def test_a_temporary_key_table_of_the_callers_own_does_not_stand_in_for_the_real_one(
    two_tenants,
):
    org, other_org, owner, outsider = two_tenants
    values = {tenancy_db.ORG_SETTING: str(other_org.pk), tenancy_db.USER_SETTING: ""}
    values[tenancy_db.ALL_SETTING] = "on"
    with tenant_scope(org), connection.cursor() as cursor:
        with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
            cursor.execute(f"SELECT * FROM {tenancy_db.KEY_TABLE}")
        # An all-zero key of the attacker's own, in a table that shadows the real one for
        # unqualified names in this session, with the MAC it gives for the forged settings.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {tenancy_db.KEY_TABLE} (id smallint, ipad bytea, opad bytea)"
        )
        cursor.execute(
            f"INSERT INTO {tenancy_db.KEY_TABLE} VALUES (1, %s, %s)",
            [bytes([0x36] * 64), bytes([0x5C] * 64)],
        )
        cursor.execute(f"SELECT pg_backend_pid(), {tenancy_db.BACKEND_START_SQL}")
        pid, start = cursor.fetchone()
        message = f"{pid}|{start}|{other_org.pk}||on".encode()
        mac = hmac.new(b"", message, hashlib.sha256).hexdigest()
        cursor.execute("SET LOCAL search_path = pg_temp, public")
        _forge(values, mac, local=True)
        assert _rows_outside(org.pk) == {}
        assert _rows_outside(other_org.pk) == {}


def test_the_settings_mac_never_appears_in_any_sessions_query_text(org, other_org, owner):
    def texts_and_mac():
        # Entering the scope was this connection's last statement: its text is what any
        # session of the same role (here the superuser, who sees every session) reads back.
        found = watcher.execute("SELECT query FROM pg_stat_activity").fetchall()
        mac = _raw(f"SELECT current_setting('{tenancy_db.MAC_SETTING}')")[0][0]
        return [text for (text,) in found if text], mac

    seen = []
    with psycopg.connect(**_login_params(), autocommit=True) as watcher:
        for scope in (tenant_scope(org), tenancy_db.user_scope(owner), all_tenants()):
            with scope:
                seen.append(texts_and_mac())
                with tenant_scope(other_org):  # a nested scope sets its own, after a savepoint
                    seen.append(texts_and_mac())
    assert len(seen) == 6
    for texts, mac in seen:
        assert len(mac) == 64
        assert any("set_config" in text for text in texts)
        assert not [text for text in texts if mac in text]
    assert len({mac for _, mac in seen}) == 4  # three outer scopes, and other_org's


def test_readyz_says_when_the_database_refuses_this_processs_tenant_settings(settings):

    assert Client().get("/readyz").status_code == 200
    settings.SECRET_KEY = "rotated-without-running-migrate"  # noqa: S105
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert "row-level security key differs" in response.json()["detail"]


def test_a_rotated_secret_key_keeps_working_for_old_and_new_processes_after_migrate(settings):
    """Rotation: the new SECRET_KEY with the old one in SECRET_KEY_FALLBACKS, then migrate.
    A process still on the old key and one on the new key both read their own tenant's rows;
    once the fallback is dropped and migrate runs again, the old key reads nothing."""

    org = TeamFactory().organization
    old = settings.SECRET_KEY

    def teams_seen() -> int:
        with tenant_scope(org):
            return Team.objects.count()

    assert teams_seen() == 1
    settings.SECRET_KEY_FALLBACKS = [old]
    settings.SECRET_KEY = "the-rotated-secret-key"  # noqa: S105
    assert teams_seen() == 0  # not migrated yet: the database does not know the new key
    store_tenant_keys()
    assert teams_seen() == 1  # a process on the new key
    settings.SECRET_KEY = old
    assert teams_seen() == 1  # a process still on the old key
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "the-rotated-secret-key", []
    store_tenant_keys()
    settings.SECRET_KEY = old
    assert teams_seen() == 0  # the old key is gone from the database
