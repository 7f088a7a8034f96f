"""manifest.json and manifest.sig of an evidence package (docs/evidence.md).

manifest.json lists every other file of the package with its size and SHA-256, says what the
package covers (organization, scope, period, who generated it, when, with which version), the
audit-log segment it carries and the audit chain's head at export time, and names the key that
signs it. manifest.sig holds the Ed25519 signature of manifest.json's exact bytes.

The bytes are deterministic: keys sorted, UTF-8 (non-ASCII as itself), two-space indentation
so a person can read the file, a final newline. The signature covers the bytes, not a
re-serialisation: a verifier never needs to rebuild them (evidence/verify_package.py).
"""

from __future__ import annotations

import base64
import json
import posixpath
from datetime import datetime
from typing import Any

from . import keys
from .content import Header
from .models import EvidenceKey

FORMAT = "tagsense-evidence/1"
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
AUDIT_LOG_NAME = "audit-log.jsonl"
SEGMENT_FIELDS = (
    "events",
    "first_seq",
    "last_seq",
    "prev_hash",
    "prev_digest",
    "last_hash",
    "last_digest",
)

# An instance of accounts.Organization.
Organization = Any


class ManifestError(ValueError):
    """What the builder handed over cannot make a manifest (a bad name, a missing field)."""


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ManifestError(f"{moment!r} has no time zone: a manifest's times carry an offset")
    return moment.isoformat()


def check_member_name(name: str) -> None:
    """A package member's name: relative, forward slashes, no "." or ".." part, not one of the
    manifest's own files (the verifier refuses the same)."""
    parts = name.split("/")
    if (
        not name
        or name.startswith("/")
        or "\\" in name
        or ":" in parts[0]
        or any(part in ("", ".", "..") for part in parts)
        or posixpath.normpath(name) != name
        or any(ord(c) < 32 for c in name)
    ):
        raise ManifestError(f"{name!r} is not a plain relative file name")
    if name in (MANIFEST_NAME, SIGNATURE_NAME):
        raise ManifestError(f"{name} is the manifest's own file, not listed in it")


def _files(files: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
    listed: dict[str, dict[str, Any]] = {}
    for name, size, sha256 in files:
        check_member_name(name)
        if name in listed:
            raise ManifestError(f"{name} is listed twice")
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ManifestError(f"{name}: {sha256!r} is not a lowercase hex SHA-256")
        if size < 0:
            raise ManifestError(f"{name}: negative size")
        listed[name] = {"name": name, "size": size, "sha256": sha256}
    if AUDIT_LOG_NAME not in listed:
        raise ManifestError(f"{AUDIT_LOG_NAME} (the audit segment) is not among the files")
    return [listed[name] for name in sorted(listed)]


def manifest_bytes(
    header: Header,
    files: list[tuple[str, int, str]],
    audit_segment: dict[str, Any],
    chain_head: dict[str, Any],
    key: EvidenceKey,
) -> bytes:
    """manifest.json of a package.

    `files`: (name, size in bytes, lowercase hex SHA-256) of every member but manifest.json and
    manifest.sig, audit-log.jsonl among them. `audit_segment`: what
    audit.exports.write_chain_segment() returned for audit-log.jsonl. `chain_head`:
    audit.exports.chain_head() at export time. `key`: the key that will sign it (what
    evidence.keys.active_key() gave); signature_bytes() signs with the key named here."""
    missing = [f for f in SEGMENT_FIELDS if f not in audit_segment]
    if missing:
        raise ManifestError(f"the audit segment lacks {', '.join(missing)}")
    head_missing = [f for f in ("seq", "hash", "digest") if f not in chain_head]
    if head_missing:
        raise ManifestError(f"the chain head lacks {', '.join(head_missing)}")
    scope = header.scope
    manifest = {
        "format": FORMAT,
        "package_id": header.package_id,
        "organization": {"slug": header.organization_slug, "name": header.organization_name},
        "scope": {
            "frameworks": list(scope.frameworks),
            "controls": list(scope.controls),
            "teams": list(scope.teams),
            "accounts": list(scope.accounts),
        },
        "period": {"start": _iso(header.period.start), "end": _iso(header.period.end)},
        "generated_at": _iso(header.generated_at),
        "generated_by": header.generated_by,
        "generator": header.generator,
        "files": _files(files),
        "audit_log": {
            "file": AUDIT_LOG_NAME,
            **{field: audit_segment[field] for field in SEGMENT_FIELDS},
        },
        "chain_head": {f: chain_head[f] for f in ("seq", "hash", "digest")},
        "signing_key": {
            "algorithm": keys.ALGORITHM,
            "fingerprint": key.fingerprint,
            "public_key": key.public_key,
        },
    }
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def signature_bytes(organization: Organization, manifest: bytes) -> bytes:
    """manifest.sig for `manifest` (manifest_bytes()'s output): a small JSON document

        {"algorithm": "Ed25519", "key_fingerprint": "SHA256:...", "signature": "<base64>"}

    where signature is the standard (padded) base64 of the 64-byte Ed25519 signature of the
    manifest's exact bytes, made with the organization's key the manifest names (the active
    one when it was built; a key rotated since still signs what it was named in)."""
    try:
        named = json.loads(manifest)["signing_key"]["fingerprint"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError("not a manifest: it names no signing key") from exc
    key = keys.by_fingerprint(organization, named)
    signature = keys.sign_with(key, manifest)
    document = {
        "algorithm": keys.ALGORITHM,
        "key_fingerprint": key.fingerprint,
        "signature": base64.b64encode(signature).decode(),
    }
    return (json.dumps(document, sort_keys=True, indent=2) + "\n").encode()
