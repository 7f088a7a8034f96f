"""The abstract tenant model and its queryset: every tenant-owned row names its organization."""

from __future__ import annotations

from typing import Any, Protocol

from django.conf import settings
from django.db import models

from .context import current


class Member(Protocol):
    """What the tenancy layer asks of a membership (settings.TENANCY_MEMBERSHIP_MODEL, or an
    unsaved one standing for a service account's role): its organization and user, and whether
    its role allows an action ("view", "change", "manage", "audit", "own")."""

    organization: Any
    user: Any

    def allows(self, action: str) -> bool: ...


class TenantQuerySet(models.QuerySet):
    """Scopes by organization and by what a member may do; business filters live in subclasses."""

    def for_org(self, organization: models.Model) -> TenantQuerySet:
        return self.filter(organization=organization)

    def restrict(self, membership: Member | None, action: str = "view") -> TenantQuerySet:
        """Rows of the membership's organization that its role may `action`; none otherwise."""
        if membership is None or not membership.allows(action):
            return self.none()
        return self.for_org(membership.organization)


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):  # type: ignore[misc]
    pass


class TenantModel(models.Model):
    """Base of every tenant-owned model. Its table gets the row-level-security policy (db.py).

    Class attributes read by the tenancy layer:
    - rls_user_column: a column whose rows are also visible to that user (memberships).
    - append_only: the app role may not UPDATE, DELETE or TRUNCATE (the audit log).
    """

    organization = models.ForeignKey(
        settings.TENANCY_ORGANIZATION_MODEL, on_delete=models.CASCADE, related_name="+"
    )

    objects = TenantManager()

    rls_user_column: str | None = None
    append_only: bool = False

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.organization_id is None:
            organization = current().organization
            if organization is not None:
                self.organization = organization
        super().save(*args, **kwargs)
