"""The identity rules of the tenancy layer's admission gate (tagsense/tenancy/gate.py), which
knows this module only as settings.TENANCY_ADMISSION_POLICY: an organization's mandatory
single sign-on and two-factor authentication for browser sessions, an API token's scope, who
acts with a token, and the audit of a refused request."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from tagsense.tenancy.gate import MfaRequired, SsoRequired, TokenScopeForbidden

from . import access, mfa, tokens
from .models import ApiToken, Membership
from .sso import config as sso_config


def check_session(membership: Membership, request: Any) -> None:
    """A browser session's way in: opened through the organization's own IdP when it requires
    one (the refusal audited as sso.session_refused), then two-factor authentication set up
    when it requires that."""
    if sso_config.sso_session_missing(membership, request.session):
        sso_config.record_session_refused(membership, request.path)
        raise SsoRequired(
            sso_config.session_refusal_message(membership, request.session),
            membership,
            sign_in_url=sso_config.sso_start_url(membership.organization),
        )
    if mfa.mfa_missing(membership):
        raise MfaRequired(
            mfa.MFA_REQUIRED_MESSAGE.format(organization=membership.organization.name),
            membership,
            setup_url=reverse("mfa_activate_totp"),
            settings_url=reverse("mfa_index"),
        )


def check_token(token: ApiToken, method: str, url_name: str | None) -> None:
    needed = tokens.missing_scope(token, method, url_name)
    if needed:
        raise TokenScopeForbidden(
            f"This token has the '{token.scope}' scope; this request needs the '{needed}' scope.",
            token.membership,  # type: ignore[attr-defined]
        )


token_actor = tokens.token_actor
record_denial = access.record_denial
