"""API tokens: minting, checking and revoking bearer credentials, and their scope rules.

The secret is `tsk_` followed by 43 URL-safe characters (32 random bytes, 256 bits). Only its
SHA-256 hash is stored. A slow password hash (PBKDF2, Argon2) protects low-entropy human
passwords against guessing; a 256-bit random secret cannot be guessed, so one fast hash is
enough and lets a request find its token by a unique index in one lookup. The first 12
characters (`tsk_` and 8 more) are kept in clear as the prefix shown in lists and audit events.

Writes here follow services.py: `@transaction.atomic`, the audit event in the same transaction.
Callers have checked the role (views through the tenancy base classes).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import audit
from audit.models import normalise_ip
from tagsense.tenancy.context import Actor, Principal
from tagsense.tenancy.db import all_tenants, tenant_scope

from . import audit_events
from .models import (
    ApiToken,
    Membership,
    Organization,
    ServiceAccount,
    ServiceAccountRole,
    TokenScope,
    User,
)
from .services import ServiceError, _insert
from .throttle import claim, source_network, within_cap

TOKEN_PREFIX = "tsk_"  # noqa: S105 - the public marker of a secret, not a secret
PREFIX_LENGTH = 12  # "tsk_" + 8 characters: enough to tell tokens apart, useless to guess with
_SECRET_BYTES = 32

# Expiry, in days. Personal tokens always expire (at most a year): a person's credential left in
# a forgotten script should not outlive the reason for it. Only a service account's token may be
# created without expiry, by an admin who chooses "never" on purpose.
EXPIRY_CHOICES = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (365, "1 year")]
NEVER = 0
SERVICE_ACCOUNT_EXPIRY_CHOICES = [*EXPIRY_CHOICES, (NEVER, "Never")]
DEFAULT_EXPIRY_DAYS = 90
MAX_EXPIRY_DAYS = 365

# Use is audited at most once per token per interval, and last_used_at is written as often.
USE_INTERVAL = timedelta(minutes=1)

# Unsafe requests a `ci` token may make, by URL name, besides reading: the CI check of a
# Terraform plan or CloudFormation template (it changes nothing; docs/ci.md).
CI_WRITE_ROUTES: frozenset[str] = frozenset({"api-ci-check"})

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def required_scope(method: str, url_name: str | None) -> str | None:
    """The scope a request needs beyond `read`: None for reads."""
    if method in SAFE_METHODS:
        return None
    return TokenScope.CI if url_name in CI_WRITE_ROUTES else TokenScope.WRITE


def missing_scope(token: ApiToken, method: str, url_name: str | None) -> str | None:
    """The scope the token lacks for this request, or None when it may make it."""
    needed = required_scope(method, url_name)
    if needed is None or token.scope == TokenScope.WRITE:
        return None
    if needed == TokenScope.CI and token.scope == TokenScope.CI:
        return None
    return str(needed)


def token_actor(token: ApiToken) -> Actor:
    """Who acts when a token is used: the member (personal) or the service account."""
    if token.user_id is not None:
        owner = token.user.get_username()
        principal = Principal(Principal.USER, str(token.user_id))
    else:
        owner = f"service account {token.service_account.name}"
        principal = Principal(Principal.SERVICE_ACCOUNT, str(token.service_account_id))
    return Actor(Actor.TOKEN, str(token.pk), f"{owner} via token {token.prefix}", principal.key)


def _expiry(days: int, *, allow_never: bool) -> datetime | None:
    if days == NEVER:
        if not allow_never:
            raise ServiceError("a personal token must expire (at most in a year)")
        return None
    if not 1 <= days <= MAX_EXPIRY_DAYS:
        raise ServiceError(f"a token expires in 1 to {MAX_EXPIRY_DAYS} days")
    return timezone.now() + timedelta(days=days)


def _mint(organization: Organization, *, name: str, scope: str, expires_at, by: User, **owner):
    if scope not in TokenScope.values:
        raise ServiceError(f"unknown scope {scope!r}")
    name = name.strip()
    if not name:
        raise ServiceError("the token needs a name")
    secret = new_secret()
    token = _insert(
        lambda: ApiToken.objects.create(
            organization=organization,
            name=name,
            prefix=secret[:PREFIX_LENGTH],
            token_hash=hash_secret(secret),
            scope=scope,
            expires_at=expires_at,
            created_by=by,
            **owner,
        ),
        "could not create the token; try again",
    )
    data: dict[str, Any] = {
        "prefix": token.prefix,
        "name": name,
        "scope": scope,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }
    if token.user_id:
        data["user"] = token.user.email
    else:
        data["service_account"] = token.service_account.name
    audit.record(audit_events.API_TOKEN_CREATE, target=token, data=data)
    return token, secret


@transaction.atomic
def create_personal_token(
    membership: Membership, *, name: str, scope: str, expires_in_days: int = DEFAULT_EXPIRY_DAYS
) -> tuple[ApiToken, str]:
    """A token acting as `membership`'s user. Returns the token and its secret, which is never
    available again. Assumes the caller is that member (an accepted membership)."""
    if membership.is_pending:
        raise ServiceError("accept the invitation first")
    expires_at = _expiry(expires_in_days, allow_never=False)
    return _mint(
        membership.organization,
        name=name,
        scope=scope,
        expires_at=expires_at,
        by=membership.user,
        user=membership.user,
    )


@transaction.atomic
def create_service_account(
    organization: Organization, *, name: str, role: str, description: str = "", by: User
) -> ServiceAccount:
    """Assumes the caller may `manage` the organization."""
    if role not in ServiceAccountRole.values:
        raise ServiceError(f"a service account's role is one of {', '.join(ServiceAccountRole)}")
    name = name.strip()
    if not name:
        raise ServiceError("the service account needs a name")
    exists = f"a service account named {name!r} exists already"
    if ServiceAccount.objects.for_org(organization).filter(name=name).exists():
        raise ServiceError(exists)
    account = _insert(
        lambda: ServiceAccount.objects.create(
            organization=organization, name=name, role=role, description=description, created_by=by
        ),
        exists,
    )
    audit.record(
        audit_events.SERVICE_ACCOUNT_CREATE, target=account, data={"name": name, "role": role}
    )
    return account


@transaction.atomic
def create_service_account_token(
    account: ServiceAccount,
    *,
    name: str,
    scope: str,
    expires_in_days: int = DEFAULT_EXPIRY_DAYS,
    by: User,
) -> tuple[ApiToken, str]:
    """Assumes the caller may `manage` the account's organization."""
    expires_at = _expiry(expires_in_days, allow_never=True)
    return _mint(
        account.organization,
        name=name,
        scope=scope,
        expires_at=expires_at,
        by=by,
        service_account=account,
    )


@transaction.atomic
def revoke_token(token: ApiToken, *, by: User) -> ApiToken:
    """Assumes the caller owns the token or manages its service account."""
    locked = ApiToken.objects.select_for_update().get(pk=token.pk)
    if locked.revoked_at is not None:
        raise ServiceError(f"the token {token.prefix}… was revoked already")
    locked.revoked_at = timezone.now()
    locked.revoked_by = by
    locked.save(update_fields=["revoked_at", "revoked_by"])
    audit.record(
        audit_events.API_TOKEN_REVOKE,
        target=locked,
        data={"prefix": locked.prefix, "name": locked.name},
    )
    return locked


# --- authenticating a request -----------------------------------------------------------------


class InvalidToken(Exception):
    """The presented token does not authenticate; the message is fit for the 401 body.
    `token` is the stored token when the secret matched one (revoked, expired, owner gone)."""

    def __init__(self, message: str, token: ApiToken | None = None):
        super().__init__(message)
        self.token = token


class ServiceAccountPrincipal:
    """`request.user` for a service account's token: authenticated, but no User row."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, account: ServiceAccount):
        self.service_account = account

    def get_username(self) -> str:
        return f"service-account:{self.service_account.name}"

    def __str__(self) -> str:
        return self.get_username()


def authenticate_secret(secret: str) -> tuple[Any, ApiToken]:
    """The principal and token a bearer secret stands for, or InvalidToken.

    The token is found by its hash under all_tenants(): before this, nothing says which
    organization the caller belongs to. The lookup is by a unique 256-bit hash, so it can only
    return the presented token's own row; everything after runs in that organization's scope.
    The token carries `membership` (the role it acts with) once this returns.
    """
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
        raise InvalidToken("Invalid token.")
    now = timezone.now()
    with all_tenants():
        token = (
            ApiToken.objects.select_related("organization", "user", "service_account")
            .filter(token_hash=hash_secret(secret))
            .first()
        )
        if token is None:
            raise InvalidToken("Invalid token.")
        if token.revoked_at is not None:
            raise InvalidToken("This token was revoked.", token)
        if token.is_expired(now):
            raise InvalidToken("This token has expired.", token)
        if token.user_id is not None:
            # The member's current role, never more. A membership that ended (or ended and was
            # granted again later) no longer carries the token: it must predate the token.
            membership = (
                Membership.objects.for_org(token.organization)
                .active()
                .filter(user_id=token.user_id, created_at__lte=token.created_at)
                .first()
            )
            if membership is None or not token.user.is_active:
                raise InvalidToken(
                    "The token's owner is no longer a member of the organization.", token
                )
            membership.organization = token.organization
            membership.user = token.user
            principal: Any = token.user
        else:
            account = token.service_account
            # Not saved: the role a service account acts with, shaped like a membership so the
            # tenancy layer's restrict() treats it like any member.
            membership = Membership(organization=token.organization, role=account.role)
            principal = ServiceAccountPrincipal(account)
    token.membership = membership  # type: ignore[attr-defined]
    return principal, token


def note_use(token: ApiToken, *, ip: str | None, method: str, path: str) -> bool:
    """Record that the token was used: last_used_at/last_used_ip and an `api_token.use` event,
    both at most once per USE_INTERVAL per token.

    One conditional UPDATE claims the interval: only a request that finds last_used_at older
    than the interval (or empty) updates the row. On PostgreSQL a concurrent request waits for
    that row lock, re-reads the new last_used_at and updates nothing, so exactly one request per
    token per minute writes and audits, across every web process, without a cache. The event
    goes in the same transaction as the update. Returns whether this request was the one.
    """
    now = timezone.now()
    with tenant_scope(token.organization, actor=token_actor(token)):
        claimed = (
            ApiToken.objects.for_org(token.organization)
            .filter(pk=token.pk)
            .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - USE_INTERVAL))
            .update(last_used_at=now, last_used_ip=normalise_ip(ip))
        )
        if claimed:
            audit.record(
                audit_events.API_TOKEN_USE,
                target=token,
                data={"prefix": token.prefix, "method": method, "path": path[:300]},
            )
    if claimed:
        token.last_used_at, token.last_used_ip = now, normalise_ip(ip)
    return bool(claimed)


def note_rejection(
    error: InvalidToken, *, ip: str | None, method: str, path: str, now: datetime | None = None
) -> bool:
    """Audit a refused bearer token as `api_token.reject`, at most once per USE_INTERVAL per
    (token or, for an unknown secret, client address) and reason, so a flood of bad tokens
    cannot flood the audit log. A token that matched a stored one (revoked, expired, owner gone)
    is recorded in its organization's log, by prefix; an unknown secret in the global log, with
    the address only (never any part of what was presented). The interval is claimed with
    accounts.throttle.claim (an atomic add in the shared cache, CACHE_URL).
    Unknown secrets are counted by source (accounts.throttle.source_network: IPv6 by its /64)
    and capped at UNKNOWN_REJECTIONS_PER_INTERVAL events per interval in all.
    Returns whether an event was written."""

    token = error.token
    who = f"token:{token.pk}" if token is not None else f"net:{source_network(ip)}"
    reason = str(error)
    if not claim("token-reject", who, reason):
        return False
    if token is None and not within_cap("token-reject-unknown", UNKNOWN_REJECTIONS_PER_INTERVAL):
        # Unknown secrets from many addresses: a cap on the global log per interval.
        return False
    data = {"reason": reason, "method": method, "path": path[:300]}
    actor = Actor(Actor.ANONYMOUS, "", "bearer token")
    if token is None:
        audit.record(audit_events.API_TOKEN_REJECT, data=data, organization=None, actor=actor)
        return True
    with tenant_scope(token.organization, actor=actor):
        audit.record(
            audit_events.API_TOKEN_REJECT, target=token, data={**data, "prefix": token.prefix}
        )
    return True


UNKNOWN_REJECTIONS_PER_INTERVAL = 60


def revoke_member_tokens(membership: Membership, *, by: Any = None) -> int:
    """A member who leaves the organization takes no working token along: their personal
    tokens there are revoked (each audited). Inside the organization's tenant scope."""
    now = timezone.now()
    tokens = list(
        ApiToken.objects.for_org(membership.organization).filter(
            user_id=membership.user_id, revoked_at__isnull=True
        )
    )
    for token in tokens:
        token.revoked_at = now
        token.revoked_by = by
        token.save(update_fields=["revoked_at", "revoked_by"])
        audit.record(
            audit_events.API_TOKEN_REVOKE,
            target=token,
            data={"prefix": token.prefix, "reason": "the member left the organization"},
        )
    return len(tokens)
