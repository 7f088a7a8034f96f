"""A scan run and its units (account × region × resource type), with live progress."""

from __future__ import annotations

from django.db import models

from tagsense import clock
from tagsense.tenancy.models import TenantModel

from .scoping import AccountScopedQuerySet


class ScanRunQuerySet(AccountScopedQuerySet):
    def in_accounts(self, accounts):
        """Scan runs with at least one unit under the given accounts."""
        units = ScanUnit.objects.filter(
            scan=models.OuterRef("pk"), account__in=accounts.values("pk")
        )
        return self.filter(models.Exists(units))


class ScanRun(TenantModel):
    PENDING, RUNNING, SUCCEEDED, PARTIAL, FAILED = (
        "pending",
        "running",
        "succeeded",
        "partial",
        "failed",
    )
    STATUS_CHOICES = [(s, s) for s in (PENDING, RUNNING, SUCCEEDED, PARTIAL, FAILED)]

    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=PENDING)
    started_by = models.CharField(max_length=255, help_text="User e-mail or system task name")
    trigger = models.CharField(max_length=16, default="manual")  # manual | schedule | cli | demo
    scope = models.JSONField(default=dict, blank=True, help_text="accounts, regions, types asked")
    # tagsense.clock: a replayed scan (demo.simulation) is created at its simulated moment.
    created_at = models.DateTimeField(default=clock.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    units_total = models.PositiveIntegerField(default=0)
    units_done = models.PositiveIntegerField(default=0)
    units_failed = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)

    objects = ScanRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"scan {self.pk} ({self.status})"

    @property
    def progress_percent(self) -> int:
        return int(100 * self.units_done / self.units_total) if self.units_total else 0

    @property
    def is_finished(self) -> bool:
        return self.status in (self.SUCCEEDED, self.PARTIAL, self.FAILED)


class ScanUnit(TenantModel):
    PENDING, RUNNING, SUCCEEDED, FAILED, SKIPPED = (
        "pending",
        "running",
        "succeeded",
        "failed",
        "skipped",
    )

    scan = models.ForeignKey(ScanRun, on_delete=models.CASCADE, related_name="units")
    account = models.ForeignKey("inventory.AwsAccount", on_delete=models.CASCADE, related_name="+")
    region = models.CharField(max_length=32)
    resource_type = models.CharField(max_length=64)
    status = models.CharField(max_length=16, default=PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    seen = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=128, blank=True)
    error = models.TextField(blank=True)

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        ordering = ["account_id", "region", "resource_type"]
        indexes = [models.Index(fields=["scan", "status"], name="scanunit_status_idx")]


class UnitCoverage(TenantModel):
    """When a unit (account × region × type) last completed a scan. Every live resource of the
    unit was seen then: the scan does not rewrite the rows it finds unchanged, so this one row
    stands for their last sighting (Resource.objects.with_last_seen())."""

    account = models.ForeignKey("inventory.AwsAccount", on_delete=models.CASCADE, related_name="+")
    region = models.CharField(max_length=32)  # "global" for a global service's unit
    resource_type = models.CharField(max_length=64)
    seen_at = models.DateTimeField()
    scan = models.ForeignKey(
        ScanRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "account", "resource_type", "region"],
                name="uniq_unit_coverage",
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.region}/{self.resource_type} at {self.seen_at}"
