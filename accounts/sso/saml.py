"""The organization's SAML IdP as an allauth SocialApp, and python3-saml's settings for it.

One SocialApp per organization (provider "saml", provider_id "saml-<organization id>",
client_id = the organization's slug, which allauth's SAML URLs carry); configure_saml is its
only writer and writes its audit event in the same transaction. Also here: the security
settings enforced on every response, and the replay cache of consumed assertions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from allauth.socialaccount.models import SocialApp
from django.db import IntegrityError, transaction
from django.utils import timezone
from onelogin.saml2.constants import OneLogin_Saml2_Constants

import audit
from tagsense.tenancy.db import tenant_scope

from .. import audit_events
from ..models import Organization, SAMLAssertion
from ..services import ServiceError
from .metadata import (
    DEFAULT_ATTRIBUTES,
    IdPSettings,
    check_idp_url,
    describe_certificate,
    normalise_certificate,
)

PROVIDER = "saml"
# allauth finds a linked account by (provider id, uid): the provider id is the organization's
# *id* behind a prefix no other protocol uses, so no two organizations' IdPs, nor a SAML and an
# OpenID one, ever share a namespace (slugs can be renamed, and could look like a prefix).
PROVIDER_ID_PREFIX = "saml-"


# Enforced on every response whatever the stored settings say (saml_views.strict_config).
STRICT_SECURITY: dict[str, Any] = {
    "wantAssertionsSigned": True,
    "rejectDeprecatedAlgorithm": True,
    "wantNameId": True,
    "allowSingleLabelDomains": False,
}


class ReplayError(ServiceError):
    """The assertion was consumed before."""


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
    config.sso_url = check_idp_url(config.sso_url, "single sign-on URL")
    config.slo_url = check_idp_url(config.slo_url, "single logout URL", required=False)
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
        audit_events.SSO_CONFIGURE,
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


def consume_assertion(organization: Organization, assertion_id: str, not_on_or_after: Any) -> None:
    """Remember an assertion until it expires; ReplayError when it was seen before.

    Assumes the response was validated (signature, audience, times) by python3-saml.
    """

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
