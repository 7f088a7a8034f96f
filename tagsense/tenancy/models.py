"""The abstract tenant model and its queryset: every tenant-owned row names its organization."""

from __future__ import annotations

from typing import Any, Protocol, Self, TypeVar

from django.conf import settings
from django.db import models

from .context import current


class Organization(Protocol):
    """What the tenancy layer asks of an organization (settings.TENANCY_ORGANIZATION_MODEL,
    known here only through apps.get_model): its primary key and the slug its URLs name."""

    @property
    def pk(self) -> Any: ...

    @property
    def slug(self) -> str: ...


class Member(Protocol):
    """What the tenancy layer asks of a membership (settings.TENANCY_MEMBERSHIP_MODEL, or an
    unsaved one standing for a service account's role): its organization and user, and whether
    its role allows an action ("view", "change", "manage", "audit", "own")."""

    @property
    def organization(self) -> Organization: ...

    @property
    def user(self) -> Any: ...

    def allows(self, action: str) -> bool: ...


_M = TypeVar("_M", bound=models.Model)


class TenantQuerySet(models.QuerySet[_M]):
    """Scopes by organization and by what a member may do; business filters live in subclasses."""

    def for_org(self, organization: Organization) -> Self:
        return self.filter(organization=organization)

    def restrict(self, membership: Member | None, action: str = "view") -> Self:
        """Rows of the membership's organization that its role may `action`; none otherwise."""
        if membership is None or not membership.allows(action):
            return self.none()
        return self.for_org(membership.organization)


# A base class taken from a call must be a module-level name for the django-stubs plugin to
# give the manager the queryset's methods (a call in the class statement is an untyped base).
_TenantManagerBase = models.Manager.from_queryset(TenantQuerySet)


class TenantManager(_TenantManagerBase[_M]):
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
