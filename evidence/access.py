"""Reads with a permission check: an export of another organization, a missing one, and one the
member's role may not see are the same 404."""

from __future__ import annotations

import uuid

from django.shortcuts import get_object_or_404

from accounts.models import Membership

from .models import EvidenceExport


def access_export_by_uuid(membership: Membership, export_uuid: uuid.UUID) -> EvidenceExport:
    """The organization's export, for a member whose role may `audit`."""
    return get_object_or_404(EvidenceExport.objects.restrict(membership, "audit"), uuid=export_uuid)
