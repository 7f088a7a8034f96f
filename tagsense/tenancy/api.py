"""The DRF base class: the organization comes from the URL once authentication has run, and the
handler runs inside the tenant's transaction."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from django.db import transaction
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView

from .context import Actor
from .db import tenant_scope
from .gate import (
    MfaRequired,
    NotAMember,
    Refusal,
    SsoRequired,
    admit,
    record_denial,
    token_actor,
)

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
        token = request.auth if getattr(request.auth, "is_api_token", False) else None
        action = self.read_action if request.method in SAFE_METHODS else self.write_action
        try:
            # People signing in are held to the organization's SSO and two-factor rules; a
            # token (personal or a service account's, which has no user) is not.
            membership = admit(
                request,
                kwargs["org_slug"],
                action,
                token=token,
                session=self.signed_in_with_session(request),
            )
        except NotAMember as refusal:
            raise NotFound(str(refusal)) from None
        except Refusal as refusal:
            self._admitted = refusal.membership  # a member or token of this organization
            raise self.refusal_exception(refusal) from None
        self._admitted = membership  # refusals from here on are audited
        self.membership = membership
        self.organization = membership.organization
        self._tenant_stack.enter_context(
            tenant_scope(self.organization, membership=membership, actor=self.get_actor(request))
        )
        self._in_tenant_scope = True

    @staticmethod
    def refusal_exception(refusal: Refusal) -> PermissionDenied:
        """A 403 naming what to do: sign in through the organization's SSO (already audited,
        as sso.session_refused), set up two-factor authentication, or what the role or the
        token's scope lacks."""
        if isinstance(refusal, SsoRequired):
            detail = f"{refusal} Sign in at {refusal.sign_in_url}, then call again."
        elif isinstance(refusal, MfaRequired):
            detail = f"{refusal} Set it up at {refusal.settings_url}, then call again."
        else:
            detail = str(refusal)
        exception = PermissionDenied(detail)
        exception.audited = refusal.audited
        return exception

    @staticmethod
    def signed_in_with_session(request) -> bool:
        """The two-factor requirement binds people signing in (a browser session), not
        credentials issued to programs."""
        return isinstance(request.successful_authenticator, SessionAuthentication)

    def get_actor(self, request) -> Actor:
        if getattr(request.auth, "is_api_token", False):
            return token_actor(request.auth)
        return Actor.for_user(request.user)

    def get_queryset(self):
        model = self.model or self.queryset.model
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request org
            return model.objects.none()
        return model.objects.restrict(self.membership, self.read_action)
