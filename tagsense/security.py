"""Request security that Django does not ship: the Content-Security-Policy header, session
timeouts (idle and absolute), NUL characters in addresses refused. Settings and defaults:
docs/security.md."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import BadRequest
from django.http import HttpResponse

# Session keys: when the session signed in and when it last made a request (Unix seconds).
SESSION_STARTED = "tagsense.session_started"
SESSION_SEEN = "tagsense.session_seen"
# "last seen" is written at most this often, so not every request saves the session.
_SEEN_RESOLUTION = 60


def content_security_policy() -> str:
    """TAGSENSE_CSP as a header value; directives with no sources are left out."""
    return "; ".join(
        " ".join([directive, *sources])
        for directive, sources in settings.TAGSENSE_CSP.items()
        if sources
    )


class ContentSecurityPolicyMiddleware:
    """Adds the Content-Security-Policy (or -Report-Only) header to every response that does
    not set its own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        header = (
            "Content-Security-Policy-Report-Only"
            if settings.TAGSENSE_CSP_REPORT_ONLY
            else "Content-Security-Policy"
        )
        if header not in response:
            response[header] = content_security_policy()
        return response


def expiry_reason(session, now: float) -> str | None:
    """Why the session has run out ("idle" or "absolute"), or None while it is valid."""
    started = session.get(SESSION_STARTED)
    seen = session.get(SESSION_SEEN)
    if started is not None and now - started > settings.TAGSENSE_SESSION_ABSOLUTE_TIMEOUT:
        return "absolute"
    if seen is not None and now - seen > settings.TAGSENSE_SESSION_IDLE_TIMEOUT:
        return "idle"
    return None


def _minutes(seconds: int) -> str:
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _login_url(request) -> str:
    """The sign-in page, coming back to the page the htmx request was made from."""
    current = request.headers.get("HX-Current-URL", "")
    path = current if current.startswith("/") else ""
    if not path and current:
        parts = urlsplit(current)
        if parts.netloc == request.get_host():
            path = parts.path + (f"?{parts.query}" if parts.query else "")
    return redirect_to_login(path or "/")["Location"]


class SessionTimeoutMiddleware:
    """Signs a user out after TAGSENSE_SESSION_IDLE_TIMEOUT seconds without a request, and
    TAGSENSE_SESSION_ABSOLUTE_TIMEOUT seconds after sign-in whatever the activity.

    Assumes it runs after AuthenticationMiddleware and MessageMiddleware. The sign-out is
    audited as `auth.session_expired` (accounts/signals.py reads `request.session_expired`).
    The request then goes on as anonymous: a page sends the user to sign in, the API answers 401.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = time.time()
            session = request.session
            reason = expiry_reason(session, now)
            if reason is not None:
                request.session_expired = reason
                logout(request)
                if reason == "idle":
                    text = (
                        "You were signed out after "
                        f"{_minutes(settings.TAGSENSE_SESSION_IDLE_TIMEOUT)} without activity."
                    )
                else:
                    text = (
                        "Your session reached its limit of "
                        f"{_minutes(settings.TAGSENSE_SESSION_ABSOLUTE_TIMEOUT)}."
                    )
                messages.info(request, f"{text} Please sign in again.")
                if request.headers.get("HX-Request") == "true":
                    # An htmx request (a poll, a filter) would swap the sign-in form into a
                    # fragment of the page: send the whole window to sign in instead.
                    return HttpResponse(status=204, headers={"HX-Redirect": _login_url(request)})
            else:
                session.setdefault(SESSION_STARTED, now)
                if now - session.get(SESSION_SEEN, 0) >= _SEEN_RESOLUTION:
                    session[SESSION_SEEN] = now
        return self.get_response(request)


class RejectNulMiddleware:
    """Refuses (400) a request with a NUL character in its path or in any query parameter's
    name or value. No filter, slug or id may contain one, and PostgreSQL cannot compare text
    with it (psycopg raises), so without this every filter that reaches a query would be a 500.
    Under /api/ the answer is problem+json (tagsense/errors.py, `bad_request`)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or any(
            "\x00" in name or any("\x00" in value for value in values)
            for name, values in request.GET.lists()
        ):
            raise BadRequest("A NUL character is not allowed in the address or its parameters.")
        return self.get_response(request)
