"""Reads of the inventory for the pages that sum it up (the dashboard, a team's page) and for
the assistant's grounding: counts over the accounts a member may see. Nothing here writes."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from accounts.models import Membership, Team
from accounts.team_groups import team_group_name

from .access import narrow
from .models import AwsAccount, Resource, ScanRun


def overview(membership: Membership, scope: dict) -> dict:
    """Accounts, resources and the untagged share per type, for the dashboard: the accounts the
    member may see, narrowed to their teams' when `scope` (inventory.access.team_scope) says so."""
    by_type = list(
        narrow(Resource.objects.restrict(membership), scope)
        .live()
        .values("resource_type")
        .annotate(total=Count("id"), untagged=Count("id", filter=Q(tags={})))
        .order_by("-total")
    )
    for row in by_type:
        row["tagged_percent"] = round(100 * (row["total"] - row["untagged"]) / row["total"])
    resources = sum(row["total"] for row in by_type)
    untagged = sum(row["untagged"] for row in by_type)
    return {
        "account_count": narrow(AwsAccount.objects.restrict(membership), scope).count(),
        "resource_count": resources,
        "untagged_count": untagged,
        "untagged_percent": round(100 * untagged / resources) if resources else 0,
        "by_type": by_type,
        "last_scan": narrow(ScanRun.objects.restrict(membership), scope).first(),
    }


def first_account(membership: Membership) -> AwsAccount | None:
    """The first AWS account registered, of those the member may see."""
    return AwsAccount.objects.restrict(membership).order_by("pk").first()


def has_scanned(membership: Membership) -> bool:
    """Whether a scan the member may see has finished (succeeded or partly)."""
    scans = ScanRun.objects.restrict(membership)
    return scans.filter(status__in=["succeeded", "partial"]).exists()


def held_by_team(membership: Membership, team: Team) -> QuerySet[AwsAccount]:
    """The AWS accounts the team holds, of those the member may see."""
    return AwsAccount.objects.restrict(membership).filter(
        team_grants__group__name=team_group_name(team.pk)
    )
