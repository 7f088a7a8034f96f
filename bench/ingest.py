"""Ingest benchmark: synthetic EC2 instances through the real storage path.

Pages of ResourceRecord come from a generator (never the whole estate in memory) and are stored
with inventory.storage.store_page inside the organization's tenant scope, one short transaction
per page, exactly as inventory.runner.run_unit does; then mark_missing_deleted closes the unit.
Pass 1 is a first ingest into an empty organization; pass 2 re-scans the same estate with
--changed of the resources carrying one changed tag value.

    .venv/bin/python bench/ingest.py --resources 1000000 --tags 8 --page 5000 --changed 0.01

Prints rates, counts, TagEvents written, peak RSS and a phase breakdown of each pass.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tagsense_bench")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import datetime as dt  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

_setup.configure()

from _phases import Phases  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402

from inventory import storage  # noqa: E402
from inventory.models import ScanRun, TagEvent  # noqa: E402
from inventory.scanners.base import Relation, ResourceRecord  # noqa: E402
from tagsense.tenancy.db import tenant_scope  # noqa: E402

REGION = "eu-west-1"
RESOURCE_TYPE = "ec2:instance"
ENVIRONMENTS = ("prod", "prod", "staging", "dev", "dev", "test", "sandbox")
TEAMS = ("payments", "search", "platform", "data", "identity", "growth", "mobile", "infra")
APPS = ("checkout", "catalog", "api-gateway", "etl", "auth", "recommender", "billing", "web")
INSTANCE_TYPES = ("t3.micro", "t3.medium", "m6i.large", "m6i.xlarge", "c6g.2xlarge", "r6i.large")
TAG_KEYS = (
    "Name",
    "Environment",
    "Owner",
    "CostCenter",
    "Application",
    "Team",
    "Project",
    "ManagedBy",
    "Service",
    "DataClassification",
    "BackupPolicy",
    "Compliance",
)
CHANGED_KEY = "Owner"  # the tag whose value a re-scan sees changed
LAUNCH = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


def is_changed(i: int, fraction: float) -> bool:
    """A deterministic, evenly spread choice of `fraction` of the indices."""
    return ((i * 2654435761) & 0xFFFFFFFF) < fraction * 2**32


def tags_for(i: int, count: int, changed: bool) -> dict[str, str]:
    team = TEAMS[i % len(TEAMS)]
    app = APPS[(i // 7) % len(APPS)]
    env = ENVIRONMENTS[(i // 3) % len(ENVIRONMENTS)]
    owner = f"{team}-lead-{(i // 11) % 40}@example.com"
    if changed:
        owner = f"{TEAMS[(i + 3) % len(TEAMS)]}-lead-{(i // 13) % 40}@example.com"
    values = {
        "Name": f"{app}-{env}-{i:07d}",
        "Environment": env,
        "Owner": owner,
        "CostCenter": f"CC-{1000 + (i // 97) % 300}",
        "Application": app,
        "Team": team,
        "Project": f"{app}-{2023 + i % 3}",
        "ManagedBy": "terraform" if i % 5 else "cloudformation",
        "Service": f"{app}-svc",
        "DataClassification": ("internal", "confidential", "public")[i % 3],
        "BackupPolicy": ("daily", "weekly", "none")[i % 3],
        "Compliance": ("pci", "sox", "none", "none")[i % 4],
    }
    tags = {key: values[key] for key in TAG_KEYS[:count]}
    for extra in range(len(TAG_KEYS), count):
        tags[f"custom:label{extra}"] = f"value-{(i + extra) % 17}"
    if changed and CHANGED_KEY not in tags:  # with fewer than 3 tags, change the first one
        first = next(iter(tags))
        tags[first] = tags[first] + "-changed"
    return tags


def record_for(i: int, account_id: str, tag_count: int, changed: bool) -> ResourceRecord:
    instance_id = f"i-{i:017x}"
    subnet = f"subnet-{(i // 250) % 4000:017x}"
    tags = tags_for(i, tag_count, changed)
    launch = LAUNCH + dt.timedelta(minutes=i % 500_000)
    config = {
        "InstanceType": INSTANCE_TYPES[i % len(INSTANCE_TYPES)],
        "LaunchTime": launch.isoformat(),
        "PrivateIpAddress": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
        "Architecture": "arm64" if i % 4 == 0 else "x86_64",
        "State": "running" if i % 10 else "stopped",
    }
    return ResourceRecord(
        arn=f"arn:aws:ec2:{REGION}:{account_id}:instance/{instance_id}",
        resource_type=RESOURCE_TYPE,
        resource_id=instance_id,
        region=REGION,
        name=tags.get("Name", ""),
        tags=tags,
        config=config,
        relations=[Relation("in_subnet", f"arn:aws:ec2:{REGION}:{account_id}:subnet/{subnet}")],
    )


def pages(
    total: int, page_size: int, account_id: str, tag_count: int, changed: float, stats: dict
) -> Iterator[list[ResourceRecord]]:
    for start in range(0, total, page_size):
        page = []
        for i in range(start, min(start + page_size, total)):
            flip = changed > 0 and is_changed(i, changed)
            stats["changed"] += flip
            page.append(record_for(i, account_id, tag_count, flip))
        yield page


def analyze_resources() -> float:
    """ANALYZE inventory_resource as the login (the owner), for --analyze-every."""
    import psycopg

    start = time.perf_counter()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("ANALYZE inventory_resource")
    return time.perf_counter() - start


def vacuum_analyze() -> float:
    """VACUUM ANALYZE the inventory tables between passes, as autovacuum would between two real
    scans. Run as the login (the owner); the app role may not vacuum."""
    import psycopg

    start = time.perf_counter()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        for table in ("inventory_resource", "inventory_tagevent", "inventory_edge"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - start


EXPLAINED = {
    "SELECT r.id, r.arn, r.tags": "EXPLAIN (ANALYZE, BUFFERS) ",  # a SELECT: safe to run twice
    "UPDATE inventory_resource r SET last_seen": "EXPLAIN ",  # plan only: it writes
    "INSERT INTO inventory_resource": "EXPLAIN ",
}


def explainer(state: dict):
    """An execute wrapper printing the plans of classify, upsert and touch on chosen pages."""

    def wrapper(execute, sql, params, many, context):
        if state["page"] in state["pages"]:
            text = " ".join(sql.split())
            for prefix, explain in EXPLAINED.items():
                if text.startswith(prefix):
                    with context["connection"].cursor() as cursor:
                        cursor.execute(explain + sql, params)
                        plan = "\n    ".join(row[0] for row in cursor.fetchall())
                    print(f"  [page {state['page']}] {explain}{prefix} ...\n    {plan}")
        return execute(sql, params, many, context)

    return wrapper


def run_pass(label: str, org, account, args, changed: float, phases: Phases) -> dict:
    with tenant_scope(org):
        scan = ScanRun.objects.create(
            organization=org, started_by="bench", trigger="bench", status=ScanRun.RUNNING
        )
    stats = {"changed": 0}
    counts = storage.Counts()
    pages_stored = 0
    unit_started = timezone.now()
    phases.reset()
    gen = pages(args.resources, args.page, account.account_id, args.tags, changed, stats)
    profiler = cProfile.Profile() if args.cprofile == label else None
    explain = {"page": 0, "pages": set(args.explain_pages)}
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    while True:
        explain["page"] += 1
        with phases.span("record generation"):
            page = next(gen, None)
        if page is None:
            break
        now = timezone.now()
        with tenant_scope(org), connection.execute_wrapper(explainer(explain)):
            page_counts, _ = storage.store_page(account=account, records=page, scan=scan, now=now)
        counts.add(page_counts)
        pages_stored += 1
        if args.analyze_every and explain["page"] % args.analyze_every == 0:
            analyzed = analyze_resources()
            phases.add("ANALYZE (excluded)", analyzed)
            start += analyzed  # not part of the storage path: kept off the clock
    stored = time.perf_counter()
    rss_pages = _setup.peak_rss_mib()  # before mark_missing_deleted
    store_seconds = dict(phases.seconds)
    before_missing = phases.snapshot()
    with tenant_scope(org):
        counts.deleted = storage.mark_missing_deleted(
            account=account,
            resource_type=RESOURCE_TYPE,
            region=REGION,
            since=unit_started,
            scan=scan,
            now=timezone.now(),
        )
    done = time.perf_counter()
    if profiler:
        profiler.disable()
    missing_phases = phases.since(before_missing)
    rss_after = _setup.peak_rss_mib()
    with tenant_scope(org):
        events = TagEvent.objects.filter(scan=scan).count()
        by_kind = dict(
            TagEvent.objects.filter(scan=scan)
            .order_by()
            .values("kind")
            .annotate(n=Count("id"))
            .values_list("kind", "n")
        )
    store_time, unit_time = stored - start, done - start
    n = args.resources
    print(f"\n== {label}: {n:,} resources, pages of {args.page}, {args.tags} tags each ==")
    print(
        f"counts: seen={counts.seen:,} new={counts.new:,} changed={counts.changed:,} "
        f"unchanged={counts.unchanged:,} deleted={counts.deleted:,}"
    )
    print(f"generator changed a tag on {stats['changed']:,} resources")
    print(f"TagEvents written: {events:,} {by_kind}")
    print(f"store pages:        {store_time:8.2f} s  {n / store_time:10,.0f} resources/s")
    print(f"mark_missing:       {done - stored:8.2f} s")
    print(f"unit (both):        {unit_time:8.2f} s  {n / unit_time:10,.0f} resources/s")
    print(
        f"peak RSS so far:    {rss_after:8.1f} MiB ({rss_pages:.1f} MiB before "
        f"mark_missing_deleted, {pages_stored:,} pages stored)"
    )
    if args.analyze_every:
        print(
            f"ANALYZE inventory_resource every {args.analyze_every} pages: "
            f"{store_seconds.get('ANALYZE (excluded)', 0.0):.2f} s, excluded from the times"
        )
    print(phases.report(store_time, n, f"{label}, page loop", store_seconds))
    m = missing_phases
    mm_select, mm_update = m.get("mark-missing SELECT", 0.0), m.get("mark-missing UPDATE", 0.0)
    mm_events = m.get("TagEvent bulk_create", 0.0)
    mm_edges = m.get("edge DELETE SQL", 0.0)
    mm_rest = done - stored - mm_select - mm_update - mm_events - mm_edges
    print(
        f"  mark_missing_deleted {done - stored:.2f} s: SELECT (pk, arn, tags) of the live unit "
        f"{mm_select:.2f} s, UPDATE deleted_at {mm_update:.2f} s, TagEvents {mm_events:.2f} s, "
        f"edge DELETE {mm_edges:.2f} s, Python (JSON decoding of every row's tags, seen-set "
        f"test) {mm_rest:.2f} s"
    )
    if profiler:
        path = Path(args.cprofile_out)
        profiler.dump_stats(path)
        print(f"\ncProfile of {label} written to {path}; top 30 by internal time:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return {
        "store_rate": n / store_time,
        "unit_rate": n / unit_time,
        "changed": counts.changed,
        "events": events,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--tags", type=int, default=8)
    parser.add_argument("--page", type=int, default=5000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument(
        "--no-vacuum", action="store_true", help="skip VACUUM ANALYZE between the passes"
    )
    parser.add_argument(
        "--cprofile", choices=("first", "rescan"), help="profile that pass with cProfile"
    )
    parser.add_argument(
        "--cprofile-out", default=str(Path(tempfile.gettempdir()) / "tagsense-bench-ingest.pstats")
    )
    parser.add_argument(
        "--analyze-every",
        type=int,
        default=0,
        metavar="N",
        help="diagnostic: ANALYZE inventory_resource after every N pages, off the clock (shows"
        " the rate with fresh planner statistics; autovacuum may be off on a CI machine)",
    )
    parser.add_argument(
        "--explain-pages",
        type=lambda text: [int(p) for p in text.split(",") if p],
        default=[],
        metavar="N,M",
        help="print the plans of classify/upsert/touch on these pages (1-based) of each pass;"
        " a diagnostic: the EXPLAINs are timed with the phases they precede",
    )
    args = parser.parse_args()

    _setup.print_machine()
    print(f"database: {connection.settings_dict['NAME']}")
    org, account = _setup.make_account("ingest")
    print(f"organization {org.pk} ({org.slug}), account {account.account_id}")
    print(f"peak RSS at start: {_setup.peak_rss_mib():.1f} MiB")
    phases = Phases()
    with phases.installed():
        with _setup.Interference() as load:
            first = run_pass("first", org, account, args, 0.0, phases)
        print(load.summary())
        if not args.no_vacuum:
            print(f"\nVACUUM ANALYZE between passes: {vacuum_analyze():.1f} s (not timed below)")
        with _setup.Interference() as load:
            rescan = run_pass("rescan", org, account, args, args.changed, phases)
        print(load.summary())
    print("\n== summary ==")
    print(
        f"first ingest: {first['store_rate']:,.0f} resources/s storing pages, "
        f"{first['unit_rate']:,.0f}/s with mark_missing (target >= 50,000/s)"
    )
    print(
        f"re-scan ({args.changed:.2%} changed): {rescan['store_rate']:,.0f} resources/s storing "
        f"pages, {rescan['unit_rate']:,.0f}/s with mark_missing (target >= 100,000/s); "
        f"changed {rescan['changed']:,}, TagEvents {rescan['events']:,}"
    )
    print(f"peak RSS: {_setup.peak_rss_mib():.1f} MiB")


if __name__ == "__main__":
    main()
