"""SAML single sign-on per organization (docs/sso.md).

The IdP configuration is one allauth SocialApp per organization (provider "saml", provider_id
"saml-<organization id>", client_id = the organization's slug, which allauth's SAML URLs carry);
these functions are its only writer. Also here: the group
mappings, SSO-mandatory and break-glass owners, the replay cache, and the just-in-time
provisioning applied at each SAML sign-in. Each change writes its audit event in the same
transaction. Callers have checked the actor's role (views via the tenancy base classes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import http.client
import re
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from allauth.socialaccount.models import SocialApp
from cryptography import x509
from django.db import IntegrityError, transaction
from django.utils import timezone
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser

import audit

from .models import Membership, Organization, SAMLAssertion, SSOGroupMapping, Team, TeamMembership
from .models import User as UserModel
from .roles import Role
from .services import ServiceError

PROVIDER = "saml"
# allauth finds a linked account by (provider id, uid): the provider id is the organization's
# *id* behind a prefix no other protocol uses, so no two organizations' IdPs, nor a SAML and an
# OpenID one, ever share a namespace (slugs can be renamed, and could look like a prefix).
PROVIDER_ID_PREFIX = "saml-"
# Highest first: "highest role wins" when several groups map to roles.
ROLE_RANK = [Role.OWNER, Role.ADMIN, Role.EDITOR, Role.AUDITOR, Role.VIEWER]
DEFAULT_ROLE = Role.VIEWER
MAX_GROUPS = 200
MAX_GROUP_LENGTH = 255
# The session key naming the organization whose IdP opened the session (set at SAML sign-in,
# cleared at every other sign-in); the tenancy layer reads it for SSO-mandatory organizations.
SESSION_IDP_KEY = "sso_organization"

# The SAML identity of the session's sign-in, kept for single logout: {"organization": id,
# "name_id": ..., "session_index": ...}. Set at a SAML sign-in, removed at every other one.
SAML_SESSION_KEY = "sso_saml_session"
# Where the finish view hands NameID and SessionIndex to the sign-in (sociallogin.state).
SAML_STATE_KEY = "saml_session"

# Enforced on every response whatever the stored settings say (saml_views.strict_config).
STRICT_SECURITY: dict[str, Any] = {
    "wantAssertionsSigned": True,
    "rejectDeprecatedAlgorithm": True,
    "wantNameId": True,
    "allowSingleLabelDomains": False,
}

DEFAULT_ATTRIBUTES = {
    "email": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
    "first_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
    "last_name": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
    "groups": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
}


class ReplayError(ServiceError):
    """The assertion was consumed before."""


@dataclass
class IdPSettings:
    entity_id: str
    sso_url: str
    slo_url: str = ""
    certificates: list[str] = field(default_factory=list)
    want_message_signed: bool = False
    email_attribute: str = DEFAULT_ATTRIBUTES["email"]
    first_name_attribute: str = DEFAULT_ATTRIBUTES["first_name"]
    last_name_attribute: str = DEFAULT_ATTRIBUTES["last_name"]
    groups_attribute: str = DEFAULT_ATTRIBUTES["groups"]
    source: str = "manual"  # "manual", "metadata-xml" or the metadata URL


# --- certificates and metadata --------------------------------------------------------------

_PEM_ARMOUR = re.compile(r"-----(BEGIN|END) CERTIFICATE-----")


def normalise_certificate(text: str) -> str:
    """The certificate's base64 DER on one line; ServiceError when it is not an X.509 one."""
    body = re.sub(r"\s+", "", _PEM_ARMOUR.sub("", text or ""))
    try:
        der = base64.b64decode(body, validate=True)
        x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise ServiceError("that is not a valid X.509 certificate (PEM or base64)") from exc
    return body


def describe_certificate(body: str) -> dict[str, str]:
    """What an admin needs to recognise a certificate: never the certificate itself."""
    der = base64.b64decode(body)
    cert = x509.load_der_x509_certificate(der)
    return {
        "subject": cert.subject.rfc4514_string()[:200],
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%d"),
        "sha256": hashlib.sha256(der).hexdigest(),
    }


def _check_url(url: str, what: str, *, required: bool = True) -> str:
    url = (url or "").strip()
    if not url:
        if required:
            raise ServiceError(f"the {what} is required")
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ServiceError(f"the {what} must be an http(s) URL")
    return url


def settings_from_metadata(xml: str, *, entity_id: str = "") -> IdPSettings:
    """IdP settings from its metadata XML (an upload, or what fetch_metadata returned)."""
    try:
        parsed = OneLogin_Saml2_IdPMetadataParser.parse(
            xml,
            entity_id=entity_id or None,
            required_sso_binding=OneLogin_Saml2_Constants.BINDING_HTTP_REDIRECT,
        )
    except Exception as exc:  # lxml and the parser raise many kinds; none is the user's fault
        raise ServiceError("the IdP metadata could not be read as SAML metadata XML") from exc
    idp = parsed.get("idp") or {}
    certificates = list((idp.get("x509certMulti") or {}).get("signing") or [])
    if not certificates and idp.get("x509cert"):
        certificates = [idp["x509cert"]]
    if not idp.get("entityId") or not certificates:
        raise ServiceError("the metadata names no IdP entity with a signing certificate")
    return IdPSettings(
        entity_id=idp["entityId"],
        sso_url=(idp.get("singleSignOnService") or {}).get("url", ""),
        slo_url=(idp.get("singleLogoutService") or {}).get("url", ""),
        certificates=certificates,
        source="metadata-xml",
    )


METADATA_MAX_BYTES = 1024 * 1024
METADATA_TIMEOUT = 10  # seconds, for the whole fetch


def _public_address(host: str, port: int, what: str) -> str:
    """One address `host` resolves to, after checking every one of them is public
    (tagsense.outbound, policy PUBLIC)."""
    from tagsense import outbound

    try:
        return outbound.resolve(host, port, outbound.PUBLIC)[0]
    except outbound.OutboundRefused as exc:
        if exc.unresolved:
            raise ServiceError(f"the {what}'s host name does not resolve") from exc
        raise ServiceError(
            f"the {what} points to a loopback, private, link-local or reserved "
            "address; TagSense reads it only from public addresses"
        ) from exc


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address checked beforehand, so a second DNS answer cannot swap it; the
    certificate is still verified against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def fetch_public_https(
    url: str, *, what: str, max_bytes: int, timeout: float, accept: str
) -> bytes:
    """A document an admin pointed TagSense at (IdP metadata, an OpenID discovery document),
    read from a public https address only: every address the host resolves to is checked and
    the connection goes to a checked one (no DNS rebinding to an internal service); no
    redirects are followed; at most `max_bytes` within `timeout` seconds."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ServiceError(f"the {what} must use https")
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise ServiceError(f"the {what}'s port is not valid") from exc
    address = _public_address(parts.hostname, port, what)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    deadline = time.monotonic() + timeout
    connection = _PinnedHTTPSConnection(parts.hostname, port, address, timeout)
    try:
        connection.request("GET", path, headers={"Accept": accept})
        response = connection.getresponse()
        if response.status != 200:
            raise ServiceError(
                f"the {what} answered HTTP {response.status} (redirects are not "
                "followed: give the final address)"
            )
        body = b""
        while len(body) <= max_bytes:
            if time.monotonic() > deadline:
                raise ServiceError(f"the {what} took too long to download")
            chunk = response.read(64 * 1024)
            if not chunk:
                break
            body += chunk
        if len(body) > max_bytes:
            raise ServiceError(f"the document at the {what} is larger than {max_bytes} bytes")
    except (OSError, http.client.HTTPException) as exc:
        raise ServiceError(f"nothing could be fetched from the {what}") from exc
    finally:
        connection.close()
    return body


def fetch_metadata(url: str) -> str:
    """The IdP metadata at a public https URL, read once when an admin saves the configuration.

    No redirects are followed; at most METADATA_MAX_BYTES within METADATA_TIMEOUT seconds.
    """
    url = _check_url(url, "metadata URL")
    body = fetch_public_https(
        url,
        what="metadata URL",
        max_bytes=METADATA_MAX_BYTES,
        timeout=METADATA_TIMEOUT,
        accept="application/samlmetadata+xml, */*",
    )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ServiceError("the IdP metadata is not UTF-8 XML") from exc


# --- the SocialApp --------------------------------------------------------------------------


def provider_id(organization: Organization) -> str:
    """The allauth provider id of the organization's SAML IdP (SocialAccount.provider)."""
    return f"{PROVIDER_ID_PREFIX}{organization.pk}"


def organization_id_of(provider_id_: str, prefix: str) -> int | None:
    """The organization id in "<prefix><id>", or None when the provider id is not of that form."""
    if not provider_id_.startswith(prefix):
        return None
    rest = provider_id_[len(prefix) :]
    return int(rest) if rest.isascii() and rest.isdigit() and not rest.startswith("0") else None


def saml_app(organization: Organization) -> SocialApp | None:
    return SocialApp.objects.filter(
        provider=PROVIDER, provider_id=provider_id(organization)
    ).first()


def organization_for_app(app: SocialApp) -> Organization | None:
    """The organization an IdP belongs to: the one whose id its provider_id names, when the
    app's client_id (the slug in its URLs) is that organization's slug."""
    if app.provider != PROVIDER:
        return None
    pk = organization_id_of(app.provider_id or "", PROVIDER_ID_PREFIX)
    organization = Organization.objects.filter(pk=pk).first() if pk is not None else None
    if organization is None or app.client_id != organization.slug:
        return None
    return organization


def idp_settings(app: SocialApp | None) -> IdPSettings | None:
    if app is None:
        return None
    idp = app.settings.get("idp", {})
    attributes = app.settings.get("attribute_mapping", {})
    return IdPSettings(
        entity_id=idp.get("entity_id", ""),
        sso_url=idp.get("sso_url", ""),
        slo_url=idp.get("slo_url", ""),
        certificates=list(idp.get("certificates") or [idp.get("x509cert", "")]),
        want_message_signed=app.settings.get("advanced", {}).get("want_message_signed", False),
        email_attribute=(attributes.get("email") or [""])[0],
        first_name_attribute=(attributes.get("first_name") or [""])[0],
        last_name_attribute=(attributes.get("last_name") or [""])[0],
        groups_attribute=app.settings.get("groups_attribute", ""),
        source=idp.get("source", "manual"),
    )


def _app_settings(config: IdPSettings) -> dict[str, Any]:
    return {
        "idp": {
            "entity_id": config.entity_id,
            "sso_url": config.sso_url,
            "slo_url": config.slo_url,
            "x509cert": config.certificates[0],
            "certificates": config.certificates,
            # Not "metadata_url": allauth would fetch it at every sign-in; we read it on save.
            "source": config.source,
        },
        # No "uid" entry: the NameID (required) identifies the user at the IdP.
        "attribute_mapping": {
            "email": [config.email_attribute],
            "first_name": [config.first_name_attribute],
            "last_name": [config.last_name_attribute],
        },
        "groups_attribute": config.groups_attribute,
        "advanced": advanced_settings(want_message_signed=config.want_message_signed),
    }


def advanced_settings(*, want_message_signed: bool = False) -> dict[str, Any]:
    """allauth's "advanced" SAML settings of every organization's IdP (what the SP metadata
    states, before and after an IdP is saved)."""
    return {
        "strict": True,
        "want_assertion_signed": True,
        "want_message_signed": want_message_signed,
        "reject_deprecated_algorithm": True,
        "reject_idp_initiated_sso": True,
        "want_name_id": True,
        "want_attribute_statement": False,
        "allow_single_label_domains": False,
    }


@transaction.atomic
def configure_saml(organization: Organization, config: IdPSettings) -> SocialApp:
    """Create or replace the organization's IdP. Assumes the caller may `manage` it."""
    config.entity_id = (config.entity_id or "").strip()
    if not config.entity_id or len(config.entity_id) > 1024:
        raise ServiceError("the IdP entity ID is required")
    config.sso_url = _check_url(config.sso_url, "single sign-on URL")
    config.slo_url = _check_url(config.slo_url, "single logout URL", required=False)
    config.certificates = [normalise_certificate(c) for c in config.certificates if c.strip()]
    if not config.certificates:
        raise ServiceError("at least one IdP signing certificate is required")
    for name in ("email_attribute", "first_name_attribute", "last_name_attribute"):
        setattr(config, name, (getattr(config, name) or DEFAULT_ATTRIBUTES[name[:-10]]).strip())
    config.groups_attribute = (config.groups_attribute or "").strip()
    app = saml_app(organization) or SocialApp(
        provider=PROVIDER, provider_id=provider_id(organization)
    )
    created = app.pk is None
    app.client_id = organization.slug
    app.name = organization.name[:40]
    app.settings = _app_settings(config)
    app.save()
    audit.record(
        "sso.configure",
        target=organization,
        data={
            "created": created,
            "entity_id": config.entity_id,
            "sso_url": config.sso_url,
            "slo_url": config.slo_url,
            "source": config.source,
            "certificates": [describe_certificate(c)["sha256"] for c in config.certificates],
            "want_message_signed": config.want_message_signed,
        },
        organization=organization,
    )
    return app


@transaction.atomic
def set_sso_required(organization: Organization, *, required: bool) -> Organization:
    if required and saml_app(organization) is None and not _has_oidc(organization):
        raise ServiceError("configure the identity provider before making SSO mandatory")
    old = organization.sso_required
    organization.sso_required = required
    organization.save(update_fields=["sso_required"])
    audit.record(
        "sso.require",
        target=organization,
        data={"sso_required": [old, required]},
        organization=organization,
    )
    return organization


def _has_oidc(organization: Organization) -> bool:
    from . import oidc

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
        "org.member_break_glass",
        target=membership.user,
        data={"email": membership.user.email, "break_glass": [old, break_glass]},
    )
    return membership


# --- group mappings -------------------------------------------------------------------------


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
        "sso.mapping_add",
        target=mapping,
        data={"group": group, "team": team.name if team else "", "role": role},
    )
    return mapping


@transaction.atomic
def remove_group_mapping(mapping: SSOGroupMapping) -> None:
    audit.record(
        "sso.mapping_remove",
        target=mapping,
        data={
            "group": mapping.group,
            "team": mapping.team.name if mapping.team else "",
            "role": mapping.role,
        },
    )
    mapping.delete()


# --- sign-in --------------------------------------------------------------------------------


def password_refused_by(user: UserModel) -> Organization | None:
    """The first organization whose mandatory SSO forbids this user a password sign-in."""
    from tagsense.tenancy.resolve import memberships_of

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
    from urllib.parse import urlencode

    from django.urls import reverse

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
    from tagsense.tenancy.context import Actor

    if not refusal_audit_allowed(
        "sso.session_refused", membership.organization, membership.user_id
    ):
        return
    with transaction.atomic():
        audit.record(
            "sso.session_refused",
            target=membership.user,
            data={"email": membership.user.email, "path": path[:500]},
            organization=membership.organization,
            actor=Actor.for_user(membership.user),
        )


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


def consume_assertion(organization: Organization, assertion_id: str, not_on_or_after: Any) -> None:
    """Remember an assertion until it expires; ReplayError when it was seen before.

    Assumes the response was validated (signature, audience, times) by python3-saml.
    """
    from tagsense.tenancy.db import tenant_scope

    if not assertion_id:
        raise ReplayError("the assertion has no ID")
    now = timezone.now()
    drift = timedelta(seconds=OneLogin_Saml2_Constants.ALLOWED_CLOCK_DRIFT)
    if isinstance(not_on_or_after, int | float):
        expires = datetime.fromtimestamp(not_on_or_after, tz=UTC) + drift
    else:  # no NotOnOrAfter on the subject: keep it for a day
        expires = now + timedelta(days=1)
    with tenant_scope(organization):
        SAMLAssertion.objects.for_org(organization).filter(expires_at__lt=now).delete()
        try:
            with transaction.atomic():
                SAMLAssertion.objects.create(
                    organization=organization,
                    assertion_id=assertion_id[:255],
                    expires_at=max(expires, now + drift),
                )
        except IntegrityError as exc:
            raise ReplayError("this assertion was used before (replay)") from exc


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
    from tagsense.tenancy.context import Actor
    from tagsense.tenancy.db import tenant_scope

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
                "org.member_add",
                target=user,
                data={"email": user.email, "role": role, "via": "sso"},
            )
        else:
            if membership.is_pending:
                membership.accepted_at = timezone.now()
                membership.save(update_fields=["accepted_at"])
                audit.record(
                    "org.member_accept",
                    target=user,
                    data={"email": user.email, "role": membership.role, "via": "sso"},
                )
            if role_mappings and membership.role != Role.OWNER and membership.role != role:
                old = membership.role
                membership.role = role
                membership.save(update_fields=["role"])
                audit.record(
                    "org.member_role_change",
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
                "team.member_add", target=managed[team_id], data={"email": user.email, "via": "sso"}
            )
        for team_id in sorted(current - wanted):
            TeamMembership.objects.for_org(organization).filter(team_id=team_id, user=user).delete()
            audit.record(
                "team.member_remove",
                target=managed[team_id],
                data={"email": user.email, "via": "sso"},
            )
        audit.record(
            "sso.login", target=user, data={"email": user.email, "groups": groups[:MAX_GROUPS]}
        )
    return membership


# Refusals anyone can provoke (a garbage logout request, an empty ACS finish, a failed OpenID
# callback, a page opened with a password session) are audited at most once a minute per
# action, organization and client source, and at most this often a minute per action and
# organization in all, so rotating source addresses cannot flood an organization's chain.
REFUSALS_PER_ORGANIZATION_PER_INTERVAL = 60


def refusal_audit_allowed(action: str, organization: Organization | None, *who: object) -> bool:
    """Whether this refusal is audited (accounts.throttle): the first per action, organization,
    `who` and client source each interval, within the organization's cap for the action."""
    from tagsense.tenancy.context import current

    from .throttle import claim, source_network, within_cap

    scope = organization.pk if organization is not None else "-"
    if not claim(action, scope, *who, source_network(current().ip_address)):
        return False
    return within_cap(f"{action}:{scope}", REFUSALS_PER_ORGANIZATION_PER_INTERVAL)


def record_rejection(organization: Organization | None, reason: str, **data: Any) -> None:
    """An SSO sign-in refused: into the organization's chain (or the global one), capped by
    refusal_audit_allowed."""
    from tagsense.tenancy.context import Actor

    if not refusal_audit_allowed("sso.login_rejected", organization):
        return
    audit.record(
        "sso.login_rejected",
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
    from tagsense.tenancy.context import Actor

    if not refusal_audit_allowed("sso.logout_rejected", organization):
        return

    audit.record(
        "sso.logout_rejected",
        target=user,
        data={"reason": reason[:500], "email": user.email if user else ""},
        organization=organization,
        actor=Actor.for_user(user) if user else Actor(Actor.ANONYMOUS, "", ""),
    )
