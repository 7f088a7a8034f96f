"""The organization's audit log, filterable; auditors, admins and owners only."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.views.generic import ListView

from tagsense.tenancy.views import OrganizationViewMixin

from . import registry
from .anchors import unanchored_reason
from .audit_events import AUDIT_ANCHOR
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
        context["unanchored"] = unanchored_reason()
        context["last_anchor"] = (
            AuditEvent.objects.restrict(self.membership, "audit")
            .filter(action=AUDIT_ANCHOR.name)
            .order_by("-seq")
            .first()
        )
        return context
