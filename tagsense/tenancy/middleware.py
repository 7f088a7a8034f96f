"""Carries the request context (actor, request id, client address) for audit and logging."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers

from . import context

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or with TRUSTED_PROXY_COUNT = N proxies in front,
    the address the outermost trusted proxy saw (N-th from the right of X-Forwarded-For)."""
    proxies: int = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies:
        forwarded: str = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [h.strip() for h in forwarded.split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= proxies:
            return hops[-proxies]
    address: str | None = request.META.get("REMOTE_ADDR")
    return address


def clean_header(value: str, limit: int = 512) -> str:
    """Header text fit for the database and the audit log: no control characters."""
    return _CONTROL.sub("", value)[:limit]


class RequestContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else context.new_request_id()
        # attr-defined: Django's request takes ad-hoc attributes, as middleware sets them.
        request.request_id = request_id  # type: ignore[attr-defined]
        with context.use(
            actor=context.Actor.for_user(getattr(request, "user", None)),
            request_id=request_id,
            ip_address=client_ip(request),
            user_agent=clean_header(request.headers.get("User-Agent", "")),
            organization=None,
            membership=None,
        ):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        patch_vary_headers(response, ["HX-Request"])
        return response
