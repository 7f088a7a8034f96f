"""AWS accounts and scans: the writes, each audited in its transaction. Callers are inside
the organization's tenant scope and have checked the actor's role."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import CharField, Value
from django.db.models.functions import Concat
from guardian.shortcuts import remove_perm

import audit
from accounts.models import Team
from accounts.team_groups import GROUP_PREFIX, team_group, team_group_name
from tagsense.tenancy.context import Actor

from . import audit_events, aws, runner, signals
from .models import AwsAccount, Edge, Resource, ScanRun
from .models.scoping import HOLD_PERMISSION, AccountTeamGrant
from .tasks import run_scan

ACCOUNT_FIELDS = ("account_id", "name", "role_arn", "regions", "enabled")


class ServiceError(ValueError):
    pass


def _validated(account: AwsAccount) -> AwsAccount:
    try:
        account.full_clean(exclude=["organization", "discovered_from"])
    except ValidationError as exc:
        raise ServiceError(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        ) from exc
    return account


@transaction.atomic
def register_account(organization, **fields: Any) -> AwsAccount:
    account = _validated(AwsAccount(organization=organization, **fields))
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError as exc:
        raise ServiceError(f"account {account.account_id} is registered already") from exc
    audit.record(
        audit_events.ACCOUNT_CREATE,
        target=account,
        data={k: getattr(account, k) for k in ACCOUNT_FIELDS},
    )
    signals.announce_accounts_changed(organization, [account.account_id])
    return account


@transaction.atomic
def update_account(account: AwsAccount, **fields: Any) -> AwsAccount:
    changes = {}
    for key, value in fields.items():
        if key not in ACCOUNT_FIELDS or key == "account_id":
            raise ServiceError(f"{key} cannot be changed")
        if getattr(account, key) != value:
            changes[key] = [getattr(account, key), value]
            setattr(account, key, value)
    _validated(account).save()
    audit.record(audit_events.ACCOUNT_UPDATE, target=account, data=changes)
    return account


@transaction.atomic
def delete_account(account: AwsAccount) -> None:
    """The account and its inventory: resources with their history, and the edges from them
    (edges are keyed by ARN, so no cascade reaches them)."""
    audit.record(
        audit_events.ACCOUNT_DELETE, target=account, data={"account_id": account.account_id}
    )
    Edge.objects.filter(
        organization_id=account.organization_id,
        source_arn__in=Resource.objects.filter(account=account).values("arn"),
    ).delete()
    organization = account.organization
    account.delete()
    signals.announce_accounts_changed(organization, [account.account_id])


def test_account_connection(account: AwsAccount) -> aws.ConnectionResult:
    """Assume the account's role and report the identity or AWS's error (audited)."""
    result = aws.test_connection(account.role_arn, account.external_id)
    audit.record(
        audit_events.ACCOUNT_TEST,
        target=account,
        data={"ok": result.ok, "arn": result.arn, "error_code": result.error_code},
    )
    return result


def start_scan(
    organization, *, actor: Actor, scope: runner.Scope | None = None, trigger: str = "manual"
) -> ScanRun:
    """Plan a scan and hand it to the workers (Celery) after the plan commits."""

    scan = runner.plan_scan(
        organization, scope=scope or runner.Scope(), actor=actor, trigger=trigger
    )
    run_scan.delay_on_commit(scan.pk)
    return scan


def _check_same_organization(account: AwsAccount, team) -> None:
    # Guardian's groups carry no organization: refuse a grant across tenants here, whatever
    # the caller resolved.
    if team.organization_id != account.organization_id:
        raise ServiceError("a team can only hold accounts of its own organization")


@transaction.atomic
def grant_account(account: AwsAccount, team) -> bool:
    """Let `team` hold `account`: its editors and viewers see the account and everything under
    it. Returns False when the team held it already (nothing recorded)."""

    _check_same_organization(account, team)
    group = team_group(team)
    permission = Permission.objects.get(
        content_type__app_label="inventory", codename=HOLD_PERMISSION
    )
    # guardian's assign_perm would take the organization from the context; name it instead.
    _, created = AccountTeamGrant.objects.get_or_create(
        organization=account.organization,
        group=group,
        permission=permission,
        content_object=account,
    )
    if not created:
        return False
    audit.record(
        audit_events.ACCOUNT_TEAM_GRANT,
        target=account,
        data={"account_id": account.account_id, "team": team.slug, "team_name": team.name},
    )
    return True


@transaction.atomic
def revoke_account(account: AwsAccount, team) -> bool:
    """The team no longer holds the account. Returns False when it did not (nothing recorded)."""

    _check_same_organization(account, team)
    deleted = remove_perm(f"inventory.{HOLD_PERMISSION}", team_group(team), account)
    if not deleted:
        return False
    audit.record(
        audit_events.ACCOUNT_TEAM_REVOKE,
        target=account,
        data={"account_id": account.account_id, "team": team.slug, "team_name": team.name},
    )
    return True


@transaction.atomic
def set_account_teams(account: AwsAccount, teams) -> tuple[list, list]:
    """Make exactly `teams` hold the account; one audit event per team granted or revoked.
    Returns (granted, revoked)."""

    wanted = {t.pk: t for t in teams}
    held = {
        t.pk: t
        for t in Team.objects.for_org(account.organization).filter(
            pk__in=teams_holding(account).values("pk")
        )
    }
    granted = [t for pk, t in wanted.items() if pk not in held and grant_account(account, t)]
    revoked = [t for pk, t in held.items() if pk not in wanted and revoke_account(account, t)]
    return granted, revoked


def teams_holding(account: AwsAccount):
    """The teams whose group holds the account."""

    groups = account.team_grants.filter(permission__codename=HOLD_PERMISSION).values("group__name")
    return (
        Team.objects.for_org(account.organization)
        .alias(group_name=Concat(Value(GROUP_PREFIX), "pk", output_field=CharField()))
        .filter(group_name__in=groups)
    )


def teams_by_account(organization) -> dict[int, tuple[str, list[str]]]:
    """Every account of the organization: {pk: (12-digit id, sorted slugs of the teams holding
    it)}, in two queries (teams_holding() for all accounts at once)."""

    slug_of = {
        team_group_name(pk): slug
        for pk, slug in Team.objects.for_org(organization).values_list("pk", "slug")
    }
    held: dict[int, set[str]] = {}
    grants = AccountTeamGrant.objects.for_org(organization).filter(
        permission__codename=HOLD_PERMISSION
    )
    for account, group in grants.values_list("content_object_id", "group__name"):
        if group in slug_of:
            held.setdefault(account, set()).add(slug_of[group])
    return {
        pk: (aws_id, sorted(held.get(pk, ())))
        for pk, aws_id in AwsAccount.objects.for_org(organization).values_list("pk", "account_id")
    }
