"""Carries the request context (actor, request id, client address) for audit and logging."""

from __future__ import annotations

import re

from django.conf import settings
from django.utils.cache import patch_vary_headers

from . import context

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def client_ip(request) -> str | None:
    if getattr(settings, "TRUST_X_FORWARDED_FOR", False):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.META.get("REMOTE_ADDR")


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else context.new_request_id()
        request.request_id = request_id
        with context.use(
            actor=context.Actor.for_user(getattr(request, "user", None)),
            request_id=request_id,
            ip_address=client_ip(request),
            user_agent=request.headers.get("User-Agent", "")[:512],
            organization=None,
            membership=None,
        ):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        patch_vary_headers(response, ["HX-Request"])
        return response
