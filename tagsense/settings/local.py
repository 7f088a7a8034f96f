"""The embedded default: a private PostgreSQL from a wheel and a broker that needs no server.
`make run` uses it.

The database is the production engine with the same row-level security: scripts/run-embedded.sh
starts it (tagsense/embedded_db.py, data in var/pgdata) and exports its DATABASE_URL; without
one, the default is that server's socket in var/pgdata (a manage.py command beside `make run`).
"""

from .base import *  # noqa: F403
from .base import MIDDLEWARE, VAR_DIR, database, env

# Off, as in production: a 404 is the portal's page, not Django's technical page listing every
# URL pattern (DJANGO_DEBUG=true turns it on while developing).
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="embedded-default-not-for-production")

# The URL tagsense.embedded_db.url() gives for a server whose socket is in its data directory.
DATABASES = {
    "default": database(
        env.db("DATABASE_URL", default=f"postgres://postgres@/tagsense?host={VAR_DIR / 'pgdata'}")
    )
}

# Kombu's filesystem transport: web, worker and beat exchange messages through a folder.
_BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    for _sub in ("queue", "processed"):
        (_BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_BROKER_DIR / "queue"),
        "data_folder_out": str(_BROKER_DIR / "queue"),
        "processed_folder": str(_BROKER_DIR / "processed"),
        "store_processed": False,
        # The fanout exchanges' table (celery.pidbox.exchange, ...): kombu's default is
        # "control" relative to the working directory, the repository root under `make run`.
        "control_folder": str(_BROKER_DIR / "control"),
    }

# Static files straight from the repo's folders through whitenoise, DEBUG or not: no
# collectstatic, so `make run` starts at once. Plain (unhashed) names: the manifest storage of
# production would need collectstatic's manifest.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# scripts/run-embedded.sh starts the web server while it still prepares the demo: while this file
# exists every request answers 503 with what the start is doing (tagsense.starting).
TAGSENSE_STARTING_FILE = env("TAGSENSE_STARTING_FILE", default="")
if TAGSENSE_STARTING_FILE:
    _after = MIDDLEWARE.index("whitenoise.middleware.WhiteNoiseMiddleware") + 1  # CSS served
    MIDDLEWARE = [
        *MIDDLEWARE[:_after],
        "tagsense.starting.StartingMiddleware",
        *MIDDLEWARE[_after:],
    ]
