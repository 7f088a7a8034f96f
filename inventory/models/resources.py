"""Resources (identified by ARN within an organization) and the history of their tags."""

from __future__ import annotations

from django.db import models
from django.db.models import Case, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest

from tagsense.jsonq import JsonKeyIs
from tagsense.tenancy.models import TenantModel

from ..scanners.base import scanners
from .scans import UnitCoverage
from .scoping import AccountScopedQuerySet

GLOBAL = "global"  # the region of a unit that scans a global service once per account


def _bulk_organization() -> models.ForeignKey:
    """The organization key of the bulk inventory tables: no database constraint and no index of
    its own. Row-level security already confines every row to its organization, each table's
    unique index starts with the column, and a deferred foreign-key check per written row was
    the largest single cost of committing a scan page (docs/benchmarks.md)."""
    return models.ForeignKey(
        "accounts.Organization",
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )


class ResourceQuerySet(AccountScopedQuerySet):
    def live(self):
        return self.filter(deleted_at__isnull=True)

    def with_last_seen(self):
        """Annotate `last_seen`. A scan does not rewrite the rows it finds unchanged: a live
        resource was seen by the latest successful scan of its unit (account, region, type),
        recorded once per unit in UnitCoverage; a deleted one was last seen when last written."""

        global_types = [t for t, cls in scanners().items() if cls.global_region]
        covered = UnitCoverage.objects.filter(
            organization=OuterRef("organization"),
            account=OuterRef("account"),
            resource_type=OuterRef("resource_type"),
            region=OuterRef("unit_region"),
        ).values("seen_at")[:1]
        return self.annotate(
            unit_region=Case(
                When(resource_type__in=global_types, then=Value(GLOBAL)),
                default=F("region"),
                output_field=models.CharField(),
            ),
            last_seen=Case(
                When(
                    deleted_at__isnull=True,
                    then=Greatest("last_written", Coalesce(Subquery(covered), "last_written")),
                ),
                default=F("last_written"),
            ),
        )

    def untagged(self):
        return self.filter(tags={})

    def tagged(self, key: str, value: str | None = None):
        """Resources carrying the tag `key` (with `value`, when given), compared exactly, for
        any key text (tagsense.jsonq)."""
        return self.filter(JsonKeyIs("tags", key, value))

    def lacking_tag(self, key: str):
        return self.exclude(JsonKeyIs("tags", key))

    def in_region(self, region: str):
        return self.filter(region=region)

    def of_type(self, resource_type: str):
        return self.filter(resource_type=resource_type)


class Resource(TenantModel):
    organization = _bulk_organization()
    account = models.ForeignKey(
        "inventory.AwsAccount", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
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
    first_scan = models.ForeignKey(
        "inventory.ScanRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    # When the stored row last changed (first seen, a change, a restore, the deletion). Last seen
    # is derived: ResourceQuerySet.with_last_seen().
    last_written = models.DateTimeField()
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


class TagEventQuerySet(AccountScopedQuerySet):
    account_lookup = "resource__account"


class TagEvent(TenantModel):
    """What one scan saw change in one resource's tags.

    `changes` is a list of {"key", "old", "new", "kind"} with kind one of added, changed,
    removed. A resource's first sighting is not stored as an event: its tags then are the
    resource's tags with every later change undone (`timeline()`), so a first scan of a large
    estate writes no history rows.
    """

    DISCOVERED = "discovered"  # only in timeline(), never stored
    CHANGED = "changed"
    DELETED = "deleted"
    RESTORED = "restored"

    organization = _bulk_organization()
    resource = models.ForeignKey(
        Resource,
        on_delete=models.CASCADE,
        related_name="tag_events",
        db_constraint=False,
        db_index=False,  # tagevent_resource_idx starts with it
    )
    scan = models.ForeignKey(
        "inventory.ScanRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    seen_at = models.DateTimeField()
    kind = models.CharField(max_length=16)
    changes = models.JSONField(default=list, blank=True)
    tags = models.JSONField(default=dict, blank=True, help_text="The tags after this event.")

    objects = TagEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seen_at", "-id"]
        indexes = [models.Index(fields=["resource", "seen_at"], name="tagevent_resource_idx")]
