from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.generics import ListCreateAPIView
from rest_framework.response import Response

from accounts import services
from accounts.models import Membership, Organization, Team
from tagsense.tenancy.api import OrganizationAPIView
from tagsense.tenancy.resolve import memberships_of

from .serializers import (
    MemberSerializer,
    NewOrganizationSerializer,
    OrganizationSerializer,
    TeamSerializer,
)


class MyOrganizationsView(ListCreateAPIView):
    """GET: the organizations the caller belongs to, with their role in each. POST: create one
    and become its owner (a signed-in user, as settings.TAGSENSE_ORG_CREATION allows; never an
    API token, which acts inside the one organization it belongs to)."""

    serializer_class = OrganizationSerializer
    pagination_class = None
    queryset = Organization.objects.none()

    def list(self, request, *args, **kwargs):
        if getattr(request.auth, "is_api_token", False):
            memberships = [request.auth.membership]  # a token sees its own organization only
        else:
            memberships = memberships_of(request.user)
        serializer = self.get_serializer(
            [m.organization for m in memberships],
            many=True,
            context={"role_by_org": {m.organization_id: m.role for m in memberships}},
        )
        return Response(serializer.data)

    @extend_schema(request=NewOrganizationSerializer, responses={201: OrganizationSerializer})
    def create(self, request, *args, **kwargs):
        if getattr(request.auth, "is_api_token", False):
            raise PermissionDenied("an API token cannot create an organization; sign in instead")
        if not services.may_create_organization(request.user):
            raise PermissionDenied("only superusers create organizations on this deployment")
        form = NewOrganizationSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            organization = services.create_organization(owner=request.user, **form.validated_data)
        except services.ServiceError as exc:
            raise ValidationError({"slug": [str(exc)]}) from exc
        serializer = OrganizationSerializer(
            organization, context={"role_by_org": {organization.pk: "owner"}}
        )
        return Response(serializer.data, status=status.HTTP_201_CREATED)


class OrganizationDetailView(OrganizationAPIView):
    serializer_class = OrganizationSerializer
    queryset = Organization.objects.none()

    @extend_schema(responses=OrganizationSerializer)
    def get(self, request, *args, **kwargs):
        serializer = self.get_serializer(
            self.organization, context={"role_by_org": {self.organization.pk: self.membership.role}}
        )
        return Response(serializer.data)


class MemberListView(mixins.ListModelMixin, OrganizationAPIView):
    serializer_class = MemberSerializer
    model = Membership

    def get_queryset(self):
        return super().get_queryset().select_related("user")

    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


class TeamListView(mixins.ListModelMixin, OrganizationAPIView):
    serializer_class = TeamSerializer
    model = Team

    def get_queryset(self):
        return super().get_queryset().prefetch_related("memberships__user")

    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)
