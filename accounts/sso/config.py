"""The organization's SSO configuration and what it enforces (docs/sso.md).

The writes: SSO-mandatory, break-glass owners and the group mappings, each with its audit
event in the same transaction (callers have checked the actor's role). The questions: may this
user sign in with a password (password_refused_by), may this browser session open this
member's organization (sso_session_missing), and what a refused member is told.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.urls import reverse

import audit
from tagsense.tenancy.context import Actor
from tagsense.tenancy.resolve import memberships_of

from .. import audit_events, oidc
from ..models import Membership, Organization, SSOGroupMapping, Team
from ..models import User as UserModel
from ..roles import Role
from ..services import ServiceError
from .provisioning import MAX_GROUP_LENGTH
from .refusals import refusal_audit_allowed
from .saml import saml_app
from .session import SESSION_IDP_KEY


@transaction.atomic
def set_sso_required(organization: Organization, *, required: bool) -> Organization:
    if required and saml_app(organization) is None and not _has_oidc(organization):
        raise ServiceError("configure the identity provider before making SSO mandatory")
    old = organization.sso_required
    organization.sso_required = required
    organization.save(update_fields=["sso_required"])
    audit.record(
        audit_events.SSO_REQUIRE,
        target=organization,
        data={"sso_required": [old, required]},
        organization=organization,
    )
    return organization


def _has_oidc(organization: Organization) -> bool:
    return oidc.configuration(organization) is not None


@transaction.atomic
def set_break_glass(membership: Membership, *, break_glass: bool, by: Membership) -> Membership:
    """Mark an owner who keeps password sign-in under mandatory SSO. Only owners decide."""
    if by.role != Role.OWNER:
        raise ServiceError("only an owner can mark break-glass owners")
    if membership.role != Role.OWNER and break_glass:
        raise ServiceError("only owners can be break-glass accounts")
    old = membership.break_glass
    membership.break_glass = break_glass
    membership.save(update_fields=["break_glass"])
    audit.record(
        audit_events.MEMBER_BREAK_GLASS,
        target=membership.user,
        data={"email": membership.user.email, "break_glass": [old, break_glass]},
    )
    return membership


def clean_group(group: str) -> str:
    group = (group or "").strip()
    if not group or len(group) > MAX_GROUP_LENGTH:
        raise ServiceError(f"a group name is 1 to {MAX_GROUP_LENGTH} characters")
    return group


@transaction.atomic
def add_group_mapping(
    organization: Organization, *, group: str, team: Team | None = None, role: str = ""
) -> SSOGroupMapping:
    group = clean_group(group)
    if (team is None) == (not role):
        raise ServiceError("map the group to a team or to a role")
    if role and role not in Role.values:
        raise ServiceError(f"unknown role {role!r}")
    if role == Role.OWNER:
        raise ServiceError("SSO never grants the owner role")
    duplicate = f"the group {group!r} is mapped to that already"
    existing = SSOGroupMapping.objects.for_org(organization).filter(group=group)
    if team is not None and existing.filter(team=team).exists():
        raise ServiceError(duplicate)
    if role and existing.filter(team__isnull=True).exists():
        raise ServiceError(f"the group {group!r} is mapped to a role already")
    try:
        with transaction.atomic():
            mapping = SSOGroupMapping.objects.create(
                organization=organization, group=group, team=team, role=role
            )
    except IntegrityError as exc:
        raise ServiceError(duplicate) from exc
    audit.record(
        audit_events.SSO_MAPPING_ADD,
        target=mapping,
        data={"group": group, "team": team.name if team else "", "role": role},
    )
    return mapping


@transaction.atomic
def remove_group_mapping(mapping: SSOGroupMapping) -> None:
    audit.record(
        audit_events.SSO_MAPPING_REMOVE,
        target=mapping,
        data={
            "group": mapping.group,
            "team": mapping.team.name if mapping.team else "",
            "role": mapping.role,
        },
    )
    mapping.delete()


def password_refused_by(user: UserModel) -> Organization | None:
    """The first organization whose mandatory SSO forbids this user a password sign-in."""

    for membership in memberships_of(user):
        organization = membership.organization
        if organization.sso_required and not (
            membership.role == Role.OWNER and membership.break_glass
        ):
            return organization
    return None


SSO_SESSION_REQUIRED_MESSAGE = (
    "{organization} requires single sign-on: this session was not opened through its "
    "identity provider. Sign in through {organization}'s single sign-on to open its pages."
)
OTHER_IDP_SESSION_MESSAGE = (
    "This session was opened through another organization's single sign-on, which vouches "
    "for you there only. Sign out and sign in again (with your password, or through "
    "{organization}'s single sign-on) to open {organization}."
)


def sso_session_missing(membership: Membership, session: Any) -> bool:
    """True when this browser session may not open the membership's organization:

    - a session opened through an organization's IdP (SAML or OIDC) opens that organization
      only: whoever runs an IdP vouches for people in their own organization, never in
      another one the same person (or an account their IdP created) may belong to;
    - an organization that requires SSO opens only to sessions from its own IdP (not a
      password sign-in, nor one from before SSO became mandatory). Break-glass owners are
      exempt from this second rule.

    Asked by the tenancy base classes for every page and session API request."""
    organization = membership.organization
    idp_organization = session.get(SESSION_IDP_KEY) if session is not None else None
    if idp_organization is not None and idp_organization != organization.pk:
        return True
    if not organization.sso_required:
        return False
    if membership.role == Role.OWNER and membership.break_glass:
        return False
    return idp_organization != organization.pk


def sso_start_url(organization: Organization) -> str:
    """Where a person starts this organization's single sign-on (SAML, OIDC or a choice)."""

    return reverse("sso-start") + "?" + urlencode({"organization": organization.slug})


def session_refusal_message(membership: Membership, session: Any) -> str:
    idp_organization = session.get(SESSION_IDP_KEY) if session is not None else None
    template = (
        OTHER_IDP_SESSION_MESSAGE
        if idp_organization is not None and idp_organization != membership.organization.pk
        else SSO_SESSION_REQUIRED_MESSAGE
    )
    return template.format(organization=membership.organization.name)


def record_session_refused(membership: Membership, path: str) -> None:
    """Audit a page or API call refused by sso_session_missing, in the organization's chain:
    at most once a minute per member and client source (refusal_audit_allowed)."""

    if not refusal_audit_allowed(
        "sso.session_refused", membership.organization, membership.user_id
    ):
        return
    with transaction.atomic():
        audit.record(
            audit_events.SSO_SESSION_REFUSED,
            target=membership.user,
            data={"email": membership.user.email, "path": path[:500]},
            organization=membership.organization,
            actor=Actor.for_user(membership.user),
        )
