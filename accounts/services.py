"""Changes to organizations, memberships and teams. Each writes its audit event in the same
transaction. Callers have checked the actor's role (views via the tenancy base classes)."""

from __future__ import annotations

from django.db import transaction
from django.utils.text import slugify

import audit

from .models import Membership, Organization, Team, TeamMembership, User
from .roles import Role


class ServiceError(ValueError):
    """A refused change, with a message fit to show the user."""


@transaction.atomic
def create_organization(*, name: str, slug: str, owner: User) -> Organization:
    from tagsense.tenancy.db import tenant_scope

    slug = slugify(slug or name)[:64]
    if not slug:
        raise ServiceError("the organization needs a name")
    if Organization.objects.filter(slug=slug).exists():
        raise ServiceError(f"the slug {slug!r} is taken")
    organization = Organization.objects.create(name=name, slug=slug)
    with tenant_scope(organization):
        membership = Membership.objects.create(
            organization=organization, user=owner, role=Role.OWNER
        )
        audit.record("org.create", target=organization, data={"name": name, "slug": slug})
        audit.record(
            "org.member_add", target=membership.user, data={"email": owner.email, "role": "owner"}
        )
    return organization


@transaction.atomic
def update_organization(organization: Organization, *, name: str) -> Organization:
    old = organization.name
    organization.name = name
    organization.save(update_fields=["name"])
    audit.record("org.update", target=organization, data={"name": [old, name]})
    return organization


@transaction.atomic
def add_member(organization: Organization, *, email: str, role: str) -> Membership:
    if role not in Role.values:
        raise ServiceError(f"unknown role {role!r}")
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise ServiceError(f"no user with the address {email!r}; they must sign in once first")
    if Membership.objects.for_org(organization).filter(user=user).exists():
        raise ServiceError(f"{user.email} is already a member")
    membership = Membership.objects.create(organization=organization, user=user, role=role)
    audit.record("org.member_add", target=user, data={"email": user.email, "role": role})
    return membership


def _owners_left(organization: Organization, excluding: Membership) -> int:
    return (
        Membership.objects.for_org(organization)
        .filter(role=Role.OWNER)
        .exclude(pk=excluding.pk)
        .count()
    )


@transaction.atomic
def change_role(membership: Membership, *, role: str, by: Membership) -> Membership:
    if role not in Role.values:
        raise ServiceError(f"unknown role {role!r}")
    if Role.OWNER in (role, membership.role) and by.role != Role.OWNER:
        raise ServiceError("only an owner can grant or take away the owner role")
    if (
        membership.role == Role.OWNER
        and role != Role.OWNER
        and not _owners_left(membership.organization, membership)
    ):
        raise ServiceError("an organization keeps at least one owner")
    old = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit.record(
        "org.member_role_change",
        target=membership.user,
        data={"email": membership.user.email, "role": [old, role]},
    )
    return membership


@transaction.atomic
def remove_member(membership: Membership, *, by: Membership) -> None:
    if membership.role == Role.OWNER:
        if by.role != Role.OWNER:
            raise ServiceError("only an owner can remove an owner")
        if not _owners_left(membership.organization, membership):
            raise ServiceError("an organization keeps at least one owner")
    TeamMembership.objects.for_org(membership.organization).filter(user=membership.user).delete()
    audit.record(
        "org.member_remove",
        target=membership.user,
        data={"email": membership.user.email, "role": membership.role},
    )
    membership.delete()


@transaction.atomic
def create_team(organization: Organization, *, name: str, description: str = "") -> Team:
    slug = slugify(name)[:64]
    if not slug:
        raise ServiceError("the team needs a name")
    if Team.objects.for_org(organization).filter(slug=slug).exists():
        raise ServiceError(f"a team named {name!r} exists already")
    team = Team.objects.create(
        organization=organization, name=name, slug=slug, description=description
    )
    audit.record("team.create", target=team, data={"name": name})
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
    audit.record("team.update", target=team, data=changes)
    return team


@transaction.atomic
def delete_team(team: Team) -> None:
    audit.record("team.delete", target=team, data={"name": team.name})
    team.delete()


@transaction.atomic
def add_team_member(team: Team, *, user: User) -> TeamMembership:
    if not Membership.objects.for_org(team.organization).filter(user=user).exists():
        raise ServiceError(f"{user.email} is not a member of the organization")
    if team.memberships.filter(user=user).exists():
        raise ServiceError(f"{user.email} is already in {team.name}")
    tm = TeamMembership.objects.create(organization=team.organization, team=team, user=user)
    audit.record("team.member_add", target=team, data={"email": user.email})
    return tm


@transaction.atomic
def remove_team_member(team: Team, *, user: User) -> None:
    deleted, _ = team.memberships.filter(user=user).delete()
    if not deleted:
        raise ServiceError(f"{user.email} is not in {team.name}")
    audit.record("team.member_remove", target=team, data={"email": user.email})
