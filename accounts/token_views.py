"""API token pages: a member's personal tokens (any role) and the organization's service
accounts (owners and admins). A new secret is rendered once, in the POST's own response, with
`Cache-Control: no-store`; it is never stored, redirected through the session, or shown again."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.generic import TemplateView

from tagsense.tenancy.views import OrganizationViewMixin

from . import tokens
from .access import (
    access_own_token_by_id,
    access_service_account_by_id,
    access_service_account_token_by_id,
)
from .forms import PersonalTokenForm, ServiceAccountForm, ServiceAccountTokenForm
from .models import ApiToken, ServiceAccount
from .roles import role_allows
from .services import ServiceError
from .views import ActionView


def _report_form_errors(request, form) -> None:
    for field, errors in form.errors.items():
        messages.error(request, f"{field}: {' '.join(errors)}")


class _ShowsSecretOnce:
    """Renders the page; after a successful create, with the new secret and no caching."""

    new_token: ApiToken | None = None
    new_secret: str = ""

    def render_with_secret(self, token: ApiToken, secret: str):
        self.new_token, self.new_secret = token, secret
        response = self.render_to_response(self.get_context_data())  # type: ignore[attr-defined]
        add_never_cache_headers(response)
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)  # type: ignore[misc]
        context["new_token"] = self.new_token
        context["new_secret"] = self.new_secret
        return context


class PersonalTokensView(_ShowsSecretOnce, OrganizationViewMixin, TemplateView):
    """The member's own tokens for this organization; POST creates one."""

    template_name = "accounts/tokens.html"
    required_action = "view"
    form: PersonalTokenForm | None = None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["tokens"] = ApiToken.objects.restrict(self.membership).filter(
            user_id=self.membership.user_id
        )
        context["form"] = self.form or PersonalTokenForm()
        context["ci_routes"] = sorted(tokens.CI_WRITE_ROUTES)
        context["can_manage"] = role_allows(self.membership.role, "manage")
        return context

    def post(self, request, *args, **kwargs):
        self.form = PersonalTokenForm(request.POST)
        if not self.form.is_valid():
            _report_form_errors(request, self.form)
            return self.get(request, *args, **kwargs)
        try:
            token, secret = tokens.create_personal_token(self.membership, **self.form.cleaned_data)
        except ServiceError as exc:
            messages.error(request, str(exc))
            return self.get(request, *args, **kwargs)
        self.form = None
        return self.render_with_secret(token, secret)


class RevokePersonalTokenView(ActionView):
    required_action = "view"

    def perform(self, data):
        token = access_own_token_by_id(self.membership, self.kwargs["pk"])
        tokens.revoke_token(token, by=self.request.user)
        messages.success(self.request, f"Token {token.prefix}… revoked.")

    def get_success_url(self):
        return reverse("api-tokens", kwargs={"org_slug": self.organization.slug})


class ServiceAccountsView(_ShowsSecretOnce, OrganizationViewMixin, TemplateView):
    """The organization's service accounts and their tokens; POST creates an account."""

    template_name = "accounts/service_accounts.html"
    required_action = "manage"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        accounts = list(ServiceAccount.objects.restrict(self.membership, "manage"))
        by_account: dict[int, list[ApiToken]] = {a.pk: [] for a in accounts}
        for token in ApiToken.objects.restrict(self.membership, "manage").filter(
            service_account__isnull=False
        ):
            by_account[token.service_account_id].append(token)
        base = reverse("service-accounts", kwargs={"org_slug": self.organization.slug})
        for account in accounts:
            account.token_list = by_account[account.pk]
            account.revoke_url_base = f"{base}{account.pk}/tokens/"
        context.update(
            accounts=accounts,
            account_form=ServiceAccountForm(),
            token_form=ServiceAccountTokenForm(),
        )
        return context

    def post(self, request, *args, **kwargs):
        form = ServiceAccountForm(request.POST)
        if not form.is_valid():
            _report_form_errors(request, form)
        else:
            try:
                account = tokens.create_service_account(
                    self.organization, by=request.user, **form.cleaned_data
                )
                messages.success(request, f"Service account {account.name} created.")
            except ServiceError as exc:
                messages.error(request, str(exc))
        return redirect("service-accounts", org_slug=self.organization.slug)


class CreateServiceAccountTokenView(ServiceAccountsView):
    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        account = access_service_account_by_id(self.membership, self.kwargs["pk"])
        form = ServiceAccountTokenForm(request.POST)
        if not form.is_valid():
            _report_form_errors(request, form)
            return redirect("service-accounts", org_slug=self.organization.slug)
        try:
            token, secret = tokens.create_service_account_token(
                account, by=request.user, **form.cleaned_data
            )
        except ServiceError as exc:
            messages.error(request, str(exc))
            return redirect("service-accounts", org_slug=self.organization.slug)
        return self.render_with_secret(token, secret)


class RevokeServiceAccountTokenView(ActionView):
    def perform(self, data):
        account = access_service_account_by_id(self.membership, self.kwargs["account_pk"])
        token = access_service_account_token_by_id(account, self.membership, self.kwargs["pk"])
        tokens.revoke_token(token, by=self.request.user)
        messages.success(self.request, f"Token {token.prefix}… of {account.name} revoked.")

    def get_success_url(self):
        return reverse("service-accounts", kwargs={"org_slug": self.organization.slug})
