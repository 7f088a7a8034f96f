"""Reads with a permission check: missing and forbidden are both 404."""

from django.db import transaction
from django.shortcuts import get_object_or_404

import audit
from tagsense.tenancy.context import current

from . import audit_events
from .models import ApiToken, Membership, ServiceAccount, SSOGroupMapping, Team
from .throttle import claim, source_network


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


def record_denial(membership: Membership, actor, *, method: str, path: str, reason: str) -> bool:
    """Audit a 403 refused to a member or token of the organization (`org.access_denied`), at
    most once a minute per caller and client source (accounts.throttle), in its own
    transaction: the refused request's own transaction is rolled back. Returns whether an
    event was written."""

    organization = membership.organization
    source = source_network(current().ip_address)
    if not claim("org.access_denied", organization.pk, actor.kind, actor.id, source):
        return False
    data = {"method": method, "path": path[:300], "reason": str(reason)[:300]}
    data["role"] = membership.role
    with transaction.atomic():
        audit.record(audit_events.ACCESS_DENIED, data=data, organization=organization, actor=actor)
    return True
