"""Secrets stored encrypted at rest (TOTP secrets, OIDC client secrets).

Keys derive from SECRET_KEY, then each of SECRET_KEY_FALLBACKS: rotating the secret key keeps
what was encrypted before readable while the old key stays among the fallbacks, and new values
are encrypted with the current key. Each use names its purpose, so one derived key never
decrypts another use's secrets.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def derive_key(purpose: str, secret: str) -> bytes:
    """A Fernet key for `purpose` from one secret key."""
    digest = hashlib.sha256(purpose.encode() + b":" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def fernet(purpose: str) -> MultiFernet:
    """Encrypts with SECRET_KEY's key; decrypts with it or any fallback's."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([Fernet(derive_key(purpose, key)) for key in keys])


def encrypt(purpose: str, text: str) -> str:
    return fernet(purpose).encrypt(text.encode()).decode()


def decrypt(purpose: str, token: str) -> str:
    """The plaintext; cryptography.fernet.InvalidToken when no current or fallback key fits."""
    return fernet(purpose).decrypt(token.encode()).decode()
