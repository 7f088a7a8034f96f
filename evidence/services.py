"""Evidence packages: what a request names (its scope and period, checked), asking for one, and
the life of an export after it: built, failed, downloaded, expired. Every change is audited in
the transaction that makes it (evidence/audit_events.py).

Who may: the `audit` action (owners, admins, auditors), checked by the page and API base
classes before these functions run; they assume the caller's tenant scope is open.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

import audit
from accounts.models import Organization, Team
from accounts.team_groups import team_group_name
from inventory.models import AwsAccount
from inventory.models.accounts import ACCOUNT_ID
from policies.frameworks import builtin_frameworks
from policies.models import Control, Framework
from tagsense import clock
from tagsense.tenancy.context import Actor

from .audit_events import (
    EVIDENCE_EXPORT_COMPLETE,
    EVIDENCE_EXPORT_DOWNLOAD,
    EVIDENCE_EXPORT_EXPIRE,
    EVIDENCE_EXPORT_FAIL,
    EVIDENCE_EXPORT_REQUEST,
)
from .content import Period, Scope
from .models import EvidenceExport

SCOPE_FIELDS = ("frameworks", "controls", "teams", "accounts")
# A request names at most this many of each (a form or API body; the scope is kept on the row).
MAX_SCOPE_ITEMS = 200


class ScopeError(Exception):
    """A request the portal refuses, naming each field and what is wrong with it; nothing was
    queued. `errors` is {field: [messages]}, as forms and DRF spell them."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class ResolvedScope:
    """A scope checked against the organization: what the package covers."""

    scope: Scope  # as requested, each list sorted and without repeats
    controls: list[Control]  # the chosen controls, or every control of the chosen frameworks
    account_pks: list[int] | None  # the teams' accounts and the named ones; None: all of them
    rule_ids: list[str]  # the rules the controls cite

    @property
    def frameworks(self) -> list[str]:
        return self.scope.frameworks


def _names(values: Iterable[Any] | None) -> list[str]:
    return sorted({str(v).strip() for v in values or () if str(v).strip()})


# {field: [messages]}, as ScopeError carries them.
Errors = dict[str, list[str]]


def _check_frameworks(
    organization: Organization, slugs: list[str], errors: Errors
) -> dict[str, Framework]:
    if not slugs:
        errors.setdefault("frameworks", []).append("choose at least one framework")
        return {}
    found = {f.slug: f for f in Framework.objects.for_org(organization).filter(slug__in=slugs)}
    builtin = builtin_frameworks()
    for slug in slugs:
        if slug in found:
            continue
        if slug in builtin:
            message = f"the framework {slug!r} is not enabled in this organization"
        else:
            message = f"unknown framework {slug!r}"
        errors.setdefault("frameworks", []).append(message)
    return found


def _check_controls(
    organization: Organization, keys: list[str], frameworks: dict[str, Framework], errors: Errors
) -> list[Control]:
    """The controls named "<framework>/<control id>", each of a framework in the scope."""
    chosen: list[Control] = []
    for key in keys:
        slug, _, control_id = key.partition("/")
        if not control_id:
            errors.setdefault("controls", []).append(
                f"{key!r} is not of the form <framework>/<control>"
            )
            continue
        framework = frameworks.get(slug)
        if framework is None:
            errors.setdefault("controls", []).append(
                f"{key!r} names a framework that is not in the scope's frameworks"
            )
            continue
        control = (
            Control.objects.for_org(organization)
            .filter(framework=framework, control_id=control_id)
            .first()
        )
        if control is None:
            errors.setdefault("controls", []).append(f"unknown control {key!r}")
            continue
        chosen.append(control)
    return chosen


def _check_accounts(
    organization: Organization, teams: list[str], account_ids: list[str], errors: Errors
) -> list[int] | None:
    """The accounts the teams hold and the ones named (a union); None when neither is given.
    A team or account of another organization is unknown here, like a missing one."""
    if not teams and not account_ids:
        return None
    pks: set[int] = set()
    found_teams = {t.slug: t for t in Team.objects.for_org(organization).filter(slug__in=teams)}
    for slug in teams:
        team = found_teams.get(slug)
        if team is None:
            errors.setdefault("teams", []).append(f"unknown team {slug!r}")
            continue
        held = set(
            AwsAccount.objects.for_org(organization)
            .filter(team_grants__group__name=team_group_name(team.pk))
            .values_list("pk", flat=True)
        )
        if not held:
            errors.setdefault("teams", []).append(f"the team {slug!r} holds no AWS account")
        pks |= held
    malformed = [a for a in account_ids if not ACCOUNT_ID.match(a)]
    for account_id in malformed:
        errors.setdefault("accounts", []).append(
            f"{account_id[:40]!r} is not an AWS account id (12 digits)"
        )
    wanted = [a for a in account_ids if a not in malformed]
    found = dict(
        AwsAccount.objects.for_org(organization)
        .filter(account_id__in=wanted)
        .values_list("account_id", "pk")
    )
    for account_id in wanted:
        if account_id not in found:
            errors.setdefault("accounts", []).append(f"unknown AWS account {account_id}")
    pks |= set(found.values())
    return sorted(pks)


def resolve_scope(organization: Organization, scope: dict[str, Any]) -> ResolvedScope:
    """The scope of a request ({frameworks, controls, teams, accounts}: lists of names), checked
    against the organization. Raises ScopeError naming each bad field."""
    names = {field: _names(scope.get(field)) for field in SCOPE_FIELDS}
    errors: dict[str, list[str]] = {}
    for field, values in names.items():
        if len(values) > MAX_SCOPE_ITEMS:
            errors[field] = [f"name at most {MAX_SCOPE_ITEMS}"]
    if errors:
        raise ScopeError(errors)
    frameworks = _check_frameworks(organization, names["frameworks"], errors)
    controls = _check_controls(organization, names["controls"], frameworks, errors)
    account_pks = _check_accounts(organization, names["teams"], names["accounts"], errors)
    if errors:
        raise ScopeError(errors)
    if not controls:
        controls = list(
            Control.objects.for_org(organization)
            .filter(framework__in=frameworks.values())
            .select_related("framework")
            .order_by("framework__slug", "position", "id")
        )
    else:
        controls.sort(key=lambda c: (c.framework.slug, c.position, c.pk))
    rule_ids = sorted({rule_id for control in controls for rule_id in control.rule_ids})
    return ResolvedScope(
        scope=Scope(**names), controls=controls, account_pks=account_pks, rule_ids=rule_ids
    )


def resolve_period(start: date | None, end: date | None, now: datetime) -> Period:
    """The period of two days (UTC, both included): from the start of `start` to the end of
    `end`, or to `now` when `end` is today. Raises ScopeError for a missing day, a day after
    today, or an end before the start."""
    errors: dict[str, list[str]] = {}
    today = now.astimezone(UTC).date()
    if start is None:
        errors["period_start"] = ["give the first day of the period"]
    elif start > today:
        errors["period_start"] = ["the period cannot start in the future"]
    if end is None:
        errors["period_end"] = ["give the last day of the period"]
    elif end > today:
        errors["period_end"] = ["the period cannot end in the future"]
    elif start is not None and "period_start" not in errors and end < start:
        errors["period_end"] = ["the period ends before it starts"]
    if errors:
        raise ScopeError(errors)
    assert start is not None and end is not None  # checked above
    first = datetime.combine(start, time.min, tzinfo=UTC)
    last = min(datetime.combine(end, time.max, tzinfo=UTC), now)
    return Period(start=first, end=last)


def _stored_scope(scope: Scope) -> dict[str, list[str]]:
    return {field: list(getattr(scope, field)) for field in SCOPE_FIELDS}


@transaction.atomic
def request_export(
    organization: Organization,
    *,
    scope: dict[str, Any],
    period_start: date | None,
    period_end: date | None,
    actor: Actor,
    user: Any = None,
) -> EvidenceExport:
    """Check the request, keep it, audit it (evidence.export_request) and queue its build once
    the transaction commits. Raises ScopeError (nothing kept, nothing queued)."""
    from .tasks import build_export  # noqa: PLC0415 - evidence.tasks imports this module

    now = clock.now()
    errors: dict[str, list[str]] = {}
    try:
        resolved = resolve_scope(organization, scope)
    except ScopeError as exc:
        errors.update(exc.errors)
    try:
        period = resolve_period(period_start, period_end, now)
    except ScopeError as exc:
        errors.update(exc.errors)
    if errors:
        raise ScopeError(errors)
    export = EvidenceExport.objects.create(
        organization=organization,
        scope=_stored_scope(resolved.scope),
        period_start=period.start,
        period_end=period.end,
        requested_by=user if getattr(user, "pk", None) else None,
        requested_by_label=actor.label[:255],
        requested_at=now,
    )
    audit.record(
        EVIDENCE_EXPORT_REQUEST,
        target=export,
        data={
            "export": str(export.uuid),
            "scope": export.scope,
            "period_start": period.start.isoformat(),
            "period_end": period.end.isoformat(),
        },
    )
    build_export.delay_on_commit(export.pk)
    return export


# --- the package's file --------------------------------------------------------------------


def organization_folder(organization_id: int) -> Path:
    return Path(settings.EVIDENCE_ROOT) / str(organization_id)


def package_path(export: EvidenceExport) -> Path:
    """Where a built package lives. From the export's organization and UUID only: no stored
    text ever becomes a path."""
    return organization_folder(export.organization_id) / f"{export.uuid}.zip"


def partial_path(export: EvidenceExport) -> Path:
    """Where the package is written while it is built: never served, renamed once complete."""
    return organization_folder(export.organization_id) / f"{export.uuid}.zip.part"


def download_name(export: EvidenceExport, organization: Organization) -> str:
    return (
        f"{organization.slug}-evidence-{export.period_start:%Y%m%d}-"
        f"{export.period_end:%Y%m%d}-{str(export.uuid)[:8]}.zip"
    )


def is_downloadable(export: EvidenceExport, now: datetime | None = None) -> bool:
    """Ready, within its retention, and its file is there."""
    now = now or clock.now()
    return (
        export.status == EvidenceExport.READY
        and export.expires_at is not None
        and export.expires_at > now
        and package_path(export).is_file()
    )


# --- the build's states (called by evidence.tasks) -----------------------------------------


@transaction.atomic
def start_build(export_id: int) -> EvidenceExport | None:
    """Mark a queued export building; None when it is not waiting for a build (already built,
    failed or expired: a redelivered message does nothing)."""
    export = EvidenceExport.objects.select_for_update().filter(pk=export_id).first()
    if export is None or export.status not in (EvidenceExport.QUEUED, EvidenceExport.BUILDING):
        return None
    export.status = EvidenceExport.BUILDING
    export.started_at = clock.now()
    export.progress, export.stage, export.error = 0, "starting", ""
    export.save(update_fields=["status", "started_at", "progress", "stage", "error"])
    return export


def save_progress(export: EvidenceExport, percent: int, stage: str) -> None:
    """Write a building export's progress (its own short transaction: the page polls it)."""
    EvidenceExport.objects.filter(pk=export.pk, status=EvidenceExport.BUILDING).update(
        progress=max(0, min(100, percent)), stage=stage[:120]
    )


@transaction.atomic
def complete_build(export: EvidenceExport, *, size: int, sha256: str, key_fingerprint: str) -> None:
    """The package is in place: the export is ready to download until its retention ends.
    Audited with the package's SHA-256."""
    now = clock.now()
    export.status = EvidenceExport.READY
    export.finished_at = now
    export.progress, export.stage = 100, "ready"
    export.size, export.sha256, export.key_fingerprint = size, sha256, key_fingerprint
    export.expires_at = now + settings.EVIDENCE_RETENTION
    export.file_name = download_name(export, export.organization)
    export.save()
    audit.record(
        EVIDENCE_EXPORT_COMPLETE,
        target=export,
        data={
            "export": str(export.uuid),
            "sha256": sha256,
            "size": size,
            "key_fingerprint": key_fingerprint,
            "expires_at": export.expires_at.isoformat(),
        },
    )


@transaction.atomic
def fail_build(export: EvidenceExport, *, error: str, stage: str, reason: str) -> None:
    """The build stopped: nothing of it is kept (the caller removed the partial file). `error`
    is shown to members; `reason` (the exception's class) goes to the audit log only."""
    export.status = EvidenceExport.FAILED
    export.finished_at = clock.now()
    export.error = error[:2000]
    export.stage = stage[:120]
    export.save(update_fields=["status", "finished_at", "error", "stage"])
    audit.record(
        EVIDENCE_EXPORT_FAIL,
        target=export,
        data={"export": str(export.uuid), "stage": stage[:120], "reason": reason[:200]},
    )


def record_download(export: EvidenceExport) -> None:
    """Audit one download, with the package's SHA-256 (the caller's request transaction)."""
    audit.record(
        EVIDENCE_EXPORT_DOWNLOAD,
        target=export,
        data={"export": str(export.uuid), "sha256": export.sha256, "size": export.size},
    )


def expire_exports(organization: Organization) -> int:
    """Delete the files of the organization's packages past their retention (each its own
    transaction, audited); the rows stay, marked expired. Returns how many expired."""
    expired = 0
    now = clock.now()
    candidates = EvidenceExport.objects.for_org(organization).filter(
        status=EvidenceExport.READY, expires_at__lte=now
    )
    for pk in list(candidates.values_list("pk", flat=True)):
        with transaction.atomic():
            export = (
                EvidenceExport.objects.for_org(organization)
                .select_for_update()
                .filter(pk=pk, status=EvidenceExport.READY)
                .first()
            )
            if export is None:
                continue
            export.status = EvidenceExport.EXPIRED
            export.save(update_fields=["status"])
            audit.record(
                EVIDENCE_EXPORT_EXPIRE,
                target=export,
                data={"export": str(export.uuid), "sha256": export.sha256},
            )
            # After the row and the event, inside the transaction: a failed commit leaves the
            # file of a package still marked ready rather than a ready package with no file.
            transaction.on_commit(partial(package_path(export).unlink, missing_ok=True))
        expired += 1
    return expired


def retention_days() -> float:
    """settings.EVIDENCE_RETENTION in days, as the pages and docs state it."""
    return settings.EVIDENCE_RETENTION.total_seconds() / 86400
