"""While `make run` prepares the demo, its web server already runs but does not serve
(tagsense.starting): every request, /healthz included, is a 503 saying what the start is doing,
until the start removes its file; then the portal answers as usual."""

import pytest
from django.conf import settings
from django.test import Client, override_settings

from demo.management.commands.setup_demo_estate import _starting_page

STARTING = "tagsense.starting.StartingMiddleware"


def _with_gate(path):
    after = settings.MIDDLEWARE.index("whitenoise.middleware.WhiteNoiseMiddleware") + 1
    middleware = [*settings.MIDDLEWARE[:after], STARTING, *settings.MIDDLEWARE[after:]]
    return override_settings(MIDDLEWARE=middleware, TAGSENSE_STARTING_FILE=str(path))


@pytest.mark.django_db
def test_nothing_is_served_until_the_start_is_done(tmp_path, owner, org, caplog):
    starting = tmp_path / "starting"
    starting.write_text("Replaying the estate's history: day 34 of 89 (2026-10-14)…")
    with _with_gate(starting):
        client = Client()
        client.force_login(owner)
        for path in ("/healthz", "/", f"/o/{org.slug}/"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert response["Retry-After"] == "2"
            body = response.content.decode()
            assert "TagSense is starting" in body and "day 34 of 89 (2026-10-14)" in body
        # Expected while starting (and polled): no server error in the log.
        assert not [r for r in caplog.records if r.name == "django.request"]
        # The start says what it does next: the page follows.
        starting.write_text("Storing today's scan of the estate…")
        assert "Storing today&#x27;s scan" in client.get("/healthz").content.decode()
        starting.unlink()
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code in (200, 302)
        # Served from then on: the file is read no more.
        starting.write_text("a file left over")
        assert client.get("/healthz").status_code == 200


def test_without_the_setting_the_gate_is_not_installed(tmp_path):
    starting = tmp_path / "starting"
    starting.write_text("starting")
    after = settings.MIDDLEWARE.index("whitenoise.middleware.WhiteNoiseMiddleware") + 1
    middleware = [*settings.MIDDLEWARE[:after], STARTING, *settings.MIDDLEWARE[after:]]
    with override_settings(MIDDLEWARE=middleware, TAGSENSE_STARTING_FILE=""):
        assert Client().get("/healthz").status_code == 200


def test_the_start_replaces_the_pages_text_whole(tmp_path, settings):
    starting = tmp_path / "starting"
    settings.TAGSENSE_STARTING_FILE = str(starting)
    _starting_page("day 2 of 89")
    _starting_page("day 3 of 89")
    assert starting.read_text() == "day 3 of 89"
    assert [p.name for p in tmp_path.iterdir()] == ["starting"]  # nothing staged left behind
    settings.TAGSENSE_STARTING_FILE = ""
    _starting_page("day 4 of 89")  # no file named: nothing written
    assert starting.read_text() == "day 3 of 89"
