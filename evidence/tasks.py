"""Celery tasks of evidence packages: the build (queued by evidence.services.request_export once
the request commits) and the hourly expiry of packages past their retention."""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path
from typing import Any

from celery import shared_task

from accounts.models import Organization
from tagsense.tenancy.context import Actor, current
from tagsense.tenancy.db import tenant_scope
from tagsense.tenancy.tasks import TenantTask

from . import package, services
from .models import EvidenceExport

logger = logging.getLogger(__name__)

# The export's row is written at most this often while it builds (and only when the progress
# changed): the page polls it every second; the builder reports far more often.
PROGRESS_INTERVAL = 0.5


class ProgressWriter:
    """on_progress for evidence.package.build: keeps the latest stage (named in the error if
    the build fails) and writes the row, throttled."""

    def __init__(self, export: EvidenceExport, interval: float = PROGRESS_INTERVAL):
        self.export = export
        self.interval = interval
        self.stage = "starting"
        self.writes = 0
        self._written: tuple[int, str] | None = None
        self._at = float("-inf")

    def __call__(self, percent: int, stage: str) -> None:
        self.stage = stage
        now = time.monotonic()
        if (percent, stage) == self._written or now - self._at < self.interval:
            return
        with tenant_scope(self.export.organization):
            services.save_progress(self.export, percent, stage)
        self._written, self._at = (percent, stage), now
        self.writes += 1


def _digest(path: Path) -> tuple[int, str]:
    sha256, size = hashlib.sha256(), 0
    with path.open("rb") as fp:
        while chunk := fp.read(1 << 20):
            sha256.update(chunk)
            size += len(chunk)
    return size, sha256.hexdigest()


@shared_task(
    base=TenantTask,
    name="evidence.build_export",
    bind=True,
    acks_late=True,
    tenant_transaction=False,
)
def build_export(self: Any, export_id: int) -> str:
    """Build one requested package (evidence.package.build) and mark it ready, with its size,
    SHA-256, signing key and expiry; or failed, with a message members may read, nothing of
    it on disk. Each outcome audited in the transaction that records it. Acknowledged after
    it runs: a worker lost mid-build has the message redelivered, and the build starts over
    (a finished or failed export is left alone)."""
    organization = current().organization
    with tenant_scope(organization):
        export = services.start_build(export_id)
    if export is None:
        return "skipped"
    progress = ProgressWriter(export)
    try:
        package.build(export, progress)
        size, sha256 = _digest(services.package_path(export))
        with tenant_scope(organization):
            services.complete_build(
                export, size=size, sha256=sha256, key_fingerprint=export.key_fingerprint
            )
    except Exception as exc:
        # Whatever was written goes, the finished file too if recording it failed.
        services.partial_path(export).unlink(missing_ok=True)
        services.package_path(export).unlink(missing_ok=True)
        logger.exception("evidence package %s failed at %s", export.uuid, progress.stage)
        if isinstance(exc, package.BuildError):
            message = str(exc)
        else:
            message = (
                f"The package could not be built (at: {progress.stage}). The error was logged "
                f"with request id {current().request_id}; request the package again, or ask "
                "an administrator."
            )
        with tenant_scope(organization):
            services.fail_build(
                export, error=message, stage=progress.stage, reason=type(exc).__name__
            )
        return EvidenceExport.FAILED
    return EvidenceExport.READY


@shared_task(name="evidence.expire_exports")
def expire_exports() -> int:
    """Hourly (beat): every organization's packages past their retention lose their file and
    are marked expired, each audited (evidence.services.expire_exports)."""
    expired = 0
    for organization in Organization.objects.all():
        with tenant_scope(organization, actor=Actor.system("evidence.expire_exports")):
            expired += services.expire_exports(organization)
    return expired
