"""Audit chain verification as tasks: on demand for one organization, nightly for all."""

from celery import shared_task

import audit
from accounts.models import Organization
from tagsense.tenancy.context import current
from tagsense.tenancy.db import tenant_scope
from tagsense.tenancy.tasks import TenantTask

from .services import verify_all, verify_chain


def _report_data(report) -> dict:
    data = {"intact": report.intact, "events": report.events, "head": report.head_hash}
    if not report.intact:
        data["first_bad_event"] = report.first_bad.pk if report.first_bad else None
        data["problem"] = report.problem
    return data


@shared_task(base=TenantTask, name="audit.verify_organization_chain")
def verify_organization_chain() -> dict:
    """Verify the current organization's chain and record the result in it."""
    organization = current().organization
    report = verify_chain(organization.pk)
    data = _report_data(report)
    audit.record("audit.verify", target=organization, data=data)
    return data


@shared_task(base=TenantTask, name="audit.verify_all_chains")
def verify_all_chains() -> dict:
    """Nightly (django-celery-beat): every chain, the global one included; each result is
    recorded in the chain it speaks of."""
    organizations = list(Organization.objects.all())
    reports = verify_all([o.pk for o in organizations] + [None])
    results = {}
    for organization, report in zip([*organizations, None], reports, strict=True):
        if organization is None:
            audit.record("audit.verify", data=_report_data(report), organization=None)
            results["(global)"] = report.intact
            continue
        with tenant_scope(organization):
            audit.record("audit.verify", target=organization, data=_report_data(report))
        results[organization.slug] = report.intact
    return results
