"""Celery tasks of the policies app: thin wrappers around policies.exemptions."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="policies.expire_exemptions")
def expire_exemptions() -> int:
    """Daily (beat): every organization's expired exemptions reopen their findings."""
    from accounts.models import Organization
    from tagsense.tenancy.context import Actor
    from tagsense.tenancy.db import tenant_scope

    from .exemptions import expire

    reopened = 0
    for organization in Organization.objects.all():
        with tenant_scope(organization, actor=Actor.system("policies.expire_exemptions")):
            reopened += expire(organization)
    return reopened


@shared_task(name="policies.snapshot_scores")
def snapshot_scores() -> int:
    """Daily (beat): every organization's compliance scores of the day (policies.scores)."""
    from accounts.models import Organization
    from tagsense.tenancy.context import Actor
    from tagsense.tenancy.db import tenant_scope

    from .scores import record_snapshot

    rows = 0
    for organization in Organization.objects.all():
        with tenant_scope(organization, actor=Actor.system("policies.snapshot_scores")):
            rows += record_snapshot(organization, trigger="daily")
    return rows
