"""From a URL's organization slug to the caller's membership: the single resolution step."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from accounts.models import Membership

from .db import user_scope


def resolve_membership(user: Any, org_slug: str) -> Membership:
    """The user's membership of the organization named by `org_slug`.

    Raises Http404 alike when the organization does not exist and when the user is not a
    member, so a probe cannot tell the two apart.
    """
    if user is None or not user.is_authenticated:
        raise Http404("No such organization.")
    with user_scope(user):
        membership = (
            Membership.objects.active()
            .filter(user=user, organization__slug=org_slug)
            .select_related("organization", "user")
            .first()
        )
    if membership is None:
        raise Http404("No such organization.")
    return membership


def memberships_of(user: Any) -> list[Membership]:
    if user is None or not user.is_authenticated:
        return []
    with user_scope(user):
        return list(
            Membership.objects.active()
            .filter(user=user)
            .select_related("organization")
            .order_by("organization__name")
        )


def invitations_of(user: Any) -> list[Membership]:
    """Memberships the user was invited to and has not accepted yet."""
    if user is None or not user.is_authenticated:
        return []
    with user_scope(user):
        return list(
            Membership.objects.pending()
            .filter(user=user)
            .select_related("organization", "invited_by")
            .order_by("created_at")
        )
