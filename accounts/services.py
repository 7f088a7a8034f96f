"""Changes to organizations, memberships and teams. Each writes its audit event in the same
transaction. Callers have checked the actor's role (views via the tenancy base classes); rules
that depend on who acts (only an owner makes owners) are checked here, with `by`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

import audit
from tagsense.tenancy.db import tenant_scope

from . import audit_events
from .models import Membership, Organization, Team, TeamMembership, User, validate_organization_slug
from .roles import Role

T = TypeVar("T")


class ServiceError(ValueError):
    """A refused change, with a message fit to show the user."""


def _insert(create: Callable[[], T], duplicate: str) -> T:
    """Run an insert in a savepoint; a unique-constraint race becomes a ServiceError."""
    try:
        with transaction.atomic():
            return create()
    except IntegrityError as exc:
        raise ServiceError(duplicate) from exc


def may_create_organization(user: User) -> bool:
    """Whether `user` may create an organization: settings.TAGSENSE_ORG_CREATION ("anyone"
    signed in, or "superusers" only)."""

    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return settings.TAGSENSE_ORG_CREATION == "anyone" or user.is_superuser


@transaction.atomic
def create_organization(*, name: str, slug: str, owner: User) -> Organization:
    """A new organization owned by `owner` (an accepted owner membership), with `org.create`
    and `org.member_add` in its chain, all in one transaction. Callers check who may create one
    (may_create_organization); the slug rules (reserved prefixes, uniqueness) are checked here."""

    name = (name or "").strip()
    if not name:
        raise ServiceError("the organization needs a name")

    slug = slugify(slug or name)[:64]
    if not slug:
        raise ServiceError("the organization needs a name")
    try:
        validate_organization_slug(slug)
    except ValidationError as exc:
        raise ServiceError(exc.messages[0]) from exc
    taken = f"the slug {slug!r} is taken"
    if Organization.objects.filter(slug=slug).exists():
        raise ServiceError(taken)
    organization = _insert(lambda: Organization.objects.create(name=name, slug=slug), taken)
    with tenant_scope(organization):
        Membership.objects.create(
            organization=organization, user=owner, role=Role.OWNER, accepted_at=timezone.now()
        )
        audit.record(
            audit_events.ORG_CREATE, target=organization, data={"name": name, "slug": slug}
        )
        audit.record(
            audit_events.MEMBER_ADD, target=owner, data={"email": owner.email, "role": "owner"}
        )
    return organization


@transaction.atomic
def update_organization(organization: Organization, *, name: str) -> Organization:
    old = organization.name
    organization.name = name
    organization.save(update_fields=["name"])
    audit.record(audit_events.ORG_UPDATE, target=organization, data={"name": [old, name]})
    return organization


@transaction.atomic
def set_require_mfa(organization: Organization, *, require: bool) -> Organization:
    """Require (or stop requiring) two-factor authentication of every member. Assumes the
    caller may `manage` the organization. Members without it are sent to set it up on their
    next page of this organization (tagsense/tenancy/views.py)."""
    old = organization.require_mfa
    organization.require_mfa = require
    organization.save(update_fields=["require_mfa"])
    audit.record(audit_events.ORG_UPDATE, target=organization, data={"require_mfa": [old, require]})
    return organization


@transaction.atomic
def add_member(organization: Organization, *, email: str, role: str, by: Membership) -> Membership:
    """Invite an existing user; the membership is pending until they accept it."""
    if role not in Role.values:
        raise ServiceError(f"unknown role {role!r}")
    if role == Role.OWNER and by.role != Role.OWNER:
        raise ServiceError("only an owner can grant the owner role")
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise ServiceError(f"no user with the address {email!r}; they must sign in once first")
    already = f"{user.email} is already a member or invited"
    if Membership.objects.for_org(organization).filter(user=user).exists():
        raise ServiceError(already)
    membership = _insert(
        lambda: Membership.objects.create(
            organization=organization, user=user, role=role, invited_by=by.user
        ),
        already,
    )
    audit.record(
        audit_events.MEMBER_ADD,
        target=user,
        data={"email": user.email, "role": role, "pending": True},
    )
    return membership


@transaction.atomic
def accept_invitation(membership: Membership) -> Membership:
    """The invited user joins. Assumes the caller is `membership.user`."""
    if not membership.is_pending:
        raise ServiceError("this invitation was accepted already")
    membership.accepted_at = timezone.now()
    membership.save(update_fields=["accepted_at"])
    audit.record(
        audit_events.MEMBER_ACCEPT,
        target=membership.user,
        data={"email": membership.user.email, "role": membership.role},
        organization=membership.organization,
    )
    return membership


@transaction.atomic
def decline_invitation(membership: Membership) -> None:
    if not membership.is_pending:
        raise ServiceError("this invitation was accepted already")
    audit.record(
        audit_events.MEMBER_DECLINE,
        target=membership.user,
        data={"email": membership.user.email},
        organization=membership.organization,
    )
    membership.delete()


def _lock_owners(organization: Organization) -> list[Membership]:
    """The owner memberships, locked so two owners cannot demote each other at once."""
    return list(
        Membership.objects.for_org(organization)
        .filter(role=Role.OWNER)
        .order_by("pk")
        .select_for_update()
    )


def _ensure_another_owner(membership: Membership) -> None:
    owners = _lock_owners(membership.organization)
    if not [m for m in owners if m.pk != membership.pk and not m.is_pending]:
        raise ServiceError("an organization keeps at least one owner")


@transaction.atomic
def change_role(membership: Membership, *, role: str, by: Membership) -> Membership:
    if role not in Role.values:
        raise ServiceError(f"unknown role {role!r}")
    if Role.OWNER in (role, membership.role) and by.role != Role.OWNER:
        raise ServiceError("only an owner can grant or take away the owner role")
    if membership.role == Role.OWNER and role != Role.OWNER:
        _ensure_another_owner(membership)
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit.record(
        audit_events.MEMBER_ROLE_CHANGE,
        target=membership.user,
        data={"email": membership.user.email, "role": [old, role]},
    )
    return membership


@transaction.atomic
def remove_member(membership: Membership, *, by: Membership) -> None:
    if membership.role == Role.OWNER:
        if by.role != Role.OWNER:
            raise ServiceError("only an owner can remove an owner")
        _ensure_another_owner(membership)
    TeamMembership.objects.for_org(membership.organization).filter(user=membership.user).delete()
    from .tokens import revoke_member_tokens  # noqa: PLC0415 - accounts.tokens imports these services

    revoke_member_tokens(membership, by=by.user)
    audit.record(
        audit_events.MEMBER_REMOVE,
        target=membership.user,
        data={"email": membership.user.email, "role": membership.role},
    )
    membership.delete()


@transaction.atomic
def create_team(organization: Organization, *, name: str, description: str = "") -> Team:
    slug = slugify(name)[:64]
    if not slug:
        raise ServiceError("the team needs a name")
    exists = f"a team named {name!r} exists already"
    if Team.objects.for_org(organization).filter(slug=slug).exists():
        raise ServiceError(exists)
    team = _insert(
        lambda: Team.objects.create(
            organization=organization, name=name, slug=slug, description=description
        ),
        exists,
    )
    audit.record(audit_events.TEAM_CREATE, target=team, data={"name": name})
    return team


@transaction.atomic
def update_team(team: Team, *, name: str, description: str) -> Team:
    changes = {}
    if name != team.name:
        changes["name"] = [team.name, name]
    if description != team.description:
        changes["description"] = [team.description, description]
    team.name, team.description = name, description
    team.save(update_fields=["name", "description"])
    audit.record(audit_events.TEAM_UPDATE, target=team, data=changes)
    return team


@transaction.atomic
def delete_team(team: Team) -> None:
    audit.record(audit_events.TEAM_DELETE, target=team, data={"name": team.name})
    team.delete()


@transaction.atomic
def add_team_member(team: Team, *, user: User) -> TeamMembership:
    if not Membership.objects.for_org(team.organization).active().filter(user=user).exists():
        raise ServiceError(f"{user.email} is not an active member of the organization")
    already = f"{user.email} is already in {team.name}"
    if team.memberships.filter(user=user).exists():
        raise ServiceError(already)
    tm = _insert(
        lambda: TeamMembership.objects.create(organization=team.organization, team=team, user=user),
        already,
    )
    audit.record(audit_events.TEAM_MEMBER_ADD, target=team, data={"email": user.email})
    return tm


@transaction.atomic
def remove_team_member(team: Team, *, user: User) -> None:
    deleted, _ = team.memberships.filter(user=user).delete()
    if not deleted:
        raise ServiceError(f"{user.email} is not in {team.name}")
    audit.record(audit_events.TEAM_MEMBER_REMOVE, target=team, data={"email": user.email})
