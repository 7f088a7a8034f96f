"""API tokens over the API. These endpoints take a signed-in session only, never a token: a
token cannot mint, list or revoke tokens, so a leaked token cannot outlive its expiry by
creating a successor."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts import tokens
from accounts.access import (
    access_own_token_by_id,
    access_service_account_by_id,
    access_service_account_token_by_id,
)
from accounts.models import ApiToken, ServiceAccount
from accounts.services import ServiceError
from tagsense.api import SessionAuthentication
from tagsense.tenancy.api import OrganizationAPIView

from .serializers import (
    ApiTokenSerializer,
    CreatedTokenSerializer,
    NewServiceAccountTokenSerializer,
    NewTokenSerializer,
    ServiceAccountSerializer,
)


def _created(token: ApiToken, secret: str) -> Response:
    body = CreatedTokenSerializer(token, context={"secret": secret}).data
    return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class _TokenManagementView(OrganizationAPIView):
    authentication_classes = [SessionAuthentication]


class PersonalTokenListView(_TokenManagementView):
    """The caller's own tokens for this organization (any role); POST creates one."""

    serializer_class = ApiTokenSerializer
    model = ApiToken
    write_action = "view"
    pagination_class = None

    def get_queryset(self):
        return super().get_queryset().filter(user_id=self.membership.user_id)

    @extend_schema(responses=ApiTokenSerializer(many=True))
    def get(self, request, *args, **kwargs):
        return Response(ApiTokenSerializer(self.get_queryset(), many=True).data)

    @extend_schema(request=NewTokenSerializer, responses={201: CreatedTokenSerializer})
    def post(self, request, *args, **kwargs):
        form = NewTokenSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            token, secret = tokens.create_personal_token(self.membership, **form.validated_data)
        except ServiceError as exc:
            raise ValidationError({"detail": [str(exc)]}) from exc
        return _created(token, secret)


class PersonalTokenRevokeView(_TokenManagementView):
    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.none()
    write_action = "view"

    @extend_schema(request=None, responses=ApiTokenSerializer)
    def post(self, request, *args, **kwargs):
        token = access_own_token_by_id(self.membership, kwargs["pk"])
        try:
            token = tokens.revoke_token(token, by=request.user)
        except ServiceError as exc:
            raise ValidationError({"detail": [str(exc)]}) from exc
        return Response(ApiTokenSerializer(token).data)


class ServiceAccountListView(_TokenManagementView):
    """The organization's service accounts (owners and admins)."""

    serializer_class = ServiceAccountSerializer
    model = ServiceAccount
    read_action = write_action = "manage"
    pagination_class = None

    @extend_schema(responses=ServiceAccountSerializer(many=True))
    def get(self, request, *args, **kwargs):
        return Response(ServiceAccountSerializer(self.get_queryset(), many=True).data)

    @extend_schema(responses={201: ServiceAccountSerializer})
    def post(self, request, *args, **kwargs):
        form = ServiceAccountSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            account = tokens.create_service_account(
                self.organization, by=request.user, **form.validated_data
            )
        except ServiceError as exc:
            raise ValidationError({"detail": [str(exc)]}) from exc
        return Response(ServiceAccountSerializer(account).data, status=status.HTTP_201_CREATED)


class ServiceAccountTokenListView(_TokenManagementView):
    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.none()
    read_action = write_action = "manage"
    pagination_class = None

    @extend_schema(responses=ApiTokenSerializer(many=True))
    def get(self, request, *args, **kwargs):
        account = access_service_account_by_id(self.membership, kwargs["pk"])
        rows = ApiToken.objects.restrict(self.membership, "manage").filter(service_account=account)
        return Response(ApiTokenSerializer(rows, many=True).data)

    @extend_schema(
        request=NewServiceAccountTokenSerializer, responses={201: CreatedTokenSerializer}
    )
    def post(self, request, *args, **kwargs):
        account = access_service_account_by_id(self.membership, kwargs["pk"])
        form = NewServiceAccountTokenSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            token, secret = tokens.create_service_account_token(
                account, by=request.user, **form.validated_data
            )
        except ServiceError as exc:
            raise ValidationError({"detail": [str(exc)]}) from exc
        return _created(token, secret)


class ServiceAccountTokenRevokeView(_TokenManagementView):
    serializer_class = ApiTokenSerializer
    queryset = ApiToken.objects.none()
    read_action = write_action = "manage"

    @extend_schema(request=None, responses=ApiTokenSerializer)
    def post(self, request, *args, **kwargs):
        account = access_service_account_by_id(self.membership, kwargs["account_pk"])
        token = access_service_account_token_by_id(account, self.membership, kwargs["pk"])
        try:
            token = tokens.revoke_token(token, by=request.user)
        except ServiceError as exc:
            raise ValidationError({"detail": [str(exc)]}) from exc
        return Response(ApiTokenSerializer(token).data)
