"""The demo's compliance history. DEMO DATA, NOT MEASURED.

A new installation has one day of scores: the past cannot be computed, because findings keep
only their current state and the demo estate was scanned once. So that the demo's trend charts
show a line, `seed_demo_history` writes invented snapshots for the days before the first
measured one, for the demo organization only (settings.TAGSENSE_DEMO_ORG_SLUG). Every such
row has source="demo"; the charts draw those points hollow and say "includes demo data", and
the trends API returns each point's source. A measured snapshot of a day replaces the day's
demo rows (scores.take_snapshot). Documented in docs/policies.md, "Scores".
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import audit
from policies import audit_events as policies_audit_events
from policies.models import ScoreSnapshot

from . import NotTheDemo

if TYPE_CHECKING:
    from accounts.models import Organization


def _wobble(key: str, day) -> float:
    """A deterministic number in [-1, 1) from the scope and the day (repeatable demo)."""
    digest = hashlib.sha256(f"{key}|{day.isoformat()}".encode()).digest()
    return digest[0] / 128 - 1


@transaction.atomic
def seed_demo_history(organization: Organization, days: int = 89) -> int:
    """Invent the `days` days before the organization's latest measured snapshot: each scope's
    score climbs towards its measured one (about 15 points lower at the start, with a little
    day-to-day noise), same number of resources in scope. Days that hold any snapshot are left
    alone. Refuses any organization but the demo's. One policy.score_snapshot event."""
    if organization.slug != settings.TAGSENSE_DEMO_ORG_SLUG:
        raise NotTheDemo("demo history is only ever written for the demo organization")
    measured = ScoreSnapshot.objects.for_org(organization).filter(source=ScoreSnapshot.MEASURED)
    latest = measured.order_by("-day").values_list("day", flat=True).first()
    if latest is None:
        return 0
    base = list(measured.filter(day=latest))
    taken = set(ScoreSnapshot.objects.for_org(organization).values_list("day", flat=True))
    now = timezone.now()
    rows = []
    for back in range(1, days + 1):
        day = latest - timedelta(days=back)
        if day in taken:
            continue
        for snap in base:
            if not snap.in_scope:
                continue
            share = snap.compliant / snap.in_scope
            share -= 0.15 * back / days - 0.02 * _wobble(f"{snap.kind}/{snap.key}", day)
            share = min(1.0, max(0.0, share))
            rows.append(
                ScoreSnapshot(
                    organization=organization,
                    day=day,
                    kind=snap.kind,
                    key=snap.key,
                    label=snap.label,
                    in_scope=snap.in_scope,
                    compliant=round(share * snap.in_scope),
                    taken_at=now,
                    source=ScoreSnapshot.DEMO,
                )  # fmt: skip
            )
    ScoreSnapshot.objects.bulk_create(rows)
    audit.record(
        policies_audit_events.SCORE_SNAPSHOT,
        data={"trigger": "demo_history", "rows": len(rows), "source": ScoreSnapshot.DEMO},
    )
    return len(rows)
