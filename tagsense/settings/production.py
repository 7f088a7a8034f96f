"""Production: every secret comes from the environment and has no default."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import TRUSTED_PROXY_COUNT, database, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
DATABASES = {"default": database(env.db("DATABASE_URL"), conn_max_age=60)}
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
# A cache every web process shares (redis://host:6379/1): the sign-in lock-out counters, used
# TOTP codes, the assistant's stop button (set by one request, read by the stream in another
# process) and its answer cache. A per-process cache would lose each of them silently.
CACHES = {"default": env.cache_url("CACHE_URL")}
# The audit chain's HMAC key: its own secret, not derived from SECRET_KEY (which may be rotated),
# and never stored in the database. Changing it breaks verification of every chain.
AUDIT_CHAIN_KEY = env("AUDIT_CHAIN_KEY")
if len(AUDIT_CHAIN_KEY) < 32:
    raise ImproperlyConfigured("AUDIT_CHAIN_KEY must be at least 32 characters")
# Outgoing mail (address confirmations, password resets, invitations): EMAIL_URL is e.g.
# smtp+tls://user:password@smtp.example.com:587 (django-environ's email_url; "consolemail://"
# writes mail to the log instead). No default: without it the first just-in-time SSO sign-in
# would fail on its confirmation e-mail.
EMAIL_CONFIG = env.email_url("EMAIL_URL")
vars().update(EMAIL_CONFIG)  # EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, EMAIL_USE_TLS, ...
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL")
SERVER_EMAIL = env("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# Trust X-Forwarded-Proto only behind a proxy that sets it (and strips a client's own):
# TRUSTED_PROXY_COUNT > 0, or SECURE_PROXY_SSL_HEADER_TRUSTED=true.
if TRUSTED_PROXY_COUNT or env.bool("SECURE_PROXY_SSL_HEADER_TRUSTED", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
OIDC_ALLOW_INSECURE_LOCALHOST = False  # identity providers are reached over https only
