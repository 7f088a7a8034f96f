"""The auditor's path in a browser (issue 16's "done when"): sign in, request a SOC 2 package
for the last 30 days, watch it build (htmx polls the page's progress; the build runs on a real
Celery worker over Redis, not eagerly), download it, and the standalone script says intact. An
editor gets no form and is refused."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from policies import history
from policies import services as policy_services
from tagsense.celery import app
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.evidence.package_kit import public_key_file, run_script
from tests.policies.test_rules import make_resources

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Seconds each control's daily history takes in this test. The estate is a handful of
# resources and builds in about a second, faster than the page polls (every second): paced,
# the build lasts several polls, so the test sees the bar move.
PACE = 1.0


def sign_in(page, live_server, user, password):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill('input[name="login"]', user.email)
    page.fill('input[name="password"]', password)
    page.click('button[type="submit"]')
    page.wait_for_load_state()


@pytest.fixture
def soc2(org, owner):
    """SOC 2 enabled (its rules installed and evaluated) over resources some of which fail."""
    make_resources(org, tags_list=[{}, {"Owner": "ann@x"}, {}])
    with tenant_scope(org, actor=Actor.for_user(owner)):
        policy_services.enable_framework(org, "soc2")


@pytest.fixture
def worker(monkeypatch):
    """A real worker (a thread of this process, so the live server's settings) consuming a
    queue of this test's own: the Redis database is shared, so no other run's worker takes
    the build, and this one takes no other run's task."""
    queue = f"evidence-browser-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(app.conf, "task_routes", {"evidence.build_export": {"queue": queue}})
    real = history.daily_control_states

    def paced(*args, **kwargs):
        time.sleep(PACE)
        return real(*args, **kwargs)

    monkeypatch.setattr(history, "daily_control_states", paced)
    _forget_routing()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue]):
            yield
    finally:
        _forget_routing()


def _forget_routing():
    """Celery caches the routing table and the router made from it (an earlier test's task
    send would keep this test's route unseen), and a worker started with `queues=` narrows the
    app's queues for good (a later test's worker would consume only this test's queue): both
    rebuilt lazily from app.conf, before the worker and after it."""
    app.amqp._rtable = None
    app.amqp.__dict__.pop("router", None)
    app.amqp.__dict__.pop("queues", None)


def test_an_auditor_requests_watches_downloads_and_verifies_a_package(
    browser_page, live_server, org, auditor, password, soc2, evidence_root, worker, tmp_path
):
    page = browser_page
    sign_in(page, live_server, auditor, password)
    page.goto(f"{live_server.url}/o/{org.slug}/evidence/")
    today = timezone.now().date()
    page.check('input[name="frameworks"][value="soc2"]')
    page.fill('input[name="period_start"]', (today - timedelta(days=29)).isoformat())
    page.fill('input[name="period_end"]', today.isoformat())
    page.click('button:has-text("Request package")')
    page.wait_for_url(f"{live_server.url}/o/{org.slug}/evidence/*/")
    # A mark on this document: gone if anything reloads the page.
    page.evaluate("window.stillTheSamePage = true")

    seen, deadline = [], time.monotonic() + 90
    download = page.get_by_role("link", name="Download package")
    while not download.is_visible():
        assert time.monotonic() < deadline, f"not ready within 90 s; saw {seen}"
        status = page.locator("#export-progress .status").inner_text()
        bar = page.locator("#export-progress progress")
        value = bar.get_attribute("value") if bar.count() else None
        if not seen or seen[-1] != (status, value):
            seen.append((status, value))
        time.sleep(0.2)
    building = [int(v) for status, v in seen if status == "building" and v is not None]
    assert len(set(building)) >= 2, seen  # the bar moved while it built
    assert building == sorted(building), seen
    assert page.locator("#export-progress .status").inner_text() == "ready"
    assert page.evaluate("window.stillTheSamePage") is True  # no reload: htmx swapped it

    with page.expect_download() as downloaded:
        download.click()
    path = tmp_path / downloaded.value.suggested_filename
    downloaded.value.save_as(path)
    assert path.name.startswith(f"{org.slug}-evidence-")
    result = run_script(path, public_key_file(org, tmp_path), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("intact:")
    assert page.errors == []


def test_an_editor_gets_no_request_form_and_is_refused(
    browser_page, live_server, org, editor, password, soc2
):
    page = browser_page
    sign_in(page, live_server, editor, password)
    response = page.goto(f"{live_server.url}/o/{org.slug}/evidence/")
    # A member whose role may not export: refused (403, the tenancy layer's refusal page).
    assert response.status == 403
    assert page.get_by_text("does not allow it").is_visible()
    assert page.locator('button:has-text("Request package")').count() == 0
    assert page.locator('input[name="period_start"]').count() == 0
    assert page.errors == []
