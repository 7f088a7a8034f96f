"""Celery: Redis in tests and production, kombu's filesystem transport on the embedded default.

Tasks that act for an organization use TenantTask (tagsense.tenancy.tasks): the organization
and the actor travel with the message, and the worker runs inside the same tenancy and audit
context.
"""

import gc
import os

from celery import Celery
from celery.signals import worker_process_init, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.local")

app = Celery("tagsense")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
@worker_process_init.connect
def freeze_heap(**kwargs):
    """Set the worker's long-lived objects (Django, botocore's service models) aside from the
    garbage collector: a scan page's parse creates ~100,000 objects, and each collection it
    triggers would otherwise walk the whole heap (inventory.runner.run_units does the same)."""
    gc.freeze()
