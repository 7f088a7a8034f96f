"""The demo's resource costs. DEMO DATA, NOT MEASURED.

The demo estate lives in moto, which tracks no cost, and moto (5.2.5) does not implement
Cost Explorer's GetCostAndUsageWithResources, so the real import (inventory.costs) has nothing
to read there. So that the demo shows spend-weighted scores, `seed_demo_costs` writes invented
daily costs for the demo organization only (settings.TAGSENSE_DEMO_ORG_SLUG): what the import
would store with its default service (EC2 compute, i.e. running instances), priced from an
approximate on-demand Linux hourly rate per instance type with a little day-to-day noise.
Every row has source="demo"; pages say "includes demo data, not measured" and the scores API
lists the period's sources. A measured import of a day replaces the day's demo rows.
Documented in docs/policies.md ("Spend-weighted score") and docs/inventory.md.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from inventory import audit_events as inventory_audit_events
from inventory.costs import AMOUNT_PLACES, CURRENCY, import_window
from inventory.models import Resource, ResourceCost

from . import NotTheDemo

if TYPE_CHECKING:
    from accounts.models import Organization

SERVICE = "Amazon Elastic Compute Cloud - Compute"
# Approximate on-demand Linux prices per hour (USD, us-east-1): demo figures, not a price list.
HOURLY = {
    "t3.micro": Decimal("0.0104"),
    "t3.small": Decimal("0.0208"),
    "t3.medium": Decimal("0.0416"),
    "m6i.large": Decimal("0.096"),
    "m6i.xlarge": Decimal("0.192"),
    "c6i.large": Decimal("0.085"),
}
DEFAULT_HOURLY = Decimal("0.05")


def _noise(key: str, day) -> Decimal:
    """A deterministic factor in [0.9, 1.1) from the resource and the day (repeatable demo)."""
    digest = hashlib.sha256(f"{key}|{day.isoformat()}".encode()).digest()
    return Decimal(90 + digest[0] * 20 // 256) / 100


@transaction.atomic
def seed_demo_costs(organization: Organization, today=None) -> int:
    """Invent the last 14 days' cost of every running instance of the demo organization,
    replacing its earlier demo costs; days an account has measured costs for are left alone.
    Refuses any organization but the demo's. One cost.import event (source demo). Inside the
    organization's tenant scope."""
    if organization.slug != settings.TAGSENSE_DEMO_ORG_SLUG:
        raise NotTheDemo("demo costs are only ever written for the demo organization")
    start, end = import_window(today)
    ResourceCost.objects.for_org(organization).filter(source=ResourceCost.DEMO).delete()
    measured = set(
        ResourceCost.objects.for_org(organization)
        .filter(source=ResourceCost.COST_EXPLORER, period_start__gte=start)
        .values_list("account_id", "period_start")
        .distinct()
    )
    instances = (
        Resource.objects.for_org(organization)
        .live()
        .of_type("ec2:instance")
        .values_list("pk", "account_id", "arn", "resource_id", "config")
    )
    now = timezone.now()
    rows = []
    for pk, account_pk, arn, resource_id, config in instances.iterator():
        if (config or {}).get("State", "running") != "running":
            continue
        daily = HOURLY.get((config or {}).get("InstanceType"), DEFAULT_HOURLY) * 24
        for offset in range((end - start).days):
            day = start + timedelta(days=offset)
            if (account_pk, day) in measured:
                continue
            rows.append(
                ResourceCost(
                    organization=organization,
                    account_id=account_pk,
                    resource_id=pk,
                    arn=arn,
                    cost_resource_id=resource_id,
                    service=SERVICE,
                    period_start=day,
                    period_end=day + timedelta(days=1),
                    amount=(daily * _noise(arn, day)).quantize(AMOUNT_PLACES),
                    currency=CURRENCY,
                    source=ResourceCost.DEMO,
                    imported_at=now,
                )
            )
    ResourceCost.objects.bulk_create(rows, batch_size=2000)
    audit.record(
        inventory_audit_events.COST_IMPORT,
        data={
            "source": ResourceCost.DEMO,
            "period": [start.isoformat(), end.isoformat()],
            "rows": len(rows),
            "amount": str(sum((r.amount for r in rows), Decimal(0)).quantize(Decimal("0.01"))),
            "currency": CURRENCY,
        },
    )
    return len(rows)
