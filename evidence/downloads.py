"""A built package as a download, for the page and the API alike: streamed from disk, its
SHA-256 in the response headers, audited (evidence.export_download) in the request's
transaction."""

from __future__ import annotations

import base64

from django.http import FileResponse, Http404

from accounts.models import Organization

from . import services
from .models import EvidenceExport

NOT_AVAILABLE = "This evidence package is not ready, or is past its retention."


def package_response(export: EvidenceExport, organization: Organization) -> FileResponse:
    """The package's file (Http404 when it is not ready or gone). The headers carry its
    SHA-256 twice: `X-Evidence-SHA256` in hex (as the page, the API and the audit log show
    it) and `Repr-Digest` (RFC 9530)."""
    if not services.is_downloadable(export):
        raise Http404(NOT_AVAILABLE)
    try:
        handle = services.package_path(export).open("rb")
    except FileNotFoundError:
        raise Http404(NOT_AVAILABLE) from None
    services.record_download(export)
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=export.file_name or services.download_name(export, organization),
        content_type="application/zip",
    )
    response["X-Evidence-SHA256"] = export.sha256
    digest = base64.b64encode(bytes.fromhex(export.sha256)).decode()
    response["Repr-Digest"] = f"sha-256=:{digest}:"
    return response
