"""Policy evaluation benchmark: 25 rules over a synthetic estate, through policies.evaluation.

Seeds --resources resources through the real storage path (inventory.storage.unit_writer, one
process per region as bench/ingest.py does, one unit per resource type and region) with
realistic tag hygiene: about 60% fully and correctly tagged, the rest case variants (owner,
environment), misspelt values, untagged resources, a few secret-looking keys and oversized tag
sets. 25 active rules: the built-in library's 23 (policies/data/rules.yaml) and two more (a
glob and a conditional scoped by type). Then, timed through the real code:

(a) evaluate_organization: full evaluation, findings written (an empty findings table, no
    ledger), each one's `opened` event appended to the finding-state ledger (FindingEvent),
    with the day's score snapshot;
(b) evaluate_organization again, nothing changed (the ledger finds nothing to evaluate);
(b') evaluate_organization(force=True): everything evaluated again, nothing written;
(c) a scan changing --changed resources' tags (UnitWriter.write pages under a new ScanRun) and
    evaluate_after_scan for that scan;
(d) the score snapshot alone (policies.scoring.scores._snapshot_rows, nothing written).

    .venv/bin/python bench/policy_eval.py --resources 1000000 [--explain] [--one-statement]

Prints each phase's wall time, the counts, the findings table and the other load.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tagsense_bench")

import argparse  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

_setup.configure()

from django.db import connection, connections  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402

from inventory import storage  # noqa: E402
from inventory.models import ScanRun  # noqa: E402
from inventory.scanners.base import ResourceRecord  # noqa: E402
from policies import evaluation  # noqa: E402
from policies.engine.spec import builtin_rules, parse_rules, rule_to_dict  # noqa: E402
from policies.models import Finding, FindingEvent, Rule  # noqa: E402
from tagsense.tenancy.db import tenant_scope  # noqa: E402

REGIONS = ("eu-west-1", "us-east-1", "eu-central-1", "us-west-2")
# (type, share of the estate, ARN maker)
TYPES = (
    ("ec2:instance", 0.60, lambda r, a, i: f"arn:aws:ec2:{r}:{a}:instance/i-{i:017x}"),
    ("ec2:volume", 0.15, lambda r, a, i: f"arn:aws:ec2:{r}:{a}:volume/vol-{i:017x}"),
    ("s3:bucket", 0.10, lambda r, a, i: f"arn:aws:s3:::bench-{r}-{i:09d}"),
    ("dynamodb:table", 0.10, lambda r, a, i: f"arn:aws:dynamodb:{r}:{a}:table/t-{i:09d}"),
    ("rds:db", 0.05, lambda r, a, i: f"arn:aws:rds:{r}:{a}:db:db-{i:09d}"),
)
DATA_STORES = {"ec2:volume", "s3:bucket", "dynamodb:table", "rds:db"}
ENVIRONMENTS = ("prod", "prod", "staging", "dev", "test", "sandbox")
MISSPELT_ENV = ("Production", "prdo", "stagin", "develop")
TEAMS = ("payments", "search", "platform", "data", "identity", "growth")
APPS = ("checkout", "catalog", "api", "etl", "auth", "billing")
EXTRA_RULES = """
version: 1
rules:
  - id: project-format
    title: Project is <application>-<year>
    check: allowed_values
    key: Project
    values: {glob: "*-20??"}
    severity: low
  - id: prod-instance-backup
    title: Production instances name their BackupPolicy
    check: required_key
    key: BackupPolicy
    aliases: [backup, Backup, backup-policy, backup_policy]
    scope: {resource_types: ["ec2:instance"]}
    when: {key: Environment, values: [prod]}
    severity: medium
"""


def spread(i: int) -> float:
    """A deterministic, evenly spread number in [0, 1) for index i."""
    return ((i * 2654435761) & 0xFFFFFFFF) / 2**32


def tags_for(i: int, resource_type: str, variant: int = 0) -> dict[str, str]:
    """The tags of resource i: its hygiene class decides what is wrong with them. `variant`
    shifts the class (a re-scan that changed the resource)."""
    x = (spread(i) + variant * 0.37) % 1.0
    team, app = TEAMS[i % len(TEAMS)], APPS[(i // 7) % len(APPS)]
    env = ENVIRONMENTS[(i // 3) % len(ENVIRONMENTS)]
    tags = {
        "Name": f"{app}-{i:07d}",
        "Owner": f"{team}-lead@example.com",
        "CostCenter": f"CC-{1000 + i % 300}",
        "Environment": env,
        "Application": app,
        "Project": f"{app}-{2023 + i % 3}",
        "DataClassification": ("internal", "confidential", "public")[i % 3],
        "BackupPolicy": ("daily", "weekly", "none")[i % 3],
        "ManagedBy": "terraform",
    }
    if resource_type in DATA_STORES:
        tags["PCIScope"] = "out-of-scope"
        tags["PHI"] = "false"
    if x < 0.60:  # fully and correctly tagged
        return tags
    if x < 0.72:  # case variants of the keys
        tags["owner"] = tags.pop("Owner")
        tags["environment"] = tags.pop("Environment")
        return tags
    if x < 0.83:  # misspelt values
        tags["Environment"] = MISSPELT_ENV[i % len(MISSPELT_ENV)]
        tags["CostCenter"] = f"CC{i % 1000}"
        tags["Project"] = f"{app}{2023 + i % 3}"
        return tags
    if x < 0.97:  # untagged
        return {}
    if x < 0.985:  # a credential in a tag
        tags["db_password"] = "hunter2"  # noqa: S105 - synthetic bad hygiene
        return tags
    tags.update({f"label{k}": str(k) for k in range(45)})  # too many tags
    return tags


def records(
    worker: int, resource_type: str, count: int, account_id: str, arn, page: int, variant: int
) -> Iterator[list[ResourceRecord]]:
    region = REGIONS[worker]
    base = worker * 10_000_000 + [t for t, _, _ in TYPES].index(resource_type) * 2_000_000
    for start in range(0, count, page):
        out = []
        for i in range(base + start, base + min(start + page, count)):
            tags = tags_for(i, resource_type, variant)
            arn_text = arn(region, account_id, i)
            out.append(
                ResourceRecord(
                    arn=arn_text,
                    resource_type=resource_type,
                    resource_id=arn_text.rsplit("/", 1)[-1].rsplit(":", 1)[-1],
                    region=region,
                    name=tags.get("Name", ""),
                    tags=tags,
                    config={"n": i % 97},
                )
            )
        yield out


def seed_worker(worker: int, workers: int, org_id: int, account_pk: int, scan_id: int, args):
    from accounts.models import Organization
    from inventory.models import AwsAccount

    connections.close_all()
    org = Organization.objects.get(pk=org_id)
    with tenant_scope(org):
        account = AwsAccount.objects.get(pk=account_pk)
        scan = ScanRun.objects.get(pk=scan_id)
    share = args.resources // workers + (worker < args.resources % workers)
    for resource_type, fraction, arn in TYPES:
        with tenant_scope(org):
            writer = storage.unit_writer(
                account=account,
                resource_type=resource_type,
                region=REGIONS[worker],
                scan=scan,
                started=timezone.now(),
            )
        count = int(share * fraction)
        for page in records(worker, resource_type, count, account.account_id, arn, 5000, 0):
            with tenant_scope(org):
                writer.write(page, now=timezone.now())
        with tenant_scope(org):
            writer.finish(now=timezone.now())


def seed(org, account, args) -> float:
    with tenant_scope(org):
        scan = ScanRun.objects.create(
            organization=org, started_by="bench", trigger="bench", status=ScanRun.RUNNING
        )
    connections.close_all()
    context = multiprocessing.get_context("fork")
    start = time.perf_counter()
    procs = [
        context.Process(
            target=seed_worker, args=(w, args.workers, org.pk, account.pk, scan.pk, args)
        )
        for w in range(args.workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode for p in procs):
        sys.exit(f"a seeding worker failed: {[p.exitcode for p in procs]}")
    return time.perf_counter() - start


def vacuum_analyze() -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        for table in (
            "inventory_resource",
            "inventory_tagevent",
            "policies_finding",
            "policies_evaluatedresource",
            "policies_findingevent",
        ):
            conn.execute(f"VACUUM ANALYZE {table}")


def make_rules(org) -> list[Rule]:
    specs = [*builtin_rules(), *parse_rules(EXTRA_RULES)]
    with tenant_scope(org):
        return [
            Rule.objects.create(organization=org, rule_id=s.id, spec=rule_to_dict(s)) for s in specs
        ]


def findings_summary(org) -> str:
    with tenant_scope(org):
        by_status = dict(
            Finding.objects.for_org(org)
            .order_by()
            .values("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
    return ", ".join(f"{k} {v:,}" for k, v in sorted(by_status.items()))


def timed(label: str, org, fn):
    with _setup.Interference(database=connection.settings_dict["NAME"]) as load:
        start = time.perf_counter()
        with tenant_scope(org):
            result = fn()
        wall = time.perf_counter() - start
    print(f"\n== {label}: {wall:.2f} s ==")
    print(f"result: {result}")
    print(f"findings: {findings_summary(org)}")
    with tenant_scope(org):
        print(f"ledger: {FindingEvent.objects.count():,} finding events")
    print(load.summary())
    print(load.by_process())
    return wall, result


def explain(org, rules, resource_query=None) -> None:
    """EXPLAIN ANALYZE of the violations SELECT (not the write)."""
    from policies.engine import sql

    active = [(r.pk, r.rule_spec) for r in rules]
    text, params = sql.violations_sql(active, org.pk, resource_query=resource_query)
    with tenant_scope(org), connection.cursor() as cursor:
        plan = "EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM (" + text + ") v"  # noqa: S608
        cursor.execute(plan, params)
        print("\n".join(row[0] for row in cursor.fetchall()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--explain", action="store_true", help="print the violations' plans")
    parser.add_argument(
        "--one-statement",
        action="store_true",
        help="never split a full run over two connections (the path before the split)",
    )
    args = parser.parse_args()
    if args.one_statement:
        evaluation.SPLIT_MIN_RESOURCES = 2**62

    _setup.print_machine()
    db = connection.settings_dict["NAME"]
    print(f"database: {db}; full runs split from {evaluation.SPLIT_MIN_RESOURCES:,} resources")
    org, account = _setup.make_account("policy", regions=REGIONS[: args.workers])
    rules = make_rules(org)
    print(f"organization {org.pk}, {len(rules)} active rules")
    with _setup.Interference(database=db) as load:
        seconds = seed(org, account, args)
    print(
        f"seeded {args.resources:,} resources in {seconds:.1f} s (not a target); {load.summary()}"
    )
    vacuum_analyze()

    if args.explain:
        explain(org, rules)
    full, _ = timed(
        "(a) full evaluation, findings written",
        org,
        lambda: evaluation.evaluate_organization(org, trigger="bench"),
    )
    vacuum_analyze()  # as autovacuum would after a bulk insert (not timed)
    again, _ = timed(
        "(b) re-evaluation, nothing changed",
        org,
        lambda: evaluation.evaluate_organization(org, trigger="bench"),
    )
    forced, _ = timed(
        "(b') forced re-evaluation of everything, nothing changed",
        org,
        lambda: evaluation.evaluate_organization(org, trigger="bench", force=True),
    )
    from policies.scoring import scores

    snapshot, _ = timed("(d) score snapshot alone", org, lambda: len(scores._snapshot_rows(org)))

    # (c) a scan that changes --changed ec2 instances of region 0 (a shifted hygiene class).
    with tenant_scope(org):
        scan = ScanRun.objects.create(
            organization=org, started_by="bench", trigger="bench", status=ScanRun.RUNNING
        )
        writer = storage.unit_writer(
            account=account,
            resource_type="ec2:instance",
            region=REGIONS[0],
            scan=scan,
            started=timezone.now(),
        )
    resource_type, _, arn = TYPES[0]
    start = time.perf_counter()
    counts = storage.Counts()
    for page in records(0, resource_type, args.changed, account.account_id, arn, 5000, 1):
        with tenant_scope(org):
            counts.add(writer.write(page, now=timezone.now()))
    write = time.perf_counter() - start
    print(
        f"\nscan {scan.pk} wrote {counts.seen:,} resources in {write:.2f} s: changed "
        f"{counts.changed:,}, unchanged {counts.unchanged:,}, new {counts.new:,}"
    )
    if args.explain:
        explain(org, rules, evaluation._touched_by(scan))
    incremental, _ = timed(
        "(c) incremental evaluation after the scan",
        org,
        lambda: evaluation.evaluate_after_scan(scan),
    )
    print("\n== summary ==")
    print(f"resources {args.resources:,}, rules {len(rules)}, findings: {findings_summary(org)}")
    print(f"(a) full evaluation:        {full:7.2f} s (target <= 30 s)")
    print(f"(b) re-evaluation, no change: {again:5.2f} s (target <= 3 s)")
    print(f"(b') forced, everything:     {forced:6.2f} s")
    print(f"(d) score snapshot alone:   {snapshot:6.2f} s (part of (a) and (b'))")
    print(f"(c) incremental, {counts.changed:,} changed: {incremental:5.2f} s (target <= 1 s)")


if __name__ == "__main__":
    main()
