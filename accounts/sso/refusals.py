"""The audit of SSO refusals anyone can provoke (a garbage logout request, a failed sign-in,
a page opened with a password session), capped so nobody can flood an organization's chain."""

from __future__ import annotations

from typing import Any

import audit
from tagsense.tenancy.context import Actor, current

from .. import audit_events
from ..models import Organization
from ..models import User as UserModel
from ..throttle import claim, source_network, within_cap

# Refusals anyone can provoke (a garbage logout request, an empty ACS finish, a failed OpenID
# callback, a page opened with a password session) are audited at most once a minute per
# action, organization and client source, and at most this often a minute per action and
# organization in all, so rotating source addresses cannot flood an organization's chain.
REFUSALS_PER_ORGANIZATION_PER_INTERVAL = 60


def refusal_audit_allowed(action: str, organization: Organization | None, *who: object) -> bool:
    """Whether this refusal is audited (accounts.throttle): the first per action, organization,
    `who` and client source each interval, within the organization's cap for the action."""

    scope = organization.pk if organization is not None else "-"
    if not claim(action, scope, *who, source_network(current().ip_address)):
        return False
    return within_cap(f"{action}:{scope}", REFUSALS_PER_ORGANIZATION_PER_INTERVAL)


def record_rejection(organization: Organization | None, reason: str, **data: Any) -> None:
    """An SSO sign-in refused: into the organization's chain (or the global one), capped by
    refusal_audit_allowed."""

    if not refusal_audit_allowed("sso.login_rejected", organization):
        return
    audit.record(
        audit_events.SSO_LOGIN_REJECTED,
        data={"reason": reason[:500], **data},
        organization=organization,
        actor=Actor(Actor.ANONYMOUS, "", ""),
    )


def record_logout_rejection(
    organization: Organization, reason: str, user: UserModel | None = None
) -> None:
    """A logout message from the IdP refused (bad signature, unsigned when signed messages are
    wanted, wrong issuer or destination): into the organization's chain, capped by
    refusal_audit_allowed."""

    if not refusal_audit_allowed("sso.logout_rejected", organization):
        return

    audit.record(
        audit_events.SSO_LOGOUT_REJECTED,
        target=user,
        data={"reason": reason[:500], "email": user.email if user else ""},
        organization=organization,
        actor=Actor.for_user(user) if user else Actor(Actor.ANONYMOUS, "", ""),
    )
