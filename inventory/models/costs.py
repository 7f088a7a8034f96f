"""What resources cost: one row per resource, AWS service, day and source (inventory.costs)."""

from __future__ import annotations

from django.db import models

from tagsense.tenancy.models import TenantModel

from .resources import _bulk_organization
from .scoping import AccountScopedQuerySet


class ResourceCost(TenantModel):
    """The cost of one resource over [period_start, period_end) as one source reported it.

    Imports from Cost Explorer write one row per day (its DAILY granularity); `period_end` is
    exclusive, as in Cost Explorer. `cost_resource_id` is the RESOURCE_ID Cost Explorer groups
    by (an instance or volume id, or an ARN); `resource` and `arn` are filled when it names a
    resource of the inventory. Rows with source "demo" are invented for the demo organization
    (demo.costs) and are never measured."""

    COST_EXPLORER, DEMO = "cost_explorer", "demo"
    SOURCES = [(COST_EXPLORER, "AWS Cost Explorer"), (DEMO, "Demo data, not measured")]

    organization = _bulk_organization()
    account = models.ForeignKey(
        "inventory.AwsAccount", on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    resource = models.ForeignKey(
        "inventory.Resource",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    arn = models.CharField(max_length=2048, blank=True, help_text="The resource's, when known.")
    cost_resource_id = models.CharField(
        max_length=2048, help_text="The resource as the source names it (Cost Explorer RESOURCE_ID)"
    )
    service = models.CharField(max_length=200, help_text="The AWS service the cost is for")
    period_start = models.DateField()
    period_end = models.DateField(help_text="Exclusive")
    amount = models.DecimalField(max_digits=24, decimal_places=10)
    currency = models.CharField(max_length=3, default="USD")
    source = models.CharField(max_length=16, choices=SOURCES)
    imported_at = models.DateTimeField()

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-period_start", "cost_resource_id"]
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "organization",
                    "account",
                    "source",
                    "period_start",
                    "service",
                    "cost_resource_id",
                ],
                name="uniq_resource_cost",
            )
        ]
        # The scores read a window of days per organization.
        indexes = [models.Index(fields=["organization", "period_start"], name="cost_period_idx")]

    def __str__(self) -> str:
        return f"{self.cost_resource_id} {self.period_start}: {self.amount} {self.currency}"
