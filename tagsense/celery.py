"""Celery: Redis in tests and production, kombu's filesystem transport on the embedded default.

Tasks that act for an organization use TenantTask (tagsense.tenancy.tasks): the organization
and the actor travel with the message, and the worker runs inside the same tenancy and audit
context.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.local")

app = Celery("tagsense")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
