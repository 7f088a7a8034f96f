"""Production's recommended set-up: the processes log in as a member of the app role and never
hold the owner's credentials; only `migrate` uses DATABASE_OWNER_URL."""

import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.db import connection

import audit
from accounts import audit_events as accounts_events
from accounts.models import Team
from tagsense.tenancy.db import all_tenants, tenant_scope

# A login of the configured app role (DATABASE_APP_ROLE): roles are cluster-wide, and a login
# made for another app role (another run's settings) would not be bound by this one.
LOGIN = f"{settings.DATABASE_APP_ROLE}_web_test"

PROBE = """
from django.db import connection

from accounts.models import Team
from tagsense.tenancy.db import all_tenants, tenant_scope
from accounts.models import Team
with connection.cursor() as c:
    c.execute("SELECT current_user, session_user")
    print("user", *c.fetchone())
print("teams", Team.objects.count())
for sql in ("RESET ROLE", "SET ROLE postgres", "ALTER TABLE audit_auditevent DISABLE TRIGGER ALL"):
    try:
        with connection.cursor() as c:
            c.execute(sql)
            c.execute("SELECT current_user")
            print("allowed", sql, c.fetchone()[0])
    except Exception as exc:
        print("refused", sql, type(exc).__name__)
"""


def _server() -> dict:
    """Where the test database is and who owns it, as the settings say (DATABASE_URL)."""
    config = connection.settings_dict
    return {"host": config["HOST"] or "127.0.0.1", "port": config["PORT"] or "5432",
            "user": config["USER"], "password": config["PASSWORD"]}  # fmt: skip


def _url(user: str, password: str, name: str) -> str:
    server = _server()
    secret = f":{password}" if password else ""
    return f"postgres://{user}{secret}@{server['host']}:{server['port']}/{name}"


def _create_login():
    name = connection.settings_dict["NAME"]
    server = _server()
    with psycopg.connect(
        host=server["host"], port=server["port"], user=server["user"],
        password=server["password"] or None, dbname=name, autocommit=True,
    ) as admin:  # fmt: skip
        admin.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{LOGIN}') "
            f"THEN CREATE ROLE {LOGIN} LOGIN IN ROLE {settings.DATABASE_APP_ROLE}; END IF; END $$"
        )
    return name


@pytest.fixture
def web_login(db):
    return _create_login()


def _manage(name, *args, **extra_env):
    env = {
        **os.environ,
        **extra_env,
        "DJANGO_SETTINGS_MODULE": "tagsense.settings.test",
        "DATABASE_URL": _url(LOGIN, "", name),
        "DATABASE_OWNER_URL": _url(_server()["user"], _server()["password"], name),
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_web_login_cannot_leave_row_level_security(web_login):
    result = _manage(web_login, "shell", "-c", PROBE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"user {LOGIN} {LOGIN}" in lines
    assert "teams 0" in lines  # no tenant set: nothing
    assert f"allowed RESET ROLE {LOGIN}" in lines  # resetting leads nowhere but itself
    assert "refused SET ROLE postgres ProgrammingError" in lines
    assert "refused ALTER TABLE audit_auditevent DISABLE TRIGGER ALL ProgrammingError" in lines


def test_migrate_uses_the_owner_credentials(web_login):
    # migrate re-creates every policy after it runs, which only the owner may do.
    result = _manage(web_login, "migrate", "--noinput")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "row-level security in place" in result.stderr


# Injected SQL, as the web login, inside a request's transaction for PROBE_ORG: every
# combination of forged settings (and a MAC: none, blank, or the scope's own), with and
# without RESET ROLE first. It prints what it could read or change outside PROBE_ORG.
FORGE_PROBE = """
import itertools, os
import psycopg
from django.db import connection, transaction
from accounts.models import Organization, Team
from tagsense.tenancy import db

mine = int(os.environ["PROBE_ORG"])
choices = (
    ("", str(mine), os.environ["PROBE_OTHER_ORG"]),
    ("", os.environ["PROBE_USER"], os.environ["PROBE_OTHER_USER"]),
    ("", "on"),
)
SETTINGS = (db.ORG_SETTING, db.USER_SETTING, db.ALL_SETTING)


def outside():
    found = {}
    with connection.cursor() as c:
        for model in db.tenant_models():
            table = model._meta.db_table
            c.execute(
                f'SELECT count(*) FROM "{table}" WHERE organization_id IS DISTINCT FROM %s', [mine]
            )
            found[table] = c.fetchone()[0]
    return {table: n for table, n in found.items() if n}


def sql(statement, params=()):
    with connection.cursor() as c:
        c.execute(statement, params)
        return c.rowcount


database = connection.settings_dict
login = {"host": database["HOST"], "port": database["PORT"] or 5432, "user": database["USER"],
         "password": database["PASSWORD"] or None, "dbname": database["NAME"]}
theirs = int(os.environ["PROBE_OTHER_ORG"])
attempts = leaks = changed = refused = 0
with psycopg.connect(**login, autocommit=True) as watcher:
    with db.tenant_scope(Organization.objects.get(pk=mine)):
        texts = [t for (t,) in watcher.execute("SELECT query FROM pg_stat_activity").fetchall()]
        with connection.cursor() as c:
            c.execute("SELECT current_setting(%s)", [db.MAC_SETTING])
            own_mac = c.fetchone()[0]
        print("own rows", Team.objects.count(), "outside", sum(outside().values()))
        print("set_config seen", any("set_config" in t for t in texts if t))
        print("mac seen", any(own_mac in t for t in texts if t))
        for values in itertools.product(*choices):
            for mac, reset in itertools.product((None, "", own_mac), (False, True)):
                attempts += 1
                with transaction.atomic():
                    if reset:
                        sql("RESET ROLE")
                    forged = dict(zip(SETTINGS, values))
                    if mac is not None:
                        forged[db.MAC_SETTING] = mac
                    for name, value in forged.items():
                        sql("SELECT set_config(%s, %s, false)", [name, value])
                    leaks += bool(outside())
                    for table in ("accounts_team", "accounts_membership"):
                        changed += sql(f"UPDATE {table} SET organization_id = organization_id "
                                       "WHERE organization_id <> %s", [mine])
                        changed += sql(f"DELETE FROM {table} WHERE organization_id <> %s", [mine])
                    try:
                        with transaction.atomic():
                            Team.objects.create(organization_id=theirs, name="S", slug="s")
                    except Exception as exc:
                        refused += "row-level security" in str(exc)
print("attempts", attempts, "leaks", leaks, "changed", changed, "refused", refused)
"""


@pytest.mark.django_db(transaction=True)
def test_the_web_login_cannot_forge_its_way_to_another_organizations_rows(
    org, other_org, owner, outsider, team, other_team
):

    for organization in (org, other_org):
        with tenant_scope(organization):
            audit.record(accounts_events.TEAM_CREATE, data={"name": organization.slug})
    audit.record(accounts_events.LOGIN_FAILED, data={"email": "x@example.com"}, organization=None)
    result = _manage(
        _create_login(),
        "shell",
        "-c",
        FORGE_PROBE,
        PROBE_ORG=str(org.pk),
        PROBE_OTHER_ORG=str(other_org.pk),
        PROBE_USER=str(owner.pk),
        PROBE_OTHER_USER=str(outsider.pk),
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "own rows 1 outside 0" in lines  # the scope works, and shows only its own
    assert "set_config seen True" in lines  # the scope's statement, seen from another session
    assert "mac seen False" in lines
    attempts = 3 * 3 * 2 * 3 * 2
    assert f"attempts {attempts} leaks 0 changed 0 refused {attempts}" in lines
    with all_tenants():  # every row the probe aimed at is still there
        assert Team.objects.filter(organization=other_org).count() == 1
