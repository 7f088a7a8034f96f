"""Blast-radius benchmark: inventory.graph.blast_radius on a graph of --edges edges.

Builds one organization's relationship graph with the shape of a real EC2 estate: several
accounts x regions, each with VPCs; subnets and security groups in every VPC; instances in a
subnet and VPC, behind one to three security groups (a few shared by most instances),
launched from an AMI (a few golden images launched by many), with one or two EBS volumes;
volumes created from snapshots and backed up to snapshots; AMIs backed by snapshots. Edges are
COPYed into a temporary table and INSERTed into inventory_edge inside the tenant scope (row-level
security forbids COPY straight into a tenant table), then ANALYZEd as the owner. Then times
graph.blast_radius at depth 3 from an instance, a subnet and a VPC in each direction (dependents,
the default; dependencies; both): the median of 20 runs each, and what was reached per depth.

    .venv/bin/python bench/blast_radius.py --edges 1000000
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
from collections import Counter  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

_setup.configure()

import psycopg  # noqa: E402
from django.db import connection  # noqa: E402

from inventory import graph  # noqa: E402
from tagsense.tenancy.db import tenant_scope  # noqa: E402

ACCOUNTS = ("210987654321", "310987654321", "410987654321", "510987654321")
REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2")
VPCS_PER_REGION = 3
SUBNETS_PER_VPC = 9
SGS_PER_VPC = 40
AMIS_PER_REGION = 60
# Instances per account-region: chosen so that the estate yields about --edges edges.
EDGES_PER_INSTANCE = 8.6


class Estate:
    """Generates edges (source, kind, target) and remembers a few typical starting points."""

    def __init__(self, edges: int, seed: int = 7):
        self.target = edges
        self.rng = random.Random(seed)
        regions = len(ACCOUNTS) * len(REGIONS)
        self.per_region = max(1, round(edges / EDGES_PER_INSTANCE / regions))
        self.samples: dict[str, str] = {}
        self.kinds: Counter[str] = Counter()
        self.nodes: Counter[str] = Counter()

    def edges(self) -> Iterator[tuple[str, str, str]]:
        for produced, edge in enumerate(self._all()):
            if produced >= self.target:
                return
            self.kinds[edge[1]] += 1
            yield edge

    def _all(self) -> Iterator[tuple[str, str, str]]:
        rng = self.rng
        serial = 0
        for a, account in enumerate(ACCOUNTS):
            for r, region in enumerate(REGIONS):

                def arn(kind: str, ident: str, region=region, account=account) -> str:
                    return f"arn:aws:ec2:{region}:{account}:{kind}/{ident}"

                def global_arn(kind: str, ident: str, region=region) -> str:
                    return f"arn:aws:ec2:{region}::{kind}/{ident}"

                ar = a * len(REGIONS) + r
                vpcs = [arn("vpc", f"vpc-{ar:04x}{v:013x}") for v in range(VPCS_PER_REGION)]
                subnets, sgs = [], []
                for v, vpc in enumerate(vpcs):
                    self.nodes["vpc"] += 1
                    subs = [
                        arn("subnet", f"subnet-{ar:04x}{v:04x}{s:09x}")
                        for s in range(SUBNETS_PER_VPC)
                    ]
                    groups = [
                        arn("security-group", f"sg-{ar:04x}{v:04x}{g:09x}")
                        for g in range(SGS_PER_VPC)
                    ]
                    for sub in subs:
                        self.nodes["subnet"] += 1
                        yield sub, "in_vpc", vpc
                    for sg in groups:
                        self.nodes["security-group"] += 1
                        yield sg, "in_vpc", vpc
                    subnets.append(subs)
                    sgs.append(groups)
                amis = []
                for m in range(AMIS_PER_REGION):
                    ami = global_arn("image", f"ami-{ar:04x}{m:013x}")
                    amis.append(ami)
                    self.nodes["image"] += 1
                    self.nodes["snapshot"] += 1
                    yield ami, "image_snapshot", global_arn("snapshot", f"snap-{ar:04x}a{m:012x}")
                # Zipf-like popularity: a few golden AMIs and shared security groups.
                ami_weights = [1 / (k + 1) for k in range(AMIS_PER_REGION)]
                for n in range(self.per_region):
                    serial += 1
                    v = n % VPCS_PER_REGION
                    instance = arn("instance", f"i-{serial:017x}")
                    subnet = subnets[v][min(int(rng.expovariate(0.35)), SUBNETS_PER_VPC - 1)]
                    self.nodes["instance"] += 1
                    yield instance, "in_subnet", subnet
                    yield instance, "in_vpc", vpcs[v]
                    groups = {sgs[v][0]} if rng.random() < 0.6 else set()  # the shared "base"
                    wanted = rng.choice((1, 2, 2, 3))
                    while len(groups) < wanted:
                        groups.add(sgs[v][min(int(rng.expovariate(0.15)), SGS_PER_VPC - 1)])
                    for sg in sorted(groups):
                        yield instance, "security_group", sg
                    for d in range(rng.choice((1, 1, 2))):
                        volume = arn("volume", f"vol-{serial:016x}{d}")
                        self.nodes["volume"] += 1
                        yield instance, "attached_volume", volume
                        if rng.random() < 0.3:
                            origin = global_arn("snapshot", f"snap-{serial:016x}{d}o")
                            self.nodes["snapshot"] += 1
                            yield volume, "created_from", origin
                        for b in range(rng.choice((0, 1, 2, 3))):
                            backup = global_arn("snapshot", f"snap-{serial:015x}{d}b{b}")
                            self.nodes["snapshot"] += 1
                            yield backup, "snapshot_of", volume
                    yield instance, "launched_from", rng.choices(amis, ami_weights)[0]
                    if ar == 4 and n == self.per_region // 2:
                        self.samples["instance"] = instance
                        self.samples["subnet"] = subnet
                        self.samples["vpc"] = vpcs[v]


def load(org, estate: Estate, chunk: int) -> float:
    """COPY to a temporary table and INSERT into inventory_edge, in the tenant scope."""
    start = time.perf_counter()
    gen = estate.edges()
    loaded = 0
    while True:
        rows = 0
        with tenant_scope(org), connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS bench_stage_edge "
                "(source_arn varchar(2048), kind varchar(48), target_arn varchar(2048)) "
                "ON COMMIT DELETE ROWS"
            )
            with cursor.copy(
                "COPY bench_stage_edge (source_arn, kind, target_arn) FROM STDIN"
            ) as copy:
                for edge in gen:
                    copy.write_row(edge)
                    rows += 1
                    if rows == chunk:
                        break
            cursor.execute(
                "INSERT INTO inventory_edge (organization_id, source_arn, kind, target_arn) "
                "SELECT %s, source_arn, kind, target_arn FROM bench_stage_edge "
                "ON CONFLICT DO NOTHING",
                [org.pk],
            )
        loaded += rows
        if rows < chunk:
            break
    return time.perf_counter() - start


def analyze() -> float:
    start = time.perf_counter()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as owner:
        owner.execute("VACUUM ANALYZE inventory_edge")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--chunk", type=int, default=100_000, help="edges per transaction")
    parser.add_argument(
        "--directions", nargs="+", choices=graph.DIRECTIONS, default=list(graph.DIRECTIONS)
    )
    args = parser.parse_args()

    _setup.print_machine()
    org, _ = _setup.make_account("graph")
    estate = Estate(args.edges)
    load_seconds = load(org, estate, args.chunk)
    with tenant_scope(org), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM inventory_edge WHERE organization_id = %s", [org.pk])
        stored = cursor.fetchone()[0]
    loaded_rate = stored / load_seconds
    print(
        f"graph: {stored:,} edges for organization {org.pk} loaded in {load_seconds:.1f} s "
        f"({loaded_rate:,.0f} edges/s); {estate.per_region:,} instances per account-region, "
        f"{len(ACCOUNTS)} accounts x {len(REGIONS)} regions"
    )
    print("  edges by kind: " + ", ".join(f"{k}={n:,}" for k, n in estate.kinds.most_common()))
    print("  nodes by type: " + ", ".join(f"{k}={n:,}" for k, n in estate.nodes.most_common()))
    print(f"VACUUM ANALYZE inventory_edge (as owner): {analyze():.1f} s")

    results = {}
    interference = _setup.Interference().start()
    for direction in args.directions:
        for label in ("instance", "subnet", "vpc"):
            start_arn = estate.samples[label]
            times = []
            for _ in range(args.runs):
                with tenant_scope(org):
                    t0 = time.perf_counter()
                    hops = graph.blast_radius(org, start_arn, args.depth, direction)
                    times.append(1000 * (time.perf_counter() - t0))
            by_depth = dict(sorted(Counter(h.depth for h in hops).items()))
            median = statistics.median(times)
            results[direction, label] = (median, len(hops), by_depth)
            print(
                f"\nblast_radius({label} {start_arn}, depth={args.depth}, {direction}): "
                f"median {median:.2f} ms over {args.runs} runs "
                f"(min {min(times):.1f}, max {max(times):.1f}); "
                f"{len(hops):,} resources reached, by depth {by_depth}"
            )

    interference.stop()
    print(f"timed runs: {interference.summary()}")
    used = set()
    for direction in args.directions:
        with tenant_scope(org), connection.cursor() as cursor:
            cursor.execute(
                "EXPLAIN (ANALYZE, BUFFERS) " + graph.BLAST_SQL[direction],
                {"start": estate.samples["vpc"], "org": org.pk, "depth": args.depth},
            )
            plan = "\n".join(f"  {row[0]}" for row in cursor.fetchall())
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) of the blast-radius CTE from the VPC, {direction}:")
        print(plan)
        used |= {i for i in ("edge_source_idx", "edge_target_idx", "uniq_edge") if i in plan}
    print(f"indexes in the plans: {', '.join(sorted(used)) or 'none'}")

    print(f"\n== summary (target: < 200 ms at depth {args.depth}) ==")
    for (direction, label), (median, reached, by_depth) in results.items():
        verdict = "met" if median < 200 else "missed"
        print(
            f"{direction:>12} {label:>8}: {median:8.2f} ms median, {reached:,} reached "
            f"{by_depth} -> {verdict}"
        )
    print(f"peak RSS: {_setup.peak_rss_mib():.1f} MiB")


if __name__ == "__main__":
    main()
