"""The page base class: resolves the organization from the URL, checks the role, and runs the
view (rendering included) inside the tenant's transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.template.response import SimpleTemplateResponse
from django.urls import Resolver404, resolve
from django.views.generic.base import ContextMixin, TemplateResponseMixin, View

from .context import Actor
from .db import tenant_scope
from .gate import MfaRequired, NotAMember, Refusal, SsoRequired, admit, record_denial
from .models import Member, Organization, TenantModel

if TYPE_CHECKING:
    from django_htmx.middleware import HtmxDetails

    # What the mixin finds beside it in every organization page: Django's template view,
    # list, detail and form classes (in the order TemplateView has them, so that the MRO of
    # `class Page(OrganizationViewMixin, ListView)` still resolves). At run time the mixin
    # derives from object alone, as a mixin must.
    class _PageBase(TemplateResponseMixin, ContextMixin, View): ...

else:
    _PageBase = object


def wants_fragment(request: HttpRequest) -> bool:
    """The one rule for answering with an HTMX fragment instead of the whole page."""
    # Set by django-htmx's middleware, when it runs.
    htmx: HtmxDetails | None = getattr(request, "htmx", None)
    return htmx is not None and bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def may_open(membership: Member, path: str) -> bool:
    """Whether the member's role passes the role check of the organization page at `path` (a
    GET): the `required_action` of the view it resolves to. What the links a member is shown
    are checked against, so that no menu leads to a 403. A view deciding its action per request
    (get_required_action) is judged by its class attribute; link those pages with care."""

    try:
        view_class = getattr(resolve(path).func, "view_class", None)
    except Resolver404:
        return False
    action = getattr(view_class, "required_action", None)
    return action is not None and membership.allows(action)


class OrganizationViewMixin(_PageBase):
    """Base of every organization page (`/o/<org_slug>/...`).

    Anonymous users go to the login page; an organization the user does not belong to is a 404
    exactly like a missing one; in an organization that requires single sign-on, a session not
    opened through its IdP is refused (403, audited) unless the member is a break-glass owner;
    a member without two-factor authentication in an organization that requires it is sent to
    set it up; a role without `required_action` is a 403.
    """

    required_action = "view"
    # The action POST and other unsafe methods need, when it differs from required_action.
    write_action: str | None = None
    partial_template_name: str | None = None
    # The page that explains an SsoRequired refusal (the identity app's template).
    sso_required_template_name = "accounts/sso_required.html"
    model: type[TenantModel] | None = None
    # Set by dispatch() once the gate admitted the request.
    membership: Member
    organization: Organization
    # Who was admitted, or who a refusal was for (None: not of this organization).
    _admitted: Member | None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        self._admitted = None
        try:
            return self._dispatch_member(request, *args, **kwargs)
        except PermissionDenied as exc:
            # Audited once the refused request's transaction is rolled back.
            membership = getattr(self, "_admitted", None)
            if membership is not None:
                # The 403 page shows its menu (tagsense.errors). attr-defined: Django's request
                # takes ad-hoc attributes.
                request.denied_membership = membership  # type: ignore[attr-defined]
                record_denial(
                    membership,
                    Actor.for_user(request.user),
                    method=request.method or "",
                    path=request.path,
                    reason=str(exc) or "Forbidden",
                )
            raise

    def _dispatch_member(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with transaction.atomic():
            try:
                membership = admit(request, kwargs["org_slug"], self.get_required_action())
            except NotAMember as refusal:
                raise Http404(str(refusal)) from None
            except SsoRequired as refusal:
                return self.sso_required_response(request, refusal)
            except MfaRequired as refusal:
                return self.mfa_setup_redirect(request, refusal)
            except Refusal as refusal:
                self._admitted = refusal.membership
                raise PermissionDenied(str(refusal)) from None
            self._admitted = membership
            self.membership = membership
            self.organization = membership.organization
            if request.session.get("last_org") != self.organization.slug:
                request.session["last_org"] = self.organization.slug
            with tenant_scope(
                self.organization, membership=membership, actor=Actor.for_user(request.user)
            ):
                response = super().dispatch(request, *args, **kwargs)
                # Templates render inside the tenant's transaction, not after it.
                if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
                    response.render()
        return response

    def mfa_setup_redirect(self, request: HttpRequest, refusal: MfaRequired) -> HttpResponse:
        messages.warning(request, str(refusal))
        if getattr(request, "htmx", None):  # htmx follows a 302 itself: make it a full load
            return HttpResponse(status=204, headers={"HX-Redirect": refusal.setup_url})
        return redirect(refusal.setup_url)

    def sso_required_response(self, request: HttpRequest, refusal: SsoRequired) -> HttpResponse:
        """The page explains and offers the organization's SSO sign-in (the refusal is
        audited by the check that raised it)."""
        if getattr(request, "htmx", None):  # a fragment cannot show this: load the whole page
            return HttpResponse(status=204, headers={"HX-Redirect": request.get_full_path()})
        return render(
            request,
            self.sso_required_template_name,
            {
                "sso_organization": refusal.membership.organization,
                "message": str(refusal),
                "sso_login_url": refusal.sign_in_url,
            },
            status=403,
        )

    def get_required_action(self) -> str:
        if self.write_action and self.request.method not in ("GET", "HEAD", "OPTIONS"):
            return self.write_action
        return self.required_action

    def get_queryset(self) -> QuerySet[Any]:
        assert self.model is not None, "a page without get_queryset() names its model"
        return self.model.objects.restrict(self.membership, "view")

    def get_template_names(self) -> list[str]:
        if self.partial_template_name and wants_fragment(self.request):
            return [self.partial_template_name]
        return super().get_template_names()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["organization"] = self.organization
        context["membership"] = self.membership
        return context
