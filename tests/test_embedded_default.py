"""`make run`'s embedded default boots end to end: the private PostgreSQL from the wheel (as
root here and in CI, with no network), no Redis, migrate, demo data, the worker with beat, log
in with the printed credentials, see the dashboard, the inventory, the frameworks' scores, and
the offline analyst's answer in each mode. The demo runs production's engine: the set-based SQL
evaluated its findings, and the app role is walled in by row-level security. Stopping the
script stops the database; a second start reuses its data directory."""

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
import requests
from django.conf import settings

from tagsense import embedded_db

pytestmark = pytest.mark.embedded
REPO = Path(settings.BASE_DIR)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(var: Path, port: int) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))
    }
    env.update(
        PORT=str(port),
        MOTO_PORT=str(_free_port()),
        TAGSENSE_VAR_DIR=str(var),
        TAGSENSE_DEMO_RESOURCES="150",
    )
    return env


def _database_url(var: Path) -> str:
    match = re.search(r"^Database: (\S+)$", (var / "console.log").read_text(), re.M)
    assert match, (var / "console.log").read_text()
    return match.group(1)


def _server_pid(var: Path) -> int | None:
    pid_file = var / "pgdata" / "postmaster.pid"
    return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


@pytest.fixture
def embedded_portal(tmp_path):
    port = _free_port()
    env = _env(tmp_path, port)
    log = (tmp_path / "console.log").open("w")
    process = subprocess.Popen(
        ["/bin/bash", str(REPO / "scripts" / "run-embedded.sh")],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "console.log").read_text()
            try:
                response = requests.get(f"{base}/healthz", timeout=1)
            except requests.ConnectionError:
                pass
            else:
                if response.status_code == 200:
                    break
                # Started before the demo is ready (tagsense.starting): says what it does.
                assert response.status_code == 503, response.text
                assert "TagSense is starting" in response.text
                with (tmp_path / "starting-pages.log").open("a") as seen:
                    seen.write(response.text)
            time.sleep(0.5)
        else:
            raise AssertionError((tmp_path / "console.log").read_text())
        yield base, tmp_path
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()
        # The cleanup trap stopped the database (and nothing else holds it).
        pid = _server_pid(tmp_path)
        assert pid is None or not Path(f"/proc/{pid}").exists(), "the database still runs"


# Run in the portal's own settings against the embedded server, as the web processes run.
TENANCY_CHECK = """
import json
from django.conf import settings
from django.db import connection
from accounts.models import Organization
from inventory.models import Resource
from tagsense.tenancy.db import tenant_scope

demo = Organization.objects.get(slug=settings.TAGSENSE_DEMO_ORG_SLUG)
stranger = Organization(pk=demo.pk + 1000, slug="stranger")  # an organization id with no rows
seen = {}
for name, organization in (("demo", demo), ("stranger", stranger)):
    with tenant_scope(organization), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, count(*) FROM inventory_resource")  # no ORM filter
        seen[name] = cursor.fetchone()
print(json.dumps(seen))
"""


def _dashboard_numbers_are_the_databases(dashboard: str, db: psycopg.Connection) -> None:
    def stat(label: str) -> int:
        return int(re.search(rf'<span class="num">(\d+)</span> {label}', dashboard).group(1))

    [(org,)] = db.execute("SELECT id FROM accounts_organization WHERE slug = 'demo'").fetchall()
    [(resources, untagged)] = db.execute(
        "SELECT count(*), count(*) FILTER (WHERE tags = '{}'::jsonb) FROM inventory_resource"
        " WHERE organization_id = %s AND deleted_at IS NULL",
        [org],
    ).fetchall()
    [(accounts,)] = db.execute(
        "SELECT count(*) FROM inventory_awsaccount WHERE organization_id = %s", [org]
    ).fetchall()
    assert (stat("resources"), stat("never tagged"), stat("AWS accounts")) == (
        resources,
        untagged,
        accounts,
    )
    assert resources >= 150 and 0 < untagged < resources


def _the_sql_engine_evaluated_the_findings(db: psycopg.Connection) -> None:
    """The set-based engine keeps a ledger of every resource it evaluated (policies.evaluation)
    and its findings are the demo's."""
    [(org,)] = db.execute("SELECT id FROM accounts_organization WHERE slug = 'demo'").fetchall()
    [(live, ledger, open_findings, states)] = db.execute(
        "SELECT (SELECT count(*) FROM inventory_resource WHERE organization_id = %(o)s"
        "         AND deleted_at IS NULL),"
        " (SELECT count(*) FROM policies_evaluatedresource WHERE organization_id = %(o)s),"
        " (SELECT count(*) FROM policies_finding WHERE organization_id = %(o)s"
        "         AND status = 'open'),"
        " (SELECT count(*) FROM policies_evaluationstate WHERE organization_id = %(o)s)",
        {"o": org},
    ).fetchall()
    assert ledger == live and states == 1 and open_findings > 0


def _row_level_security_walls_the_app_role(var: Path, url: str, db: psycopg.Connection) -> None:
    [(owner_sees,)] = db.execute("SELECT count(*) FROM inventory_resource").fetchall()
    [(enabled,)] = db.execute(
        "SELECT relrowsecurity FROM pg_class WHERE relname = 'inventory_resource'"
    ).fetchall()
    assert enabled and owner_sees > 0
    # The app role with no tenant, then with a tenant setting forged without its MAC: no row.
    db.execute("SET ROLE tagsense_app")
    assert db.execute("SELECT count(*) FROM inventory_resource").fetchone() == (0,)
    db.execute("SELECT set_config('tagsense.organization_id', '1', false)")
    assert db.execute("SELECT count(*) FROM inventory_resource").fetchone() == (0,)
    db.execute("RESET ROLE")
    # Through the portal's own tenancy: the demo's rows in its scope, none in another's.
    env = {**_env(var, 0), "DJANGO_SETTINGS_MODULE": "tagsense.settings.local", "DATABASE_URL": url}
    out = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "manage.py", "shell", "-c", TENANCY_CHECK],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen == {"demo": ["tagsense_app", owner_sees], "stranger": ["tagsense_app", 0]}


def test_embedded_default_serves_the_demo_after_login(embedded_portal):
    base, var = embedded_portal
    # The web server answered while the demo was still prepared, with the starting page (the
    # history being replayed), never with a half-prepared portal.
    starting = (var / "starting-pages.log").read_text()
    assert "Replaying the estate&#x27;s history" in starting or "Reading the estate" in starting
    assert not (var / "starting").exists()
    console = (var / "console.log").read_text()
    match = re.search(r"Log in as (\S+) / (\S+)", console)
    assert match, console
    email, password = match.groups()
    url = _database_url(var)
    assert (var / "pgdata" / "PG_VERSION").exists()
    assert f"host={var / 'pgdata'}" in url  # the private server's socket, no TCP port

    session = requests.Session()
    login = session.get(f"{base}/accounts/login/", timeout=10)
    assert login.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    response = session.post(
        f"{base}/accounts/login/",
        data={"login": email, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.url == f"{base}/o/demo/"
    assert "Demo Corp" in response.text
    assert "auth.login" in response.text  # the recent-activity panel shows this very login

    # DEBUG is off as in production: a missing page is the portal's 404, not Django's
    # technical page listing every URL pattern; static files and the icon still answer.
    missing = session.get(f"{base}/o/demo/no-such-page/", timeout=10)
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert "URLconf" not in missing.text and '<header class="topbar">' in missing.text
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', response.text):
        assert session.get(base + asset, timeout=10).status_code == 200, asset
    assert session.get(f"{base}/favicon.ico", timeout=10).status_code == 200
    assert not (REPO / "control").exists()  # the broker's tables are under var/

    inventory = session.get(f"{base}/o/demo/inventory/", timeout=30).text
    total = int(re.search(r"(\d+) resources? ·", inventory).group(1))
    assert total >= 150, inventory[:2000]
    assert "untagged" in inventory
    accounts = session.get(f"{base}/o/demo/inventory/accounts/", timeout=10).text
    assert accounts.count("Root/") >= 3  # member accounts registered with their OU paths

    # The built-in frameworks have scores, with a trend chart.
    frameworks = session.get(f"{base}/o/demo/policies/frameworks/", timeout=30).text
    assert "SOC 2" in frameworks and "PCI DSS" in frameworks
    assert re.search(r"\d+\.\d %", frameworks) and "<svg" in frameworks and "90 days" in frameworks
    findings = session.get(f"{base}/o/demo/findings/?status=open", timeout=30).text
    assert "missing" in findings

    # With no API key, the offline analyst answers from the demo estate's data.
    csrf = {"X-CSRFToken": session.cookies.get("csrftoken"), "Referer": base}
    for mode, heading in [
        ("strategist", "Tagging Strategist"),
        ("auditor", "Compliance Auditor"),
        ("cost", "Cost Optimizer"),
        ("remediation", "Remediation Engineer"),
    ]:
        form = {"question": "Where do we stand?", "mode": mode}
        asked = session.post(f"{base}/o/demo/assistant/ask/", data=form, headers=csrf, timeout=30)
        stream = re.search(r'sse-connect="([^"]+)"', asked.text).group(1)
        answer = session.get(base + stream, timeout=120).content.decode()
        assert heading in answer and "Demo Corp" in answer, answer[-1000:]
        assert "event: done" in answer and "Answered by offline" in answer
    # A missing-tag question, answered through the tool loop from the demo's own inventory:
    # the count is the database's.
    with psycopg.connect(url) as db:
        [(lacking,)] = db.execute(
            "SELECT count(*) FROM inventory_resource r WHERE r.resource_type = 'ec2:instance'"
            " AND r.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM jsonb_object_keys(r.tags) k"
            " WHERE lower(k) = 'owner')"
        ).fetchall()
    assert lacking > 0
    form = {"question": "Which instances lack an Owner tag?", "mode": "chat"}
    asked = session.post(f"{base}/o/demo/assistant/ask/", data=form, headers=csrf, timeout=30)
    stream = re.search(r'sse-connect="([^"]+)"', asked.text).group(1)
    answer = session.get(base + stream, timeout=120).content.decode()
    assert f"<strong>{lacking} instances lack the <code>Owner</code> tag" in answer, answer[-1500:]
    assert re.search(r'href="/o/demo/inventory/resources/\d+/"', answer)

    # The owner's dashboard over every account (not only their teams') against the database,
    # read as the owner, as migrate works.
    dashboard = session.get(f"{base}/o/demo/?teams=all", timeout=30).text
    with psycopg.connect(url, autocommit=True) as db:
        _dashboard_numbers_are_the_databases(dashboard, db)
        _the_sql_engine_evaluated_the_findings(db)
        _row_level_security_walls_the_app_role(var, url, db)

    ready = session.get(f"{base}/readyz", timeout=10).json()
    assert ready["checks"] == {"database": "ok", "broker": "ok"}

    deadline = time.monotonic() + 30
    while "ready." not in (var / "log" / "worker.log").read_text():
        assert time.monotonic() < deadline, (var / "log" / "worker.log").read_text()
        time.sleep(0.5)
    assert "beat: Starting" in (var / "log" / "worker.log").read_text()


def _embedded_db(command: str, var: Path) -> str:
    """tagsense.embedded_db's command line, as run-embedded.sh runs it."""
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-m", "tagsense.embedded_db", command, str(var)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.strip()


def test_the_database_restarts_on_its_data_directory(tmp_path):
    """A second `make run` finds the first one's data; stop ends the server."""
    url = _embedded_db("start", tmp_path)
    assert url == embedded_db.url(tmp_path / "pgdata")
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("CREATE TABLE kept (n int)")
        db.execute("INSERT INTO kept VALUES (42)")
    pid = _server_pid(tmp_path)
    _embedded_db("stop", tmp_path)
    assert not Path(f"/proc/{pid}").exists()
    assert _embedded_db("start", tmp_path) == url
    try:
        with psycopg.connect(url) as db:
            assert db.execute("SELECT n FROM kept").fetchall() == [(42,)]
            assert db.execute("SHOW server_version").fetchone()[0].startswith("18.")
    finally:
        _embedded_db("stop", tmp_path)
    assert _server_pid(tmp_path) is None
