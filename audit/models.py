"""One audit event: who did what to which object, when, from where; chained by HMAC-SHA256
with a key the database never holds (settings.AUDIT_CHAIN_KEY)."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
from collections.abc import Sequence
from typing import Any, ClassVar

import orjson
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import models

from tagsense.crypto import derive_key
from tagsense.tenancy.models import TenantManager, TenantModel, TenantQuerySet

GENESIS_HASH = "0" * 64
# The keyless chain's value before an organization's first event (docs/evidence.md).
GENESIS_DIGEST = "0" * 64
CHAIN_KEY_PURPOSE = "tagsense.audit-chain"


def chain_key() -> bytes:
    """The chain's HMAC key: AUDIT_CHAIN_KEY, or (where it is unset, outside production) a key
    derived from SECRET_KEY for this purpose alone. Read per call: cheap, and tests may
    override the settings."""
    key: str = settings.AUDIT_CHAIN_KEY
    if key:
        return key.encode()
    return derive_key(CHAIN_KEY_PURPOSE, settings.SECRET_KEY)


def chain_digest(prev_digest: str, canonical: bytes) -> str:
    """The keyless chain's link: SHA-256 of the previous event's digest (as its 64 ASCII hex
    characters; GENESIS_DIGEST for a chain's first event) followed by the event's canonical()
    bytes. Anyone can recompute it from an exported row, without the chain key: what lets an
    auditor check a segment offline (evidence/verify_package.py spells the same formula)."""
    return hashlib.sha256(prev_digest.encode("ascii") + canonical).hexdigest()


def normalise_ip(value: str | None) -> str | None:
    """One spelling per address, the same before storage and after PostgreSQL's inet: no IPv6
    zone, IPv4-mapped IPv6 as plain IPv4."""
    if not value:
        return None
    return _normalised_ip(str(value))


# A chain holds few distinct addresses, and a verification or an export spells each of a
# million events' (ipaddress parses one in microseconds): remembered, as a pure function.
@functools.lru_cache(maxsize=4096)
def _normalised_ip(text: str) -> str | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address)


# An event's fields as the chain reads them, in this order: the first 15 are what the hash
# covers (canonical_payload_of()), then the event's own hash and digest. A values_list() of
# them is what the fast readers (the export of a segment, its verification) stream instead
# of model instances.
CHAIN_FIELDS = (
    "organization_id",
    "seq",
    "created_at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "data",
    "ip_address",
    "user_agent",
    "request_id",
    "prev_hash",
    "hash",
    "digest",
)
# json.dumps() with these arguments builds this encoder on every call; one, built once, gives
# the same bytes.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_payload_of(row: Sequence[Any]) -> dict[str, Any]:
    """Every recorded field and the previous hash, spelt as the hash covers them, from an
    event's CHAIN_FIELDS values (a model instance's or a values_list() row): the one place
    the covered form is defined (AuditEvent.canonical_payload() and audit.exports use it)."""
    (organization_id, seq, created_at, actor_kind, actor_id, actor_label, action) = row[:7]
    (target_type, target_id, target_repr, data, ip_address, user_agent) = row[7:13]
    request_id, prev_hash = row[13], row[14]
    return {
        "organization": organization_id,
        "seq": seq,
        # A datetime, or its text already spelt so (audit.exports reads it from PostgreSQL).
        "created_at": created_at
        if isinstance(created_at, str)
        else created_at.isoformat(timespec="microseconds"),
        "actor": [actor_kind, actor_id, actor_label],
        "action": action,
        "target": [target_type, target_id, target_repr],
        "data": data,
        "ip_address": normalise_ip(ip_address),
        "user_agent": user_agent,
        "request_id": request_id,
        "prev_hash": prev_hash,
    }


def canonical_bytes(payload: dict[str, Any]) -> bytes:
    """The bytes the hash and the digest cover, from canonical_payload_of()'s dict: sorted
    keys, no spaces, UTF-8 (evidence/verify_package.py spells the same)."""
    return _CANONICAL_ENCODER.encode(payload).encode()


def likely_canonical_bytes(payload: dict[str, Any]) -> bytes | None:
    """canonical_bytes(payload) as orjson spells it, several times faster, or None where it
    cannot (an integer beyond 64 bits). The same bytes except for a float with a two-digit
    exponent (orjson writes 1e-7, json 1e-07): a candidate only, taken for an event when its
    keyed hash covers exactly these bytes (audit.services.RangeCheck). That is sound: the
    hash was made over canonical_bytes() of the event as recorded, so equal bytes are equal
    JSON values, whose canonical_bytes() are then the recorded ones."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None


class AuditEventQuerySet(TenantQuerySet["AuditEvent"]):
    def chain(self, organization_id: int | None) -> AuditEventQuerySet:
        if organization_id is None:
            return self.filter(organization__isnull=True)
        return self.filter(organization_id=organization_id)


# A module-level name, so that the django-stubs plugin gives the manager AuditEventQuerySet's
# methods (mypy cannot take a base class from a call in the class statement).
_AuditEventManagerBase = TenantManager.from_queryset(AuditEventQuerySet)


class AuditEventManager(_AuditEventManagerBase["AuditEvent"]):
    pass


class AuditEvent(TenantModel):
    """Append-only. Events without an organization (a failed login for an unknown address,
    a superuser's change to a user) form the global chain, visible only under all_tenants()."""

    # Nullable, unlike every other tenant model's: the global chain has no organization.
    organization = models.ForeignKey(  # type: ignore[assignment]
        settings.TENANCY_ORGANIZATION_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    seq = models.PositiveBigIntegerField(help_text="Position in the organization's chain, from 1")
    created_at = models.DateTimeField(db_index=True)
    actor_kind = models.CharField(max_length=16)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=255, blank=True)
    target_repr = models.CharField(max_length=255, blank=True)
    data = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    # The keyless chain beside the keyed one: chain_digest(previous event's digest, canonical()).
    digest = models.CharField(max_length=64)

    objects: ClassVar[AuditEventManager] = AuditEventManager()
    append_only = True

    class Meta:
        ordering = ["-seq"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "seq"], name="uniq_audit_org_seq"),
            models.UniqueConstraint(
                fields=["seq"],
                condition=models.Q(organization__isnull=True),
                name="uniq_audit_global_seq",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "action", "created_at"]),
            models.Index(fields=["organization", "actor_id", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label or self.actor_kind}"

    def canonical_payload(self) -> dict[str, Any]:
        """Every recorded field and the previous hash, spelt as the hash covers them: what
        canonical() serialises and what an export row carries (audit.exports)."""
        return canonical_payload_of(self.chain_values())

    def chain_values(self) -> list[Any]:
        """This event's CHAIN_FIELDS values, as a values_list() row would hold them."""
        return [getattr(self, name) for name in CHAIN_FIELDS]

    def canonical(self) -> bytes:
        """The bytes the hash and the digest cover: every recorded field and the previous hash."""
        return canonical_bytes(self.canonical_payload())

    def compute_hash(self, key: bytes | None = None) -> str:
        """HMAC-SHA256 of canonical() under the chain key: the stored hash of an untouched
        event written by a holder of the key."""
        return hmac.new(key or chain_key(), self.canonical(), hashlib.sha256).hexdigest()

    def compute_digest(self, prev_digest: str) -> str:
        """The keyless digest of this event after `prev_digest` (the event before it's)."""
        return chain_digest(prev_digest, self.canonical())

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionDenied("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionDenied("audit events are append-only")
