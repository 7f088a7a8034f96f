"""What inventory announces, for the apps above it to act on: inventory never imports them,
they listen (policies.receivers, connected in PoliciesConfig.ready()).

Each signal is sent once the transaction that made the change has committed, never for a change
that rolled back, and with send_robust: a receiver that raises is logged (logger
"django.dispatch") and neither undoes the change nor keeps the other receivers from running.
Receivers run after the caller's tenant scope has closed: they open their own
(tagsense.tenancy.db.tenant_scope) with the organization and actor they are given.

scan_finished(sender=ScanRun, scan, actor)
    A scan run was closed (succeeded, partial or failed; runner.finish_scan) and everything it
    stored is committed. `scan`: the ScanRun; `actor`: who closed it
    (tagsense.tenancy.context.Actor: the user who started it, a schedule, the reaper).

accounts_changed(sender=AwsAccount, organization, actor, account_ids)
    AWS accounts were registered, deleted, or moved to another OU path (discovery): which
    accounts exist and where they sit in AWS Organizations changed. `organization`: theirs;
    `actor`: who changed them; `account_ids`: the 12-digit ids of the accounts concerned.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.dispatch import Signal

from tagsense.tenancy.context import current

from .models import AwsAccount

scan_finished = Signal()
accounts_changed = Signal()


def send_on_commit(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send `signal` when the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: signal.send_robust(sender, **kwargs))


def announce_accounts_changed(organization: Any, account_ids: Iterable[str]) -> None:
    """accounts_changed, by the current actor, once the caller's transaction commits."""
    send_on_commit(
        accounts_changed,
        AwsAccount,
        organization=organization,
        actor=current().actor,
        account_ids=tuple(account_ids),
    )
