"""What a browser session remembers of its single sign-on: which organization's IdP (SAML or
OpenID) opened it, and the SAML identity (NameID, SessionIndex) its single logout must match."""

from __future__ import annotations

from typing import Any

from ..models import Organization

# The session key naming the organization whose IdP opened the session (set at SAML sign-in,
# cleared at every other sign-in); the tenancy layer reads it for SSO-mandatory organizations.
SESSION_IDP_KEY = "sso_organization"


# The SAML identity of the session's sign-in, kept for single logout: {"organization": id,
# "name_id": ..., "session_index": ...}. Set at a SAML sign-in, removed at every other one.
SAML_SESSION_KEY = "sso_saml_session"
# Where the finish view hands NameID and SessionIndex to the sign-in (sociallogin.state).
SAML_STATE_KEY = "saml_session"


def saml_session_of(session: Any, organization: Organization) -> dict[str, str] | None:
    """The SAML identity this organization's IdP opened the session for, or None when the
    session was not opened by a SAML sign-in through this organization (a password sign-in,
    another organization's IdP, its OpenID provider)."""
    if session is None or session.get(SESSION_IDP_KEY) != organization.pk:
        return None
    saml = session.get(SAML_SESSION_KEY)
    if not isinstance(saml, dict) or saml.get("organization") != organization.pk:
        return None
    return saml


def saml_logout_mismatch(
    session: Any, organization: Organization, *, name_id: str | None, session_indexes: list[str]
) -> str:
    """Why a valid logout request from the organization's IdP does not end this session, or
    "": it must be a session that IdP opened, for the same NameID, and (when the request lists
    session indexes) one of them."""
    saml = saml_session_of(session, organization)
    if saml is None:
        return "the browser's session was not opened by this identity provider"
    if not name_id or name_id != saml.get("name_id"):
        return "the logout request names another NameID than this session's sign-in"
    if session_indexes and saml.get("session_index") not in session_indexes:
        return "the logout request names other sessions (SessionIndex) than this one"
    return ""


def remember_saml_session(request: Any, organization: Organization, state: dict) -> None:
    """Keep the NameID and SessionIndex of a SAML sign-in in its session, for single logout."""
    saml = state.get(SAML_STATE_KEY) or {}
    request.session[SAML_SESSION_KEY] = {
        "organization": organization.pk,
        "name_id": str(saml.get("name_id") or ""),
        "session_index": str(saml.get("session_index") or ""),
    }
