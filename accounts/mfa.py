"""Two-factor authentication policy: which organizations require it, and whether a member
meets the requirement. The tenancy base classes ask `mfa_missing()` for every page and session
API request of an organization."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from allauth.mfa.adapter import get_adapter
from allauth.mfa.models import Authenticator

from tagsense.tenancy.resolve import memberships_of

if TYPE_CHECKING:
    from .models import Membership, Organization

MFA_REQUIRED_MESSAGE = (
    "{organization} requires two-factor authentication for all its members. "
    "Set up an authenticator app to continue."
)


def has_mfa(user: Any) -> bool:
    """True when the user signs in with an authenticator app (TOTP)."""
    return get_adapter().is_mfa_enabled(user, types=[Authenticator.Type.TOTP])


def users_with_mfa(user_ids: list[int]) -> set[int]:
    """Of these users, the ids of those who sign in with an authenticator app (one query)."""
    return set(
        Authenticator.objects.filter(user_id__in=user_ids, type=Authenticator.Type.TOTP)
        .values_list("user_id", flat=True)
        .distinct()
    )


def mfa_missing(membership: Membership) -> bool:
    """True when the membership's organization requires two-factor authentication and the
    member has not set it up. A service account's role (shaped like a membership, with no
    user) is not a person signing in: never missing it."""
    if membership.user_id is None:
        return False
    return membership.organization.require_mfa and not has_mfa(membership.user)


def organizations_requiring_mfa(user: Any) -> list[Organization]:

    return [m.organization for m in memberships_of(user) if m.organization.require_mfa]
