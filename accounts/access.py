"""Reads with a permission check: missing and forbidden are both 404."""

from django.shortcuts import get_object_or_404

from .models import Membership, SSOGroupMapping, Team


def access_team_by_slug(membership: Membership, slug: str, action: str = "view") -> Team:
    return get_object_or_404(Team.objects.restrict(membership, action), slug=slug)


def access_membership_by_id(membership: Membership, pk: int, action: str = "view") -> Membership:
    return get_object_or_404(
        Membership.objects.restrict(membership, action).select_related("user"), pk=pk
    )


def access_sso_mapping_by_id(
    membership: Membership, pk: int, action: str = "manage"
) -> SSOGroupMapping:
    return get_object_or_404(
        SSOGroupMapping.objects.restrict(membership, action).select_related("team"), pk=pk
    )
