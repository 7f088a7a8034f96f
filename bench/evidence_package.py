"""Evidence package benchmark (issue 16): build, in a process of its own, the signed package of
an organization of --resources resources (1.6 findings each), --days days of recorded history
and --audit-events audit events, then verify it with the standalone script.

Seeding (not timed): the estate of bench/policy_eval.py (25 rules, every built-in framework
enabled) written through inventory.storage at the first day of the history with the clock set
there (tagsense.clock), a full evaluation, then one scan a day changing --changed instances
(their hygiene class shifts each day, so findings open, resolve and reopen) followed by the
after-scan evaluation and the day's score snapshot, each with the clock at that day: the
ledger and the snapshots are written by the production code. Then --audit-events audit events
spread over the period, appended to the organization's chain in bulk with the hashes
audit.record would compute (checked by audit.services.verify_chain).

Timed: (1) evidence.package.build for every framework over the whole organization and the
last --period days, in a fresh Python process (its peak RSS is the worker's); (2) the
standalone verifier (evidence/verify_package.py, python -I) on the package.

    bench/reset_db.sh && .venv/bin/python bench/evidence_package.py --resources 1000000

Targets: build <= 60 s with peak RSS <= 300 MiB; verification <= 20 s.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.test")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tagsense_bench")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402
import history_at  # noqa: E402
import policy_eval  # noqa: E402  (configures Django through _setup)
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from tagsense import clock  # noqa: E402
from tagsense.tenancy.db import owner_mode, tenant_scope  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def seed_history(org, account, args, start) -> None:
    """One scan a day after the first (bench/history_at.py's replay_day: --changed instances of
    region 0 shifted by the day, and the evaluation after it), then the day's snapshot."""
    from policies.scoring import scores

    for day in range(1, args.days):
        moment = start + timedelta(days=day)
        history_at.replay_day(org, account, moment, day, args.changed)
        with clock.at(moment), tenant_scope(org):
            scores.take_snapshot(org)
        if day % 10 == 0:
            print(f"  history: day {day} of {args.days}", flush=True)


def seed_audit(org, count: int, start) -> None:
    """`count` events appended to the organization's chain exactly as audit.record writes them
    (seq, HMAC hash, keyless digest), by COPY; created_at spread from `start` to now. Checked
    afterwards by audit.services.verify_chain."""
    from audit.models import GENESIS_HASH, AuditEvent, chain_key

    key = chain_key()
    with tenant_scope(org):
        last = AuditEvent.objects.chain(org.pk).order_by("-seq").first()
    seq = last.seq if last else 0
    prev_hash = last.hash if last else GENESIS_HASH
    prev_digest = last.digest if last else GENESIS_HASH
    span = (timezone.now() - start).total_seconds()
    columns = [
        "organization_id", "seq", "created_at", "actor_kind", "actor_id", "actor_label",
        "action", "target_type", "target_id", "target_repr", "data", "ip_address",
        "user_agent", "request_id", "prev_hash", "hash", "digest",
    ]  # fmt: skip
    actions = ("inventory.scan", "policy.evaluate", "policy.exemption_request")
    copy_sql = f"COPY audit_auditevent ({', '.join(columns)}) FROM STDIN"
    # COPY refuses tables under row-level security: the owner's connection writes (seeding only).
    with owner_mode(), connection.cursor() as cursor, cursor.cursor.copy(copy_sql) as copy:
        for i in range(count):
            seq += 1
            event = AuditEvent(
                organization=org,
                seq=seq,
                created_at=start + timedelta(seconds=span * i / count),
                actor_kind="user",
                actor_id=str(1 + i % 40),
                actor_label=f"member{i % 40}@example.com",
                action=actions[i % 3],
                target_type="scan",
                target_id=str(i),
                target_repr=f"scan {i}",
                data={"n": str(i), "note": "bench"},
                ip_address="203.0.113.7" if i % 2 else "2001:db8::1",
                user_agent="bench",
                request_id=f"req-{i}",
                prev_hash=prev_hash,
            )
            event.hash = event.compute_hash(key)
            event.digest = event.compute_digest(prev_digest)
            row = [getattr(event, c) for c in columns]
            row[columns.index("data")] = json.dumps(event.data)
            copy.write_row(row)
            prev_hash, prev_digest = event.hash, event.digest


def build(export_id: int) -> None:
    """The timed build, in this (fresh) process."""
    from evidence import package
    from evidence.models import EvidenceExport
    from tagsense.tenancy.db import all_tenants

    with all_tenants():
        export = EvidenceExport.objects.select_related("organization").get(pk=export_id)
    stages: dict[str, float] = {}  # each stage's wall seconds, in order
    current = ["start", time.perf_counter()]

    def on_progress(percent: int, stage: str) -> None:
        name, now = stage.split(":")[0], time.perf_counter()
        if name != current[0]:
            stages[current[0]] = stages.get(current[0], 0.0) + now - current[1]
            current[:] = [name, now]

    parts: list[dict[str, object]] = []  # each part built beside the others (Background)
    written = package._written

    def timed(work, writers):
        """package._written, timed: the part's wall span, its thread's CPU and its own
        connection's PostgreSQL backend's CPU (the connection is the thread's, opened for it)."""
        began, cpu = time.perf_counter(), time.thread_time()
        try:
            return written(work, writers)
        finally:
            parts.append(
                {
                    "part": threading.current_thread().name,
                    "from": began - start,
                    "to": time.perf_counter() - start,
                    "python": time.thread_time() - cpu,
                    "postgres": _backend_cpu(),
                }
            )

    package._written = timed
    start = time.perf_counter()
    # As the worker's task runs it: outside any transaction (each file opens its own tenant
    # scope; inside one, the audit log could not be written beside the other files).
    package.build(export, on_progress)
    wall = time.perf_counter() - start
    main = {"part": "build (main thread)", "from": 0.0, "to": wall, "python": time.thread_time()}
    parts.append({**main, "postgres": _backend_cpu()})
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The audit log's own process (evidence_audit_log), the build's only child.
    parts.append({"part": "audit log process", "python": usage.ru_utime + usage.ru_stime})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = usage.ru_maxrss / 1024
    path = package.package_path(export)
    figures = {"wall": wall, "peak_rss_mib": peak, "child_peak_rss_mib": child}
    print(json.dumps({**figures, "path": str(path), "stages": stages, "parts": parts}))


def _backend_cpu() -> float | None:
    """CPU seconds of this thread's connection's PostgreSQL backend so far (a local server)."""
    if connection.connection is None:
        return None
    pid = connection.connection.info.backend_pid
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seed(args):
    """The organization, its estate, history and audit log (not timed). Returns the export."""
    from evidence.models import EvidenceExport
    from policies import evaluation, services

    first_day = (timezone.now() - timedelta(days=args.days)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    org, account = _setup.make_account("evidence", regions=policy_eval.REGIONS[: args.workers])
    seed_audit(org, args.audit_events, first_day)
    print(f"audit: {args.audit_events:,} events appended", flush=True)
    with clock.at(first_day - timedelta(hours=1)):
        rules = policy_eval.make_rules(org)
        history_at.versions(org, rules, first_day - timedelta(hours=1))  # make_rules writes none
        with tenant_scope(org):
            frameworks = []
            for framework_id in ("soc2", "pci-dss-4.0", "iso-27001-2022", "hipaa"):
                framework = services.enable_framework(org, framework_id)
                frameworks.append(framework.slug)
    print(f"organization {org.pk}: {len(rules)} rules, frameworks {frameworks}", flush=True)
    with clock.at(first_day):
        policy_eval.seed(org, account, args)
    policy_eval.vacuum_analyze()
    with clock.at(first_day + timedelta(minutes=30)), tenant_scope(org):
        result = evaluation.evaluate_organization(org, trigger="bench")
    print(f"day 0: {result}", flush=True)
    seed_history(org, account, args, first_day)
    policy_eval.vacuum_analyze()
    now = timezone.now()
    with tenant_scope(org):
        export = EvidenceExport.objects.create(
            organization=org,
            scope={"frameworks": frameworks, "controls": [], "teams": [], "accounts": []},
            period_start=now - timedelta(days=args.period),
            period_end=now,
            requested_by_label="bench",
            requested_at=now,
            status=EvidenceExport.BUILDING,
        )
    return export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--changed", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--period", type=int, default=90)
    parser.add_argument("--audit-events", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--export", type=int, help="build this export again (skip seeding)")
    parser.add_argument("--build-only", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build(args.build_only)
        return
    _setup.print_machine()
    db = connection.settings_dict["NAME"]
    if args.export:
        from evidence.models import EvidenceExport
        from tagsense.tenancy.db import all_tenants

        with all_tenants():
            export = EvidenceExport.objects.get(pk=args.export)
    else:
        started = time.perf_counter()
        export = seed(args)
        print(f"seeded in {time.perf_counter() - started:.0f} s (not a target)")
    from audit.services import verify_chain
    from policies.models import Finding, FindingEvent

    with tenant_scope(export.organization):
        findings = Finding.objects.for_org(export.organization).count()
        events = FindingEvent.objects.for_org(export.organization).count()
        report = verify_chain(export.organization_id, store=None)
    print(f"export {export.pk}: {findings:,} findings, {events:,} ledger events; {report}")

    with _setup.Interference(database=db) as load:
        out = subprocess.run(
            [sys.executable, __file__, "--build-only", str(export.pk)],
            capture_output=True, text=True,
        )  # fmt: skip
    if out.returncode:
        sys.exit(f"the build failed:\n{out.stderr[-3000:]}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"\n== (1) build: {figures['wall']:.1f} s, peak RSS {figures['peak_rss_mib']:.0f} MiB "
        f"(its audit log process {figures['child_peak_rss_mib']:.0f} MiB) "
        f"(targets 60 s, 300 MiB) ==\n{load.summary()}"
    )
    for stage, seconds in figures["stages"].items():
        print(f"  {seconds:7.1f} s  {stage}")
    print("parts (wall span from the build's start; CPU of its Python thread and its backend):")
    for part in figures["parts"]:
        span = f"{part['from']:5.1f}-{part['to']:5.1f} s" if "from" in part else " " * 13
        backend = part.get("postgres")
        postgres = "" if backend is None else f", PostgreSQL {backend:5.1f} core-s"
        print(f"  {span}  {part['part']}: Python {part['python']:5.1f} core-s{postgres}")
    path = Path(figures["path"])
    with tenant_scope(export.organization):
        from evidence import keys

        pem = keys.active_key(export.organization).public_key
    key_file = path.with_suffix(".pem")
    key_file.write_text(pem)
    print(f"package {path}: {path.stat().st_size / 2**20:.0f} MiB")
    with _setup.Interference(database=db) as load:
        started = time.perf_counter()
        verify = subprocess.run(
            [sys.executable, "-I", str(ROOT / "evidence" / "verify_package.py"), str(path),
             "--public-key", str(key_file)],
            capture_output=True, text=True,
        )  # fmt: skip
        wall = time.perf_counter() - started
    print(f"\n== (2) verification: {wall:.1f} s, exit {verify.returncode} (target 20 s) ==")
    print(verify.stdout.strip()[:2000])
    print(load.summary())
    path.unlink()
    key_file.unlink()


if __name__ == "__main__":
    main()
