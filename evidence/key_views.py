"""The organization's evidence signing keys: the page that lists them (owners, admins,
auditors), their public halves as PEM at stable addresses (any member), and rotation (owners
and admins, POST only, audited as evidence.key_rotate). The private half never reaches here:
evidence.keys keeps it."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.generic import TemplateView, View

from tagsense.tenancy.views import OrganizationViewMixin

from . import keys
from .models import EvidenceKey


class EvidenceKeysView(OrganizationViewMixin, TemplateView):
    template_name = "evidence/keys.html"
    required_action = "audit"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        published = list(
            EvidenceKey.objects.restrict(self.membership, "audit").order_by("-created_at", "-id")
        )
        context["keys"] = [(key, keys.url_token(key.fingerprint)) for key in published]
        context["can_rotate"] = self.membership.allows("manage")
        return context


class RotateEvidenceKeyView(OrganizationViewMixin, View):
    """Retire the active key (still published) and create its successor."""

    required_action = "manage"
    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = keys.rotate(self.organization)
        messages.success(
            request,
            f"New evidence signing key {key.fingerprint}. The previous key stays published: "
            "packages it signed still verify.",
        )
        return redirect("evidence-keys", org_slug=self.organization.slug)


class PublicKeyView(OrganizationViewMixin, View):
    """One published key's public half as PEM (`token`: its fingerprint as url_token spells
    it), or, without a token, the active key's. A key of another organization, or none, is a
    404. Not audited: a public key is no data of the organization's, and reading it changes
    nothing."""

    required_action = "view"
    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, *args: Any, token: str = "", **kwargs: Any) -> HttpResponse:
        visible = EvidenceKey.objects.restrict(self.membership, "view")
        if token:
            key = visible.filter(fingerprint=keys.from_url_token(token)).first()
        else:
            key = visible.filter(retired_at__isnull=True).first()
        if key is None:
            raise Http404("no such evidence key")
        response = HttpResponse(key.public_key, content_type="application/x-pem-file")
        name = f"{self.organization.slug}-evidence-{keys.url_token(key.fingerprint)[:16]}.pem"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["X-Key-Fingerprint"] = key.fingerprint
        return response
