"""Each organization's evidence signing keys, and the packages its members asked for."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from tagsense.tenancy.models import TenantModel


class EvidenceKey(TenantModel):
    """An Ed25519 key pair that signs the organization's evidence manifests (evidence.keys).
    The private key is stored encrypted (tagsense.crypto); the public key stays published after
    rotation (retired_at set), so a package signed before can still be verified."""

    fingerprint = models.CharField(max_length=64, help_text="SHA256:<base64> of the raw public key")
    public_key = models.TextField(help_text="PEM (SubjectPublicKeyInfo)")
    private_key = models.TextField(help_text="PKCS#8 PEM, encrypted with tagsense.crypto")
    created_at = models.DateTimeField()
    created_by = models.CharField(max_length=255, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(retired_at__isnull=True),
                name="uniq_evidence_key_active",
            ),
            models.UniqueConstraint(
                fields=["organization", "fingerprint"], name="uniq_evidence_key_fingerprint"
            ),
        ]

    def __str__(self) -> str:
        return self.fingerprint


class EvidenceExport(TenantModel):
    """One requested package: its scope and period, its build's progress, and the file once
    built (evidence.package). Kept until `expires_at`, then its file is removed."""

    QUEUED, BUILDING, READY, FAILED, EXPIRED = "queued", "building", "ready", "failed", "expired"
    STATUSES = [(s, s) for s in (QUEUED, BUILDING, READY, FAILED, EXPIRED)]

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    status = models.CharField(max_length=16, choices=STATUSES, default=QUEUED)
    # {"frameworks": [slug], "controls": ["<framework>/<control>"], "teams": [slug],
    #  "accounts": ["<12 digits>"]}: empty lists mean all.
    scope = models.JSONField(default=dict, blank=True)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=255, blank=True)
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0-100")
    stage = models.CharField(max_length=120, blank=True)
    error = models.TextField(blank=True)
    file_name = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    key_fingerprint = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]

    def __str__(self) -> str:
        return f"evidence {self.uuid} ({self.status})"
