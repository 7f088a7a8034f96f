"""Just-in-time provisioning at each SSO sign-in (SAML or OpenID): the membership, role and
teams the IdP's groups map to, in the organization that owns the IdP and no other."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

import audit
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope

from .. import audit_events
from ..models import Membership, Organization, SSOGroupMapping, TeamMembership
from ..models import User as UserModel
from ..roles import Role

ROLE_RANK = [Role.OWNER, Role.ADMIN, Role.EDITOR, Role.AUDITOR, Role.VIEWER]
DEFAULT_ROLE = Role.VIEWER
MAX_GROUPS = 200
MAX_GROUP_LENGTH = 255


def groups_from(attributes: dict[str, Any], groups_attribute: str) -> list[str]:
    """The user's group names from the assertion's attributes: trimmed, bounded, unique."""
    if not groups_attribute:
        return []
    values = attributes.get(groups_attribute) or []
    if isinstance(values, str):
        values = [values]
    groups: list[str] = []
    for value in values[:MAX_GROUPS]:
        name = str(value).strip()[:MAX_GROUP_LENGTH]
        if name and name not in groups:
            groups.append(name)
    return groups


def _highest(roles: set[str]) -> str | None:
    for role in ROLE_RANK:
        if role in roles:
            return role
    return None


@transaction.atomic
def provision_sso_login(
    organization: Organization, user: UserModel, groups: list[str]
) -> Membership:
    """Apply a SAML sign-in to the organization that owns the IdP, and to no other.

    Joins the user (or accepts their invitation); when the organization maps any group to a
    role, sets the highest mapped role (the default role when none matches; owners are never
    changed); puts the user in the teams their groups map to and takes them out of the mapped
    teams their groups no longer name. Teams no mapping names are left alone.
    Runs in the organization's tenant scope with the user as the actor.
    """

    with tenant_scope(organization, actor=Actor.for_user(user)):
        mappings = list(SSOGroupMapping.objects.for_org(organization).select_related("team"))
        role_mappings = [m for m in mappings if not m.team_id]
        mapped_role = _highest({m.role for m in role_mappings if m.group in groups})
        role = mapped_role or DEFAULT_ROLE
        membership = (
            Membership.objects.for_org(organization).filter(user=user).select_for_update().first()
        )
        if membership is None:
            membership = Membership.objects.create(
                organization=organization, user=user, role=role, accepted_at=timezone.now()
            )
            audit.record(
                audit_events.MEMBER_ADD,
                target=user,
                data={"email": user.email, "role": role, "via": "sso"},
            )
        else:
            if membership.is_pending:
                membership.accepted_at = timezone.now()
                membership.save(update_fields=["accepted_at"])
                audit.record(
                    audit_events.MEMBER_ACCEPT,
                    target=user,
                    data={"email": user.email, "role": membership.role, "via": "sso"},
                )
            if role_mappings and membership.role != Role.OWNER and membership.role != role:
                old = membership.role
                membership.role = role
                membership.save(update_fields=["role"])
                audit.record(
                    audit_events.MEMBER_ROLE_CHANGE,
                    target=user,
                    data={"email": user.email, "role": [old, role], "via": "sso"},
                )
        managed = {m.team_id: m.team for m in mappings if m.team_id}
        wanted = {m.team_id for m in mappings if m.team_id and m.group in groups}
        current = set(
            TeamMembership.objects.for_org(organization)
            .filter(user=user, team_id__in=managed)
            .values_list("team_id", flat=True)
        )
        for team_id in sorted(wanted - current):
            TeamMembership.objects.create(organization=organization, team_id=team_id, user=user)
            audit.record(
                audit_events.TEAM_MEMBER_ADD,
                target=managed[team_id],
                data={"email": user.email, "via": "sso"},
            )
        for team_id in sorted(current - wanted):
            TeamMembership.objects.for_org(organization).filter(team_id=team_id, user=user).delete()
            audit.record(
                audit_events.TEAM_MEMBER_REMOVE,
                target=managed[team_id],
                data={"email": user.email, "via": "sso"},
            )
        audit.record(
            audit_events.SSO_LOGIN,
            target=user,
            data={"email": user.email, "groups": groups[:MAX_GROUPS]},
        )
    return membership
