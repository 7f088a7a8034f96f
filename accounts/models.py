"""Users, organizations (the tenants), memberships with a role, teams."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from tagsense.tenancy.models import TenantModel, TenantQuerySet

from .roles import Role, role_allows


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("an e-mail address is required")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person. Identified by e-mail; may belong to several organizations."""

    username = None  # type: ignore[assignment]
    email = models.EmailField("e-mail address", unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()  # type: ignore[misc]

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email


# Identity-provider ids are "saml-<organization id>" and "oidc-<organization id>" (accounts.sso,
# accounts.oidc), and allauth names its own providers "saml" and "openid_connect". A slug that
# begins like one of them could be mistaken for another organization's provider wherever a slug
# and a provider id meet (allauth's URLs, an operator reading a SocialAccount row): refused.
RESERVED_SLUG = re.compile(r"^(saml|oidc|openid|openid_connect)([-_.]|$)", re.IGNORECASE)


def validate_organization_slug(slug: str) -> None:
    """Refuses the slugs reserved for identity-provider ids (RESERVED_SLUG)."""
    if RESERVED_SLUG.match(slug or ""):
        raise ValidationError(
            "An organization's short name may not begin with 'saml', 'oidc' or 'openid' "
            "followed by '-', '_' or '.': those name identity providers.",
            code="reserved_slug",
        )


class Organization(models.Model):
    """A tenant. Not itself a tenant row: it is what the tenant rows point at."""

    slug = models.SlugField(max_length=64, unique=True, validators=[validate_organization_slug])
    name = models.CharField(max_length=200)
    settings = models.JSONField(default=dict, blank=True)
    # Members without two-factor authentication are sent to set it up before they reach the
    # organization's pages or its API with a session (accounts/mfa.py).
    require_mfa = models.BooleanField("require two-factor authentication", default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Members sign in through the organization's SAML IdP only; owners marked break-glass on
    # their membership keep their password (docs/sso.md).
    sso_required = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        """Every writer (services, the admin, a script's objects.create) gets the slug rule, not
        only those that call full_clean(). A save that leaves the slug as stored is not refused
        (an organization created before the rule keeps working until it is renamed)."""
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "slug" in update_fields:
            stored = None
            if not self._state.adding and self.pk is not None:
                stored = (
                    type(self).objects.filter(pk=self.pk).values_list("slug", flat=True).first()
                )
            if stored != self.slug:
                validate_organization_slug(self.slug)
        super().save(*args, **kwargs)


class MembershipQuerySet(TenantQuerySet):
    def active(self):
        return self.filter(accepted_at__isnull=False)

    def pending(self):
        return self.filter(accepted_at__isnull=True)


class Membership(TenantModel):
    """A user's place in an organization, with one role."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)
    # An admin's invitation is pending until the user accepts it: until then the user has no
    # access and the organization sees none of their activity.
    accepted_at = models.DateTimeField(null=True, blank=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Owners only: may still sign in with a password when the organization requires SSO.
    break_glass = models.BooleanField(default=False)

    objects = MembershipQuerySet.as_manager()

    # A user may read (never write) their own memberships in every organization.
    rls_user_column = "user_id"

    class Meta:
        ordering = ["user__email"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="uniq_membership"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization_id} as {self.role}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None

    def allows(self, action: str) -> bool:
        """Whether this role may `action` (accounts/roles.py): what the tenancy layer asks."""
        return role_allows(self.role, action)


class TeamQuerySet(TenantQuerySet):
    def with_member_count(self):
        return self.annotate(member_count=models.Count("memberships"))


class Team(TenantModel):
    """A group of members inside an organization; later granted AWS accounts."""

    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="uniq_team_slug"),
        ]

    def __str__(self) -> str:
        return self.name


class TeamMembership(TenantModel):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["user__email"]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="uniq_team_member"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class ServiceAccountRole(models.TextChoices):
    """A service account's role: any but owner (an owner is a person who can be held to account)."""

    ADMIN = Role.ADMIN.value, Role.ADMIN.label
    EDITOR = Role.EDITOR.value, Role.EDITOR.label
    AUDITOR = Role.AUDITOR.value, Role.AUDITOR.label
    VIEWER = Role.VIEWER.value, Role.VIEWER.label


class ServiceAccount(TenantModel):
    """A named non-human principal of one organization (a CI pipeline, an integration).

    It acts only through its API tokens, with its own role; admins and owners create it.
    """

    name = models.CharField(max_length=100)
    description = models.CharField(max_length=255, blank=True)
    role = models.CharField(
        max_length=16, choices=ServiceAccountRole.choices, default=ServiceAccountRole.VIEWER
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"], name="uniq_service_account_name"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TokenScope(models.TextChoices):
    READ = "read", "Read (GET only)"
    WRITE = "write", "Write (read and change)"
    CI = "ci", "CI checks (read and the CI-check endpoints)"


class ApiToken(TenantModel):
    """A bearer credential for the API, valid for one organization only.

    Personal (`user` set): acts as that member with their current role, and stops working when
    the membership ends. Service account (`service_account` set): acts with the account's role.
    Only a SHA-256 hash of the secret is stored, and a short prefix to recognise it by; the
    secret itself is shown once, at creation (accounts/tokens.py).
    """

    is_api_token = True  # read by the API base class (tagsense/tenancy/api.py)

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.READ)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    service_account = models.ForeignKey(
        ServiceAccount, null=True, blank=True, on_delete=models.CASCADE, related_name="tokens"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # null: never (service accounts)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, service_account__isnull=True)
                    | models.Q(user__isnull=True, service_account__isnull=False)
                ),
                name="api_token_one_principal",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def display_prefix(self) -> str:
        return f"{self.prefix}…"

    @property
    def is_personal(self) -> bool:
        return self.user_id is not None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_expired(self, now=None) -> bool:

        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    @property
    def status(self) -> str:
        if self.is_revoked:
            return "revoked"
        return "expired" if self.is_expired() else "active"


class SSOGroupMapping(TenantModel):
    """One IdP group mapped to a team or to a role, applied at each SAML sign-in.

    Exactly one of `team` and `role` is set. A team named by any mapping is managed by SSO
    (members join and leave with their groups); roles are managed once any role mapping exists.
    """

    group = models.CharField(max_length=255)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="sso_mappings"
    )
    role = models.CharField(max_length=16, choices=Role.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(team__isnull=False) & models.Q(role=""))
                | (models.Q(team__isnull=True) & ~models.Q(role="")),
                name="sso_mapping_team_xor_role",
            ),
            models.UniqueConstraint(
                fields=["organization", "group", "team"],
                condition=models.Q(team__isnull=False),
                name="uniq_sso_group_team",
            ),
            models.UniqueConstraint(
                fields=["organization", "group"],
                condition=models.Q(team__isnull=True),
                name="uniq_sso_group_role",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group} -> {self.team or self.role}"


class SAMLAssertion(TenantModel):
    """An assertion already consumed, kept until its NotOnOrAfter: a second use is a replay."""

    assertion_id = models.CharField(max_length=255)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "assertion_id"], name="uniq_saml_assertion"
            ),
        ]

    def __str__(self) -> str:
        return self.assertion_id


class OIDCConfiguration(TenantModel):
    """The organization's OpenID Connect provider (accounts/oidc.py; one per organization).

    The client secret is kept encrypted (tagsense.crypto, purpose oidc.SECRET_PURPOSE) and never
    leaves accounts.oidc in the clear except into the in-memory allauth app. `discovery` holds
    the endpoints read from the issuer's discovery document when an admin saved it.
    """

    issuer = models.CharField(max_length=1024)
    client_id = models.CharField(max_length=255)
    client_secret_encrypted = models.TextField()
    groups_claim = models.CharField(max_length=255, blank=True, default="groups")
    scopes = models.CharField(max_length=500, default="openid email profile")
    discovery = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="uniq_oidc_configuration"),
        ]

    def __str__(self) -> str:
        return self.issuer
