"""What policies does when inventory announces (inventory.signals): connected by importing this
module in PoliciesConfig.ready(). Each receiver of inventory's signals runs after the announcing
transaction has committed and opens its own tenant scope; the one of an account's deletion runs
inside the deleting transaction (its findings' ledger rows are written with the deletion)."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import pre_delete
from django.dispatch import receiver

from inventory.models import AwsAccount
from inventory.signals import accounts_changed, scan_finished
from tagsense.tenancy import context
from tagsense.tenancy.db import tenant_scope

from . import evaluation, tasks
from .aws import imported
from .models import FindingEvent, Rule


@receiver(scan_finished, dispatch_uid="policies.evaluate_after_scan")
def evaluate_after_scan(sender: Any, *, scan: Any, actor: context.Actor, **kwargs: Any) -> None:
    """Queue the evaluation of what the scan touched (policies.tasks.evaluate_after_scan), as
    the scan's actor. Nothing when the organization has no active rule (nor would the
    evaluation do anything: no task is queued for nothing)."""
    organization = scan.organization
    with tenant_scope(organization, actor=actor):
        if not Rule.objects.for_org(organization).filter(active=True).exists():
            return
    with context.use(organization=organization, actor=actor):
        tasks.evaluate_after_scan.delay(scan.pk)


@receiver(accounts_changed, dispatch_uid="policies.regenerate_tag_policy_rules")
def regenerate_tag_policy_rules(
    sender: Any, *, organization: Any, actor: context.Actor, **kwargs: Any
) -> None:
    """Which AWS tag policies apply depends on the registered accounts and their OU paths:
    bring the rules generated from them up to date (nothing when the organization has none)."""
    with tenant_scope(organization, actor=actor):
        if imported.has_tag_policies(organization):
            imported.sync_generated_rules(organization)


@receiver(pre_delete, sender=AwsAccount, dispatch_uid="policies.retire_account_findings")
def retire_account_findings(sender: Any, *, instance: AwsAccount, **kwargs: Any) -> None:
    """An account deleted takes its resources and their findings with it (a cascade, in the
    deleting transaction and its tenant scope): its unresolved findings leave the ledger as
    resource_deleted first, so the history does not keep them open for ever."""
    evaluation.retire_findings(
        instance.organization,
        "f.account_id = %s",
        [instance.pk],
        event=FindingEvent.RESOURCE_DELETED,
    )
