"""Scheduled scans, stored as django-celery-beat periodic tasks."""

from __future__ import annotations

from django.db import models

from tagsense.tenancy.models import TenantModel

from .scoping import AccountScopedQuerySet


class ScanScheduleQuerySet(AccountScopedQuerySet):
    def in_accounts(self, accounts):
        """Schedules of the given accounts, and those of every account (no account named)."""
        return self.filter(
            models.Q(account__isnull=True) | models.Q(account__in=accounts.values("pk"))
        )


class ScanSchedule(TenantModel):
    INTERVAL, CRON = "interval", "cron"

    name = models.CharField(max_length=200)
    account = models.ForeignKey(
        "inventory.AwsAccount",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="schedules",
        help_text="Empty: every enabled account of the organization.",
    )
    kind = models.CharField(max_length=8, choices=[(INTERVAL, "Every N minutes"), (CRON, "Cron")])
    every_minutes = models.PositiveIntegerField(null=True, blank=True)
    cron = models.CharField(max_length=120, blank=True, help_text="minute hour day month weekday")
    timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ScanScheduleQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def describe(self) -> str:
        if self.kind == self.INTERVAL:
            return f"every {self.every_minutes} min"
        return f"cron {self.cron} ({self.timezone})"
