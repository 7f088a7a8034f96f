"""The DRF base class: the organization comes from the URL once authentication has run, and the
handler runs inside the tenant's transaction."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from django.db import transaction
from django.urls import reverse
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView

from accounts.access import record_denial
from accounts.mfa import MFA_REQUIRED_MESSAGE, mfa_missing
from accounts.roles import role_allows
from accounts.sso.config import (
    record_session_refused,
    session_refusal_message,
    sso_session_missing,
    sso_start_url,
)

from .context import Actor
from .db import tenant_scope
from .resolve import resolve_membership

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class OrganizationAPIView(GenericAPIView):
    """Base of every `/api/v1/o/<org_slug>/...` endpoint.

    Reads need the `view` action, writes `write_action`; another organization is a 404 exactly
    like a missing one. A browser session must satisfy the organization's mandatory SSO and
    two-factor requirements; API tokens are credentials admins issued and are not bound by
    them. Subclasses set `model` (or `queryset`) and get a scoped get_queryset().
    """

    read_action = "view"
    write_action = "change"
    model: Any = None

    def dispatch(self, request, *args, **kwargs):
        self._tenant_stack = ExitStack()
        self._in_tenant_scope = False
        self._admitted = None
        self._denial = None
        with self._tenant_stack:
            response = super().dispatch(request, *args, **kwargs)
        if self._denial is not None:
            # After the refused request's transaction was rolled back, in one of its own.
            record_denial(self._admitted, self._denial[0], **self._denial[1])
        return response

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if self._in_tenant_scope:
            # A refused request changes nothing: roll back the tenant transaction it ran in.
            transaction.set_rollback(True)
        if (
            response is not None
            and response.status_code == 403
            and self._admitted is not None
            and not getattr(exc, "audited", False)
        ):
            self._denial = (
                self.get_actor(self.request),
                {
                    "method": self.request.method,
                    "path": self.request.path,
                    "reason": str(getattr(exc, "detail", exc)),
                },
            )
        return response

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        from django.http import Http404

        token = request.auth if getattr(request.auth, "is_api_token", False) else None
        try:
            if token is not None:
                membership = self.resolve_token_membership(request, token, kwargs["org_slug"])
            else:
                membership = resolve_membership(request.user, kwargs["org_slug"])
        except Http404 as exc:
            raise NotFound("No such organization.") from exc
        self._admitted = membership  # a member or token of this organization: refusals are audited
        if self.signed_in_with_session(request):
            # People signing in are held to the organization's SSO and two-factor rules; a
            # token (personal or a service account's, which has no user) is not.
            self.check_session_requirements(request, membership)
        action = self.read_action if request.method in SAFE_METHODS else self.write_action
        if not role_allows(membership.role, action):
            raise PermissionDenied("Your role does not allow this.")
        self.membership = membership
        self.organization = membership.organization
        self._tenant_stack.enter_context(
            tenant_scope(self.organization, membership=membership, actor=self.get_actor(request))
        )
        self._in_tenant_scope = True

    @staticmethod
    def check_session_requirements(request, membership) -> None:
        """The organization's mandatory SSO and two-factor authentication, for a member
        calling with a browser session: 403 (the SSO refusal audited) naming what to do."""
        if sso_session_missing(membership, request.session):
            record_session_refused(membership, request.path)
            refusal = PermissionDenied(
                session_refusal_message(membership, request.session)
                + " Sign in at "
                + sso_start_url(membership.organization)
                + ", then call again."
            )
            refusal.audited = True  # as sso.session_refused
            raise refusal
        if mfa_missing(membership):
            raise PermissionDenied(
                MFA_REQUIRED_MESSAGE.format(organization=membership.organization.name)
                + f" Set it up at {reverse('mfa_index')}, then call again."
            )

    def resolve_token_membership(self, request, token, org_slug: str):
        """An API token acts only in its own organization (another one is a 404, like a missing
        one) and only within its scope (403 naming the missing scope)."""
        from django.http import Http404

        from accounts.tokens import missing_scope

        if token.organization.slug != org_slug:
            raise Http404("No such organization.")
        self._admitted = token.membership
        url_name = request.resolver_match.url_name if request.resolver_match else None
        needed = missing_scope(token, request.method, url_name)
        if needed:
            raise PermissionDenied(
                f"This token has the '{token.scope}' scope; this request needs the "
                f"'{needed}' scope."
            )
        return token.membership

    @staticmethod
    def signed_in_with_session(request) -> bool:
        """The two-factor requirement binds people signing in (a browser session), not
        credentials issued to programs."""
        return isinstance(request.successful_authenticator, SessionAuthentication)

    def get_actor(self, request) -> Actor:
        if getattr(request.auth, "is_api_token", False):
            from accounts.tokens import token_actor

            return token_actor(request.auth)
        return Actor.for_user(request.user)

    def get_queryset(self):
        model = self.model or self.queryset.model
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request org
            return model.objects.none()
        return model.objects.restrict(self.membership, self.read_action)
