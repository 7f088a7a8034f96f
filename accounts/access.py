"""Reads with a permission check: missing and forbidden are both 404."""

from django.shortcuts import get_object_or_404

from .models import ApiToken, Membership, ServiceAccount, SSOGroupMapping, Team


def access_team_by_slug(membership: Membership, slug: str, action: str = "view") -> Team:
    return get_object_or_404(Team.objects.restrict(membership, action), slug=slug)


def access_membership_by_id(membership: Membership, pk: int, action: str = "view") -> Membership:
    return get_object_or_404(
        Membership.objects.restrict(membership, action).select_related("user"), pk=pk
    )


def access_own_token_by_id(membership: Membership, pk: int) -> ApiToken:
    """One of the member's own personal tokens in this organization."""
    return get_object_or_404(
        ApiToken.objects.restrict(membership).filter(user_id=membership.user_id), pk=pk
    )


def access_service_account_by_id(
    membership: Membership, pk: int, action: str = "manage"
) -> ServiceAccount:
    return get_object_or_404(ServiceAccount.objects.restrict(membership, action), pk=pk)


def access_service_account_token_by_id(
    account: ServiceAccount, membership: Membership, pk: int, action: str = "manage"
) -> ApiToken:
    return get_object_or_404(
        ApiToken.objects.restrict(membership, action).filter(service_account=account), pk=pk
    )


def access_sso_mapping_by_id(
    membership: Membership, pk: int, action: str = "manage"
) -> SSOGroupMapping:
    return get_object_or_404(
        SSOGroupMapping.objects.restrict(membership, action).select_related("team"), pk=pk
    )
