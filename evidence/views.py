"""The evidence pages: the organization's packages and the request form, one package's progress
(polled with htmx while it builds) and its download. Owners, admins and auditors (`audit`)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect
from django.views import View
from django.views.generic import ListView, TemplateView

from tagsense import clock
from tagsense.tenancy.context import Actor
from tagsense.tenancy.views import OrganizationViewMixin

from . import services
from .access import access_export_by_uuid
from .downloads import package_response
from .forms import ExportRequestForm
from .models import EvidenceExport


class ExportListView(OrganizationViewMixin, ListView):
    """The packages asked for (newest first) and the form to ask for one. A bad request is a
    400 with the form's errors naming each field; nothing is queued."""

    model = EvidenceExport
    required_action = "audit"
    template_name = "evidence/export_list.html"
    paginate_by = 50

    def get_queryset(self) -> QuerySet[EvidenceExport]:
        queryset: QuerySet[EvidenceExport] = EvidenceExport.objects.restrict(
            self.membership, "audit"
        )
        return queryset.order_by("-requested_at", "-id")

    def form(self, data: Any = None) -> ExportRequestForm:
        today = clock.now().date()
        return ExportRequestForm(data, organization=self.organization, today=today)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.setdefault("form", self.form())
        context["retention_days"] = services.retention_days()
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.form(request.POST)
        if form.is_valid():
            try:
                export = services.request_export(
                    self.organization,
                    scope=form.scope(),
                    period_start=form.cleaned_data["period_start"],
                    period_end=form.cleaned_data["period_end"],
                    actor=Actor.for_user(request.user),
                    user=request.user,
                )
            except services.ScopeError as exc:
                for field, messages in exc.errors.items():
                    form.add_error(field, messages)
            else:
                return redirect("evidence-detail", self.organization.slug, export.uuid)
        self.object_list = self.get_queryset()
        return self.render_to_response(self.get_context_data(form=form), status=400)


class ExportDetailView(OrganizationViewMixin, TemplateView):
    """One package: its scope, period and progress; the download once it is ready."""

    required_action = "audit"
    template_name = "evidence/export_detail.html"
    partial_template_name = "evidence/partials/_export_progress.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        export = access_export_by_uuid(self.membership, self.kwargs["export"])
        context["export"] = export
        context["downloadable"] = services.is_downloadable(export)
        context["building"] = export.status in (EvidenceExport.QUEUED, EvidenceExport.BUILDING)
        return context


class ExportDownloadView(OrganizationViewMixin, View):
    """The package's ZIP, streamed; audited with its SHA-256."""

    required_action = "audit"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        export = access_export_by_uuid(self.membership, kwargs["export"])
        return package_response(export, self.organization)
