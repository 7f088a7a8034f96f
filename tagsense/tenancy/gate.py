"""The admission gate: who may enter an organization's pages and API, decided in one place.

`admit()` turns the organization named by the URL into the membership the caller acts as, or
raises a `Refusal`. The page base class (views.py) and the API base class (api.py) both call
it and render each refusal their own way (docs/architecture.md, "The admission gate").

The identity rules it applies (single sign-on, two-factor authentication, an API token's scope)
belong to the identity app, which plugs them in as the module named by
settings.TENANCY_ADMISSION_POLICY (an `AdmissionPolicy`); the role check is the membership's
own `allows(action)`. This module imports neither.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Protocol

from django.conf import settings

from .context import Actor
from .models import Member, Organization
from .resolve import membership_of

if TYPE_CHECKING:
    from django.http import HttpRequest
    from rest_framework.request import Request


class ApiToken(Protocol):
    """What the gate asks of an API token (the identity app's, found on `request.auth`): the
    organization it belongs to and the membership it acts as (a service account's stands for
    its role)."""

    @property
    def is_api_token(self) -> bool: ...

    @property
    def organization(self) -> Organization: ...

    @property
    def membership(self) -> Member: ...


class Refusal(Exception):
    """The caller may not enter. `membership` is who they would have entered as (None when
    the organization is not theirs); `str(refusal)` is the message a person reads."""

    # True when the check that raised it has already written its own audit event.
    audited = False

    def __init__(self, message: str, membership: Member | None = None) -> None:
        super().__init__(message)
        self.membership = membership


class NotAMember(Refusal):
    """No such organization, or not the caller's (a token's: another organization's): the two
    look the same."""


class RoleForbidden(Refusal):
    """The membership's role does not allow the action the request needs."""


class TokenScopeForbidden(Refusal):
    """The API token's scope does not cover this request; the message names the scope needed."""


class SsoRequired(Refusal):
    """This browser session was not opened through the organization's own identity provider
    (recorded by the check). `sign_in_url` starts the organization's single sign-on."""

    audited = True
    membership: Member

    def __init__(self, message: str, membership: Member, *, sign_in_url: str) -> None:
        super().__init__(message, membership)
        self.sign_in_url = sign_in_url


class MfaRequired(Refusal):
    """The organization requires two-factor authentication and the member has none.
    `setup_url` sets up an authenticator now; `settings_url` is the two-factor settings page."""

    membership: Member

    def __init__(
        self, message: str, membership: Member, *, setup_url: str, settings_url: str
    ) -> None:
        super().__init__(message, membership)
        self.setup_url = setup_url
        self.settings_url = settings_url


class AdmissionPolicy(Protocol):
    """What the identity app plugs into the gate (a module of these functions)."""

    def check_session(self, membership: Member, request: HttpRequest | Request) -> None:
        """Raise SsoRequired or MfaRequired when the request's browser session may not enter."""

    def check_token(self, token: ApiToken, method: str, url_name: str | None) -> None:
        """Raise TokenScopeForbidden (for `token.membership`) when the token's scope does not
        cover the request."""

    def token_actor(self, token: ApiToken) -> Actor:
        """Who acts when the token is used."""

    def record_denial(
        self, membership: Member, actor: Actor, *, method: str, path: str, reason: str
    ) -> bool:
        """Audit a 403 refused to a member or token of the organization, in its own
        transaction (the refused request's is rolled back)."""


def policy() -> AdmissionPolicy:
    """The module named by settings.TENANCY_ADMISSION_POLICY (no default: a deployment without
    the identity checks must not start admitting people)."""
    return import_module(settings.TENANCY_ADMISSION_POLICY)


def admit(
    request: HttpRequest | Request,
    org_slug: str,
    action: str,
    *,
    token: ApiToken | None = None,
    session: bool = True,
) -> Member:
    """The membership the caller of `request` acts as in the organization `org_slug`, when its
    role allows `action`.

    With a token (`is_api_token`, carrying its `organization` and the `membership` it acts as)
    the token's organization and scope decide; otherwise `request.user`'s accepted membership,
    and with `session` (a person signing in with a browser, not a program) the organization's
    session rules (SSO, two-factor). Raises a Refusal, in this order: NotAMember,
    TokenScopeForbidden, SsoRequired, MfaRequired, RoleForbidden.
    """
    if token is not None:
        membership = _token_membership(request, token, org_slug)
    else:
        membership = _user_membership(request, org_slug, session=session)
    if not membership.allows(action):
        raise RoleForbidden("Your role does not allow this.", membership)
    return membership


def _user_membership(request: HttpRequest | Request, org_slug: str, *, session: bool) -> Member:
    membership = membership_of(request.user, org_slug)
    if membership is None:
        raise NotAMember("No such organization.")
    if session:
        policy().check_session(membership, request)
    return membership


def _token_membership(request: HttpRequest | Request, token: ApiToken, org_slug: str) -> Member:
    """A token acts only in its own organization, and only within its scope."""
    if token.organization.slug != org_slug:
        raise NotAMember("No such organization.")
    url_name = request.resolver_match.url_name if request.resolver_match else None
    policy().check_token(token, request.method or "", url_name)
    return token.membership


def token_actor(token: ApiToken) -> Actor:
    return policy().token_actor(token)


def record_denial(membership: Member, actor: Actor, *, method: str, path: str, reason: str) -> bool:
    return policy().record_denial(membership, actor, method=method, path=path, reason=reason)
