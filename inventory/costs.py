"""Resource costs from AWS Cost Explorer, and the cost period the spend-weighted scores use.

The import asks Cost Explorer's GetCostAndUsageWithResources, through the account's own
assumed-role session (the one the scanners use), for the last COST_WINDOW_DAYS days (AWS keeps
resource-level data no longer) at DAILY granularity, grouped by RESOURCE_ID and filtered to
the account (LINKED_ACCOUNT) and to each service in settings.TAGSENSE_COST_EXPLORER_SERVICES.
Resource-level data is an opt-in of the payer account (Cost Explorer settings); each request
is billed by AWS. AWS calls happen outside any transaction; the rows of every account that
answered, and one `cost.import` audit event, are written in one transaction.

moto (5.2.5) does not implement GetCostAndUsageWithResources; the tests route it to moto's
GetCostAndUsage results queue (tests/conftest.py `aws_env`). Nothing here invents a figure.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from tagsense.plugs import Plug
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope

from . import audit_events, aws, runner
from .models import AwsAccount, Resource, ResourceCost

logger = logging.getLogger(__name__)

COST_WINDOW_DAYS = 14  # Cost Explorer's resource-level data covers the last 14 days
METRIC = "UnblendedCost"
CURRENCY = "USD"  # what Cost Explorer reports cost metrics in; the scores sum only these
AMOUNT_PLACES = Decimal("0.0000000001")  # ResourceCost.amount's 10 decimal places
# The demo's labelled, invented costs (`import_costs --demo`): seed(organization) -> rows,
# provided by the demo app (demo/apps.py).
DEMO_COSTS = Plug("the demo's costs")


@dataclass(frozen=True)
class CostPeriod:
    """The days whose costs the spend-weighted scores add up: [start, end), end exclusive."""

    start: date
    end: date
    sources: tuple[str, ...] = ()
    currency: str = CURRENCY

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def includes_demo(self) -> bool:
        return ResourceCost.DEMO in self.sources

    @property
    def includes_measured(self) -> bool:
        return ResourceCost.COST_EXPLORER in self.sources


def latest_period(organization, account_pks: Iterable[int] | None = None) -> CostPeriod | None:
    """The last COST_WINDOW_DAYS days with cost data of the given accounts (None: all of the
    organization's), ending with the latest day any of them has; None when they have none.
    Assumes the caller is inside the organization's tenant scope."""
    rows = ResourceCost.objects.for_org(organization).filter(currency=CURRENCY)
    if account_pks is not None:
        rows = rows.filter(account_id__in=list(account_pks))
    # The end of the latest-starting row (cost_period_idx, read backwards): for daily rows, the
    # day after the latest day.
    end = rows.order_by("-period_start", "-period_end").values_list("period_end", flat=True).first()
    if end is None:
        return None
    start = end - timedelta(days=COST_WINDOW_DAYS)
    sources = (
        rows.filter(period_start__gte=start).order_by().values_list("source", flat=True).distinct()
    )
    return CostPeriod(start=start, end=end, sources=tuple(sorted(sources)))


def import_window(today: date | None = None) -> tuple[date, date]:
    """[start, end) of an import: the COST_WINDOW_DAYS whole days (UTC) before today."""
    today = today or timezone.now().date()
    return today - timedelta(days=COST_WINDOW_DAYS), today


@dataclass
class AccountCosts:
    """What Cost Explorer answered for one account: {(service, resource id, day): amount}."""

    account: AwsAccount
    amounts: dict[tuple[str, str, date, date, str], Decimal] = field(default_factory=dict)
    api_calls: int = 0
    error_code: str = ""


def _request(account_id: str, service: str, start: date, end: date) -> dict:
    return {
        "TimePeriod": {"Start": start.isoformat(), "End": end.isoformat()},
        "Granularity": "DAILY",
        "Filter": {
            "And": [
                {"Dimensions": {"Key": "SERVICE", "Values": [service]}},
                {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [account_id]}},
            ]
        },
        "Metrics": [METRIC],
        "GroupBy": [{"Type": "DIMENSION", "Key": "RESOURCE_ID"}],
    }


def fetch_account_costs(
    account: AwsAccount, start: date, end: date, services: Iterable[str]
) -> AccountCosts:
    """The account's resource-level daily costs from Cost Explorer (calls AWS, writes
    nothing). An error leaves no amounts: a partial answer is never stored."""
    found = AccountCosts(account=account)
    counter = aws.CallCounter()
    try:
        session = aws.session_for(runner.credentials_for(account), aws.HOME_REGION)
        client = counter.attach(
            session.client("ce", region_name=aws.HOME_REGION, config=aws.CLIENT_CONFIG)
        )
        for service in services:
            request = _request(account.account_id, service, start, end)
            while True:
                page = client.get_cost_and_usage_with_resources(**request)
                for result in page.get("ResultsByTime", []):
                    period = result["TimePeriod"]
                    day, until = (
                        date.fromisoformat(period["Start"]),
                        date.fromisoformat(period["End"]),
                    )
                    for group in result.get("Groups", []):
                        metric = group.get("Metrics", {}).get(METRIC)
                        if not metric:
                            continue
                        resource_id = (group.get("Keys") or [""])[0]
                        key = (service, resource_id, day, until, metric.get("Unit", CURRENCY))
                        amount = Decimal(metric["Amount"])
                        found.amounts[key] = found.amounts.get(key, Decimal(0)) + amount
                token = page.get("NextPageToken")
                if not token:
                    break
                request["NextPageToken"] = token
    except ClientError as exc:
        found.error_code = exc.response.get("Error", {}).get("Code", "ClientError")
    except (BotoCoreError, OSError) as exc:
        found.error_code = type(exc).__name__
    found.api_calls = counter.calls
    if found.error_code:
        found.amounts = {}
        logger.warning("cost import of account %s failed: %s", account.account_id, found.error_code)
    return found


def _resources_named(account: AwsAccount, ids: set[str]) -> dict[str, tuple[int, str]]:
    """{cost resource id: (resource pk, arn)} for the ids naming one resource of the account:
    an ARN, or a resource id (an instance or volume id) that only one of its resources has."""
    arns = [i for i in ids if i.startswith("arn:")]
    others = [i for i in ids if i and not i.startswith("arn:")]
    named = {
        arn: (pk, arn)
        for pk, arn in Resource.objects.filter(account=account, arn__in=arns).values_list(
            "pk", "arn"
        )
    }
    by_id: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for pk, resource_id, arn in Resource.objects.filter(
        account=account, resource_id__in=others
    ).values_list("pk", "resource_id", "arn"):
        by_id[resource_id].append((pk, arn))
    named.update({i: matches[0] for i, matches in by_id.items() if len(matches) == 1})
    return named


def _store(organization, found: AccountCosts, start: date, end: date, now) -> dict:
    """Replace the account's Cost Explorer rows of [start, end) by what it answered; a measured
    day replaces that day's demo rows. Inside the caller's tenant transaction."""
    account = found.account
    ResourceCost.objects.filter(
        account=account,
        source=ResourceCost.COST_EXPLORER,
        period_start__gte=start,
        period_start__lt=end,
    ).delete()
    named = _resources_named(account, {key[1] for key in found.amounts})
    rows = []
    for (service, resource_id, day, until, unit), amount in sorted(found.amounts.items()):
        resource_pk, arn = named.get(resource_id, (None, ""))
        rows.append(
            ResourceCost(
                organization=organization,
                account=account,
                resource_id=resource_pk,
                arn=arn,
                cost_resource_id=resource_id,
                service=service,
                period_start=day,
                period_end=until,
                amount=amount.quantize(AMOUNT_PLACES),
                currency=unit[:3],
                source=ResourceCost.COST_EXPLORER,
                imported_at=now,
            )
        )
    ResourceCost.objects.bulk_create(rows, batch_size=2000)
    days = {row.period_start for row in rows}
    if days:
        ResourceCost.objects.filter(
            account=account, source=ResourceCost.DEMO, period_start__in=days
        ).delete()
    return {
        "rows": len(rows),
        "linked": sum(1 for row in rows if row.resource_id),
        "amount": sum((r.amount for r in rows if r.currency == CURRENCY), Decimal(0)),
        "other_currency": sum(1 for r in rows if r.currency != CURRENCY),
    }


def import_costs(
    organization,
    *,
    actor: Actor,
    account_ids: Iterable[str] = (),
    today: date | None = None,
) -> dict:
    """Import the last COST_WINDOW_DAYS days of resource-level costs of the organization's
    enabled accounts (or those named). Accounts whose query fails keep their rows and are
    listed in the result and the `cost.import` event. Raises ValueError when no enabled
    account matches. The caller may start scans (`change`) or is the system."""
    start, end = import_window(today)
    services = list(settings.TAGSENSE_COST_EXPLORER_SERVICES)
    with tenant_scope(organization, actor=actor):
        accounts = AwsAccount.objects.for_org(organization).enabled()
        if account_ids:
            accounts = accounts.filter(account_id__in=list(account_ids))
        accounts = list(accounts)
    if not accounts:
        raise ValueError("no enabled AWS account matches")
    answers = [fetch_account_costs(account, start, end, services) for account in accounts]
    now = timezone.now()
    totals = {"rows": 0, "linked": 0, "amount": Decimal(0), "other_currency": 0}
    with tenant_scope(organization, actor=actor), transaction.atomic():
        for found in answers:
            if found.error_code:
                continue
            for key, value in _store(organization, found, start, end, now).items():
                totals[key] += value
        result = {
            "period": [start.isoformat(), end.isoformat()],
            "services": services,
            "accounts": sum(1 for f in answers if not f.error_code),
            "rows": totals["rows"],
            "linked": totals["linked"],
            "amount": str(totals["amount"].quantize(Decimal("0.01"))),
            "currency": CURRENCY,
            "other_currency_rows": totals["other_currency"],
            "failed": [[f.account.account_id, f.error_code] for f in answers if f.error_code],
            "api_calls": sum(f.api_calls for f in answers),
        }
        audit.record(
            audit_events.COST_IMPORT, data={**result, "failed": result["failed"][:50]}, actor=actor
        )
    return result
