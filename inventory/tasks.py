"""Celery tasks: a scan fans out per account × region; the last task to finish closes it."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from tagsense.tenancy.context import current
from tagsense.tenancy.db import tenant_scope
from tagsense.tenancy.tasks import TenantTask

from . import runner
from .models import ScanRun, ScanUnit


@shared_task(base=TenantTask, name="inventory.run_scan", tenant_transaction=False)
def run_scan(scan_id: int) -> None:
    """Fan a planned scan out: one task per account × region."""
    organization = current().organization
    with tenant_scope(organization):
        scan = ScanRun.objects.get(pk=scan_id)
        ScanRun.objects.filter(pk=scan_id).update(
            status=ScanRun.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now()
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
