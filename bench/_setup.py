"""Shared set-up for the benchmarks: Django against the bench database, one organization and
one AWS account per run, peak RSS. Each benchmark script sets the environment before importing
this module (so a caller's DATABASE_URL wins, and nothing ever points at the dev or test DB)."""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import secrets
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB_URL = "postgres://postgres@127.0.0.1:5432/tagsense_bench"
FORBIDDEN = ("/tagsense", "/test_tagsense", "/tagsense_dev")


def configure() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.test")
    os.environ.setdefault("DATABASE_URL", BENCH_DB_URL)
    url = os.environ["DATABASE_URL"].split("?")[0]
    if url.endswith(FORBIDDEN):
        sys.exit(f"refusing to benchmark against {url}: use a dedicated bench database")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def make_account(label: str, account_id: str = "210987654321", regions=("eu-west-1",)):
    """A fresh organization (no scope needed) and one AWS account inside its tenant scope."""
    from accounts.models import Organization
    from inventory.models import AwsAccount
    from tagsense.tenancy.db import tenant_scope

    slug = f"bench-{label}-{secrets.token_hex(4)}"
    org = Organization.objects.create(slug=slug, name=f"Bench {label}")
    with tenant_scope(org):
        account = AwsAccount.objects.create(
            organization=org,
            account_id=account_id,
            name=f"bench-{label}",
            role_arn="",
            regions=list(regions),
        )
    return org, account


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def machine() -> dict[str, str]:
    from django.db import connection

    settings = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        pg = cursor.fetchone()[0].split(" on ")[0]
        for name in ("shared_buffers", "work_mem", "max_wal_size", "synchronous_commit"):
            cursor.execute(f"SHOW {name}")
            settings[name] = cursor.fetchone()[0]
    with open("/proc/meminfo") as meminfo:
        mem_kib = int(meminfo.readline().split()[1])
    cpu = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603, S607
    return {
        "nproc": nproc,
        "cpu": cpu,
        "ram_gib": f"{mem_kib / 2**20:.1f}",
        "python": platform.python_version(),
        "postgresql": pg,
        **settings,
    }


def code_version() -> str:
    """The commit under test, and whether the storage/runner code differs from it."""

    def git(*args: str) -> str:
        return subprocess.run(  # noqa: S603
            ["git", *args],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "inventory", "tagsense", "accounts", "audit")
    digest = hashlib.sha1((ROOT / "inventory" / "storage.py").read_bytes()).hexdigest()[:10]  # noqa: S324
    state = "with local changes" if dirty else "clean"
    return f"HEAD {head} ({state} in inventory/ tagsense/ accounts/ audit/), storage.py {digest}"


def cpu_reference() -> float:
    """Seconds for a fixed pure-Python loop (20 million additions): machines of the same
    description have differed by 3x in it, and every figure here scales with it."""
    start = time.perf_counter()
    total = 0
    for i in range(20_000_000):
        total += i
    return round(time.perf_counter() - start, 2)


def print_machine() -> None:
    info = machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    print(f"cpu reference: {cpu_reference()} s for 20 million Python additions")
    print(f"code: {code_version()}")


class Interference:
    """CPU that other processes used while a benchmark ran (the machine is shared).

    Busy CPU time from /proc/stat, minus this process, its children, and the PostgreSQL
    processes serving the bench database (their command line names it, autovacuum included).
    Sampled every second by a daemon thread; what remains is someone else's load.
    """

    def __init__(self, database: str = "tagsense_bench"):
        self.database = database.encode()
        self.tick = os.sysconf("SC_CLK_TCK")
        self.mine: dict[int, tuple[int, int]] = {}  # pid -> (first jiffies seen, last)
        self.labels: dict[int, str] = {}  # pid -> what it is (for by_process)
        self._stop = None

    @staticmethod
    def _busy() -> int:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        return sum(fields) - fields[3] - fields[4]  # minus idle and iowait

    def _is_mine(self, pid: int, own: int) -> bool:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
        # A child's children too (an evidence build's OSCAL process): their parent is mine.
        mine = pid == own or ppid == own or ppid in self.mine or self.database in cmdline
        if mine:
            backend = cmdline.startswith(b"postgres:")
            self.labels[pid] = "this process" if pid == own else "backend" if backend else "child"
        return mine

    def _sample(self, first: bool) -> None:
        own = os.getpid()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid not in self.mine and not self._is_mine(pid, own):
                continue
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            jiffies = int(fields[11]) + int(fields[12])  # utime + stime
            base = self.mine.get(pid, (jiffies if first else 0, 0))[0]
            self.mine[pid] = (base, jiffies)

    def __enter__(self):
        import threading

        self.start_busy, self.start_time = self._busy(), time.monotonic()
        self._sample(first=True)
        self._stop = threading.Event()

        def loop():
            while not self._stop.wait(1.0):
                self._sample(first=False)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample(first=False)
        self.wall = time.monotonic() - self.start_time
        busy = (self._busy() - self.start_busy) / self.tick
        self.own = sum(last - base for base, last in self.mine.values()) / self.tick
        self.other = max(0.0, busy - self.own)
        return False

    def start(self) -> Interference:
        return self.__enter__()

    def stop(self) -> None:
        self.__exit__(None, None, None)

    def summary(self) -> str:
        return (
            f"CPU over {self.wall:.0f} s wall: this benchmark and its bench-DB PostgreSQL "
            f"processes {self.own:.0f} core-s; other processes on the machine {self.other:.0f} "
            f"core-s ({self.other / self.wall:.2f} of 2 cores on average)"
        )

    def by_process(self, top: int = 3) -> str:
        """The `top` busiest of this benchmark's processes, core-s each (sampled every second:
        a process that ends loses up to a second). Work split over several connections shows
        here: on an idle machine the wall time follows the longest chain, not the sum."""
        used = [((last - base) / self.tick, pid) for pid, (base, last) in self.mine.items()]
        parts = [
            f"{seconds:.1f} ({self.labels.get(pid, '?')} {pid})"
            for seconds, pid in sorted(used, reverse=True)[:top]
        ]
        return "busiest processes, core-s: " + ", ".join(parts)
