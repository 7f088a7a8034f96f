"""Exemptions: request (members who may `change`), approve or reject (owners and admins, never
the requester), expiry. Each step is audited in its transaction. Callers run inside the
organization's tenant scope.

Expiry: from its `expires_at` an approved exemption exempts nothing — every read treats its
findings as open and itself as expired (FindingQuerySet, Finding.current_status,
Exemption.current_status, the scores' OPEN_FINDING_SQL), and reads never write. The daily beat
task (policies.expire_exemptions) writes it down: marks it expired, reopens its findings,
audits policy.exemption_expire; so does a request, first, before it picks open findings, and
every evaluation (policies.evaluation) before it changes findings.

Each change of a finding's status is appended to the ledger (FindingEvent) in the statement
that makes it: exempted on approval, exemption_expired on expiry, at the exemption's
`expires_at` (when it stopped exempting, not when the task noticed)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import connection, transaction
from django.db.models import QuerySet

import audit
from accounts.roles import role_allows
from tagsense import clock
from tagsense.tenancy.context import Actor, Principal, current, same_principal

from . import audit_events
from .models import Exemption, Finding

if TYPE_CHECKING:
    from accounts.models import Membership, Organization


class ExemptionError(ValueError):
    pass


@transaction.atomic
def request(
    membership: Membership,
    findings: QuerySet[Finding],
    *,
    justification: str,
    expires_at: datetime,
    filters: dict | None = None,
) -> Exemption:
    """A pending exemption for the open findings of `findings` (already restricted to what
    the member may see)."""
    justification = (justification or "").strip()
    if not justification:
        raise ExemptionError("a justification is required")
    if expires_at <= clock.now():
        raise ExemptionError("the expiry must be in the future")
    # The lapsed exemptions' findings are open: stored so before one is taken into this one.
    expire(membership.organization)
    ids = list(findings.filter(status=Finding.OPEN).values_list("pk", flat=True))
    if not ids:
        raise ExemptionError("no open finding matches")
    exemption = Exemption.objects.create(
        organization=membership.organization,
        justification=justification,
        expires_at=expires_at,
        filters=filters or {},
        finding_count=len(ids),
        requested_by_id=membership.user_id,
        requested_by_label=current().actor.label,
        requested_by_principal=_principal(membership).key,
    )
    Finding.objects.for_org(membership.organization).filter(pk__in=ids).update(exemption=exemption)
    audit.record(
        audit_events.EXEMPTION_REQUEST,
        target=exemption,
        data={
            "findings": len(ids),
            "expires_at": expires_at.isoformat(),
            "justification": justification,
            "filters": filters or {},
        },
    )
    return exemption


def _principal(membership: Membership) -> Principal:
    """Who acts: the current actor's principal (a person, or a service account by its token),
    else the membership's user (code that calls these services without a request)."""
    principal = current().actor.principal
    if principal is None and membership.user_id is not None:
        principal = Principal(Principal.USER, str(membership.user_id))
    if principal is None:
        raise ExemptionError("an exemption is requested and decided by a known principal")
    return principal


def _decide(exemption: Exemption, membership: Membership) -> Exemption:
    """Separation of duties: the decider is another principal than the requester (a person's
    session and their tokens are one principal, as are all tokens of one service account)."""
    if not role_allows(membership.role, "manage"):
        raise ExemptionError("only owners and admins decide exemptions")
    exemption = Exemption.objects.select_for_update().get(pk=exemption.pk)
    if exemption.status != Exemption.PENDING:
        raise ExemptionError(f"this exemption is {exemption.status} already")
    decider = _principal(membership)
    if same_principal(decider, exemption.requester):
        raise ExemptionError("the requester cannot decide their own exemption")
    if exemption.requester is None and decider.kind != Principal.USER:
        # An old request with no recorded requester: only a person, who cannot have been an
        # unrecorded service account, may decide it.
        raise ExemptionError("the requester of this exemption is unknown: a person decides it")
    exemption.decided_by_id = membership.user_id
    exemption.decided_by_label = current().actor.label
    exemption.decided_by_principal = decider.key
    exemption.decided_at = clock.now()
    return exemption


@transaction.atomic
def approve(exemption: Exemption, membership: Membership) -> int:
    """Approve: the exemption's open findings become exempted. Returns how many."""
    exemption = _decide(exemption, membership)
    if exemption.expires_at <= clock.now():
        raise ExemptionError("this exemption has expired already")
    exemption.status = Exemption.APPROVED
    exemption.save()
    count = _move(exemption, Finding.OPEN, Finding.EXEMPTED, "exempted", exemption.decided_at)
    audit.record(audit_events.EXEMPTION_APPROVE, target=exemption, data={"findings": count})
    return count


# ruff: noqa: S608 - only the fixed statuses' column names are interpolated
_MOVE = """
WITH moved AS (
    UPDATE policies_finding f SET status = %(to)s
    WHERE f.organization_id = %(org)s AND f.exemption_id = %(exemption)s AND f.status = %(from)s
    RETURNING f.id, f.rule_id, f.rule_version, f.resource_id, f.account_id, f.kind,
        f.found_key, f.severity
)
INSERT INTO policies_findingevent (organization_id, finding_id, rule_pk, rule_slug, rule_version,
    resource_id, account_id, kind, found_key, severity, exemption_id, event, from_status,
    to_status, open_delta, exempt_delta, at)
SELECT %(org)s, m.id, m.rule_id, r.rule_id, m.rule_version, m.resource_id, m.account_id, m.kind,
    m.found_key, m.severity, %(exemption)s, %(event)s, %(from)s, %(to)s, %(open)s, %(exempt)s,
    %(at)s
FROM moved m JOIN policies_rule r ON r.id = m.rule_id
"""


def _move(exemption: Exemption, from_status: str, to_status: str, event: str, at) -> int:
    """The exemption's findings in `from_status` move to `to_status`, each change appended to
    the ledger as `event` at `at`, in one statement. Returns how many."""
    delta = {Finding.OPEN: 1, Finding.EXEMPTED: -1}[to_status]
    with connection.cursor() as cursor:
        cursor.execute(
            _MOVE,
            {
                "org": exemption.organization_id,
                "exemption": exemption.pk,
                "from": from_status,
                "to": to_status,
                "event": event,
                "open": delta,
                "exempt": -delta,
                "at": at,
            },
        )
        return cursor.rowcount


@transaction.atomic
def reject(exemption: Exemption, membership: Membership) -> None:
    exemption = _decide(exemption, membership)
    exemption.status = Exemption.REJECTED
    exemption.save()
    exemption.findings.update(exemption=None)
    audit.record(audit_events.EXEMPTION_REJECT, target=exemption, data={})


@transaction.atomic
def expire(organization: Organization) -> int:
    """Approved exemptions past their expiry: marked expired, their exempted findings reopen.
    One policy.exemption_expire event per exemption; nothing when none expired."""
    due = list(
        Exemption.objects.for_org(organization)
        .select_for_update()
        .filter(status=Exemption.APPROVED, expires_at__lte=clock.now())
        .order_by("expires_at", "pk")  # the ledger in the order they lapsed
    )
    reopened = 0
    for exemption in due:
        exemption.status = Exemption.EXPIRED
        exemption.save(update_fields=["status"])
        count = _move(
            exemption, Finding.EXEMPTED, Finding.OPEN, "exemption_expired", exemption.expires_at
        )
        reopened += count
        audit.record(
            audit_events.EXEMPTION_EXPIRE,
            target=exemption,
            data={"findings_reopened": count},
            actor=Actor.system("policies.expire_exemptions"),
        )
    return reopened
