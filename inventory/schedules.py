"""Scan schedules: each is a django-celery-beat periodic task that runs inventory.scheduled_scan.
Callers are inside the organization's tenant scope and may manage schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import crontab
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask, PeriodicTasks

import audit

from . import audit_events
from .models import AwsAccount, ScanSchedule

MIN_INTERVAL_MINUTES = 5


class ScheduleError(ValueError):
    pass


def _check(kind: str, every_minutes: int | None, cron: str, tz: str) -> list[str]:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {tz!r}") from exc
    if kind == ScanSchedule.INTERVAL:
        if not every_minutes or every_minutes < MIN_INTERVAL_MINUTES:
            raise ScheduleError(f"an interval is at least {MIN_INTERVAL_MINUTES} minutes")
        return []
    if kind != ScanSchedule.CRON:
        raise ScheduleError("a schedule is an interval or a cron expression")
    fields = cron.split()
    if len(fields) != 5:
        raise ScheduleError("a cron expression has 5 fields: minute hour day month weekday")
    try:
        crontab(*fields[:2], day_of_month=fields[2], month_of_year=fields[3], day_of_week=fields[4])
    except (ValueError, TypeError) as exc:
        raise ScheduleError(f"invalid cron expression: {exc}") from exc
    return fields


def _beat_schedule(schedule: ScanSchedule, fields: list[str]) -> dict:
    if schedule.kind == ScanSchedule.INTERVAL:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=schedule.every_minutes, period=IntervalSchedule.MINUTES
        )
        return {"interval": interval, "crontab": None}
    minute, hour, day, month, weekday = fields
    cron, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day,
        month_of_year=month,
        day_of_week=weekday,
        timezone=schedule.timezone,
    )
    return {"interval": None, "crontab": cron}


def _sync(schedule: ScanSchedule, fields: list[str]) -> None:
    values = {
        "task": "inventory.scheduled_scan",
        "kwargs": json.dumps({"schedule_id": schedule.pk}),
        "enabled": schedule.enabled,
        **_beat_schedule(schedule, fields),
    }
    if schedule.periodic_task_id:
        PeriodicTask.objects.filter(pk=schedule.periodic_task_id).update(**values)
        # update() bypasses beat's change tracking: tell the scheduler to reload.

        PeriodicTasks.update_changed()
    else:
        schedule.periodic_task = PeriodicTask.objects.create(
            name=f"tagsense:{schedule.organization.slug}:scan-schedule:{schedule.pk}", **values
        )
        schedule.save(update_fields=["periodic_task"])


def _snapshot(schedule: ScanSchedule) -> dict:
    return {
        "name": schedule.name,
        "account": schedule.account.account_id if schedule.account else "all",
        "schedule": schedule.describe,
        "enabled": schedule.enabled,
    }


@transaction.atomic
def create_schedule(
    organization,
    *,
    name: str,
    account: AwsAccount | None,
    kind: str,
    every_minutes: int | None = None,
    cron: str = "",
    tz: str = "UTC",
    enabled: bool = True,
) -> ScanSchedule:
    fields = _check(kind, every_minutes, cron, tz)
    schedule = ScanSchedule.objects.create(
        organization=organization,
        name=name,
        account=account,
        kind=kind,
        every_minutes=every_minutes if kind == ScanSchedule.INTERVAL else None,
        cron=" ".join(fields),
        timezone=tz,
        enabled=enabled,
    )
    _sync(schedule, fields)
    audit.record(audit_events.SCHEDULE_CREATE, target=schedule, data=_snapshot(schedule))
    return schedule


@transaction.atomic
def update_schedule(schedule: ScanSchedule, **changes) -> ScanSchedule:
    before = _snapshot(schedule)
    for key, value in changes.items():
        setattr(schedule, "timezone" if key == "tz" else key, value)
    fields = _check(schedule.kind, schedule.every_minutes, schedule.cron, schedule.timezone)
    if schedule.kind == ScanSchedule.INTERVAL:
        schedule.cron = ""
    else:
        schedule.every_minutes, schedule.cron = None, " ".join(fields)
    schedule.save()
    _sync(schedule, fields)
    audit.record(
        audit_events.SCHEDULE_UPDATE,
        target=schedule,
        data={"before": before, "after": _snapshot(schedule)},
    )
    return schedule


@transaction.atomic
def delete_schedule(schedule: ScanSchedule) -> None:
    audit.record(audit_events.SCHEDULE_DELETE, target=schedule, data=_snapshot(schedule))
    if schedule.periodic_task_id:
        PeriodicTask.objects.filter(pk=schedule.periodic_task_id).delete()
    schedule.delete()


def next_run(schedule: ScanSchedule, now: datetime | None = None) -> datetime | None:
    """When beat will next run it (UTC), or None when disabled."""
    task = schedule.periodic_task
    if task is None or not schedule.enabled:
        return None
    now = now or timezone.now()
    last = task.last_run_at or now
    beat = task.schedule
    if hasattr(beat, "remaining_delta"):  # crontab: the exact next firing time
        start, delta, _ = beat.remaining_delta(last)
        return (start + delta).astimezone(UTC).replace(second=0, microsecond=0)
    return max(last + beat.run_every, now)
