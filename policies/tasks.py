"""Celery tasks of the policies app: the after-scan evaluation, and the daily beat tasks around
policies.exemptions and policies.scoring.scores."""

from __future__ import annotations

import logging

from celery import shared_task

import audit
from accounts.models import Organization
from inventory.models import ScanRun
from tagsense.tenancy.context import Actor, current
from tagsense.tenancy.db import tenant_scope
from tagsense.tenancy.tasks import TenantTask

from . import audit_events, evaluation
from .exemptions import expire
from .scoring.scores import record_snapshot

logger = logging.getLogger(__name__)


@shared_task(base=TenantTask, name="policies.evaluate_after_scan", tenant_transaction=False)
def evaluate_after_scan(scan_id: int) -> dict | None:
    """The findings of what a scan touched (policies.evaluation.evaluate_after_scan), queued by
    policies.receivers once the scan has committed: a transaction of its own, never the scan's.
    When it fails, nothing of it is kept, the scan stays as stored, and the failure is audited
    (policy.evaluate_fail) before the task fails; the organization's next evaluation (the
    button, the API, a rule change) evaluates what the ledger has not seen."""
    ctx = current()
    organization, actor = ctx.organization, ctx.actor
    with tenant_scope(organization):
        scan = ScanRun.objects.get(pk=scan_id)
    try:
        with tenant_scope(organization):
            return evaluation.evaluate_after_scan(scan, actor)
    except Exception as exc:
        logger.exception("the evaluation after scan %s failed", scan_id)
        audit.record(
            audit_events.EVALUATE_FAIL,
            target=scan,
            data={"trigger": "scan", "scan": scan.pk, "error": type(exc).__name__},
            organization=organization,
            actor=actor,
        )
        raise


@shared_task(name="policies.expire_exemptions")
def expire_exemptions() -> int:
    """Daily (beat): every organization's exemptions past their expiry are marked expired and
    their findings reopen, audited (reads already treat them as lapsed: policies.exemptions)."""
    reopened = 0
    for organization in Organization.objects.all():
        with tenant_scope(organization, actor=Actor.system("policies.expire_exemptions")):
            reopened += expire(organization)
    return reopened


@shared_task(name="policies.snapshot_scores")
def snapshot_scores() -> int:
    """Daily (beat): every organization's compliance scores of the day (policies.scoring.scores)."""
    rows = 0
    for organization in Organization.objects.all():
        with tenant_scope(organization, actor=Actor.system("policies.snapshot_scores")):
            rows += record_snapshot(organization, trigger="daily")
    return rows
