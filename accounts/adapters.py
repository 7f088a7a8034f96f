"""allauth adapters: who may sign up, the client address and lock-out of failed sign-ins,
TOTP secrets encrypted at rest, and when an authenticator may be removed."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from cryptography.fernet import Fernet, MultiFernet
from django import forms
from django.conf import settings

from tagsense.tenancy.middleware import client_ip


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
        lock-out and the audit trail agree."""
        return client_ip(request) or super().get_client_ip(request)

    def pre_authenticate(self, request, **credentials: Any) -> None:
        """allauth refuses the attempt once ACCOUNT_RATE_LIMITS["login_failed"] is spent; each
        refused attempt is audited as `auth.login_locked` (the password is never kept)."""
        try:
            super().pre_authenticate(request, **credentials)
        except forms.ValidationError:
            from .signals import record_lockout

            record_lockout(credentials)
            raise


def _fernet_key(secret: str) -> bytes:
    digest = hashlib.sha256(b"tagsense.mfa.secret:" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest)


class MFAAdapter(DefaultMFAAdapter):
    def _fernet(self) -> MultiFernet:
        """Keys from SECRET_KEY, then SECRET_KEY_FALLBACKS: rotating the secret key keeps
        existing authenticators readable while the old key stays among the fallbacks."""
        keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
        return MultiFernet([Fernet(_fernet_key(key)) for key in keys])

    def encrypt(self, text: str) -> str:
        """TOTP secrets are stored encrypted, never in the clear."""
        return self._fernet().encrypt(text.encode()).decode()

    def decrypt(self, encrypted_text: str) -> str:
        return self._fernet().decrypt(encrypted_text.encode()).decode()

    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        """A member of an organization that requires two-factor authentication keeps their
        authenticator app (recovery codes alone are not enough)."""
        from .mfa import organizations_requiring_mfa

        if authenticator.type != Authenticator.Type.TOTP:
            return True
        return not organizations_requiring_mfa(authenticator.user)
