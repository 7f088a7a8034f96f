"""Compliance history benchmark: a control's status at a past instant (policies.history).

Seeds --resources resources as bench/policy_eval.py does (the same estate, the same 25 rules,
each with its created version), enables the four built-in frameworks, evaluates everything on
day 0 and then replays --days days on tagsense.clock: each day a scan rewrites --changed EC2
instances (alternately shifted and restored, so findings resolve and reopen) and the
after-scan evaluation appends the changes to the ledger. Then, timed through the real code:

(e) control_status_at for every control of the four frameworks at --instants random past
    instants (median and slowest; the issue's target is <= 1 s for any control);
(f) daily_control_states of the heaviest control over the whole period;
(g) findings_at the middle of the period, streamed to the end (count only).

    .venv/bin/python bench/history_at.py --resources 1000000 --days 90

Prints each phase's wall time, the ledger's size and the other load.
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
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

_setup.configure()

import policy_eval  # noqa: E402
import psycopg  # noqa: E402
from django.db import connection  # noqa: E402

from inventory import storage  # noqa: E402
from inventory.models import ScanRun  # noqa: E402
from policies import evaluation, history, services  # noqa: E402
from policies.models import Control, FindingEvent, RuleVersion  # noqa: E402
from tagsense import clock  # noqa: E402
from tagsense.tenancy.db import tenant_scope  # noqa: E402

FRAMEWORKS = ("soc2", "pci-dss-4.0", "iso-27001-2022", "hipaa")


def versions(org, rules, at: datetime) -> None:
    """The created version of each rule (policy_eval makes the rules without one)."""
    with tenant_scope(org):
        RuleVersion.objects.bulk_create(
            RuleVersion(
                organization=org,
                rule=rule,
                rule_slug=rule.rule_id,
                version=1,
                change=RuleVersion.CREATE,
                spec=rule.spec,
                active=True,
                changed_at=at,
            )
            for rule in rules
        )


def replay_day(org, account, day: datetime, variant: int, changed: int) -> float:
    """One day's scan of `changed` instances and the evaluation after it, at `day`."""
    resource_type, _, arn = policy_eval.TYPES[0]
    start = time.perf_counter()
    with clock.at(day):
        with tenant_scope(org):
            scan = ScanRun.objects.create(
                organization=org, started_by="bench", trigger="bench", status=ScanRun.RUNNING
            )
            writer = storage.unit_writer(
                account=account,
                resource_type=resource_type,
                region=policy_eval.REGIONS[0],
                scan=scan,
                started=day,
            )
        for page in policy_eval.records(
            0, resource_type, changed, account.account_id, arn, 5000, variant
        ):
            with tenant_scope(org):
                writer.write(page, now=day)
        with tenant_scope(org):
            scan.status = ScanRun.SUCCEEDED
            scan.finished_at = day
            scan.save()
            evaluation.evaluate_after_scan(scan)
    return time.perf_counter() - start


def vacuum() -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE policies_findingevent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--instants", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    _setup.print_machine()
    db = connection.settings_dict["NAME"]
    print(f"database: {db}")
    org, account = _setup.make_account("history", regions=policy_eval.REGIONS[: args.workers])
    day0 = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(
        days=args.days
    )
    rules = policy_eval.make_rules(org)
    versions(org, rules, day0 - timedelta(hours=1))
    with tenant_scope(org):
        for framework in FRAMEWORKS:
            services.enable_framework(org, framework)
    with _setup.Interference(database=db) as load:
        seconds = policy_eval.seed(org, account, args)
    print(f"seeded {args.resources:,} resources in {seconds:.1f} s; {load.summary()}")
    policy_eval.vacuum_analyze()
    with _setup.Interference(database=db) as load:
        start = time.perf_counter()
        with clock.at(day0), tenant_scope(org):
            evaluation.evaluate_organization(org, trigger="bench")
        wall = time.perf_counter() - start
    print(f"day 0 evaluated in {wall:.1f} s; {load.summary()}")
    with _setup.Interference(database=db) as load:
        walls = [
            replay_day(org, account, day0 + timedelta(days=d), d % 2, args.changed)
            for d in range(1, args.days + 1)
        ]
    print(
        f"{args.days} days replayed ({args.changed:,} instances a day): median "
        f"{statistics.median(walls):.2f} s a day; {load.summary()}"
    )
    vacuum()  # as autovacuum would after the inserts (not timed)
    with tenant_scope(org):
        events = FindingEvent.objects.count()
        controls = list(Control.objects.select_related("framework").order_by("id"))
    print(f"ledger: {events:,} events; {len(controls)} controls")

    rng = random.Random(16)
    end = day0 + timedelta(days=args.days)
    instants = [day0 + (end - day0) * rng.random() for _ in range(args.instants)]
    times: list[tuple[float, str, str]] = []
    with _setup.Interference(database=db) as load:
        for at in instants:
            for control in controls:
                start = time.perf_counter()
                with tenant_scope(org):
                    state = history.control_status_at(org, control, at)
                times.append((time.perf_counter() - start, str(control), state.status))
    walls_e = sorted(t for t, _, _ in times)
    slowest = max(times)
    print(
        f"\n== (e) control_status_at: {len(times)} (control, instant) pairs: median "
        f"{statistics.median(walls_e) * 1000:.0f} ms, p95 "
        f"{walls_e[int(len(walls_e) * 0.95)] * 1000:.0f} ms, slowest "
        f"{slowest[0] * 1000:.0f} ms ({slowest[1]}, {slowest[2]}) =="
    )
    print(load.summary())

    heaviest = next(c for c in controls if str(c) == slowest[1])
    with _setup.Interference(database=db) as load:
        start = time.perf_counter()
        with tenant_scope(org):
            days = history.daily_control_states(org, heaviest, day0.date(), end.date())
        wall = time.perf_counter() - start
    print(f"\n== (f) daily_control_states of {heaviest}, {len(days)} days: {wall:.2f} s ==")
    print(load.summary())

    with _setup.Interference(database=db) as load:
        start = time.perf_counter()
        with tenant_scope(org):
            count = sum(1 for _ in history.findings_at(org, day0 + (end - day0) / 2))
        wall = time.perf_counter() - start
    print(f"\n== (g) findings_at mid-period, {count:,} open findings streamed: {wall:.2f} s ==")
    print(load.summary())
    print(f"peak RSS {_setup.peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
