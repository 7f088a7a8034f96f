from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins
from rest_framework.request import Request
from rest_framework.response import Response

from audit.models import AuditEvent
from audit.views import AuditFilterForm, filter_events
from tagsense.tenancy.api import OrganizationAPIView

from .serializers import AuditEventSerializer


class AuditEventListView(mixins.ListModelMixin, OrganizationAPIView):
    """The organization's audit events, newest first. Owners, admins and auditors."""

    serializer_class = AuditEventSerializer
    model = AuditEvent
    read_action = "audit"

    def get_queryset(self) -> QuerySet[AuditEvent]:
        queryset: QuerySet[AuditEvent] = super().get_queryset().order_by("-seq")
        form = AuditFilterForm(self.request.query_params)
        if form.is_valid():
            queryset = filter_events(queryset, form.cleaned_data)
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter("action", OpenApiTypes.STR),
            OpenApiParameter("actor", OpenApiTypes.STR, description="actor label contains"),
            OpenApiParameter("target", OpenApiTypes.STR, description="target text contains"),
            OpenApiParameter("since", OpenApiTypes.DATE),
            OpenApiParameter("until", OpenApiTypes.DATE),
        ]
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)
