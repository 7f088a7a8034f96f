"""Scheduled scans: beat entries appear and follow edits, every change is audited, scans never
overlap on an account, and a scan whose worker died is closed."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from audit.models import AuditEvent
from inventory import runner, schedules
from inventory.models import AwsAccount, ScanRun, ScanSchedule, ScanUnit
from inventory.tasks import scheduled_scan
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope
from tests.conftest import client_for

from .conftest import HOME, make_account

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("test")


def test_a_schedule_made_in_the_portal_becomes_a_beat_entry(org, admin, aws_env):
    account = make_account(org, HOME, role=False, regions=["eu-west-1"])
    response = client_for(admin).post(
        f"/o/{org.slug}/inventory/schedules/",
        {
            "name": "Nightly",
            "account": str(account.pk),
            "kind": "cron",
            "cron": "30 2 * * *",
            "timezone": "Europe/Paris",
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    with tenant_scope(org):
        schedule = ScanSchedule.objects.get()
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "inventory.scheduled_scan" and task.enabled
    assert (task.crontab.minute, task.crontab.hour, str(task.crontab.timezone)) == (
        "30",
        "2",
        "Europe/Paris",
    )
    page = client_for(admin).get(f"/o/{org.slug}/inventory/schedules/").content.decode()
    assert "Nightly" in page and "cron 30 2 * * * (Europe/Paris)" in page
    with tenant_scope(org):
        nxt = schedules.next_run(schedule)
    assert timezone.now() < nxt <= timezone.now() + timedelta(days=1, minutes=1)
    paris = nxt.astimezone(ZoneInfo("Europe/Paris"))
    assert (paris.hour, paris.minute, paris.second) == (2, 30, 0)

    client_for(admin).post(
        f"/o/{org.slug}/inventory/schedules/",
        {
            "schedule": schedule.pk,
            f"s{schedule.pk}-name": "Hourly",
            f"s{schedule.pk}-kind": "interval",
            f"s{schedule.pk}-every_minutes": "60",
            f"s{schedule.pk}-timezone": "UTC",
        },
    )
    task.refresh_from_db()
    assert task.interval.every == 60 and task.crontab is None and not task.enabled
    client_for(admin).post(
        f"/o/{org.slug}/inventory/schedules/", {"schedule": schedule.pk, "delete": "1"}
    )
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    with tenant_scope(org):
        actions = list(
            AuditEvent.objects.filter(action__startswith="scan_schedule.")
            .order_by("seq")
            .values_list("action", flat=True)
        )
    assert actions == ["scan_schedule.create", "scan_schedule.update", "scan_schedule.delete"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"kind": "cron", "cron": "61 * * * *"}, "invalid cron"),
        ({"kind": "cron", "cron": "* * *"}, "5 fields"),
        ({"kind": "interval", "every_minutes": 1}, "at least 5 minutes"),
        ({"kind": "cron", "cron": "0 3 * * *", "tz": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_bad_schedules_are_refused_and_nothing_is_saved(org, fields, message):
    with tenant_scope(org), pytest.raises(schedules.ScheduleError, match=message):
        schedules.create_schedule(org, name="x", account=None, **fields)
    with tenant_scope(org):
        assert not ScanSchedule.objects.exists()
    assert not PeriodicTask.objects.filter(task="inventory.scheduled_scan").exists()


def test_scans_of_one_account_never_overlap(org, aws_env):
    make_account(org, HOME, role=False, regions=["eu-west-1"])
    scope = runner.Scope(types=("ec2:vpc",))
    with tenant_scope(org):
        first = runner.plan_scan(org, scope=scope, actor=ACTOR)
        with pytest.raises(ValueError, match=f"being scanned already \\(scan #{first.pk}\\)"):
            runner.plan_scan(org, scope=scope, actor=ACTOR)
    runner.run_scan_inline(first, actor=ACTOR, workers=1)
    with tenant_scope(org):
        second = runner.plan_scan(org, scope=scope, actor=ACTOR)  # released at the end
    assert second.units_total == 1


def test_an_expired_lease_frees_the_account(org, aws_env):
    account = make_account(org, HOME, role=False, regions=["eu-west-1"])
    scope = runner.Scope(types=("ec2:vpc",))
    with tenant_scope(org):
        runner.plan_scan(org, scope=scope, actor=ACTOR)
        AwsAccount.objects.filter(pk=account.pk).update(
            scan_lease_until=timezone.now() - timedelta(seconds=1)
        )
        assert runner.plan_scan(org, scope=scope, actor=ACTOR).units_total == 1


def test_a_scan_whose_worker_died_is_closed(org, aws_env):
    make_account(org, HOME, role=False, regions=["eu-west-1"])
    with tenant_scope(org):
        scan = runner.plan_scan(org, scope=runner.Scope(types=("ec2:vpc",)), actor=ACTOR)
        ScanRun.objects.filter(pk=scan.pk).update(
            status=ScanRun.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1)
        )
    assert runner.reap_stale_scans(org) == [scan.pk]
    with tenant_scope(org):
        scan.refresh_from_db()
        unit = scan.units.get()
        assert AwsAccount.objects.get().scan_lease_holder_id is None
    assert scan.status == ScanRun.FAILED
    assert (unit.status, unit.error_code) == (ScanUnit.FAILED, "WorkerLost")


def test_the_beat_task_plans_the_scheduled_scan(org, aws_env, monkeypatch):
    account = make_account(org, HOME, role=False, regions=["eu-west-1"])
    with tenant_scope(org):
        schedule = schedules.create_schedule(
            org, name="Every hour", account=account, kind="interval", every_minutes=60
        )
    scan_id = scheduled_scan.apply(kwargs={"schedule_id": schedule.pk}).get()
    with tenant_scope(org):
        scan = ScanRun.objects.get(pk=scan_id)
    assert (scan.trigger, scan.started_by) == ("schedule", "schedule:Every hour")
