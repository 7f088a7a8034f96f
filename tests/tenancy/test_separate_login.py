"""Production's recommended set-up: the processes log in as a member of the app role and never
hold the owner's credentials; only `migrate` uses DATABASE_OWNER_URL."""

import os
import subprocess
import sys

import psycopg
import pytest
from django.conf import settings
from django.db import connection

LOGIN = "tagsense_web_test"

PROBE = """
from django.db import connection
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


@pytest.fixture
def web_login(db):
    name = connection.settings_dict["NAME"]
    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=name, autocommit=True) as admin:
        admin.execute(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{LOGIN}') "
            f"THEN CREATE ROLE {LOGIN} LOGIN IN ROLE {settings.DATABASE_APP_ROLE}; END IF; END $$"
        )
    return name


def _manage(name, *args):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tagsense.settings.test",
        "DATABASE_URL": f"postgres://{LOGIN}@127.0.0.1:5432/{name}",
        "DATABASE_OWNER_URL": f"postgres://postgres@127.0.0.1:5432/{name}",
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
