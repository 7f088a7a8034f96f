"""Reads with a permission check: missing and forbidden are both 404.

Team scoping lives here: `visible_accounts(membership)` is the one answer to "which AWS
accounts may this member see". Owners, admins and auditors see every account of the
organization; editors and viewers only those held by one of their teams. Every inventory
queryset's restrict() applies it (inventory/models/scoping.py), so the accounts, resources,
tag history, scans and schedules of a hidden account are absent from lists and 404 by id.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from django.db.models import Count, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404

from accounts.models import Membership, TeamMembership
from accounts.roles import sees_all_accounts

from .models import AccountTeamGrant, AwsAccount, Resource, ScanRun, ScanUnit
from .models.scoping import HOLD_PERMISSION

if TYPE_CHECKING:
    from django.http import HttpRequest

MY_TEAMS, ALL = "mine", "all"


def held_accounts(membership: Membership) -> QuerySet[AwsAccount]:
    """The organization's accounts held by a team the member belongs to (a subquery over the
    guardian grants of the user's groups; never a list of ids in Python)."""
    grants = AccountTeamGrant.objects.for_org(membership.organization).filter(
        group__user=membership.user_id,
        permission__codename=HOLD_PERMISSION,
        permission__content_type__app_label="inventory",
    )
    return AwsAccount.objects.for_org(membership.organization).filter(
        pk__in=grants.values("content_object_id")
    )


def visible_accounts(membership: Membership) -> QuerySet[AwsAccount]:
    """The accounts this member may see: all of them for owners, admins and auditors, the ones
    their teams hold for editors and viewers (none when they are in no team). A service account
    (a membership with no user: accounts.tokens) belongs to no team; an admin created it for the
    whole organization, so it sees every account and its role bounds what it may do."""
    if sees_all_accounts(membership.role) or membership.user_id is None:
        return AwsAccount.objects.for_org(membership.organization)
    return held_accounts(membership)


def in_any_team(membership: Membership) -> bool:

    return TeamMembership.objects.restrict(membership).filter(user=membership.user_id).exists()


def team_scope(request: HttpRequest, membership: Membership) -> dict:
    """The "My teams / All" choice of lists and dashboards.

    Editors and viewers only ever see their teams' accounts: no choice. Owners, admins and
    auditors choose with `?teams=mine|all` (remembered in the session, per organization); the
    default is their teams when they belong to any team, else everything.
    Returns {"scope", "can_choose", "in_team", "holds_any", "accounts"}: `accounts` is the
    queryset lists narrow to, or None for no narrowing beyond restrict().
    """
    in_team = in_any_team(membership)
    held = held_accounts(membership)
    if not sees_all_accounts(membership.role):
        return {
            "scope": MY_TEAMS,
            "can_choose": False,
            "in_team": in_team,
            "holds_any": in_team and held.exists(),
            "accounts": None,
        }
    key = f"team_scope:{membership.organization_id}"
    asked = request.GET.get("teams")
    if asked in (MY_TEAMS, ALL):
        request.session[key] = asked
    scope = request.session.get(key) or (MY_TEAMS if in_team else ALL)
    return {
        "scope": scope,
        "can_choose": True,
        "in_team": in_team,
        "holds_any": in_team and held.exists(),
        "accounts": held if scope == MY_TEAMS else None,
    }


def narrow(queryset: QuerySet, scope: dict) -> QuerySet:
    """Apply a team_scope() choice to an inventory queryset."""
    if scope["accounts"] is None:
        return queryset
    return queryset.in_accounts(scope["accounts"])  # type: ignore[attr-defined]


def hidden_arns(membership: Membership, arns: list[str]) -> set[str]:
    """Of `arns`, those of resources in accounts the member may not see (an ARN the inventory
    does not hold, such as a DNS name or a resource not scanned yet, is not hidden)."""
    if sees_all_accounts(membership.role) or not arns:
        return set()
    return set(
        Resource.objects.for_org(membership.organization)
        .filter(arn__in=arns)
        .exclude(account__in=visible_accounts(membership).values("pk"))
        .values_list("arn", flat=True)
    )


def access_account_by_id(membership: Membership, pk: int, action: str = "view") -> AwsAccount:
    return get_object_or_404(AwsAccount.objects.restrict(membership, action), pk=pk)


def access_resource_by_id(membership: Membership, pk: int) -> Resource:
    return get_object_or_404(
        Resource.objects.restrict(membership, "view").select_related("account").with_last_seen(),
        pk=pk,
    )


def access_scan_by_id(membership: Membership, pk: int) -> ScanRun:
    return get_object_or_404(ScanRun.objects.restrict(membership, "view"), pk=pk)


def scan_scope_for(membership: Membership, scope):
    """The scope an editor may scan: only accounts their teams hold. Naming another account
    fails exactly like naming one that does not exist (a ValueError the views report)."""

    if sees_all_accounts(membership.role):
        return scope
    visible = set(visible_accounts(membership).values_list("account_id", flat=True))
    if scope.account_ids:
        if not set(scope.account_ids) <= visible:
            raise ValueError("no enabled AWS account matches")
        return scope
    if not visible:
        raise ValueError("no enabled AWS account matches: your teams hold no AWS account")
    return dataclasses.replace(scope, account_ids=tuple(sorted(visible)))


FIGURES = ("new", "changed", "unchanged", "deleted", "api_calls")


def scans_as_seen_by(membership: Membership, scans, scope: dict | None = None):
    """The scan runs with what this member may see of them: for a member limited to their
    teams' accounts, the totals and the scope's account list are recomputed from the units of
    visible accounts only (in memory, never saved), so a run that also covered hidden accounts
    does not reveal their ids or how much changed in them. With a team_scope() `scope` that
    narrows ("My teams" of an owner, admin or auditor), the same is done for the accounts it
    keeps, so the figures agree with the dashboard's under the same choice. One query for the
    whole list."""
    scans = list(scans)
    narrowed = scope is not None and scope["accounts"] is not None
    limited = membership.user_id is not None and not sees_all_accounts(membership.role)
    if not scans or not (limited or narrowed):
        return scans

    units = ScanUnit.objects.restrict(membership)
    counted = visible_accounts(membership)
    if narrowed:
        units = narrow(units, scope)
        counted = scope["accounts"]
    done = Q(status__in=[ScanUnit.SUCCEEDED, ScanUnit.FAILED, ScanUnit.SKIPPED])
    rows = {
        row["scan_id"]: row
        for row in units.filter(scan_id__in=[s.pk for s in scans])
        .values("scan_id")
        .annotate(
            units_total=Count("id"),
            units_done=Count("id", filter=done),
            units_failed=Count("id", filter=Q(status=ScanUnit.FAILED)),
            **{name: Sum(name) for name in FIGURES},
        )
    }
    visible = set(counted.values_list("account_id", flat=True))
    for scan in scans:
        row = rows.get(scan.pk, {})
        for name in ("units_total", "units_done", "units_failed", *FIGURES):
            setattr(scan, name, row.get(name) or 0)
        if isinstance(scan.scope, dict) and scan.scope.get("accounts"):
            scan.scope = {
                **scan.scope,
                "accounts": [a for a in scan.scope["accounts"] if a in visible],
            }
    return scans
