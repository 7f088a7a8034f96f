from rest_framework import serializers

from inventory.models import AwsAccount, Resource, ScanRun, ScanUnit, TagEvent
from inventory.models.accounts import ACCOUNT_ID, ROLE_ARN


class AwsAccountSerializer(serializers.ModelSerializer):
    # Regex fields, so the OpenAPI schema carries the patterns the model validates with.
    account_id = serializers.RegexField(
        ACCOUNT_ID, error_messages={"invalid": "an AWS account id is 12 digits"}
    )
    role_arn = serializers.RegexField(
        ROLE_ARN,
        required=False,
        allow_blank=True,
        error_messages={
            "invalid": "an IAM role ARN looks like arn:aws:iam::123456789012:role/TagSenseReadOnly"
        },
    )
    regions = serializers.ListField(child=serializers.CharField(max_length=32), required=False)

    class Meta:
        model = AwsAccount
        fields = [
            "id",
            "account_id",
            "name",
            "role_arn",
            "external_id",
            "regions",
            "enabled",
            "ou_path",
            "last_scanned_at",
            "created_at",
        ]
        read_only_fields = ["id", "external_id", "ou_path", "last_scanned_at", "created_at"]


class ScanUnitSerializer(serializers.ModelSerializer):
    account_id = serializers.CharField(source="account.account_id")

    class Meta:
        model = ScanUnit
        fields = [
            "account_id",
            "region",
            "resource_type",
            "status",
            "seen",
            "new",
            "changed",
            "unchanged",
            "deleted",
            "api_calls",
            "error_code",
            "error",
        ]


class ScanRunSerializer(serializers.ModelSerializer):
    progress_percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = ScanRun
        fields = [
            "id",
            "status",
            "started_by",
            "trigger",
            "scope",
            "created_at",
            "started_at",
            "finished_at",
            "units_total",
            "units_done",
            "units_failed",
            "progress_percent",
            "new",
            "changed",
            "unchanged",
            "deleted",
            "api_calls",
        ]
        read_only_fields = fields


class StartScanSerializer(serializers.Serializer):
    accounts = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    regions = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    types = serializers.ListField(child=serializers.CharField(), required=False, default=list)


class ResourceSerializer(serializers.ModelSerializer):
    account_id = serializers.CharField(source="account.account_id")
    last_seen = serializers.DateTimeField(
        read_only=True,
        help_text="When a scan last saw the resource (for a deleted one: before it went).",
    )

    class Meta:
        model = Resource
        fields = [
            "id",
            "arn",
            "account_id",
            "region",
            "resource_type",
            "resource_id",
            "name",
            "tags",
            "config",
            "first_seen",
            "last_seen",
            "deleted_at",
        ]


class TagEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = TagEvent
        fields = ["seen_at", "kind", "changes", "tags", "scan"]


class HopSerializer(serializers.Serializer):
    arn = serializers.CharField()
    depth = serializers.IntegerField()


class EdgeSerializer(serializers.Serializer):
    source_arn = serializers.CharField()
    kind = serializers.CharField()
    target_arn = serializers.CharField()
