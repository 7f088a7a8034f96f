"""Inventory API: accounts, scan runs (list, start, status), resources (the page's filters,
cursor pagination) and graph queries."""

from __future__ import annotations

from django import forms
from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.fields import empty
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from inventory import graph, history, services
from inventory.access import hidden_arns, scan_scope_for, scans_as_seen_by
from inventory.filters import ResourceFilterForm, filter_resources
from inventory.models import AwsAccount, Resource, ScanRun, ScanUnit, TagEvent
from inventory.runner import RegionDiscoveryError, Scope
from tagsense.api import PROBLEM_CONTENT_TYPE
from tagsense.api_schema import ProblemSerializer
from tagsense.tenancy.api import OrganizationAPIView

from .serializers import (
    AwsAccountSerializer,
    EdgeSerializer,
    HopSerializer,
    ResourceSerializer,
    ScanRunSerializer,
    ScanUnitSerializer,
    StartScanSerializer,
    TagEventSerializer,
)


class AccountListView(mixins.ListModelMixin, OrganizationAPIView):
    """AWS accounts. POST registers one (owners and admins)."""

    serializer_class = AwsAccountSerializer
    model = AwsAccount
    write_action = "manage"

    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(responses={201: AwsAccountSerializer})
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            account = services.register_account(self.organization, **serializer.validated_data)
        except services.ServiceError as exc:
            raise ValidationError({"account_id": [str(exc)]}) from exc
        return Response(self.get_serializer(account).data, status=201)


class AccountDetailView(OrganizationAPIView):
    serializer_class = AwsAccountSerializer
    model = AwsAccount

    def get(self, request, *args, **kwargs):
        account = get_object_or_404(self.get_queryset(), pk=kwargs["pk"])
        return Response(self.get_serializer(account).data)


class AwsUnavailable(APIException):
    status_code = 502
    default_detail = "AWS did not answer."
    default_code = "aws_unavailable"


class ScanListView(mixins.ListModelMixin, OrganizationAPIView):
    """Scan runs, newest first. POST starts one (editors and up) and answers 202."""

    serializer_class = ScanRunSerializer
    model = ScanRun

    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    def paginate_queryset(self, queryset):
        page = super().paginate_queryset(queryset)
        return None if page is None else scans_as_seen_by(self.membership, page)

    @extend_schema(
        request=StartScanSerializer,
        responses={
            202: ScanRunSerializer,
            (502, PROBLEM_CONTENT_TYPE): OpenApiResponse(
                response=ProblemSerializer,
                description="AWS did not list an account's enabled regions (its role, AWS "
                "unreachable); nothing was started",
            ),
        },
    )
    def post(self, request, *args, **kwargs):
        body = StartScanSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        scope = Scope(
            tuple(body.validated_data["accounts"]),
            tuple(body.validated_data["regions"]),
            tuple(body.validated_data["types"]),
        )
        try:
            scope = scan_scope_for(self.membership, scope)
            with transaction.atomic():
                scan = services.start_scan(
                    self.organization, actor=self.get_actor(request), scope=scope, trigger="api"
                )
        except RegionDiscoveryError as exc:
            raise AwsUnavailable(str(exc)) from exc
        except ValueError as exc:
            raise ValidationError({"scope": [str(exc)]}) from exc
        return Response(ScanRunSerializer(scan).data, status=202)


class ScanDetailView(OrganizationAPIView):
    serializer_class = ScanRunSerializer
    model = ScanRun

    def get(self, request, *args, **kwargs):
        scan = get_object_or_404(self.get_queryset(), pk=kwargs["pk"])
        [scan] = scans_as_seen_by(self.membership, [scan])
        data = ScanRunSerializer(scan).data
        data["failed_units"] = ScanUnitSerializer(
            ScanUnit.objects.restrict(self.membership)
            .filter(scan=scan, status="failed")
            .select_related("account")[:100],
            many=True,
        ).data
        return Response(data)


class ResourceCursor(CursorPagination):
    page_size = 100
    max_page_size = 1000
    page_size_query_param = "page_size"
    ordering = "-id"


def _filter_parameter(name: str, field: forms.Field) -> OpenApiParameter:
    """The resource page's filter field as a query parameter that says what the form accepts:
    a choice is an enum, a checkbox a boolean, `tag` must hold an "=" (key=value)."""
    description = str(field.label or name)
    if isinstance(field, forms.ChoiceField):
        return OpenApiParameter(
            name, OpenApiTypes.STR, description=description, enum=[v for v, _ in field.choices]
        )
    if isinstance(field, forms.BooleanField):
        return OpenApiParameter(name, OpenApiTypes.BOOL, description=description)
    pattern = "=" if name == "tag" else None
    return OpenApiParameter(name, OpenApiTypes.STR, description=description, pattern=pattern)


FILTER_PARAMETERS = [
    _filter_parameter(name, field)
    for name, field in ResourceFilterForm.base_fields.items()
    if name != "sort"
]


class ResourceListView(mixins.ListModelMixin, OrganizationAPIView):
    serializer_class = ResourceSerializer
    model = Resource
    pagination_class = ResourceCursor

    def get_queryset(self):
        queryset = super().get_queryset().select_related("account").with_last_seen()
        form = ResourceFilterForm(self.request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors)
        data = {k: v for k, v in form.cleaned_data.items() if k != "sort"}
        return filter_resources(queryset, data).order_by("-id")

    @extend_schema(parameters=FILTER_PARAMETERS)
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


class ResourceDetailView(OrganizationAPIView):
    serializer_class = ResourceSerializer
    model = Resource

    def get(self, request, *args, **kwargs):
        resource = get_object_or_404(self.get_queryset().with_last_seen(), pk=kwargs["pk"])
        data = ResourceSerializer(resource).data
        data["timeline"] = TagEventSerializer(
            history.timeline(resource, TagEvent.objects.restrict(self.membership)), many=True
        ).data
        return Response(data)


class ResourceGraphView(OrganizationAPIView):
    """Graph queries from one resource: `neighbours`, `blast-radius?depth=N&direction=D`,
    `path?to=ID`."""

    serializer_class = HopSerializer
    model = Resource

    @extend_schema(
        operation_id="inventory_resource_graph_query",
        parameters=[
            OpenApiParameter("depth", OpenApiTypes.INT, description="blast-radius: 1..6"),
            OpenApiParameter(
                "direction",
                OpenApiTypes.STR,
                enum=graph.DIRECTIONS,
                default=graph.DEPENDENTS,
                description="blast-radius: dependents (what is affected if this resource breaks "
                "or changes), dependencies (what it relies on) or both",
            ),
            OpenApiParameter("to", OpenApiTypes.INT, description="path: the other resource id"),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request, *args, **kwargs):
        resource = get_object_or_404(self.get_queryset(), pk=kwargs["pk"])
        query = kwargs["query"]
        if query == "neighbours":
            edges = graph.neighbours(self.organization, resource.arn)
            hidden = self.hidden([e.source_arn for e in edges] + [e.target_arn for e in edges])
            edges = [e for e in edges if not {e.source_arn, e.target_arn} & hidden]
            return Response({"edges": EdgeSerializer(edges, many=True).data})
        if query == "blast-radius":
            try:
                depth = int(request.query_params.get("depth", 3))
            except ValueError as exc:
                raise ValidationError({"depth": ["a whole number from 1 to 6"]}) from exc
            direction = request.query_params.get("direction", graph.DEPENDENTS)
            if direction not in graph.DIRECTIONS:
                raise ValidationError({"direction": [f"one of {', '.join(graph.DIRECTIONS)}"]})
            hops = graph.blast_radius(self.organization, resource.arn, depth, direction)
            hidden = self.hidden([h.arn for h in hops])
            hops = [h for h in hops if h.arn not in hidden]
            return Response(
                {
                    "depth": depth,
                    "direction": direction,
                    "resources": HopSerializer(hops, many=True).data,
                }
            )
        to = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
        try:
            other_pk = to.run_validation(request.query_params.get("to", empty))
        except ValidationError as exc:
            raise ValidationError({"to": exc.detail}) from None
        other = get_object_or_404(self.get_queryset(), pk=other_pk)
        chain = graph.path(self.organization, resource.arn, other.arn)
        # A path through a resource the member may not see is not shown at all.
        return Response({"path": [] if self.hidden(chain) else chain})

    def hidden(self, arns: list[str]) -> set[str]:
        """ARNs of resources in accounts the caller may not see (inventory.access)."""
        return hidden_arns(self.membership, arns)
