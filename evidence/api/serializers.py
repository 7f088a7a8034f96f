from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from evidence import services
from evidence.models import EvidenceExport


class ExportRequestSerializer(serializers.Serializer):
    """A package request. Names are checked by evidence.services: an unknown, foreign or not
    enabled one is a 400 naming its field."""

    frameworks = serializers.ListField(
        child=serializers.CharField(max_length=200),
        min_length=1,
        max_length=services.MAX_SCOPE_ITEMS,
        help_text="Framework slugs enabled in the organization (soc2, pci-dss-4.0, ...).",
    )
    controls = serializers.ListField(
        child=serializers.CharField(max_length=300),
        required=False,
        default=list,
        max_length=services.MAX_SCOPE_ITEMS,
        help_text='Only these controls, each "<framework>/<control id>" (default: every '
        "control of the frameworks).",
    )
    teams = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        default=list,
        max_length=services.MAX_SCOPE_ITEMS,
        help_text="Team slugs: the AWS accounts they hold (with `accounts`: both).",
    )
    accounts = serializers.ListField(
        child=serializers.CharField(max_length=40),
        required=False,
        default=list,
        max_length=services.MAX_SCOPE_ITEMS,
        help_text="12-digit AWS account ids. No teams and no accounts: the whole organization.",
    )
    period_start = serializers.DateField(
        required=False, help_text="First day (UTC). Default: 29 days before period_end."
    )
    period_end = serializers.DateField(
        required=False, help_text="Last day, included (UTC); not after today. Default: today."
    )


class ExportSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    requested_by = serializers.CharField(source="requested_by_label", read_only=True)
    url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = EvidenceExport
        fields = [
            "id",
            "url",
            "status",
            "progress",
            "stage",
            "error",
            "scope",
            "period_start",
            "period_end",
            "requested_by",
            "requested_at",
            "started_at",
            "finished_at",
            "size",
            "sha256",
            "key_fingerprint",
            "expires_at",
            "download_url",
        ]
        read_only_fields = fields

    def _slug(self) -> str:
        return str(self.context["org_slug"])

    def get_url(self, obj: EvidenceExport) -> str:
        return self._absolute(reverse("api-evidence-export", args=[self._slug(), obj.uuid]))

    def get_download_url(self, obj: EvidenceExport) -> str | None:
        """Set only while the package can be downloaded."""
        if not services.is_downloadable(obj):
            return None
        return self._absolute(
            reverse("api-evidence-export-download", args=[self._slug(), obj.uuid])
        )

    def _absolute(self, path: str) -> str:
        request: Any = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path
