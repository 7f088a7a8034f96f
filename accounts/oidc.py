"""OpenID Connect single sign-on per organization (docs/sso.md).

Each organization may have one OpenID provider (accounts.models.OIDCConfiguration). Its
allauth app (provider "openid_connect", provider_id "oidc-<organization id>") is built in
memory by accounts.adapters.SocialAccountAdapter from that row, so the decrypted client secret
never sits in allauth's socialaccount_socialapp table. Sign-ins use the authorization code flow
with PKCE (S256); they are bound to the organization and provisioned exactly like SAML ones
(accounts.sso.provisioning.provision_sso_login). Writes audit in the same transaction; callers
have checked the actor may `manage` the organization.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.base.constants import AuthError
from allauth.socialaccount.providers.oauth2.client import OAuth2Error
from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction

import audit
from tagsense import crypto, outbound
from tagsense.tenancy.db import all_tenants, tenant_scope

from . import audit_events
from .models import OIDCConfiguration, Organization
from .services import ServiceError
from .sso.metadata import fetch_public_https
from .sso.provisioning import groups_from, provision_sso_login
from .sso.saml import organization_id_of

logger = logging.getLogger(__name__)

PROVIDER = "openid_connect"
PROVIDER_ID_PREFIX = "oidc-"
SECRET_PURPOSE = "tagsense.oidc.client_secret"  # noqa: S105 (a key-derivation label)
DISCOVERY_PATH = "/.well-known/openid-configuration"
DEFAULT_SCOPES = "openid email profile"
DEFAULT_GROUPS_CLAIM = "groups"
MAX_DISCOVERY_BYTES = 512 * 1024
DISCOVERY_TIMEOUT = 10
# The endpoints read at save time; sign-ins use these, whatever the document says later.
PINNED = ("issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri")


@dataclass
class OIDCSettings:
    issuer: str
    client_id: str
    client_secret: str = ""  # empty on update: keep the stored one
    groups_claim: str = DEFAULT_GROUPS_CLAIM
    scopes: str = DEFAULT_SCOPES


def provider_id(organization: Organization) -> str:
    """The organization's id, never its slug: see accounts.sso.saml.PROVIDER_ID_PREFIX."""
    return f"{PROVIDER_ID_PREFIX}{organization.pk}"


def configuration(organization: Organization) -> OIDCConfiguration | None:
    """The organization's OIDC configuration, read in its tenant scope."""

    with tenant_scope(organization):
        return OIDCConfiguration.objects.for_org(organization).first()


# --- discovery ------------------------------------------------------------------------------


def insecure_localhost_allowed() -> bool:
    """http://127.0.0.1 and http://localhost issuers: for tests and development only."""
    return bool(getattr(settings, "OIDC_ALLOW_INSECURE_LOCALHOST", False))


def check_url(url: str, what: str) -> str:
    """An https URL (or, when the setting allows it, http on this machine)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    if not url or not parts.netloc or parts.username or parts.password:
        raise ServiceError(f"the {what} must be an https URL")
    if parts.scheme == "https":
        # checked again when the discovery document is fetched (sso.metadata.fetch_public_https)
        try:
            outbound.check_url(url, outbound.PUBLIC)
        except outbound.OutboundRefused as exc:
            if exc.unresolved:
                raise ServiceError(f"the {what}'s host name does not resolve") from exc
            raise ServiceError(
                f"the {what} points to a loopback, private, link-local or reserved address "
                f"({exc}); TagSense reads it only from public addresses"
            ) from exc
        return url
    if (
        parts.scheme == "http"
        and parts.hostname in ("127.0.0.1", "localhost")
        and insecure_localhost_allowed()
    ):
        return url
    raise ServiceError(f"the {what} must use https")


def _fetch_local(url: str) -> bytes:
    try:
        response = requests.get(
            url,
            timeout=DISCOVERY_TIMEOUT,
            allow_redirects=False,
            headers={"Accept": "application/json"},
            stream=True,
        )
        body = response.raw.read(MAX_DISCOVERY_BYTES + 1, decode_content=True)
        response.close()
    except requests.RequestException as exc:
        raise ServiceError(f"the discovery document could not be fetched from {url}") from exc
    if response.status_code != 200:
        raise ServiceError(
            f"{url} answered HTTP {response.status_code}, not the discovery document"
        )
    return body


def discover(issuer: str) -> dict[str, str]:
    """The provider's endpoints from its discovery document, checked; read once when saved.

    The document must name exactly this issuer, offer the authorization code flow, and (when
    it lists PKCE methods) S256. Redirects are not followed.
    """
    issuer = check_url(issuer, "issuer URL").rstrip("/")
    url = issuer + DISCOVERY_PATH
    if url.startswith("https://"):  # a public address only (sso.metadata.fetch_public_https)
        body = fetch_public_https(
            url,
            what="issuer URL",
            max_bytes=MAX_DISCOVERY_BYTES,
            timeout=DISCOVERY_TIMEOUT,
            accept="application/json",
        )
    else:  # http on this machine, allowed by OIDC_ALLOW_INSECURE_LOCALHOST (tests, dev)
        body = _fetch_local(url)
    if len(body) > MAX_DISCOVERY_BYTES:
        raise ServiceError("the discovery document is too large")
    try:
        document = requests.models.complexjson.loads(body)
    except ValueError as exc:
        raise ServiceError("the discovery document is not JSON") from exc
    if not isinstance(document, dict):
        raise ServiceError("the discovery document is not a JSON object")
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise ServiceError(
            "the discovery document names another issuer; enter the issuer exactly as the "
            "provider states it"
        )
    endpoints = {"issuer": document["issuer"]}
    for name in PINNED[1:]:
        value = document.get(name)
        if not value and name != "userinfo_endpoint":
            raise ServiceError(f"the discovery document has no {name}")
        if value:
            endpoints[name] = check_url(str(value), name.replace("_", " "))
    if "code" not in (document.get("response_types_supported") or ["code"]):
        raise ServiceError("the provider does not offer the authorization code flow")
    methods = document.get("code_challenge_methods_supported")
    if methods is not None and "S256" not in methods:
        raise ServiceError("the provider does not support PKCE with S256")
    return endpoints


# --- configuration --------------------------------------------------------------------------


def clean_scopes(scopes: str) -> str:
    words = []
    for word in (scopes or DEFAULT_SCOPES).split():
        if not word.isprintable() or len(word) > 100:
            raise ServiceError("scopes are words separated by spaces")
        if word not in words:
            words.append(word)
    if "openid" not in words:
        words.insert(0, "openid")
    return " ".join(words)


def configure_oidc(organization: Organization, config: OIDCSettings) -> OIDCConfiguration:
    """Create or replace the organization's OpenID provider; the discovery document is read
    now (before the transaction). The secret is stored encrypted and audited only as
    "changed"."""
    client_id = (config.client_id or "").strip()
    if not client_id or len(client_id) > 255:
        raise ServiceError("the client ID is required")
    groups_claim = (config.groups_claim or "").strip()
    if len(groups_claim) > 255:
        raise ServiceError("the groups claim name is too long")
    scopes = clean_scopes(config.scopes)
    endpoints = discover(config.issuer)
    return _save(organization, config, client_id, groups_claim, scopes, endpoints)


@transaction.atomic
def _save(
    organization: Organization,
    config: OIDCSettings,
    client_id: str,
    groups_claim: str,
    scopes: str,
    endpoints: dict[str, str],
) -> OIDCConfiguration:
    existing = OIDCConfiguration.objects.for_org(organization).select_for_update().first()
    secret = config.client_secret or ""
    if not secret and existing is None:
        raise ServiceError("the client secret is required")
    row = existing or OIDCConfiguration(organization=organization)
    row.issuer = endpoints["issuer"]
    row.client_id = client_id
    if secret:
        row.client_secret_encrypted = crypto.encrypt(SECRET_PURPOSE, secret)
    row.groups_claim = groups_claim
    row.scopes = scopes
    row.discovery = endpoints
    row.save()
    audit.record(
        audit_events.SSO_OIDC_CONFIGURE,
        target=organization,
        data={
            "created": existing is None,
            "issuer": row.issuer,
            "client_id": client_id,
            "secret_changed": bool(secret),
            "groups_claim": groups_claim,
            "scopes": scopes,
        },
        organization=organization,
    )
    return row


# --- the allauth app ------------------------------------------------------------------------


def build_app(organization: Organization, row: OIDCConfiguration) -> SocialApp | None:
    """The in-memory allauth app for the organization's provider; None when its secret cannot
    be decrypted (SECRET_KEY rotated without the old key among the fallbacks)."""
    try:
        secret = crypto.decrypt(SECRET_PURPOSE, row.client_secret_encrypted)
    except InvalidToken:
        logger.error("OIDC client secret of %s cannot be decrypted", organization.slug)
        return None
    return SocialApp(
        provider=PROVIDER,
        provider_id=provider_id(organization),
        name=organization.name[:40],
        client_id=row.client_id,
        secret=secret,
        settings={
            "server_url": row.issuer,
            "oauth_pkce_enabled": True,
            "scope": row.scopes.split(),
            "openid_configuration_overrides": dict(row.discovery),
            "groups_claim": row.groups_claim,
            "organization": organization.pk,
        },
    )


def apps(provider: str | None = None) -> list[SocialApp]:
    """allauth's list_apps for OIDC: by provider ("openid_connect" or None: all organizations')
    or by provider_id ("oidc-<organization id>": that organization's)."""

    if provider is None or provider == PROVIDER:
        with all_tenants():
            rows = list(OIDCConfiguration.objects.select_related("organization"))
        built = (build_app(row.organization, row) for row in rows)
        return [app for app in built if app is not None]
    pk = organization_id_of(provider, PROVIDER_ID_PREFIX)
    if pk is None:
        return []
    organization = Organization.objects.filter(pk=pk).first()
    row = configuration(organization) if organization is not None else None
    app = build_app(organization, row) if row is not None else None
    return [app] if app is not None else []


def organization_for_app(app: SocialApp) -> Organization | None:
    """The organization an OIDC app belongs to: only an app built from that organization's own
    configuration (never a socialaccount_socialapp row someone added)."""
    if app.provider != PROVIDER or app.pk is not None:
        return None
    pk = organization_id_of(app.provider_id or "", PROVIDER_ID_PREFIX)
    if pk is None or app.settings.get("organization") != pk:
        return None
    organization = Organization.objects.filter(pk=pk).first()
    row = configuration(organization) if organization is not None else None
    if row is None or row.client_id != app.client_id:
        return None
    return organization


def claims_of(extra_data: dict[str, Any]) -> dict[str, Any]:
    """The ID token's claims overlaid with the userinfo response's."""
    claims: dict[str, Any] = {}
    for part in ("id_token", "userinfo"):
        if isinstance(extra_data.get(part), dict):
            claims.update(extra_data[part])
    return claims


def provision(app: SocialApp, user: Any, extra_data: dict[str, Any]) -> Organization | None:
    """Each OIDC sign-in applies the groups claim in the provider's own organization only.
    Returns that organization (None when the app belongs to none)."""
    organization = organization_for_app(app)
    if organization is None:  # pre_social_login refused these already
        return None
    claims = claims_of(extra_data)
    groups = groups_from(claims, app.settings.get("groups_claim", ""))
    provision_sso_login(organization, user, groups)
    return organization


def describe_failure(error: Any = None, exception: Any = None) -> str:
    """What to tell the person (and the audit log) when the provider's answer is refused:
    never a token or a secret, only the kind of failure."""

    if error == AuthError.CANCELLED:
        return "the sign-in was cancelled at the identity provider"
    if isinstance(exception, OAuth2Error):
        text = str(exception)
        if "invalid_client" in text or "401" in text:
            return (
                "the identity provider refused TagSense's client credentials (check the client "
                "ID and secret)"
            )
        return "the identity provider refused to exchange the authorization code"
    if isinstance(exception, requests.RequestException):
        return "the identity provider could not be reached"
    if exception is not None:
        return "the identity provider's answer could not be verified"
    return "the sign-in did not come back from the identity provider as expected"
