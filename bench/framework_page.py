"""Framework pages benchmark: server time of the framework pages at the demo's size.

Builds the `make run` demo's organization without moto_server: `setup_demo` (the demo
organization, its owner, members and teams), the demo's AWS accounts (a management account and
the four member accounts of demo.estate.ACCOUNT_PLANS, granted to the demo's teams as
setup_demo_estate does), and --resources resources (2,113 by default: the demo's 2,000 seeded
plus what AWS makes by itself) written through the real storage path
(inventory.storage.unit_writer, one unit per account, type and region, as a scan writes them).
The estate follows the demo seeder's shape: per account and region a VPC, its subnets and
security groups, one instance and its root volume, a golden AMI in the primary region, the
plans' load balancers, ECS, EKS, RDS, ElastiCache, EFS and CloudFront, AWS's default VPCs,
subnets and security groups (untagged), then the seeder's mix of cheap resources (instances
with their root volumes, data volumes, snapshots, AMIs, buckets, tables, functions) split
between the accounts and regions by the plans' weights. Every tagged resource draws its tags
from the demo's own demo.estate.Tagger (the same hygiene deck: 60% fully tagged, 13%
untagged, the rest with case-variant keys, misspelt values or missing keys). Then, as
setup_demo_estate does: the demo's costs, the four built-in frameworks enabled (their rules
installed), a full evaluation (findings and today's scores).

Timed, through django.test.Client with the project's middleware, logged in as the demo's
owner: the frameworks list, each framework's page, and every findings list a framework page
links to (filtered by framework and control, open), --repeat times each after one untimed
warm-up request. Prints the median and p95 wall time of each request, its SQL queries and
their time, the response size, and the other load. The tables are ANALYZEd first, as
autovacuum would after the bulk writes. With --existing nothing is built: the demo
organization already in the database is measured (e.g. one made by `manage.py setup_demo`
and `setup_demo_estate` against moto_server, to check the synthetic estate against the real).

    bench/reset_db.sh && .venv/bin/python bench/framework_page.py --resources 2113
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tagsense_bench")

import argparse  # noqa: E402
import html  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import unquote_plus  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

_setup.configure()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import Membership, Organization  # noqa: E402
from demo import estate as demo  # noqa: E402
from demo.management.commands import setup_demo_estate  # noqa: E402
from inventory import services, storage  # noqa: E402
from inventory.models import AwsAccount, Resource, ScanRun  # noqa: E402
from inventory.scanners.base import ResourceRecord  # noqa: E402
from policies.models import Finding, Framework, Rule  # noqa: E402
from tagsense.tenancy import context  # noqa: E402
from tagsense.tenancy.context import Actor  # noqa: E402
from tagsense.tenancy.db import tenant_scope  # noqa: E402

MEMBER_IDS = ("210000000001", "210000000002", "210000000003", "210000000004")
# What each placement of demo.estate (build.PLACE) makes besides its instances (approximately:
# a few dozen resources in all, whatever the estate's size).
PLACEMENTS = {
    "alb": (4, ("elasticloadbalancing:loadbalancer", "elasticloadbalancing:targetgroup")),
    "nlb": (3, ("elasticloadbalancing:loadbalancer", "elasticloadbalancing:targetgroup")),
    "classic-elb": (2, ("elb:loadbalancer",)),
    "ecs": (0, ("ecs:cluster", "ecs:service", "elasticloadbalancing:targetgroup")),
    "eks": (0, ("eks:cluster", "eks:nodegroup")),
    "rds-mysql": (0, ("rds:db",)),
    "rds-postgres": (0, ("rds:db",)),
    "rds-aurora": (0, ("rds:db", "rds:db", "rds:cluster", "rds:db")),
    "elasticache": (0, ("elasticache:cluster",)),
    "efs": (0, ("elasticfilesystem:file-system",)),
}
ELB = "arn:aws:elasticloadbalancing:{r}:{a}:"
ARN_PATTERNS = {
    "ec2:instance": "arn:aws:ec2:{r}:{a}:instance/i-{h}",
    "ec2:volume": "arn:aws:ec2:{r}:{a}:volume/vol-{h}",
    "ec2:snapshot": "arn:aws:ec2:{r}:{a}:snapshot/snap-{h}",
    "ec2:image": "arn:aws:ec2:{r}:{a}:image/ami-{h}",
    "ec2:vpc": "arn:aws:ec2:{r}:{a}:vpc/vpc-{h}",
    "ec2:subnet": "arn:aws:ec2:{r}:{a}:subnet/subnet-{h}",
    "ec2:security-group": "arn:aws:ec2:{r}:{a}:security-group/sg-{h}",
    "elasticloadbalancing:loadbalancer": ELB + "loadbalancer/app/lb-{h}/{h}",
    "elasticloadbalancing:targetgroup": ELB + "targetgroup/tg-{h}/{h}",
    "elb:loadbalancer": ELB + "loadbalancer/clb-{h}",
    "lambda:function": "arn:aws:lambda:{r}:{a}:function:fn-{h}",
    "ecs:cluster": "arn:aws:ecs:{r}:{a}:cluster/apps-{h}",
    "ecs:service": "arn:aws:ecs:{r}:{a}:service/apps/svc-{h}",
    "eks:cluster": "arn:aws:eks:{r}:{a}:cluster/platform-{h}",
    "eks:nodegroup": "arn:aws:eks:{r}:{a}:nodegroup/platform/ng-{h}/{h}",
    "s3:bucket": "arn:aws:s3:::bucket-{a}-{h}",
    "rds:db": "arn:aws:rds:{r}:{a}:db:db-{h}",
    "rds:cluster": "arn:aws:rds:{r}:{a}:cluster:cluster-{h}",
    "dynamodb:table": "arn:aws:dynamodb:{r}:{a}:table/table-{h}",
    "elasticache:cluster": "arn:aws:elasticache:{r}:{a}:cluster:cache-{h}",
    "elasticfilesystem:file-system": "arn:aws:elasticfilesystem:{r}:{a}:file-system/fs-{h}",
    "cloudfront:distribution": "arn:aws:cloudfront::{a}:distribution/E{h}",
}
GLOBAL_TYPES = {"cloudfront:distribution"}


class Estate:
    """The demo seeder's estate as ResourceRecords, per (account id, type, region)."""

    def __init__(self, total: int, seed: int = 7):
        self.units: dict[tuple[str, str, str], list[ResourceRecord]] = defaultdict(list)
        self.serial = 0
        self.regions = demo.DEFAULT_REGIONS
        members = [
            (plan, account_id, random.Random(f"{seed}:{plan.slug}"))
            for plan, account_id in zip(demo.ACCOUNT_PLANS, MEMBER_IDS, strict=True)
        ]
        self.taggers = {a: demo.Tagger(rng, plan) for plan, a, rng in members}
        for position, (plan, account_id, rng) in enumerate(members):
            self.skeleton(position, plan, account_id, rng)
        for region in self.regions:  # the management account holds AWS's defaults only
            self.defaults(demo.MANAGEMENT_ACCOUNT_ID, region, vpcs=1)
        budget = max(0, total - self.count())
        shares = demo.largest_remainder(budget, [plan.weight for plan, _, _ in members])
        for position, ((plan, account_id, rng), share) in enumerate(
            zip(members, shares, strict=True)
        ):
            parts = demo.largest_remainder(share, [0.5, 0.3, 0.2])
            for index, part in enumerate(parts):
                self.fill(self.region(position, index), plan, account_id, rng, part)

    def count(self) -> int:
        return sum(len(records) for records in self.units.values())

    def by_type(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (_, resource_type, _), records in self.units.items():
            counts[resource_type] += len(records)
        return counts

    def region(self, position: int, index: int) -> str:
        return self.regions[(position + index) % len(self.regions)]

    def add(self, account_id, resource_type, region, tags, config=None) -> None:
        self.serial += 1
        arn = ARN_PATTERNS[resource_type].format(r=region, a=account_id, h=f"{self.serial:017x}")
        self.units[(account_id, resource_type, region)].append(
            ResourceRecord(
                arn=arn,
                resource_type=resource_type,
                resource_id=arn.rsplit("/", 1)[-1].rsplit(":", 1)[-1],
                region="global" if resource_type in GLOBAL_TYPES else region,
                name=tags.get("Name", ""),
                tags=tags,
                config=config or {},
            )
        )

    def fleet(self, region, plan, account_id, rng, app, count) -> None:
        """count instances of one app, each with its root volume (one card each)."""
        tagger = self.taggers[account_id]
        env = tagger.environment()
        instance_type = rng.choice(demo.INSTANCE_TYPES)
        for _ in range(count):
            tags = tagger.tags(app, env, f"{app}-{env}")
            config = {"State": "running", "InstanceType": instance_type}
            self.add(account_id, "ec2:instance", region, tags, config)
            self.add(account_id, "ec2:volume", region, tagger.tags(app, env, f"{app}-{env}-root"))

    def image(self, region, account_id, app) -> None:
        self.add(account_id, "ec2:image", region, self.taggers[account_id].tags(app))
        self.add(account_id, "ec2:snapshot", region, {})  # the AMI's own, untagged

    def defaults(self, account_id, region, vpcs) -> None:
        """What AWS makes by itself: the default VPC and its subnets (one per zone), and the
        default security group of each of the `vpcs` VPCs. Never tagged."""
        self.add(account_id, "ec2:vpc", region, {})
        for _ in range(6 if region == "us-east-1" else 3):
            self.add(account_id, "ec2:subnet", region, {})
        for _ in range(vpcs):
            self.add(account_id, "ec2:security-group", region, {})

    def skeleton(self, position, plan, account_id, rng) -> None:
        tagger = self.taggers[account_id]
        for index in range(len(self.regions)):
            region = self.region(position, index)
            env = tagger.environment()
            self.add(account_id, "ec2:vpc", region, tagger.tags("core-network", env, "vpc"))
            for _ in range(4 if index == 0 else 2):
                self.add(account_id, "ec2:subnet", region, tagger.tags("core-network", env, "sn"))
            for _ in range(3 if index == 0 else 1):
                tags = tagger.tags("core-network", env, "sg")
                self.add(account_id, "ec2:security-group", region, tags)
            app = rng.choice(plan.apps)
            self.fleet(region, plan, account_id, rng, app, 1)
            if index == 0:
                self.image(region, account_id, app)
            self.defaults(account_id, region, vpcs=2)
        for index, kinds in sorted(plan.placements.items()):
            region = self.region(position, index)
            for kind in kinds:
                instances, types = PLACEMENTS[kind]
                if instances:
                    self.fleet(region, plan, account_id, rng, plan.apps[0], instances)
                for resource_type in types:
                    self.add(account_id, resource_type, region, tagger.tags(plan.apps[0]))
        for origin in plan.distributions:
            region = self.region(position, 0)
            if origin == "s3":
                self.add(account_id, "s3:bucket", region, tagger.tags(plan.apps[0]))
            self.add(account_id, "cloudfront:distribution", region, tagger.tags(plan.apps[0]))

    def fill(self, region, plan, account_id, rng, budget) -> None:
        """The seeder's mix of cheap resources (demo.estate.build.fill)."""
        tagger = self.taggers[account_id]
        mix = {"instance": 0.46, "volume": 0.10, "snapshot": 0.12, "image": 0.06}
        mix |= {"bucket": 0.08, "table": 0.08, "function": 0.10}
        units = dict(zip(mix, demo.largest_remainder(budget, list(mix.values())), strict=True))
        instances = math.ceil(units["instance"] / 2)
        while instances > 0:
            size = min(instances, rng.randint(2, 8))
            self.fleet(region, plan, account_id, rng, rng.choice(plan.apps), size)
            instances -= size
        for _ in range(math.ceil(units["image"] / 2)):
            self.image(region, account_id, rng.choice(plan.apps))
        for kind, resource_type in (
            ("volume", "ec2:volume"),
            ("snapshot", "ec2:snapshot"),
            ("bucket", "s3:bucket"),
            ("table", "dynamodb:table"),
            ("function", "lambda:function"),
        ):
            for _ in range(units[kind]):
                app = rng.choice(plan.apps)
                self.add(account_id, resource_type, region, tagger.tags(app))


def build_organization(args) -> tuple[Organization, Estate, dict]:
    """The demo organization, its accounts, the estate, the frameworks, findings and scores."""
    timings = {}
    start = time.perf_counter()
    call_command("setup_demo", stdout=io.StringIO())
    org = Organization.objects.get(slug=settings.TAGSENSE_DEMO_ORG_SLUG)
    with tenant_scope(org):
        if Resource.objects.for_org(org).exists():
            sys.exit("the demo organization already holds resources: run bench/reset_db.sh first")
    estate = Estate(args.resources, seed=args.seed)
    actor = Actor.system("bench")
    with context.use(actor=actor), tenant_scope(org, actor=actor):
        accounts = {}
        accounts[demo.MANAGEMENT_ACCOUNT_ID] = services.register_account(
            org,
            account_id=demo.MANAGEMENT_ACCOUNT_ID,
            name="Management",
            regions=list(demo.DEFAULT_REGIONS),
            is_management=True,
            ou_path="Root",
        )
        for plan, account_id in zip(demo.ACCOUNT_PLANS, MEMBER_IDS, strict=True):
            accounts[account_id] = services.register_account(
                org,
                account_id=account_id,
                name=plan.name,
                role_arn=f"arn:aws:iam::{account_id}:role/{demo.READ_ONLY_ROLE}",
                regions=list(demo.DEFAULT_REGIONS),
                ou_path=f"Root/{plan.ou}",
            )
        setup_demo_estate._grant_demo_accounts(org)
        scan = ScanRun.objects.create(
            organization=org, started_by="bench", trigger="demo", status=ScanRun.RUNNING
        )
    timings["organization and accounts"] = time.perf_counter() - start

    start = time.perf_counter()
    counts = storage.Counts()
    for (account_id, resource_type, region), records in sorted(estate.units.items()):
        with tenant_scope(org):
            writer = storage.unit_writer(
                account=accounts[account_id],
                resource_type=resource_type,
                region=region,
                scan=scan,
                started=timezone.now(),
            )
        for i in range(0, len(records), 5000):
            with tenant_scope(org):
                counts.add(writer.write(records[i : i + 5000], now=timezone.now()))
        with tenant_scope(org):
            writer.finish(now=timezone.now())
    with tenant_scope(org):
        ScanRun.objects.filter(pk=scan.pk).update(
            status=ScanRun.SUCCEEDED, finished_at=timezone.now(), new=counts.new
        )
    timings["resources written"] = time.perf_counter() - start

    start = time.perf_counter()
    with context.use(actor=actor), tenant_scope(org, actor=actor):
        costs = setup_demo_estate._demo_costs(org)
        frameworks = setup_demo_estate._frameworks_and_scores(org)
    timings["costs, frameworks, evaluation, scores"] = time.perf_counter() - start
    print(costs)
    print(frameworks)
    return org, estate, timings


def analyze() -> None:
    """ANALYZE the tables the pages read, as autovacuum would after these bulk writes (the
    machine runs with autovacuum off). Not timed."""
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


class QueryMeter:
    """Counts the SQL statements of a request and their time (an execute wrapper: no debug
    cursor, a few microseconds a statement)."""

    def __init__(self):
        self.queries = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries += 1
            self.seconds += time.perf_counter() - start


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def measure(client: Client, url: str, repeat: int, expect: str) -> dict:
    response = client.get(url)  # warm-up: templates compiled, caches filled
    body = response.content.decode()
    if response.status_code != 200 or expect not in body:
        sys.exit(f"GET {url}: {response.status_code}, {expect!r} not in the page")
    walls, sql, queries = [], [], []
    for _ in range(repeat):
        meter = QueryMeter()
        with connection.execute_wrapper(meter):
            start = time.perf_counter()
            response = client.get(url)
            walls.append(time.perf_counter() - start)
        assert response.status_code == 200, (url, response.status_code)  # noqa: S101
        sql.append(meter.seconds)
        queries.append(meter.queries)
    return {
        "url": url,
        "median": 1000 * statistics.median(walls),
        "p95": 1000 * p95(walls),
        "max": 1000 * max(walls),
        "sql": 1000 * statistics.median(sql),
        "queries": max(queries),
        "bytes": len(response.content),
        "body": body,
    }


FINDINGS_LINK = re.compile(r'href="([^"]*/findings/\?[^"]*framework=[^"]*)"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=2113)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--existing",
        action="store_true",
        help="measure the demo organization already in the database (e.g. one made by "
        "setup_demo and setup_demo_estate against moto_server) instead of building one",
    )
    args = parser.parse_args()

    _setup.print_machine()
    db = connection.settings_dict["NAME"]
    print(f"database: {db}")
    if args.existing:
        org = Organization.objects.get(slug=settings.TAGSENSE_DEMO_ORG_SLUG)
        timings, load = {}, None
    else:
        with _setup.Interference(database=str(db)) as load:
            org, _, timings = build_organization(args)
    with tenant_scope(org):
        by_type = Counter(
            dict(
                Resource.objects.for_org(org)
                .live()
                .order_by()
                .values("resource_type")
                .annotate(n=Count("id"))
                .values_list("resource_type", "n")
            )
        )
    resources = sum(by_type.values())
    types = ", ".join(f"{t} {n}" for t, n in by_type.most_common())
    print(f"estate: {resources:,} resources ({types})")
    with tenant_scope(org):
        open_findings = Finding.objects.for_org(org).filter(status="open").count()
        rules = Rule.objects.for_org(org).count()
        frameworks = list(Framework.objects.for_org(org).order_by("slug"))
        owner = (
            Membership.objects.for_org(org).filter(role="owner").select_related("user").first().user
        )
        accounts = AwsAccount.objects.for_org(org).count()
    print(
        f"organization {org.slug}: {accounts} accounts, {rules} rules, "
        f"{len(frameworks)} frameworks, {open_findings:,} open findings"
    )
    for name, seconds in timings.items():
        print(f"  built: {name} {seconds:.1f} s (not a target)")
    if load is not None:
        print(f"  {load.summary()}")
    analyze()

    client = Client(HTTP_HOST="127.0.0.1")  # allowed by every settings module
    client.force_login(owner)
    results = []
    with _setup.Interference(database=str(db)) as load:
        listing = reverse("framework-list", kwargs={"org_slug": org.slug})
        results.append(("frameworks list", measure(client, listing, args.repeat, "Frameworks")))
        links = []
        for framework in frameworks:
            url = reverse("framework-detail", kwargs={"org_slug": org.slug, "slug": framework.slug})
            result = measure(client, url, args.repeat, framework.name)
            results.append((f"framework {framework.slug}", result))
            for link in FINDINGS_LINK.findall(result["body"]):
                links.append((framework.slug, html.unescape(link)))
        for slug, link in dict.fromkeys(links):
            control = unquote_plus(re.search(r"control=([^&]*)", link).group(1))
            result = measure(client, link, args.repeat, "Findings")
            results.append((f"findings {slug} {control}", result))

    print(f"\n== server time, {args.repeat} requests each after a warm-up (ms) ==")
    print(f"{'page':<46} {'median':>8} {'p95':>8} {'max':>8} {'SQL':>7} {'queries':>8} {'KiB':>6}")
    for label, r in results:
        print(
            f"{label:<46} {r['median']:8.1f} {r['p95']:8.1f} {r['max']:8.1f} {r['sql']:7.1f} "
            f"{r['queries']:8d} {r['bytes'] / 1024:6.0f}"
        )
    print(load.summary())
    worst = max(results, key=lambda item: item[1]["p95"])
    print(
        f"\n== summary: {resources:,} resources, {open_findings:,} open findings ==\n"
        f"slowest p95: {worst[0]} {worst[1]['p95']:.1f} ms (target <= 300 ms); "
        f"over 300 ms at the median: "
        f"{sum(r['median'] > 300 for _, r in results)} of {len(results)} pages"
    )


if __name__ == "__main__":
    main()
