"""End-to-end runner benchmark against a local EC2 endpoint.

A child process serves EC2 DescribeInstances (query protocol, XML, NextToken paging) on
127.0.0.1 from pages rendered in memory before the clock starts. This process points botocore
at it (AWS_ENDPOINT_URL_EC2) and runs the real runner: plan_scan for one account, one region and
`ec2:instance`, then run_scan_inline with workers=1, so botocore's HTTP, XML parsing and
pagination, the scanner, storage (unit_writer) and finish_scan are all in the loop. The estate
is scanned twice: a first scan (every instance new) and a re-scan (nothing changed).

    .venv/bin/python bench/runner_local.py --resources 10000
    .venv/bin/python bench/runner_local.py --resources 100000

The endpoint lives in its own process so its pre-rendered pages do not count in this process's
RSS, which is what is reported.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tagsense_bench")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import datetime as dt  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import parse_qs  # noqa: E402
from xml.sax.saxutils import escape  # noqa: E402

ACCOUNT_ID = "210987654321"
REGION = "eu-west-1"
REGIONS = ("eu-west-1", "us-east-1", "eu-central-1", "us-west-2")
PAGE_SIZE = 1000
TEAMS = ("payments", "search", "platform", "data", "identity", "growth", "mobile", "infra")
APPS = ("checkout", "catalog", "api-gateway", "etl", "auth", "recommender", "billing", "web")
ENVS = ("prod", "prod", "staging", "dev", "dev", "test", "sandbox")
TYPES = ("t3.micro", "t3.medium", "m6i.large", "m6i.xlarge", "c6g.2xlarge", "r6i.large")
LAUNCH = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)


# --- the endpoint (child process) -----------------------------------------------------------


def instance_xml(i: int) -> str:
    team, app, env = TEAMS[i % 8], APPS[(i // 7) % 8], ENVS[(i // 3) % 7]
    iid = f"i-{i:017x}"
    vpc = f"vpc-{(i // 20000) % 50:017x}"
    subnet = f"subnet-{(i // 250) % 4000:017x}"
    sg = f"sg-{(i // 100) % 600:017x}"
    vol = f"vol-{i:017x}"
    eni = f"eni-{i:017x}"
    ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    az = f"{REGION}{'abc'[i % 3]}"
    launch = (LAUNCH + dt.timedelta(minutes=i % 500_000)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    arch = "arm64" if TYPES[i % 6].startswith("c6g") else "x86_64"
    state = ("16", "running") if i % 10 else ("80", "stopped")
    tags = {
        "Name": f"{app}-{env}-{i:07d}",
        "Environment": env,
        "Owner": f"{team}-lead-{(i // 11) % 40}@example.com",
        "CostCenter": f"CC-{1000 + (i // 97) % 300}",
        "Application": app,
        "Team": team,
        "Project": f"{app}-{2023 + i % 3}",
        "ManagedBy": "terraform" if i % 5 else "cloudformation",
    }
    tag_xml = "".join(
        f"<item><key>{escape(k)}</key><value>{escape(v)}</value></item>" for k, v in tags.items()
    )
    return (
        f"<item><instanceId>{iid}</instanceId><imageId>ami-0a1b2c3d4e5f{i % 16:x}0000</imageId>"
        f"<instanceState><code>{state[0]}</code><name>{state[1]}</name></instanceState>"
        f"<privateDnsName>ip-{ip.replace('.', '-')}.{REGION}.compute.internal</privateDnsName>"
        f"<dnsName/><reason/><keyName>deploy-{team}</keyName><amiLaunchIndex>0</amiLaunchIndex>"
        f"<productCodes/><instanceType>{TYPES[i % 6]}</instanceType>"
        f"<launchTime>{launch}</launchTime>"
        f"<placement><availabilityZone>{az}</availabilityZone><groupName/>"
        f"<tenancy>default</tenancy></placement><monitoring><state>disabled</state></monitoring>"
        f"<subnetId>{subnet}</subnetId><vpcId>{vpc}</vpcId><privateIpAddress>{ip}"
        f"</privateIpAddress><sourceDestCheck>true</sourceDestCheck>"
        f"<groupSet><item><groupId>{sg}</groupId><groupName>{app}-{env}</groupName></item>"
        f"</groupSet><architecture>{arch}</architecture><rootDeviceType>ebs</rootDeviceType>"
        f"<rootDeviceName>/dev/xvda</rootDeviceName><blockDeviceMapping><item>"
        f"<deviceName>/dev/xvda</deviceName><ebs><volumeId>{vol}</volumeId><status>attached"
        f"</status><attachTime>{launch}</attachTime><deleteOnTermination>true"
        f"</deleteOnTermination></ebs></item></blockDeviceMapping>"
        f"<virtualizationType>hvm</virtualizationType><clientToken/><tagSet>{tag_xml}</tagSet>"
        f"<hypervisor>xen</hypervisor><networkInterfaceSet><item>"
        f"<networkInterfaceId>{eni}</networkInterfaceId><subnetId>{subnet}</subnetId>"
        f"<vpcId>{vpc}</vpcId><ownerId>{ACCOUNT_ID}</ownerId><status>in-use</status>"
        f"<privateIpAddress>{ip}</privateIpAddress><sourceDestCheck>true</sourceDestCheck>"
        f"<groupSet><item><groupId>{sg}</groupId><groupName>{app}-{env}</groupName></item>"
        f"</groupSet><attachment><attachmentId>eni-attach-{i:017x}</attachmentId>"
        f"<deviceIndex>0</deviceIndex><status>attached</status><attachTime>{launch}"
        f"</attachTime><deleteOnTermination>true</deleteOnTermination></attachment>"
        f"</item></networkInterfaceSet><ebsOptimized>false</ebsOptimized>"
        f"<enaSupport>true</enaSupport><cpuOptions><coreCount>1</coreCount>"
        f"<threadsPerCore>2</threadsPerCore></cpuOptions><metadataOptions><state>applied"
        f"</state><httpTokens>required</httpTokens><httpPutResponseHopLimit>2"
        f"</httpPutResponseHopLimit><httpEndpoint>enabled</httpEndpoint></metadataOptions>"
        f"</item>"
    )


def render_pages(total: int, page_size: int) -> list[bytes]:
    pages = []
    count = (total + page_size - 1) // page_size
    for p in range(count):
        reservations, i = [], p * page_size
        end = min(i + page_size, total)
        while i < end:
            n = min(1 + i % 4, end - i)  # reservations of 1 to 4 instances
            body = "".join(instance_xml(j) for j in range(i, i + n))
            reservations.append(
                f"<item><reservationId>r-{i:017x}</reservationId><ownerId>{ACCOUNT_ID}</ownerId>"
                f"<groupSet/><instancesSet>{body}</instancesSet></item>"
            )
            i += n
        token = f"<nextToken>page-{p + 1}</nextToken>" if p + 1 < count else ""
        pages.append(
            (
                '<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse '
                'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
                f"<requestId>bench-{p}</requestId><reservationSet>{''.join(reservations)}"
                f"</reservationSet>{token}</DescribeInstancesResponse>"
            ).encode()
        )
    return pages


def serve(total: int, page_size: int) -> None:
    pages = render_pages(total, page_size) or [render_pages(1, 1)[0]]
    stats = {"requests": 0, "bytes": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects

        def do_POST(self):  # noqa: N802 - the http.server API
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            action = form.get("Action", [""])[0]
            if action != "DescribeInstances":
                body = (
                    b"<Response><Errors><Error><Code>InvalidAction</Code><Message>only "
                    b"DescribeInstances here</Message></Error></Errors></Response>"
                )
                self._reply(400, body)
                return
            token = form.get("NextToken", ["page-0"])[0]
            body = pages[int(token.removeprefix("page-"))]
            stats["requests"] += 1
            stats["bytes"] += len(body)
            self._reply(200, body)

        def _reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/xml;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    size = sum(len(p) for p in pages)
    print(f"{server.server_address[1]} {len(pages)} {size}", flush=True)
    deadline = time.monotonic() + 3600  # bounded: never outlives the benchmark by much
    server.timeout = 1
    while time.monotonic() < deadline and not sys.stdin.closed:
        server.handle_request()
        if _parent_gone():
            break
    server.server_close()


def _parent_gone() -> bool:
    return os.getppid() == 1


# --- the benchmark (this process) -----------------------------------------------------------


def start_endpoint(total: int, page_size: int) -> tuple[subprocess.Popen, int, int, int]:
    child = subprocess.Popen(  # noqa: S603 - this same script, with fixed arguments
        [sys.executable, __file__, "--serve", "--resources", str(total), "--page", str(page_size)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    port, count, size = (int(x) for x in child.stdout.readline().split())
    return child, port, count, size


def vacuum_analyze() -> float:
    """As autovacuum would between two real scans (it may be off on a CI machine); run as the
    login (the owner): the app role may not vacuum."""
    import psycopg

    start = time.perf_counter()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        for table in ("inventory_resource", "inventory_tagevent", "inventory_edge"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - start


def bench(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _setup

    regions = REGIONS[: args.regions]
    per_region = args.resources // len(regions)
    t_render = time.perf_counter()
    child, port, page_count, size = start_endpoint(per_region, args.page)
    t_render = time.perf_counter() - t_render
    os.environ["AWS_ENDPOINT_URL_EC2"] = f"http://127.0.0.1:{port}"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")  # noqa: S105 - the local endpoint's
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(name, None)
    try:
        _setup.configure()
        from inventory import runner, storage
        from inventory.models import ScanUnit
        from tagsense.tenancy.context import Actor
        from tagsense.tenancy.db import tenant_scope

        _setup.print_machine()
        print(
            f"endpoint http://127.0.0.1:{port}: {page_count} pages of {args.page} instances, "
            f"{size / 2**20:.1f} MiB of XML, rendered in {t_render:.1f} s (child process), "
            f"served for each of {len(regions)} regions: {per_region * len(regions):,} instances"
        )
        mode = f"{args.workers} worker {'processes' if args.processes else 'threads'}"
        print(f"runner: run_scan_inline, {len(regions)} units (one per region), {mode}")
        org, account = _setup.make_account("runner", ACCOUNT_ID, regions=regions)
        actor = Actor.system("bench")

        timings = {"store": 0.0, "missing": 0.0, "pages": 0, "rss_pages": 0.0}
        writer_class = storage.PgUnitWriter
        write, finish = writer_class.write, writer_class.finish

        def timed_write(self, records, now):
            start = time.perf_counter()
            try:
                return write(self, records, now)
            finally:
                timings["store"] += time.perf_counter() - start
                timings["pages"] += 1
                timings["rss_pages"] = max(timings["rss_pages"], _setup.current_rss_mib())

        def timed_finish(self, now):
            start = time.perf_counter()
            try:
                return finish(self, now)
            finally:
                timings["missing"] += time.perf_counter() - start

        writer_class.write, writer_class.finish = timed_write, timed_finish
        # Warm up: botocore loads the EC2 service model once per process (~0.5 s); not timed.
        from inventory import aws

        aws.base_session(REGION).client("ec2", region_name=REGION, config=aws.CLIENT_CONFIG)
        print(f"RSS after set-up: current {_setup.current_rss_mib():.1f} MiB")

        for label in ("first scan", "re-scan (unchanged)"):
            if label != "first scan" and not args.no_vacuum:
                print(f"\nVACUUM ANALYZE between the scans: {vacuum_analyze():.1f} s (not timed)")
            timings.update(store=0.0, missing=0.0, pages=0, rss_pages=0.0)
            interference = _setup.Interference().start()
            profiler = cProfile.Profile() if args.cprofile and label == "first scan" else None
            if profiler:
                profiler.enable()
            start = time.perf_counter()
            with tenant_scope(org):
                scan = runner.plan_scan(
                    org,
                    scope=runner.Scope(
                        account_ids=(ACCOUNT_ID,), regions=regions, types=("ec2:instance",)
                    ),
                    actor=actor,
                    trigger="bench",
                )
            planned = time.perf_counter()
            stages = {}
            run_units, finish_scan = runner.run_units, runner.finish_scan

            def timed(name, function, stages=stages):
                def call(*a, **kw):
                    t0 = time.perf_counter()
                    try:
                        return function(*a, **kw)
                    finally:
                        stages[name] = time.perf_counter() - t0

                return call

            runner.run_units = timed("run_units", run_units)
            runner.finish_scan = timed("finish_scan", finish_scan)
            try:
                scan = runner.run_scan_inline(
                    scan, actor=actor, workers=args.workers, processes=args.processes
                )
            finally:
                runner.run_units, runner.finish_scan = run_units, finish_scan
            elapsed = time.perf_counter() - start
            if profiler:
                profiler.disable()
            interference.stop()
            with tenant_scope(org):
                units = list(ScanUnit.objects.filter(scan=scan))
            seen = sum(u.seen for u in units)
            print(f"\n== {label}: {seen:,} instances in {len(units)} units ==")
            for unit in units:
                print(
                    f"unit {unit.region} {unit.status}: seen={unit.seen:,} new={unit.new:,} "
                    f"changed={unit.changed:,} unchanged={unit.unchanged:,} "
                    f"deleted={unit.deleted:,} api_calls={unit.api_calls}"
                )
                if unit.error:
                    print(f"unit error: {unit.error_code} {unit.error[:300]}")
            print(f"scan {scan.status}")
            print(f"end to end: {elapsed:8.2f} s  {seen / elapsed:10,.0f} resources/s")
            print(
                f"  plan_scan {planned - start:.2f} s, the units (run_units) "
                f"{stages.get('run_units', 0):.2f} s, finish_scan "
                f"{stages.get('finish_scan', 0):.2f} s"
            )
            if not args.processes:  # the timers run in this process only
                rest = elapsed - timings["store"] - timings["missing"]
                print(
                    f"  storing pages {timings['store']:.2f} s, closing units (finish) "
                    f"{timings['missing']:.2f} s, the rest (HTTP, botocore parsing, scanner "
                    f"records, plan/finish) {rest:.2f} s = {1e6 * rest / max(seen, 1):.0f} "
                    "us/resource"
                )
                print(
                    f"  RSS: highest current RSS after a page {timings['rss_pages']:.1f} MiB, "
                    f"peak RSS of the process so far {_setup.peak_rss_mib():.1f} MiB"
                )
            else:
                children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
                print(
                    f"  peak RSS: this process {_setup.peak_rss_mib():.1f} MiB, the largest "
                    f"worker process so far {children:.1f} MiB"
                )
            print(f"  {interference.summary()}")
            if profiler:
                print("cProfile of the first scan, top 25 by internal time:")
                pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
                profiler.dump_stats(args.cprofile)
    finally:
        child.stdin.close()
        child.terminate()
        child.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--page", type=int, default=PAGE_SIZE, help="instances per page")
    parser.add_argument(
        "--regions", type=int, default=2, help="units: the estate is split over this many regions"
    )
    parser.add_argument("--workers", type=int, default=2, help="units scanned at once")
    parser.add_argument(
        "--threads",
        dest="processes",
        action="store_false",
        help="worker threads instead of worker processes",
    )
    parser.add_argument(
        "--no-vacuum", action="store_true", help="skip VACUUM ANALYZE between the two scans"
    )
    parser.add_argument("--cprofile", metavar="PATH", help="profile the first scan into PATH")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.resources, args.page)
    else:
        bench(args)


if __name__ == "__main__":
    main()
