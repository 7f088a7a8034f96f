"""Each organization's evidence signing keys: Ed25519 pairs that sign the manifests of its
evidence packages (evidence.manifest), so an auditor can tell a package the portal issued from
one edited afterwards (docs/evidence.md).

A key is generated on first use. Its private half is kept only as PKCS#8 PEM encrypted with
tagsense.crypto (purpose "evidence-key", keys derived from SECRET_KEY and its fallbacks): it
never leaves this module, and never reaches a log, the audit log, a page or an API response.
Rotation retires the current key (retired_at set) and creates a new one; a retired key's public
half stays published, so packages it signed still verify.

Every function here needs the organization's tenant scope (a page's, the API's, a task's):
EvidenceKey is a tenant table under row-level security.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.db import connections, transaction
from django.utils import timezone

import audit
from tagsense import crypto
from tagsense.tenancy import context

from .audit_events import KEY_CREATE, KEY_ROTATE
from .models import EvidenceKey

ALGORITHM = "Ed25519"
ENCRYPTION_PURPOSE = "evidence-key"
FINGERPRINT_PREFIX = "SHA256:"
# First key of pg_advisory_xact_lock(int, int): creating or rotating an organization's key.
_LOCK_CLASS = 0x7A6_E71D

# An instance of accounts.Organization (the tenancy layer's Organization protocol).
Organization = Any


class UnknownKeyError(LookupError):
    """No published key of the organization has that fingerprint."""


def fingerprint(public_key_raw: bytes) -> str:
    """ "SHA256:" + the unpadded base64 of SHA-256 of the 32 raw public-key bytes: the form
    OpenSSH prints (`ssh-keygen -l`), short enough to read aloud when confirming a key."""
    digest = hashlib.sha256(public_key_raw).digest()
    return FINGERPRINT_PREFIX + base64.b64encode(digest).decode().rstrip("=")


def public_key_fingerprint(public_key: Ed25519PublicKey) -> str:
    return fingerprint(
        public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def url_token(key_fingerprint: str) -> str:
    """The fingerprint as a URL path segment (`/o/<slug>/evidence/keys/<token>.pem`): the
    base64 digest in its URL-safe alphabet, without the "SHA256:" prefix."""
    return key_fingerprint.removeprefix(FINGERPRINT_PREFIX).replace("+", "-").replace("/", "_")


def from_url_token(token: str) -> str:
    return FINGERPRINT_PREFIX + token.replace("-", "+").replace("_", "/")


def _lock(organization: Organization) -> None:
    """Serialise key creation and rotation per organization, so that two packages built at
    once never create two keys (the unique "one active key" constraint backs this)."""
    with connections[EvidenceKey.objects.db].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_CLASS, organization.pk])


def _current(organization: Organization) -> EvidenceKey | None:
    return EvidenceKey.objects.for_org(organization).filter(retired_at__isnull=True).first()


def _create(organization: Organization) -> EvidenceKey:
    private = Ed25519PrivateKey.generate()
    public = private.public_key()
    pkcs8 = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return EvidenceKey.objects.create(
        organization=organization,
        fingerprint=public_key_fingerprint(public),
        public_key=public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        private_key=crypto.encrypt(ENCRYPTION_PURPOSE, pkcs8),
        created_at=timezone.now(),
        created_by=context.current().actor.label[:255],
    )


def current(organization: Organization) -> EvidenceKey | None:
    """The organization's active key, or None before its first package (a read: creates
    nothing, so a page may show it)."""
    return _current(organization)


def active_key(organization: Organization) -> EvidenceKey:
    """The organization's active key, generated (and audited as evidence.key_create) on first
    use, in the caller's transaction."""
    key = _current(organization)
    if key is not None:
        return key
    with transaction.atomic():
        _lock(organization)
        key = _current(organization)  # another process may have created it meanwhile
        if key is None:
            key = _create(organization)
            audit.record(
                KEY_CREATE,
                target=key,
                organization=organization,
                data={"fingerprint": key.fingerprint, "algorithm": ALGORITHM},
            )
    return key


def rotate(organization: Organization) -> EvidenceKey:
    """Retire the active key (it stays published, so what it signed still verifies) and create
    its successor; audited once, as evidence.key_rotate with both fingerprints. With no key yet,
    it creates the first (evidence.key_create). Owners and admins: the caller checks."""
    with transaction.atomic():
        _lock(organization)
        old = _current(organization)
        if old is None:
            return active_key(organization)
        EvidenceKey.objects.for_org(organization).filter(pk=old.pk).update(
            retired_at=timezone.now()
        )
        key = _create(organization)
        audit.record(
            KEY_ROTATE,
            target=key,
            organization=organization,
            data={"fingerprint": key.fingerprint, "retired": old.fingerprint},
        )
    return key


def published(organization: Organization) -> list[EvidenceKey]:
    """Every key of the organization, the active one first, then the retired, newest first:
    all of them verify what they signed."""
    return list(EvidenceKey.objects.for_org(organization).order_by("-created_at", "-id"))


def by_fingerprint(organization: Organization, key_fingerprint: str) -> EvidenceKey:
    """One of the organization's published keys; UnknownKeyError for any other fingerprint."""
    key = EvidenceKey.objects.for_org(organization).filter(fingerprint=key_fingerprint).first()
    if key is None:
        raise UnknownKeyError(key_fingerprint)
    return key


def _private(key: EvidenceKey) -> Ed25519PrivateKey:
    pem = crypto.decrypt(ENCRYPTION_PURPOSE, key.private_key).encode()
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, Ed25519PrivateKey):  # only this module writes the column
        raise TypeError("an evidence key is Ed25519")
    return private


def sign_with(key: EvidenceKey, data: bytes) -> bytes:
    """The 64-byte Ed25519 signature of `data` under `key` (active or retired)."""
    return _private(key).sign(data)


def sign(organization: Organization, data: bytes) -> tuple[bytes, EvidenceKey]:
    """Sign `data` with the organization's active key (created on first use)."""
    key = active_key(organization)
    return sign_with(key, data), key
