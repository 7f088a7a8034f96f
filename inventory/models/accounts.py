"""AWS accounts an organization scans: assumed through STS with an external id we generate."""

from __future__ import annotations

import re
import secrets

from django.core.exceptions import ValidationError
from django.db import models

from tagsense import clock
from tagsense.tenancy.models import TenantModel

from .scoping import AccountScopedQuerySet

# ASCII only and anchored at the very end: `\d` and `\w` also match other scripts' digits and
# letters, and `$` matches before a trailing newline. The API schema publishes the same patterns.
ACCOUNT_ID = re.compile(r"\A[0-9]{12}\Z")
ROLE_ARN = re.compile(r"\Aarn:aws(?:-[a-z]+)*:iam::([0-9]{12}):role/[A-Za-z0-9_+=,.@/-]{1,512}\Z")


def new_external_id() -> str:
    return "tagsense-" + secrets.token_urlsafe(24)


def validate_account_id(value: str) -> None:
    if not ACCOUNT_ID.match(value or ""):
        raise ValidationError("an AWS account id is 12 digits")


def validate_role_arn(value: str) -> None:
    if value and not ROLE_ARN.match(value):
        raise ValidationError(
            "an IAM role ARN looks like arn:aws:iam::123456789012:role/TagSenseReadOnly"
        )


class AwsAccountQuerySet(AccountScopedQuerySet):
    account_lookup = "pk"

    def enabled(self):
        return self.filter(enabled=True)


class AwsAccount(TenantModel):
    account_id = models.CharField(max_length=12, validators=[validate_account_id])
    name = models.CharField(max_length=200, blank=True)
    role_arn = models.CharField(
        max_length=600,
        blank=True,
        validators=[validate_role_arn],
        help_text="Role TagSense assumes; empty means TagSense's own credentials.",
    )
    external_id = models.CharField(max_length=64, default=new_external_id, editable=False)
    regions = models.JSONField(
        default=list, blank=True, help_text="Regions to scan; empty means every enabled region."
    )
    enabled = models.BooleanField(default=True)
    is_management = models.BooleanField(
        default=False, help_text="The AWS Organizations management account (discovery source)."
    )
    ou_path = models.CharField(max_length=1000, blank=True)
    discovered_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="discovered"
    )
    # tagsense.clock: the demo registers its accounts at the start of its replayed history.
    created_at = models.DateTimeField(default=clock.now, editable=False)
    last_scanned_at = models.DateTimeField(null=True, blank=True)
    # A lease, not a lock held by a process: a scan that dies lets it expire.
    scan_lease_until = models.DateTimeField(null=True, blank=True)
    scan_lease_holder = models.ForeignKey(
        "inventory.ScanRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = AwsAccountQuerySet.as_manager()

    class Meta:
        ordering = ["name", "account_id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "account_id"], name="uniq_aws_account")
        ]
        # Granted to a team's group (AccountTeamGrant): the team's editors and viewers see it.
        permissions = [("hold_awsaccount", "A team holds this AWS account")]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_id})" if self.name else self.account_id
