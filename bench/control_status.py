"""A control's status at past instants, on an organization already seeded with history (by
bench/evidence_package.py or bench/history_at.py): every control of the organization at
--instants random instants of its ledger's span, through policies.history.control_status_at,
with the failing resources counted (what the evidence package reads) and without (the status
and the finding counts alone: one index-only sum, no grouping by resource).

    .venv/bin/python bench/control_status.py --org 1 [--instants 5]

Prints median, p95 and slowest of each mode, and the other load.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tagsense_bench")

import argparse  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

_setup.configure()

from django.db import connection  # noqa: E402
from django.db.models import Max, Min  # noqa: E402

from accounts.models import Organization  # noqa: E402
from policies import history  # noqa: E402
from policies.models import Control, FindingEvent  # noqa: E402
from tagsense.tenancy.db import tenant_scope  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--org", type=int, required=True)
    parser.add_argument("--instants", type=int, default=5)
    args = parser.parse_args()
    _setup.print_machine()
    org = Organization.objects.get(pk=args.org)
    with tenant_scope(org):
        span = FindingEvent.objects.for_org(org).aggregate(first=Min("at"), last=Max("at"))
        events = FindingEvent.objects.for_org(org).count()
        controls = list(Control.objects.for_org(org).select_related("framework").order_by("id"))
    rng = random.Random(16)
    instants = [
        span["first"] + (span["last"] - span["first"]) * rng.random() for _ in range(args.instants)
    ]
    print(f"organization {org.pk}: {events:,} ledger events, {len(controls)} controls")
    for counted in (False, True):
        times = []
        with _setup.Interference(database=connection.settings_dict["NAME"]) as load:
            for at in instants:
                for control in controls:
                    start = time.perf_counter()
                    with tenant_scope(org):
                        state = history.control_status_at(org, control, at, count_resources=counted)
                    times.append((time.perf_counter() - start, str(control), state.status))
        walls = sorted(t for t, _, _ in times)
        slowest = max(times)
        mode = "with failing resources counted" if counted else "status and finding counts"
        print(
            f"\n== control_status_at, {mode}: {len(times)} pairs: median "
            f"{statistics.median(walls) * 1000:.0f} ms, p95 "
            f"{walls[int(len(walls) * 0.95)] * 1000:.0f} ms, slowest {slowest[0] * 1000:.0f} ms "
            f"({slowest[1]}, {slowest[2]}) ==\n{load.summary()}"
        )


if __name__ == "__main__":
    main()
