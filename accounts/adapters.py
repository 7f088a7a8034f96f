"""allauth adapters: who may sign up, the client address and lock-out of failed sign-ins,
TOTP secrets encrypted at rest, and when an authenticator may be removed."""

from __future__ import annotations

import logging
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.stagekit import clear_login
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from allauth.socialaccount import app_settings as socialaccount_settings
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import transaction
from django.shortcuts import redirect, render

import audit
from accounts.models import Membership
from audit.models import normalise_ip
from tagsense import crypto, outbound
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import user_scope
from tagsense.tenancy.middleware import client_ip
from tagsense.tenancy.resolve import memberships_of

from . import audit_events, oidc
from .mfa import organizations_requiring_mfa
from .models import User
from .signals import record_lockout
from .sso.config import password_refused_by
from .sso.refusals import record_rejection
from .sso.saml import organization_for_app, provider_id
from .throttle import login_key

logger = logging.getLogger(__name__)


class AccountAdapter(DefaultAccountAdapter):
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "too_many_login_attempts": (
            "Too many failed sign-in attempts for this account or from your network. "
            "Sign-in is paused for a while: try again later, or reset your password."
        ),
    }

    def is_open_for_signup(self, request):
        """Members join through an organization (invitation or SSO); self sign-up is opt-in."""
        return settings.ACCOUNT_ALLOW_SIGNUP

    def get_client_ip(self, request) -> str:
        """The same address the audit log records (TRUSTED_PROXY_COUNT), so the per-address
        lock-out and the audit trail agree; IPv4-mapped IPv6 as plain IPv4 (otherwise allauth's
        /64 grouping would put every IPv4 client in one bucket, "::")."""
        return normalise_ip(client_ip(request)) or super().get_client_ip(request)

    def _get_login_attempts_cache_key(self, request, **credentials: Any) -> str:
        """The per-account lock-out counts the account alone (accounts.throttle.login_key):
        allauth's own key adds the request's host, port included, so each port counted
        failures afresh."""
        return login_key(credentials)

    def pre_authenticate(self, request, **credentials: Any) -> None:
        """allauth refuses the attempt once ACCOUNT_RATE_LIMITS["login_failed"] is spent; each
        refused attempt is audited as `auth.login_locked` (the password is never kept)."""
        try:
            super().pre_authenticate(request, **credentials)
        except forms.ValidationError:
            record_lockout(credentials)
            raise

    def pre_login(self, request, user, **kwargs):
        """A password sign-in is refused to members of an organization that requires SSO,
        except its owners marked break-glass. SAML sign-ins carry a sociallogin."""
        if not (kwargs.get("signal_kwargs") or {}).get("sociallogin"):
            organization = password_refused_by(user)
            if organization is not None:
                audit.record(
                    audit_events.PASSWORD_LOGIN_REFUSED,
                    target=user,
                    data={"email": user.email, "organization": organization.slug},
                    organization=organization,
                    actor=Actor(Actor.ANONYMOUS, "", user.email),
                )

                clear_login(request)
                messages.error(
                    request,
                    f"{organization.name} requires single sign-on: sign in through your "
                    "identity provider, not with a password.",
                )
                return redirect("account_login")
        return super().pre_login(request, user, **kwargs)


def refuse(request, organization, reason: str, status: int = 403, **data):
    """Audit a refused SSO sign-in and answer with a page that says why."""
    with transaction.atomic():
        record_rejection(organization, reason, **data)
    return render(
        request,
        "accounts/sso_error.html",
        {"sso_organization": organization, "reason": reason},
        status=status,
    )


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Binds each SAML IdP (accounts.sso) and OpenID provider (accounts.oidc) to the
    organization that owns its app."""

    def list_apps(self, request, provider=None, client_id=None):
        """Stored apps (SAML), plus each organization's OpenID provider built in memory from
        its own configuration, so the decrypted client secret is never stored by allauth."""
        found = super().list_apps(request, provider=provider, client_id=client_id)
        found = [app for app in found if app.provider != oidc.PROVIDER]
        built = oidc.apps(provider)
        if client_id:
            built = [app for app in built if app.client_id == client_id]
        return found + built

    def on_authentication_error(
        self, request, provider, error=None, exception=None, extra_context=None
    ):
        """An OpenID sign-in that failed before reaching pre_social_login (cancelled, wrong
        client secret, unverifiable answer): audited and explained like any refusal."""
        app = getattr(provider, "app", None)
        if app is not None and app.provider == oidc.PROVIDER:
            organization = oidc.organization_for_app(app)
            if exception is not None:
                logger.warning(
                    "OIDC sign-in for %s failed: %s",
                    app.provider_id,
                    type(exception).__name__,
                )
            reason = oidc.describe_failure(error, exception)
            raise ImmediateHttpResponse(refuse(request, organization, reason, provider="oidc"))
        super().on_authentication_error(
            request, provider, error=error, exception=exception, extra_context=extra_context
        )

    def get_requests_session(self):
        """What allauth's OpenID client fetches the token, user info and keys with at sign-in:
        every connection to an address checked as the issuer was when it was saved (public
        addresses; http only on this machine where OIDC_ALLOW_INSECURE_LOCALHOST allows it),
        pinned against DNS rebinding, and no redirect followed (tagsense.outbound)."""

        return outbound.pinned_requests_session(
            outbound.PUBLIC,
            loopback_http=oidc.insecure_localhost_allowed(),
            timeout=socialaccount_settings.REQUESTS_TIMEOUT,
        )

    def is_open_for_signup(self, request, sociallogin):
        # Just-in-time provisioning: the organization's IdP vouches for its people.
        return _organization(sociallogin) is not None

    def list_providers(self, request):
        """Only the identity providers of the organizations the signed-in user belongs to: the
        connected-accounts page would otherwise name every organization's IdP. None before
        sign-in (the login page asks for the organization's short name instead)."""

        mine = {m.organization_id for m in memberships_of(getattr(request, "user", None))}
        if not mine:
            return []
        shown = []
        for provider in super().list_providers(request):
            app = getattr(provider, "app", None)
            organization = _organization_of_app(app) if app is not None else None
            if organization is not None and organization.pk in mine:
                shown.append(provider)
        return shown

    def pre_social_login(self, request, sociallogin):
        """Before any user is logged in, created or connected, the identity must belong to this
        IdP's organization, and an IdP can never take over an account it did not create.

        - An identity already linked signs in as its user only when the link was made through
          this organization's own provider (the provider id is "saml-<organization id>" or
          "oidc-<organization id>", never shared) and the user is still a member of it (or
          invited); never as an operator's account.
        - Connecting (a signed-in member links the IdP from their account) is their own act:
          allowed for members of the IdP's organization.
        - A new identity whose e-mail matches no account is provisioned (just in time).
        - A new identity whose e-mail matches an existing account is refused: whoever
          administers the IdP could otherwise assert anyone's address (an owner's, a member of
          another organization who joins later) and sign in as them. The account's holder
          signs in with their password once and connects the IdP from their account.
        """
        organization = _organization(sociallogin)
        if organization is None:
            raise ImmediateHttpResponse(
                refuse(request, None, "this IdP belongs to no organization")
            )
        if sociallogin.is_existing:
            if sociallogin.user.is_staff or sociallogin.user.is_superuser:
                raise ImmediateHttpResponse(
                    refuse(request, organization, "operator accounts never sign in through SSO")
                )
            if not _linked_through(sociallogin, organization) or not _is_member(
                sociallogin.user, organization
            ):
                # The same words whoever the account is: an IdP learns nothing about accounts
                # outside its organization.
                raise ImmediateHttpResponse(
                    refuse(
                        request,
                        organization,
                        "this identity is not linked to a member of this organization through "
                        "its identity provider",
                    )
                )
            return
        if sociallogin.state.get("process") == "connect":
            if not _is_member(request.user, organization):
                raise ImmediateHttpResponse(
                    refuse(
                        request,
                        organization,
                        "only a member of this organization can connect its IdP",
                    )
                )
            return
        email = (sociallogin.user.email or "").strip()
        if not email:
            raise ImmediateHttpResponse(
                refuse(request, organization, "the IdP sent no e-mail address for this user")
            )
        if User.objects.filter(email__iexact=email).exists():
            raise ImmediateHttpResponse(
                refuse(
                    request,
                    organization,
                    "an account with this e-mail address already exists. Sign in with its "
                    "password once, then connect single sign-on from your account "
                    "(Connected accounts); from then on single sign-on signs you in",
                    email=email,
                )
            )


def _organization(sociallogin):
    app = getattr(sociallogin.provider, "app", None)
    return _organization_of_app(app) if app is not None else None


def _linked_through(sociallogin, organization) -> bool:
    """The existing link was made through this organization's own SAML or OpenID provider."""
    app = getattr(sociallogin.provider, "app", None)
    own = {provider_id(organization), oidc.provider_id(organization)}
    return (
        app is not None
        and app.provider_id in own
        and sociallogin.account.provider == app.provider_id
    )


def _organization_of_app(app):
    if app.provider == oidc.PROVIDER:
        return oidc.organization_for_app(app)
    return organization_for_app(app)


def _is_member(user, organization) -> bool:
    """A member of the organization, or invited to it."""

    if user is None or not user.is_authenticated:
        return False
    with user_scope(user):
        return Membership.objects.filter(user=user, organization=organization).exists()


MFA_SECRET_PURPOSE = "tagsense.mfa.secret"  # noqa: S105 (a key-derivation label, not a secret)


class MFAAdapter(DefaultMFAAdapter):
    def encrypt(self, text: str) -> str:
        """TOTP secrets are stored encrypted, never in the clear (tagsense.crypto: keys from
        SECRET_KEY and SECRET_KEY_FALLBACKS)."""
        return crypto.encrypt(MFA_SECRET_PURPOSE, text)

    def decrypt(self, encrypted_text: str) -> str:
        return crypto.decrypt(MFA_SECRET_PURPOSE, encrypted_text)

    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        """A member of an organization that requires two-factor authentication keeps their
        authenticator app (recovery codes alone are not enough)."""

        if authenticator.type != Authenticator.Type.TOTP:
            return True
        return not organizations_requiring_mfa(authenticator.user)
