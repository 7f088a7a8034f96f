from rest_framework import serializers

from accounts.models import Membership, Organization, Team


class OrganizationSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Organization
        fields = ["slug", "name", "created_at", "role"]

    def get_role(self, obj) -> str | None:
        role_by_org = self.context.get("role_by_org", {})
        return role_by_org.get(obj.pk)


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
