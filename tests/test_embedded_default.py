"""`make run`'s embedded default boots end to end: SQLite, no Redis, migrate, demo data, the
worker with beat, log in with the printed credentials, see the dashboard, the inventory, the
frameworks' scores, and the offline analyst's answer in each mode."""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

pytestmark = pytest.mark.embedded
REPO = Path(settings.BASE_DIR)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def embedded_portal(tmp_path):
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))
    }
    env.update(
        PORT=str(port),
        MOTO_PORT=str(_free_port()),
        TAGSENSE_VAR_DIR=str(tmp_path),
        TAGSENSE_DEMO_RESOURCES="150",
    )
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
                if requests.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            raise AssertionError((tmp_path / "console.log").read_text())
        yield base, tmp_path
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def test_embedded_default_serves_the_demo_after_login(embedded_portal):
    base, var = embedded_portal
    console = (var / "console.log").read_text()
    match = re.search(r"Log in as (\S+) / (\S+)", console)
    assert match, console
    email, password = match.groups()
    assert (var / "tagsense.sqlite3").exists()

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

    # The policy engine runs on SQLite too (policies.pyengine): the built-in frameworks have
    # scores, with a trend chart.
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
    with sqlite3.connect(var / "tagsense.sqlite3") as db:
        [(lacking,)] = db.execute(
            "SELECT count(*) FROM inventory_resource r WHERE r.resource_type = 'ec2:instance'"
            " AND r.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM json_each(r.tags) t"
            " WHERE lower(t.key) = 'owner')"
        ).fetchall()
    assert lacking > 0
    form = {"question": "Which instances lack an Owner tag?", "mode": "chat"}
    asked = session.post(f"{base}/o/demo/assistant/ask/", data=form, headers=csrf, timeout=30)
    stream = re.search(r'sse-connect="([^"]+)"', asked.text).group(1)
    answer = session.get(base + stream, timeout=120).content.decode()
    assert f"<strong>{lacking} instances lack the <code>Owner</code> tag" in answer, answer[-1500:]
    assert re.search(r'href="/o/demo/inventory/resources/\d+/"', answer)

    ready = session.get(f"{base}/readyz", timeout=10).json()
    assert ready["checks"] == {"database": "ok", "broker": "ok"}

    deadline = time.monotonic() + 30
    while "ready." not in (var / "log" / "worker.log").read_text():
        assert time.monotonic() < deadline, (var / "log" / "worker.log").read_text()
        time.sleep(0.5)
    assert "beat: Starting" in (var / "log" / "worker.log").read_text()
