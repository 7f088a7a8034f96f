"""The organization's audit log, filterable; auditors, admins and owners only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, time
from typing import Any

from django import forms
from django.db.models import Max, QuerySet
from django.http import HttpRequest, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.views.generic import ListView

from tagsense.tenancy.db import tenant_scope
from tagsense.tenancy.views import OrganizationViewMixin

from . import registry
from .anchors import unanchored_reason
from .audit_events import AUDIT_ANCHOR
from .exports import EXPORT_COLUMNS, csv_download, exported, jsonl_download
from .models import AuditEvent


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False)
    actor = forms.CharField(required=False, label="Actor contains")
    # One member's own actions, by user id (the assistant's use page links to it): exact, where
    # "Actor contains" would match ana@ in diana@.
    user = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    target = forms.CharField(required=False, label="Target contains")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        actions = [a.name for a in registry.all_actions()]
        families = sorted({name.split(".", 1)[0] for name in actions if "." in name})
        action = self.fields["action"]
        assert isinstance(action, forms.ChoiceField)  # declared above
        action.choices = (
            [("", "Any action")]
            + [(f"{family}.*", f"{family}.* (every {family} action)") for family in families]
            + [(name, name) for name in actions]
        )


class AuditExportForm(AuditFilterForm):
    """The page's filters, for a download: here a bad value is refused (400 naming the field)
    rather than ignored, so a file never holds more than was asked for."""

    format = forms.ChoiceField(choices=[("csv", "CSV"), ("jsonl", "JSON Lines")])

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "must not be before since")
        return data


def filter_events(queryset: QuerySet[AuditEvent], data: dict[str, Any]) -> QuerySet[AuditEvent]:
    if data.get("action", "").endswith(".*"):
        queryset = queryset.filter(action__startswith=data["action"][:-1])
    elif data.get("action"):
        queryset = queryset.filter(action=data["action"])
    if data.get("user"):
        queryset = queryset.filter(actor_kind="user", actor_id=str(data["user"]))
    if data.get("actor"):
        queryset = queryset.filter(actor_label__icontains=data["actor"])
    if data.get("target"):
        queryset = queryset.filter(target_repr__icontains=data["target"])
    if data.get("since"):
        queryset = queryset.filter(
            created_at__gte=timezone.make_aware(datetime.combine(data["since"], time.min))
        )
    if data.get("until"):
        queryset = queryset.filter(
            created_at__lte=timezone.make_aware(datetime.combine(data["until"], time.max))
        )
    return queryset


class AuditLogView(OrganizationViewMixin, ListView):
    model = AuditEvent
    required_action = "audit"
    template_name = "audit/event_list.html"
    partial_template_name = "audit/partials/_event_rows.html"
    paginate_by = 50

    # A download streams, and StreamingHttpResponse is no HttpResponse: Django takes any
    # HttpResponseBase from a view, the stubs type ListView.get narrower.
    def get(  # type: ignore[override]
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        if "format" in request.GET:
            return self.export()
        return super().get(request, *args, **kwargs)

    def export(self) -> HttpResponseBase:
        """The filtered log as CSV or JSON Lines, oldest first, with each event's hashes; as
        of the request (the download's own audit event is not in it), streamed."""
        form = AuditExportForm(self.request.GET)
        if not form.is_valid():
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        events = filter_events(
            AuditEvent.objects.restrict(self.membership, "audit"), form.cleaned_data
        )
        last = AuditEvent.objects.restrict(self.membership, "audit").aggregate(m=Max("seq"))["m"]
        events = events.filter(seq__lte=last or 0).order_by("seq")
        count = events.count()
        organization = self.organization
        filename = f"{organization.slug}-audit-log"

        def stream() -> Iterator[AuditEvent]:
            # The response streams after the view returns: reopen the tenant scope.
            with tenant_scope(organization):
                yield from events.iterator(chunk_size=2000)

        if form.cleaned_data["format"] == "csv":
            rows = (
                [json.dumps(v, sort_keys=True) if k == "data" else v for k, v in r.items()]
                for r in map(exported, stream())
            )
            return csv_download(
                "audit.events",
                header=EXPORT_COLUMNS,
                rows=rows,
                count=count,
                filename=f"{filename}.csv",
                filters=self.request.GET,
            )
        return jsonl_download(
            "audit.events",
            records=map(exported, stream()),
            count=count,
            filename=f"{filename}.jsonl",
            filters=self.request.GET,
        )

    def get_queryset(self) -> QuerySet[AuditEvent]:
        self.filter_form = AuditFilterForm(self.request.GET or None)
        queryset: QuerySet[AuditEvent] = AuditEvent.objects.restrict(self.membership, "audit")
        if self.filter_form.is_valid():
            queryset = filter_events(queryset, self.filter_form.cleaned_data)
        return queryset.order_by("-seq")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["filter_form"] = self.filter_form
        query = self.request.GET.copy()
        query.pop("page", None)
        context["query_string"] = query.urlencode()
        query.pop("format", None)
        context["export_query"] = query.urlencode()
        context["unanchored"] = unanchored_reason()
        context["last_anchor"] = (
            AuditEvent.objects.restrict(self.membership, "audit")
            .filter(action=AUDIT_ANCHOR.name)
            .order_by("-seq")
            .first()
        )
        return context
