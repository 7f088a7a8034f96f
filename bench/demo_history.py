"""The demo's simulated history (demo/simulation.py), timed day by day without the whole
`make run`: run `setup_demo_estate` against a moto server that already holds the demo estate and
a database where `setup_demo` has run, and print, for the first day, the later days and
today's scan, the wall time and the statements sent to PostgreSQL (every execute and COPY on
any psycopg cursor, Django's and the storage writer's own), split into the day's scan and the
rest (evaluation, rule edit, snapshot, audit). With --profile, the cProfile of the later days
(top functions by cumulative time) is printed too; with --log-day N, the statements of day N.

    moto_server -p 5391 &  (seed it: demo.estate.seed_estate, seed 7, 2,000 resources)
    BENCH_DB=tagsense_demo_history bench/reset_db.sh
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tagsense_demo_history \
        .venv/bin/python manage.py setup_demo
    DATABASE_URL=... .venv/bin/python bench/demo_history.py --endpoint http://127.0.0.1:5391
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tagsense.settings.test")

import argparse  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _setup  # noqa: E402

_setup.configure()

import psycopg  # noqa: E402
from django.core.management import call_command  # noqa: E402

from demo import simulation  # noqa: E402
from demo.management.commands import setup_demo_estate  # noqa: E402

STATEMENTS = [0]
LOG: list[str] | None = None  # --log-day: the statements of that day


def _counting(method):
    def counted(self, *args, **kwargs):
        STATEMENTS[0] += 1
        if LOG is not None:
            LOG.append(" ".join(str(args[0] if args else "")[:150].split()))
        return method(self, *args, **kwargs)

    return counted


# Every round trip a cursor starts: Django's cursors and the writer's raw ones are psycopg's.
for _name in ("execute", "executemany", "copy"):
    setattr(psycopg.Cursor, _name, _counting(getattr(psycopg.Cursor, _name)))


class Phases:
    """Wall time and statements per phase (first day, later days), each split in parts."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.statements: dict[tuple[str, str], int] = defaultdict(int)
        self.days: dict[str, int] = defaultdict(int)
        self.profile = cProfile.Profile()
        self.profiling = False

    @contextmanager
    def part(self, phase: str, part: str):
        start, before = time.perf_counter(), STATEMENTS[0]
        if self.profiling and phase == "later":
            self.profile.enable()
        try:
            yield
        finally:
            if self.profiling and phase == "later":
                self.profile.disable()
            self.seconds[phase, part] += time.perf_counter() - start
            self.statements[phase, part] += STATEMENTS[0] - before

    def wrap(self, module, name: str, part: str, phase_of) -> None:
        original = getattr(module, name)

        def wrapped(*args, **kwargs):
            phase = phase_of(*args, **kwargs)
            with self.part(phase, part):
                return original(*args, **kwargs)

        setattr(module, name, wrapped)

    def report(self) -> None:
        for phase in ("first", "later", "today"):
            days = max(self.days[phase], 1)
            parts = sorted({p for ph, p in self.seconds if ph == phase})
            total_s = sum(self.seconds[phase, p] for p in parts)
            total_n = sum(self.statements[phase, p] for p in parts)
            print(
                f"{phase} day(s): {self.days[phase]}, {total_s:.2f} s "
                f"({total_s / days:.3f} s a day), {total_n} statements "
                f"({total_n / days:.0f} a day)"
            )
            for p in parts:
                print(
                    f"    {p:<10} {self.seconds[phase, p] / days:.3f} s a day, "
                    f"{self.statements[phase, p] / days:.0f} statements a day"
                )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--log-day", type=int, help="print the statements of this day")
    args = parser.parse_args()
    phases = Phases()
    phases.profiling = args.profile

    def phase_of_day(*a, **kw) -> str:
        day = kw.get("day", a[2] if len(a) > 2 else None)
        return "first" if day == 0 else "later"

    def count_day(original):
        def counted(organization, scan, day, today, counts):
            phases.days["first" if day == 0 else "later"] += 1
            result = original(organization, scan, day, today, counts)
            if day == args.log_day:
                print(f"statements of day {day} (its scan, then the rest):")
                print("\n".join(f"    {line}" for line in LOG or ()))
            return result

        return counted

    def log_scan(original):
        def logged(organization, story, day, today):
            global LOG  # noqa: PLW0603 - the harness's one switch
            LOG = [] if day == args.log_day else None
            return original(organization, story, day, today)

        return logged

    simulation._scan_day = log_scan(simulation._scan_day)

    simulation._close_day = count_day(simulation._close_day)
    phases.wrap(simulation, "_close_day", "close", lambda o, s, day, *a, **k: phase_of_day(day=day))
    phases.wrap(simulation, "_scan_day", "scan", lambda o, s, day, *a, **k: phase_of_day(day=day))
    first = simulation.simulate

    def simulate(*a, **kw):
        with phases.part("first", "scan+read"):  # the first day's scan reads moto: moved below
            start_n, start_s = STATEMENTS[0], time.perf_counter()
            result = first(*a, **kw)
        # simulate() includes the later days: take them back out of the first day's figure.
        later_s = sum(v for (ph, _), v in phases.seconds.items() if ph == "later")
        later_n = sum(v for (ph, _), v in phases.statements.items() if ph == "later")
        first_close_s = phases.seconds["first", "close"]
        first_close_n = phases.statements["first", "close"]
        phases.seconds["first", "scan+read"] = (
            time.perf_counter() - start_s - later_s - first_close_s
        )
        phases.statements["first", "scan+read"] = STATEMENTS[0] - start_n - later_n - first_close_n
        return result

    simulation.simulate = simulate
    scan = setup_demo_estate.Command._scan

    def today_scan(*a, **kw):
        phases.days["today"] = 1
        with phases.part("today", "scan"):
            return scan(*a, **kw)

    setup_demo_estate.Command._scan = today_scan
    started = time.perf_counter()
    call_command("setup_demo_estate", endpoint=args.endpoint, workers=args.workers)
    print(f"setup_demo_estate: {time.perf_counter() - started:.1f} s in all")
    phases.report()
    if args.profile:
        out = io.StringIO()
        pstats.Stats(phases.profile, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())


if __name__ == "__main__":
    main()
