"""What a newcomer meets when something is refused or missing: menus show each role only the
pages it can open, and the 403, 404 and 500 pages are the portal's own, in its layout. The
embedded default (`make run`) runs with DEBUG off: no technical page, static files served."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client, RequestFactory

from accounts.roles import Role
from tagsense import errors
from tests.conftest import client_for

REPO = Path(settings.BASE_DIR)
# The pages whose menus a member sees first: the section menu and each section's tabs.
MENU_PAGES = ["", "inventory/", "policies/", "findings/", "policies/frameworks/"]


def menu_links(page: str) -> list[str]:
    menus = re.findall(r'<nav class="(?:mainnav|tabs)"[^>]*>(.*?)</nav>', page, re.S)
    assert menus
    return [href for menu in menus for href in re.findall(r'href="([^"]+)"', menu)]


def looks_like_the_portal(page: str) -> bool:
    return '<header class="topbar">' in page and "/static/css/tagsense.css" in page


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_every_menu_link_a_role_is_shown_opens_for_it(role, org, users_by_role, team):
    client = client_for(users_by_role[role])
    links = set()
    for path in MENU_PAGES:
        response = client.get(f"/o/{org.slug}/{path}")
        assert response.status_code == 200, path
        links.update(menu_links(response.content.decode()))
    assert f"/o/{org.slug}/" in links
    for link in sorted(links):
        assert client.get(link).status_code == 200, f"{role} is shown {link} and refused it"
    audit_shown = f"/o/{org.slug}/audit/" in links
    assert audit_shown == (role in (Role.OWNER, Role.ADMIN, Role.AUDITOR))


@pytest.mark.django_db
def test_the_403_page_is_the_portals_with_the_members_menu(org, viewer):
    response = client_for(viewer).get(f"/o/{org.slug}/audit/")
    assert response.status_code == 403
    page = response.content.decode()
    assert looks_like_the_portal(page)
    assert "You cannot open this page" in page and "Acme Corp" in page
    assert f'href="/o/{org.slug}/findings/"' in page  # the way on
    assert f'href="/o/{org.slug}/audit/"' not in page  # not the way back in


@pytest.mark.django_db
def test_a_403_under_the_api_stays_problem_json(rf=None):
    response = errors.permission_denied(RequestFactory().get("/api/v1/whatever/"))
    assert response.status_code == 403
    assert json.loads(response.content)["status"] == 403


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/no-such-page/", "/o/no-such-org/", "/o/acme/nope/"])
def test_the_404_page_is_the_portals(path, org, owner):
    clients = [client_for(owner)] + ([Client()] if not path.startswith("/o/") else [])
    for client in clients:
        response = client.get(path)
        assert response.status_code == 404
        page = response.content.decode()
        assert looks_like_the_portal(page) and "Page not found" in page
        assert "URLconf" not in page


def test_the_500_page_renders_with_no_context_in_the_portals_layout():
    response = errors.server_error(RequestFactory().get("/o/acme/"))
    assert response.status_code == 500
    page = response.content.decode()
    assert looks_like_the_portal(page) and "Something went wrong" in page
    css = REPO / "static" / "css" / "tagsense.css"
    assert css.exists()  # the plain path the template names


@pytest.mark.django_db
def test_favicon_is_linked_and_answers(org, owner):
    page = client_for(owner).get(f"/o/{org.slug}/").content.decode()
    [icon] = re.findall(r'<link rel="icon" href="([^"]+)"', page)
    assert (REPO / "static" / icon.removeprefix(settings.STATIC_URL)).exists()
    response = Client().get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == icon


EMBEDDED_PROBE = r"""
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from tagsense.celery import app

client = Client(HTTP_HOST="127.0.0.1")
out = {"debug": settings.DEBUG}
for path in ("/static/css/tagsense.css", "/static/vendor/htmx/htmx-2.0.11.min.js",
             "/favicon.ico", "/no-such-page/"):
    response = client.get(path, follow=path == "/favicon.ico")
    body = b"".join(response) if response.streaming else response.content
    out[path] = [response.status_code, body[:4000].decode("utf-8", "replace")]
from kombu import Exchange, Queue
with app.connection_for_write() as conn:  # what a worker's remote control declares
    Queue("probe.pidbox", Exchange("celery.pidbox", type="fanout"),
          channel=conn.default_channel).declare()
print(json.dumps(out))
"""


def test_the_embedded_default_runs_without_debug_and_serves_its_static_files(tmp_path):
    """The settings of `make run` (tagsense.settings.local), as a new process would read
    them, from a fresh working directory: no technical 404 page, static files and the icon
    through whitenoise without collectstatic, and the broker's files under var/."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="tagsense.settings.local",
        TAGSENSE_VAR_DIR=str(tmp_path / "var"),
        PYTHONPATH=str(REPO),
    )
    work = tmp_path / "cwd"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", EMBEDDED_PROBE],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["debug"] is False
    status, css = out["/static/css/tagsense.css"]
    assert status == 200 and ".topbar" in css
    assert out["/static/vendor/htmx/htmx-2.0.11.min.js"][0] == 200
    status, icon = out["/favicon.ico"]
    assert status == 200 and "<svg" in icon
    status, page = out["/no-such-page/"]
    assert status == 404 and looks_like_the_portal(page)
    assert "URLconf" not in page and "technical" not in page.lower()
    assert not (work / "control").exists()  # kombu's default, relative to the working dir
    assert (tmp_path / "var" / "broker" / "control").is_dir()
