"""The audit actions of evidence packages and of the keys that sign them. Each export action
carries the export's id; completion and download also the package's SHA-256, so the file an
auditor holds can be matched to its request in the log."""

from audit.registry import register

KEY_CREATE = register(
    "evidence.key_create",
    "The organization's evidence signing key was created (its fingerprint; never the key)",
)
KEY_ROTATE = register(
    "evidence.key_rotate",
    "The evidence signing key was rotated: the old one retired (still published), a new one "
    "created (both fingerprints)",
)
EVIDENCE_EXPORT_REQUEST = register(
    "evidence.export_request", "An evidence package was requested (scope and period)"
)
EVIDENCE_EXPORT_COMPLETE = register(
    "evidence.export_complete", "An evidence package was built (its size and SHA-256)"
)
EVIDENCE_EXPORT_FAIL = register(
    "evidence.export_fail", "An evidence package could not be built (nothing of it was kept)"
)
EVIDENCE_EXPORT_DOWNLOAD = register(
    "evidence.export_download", "An evidence package was downloaded (its SHA-256)"
)
EVIDENCE_EXPORT_EXPIRE = register(
    "evidence.export_expire", "An evidence package passed its retention and its file was deleted"
)
