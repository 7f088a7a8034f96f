"""Resources (identified by ARN within an organization) and the history of their tags."""

from __future__ import annotations

from django.db import models

from tagsense.tenancy.models import TenantModel, TenantQuerySet


class ResourceQuerySet(TenantQuerySet):
    def live(self):
        return self.filter(deleted_at__isnull=True)

    def untagged(self):
        return self.filter(tags={})

    def in_region(self, region: str):
        return self.filter(region=region)

    def of_type(self, resource_type: str):
        return self.filter(resource_type=resource_type)


class Resource(TenantModel):
    account = models.ForeignKey("inventory.AwsAccount", on_delete=models.CASCADE, related_name="+")
    arn = models.CharField(max_length=2048)
    region = models.CharField(max_length=32)
    resource_type = models.CharField(max_length=64)
    resource_id = models.CharField(max_length=1024)
    name = models.CharField(max_length=1024, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    # SHA-1 of name, tags and config: an unchanged resource is recognised without reading them.
    fingerprint = models.CharField(max_length=40)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = ResourceQuerySet.as_manager()

    class Meta:
        ordering = ["resource_type", "name", "arn"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "arn"], name="uniq_resource_arn")
        ]
        indexes = [
            models.Index(
                fields=["organization", "account", "region", "resource_type"],
                name="resource_unit_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.resource_id


class TagEvent(TenantModel):
    """What one scan saw change in one resource's tags.

    `changes` is a list of {"key", "old", "new", "kind"} with kind one of added, changed,
    removed; a resource's first sighting is kind "discovered" with its tags in `tags`.
    """

    DISCOVERED = "discovered"
    CHANGED = "changed"
    DELETED = "deleted"
    RESTORED = "restored"

    resource = models.ForeignKey(Resource, on_delete=models.CASCADE, related_name="tag_events")
    scan = models.ForeignKey(
        "inventory.ScanRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    seen_at = models.DateTimeField()
    kind = models.CharField(max_length=16)
    changes = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=dict, blank=True, help_text="The tags after this event.")

    class Meta:
        ordering = ["-seen_at", "-id"]
        indexes = [models.Index(fields=["resource", "seen_at"], name="tagevent_resource_idx")]
