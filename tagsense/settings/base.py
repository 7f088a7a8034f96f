"""Settings shared by every environment. Values come from the environment (django-environ).

Each of them sets DATABASES with database() below: local.py is the embedded default (a private
PostgreSQL from a wheel, a broker that needs no server), test.py runs against PostgreSQL and
Redis, production.py refuses to start without its secrets.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
VAR_DIR = Path(env.str("TAGSENSE_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "tagsense.admin_site.TagSenseAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "guardian",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.saml",
    "allauth.socialaccount.providers.openid_connect",
    "django_celery_beat",
    "tagsense.tenancy",
    "accounts",
    "audit",
    "inventory",
    "policies",
    "evidence",
    "assistant",
    "dashboard",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tagsense.security.ContentSecurityPolicyMiddleware",
    "tagsense.security.RejectNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "tagsense.security.SessionTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tagsense.tenancy.middleware.RequestContextMiddleware",
]

ROOT_URLCONF = "tagsense.urls"
WSGI_APPLICATION = "tagsense.wsgi.application"
ASGI_APPLICATION = "tagsense.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tagsense.tenancy.context_processors.tenancy",
                "accounts.context_processors.site",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# On PostgreSQL the web and worker processes work as DATABASE_APP_ROLE, which owns no table and
# is bound by row-level security; `manage.py migrate` works as the owner. Two ways to log in:
# - DATABASE_URL is the owner and DATABASE_OWNER_URL is unset: every process logs in as the
#   owner and `SET ROLE`s to the app role (simple; tests and single-credential deployments).
# - DATABASE_URL is a login that is a member of the app role and DATABASE_OWNER_URL the owner:
#   the processes never hold the owner's credentials, so not even injected SQL can
#   `RESET ROLE` out of row-level security. Production should use this. See docs/architecture.md.
DATABASE_APP_ROLE = env("DATABASE_APP_ROLE", default="tagsense_app")
DATABASE_OWNER_URL = env("DATABASE_OWNER_URL", default="")


def database(config: dict, conn_max_age: int = 0) -> dict:
    """A DATABASES entry from a parsed URL; PostgreSQL gets the tenancy backend and app role."""
    if config["ENGINE"] not in ("django.db.backends.postgresql", "tagsense.tenancy.pg"):
        raise ImproperlyConfigured(f"DATABASE_URL must name PostgreSQL, not {config['ENGINE']}")
    config["ENGINE"] = "tagsense.tenancy.pg"
    if DATABASE_OWNER_URL:
        owner = env.db_url_config(DATABASE_OWNER_URL)
        config["OWNER"] = {k: owner[k] for k in ("USER", "PASSWORD", "HOST", "PORT")}
    else:
        config.setdefault("OPTIONS", {})["assume_role"] = DATABASE_APP_ROLE
    config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=conn_max_age)
    return config


DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# The tenancy layer (tagsense/tenancy) and the audit log know the organization and membership
# models only by these names (tagsense.tenancy.get_organization_model()), and the identity
# checks of the admission gate only as this module (tagsense/tenancy/gate.py, AdmissionPolicy).
TENANCY_ORGANIZATION_MODEL = "accounts.Organization"
TENANCY_MEMBERSHIP_MODEL = "accounts.Membership"
TENANCY_ADMISSION_POLICY = "accounts.admission"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", default="optional")
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_ALLOW_SIGNUP = env.bool("ACCOUNT_ALLOW_SIGNUP", default=False)
ACCOUNT_LOGOUT_ON_GET = False
# Adding, changing or removing an e-mail address, setting a password, connecting or
# disconnecting an identity provider and changing two-factor authentication all ask for the
# password (or a two-factor or e-mailed code) again unless it was given in the last
# ACCOUNT_REAUTHENTICATION_TIMEOUT seconds: a session alone (a stolen one, or one an IdP opened)
# cannot take over the account. Changing a password asks for the current one.
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_REAUTHENTICATION_TIMEOUT = env.int("ACCOUNT_REAUTHENTICATION_TIMEOUT", default=300)
SOCIALACCOUNT_REAUTHENTICATION_REQUIRED = True
# SAML: one SocialApp per organization (provider "saml", provider_id "saml-<organization id>",
# client_id = the slug),
# written by accounts.sso.saml.configure_saml; accounts.adapters binds each IdP to its organization.
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # never match users by e-mail in allauth: see adapters
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_ONLY = False
# OpenID Connect: one provider per organization (accounts.oidc), its allauth app built in memory
# by the adapter. Issuers must use https; http://127.0.0.1 and http://localhost only when this
# is on (tests, development).
OIDC_ALLOW_INSECURE_LOCALHOST = env.bool("OIDC_ALLOW_INSECURE_LOCALHOST", default=False)
ANONYMOUS_USER_NAME = None  # django-guardian: no anonymous object permissions

# Lock-out after failed sign-ins (allauth's rate limits, kept in the cache below): per client
# address and per account (the "key" is the e-mail address, stripped and lower-cased:
# accounts.throttle.login_key). "N/P/scope": N failures per
# period P (s, m, h, d; "15m" = 15 minutes). A successful password reset lifts the account's.
ACCOUNT_RATE_LIMITS = {
    "login_failed": env("TAGSENSE_LOGIN_FAILED_LIMITS", default="20/15m/ip,5/15m/key"),
}
# allauth counts an IPv6 client by its /64, as accounts.throttle.source_network does for the
# portal's own caps (a test keeps the two equal).
ALLAUTH_RATE_LIMIT_IPV6_PREFIX = 64

# Two-factor authentication: an authenticator app (TOTP) and single-use recovery codes.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = env("MFA_TOTP_ISSUER", default="TagSense")
MFA_ADAPTER = "accounts.adapters.MFAAdapter"

# --- Internationalisation ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files: everything is served from the repo (air-gapped portal) -------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Bearer first: its challenge is the one an anonymous API caller sees (401).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "tagsense.api.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "tagsense.api_schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "tagsense.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "tagsense.api.problem_exception_handler",
    "DEFAULT_METADATA_CLASS": "tagsense.api.Metadata",
    # Bounded in size, depth and content (tagsense/api.py); multipart is Django's, bounded.
    "DEFAULT_PARSER_CLASSES": [
        "tagsense.api.JSONParser",
        "tagsense.api.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "TagSense API",
    "DESCRIPTION": "AWS tag governance: organizations, inventory, policies, findings, audit.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"

# --- Audit chain (docs/security.md, "The audit log") -----------------------------------------
# The key of the chain's HMAC. The database never holds it, so a writer with only database
# access cannot append an event that verifies. Unset here: derived from SECRET_KEY with its
# own purpose string (audit.models.chain_key); production.py requires a dedicated key, so
# rotating SECRET_KEY never breaks the chain.
AUDIT_CHAIN_KEY = env("AUDIT_CHAIN_KEY", default="")
# Where each chain's head is anchored, write-once, outside the database: an S3 bucket created
# with Object Lock. Unset bucket: chains are unanchored (the audit page and /readyz say so).
AUDIT_ANCHOR_BUCKET = env("AUDIT_ANCHOR_BUCKET", default="")
AUDIT_ANCHOR_PREFIX = env("AUDIT_ANCHOR_PREFIX", default="tagsense-audit/")
AUDIT_ANCHOR_REGION = env("AUDIT_ANCHOR_REGION", default="")
AUDIT_ANCHOR_ROLE_ARN = env("AUDIT_ANCHOR_ROLE_ARN", default="")
AUDIT_ANCHOR_RETENTION_DAYS = env.int("AUDIT_ANCHOR_RETENTION_DAYS", default=2557)  # 7 years
AUDIT_ANCHOR_INTERVAL_MINUTES = env.int("AUDIT_ANCHOR_INTERVAL_MINUTES", default=15)
# django-celery-beat's DatabaseScheduler installs these entries at beat start-up.
CELERY_BEAT_SCHEDULE = {
    "audit-anchor-chains": {
        "task": "audit.anchor_all_chains",
        "schedule": AUDIT_ANCHOR_INTERVAL_MINUTES * 60.0,
    },
}

# --- Evidence packages (docs/evidence.md) -----------------------------------------------------
# Where built packages are kept: <EVIDENCE_ROOT>/<organization id>/<export uuid>.zip, written as
# .zip.part and renamed only once complete. Web and worker processes must share this folder.
EVIDENCE_ROOT = Path(env.str("EVIDENCE_ROOT", default=str(VAR_DIR / "evidence")))
# How long a built package stays downloadable; then the beat task evidence.expire_exports
# deletes its file (the export's row and its audit events stay).
EVIDENCE_RETENTION = timedelta(days=env.int("EVIDENCE_RETENTION_DAYS", default=7))
CELERY_BEAT_SCHEDULE["evidence-expire-exports"] = {
    "task": "evidence.expire_exports",
    "schedule": 60 * 60.0,
}

# --- Cache ----------------------------------------------------------------------------------
# Holds the sign-in rate limits and used TOTP codes. The default is per process: with several
# web processes set CACHE_URL to a shared cache (redis://host:6379/1), or each process counts
# failures on its own. docs/security.md.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}

# --- Security (docs/security.md) ------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Production turns these on (production.py); here they stay off so http://127.0.0.1 works.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Sessions end after TAGSENSE_SESSION_IDLE_TIMEOUT seconds without a request and, whatever the
# activity, TAGSENSE_SESSION_ABSOLUTE_TIMEOUT seconds after sign-in (tagsense/security.py).
TAGSENSE_SESSION_IDLE_TIMEOUT = env.int("TAGSENSE_SESSION_IDLE_TIMEOUT", default=30 * 60)
TAGSENSE_SESSION_ABSOLUTE_TIMEOUT = env.int(
    "TAGSENSE_SESSION_ABSOLUTE_TIMEOUT", default=12 * 60 * 60
)
SESSION_COOKIE_AGE = TAGSENSE_SESSION_ABSOLUTE_TIMEOUT
# The Content-Security-Policy of every response (tagsense/security.py). Scripts only from our
# own static files: no inline script, no eval. Inline styles stay allowed for Swagger UI and
# the Django admin. A directive set to an empty list is left out.
TAGSENSE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Report violations without enforcing (to try a stricter policy): TAGSENSE_CSP_REPORT_ONLY=true.
TAGSENSE_CSP_REPORT_ONLY = env.bool("TAGSENSE_CSP_REPORT_ONLY", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # boto's INFO lines (credentials found, endpoint chosen) say nothing an operator needs, nor
    # do WeasyPrint's and fontTools' (each step of each summary.pdf, each font subset).
    "loggers": {
        name: {"level": "WARNING"}
        for name in ("botocore", "boto3", "urllib3", "s3transfer", "weasyprint", "fontTools")
    },
}

# Number of reverse proxies in front of the portal whose X-Forwarded-For entries are trusted.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# TagSense
TAGSENSE_DEMO_ORG_SLUG = "demo"
# Who may create an organization from the portal ("New organization", POST /api/v1/organizations/):
# "anyone" signed in (the default: on a self-hosted first run the first user creates their
# organization without a trip to the Django admin, and a user who creates one owns only that
# one, seeing nothing of the others), or "superusers" (a shared deployment whose operator hands
# out organizations). Anything else refuses to start.
TAGSENSE_ORG_CREATION = env.str("TAGSENSE_ORG_CREATION", default="anyone")
if TAGSENSE_ORG_CREATION not in ("anyone", "superusers"):
    raise ImproperlyConfigured(
        f"TAGSENSE_ORG_CREATION must be 'anyone' or 'superusers', not {TAGSENSE_ORG_CREATION!r}"
    )
# The IAM principal TagSense's own AWS credentials belong to (its instance or pod role), named in
# each account's trust policy and the role template (inventory/role.py); empty: a placeholder.
TAGSENSE_AWS_PRINCIPAL_ARN = env.str("TAGSENSE_AWS_PRINCIPAL_ARN", default="")
# Where the operator published the role's CloudFormation template (the portal serves it; the AWS
# console's quick-create link reads templates from S3 only). Empty: no quick-create link; the
# pages offer the template as a download and an `aws cloudformation create-stack` command.
TAGSENSE_ROLE_TEMPLATE_URL = env.str("TAGSENSE_ROLE_TEMPLATE_URL", default="")
TAGSENSE_SCAN_CONCURRENCY_PER_ACCOUNT = env.int("TAGSENSE_SCAN_CONCURRENCY_PER_ACCOUNT", default=4)
# Seconds one CI check (POST .../policies/ci-check/) may spend matching rules against a plan;
# past them it answers 422 instead of holding a worker (policies.engine.matching.time_limit).
TAGSENSE_CI_CHECK_SECONDS = env.int("TAGSENSE_CI_CHECK_SECONDS", default=30)
# The AWS services whose resource-level daily costs inventory.costs imports from Cost Explorer
# (one GetCostAndUsageWithResources query each). AWS's API reference requires the EC2 compute
# service in that query's filter; list others only if AWS answers for them in your payer account.
TAGSENSE_COST_EXPLORER_SERVICES = env.list(
    "TAGSENSE_COST_EXPLORER_SERVICES", default=["Amazon Elastic Compute Cloud - Compute"]
)
