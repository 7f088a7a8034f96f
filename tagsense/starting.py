"""The portal while `make run` still prepares the demo: started, not yet serving.

scripts/run-embedded.sh starts the web server while setup_demo_estate still scans the demo
estate and replays its history (demo.simulation), so that the server's own start (imports,
system checks: seconds) is not added to the wait. Until the start is done it keeps a file,
TAGSENSE_STARTING_FILE, holding what it is doing; while that file exists every request,
/healthz included, answers 503 with that text and a Retry-After, so nothing half-prepared is
ever shown (no inventory of a simulated day, no trend without its history) and monitoring, the
benchmark and `make run`'s own console only call the portal up once it is. Once the file is
gone the middleware steps aside for the life of the process (the start never writes it again).
Without the setting (every deployment but the embedded default) it is not installed.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.http import HttpResponse
from django.template.loader import render_to_string


class StartingMiddleware:
    def __init__(self, get_response):
        path = getattr(settings, "TAGSENSE_STARTING_FILE", "")
        if not path:
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.path = Path(path)
        self.started = False

    def __call__(self, request):
        if not self.started:
            try:
                doing = self.path.read_text(encoding="utf-8").strip()
            except FileNotFoundError:
                self.started = True
            else:
                return starting_response(doing)
        return self.get_response(request)


def starting_response(doing: str) -> HttpResponse:
    response = HttpResponse(
        render_to_string("starting.html", {"doing": doing or "Starting…"}), status=503
    )
    response["Retry-After"] = "2"
    response["Cache-Control"] = "no-store"
    # Expected while starting, and polled: not logged as a server error (django.request logs
    # every 5xx as an ERROR unless the response says it was logged already).
    response._has_been_logged = True  # noqa: SLF001 - Django's own flag (utils.log.log_response)
    return response
