"""`Authorization: Bearer <token>` for the API (RFC 6750), next to session cookies."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from tagsense.tenancy import context

from .tokens import InvalidToken, authenticate_secret, note_rejection, note_use


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates an API token; a request without a Bearer header is left to the next class.

    A bad, expired or revoked token is a 401 with `WWW-Authenticate: Bearer ... invalid_token`.
    On success `request.auth` is the ApiToken, carrying the membership it acts as; the API base
    class (tagsense/tenancy/api.py) then checks its organization and scope. The secret is never
    logged: only its hash is compared, and events name the token by its prefix.
    """

    keyword = "bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.encode():
            return None
        if len(header) != 2:
            request._bearer_error = "invalid_request"
            raise exceptions.AuthenticationFailed("The Bearer header takes exactly one token.")
        try:
            secret = header[1].decode("ascii")
            principal, token = authenticate_secret(secret)
        except (UnicodeDecodeError, InvalidToken) as exc:
            request._bearer_error = "invalid_token"
            error = exc if isinstance(exc, InvalidToken) else InvalidToken("Invalid token.")
            note_rejection(
                error, ip=context.current().ip_address, method=request.method, path=request.path
            )
            raise exceptions.AuthenticationFailed(str(error)) from None
        note_use(
            token,
            ip=context.current().ip_address,
            method=request.method,
            path=request.path,
        )
        return principal, token

    def authenticate_header(self, request):
        error = getattr(request, "_bearer_error", None)
        return f'Bearer realm="api", error="{error}"' if error else 'Bearer realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The token in the OpenAPI schema: an HTTP bearer scheme (docs/api.md)."""

    target_class = BearerTokenAuthentication
    name = "bearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token (tsk_…): Settings → API tokens; see docs/api.md.",
        }
