"""Celery tasks of the assistant."""

from __future__ import annotations

from celery import shared_task

from accounts.models import Organization
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope

from .chat import close_abandoned


@shared_task(name="assistant.close_abandoned_answers")
def close_abandoned_answers() -> int:
    """Every 10 minutes (beat): every organization's answers that will never finish, closed
    and audited (assistant.chat.close_abandoned)."""

    closed = 0
    for organization in Organization.objects.all():
        actor = Actor.system("assistant.close_abandoned_answers")
        with tenant_scope(organization, actor=actor):
            closed += close_abandoned(organization)
    return closed
