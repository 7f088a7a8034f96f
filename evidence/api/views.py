"""Evidence API: request a package (202, built in the background), poll it, download it.
Owners, admins and auditors (`audit`); a token needs the `write` scope to request one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import Http404
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from evidence import services
from evidence.access import access_export_by_uuid
from evidence.downloads import package_response
from evidence.forms import DEFAULT_DAYS
from evidence.models import EvidenceExport
from tagsense import clock
from tagsense.tenancy.api import OrganizationAPIView

from .serializers import ExportRequestSerializer, ExportSerializer


class _ExportView(OrganizationAPIView):
    model = EvidenceExport
    read_action = "audit"
    write_action = "audit"
    serializer_class = ExportSerializer

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "org_slug": self.kwargs.get("org_slug", "")}


class ExportListView(mixins.ListModelMixin, _ExportView):
    """The organization's evidence packages, newest first. POST requests one: 202 with the
    export to poll; a bad scope or period is a 400 naming the field, and nothing is queued."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.list(request, *args, **kwargs)

    def get_queryset(self) -> Any:
        return super().get_queryset().order_by("-requested_at", "-id")

    @extend_schema(request=ExportRequestSerializer, responses={202: ExportSerializer})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = ExportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        today = clock.now().date()
        end = data.get("period_end", today)
        start = data.get("period_start", end - timedelta(days=DEFAULT_DAYS - 1))
        try:
            export = services.request_export(
                self.organization,
                scope={f: data.get(f, []) for f in services.SCOPE_FIELDS},
                period_start=start,
                period_end=end,
                actor=self.get_actor(request),
                user=request.user,
            )
        except services.ScopeError as exc:
            raise ValidationError(exc.errors) from exc
        return Response(self.get_serializer(export).data, status=202)


class ExportDetailView(_ExportView):
    """One package: status, progress and stage while it builds; size, SHA-256, signing key,
    expiry and download URL once ready."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        export = access_export_by_uuid(self.membership, kwargs["export"])
        return Response(self.get_serializer(export).data)


class ExportDownloadView(_ExportView):
    """The package's ZIP (application/zip), with its SHA-256 in `X-Evidence-SHA256` and
    `Repr-Digest`. 404 while it is not ready, and after its retention."""

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(
                response=OpenApiTypes.BINARY, description="The package (a ZIP)"
            )
        }
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        export = access_export_by_uuid(self.membership, kwargs["export"])
        try:
            return package_response(export, self.organization)
        except Http404 as exc:
            raise NotFound(str(exc)) from None
