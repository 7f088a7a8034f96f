"""The DRF base class: the organization comes from the URL once authentication has run, and the
handler runs inside the tenant's transaction."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, cast

from django.db import transaction
from django.db.models import Manager, QuerySet
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from .context import Actor
from .db import tenant_scope
from .gate import (
    ApiToken,
    MfaRequired,
    NotAMember,
    Refusal,
    SsoRequired,
    admit,
    record_denial,
    token_actor,
)
from .models import Member, Organization, TenantModel

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class RefusedPermission(PermissionDenied):
    """A 403 the gate refused: `audited` when the check that refused has recorded it itself."""

    def __init__(self, detail: str, *, audited: bool) -> None:
        super().__init__(detail)
        self.audited = audited


class OrganizationAPIView(GenericAPIView[Any]):
    """Base of every `/api/v1/o/<org_slug>/...` endpoint.

    Reads need the `view` action, writes `write_action`; another organization is a 404 exactly
    like a missing one. A browser session must satisfy the organization's mandatory SSO and
    two-factor requirements; API tokens are credentials admins issued and are not bound by
    them. Subclasses set `model` (or `queryset`) and get a scoped get_queryset().
    """

    read_action = "view"
    write_action = "change"
    model: type[TenantModel] | None = None
    # Set by initial() once the gate admitted the request.
    membership: Member
    organization: Organization
    _tenant_stack: ExitStack
    _in_tenant_scope: bool
    # Who was admitted, or who a refusal was for (None: not of this organization).
    _admitted: Member | None
    # The actor and the record_denial() keywords of a 403 to audit after the rollback.
    _denial: tuple[Actor, dict[str, str]] | None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self._tenant_stack = ExitStack()
        self._in_tenant_scope = False
        self._admitted = None
        self._denial = None
        with self._tenant_stack:
            response = super().dispatch(request, *args, **kwargs)
        if self._denial is not None and self._admitted is not None:
            # After the refused request's transaction was rolled back, in one of its own.
            record_denial(self._admitted, self._denial[0], **self._denial[1])
        return response

    def handle_exception(self, exc: Exception) -> Response:
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
                    "method": self.request.method or "",
                    "path": self.request.path,
                    "reason": str(getattr(exc, "detail", exc)),
                },
            )
        return response

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        auth = request.auth
        token = cast("ApiToken", auth) if getattr(auth, "is_api_token", False) else None
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
        return RefusedPermission(detail, audited=refusal.audited)

    @staticmethod
    def signed_in_with_session(request: Request) -> bool:
        """The two-factor requirement binds people signing in (a browser session), not
        credentials issued to programs."""
        return isinstance(request.successful_authenticator, SessionAuthentication)

    def get_actor(self, request: Request) -> Actor:
        if getattr(request.auth, "is_api_token", False):
            return token_actor(cast("ApiToken", request.auth))
        return Actor.for_user(request.user)

    def get_queryset(self) -> QuerySet[Any]:
        # A tenant model: `model`, or else the model of `queryset` (one of them is set).
        model: type[TenantModel] = (
            self.model or cast("QuerySet[Any] | Manager[Any]", self.queryset).model
        )
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request org
            return model.objects.none()
        return model.objects.restrict(self.membership, self.read_action)
