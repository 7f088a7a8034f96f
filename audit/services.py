"""Writing, anchoring and verifying the audit log."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connections, models
from django.utils import timezone

from tagsense.tenancy import context
from tagsense.tenancy.db import all_tenants, tenant_scope

from . import registry
from .anchors import Anchor, AnchorStore, AnchorStoreError
from .audit_events import AUDIT_ANCHOR, AUDIT_VERIFY
from .models import (
    CHAIN_FIELDS,
    GENESIS_DIGEST,
    GENESIS_HASH,
    AuditEvent,
    canonical_bytes,
    canonical_payload_of,
    chain_digest,
    chain_key,
    likely_canonical_bytes,
    normalise_ip,
)

# An instance of settings.TENANCY_ORGANIZATION_MODEL: the audit log imports no app above it, so
# the type checker knows it only as the tenancy layer's lookup does.
Organization = Any

logger = logging.getLogger(__name__)
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
        kind, ident, text = (str(part)[:255] for part in target)
        return kind, ident, text
    raise TypeError("target must be a model instance or a (type, id, text) tuple")


def record(
    action: registry.AuditAction,
    *,
    target: Any = None,
    data: dict[str, Any] | None = None,
    organization: Organization | None = _UNSET,
    actor: context.Actor | None = None,
) -> AuditEvent:
    """Append one event to its organization's chain, inside the caller's transaction.

    The organization and actor default to the current context (request, API call or task).
    Serialised per chain with a transaction-level advisory lock, so concurrent writers never
    fork the chain; the unique (organization, seq) constraint backs this. Under the same lock
    it computes both links: the keyed `hash` (HMAC under the chain key) and the keyless
    `digest` (SHA-256 over the previous digest and canonical(); docs/evidence.md).

    `action` is the AuditAction an app registered in its audit_events.py, never a string: a call
    site names the object, so an action nobody records, or a name misspelt, is found by reading
    (and by the test that every registered action has a call site).
    """
    if not isinstance(action, registry.AuditAction):
        raise TypeError(f"audit.record() takes an AuditAction from audit_events.py, not {action!r}")
    registry.get(action.name)
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
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)",
                [_LOCK_CLASS, organization.pk if organization else 0],
            )
        last = (
            AuditEvent.objects.chain(organization.pk if organization else None)
            .order_by("-seq")
            .values_list("seq", "hash", "digest")
            .first()
        )
        seq, prev_hash, prev_digest = (
            (last[0] + 1, last[1], last[2]) if last else (1, GENESIS_HASH, GENESIS_DIGEST)
        )
        event = AuditEvent(
            organization=organization,
            seq=seq,
            created_at=timezone.now(),
            actor_kind=actor.kind,
            actor_id=actor.id[:64],
            actor_label=actor.label[:255],
            action=action.name,
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
        event.digest = event.compute_digest(prev_digest)
        event.save()
    return event


@dataclass(frozen=True)
class ChainReport:
    organization_id: int | None
    events: int
    head_hash: str | None  # None only when a walk from an anchor found no event
    first_bad: AuditEvent | None = None
    problem: str = ""
    # Whether an anchor store was configured and read; how many anchors were checked and the
    # position of the last one that matched the database.
    anchored: bool = False
    anchors: int = 0
    last_anchor_seq: int = 0
    # The keyless chain's head (audit.models.chain_digest) where the walk ended.
    head_digest: str | None = None

    @property
    def intact(self) -> bool:
        return self.first_bad is None and not self.problem


def _event_problem(
    event: AuditEvent, key: bytes, prev_hash: str | None, prev_digest: str | None
) -> str:
    """What is wrong with one event's links (empty: nothing). `prev_hash` and `prev_digest` are
    the event before it's, None where that is not known (the first event after an anchor)."""
    return _row_problem(event.chain_values(), event.canonical(), key, prev_hash, prev_digest)


def _row_problem(
    row: Sequence[Any],
    canonical: bytes,
    key: bytes,
    prev_hash: str | None,
    prev_digest: str | None,
    keyed: str | None = None,
) -> str:
    """_event_problem() on an event's CHAIN_FIELDS values and their canonical bytes (and
    their keyed hash, when the caller has it already)."""
    if prev_hash is not None and row[14] != prev_hash:
        return (
            "its previous hash does not match the event before it: "
            "the chain was reordered or an event was replaced"
        )
    if keyed is None:
        keyed = hmac.new(key, canonical, hashlib.sha256).hexdigest()
    if keyed != row[15]:
        return (
            "its content does not match its keyed hash: the row was edited, or written "
            "by someone without the chain key"
        )
    if prev_digest is not None and chain_digest(prev_digest, canonical) != row[16]:
        return (
            "its keyless digest does not match its content and the digest before it: the "
            "digest column was rewritten"
        )
    return ""


class RangeCheck:
    """Verifies a run of consecutive events of one chain as they are read (values_list rows,
    never model instances): each one's position, link to the event before it, keyed hash
    and keyless digest, as verify_chain() does, from a known previous event (`after_seq`,
    `prev_hash`, `prev_digest`: the genesis values for a run from #1). Stops checking at the
    first problem; `first_seq`/`last_seq` are the run fed so far. No anchors: what the run
    proves is its own integrity and its link to the event before it."""

    def __init__(self, after_seq: int, prev_hash: str, prev_digest: str, key: bytes | None = None):
        self.key = key or chain_key()
        self.expected_seq = after_seq + 1
        self.prev_hash, self.prev_digest = prev_hash, prev_digest
        self.events = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.first_bad_seq: int | None = None
        self.problem = ""

    @property
    def intact(self) -> bool:
        return not self.problem

    def feed(
        self,
        row: Sequence[Any],
        canonical: bytes | None = None,
        *,
        payload: dict[str, Any] | None = None,
    ) -> None:
        """One event's CHAIN_FIELDS values, the next in seq order, with their canonical bytes
        or their canonical_payload_of() when the caller has either already. From the payload
        the check first tries orjson's spelling of the bytes (likely_canonical_bytes): taken
        when the keyed hash covers it, else the bytes are canonical_bytes()'s."""
        seq = row[1]
        if self.first_seq is None:
            self.first_seq = seq
        self.events, self.last_seq = self.events + 1, seq
        if self.problem:
            return
        if seq != self.expected_seq:
            problem = (
                f"expected event #{self.expected_seq} but found #{seq}: "
                "events before it were deleted"
            )
        else:
            keyed = None
            if canonical is None:
                payload = canonical_payload_of(row) if payload is None else payload
                likely = likely_canonical_bytes(payload)
                if likely is not None:
                    keyed = hmac.new(self.key, likely, hashlib.sha256).hexdigest()
                if likely is not None and keyed == row[15]:
                    canonical = likely
                else:
                    canonical, keyed = canonical_bytes(payload), None
            problem = _row_problem(
                row, canonical, self.key, self.prev_hash, self.prev_digest, keyed
            )
        if problem:
            self.first_bad_seq, self.problem = seq, problem
            return
        self.expected_seq, self.prev_hash, self.prev_digest = seq + 1, row[15], row[16]

    # What a check found, as JSON can carry it (a segment checked in another process).
    _FOUND = (
        "expected_seq",
        "prev_hash",
        "prev_digest",
        "events",
        "first_seq",
        "last_seq",
        "first_bad_seq",
        "problem",
    )

    def found(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._FOUND}

    @classmethod
    def from_found(cls, found: dict[str, Any]) -> RangeCheck:
        """A finished check as found() described it (it checks nothing more: no key)."""
        check = cls(0, found["prev_hash"], found["prev_digest"], key=b"-")
        for name in cls._FOUND:
            setattr(check, name, found[name])
        return check

    def to_head(self, organization_id: int | None, chunk_size: int = 2000) -> RangeCheck:
        """Feed every event after the last one checked, to the chain's current head (a
        values_list stream). Needs the organization's tenant scope (or all_tenants())."""
        events = (
            AuditEvent.objects.chain(organization_id)
            .filter(seq__gte=self.expected_seq if self.last_seq is None else self.last_seq + 1)
            .order_by("seq")
            .values_list(*CHAIN_FIELDS)
        )
        for row in events.iterator(chunk_size=chunk_size):
            self.feed(row)
        return self


def last_verification(organization_id: int | None) -> tuple[datetime, dict[str, Any]] | None:
    """When the whole chain was last verified (audit.tasks records every verification in the
    chain it speaks of, as audit.verify) and what that found: (created_at, data), or None when
    it never was. Needs the organization's tenant scope (or all_tenants())."""
    found = (
        AuditEvent.objects.chain(organization_id)
        .filter(action=AUDIT_VERIFY.name)
        .order_by("-seq")
        .values_list("created_at", "data")
        .first()
    )
    return (found[0], found[1]) if found else None


def _walk(
    events: Iterator[AuditEvent],
    organization_id: int | None,
    anchors: list[Anchor] | None,
    from_anchor: Anchor | None = None,
) -> ChainReport:
    """Check each event's position, link, keyed hash and keyless digest, and each anchor
    against the event at its position. An anchor that disagrees, or points past the end of the
    chain, names the first event after the last anchor that agreed: what lies between was
    rewritten or cut.

    With `from_anchor`, `events` start at that anchor's position instead of #1: the first one
    is checked against the anchor (its links to the event before it are not)."""
    key = chain_key()
    anchored = anchors is not None
    pending = anchors or []
    next_anchor, last_anchor_seq, first_after_anchor = 0, 0, None
    expected_seq, count = 1, 0
    # None: not checked (the first event after an anchor).
    prev_hash: str | None = GENESIS_HASH
    prev_digest: str | None = GENESIS_DIGEST
    if from_anchor is not None:
        pending = [from_anchor, *pending]
        expected_seq, prev_hash, prev_digest = from_anchor.seq, None, None

    def broken(event: AuditEvent | None, problem: str) -> ChainReport:
        return ChainReport(
            organization_id,
            count,
            prev_hash,
            event,
            problem,
            anchored,
            next_anchor,
            last_anchor_seq,
            head_digest=prev_digest,
        )

    for event in events:
        count += 1
        if event.seq == last_anchor_seq + 1:
            first_after_anchor = event
        if event.seq != expected_seq:
            return broken(
                event,
                f"expected event #{expected_seq} but found #{event.seq}: "
                "events before it were deleted",
            )
        if problem := _event_problem(event, key, prev_hash, prev_digest):
            return broken(event, problem)
        while next_anchor < len(pending) and pending[next_anchor].seq <= event.seq:
            anchor = pending[next_anchor]
            if anchor.seq != event.seq or anchor.hash != event.hash:
                return broken(
                    first_after_anchor,
                    f"anchor {anchor.key} holds hash {anchor.hash} for event #{anchor.seq}, "
                    f"the database has {event.hash}: the history after event "
                    f"#{last_anchor_seq} was rewritten",
                )
            next_anchor += 1
            last_anchor_seq, first_after_anchor = event.seq, None
        expected_seq, prev_hash, prev_digest = event.seq + 1, event.hash, event.digest
    if next_anchor < len(pending):
        anchor = pending[next_anchor]
        return broken(
            first_after_anchor,
            f"anchor {anchor.key} records event #{anchor.seq}, but the chain ends at "
            f"#{expected_seq - 1}: events after #{last_anchor_seq} were deleted or rewritten",
        )
    return ChainReport(
        organization_id,
        count,
        prev_hash,
        None,
        "",
        anchored,
        next_anchor,
        last_anchor_seq,
        head_digest=prev_digest,
    )


def verify_chain(organization_id: int | None, store: AnchorStore | None = _UNSET) -> ChainReport:
    """Walk one chain in order against the chain key and, where an anchor store is configured,
    every anchor of the chain. Needs all_tenants() or the organization's tenant scope."""
    if store is _UNSET:
        store = AnchorStore.from_settings()
    anchors = None
    if store is not None:
        try:
            anchors = store.list(organization_id)
        except AnchorStoreError as exc:
            return ChainReport(organization_id, 0, GENESIS_HASH, None, str(exc), anchored=True)
    events = AuditEvent.objects.chain(organization_id).order_by("seq").iterator(chunk_size=2000)
    return _walk(events, organization_id, anchors)


def verify_all(organization_ids: list[int | None]) -> list[ChainReport]:
    store = AnchorStore.from_settings()
    with all_tenants():
        return [verify_chain(org_id, store) for org_id in organization_ids]


class ChainNotAnchoredError(Exception):
    """The chain's history since its last anchor does not verify: it is not anchored."""

    def __init__(self, report: ChainReport):
        self.report = report
        bad = report.first_bad
        where = f"event id={bad.pk} #{bad.seq} {bad.action}: " if bad else ""
        super().__init__(f"refused to anchor a chain that does not verify: {where}{report.problem}")


def anchor_chain(organization: Organization | None, store: AnchorStore) -> Anchor | None:
    """Write the chain's head to the anchor store and record that in the chain.

    Every event since the chain's last anchor in the store (the whole chain when it has none)
    is verified first (position, link, keyed hash, the anchored event's hash): a head whose
    history does not verify is never anchored, and a forged `audit.anchor` lookalike never
    makes a run skip the chain. Skipped only when the verified head is the record of the
    anchor of the event before it: anchoring adds one event, and anchoring that event in turn
    would add one every run for ever.
    Raises AnchorStoreError when the store refuses the write or cannot be listed, and
    ChainNotAnchoredError when the chain does not verify.
    """
    organization_id = organization.pk if organization else None
    anchors = store.list(organization_id)
    last = max(anchors, key=lambda anchor: anchor.seq) if anchors else None
    with all_tenants():
        events = AuditEvent.objects.chain(organization_id).order_by("seq")
        if last is not None:
            events = events.filter(seq__gte=last.seq)
        report = _walk(events.iterator(chunk_size=2000), organization_id, None, last)
        head = events.last()
    if not report.intact:
        raise ChainNotAnchoredError(report)
    if head is None:
        return None
    if (
        head.action == AUDIT_ANCHOR.name
        and head.data.get("seq") == head.seq - 1
        and last is not None
        and last.seq == head.seq - 1
    ):
        return None
    anchor = store.put(organization_id, head.seq, head.hash)
    logger.info(
        "audit chain %s anchored at #%s %s: s3://%s/%s version %s",
        organization.slug if organization else "(global)",
        anchor.seq,
        anchor.hash,
        store.bucket,
        anchor.key,
        anchor.version_id,
    )
    record(
        AUDIT_ANCHOR,
        organization=organization,
        data={
            "seq": anchor.seq,
            "hash": anchor.hash,
            "bucket": store.bucket,
            "key": anchor.key,
            "version_id": anchor.version_id,
        },
    )
    return anchor
