"""From a URL's organization slug to the caller's membership: the single resolution step."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from . import get_membership_model
from .db import user_scope
from .models import Member


def membership_of(user: Any, org_slug: str) -> Member | None:
    """The user's accepted membership of the organization named by `org_slug`, or None alike
    when the organization does not exist and when the user is not a member of it."""
    if user is None or not user.is_authenticated:
        return None
    with user_scope(user):
        membership: Member | None = (
            get_membership_model()
            .objects.active()
            .filter(user=user, organization__slug=org_slug)
            .select_related("organization", "user")
            .first()
        )
    return membership


def resolve_membership(user: Any, org_slug: str) -> Member:
    """membership_of(), or Http404 so a probe cannot tell a missing organization from one the
    user does not belong to."""
    membership = membership_of(user, org_slug)
    if membership is None:
        raise Http404("No such organization.")
    return membership


def memberships_of(user: Any) -> list[Member]:
    if user is None or not user.is_authenticated:
        return []
    with user_scope(user):
        return list(
            get_membership_model()
            .objects.active()
            .filter(user=user)
            .select_related("organization")
            .order_by("organization__name")
        )


def invitations_of(user: Any) -> list[Member]:
    """Memberships the user was invited to and has not accepted yet."""
    if user is None or not user.is_authenticated:
        return []
    with user_scope(user):
        return list(
            get_membership_model()
            .objects.pending()
            .filter(user=user)
            .select_related("organization", "invited_by")
            .order_by("created_at")
        )
