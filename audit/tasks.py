"""Audit chain verification as tasks (on demand for one organization, nightly for all) and
the periodic anchoring of every chain's head (CELERY_BEAT_SCHEDULE)."""

import logging
from typing import Any

from celery import shared_task

import audit
from tagsense.tenancy import get_organization_model
from tagsense.tenancy.context import current
from tagsense.tenancy.db import tenant_scope
from tagsense.tenancy.tasks import TenantTask

from . import audit_events
from .anchors import AnchorStore, AnchorStoreError, unanchored_reason
from .services import ChainNotAnchoredError, ChainReport, anchor_chain, verify_all, verify_chain

logger = logging.getLogger(__name__)


def _report_data(report: ChainReport) -> dict[str, Any]:
    data: dict[str, Any] = {
        "intact": report.intact,
        "events": report.events,
        "head": report.head_hash,
        "anchored": report.anchored,
        "anchors": report.anchors,
        "last_anchor_seq": report.last_anchor_seq,
    }
    if not report.intact:
        data["first_bad_event"] = report.first_bad.pk if report.first_bad else None
        data["problem"] = report.problem
    return data


@shared_task(base=TenantTask, name="audit.verify_organization_chain")
def verify_organization_chain() -> dict[str, Any]:
    """Verify the current organization's chain and record the result in it."""
    organization = current().organization
    assert organization is not None  # enqueued for one organization: TenantTask has set it
    report = verify_chain(organization.pk)
    data = _report_data(report)
    audit.record(audit_events.AUDIT_VERIFY, target=organization, data=data)
    return data


@shared_task(base=TenantTask, name="audit.verify_all_chains")
def verify_all_chains() -> dict[str, bool]:
    """Nightly (django-celery-beat): every chain, the global one included; each result is
    recorded in the chain it speaks of."""
    organizations = list(get_organization_model().objects.all())
    reports = verify_all([o.pk for o in organizations] + [None])
    results: dict[str, bool] = {}
    for organization, report in zip([*organizations, None], reports, strict=True):
        if organization is None:
            audit.record(audit_events.AUDIT_VERIFY, data=_report_data(report), organization=None)
            results["(global)"] = report.intact
            continue
        with tenant_scope(organization):
            audit.record(audit_events.AUDIT_VERIFY, target=organization, data=_report_data(report))
        results[organization.slug] = report.intact
    return results


@shared_task(base=TenantTask, name="audit.anchor_all_chains")
def anchor_all_chains() -> dict[str, int | str | bool]:
    """Every AUDIT_ANCHOR_INTERVAL_MINUTES: write each chain's head, the global one included,
    to the anchor store, and record each anchor in the chain it anchors. A chain the store
    refuses, or whose history since its last anchor does not verify (keyed hashes and links),
    is logged as an error, reported in the result and skipped; the others are still anchored."""
    store = AnchorStore.from_settings()
    if store is None:
        logger.warning(unanchored_reason())
        return {"unanchored": True}
    results: dict[str, int | str | bool] = {}
    for organization in [*get_organization_model().objects.order_by("pk"), None]:
        label = organization.slug if organization else "(global)"
        try:
            anchor = anchor_chain(organization, store)
        except AnchorStoreError as exc:
            logger.error("audit chain %s not anchored: %s", label, exc)
            results[label] = "failed"
            continue
        except ChainNotAnchoredError as exc:
            logger.error("audit chain %s not anchored: %s", label, exc)
            results[label] = f"refused: {exc}"
            continue
        results[label] = anchor.seq if anchor else "unchanged"
    return results
