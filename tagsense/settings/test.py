"""The test suite: PostgreSQL (with row-level security active) and Redis on 127.0.0.1."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import database, env

SECRET_KEY = "test-only-secret-key"  # noqa: S105
DEBUG = False
ALLOWED_HOSTS = ["*"]

DATABASES = {
    "default": database(
        env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/tagsense")
    )
}
# Transactional tests end with a flush (TRUNCATE); the audit table refuses TRUNCATE, so the test
# backend flushes as the owner with triggers off. Never set outside tests.
TENANCY_FLUSH_AS_OWNER = True

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Evidence packages of the test run: a folder of its own, never the checkout's var/ (removed
# by tests/conftest.py at the end of the session).
EVIDENCE_ROOT = Path(tempfile.mkdtemp(prefix="tagsense-test-evidence-"))
