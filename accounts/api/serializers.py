from rest_framework import serializers

from accounts.models import (
    ApiToken,
    Membership,
    Organization,
    ServiceAccount,
    Team,
    TokenScope,
)
from accounts.tokens import DEFAULT_EXPIRY_DAYS, EXPIRY_CHOICES, SERVICE_ACCOUNT_EXPIRY_CHOICES


class OrganizationSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["slug", "name", "created_at", "role"]

    def get_role(self, obj) -> str | None:
        role_by_org = self.context.get("role_by_org", {})
        return role_by_org.get(obj.pk)


class NewOrganizationSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    name = serializers.CharField(source="user.get_full_name")

    class Meta:
        model = Membership
        fields = ["id", "email", "name", "role", "created_at"]


class TeamSerializer(serializers.ModelSerializer):
    members = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "slug", "name", "description", "created_at", "members"]

    def get_members(self, obj) -> list[str]:
        return [tm.user.email for tm in obj.memberships.all()]


class ApiTokenSerializer(serializers.ModelSerializer):
    """A token as lists show it: the prefix, never the secret (which is not stored)."""

    status = serializers.CharField(read_only=True)

    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scope",
            "status",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "last_used_ip",
        ]
        read_only_fields = fields


class NewTokenSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=TokenScope.choices, default=TokenScope.READ)
    expires_in_days = serializers.ChoiceField(
        choices=[days for days, _ in EXPIRY_CHOICES],
        default=DEFAULT_EXPIRY_DAYS,
        help_text="Days until the token expires.",
    )


class NewServiceAccountTokenSerializer(NewTokenSerializer):
    expires_in_days = serializers.ChoiceField(
        choices=[days for days, _ in SERVICE_ACCOUNT_EXPIRY_CHOICES],
        default=DEFAULT_EXPIRY_DAYS,
        help_text="Days until the token expires; 0 for never (service accounts only).",
    )


class CreatedTokenSerializer(ApiTokenSerializer):
    """The one response that carries the secret: store it now, it is never shown again."""

    secret = serializers.SerializerMethodField()

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "secret"]
        read_only_fields = fields

    def get_secret(self, obj) -> str:
        return self.context["secret"]


class ServiceAccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = ServiceAccount
        fields = ["id", "name", "description", "role", "created_at"]
        read_only_fields = ["id", "created_at"]
        # The model's default (viewer) is for the page's form; over the API the role a
        # program gets is always chosen explicitly.
        extra_kwargs = {"role": {"required": True}}
