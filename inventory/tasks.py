"""Celery tasks: a scan fans out per account × region; the last task to finish closes it."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from accounts.models import Organization
from tagsense import clock
from tagsense.tenancy import context
from tagsense.tenancy.context import Actor, current
from tagsense.tenancy.db import all_tenants, tenant_scope
from tagsense.tenancy.tasks import TenantTask

from . import runner
from .costs import import_costs as run_import
from .models import AwsAccount, ScanRun, ScanSchedule, ScanUnit
from .runner import Scope, plan_scan
from .runner import reap_stale_scans as reap


@shared_task(base=TenantTask, name="inventory.run_scan", tenant_transaction=False)
def run_scan(scan_id: int) -> None:
    """Fan a planned scan out: one task per account × region."""
    organization = current().organization
    with tenant_scope(organization):
        scan = ScanRun.objects.get(pk=scan_id)
        ScanRun.objects.filter(pk=scan_id).update(
            status=ScanRun.RUNNING, started_at=clock.now(), heartbeat_at=clock.now()
        )
        pairs = sorted(
            set(scan.units.values_list("account_id", "region")),
        )
    for account_pk, region in pairs:
        scan_account_region.delay(scan_id, account_pk, region)


@shared_task(base=TenantTask, name="inventory.scan_account_region", tenant_transaction=False)
def scan_account_region(scan_id: int, account_pk: int, region: str) -> None:
    organization = current().organization
    with tenant_scope(organization):
        scan = ScanRun.objects.get(pk=scan_id)
        units = list(
            scan.units.filter(
                account_id=account_pk, region=region, status=ScanUnit.PENDING
            ).select_related("account")
        )
    for unit in units:
        unit.organization = organization
        unit.scan = scan
    runner.run_units(units, workers=2)
    with tenant_scope(organization), transaction.atomic():
        remaining = (
            ScanUnit.objects.filter(scan_id=scan_id)
            .filter(status__in=[ScanUnit.PENDING, ScanUnit.RUNNING])
            .exists()
        )
    if not remaining:
        runner.finish_scan(scan, current().actor)


@shared_task(name="inventory.scheduled_scan")
def scheduled_scan(schedule_id: int) -> int | None:
    """Run by beat: plan the schedule's scan and fan it out. Busy accounts are skipped (the
    scan that holds them is still running)."""

    with all_tenants():
        schedule = (
            ScanSchedule.objects.select_related("organization", "account")
            .filter(pk=schedule_id, enabled=True)
            .first()
        )
    if schedule is None:
        return None
    actor = Actor.system(f"schedule:{schedule.name}")
    scope = Scope(account_ids=(schedule.account.account_id,) if schedule.account else ())
    with context.use(actor=actor, organization=schedule.organization):
        try:
            with tenant_scope(schedule.organization, actor=actor):
                scan = plan_scan(
                    schedule.organization, scope=scope, actor=actor, trigger="schedule"
                )
                run_scan.delay_on_commit(scan.pk)
        except ValueError:
            return None
    return scan.pk


@shared_task(name="inventory.reap_stale_scans")
def reap_stale_scans() -> list[int]:
    """Every few minutes (beat): close scans whose workers died."""

    reaped: list[int] = []
    for organization in Organization.objects.all():
        reaped.extend(reap(organization))
    return reaped


@shared_task(base=TenantTask, name="inventory.import_costs", tenant_transaction=False)
def import_costs(account_ids: list[str] | None = None) -> dict | None:
    """Import the organization's resource costs from Cost Explorer (inventory.costs); AWS is
    called outside any transaction. None when the organization has no enabled account."""

    ctx = current()
    try:
        return run_import(ctx.organization, actor=ctx.actor, account_ids=account_ids or ())
    except ValueError:
        return None


@shared_task(name="inventory.import_all_costs")
def import_all_costs() -> int:
    """Daily (beat; the entry is disabled until an operator enables it, since Cost Explorer
    bills each request and resource-level data is an opt-in): one import_costs task per
    organization with an enabled account."""

    actor = Actor.system("inventory.import_all_costs")
    queued = 0
    for organization in Organization.objects.all():
        with tenant_scope(organization, actor=actor):
            if not AwsAccount.objects.for_org(organization).enabled().exists():
                continue
        with context.use(actor=actor, organization=organization):
            import_costs.delay()
        queued += 1
    return queued
