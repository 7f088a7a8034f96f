"""Writing and verifying the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connections, models
from django.utils import timezone

from tagsense.tenancy import context
from tagsense.tenancy.db import all_tenants, tenant_scope

from . import registry
from .models import GENESIS_HASH, AuditEvent, normalise_ip

if TYPE_CHECKING:
    from accounts.models import Organization

_UNSET: Any = object()
# First key of pg_advisory_xact_lock(int, int): the audit chains' lock class.
_LOCK_CLASS = 0x7A6_A0D1


def _describe(target: Any) -> tuple[str, str, str]:
    if target is None:
        return "", "", ""
    if isinstance(target, models.Model):
        meta = target._meta
        return f"{meta.app_label}.{meta.model_name}", str(target.pk), str(target)[:255]
    if isinstance(target, tuple) and len(target) == 3:
        return tuple(str(part)[:255] for part in target)  # type: ignore[return-value]
    raise TypeError("target must be a model instance or a (type, id, text) tuple")


def record(
    action: str,
    *,
    target: Any = None,
    data: dict[str, Any] | None = None,
    organization: Organization | None = _UNSET,
    actor: context.Actor | None = None,
) -> AuditEvent:
    """Append one event to its organization's chain, inside the caller's transaction.

    The organization and actor default to the current context (request, API call or task).
    Serialised per chain with a transaction-level advisory lock, so concurrent writers never
    fork the chain; the unique (organization, seq) constraint backs this on SQLite.
    """
    registry.get(action)
    ctx = context.current()
    if organization is _UNSET:
        organization = ctx.organization
    actor = actor or ctx.actor
    target_type, target_id, target_repr = _describe(target)
    # Store exactly what is hashed: a JSON round trip turns dates, decimals and floats into
    # strings, so no number changes its spelling in the database (1e16, -0.0).
    payload = json.loads(json.dumps(data or {}, default=str), parse_float=str)
    scope = all_tenants() if organization is None else tenant_scope(organization)
    with scope:
        connection = connections[AuditEvent.objects.db]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)",
                    [_LOCK_CLASS, organization.pk if organization else 0],
                )
        last = (
            AuditEvent.objects.chain(organization.pk if organization else None)
            .order_by("-seq")
            .values_list("seq", "hash")
            .first()
        )
        seq, prev_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        event = AuditEvent(
            organization=organization,
            seq=seq,
            created_at=timezone.now(),
            actor_kind=actor.kind,
            actor_id=actor.id[:64],
            actor_label=actor.label[:255],
            action=action,
            target_type=target_type,
            target_id=target_id,
            target_repr=target_repr,
            data=payload,
            ip_address=normalise_ip(ctx.ip_address),
            user_agent=(ctx.user_agent or "")[:512],
            request_id=ctx.request_id[:64],
            prev_hash=prev_hash,
        )
        event.hash = event.compute_hash()
        event.save()
    return event


@dataclass(frozen=True)
class ChainReport:
    organization_id: int | None
    events: int
    head_hash: str
    first_bad: AuditEvent | None = None
    problem: str = ""

    @property
    def intact(self) -> bool:
        return self.first_bad is None and not self.problem


def _walk(events: Iterator[AuditEvent], organization_id: int | None) -> ChainReport:
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    for event in events:
        count += 1
        if event.seq != expected_seq:
            return ChainReport(
                organization_id,
                count,
                prev_hash,
                event,
                f"expected event #{expected_seq} but found #{event.seq}: "
                "events before it were deleted",
            )
        if event.prev_hash != prev_hash:
            return ChainReport(
                organization_id,
                count,
                prev_hash,
                event,
                "its previous hash does not match the event before it: "
                "the chain was reordered or an event was replaced",
            )
        if event.compute_hash() != event.hash:
            return ChainReport(
                organization_id,
                count,
                prev_hash,
                event,
                "its content does not match its hash: the row was edited",
            )
        expected_seq, prev_hash = event.seq + 1, event.hash
    return ChainReport(organization_id, count, prev_hash)


def verify_chain(organization_id: int | None) -> ChainReport:
    """Walk one chain in order. Needs all_tenants() or the organization's tenant scope."""
    events = AuditEvent.objects.chain(organization_id).order_by("seq").iterator(chunk_size=2000)
    return _walk(events, organization_id)


def verify_all(organization_ids: list[int | None]) -> list[ChainReport]:
    with all_tenants():
        return [verify_chain(org_id) for org_id in organization_ids]
