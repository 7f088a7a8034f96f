"""Team scoping of the inventory: which AWS accounts a team holds, and the queryset base that
narrows every inventory table to the accounts a member may see.

A team holds an account through a django-guardian group object permission
(`inventory.hold_awsaccount`) granted to the team's Django group (accounts/team_groups.py).
The grant table uses guardian's direct foreign key (not the generic `object_pk` text column), so
"accounts my teams hold" is an indexed join in SQL, and it is a tenant table: it carries the
organization, and row-level security confines it like every other tenant row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models
from guardian.managers import GroupObjectPermissionManager
from guardian.models import GroupObjectPermissionBase

from accounts.roles import sees_all_accounts
from tagsense.tenancy.models import TenantModel, TenantQuerySet

if TYPE_CHECKING:
    from accounts.models import Membership

HOLD_PERMISSION = "hold_awsaccount"


class AccountScopedQuerySet(TenantQuerySet):
    """restrict() also narrows to the accounts the membership may see (team scoping).

    Subclasses name the path from their rows to the account in `account_lookup`, or override
    in_accounts() when there is no single path (a scan run spans accounts)."""

    account_lookup = "account"

    def restrict(self, membership: Membership | None, action: str = "view") -> TenantQuerySet:

        queryset = super().restrict(membership, action)
        if membership is None or sees_all_accounts(membership.role):
            return queryset
        from inventory.access import visible_accounts  # noqa: PLC0415 - inventory.access imports these models

        return queryset.in_accounts(visible_accounts(membership))  # type: ignore[attr-defined]

    def in_accounts(self, accounts: models.QuerySet) -> AccountScopedQuerySet:
        """Rows under the given accounts (a queryset: the filter stays a subquery in SQL)."""
        return self.filter(**{f"{self.account_lookup}__in": accounts.values("pk")})


class AccountTeamGrant(TenantModel, GroupObjectPermissionBase):
    """A team (its Django group) holds an AWS account. Written only by inventory.services,
    which checks that the team and the account belong to the same organization."""

    content_object = models.ForeignKey(
        "inventory.AwsAccount", on_delete=models.CASCADE, related_name="team_grants"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = GroupObjectPermissionManager.from_queryset(TenantQuerySet)()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "permission", "content_object"], name="uniq_account_team_grant"
            )
        ]

    def __str__(self) -> str:
        return f"{self.group} holds {self.content_object_id}"
