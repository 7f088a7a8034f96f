"""The demo's past, simulated through the code real scans run, with a clock the demo sets.

A new demo organization has no past: its estate is seeded into moto minutes before the portal
opens. So that its trend charts, findings and scan coverage have one, the demo replays the 89
days before today, one scan a day, through the code a real scan runs: inventory.runner
(the first day plan_scan and run_scan_inline, each later day store_fetched_scan: the same
storage writer and finish_scan, without the leases and heartbeats that let workers share a
scan), policies.evaluation
(evaluate_organization the first day, evaluate_after_scan after each later scan), rule edits
through policies.services, and each day's snapshot through policies.scoring.scores.take_snapshot
— each inside `tagsense.clock.at(that moment)`, so every row they write is dated that day. This
module writes no score, finding or resource itself: it only decides what each day's scan lists.

What a day's scan lists is derived from today's estate as the real scanners read it from moto
(inventory.runner.fetch_units), deterministically from each resource's ARN (Story):

- most resources are there from the first day with today's tags;
- some were worse tagged at first (Owner or CostCenter missing, a key in the wrong case, an
  Environment value off the list, a data store without DataClassification, no tags at all) and
  are fixed on a later day, some in two steps;
- some lose a tag for a while (a regression) and get it back;
- some are created part-way (first seen later), a few of them only today;
- a few resources that no longer exist ("-legacy" twins of present ones, poorly tagged) are
  deleted part-way;
- a member loosens the rule environment-values one day and it is reverted three weeks later, so
  the rules in force change within the history;
- one day's scan is partial: a unit is throttled.

The first day's scan covers every unit; each later day's covers one account and region (its
focus, turning through them) and the resource types that changed there, as a team's targeted
scan would, and every change is placed on a day whose scan covers its unit. So a day costs a
handful of units and an incremental evaluation. Every simulated scan says so: its trigger is
"simulated" and it was started by "demo.simulation" (the scans page shows both). The last
simulated day is yesterday; the caller then stores today's pages as the present-day scan, so
what the portal shows now is exactly what the real scan found, and the few changes placed on
"today" are that scan's own (new and changed resources).

The first day's scan is also the one time the demo reads the estate from AWS: it reads each
unit with the real scanner while it stores the unit as it was then (runner.fetch_unit, then
the writer), and keeps today's pages for the present-day scan. Each later day is one
transaction, without savepoints (about 110 statements a day; bench/demo_history.py).
simulate() refuses an organization that has any scan (a history of its own, or a simulated
one from an earlier start), so starting the demo again never duplicates history.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.db import connection

import audit
from inventory import runner
from inventory.models import AwsAccount, ScanRun, ScanUnit
from inventory.models.resources import GLOBAL
from inventory.scanners.base import ResourceRecord
from policies import audit_events as policies_audit_events
from policies import evaluation
from policies import services as policy_services
from policies.models import Rule, spec_from_dict
from policies.scoring import scores
from tagsense import clock
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope

if TYPE_CHECKING:
    from accounts.models import Organization

DAYS = 89  # simulated days before today; day DAYS is today (the real scan)
SCAN_AT = time(2, 0)  # each simulated day's scan: the demo's nightly schedule ("0 2 * * *")
SNAPSHOT_AT = time(23, 55)  # the day's scores, after its scan, evaluation and rule edits
ACTOR = Actor.system("demo.simulation")
TRIGGER = "simulated"
PAGE = 1000  # records per page handed to the writer

# The types a company creates and deletes as it works; the network's skeleton stays.
CHURNING = frozenset(
    {
        "ec2:instance",
        "ec2:volume",
        "ec2:snapshot",
        "ec2:image",
        "lambda:function",
        "s3:bucket",
        "dynamodb:table",
    }
)
# Day 34 a member loosens environment-values (Production allowed); day 55 it is reverted.
EDITED_RULE, LOOSEN_DAY, REVERT_DAY, LOOSENED_VALUE = "environment-values", 34, 55, "Production"
# Day 76 one unit is throttled: that day's scan is partial.
PARTIAL_DAY = 76
THROTTLED = ("ThrottlingException", "Rate exceeded (a simulated day: demo.simulation)")
# A day with no change to replay still scans these (every account and region has a VPC).
QUIET_TYPES = ("ec2:vpc", "ec2:subnet")

# How a resource's tags were worse: each a function of today's tags.
_ENVIRONMENT_TYPOS = {"prod": "Production", "dev": "Development", "staging": "Stage"}


def _drop(*keys: str):
    return lambda tags: {k: v for k, v in tags.items() if k not in keys}


def _lower(*keys: str):
    return lambda tags: {(k.lower() if k in keys else k): v for k, v in tags.items()}


def _bad_environment(tags: dict[str, str]) -> dict[str, str]:
    if "Environment" not in tags:
        return dict(tags)
    return {**tags, "Environment": _ENVIRONMENT_TYPOS.get(tags["Environment"], "Production")}


SPOILS = {
    "owner missing": _drop("Owner"),
    "cost center missing": _drop("CostCenter"),
    "owner and cost center missing": _drop("Owner", "CostCenter"),
    "keys in lower case": _lower("Owner", "CostCenter"),
    "environment off the list": _bad_environment,
    "classification missing": _drop("DataClassification"),
    "untagged": lambda tags: {k: v for k, v in tags.items() if k == "Name"},
}
REGRESSIONS = ("cost center missing", "owner missing", "environment off the list")


def draw(arn: str, salt: str) -> int:
    """A number from the ARN: the same estate tells the same story on every start."""
    return int.from_bytes(hashlib.sha256(f"{salt}|{arn}".encode()).digest()[:8], "big")


def spoiled(tags: dict[str, str], arn: str, salt: str, names=tuple(SPOILS)) -> dict[str, str]:
    """Today's tags made worse in the first of `names` (from a place the ARN picks) that
    changes them; the tags unchanged when none does."""
    start = draw(arn, salt) % len(names)
    for name in names[start:] + names[:start]:
        worse = SPOILS[name](tags)
        if worse != tags:
            return worse
    return dict(tags)


@dataclass
class Track:
    """One resource over the simulated days: there from `appears` (DAYS: only today) until
    `gone` (None: still there today), tagged `versions[i][1]` from day `versions[i][0]`."""

    record: ResourceRecord
    key: runner.UnitKey
    appears: int = 0
    gone: int | None = None
    versions: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def alive(self, day: int) -> bool:
        return self.appears <= day and (self.gone is None or day < self.gone)

    def on(self, day: int) -> ResourceRecord:
        """The record as the day's scan lists it."""
        tags = self.record.tags
        for since, version in self.versions:
            if since <= day:
                tags = version
        return (
            self.record if tags is self.record.tags else dataclasses.replace(self.record, tags=tags)
        )

    def days(self) -> set[int]:
        """The simulated days (1..DAYS-1) on which a scan of its unit sees it change."""
        changes = {self.appears, *(since for since, _ in self.versions)}
        if self.gone is not None:
            changes.add(self.gone)
        return {day for day in changes if 0 < day < DAYS}


_SERVICE_ID = re.compile(r"^([a-z]+)-([0-9a-f]{8,})$")


def twin(record: ResourceRecord) -> ResourceRecord:
    """A resource like `record` that no longer exists: its id and name with "-legacy" (an EC2
    style id gets new hex digits instead), its tags those of a forgotten resource."""
    rid = record.resource_id
    match = _SERVICE_ID.match(rid)
    if match:
        digits = hashlib.sha256(f"twin|{record.arn}".encode()).hexdigest()[: len(match[2])]
        new_id = f"{match[1]}-{digits}"
    else:
        new_id = f"{rid}-legacy"
    arn = record.arn.replace(rid, new_id) if rid and rid in record.arn else f"{record.arn}-legacy"
    name = f"{record.name}-legacy" if record.name else ""
    tags = spoiled(record.tags, record.arn, "twin", ("untagged", "owner and cost center missing"))
    if "Name" in tags:
        tags["Name"] = name
    config = {k: (new_id if v == rid else v) for k, v in record.config.items()}
    return dataclasses.replace(
        record, arn=arn, resource_id=new_id, name=name, tags=tags, config=config
    )


class Story:
    """What each simulated day's scan lists, from today's pages of each unit (add())."""

    def __init__(self, keys: Iterable[runner.UnitKey]) -> None:
        self.keys = sorted(keys)
        combos = sorted(
            {(account, region) for account, region, _ in self.keys if region != GLOBAL},
            key=lambda combo: draw(f"{combo[0]}/{combo[1]}", "focus"),
        )
        # Day 1.. turns through the accounts and regions; day 0 scans everything.
        self.focus = {day: combos[(day - 1) % len(combos)] for day in range(1, DAYS) if combos}
        self.today: dict[runner.UnitKey, runner.Fetched] = {}
        self.tracks: dict[runner.UnitKey, list[Track]] = {}
        self.changes: dict[int, set[runner.UnitKey]] = defaultdict(set)
        self._lock = threading.Lock()

    def add(self, key: runner.UnitKey, today: runner.Fetched) -> None:
        """A unit's pages as read today (from any thread)."""
        tracks = [t for page in today.pages for record in page for t in self._tracks(key, record)]
        with self._lock:
            self.today[key] = today
            self.tracks[key] = tracks
            for track in tracks:
                for day in track.days():
                    self.changes[day].add(key)

    # Placing changes on the days whose scan covers the unit --------------------------------

    def _covers(self, key: runner.UnitKey, day: int) -> bool:
        account, region, _ = key
        focus = self.focus.get(day)
        return focus is not None and focus[0] == account and region in (focus[1], GLOBAL)

    def on_or_after(self, key: runner.UnitKey, wanted: int) -> int:
        """The first day from `wanted` whose scan covers the unit; DAYS (today) if none."""
        for day in range(max(wanted, 1), DAYS):
            if self._covers(key, day):
                return day
        return DAYS

    # One resource's fate ---------------------------------------------------------------------

    def _tracks(self, key: runner.UnitKey, record: ResourceRecord) -> Iterator[Track]:
        arn, tags = record.arn, record.tags
        track = Track(record, key)
        if record.resource_type in CHURNING and draw(arn, "created") % 100 < 11:
            track.appears = self.on_or_after(key, 4 + draw(arn, "created-day") % 86)
        start = track.appears
        roll = draw(arn, "tags") % 100
        if roll < 33 and start < DAYS:  # worse at first, fixed later (one in three in two steps)
            partial = spoiled(tags, arn, "second") if roll < 11 else tags
            worse = spoiled(partial, arn, "first")
            if worse != tags:
                fixed = self.on_or_after(key, start + 2 + draw(arn, "fix-day") % 80)
                track.versions = [(start, worse)]
                if partial not in (tags, worse) and fixed < DAYS:
                    track.versions.append((fixed, partial))
                    fixed = self.on_or_after(key, fixed + 1 + draw(arn, "fix-2") % 20)
                track.versions.append((fixed, tags))
        elif roll < 40 and start + 8 < DAYS:  # a regression: a tag lost for a while
            worse = spoiled(tags, arn, "regression", REGRESSIONS)
            lost = self.on_or_after(key, start + 8 + draw(arn, "lost") % 70)
            if worse != tags and lost < DAYS:
                back = self.on_or_after(key, lost + 2 + draw(arn, "back") % 12)
                track.versions = [(lost, worse), (back, tags)]
        yield track
        if record.resource_type in CHURNING and draw(arn, "twin") % 100 < 5:
            old = twin(record)
            gone = self.on_or_after(key, 6 + draw(arn, "gone") % 80)
            yield Track(old, key, gone=gone, versions=[(0, old.tags)])

    # What a day's scan lists ---------------------------------------------------------------

    def pages(self, key: runner.UnitKey, day: int) -> runner.Fetched:
        records = [track.on(day) for track in self.tracks.get(key, ()) if track.alive(day)]
        return runner.Fetched(pages=[records[i : i + PAGE] for i in range(0, len(records), PAGE)])

    def _types(self, day: int) -> list[str]:
        return sorted({t for _, _, t in self.changes.get(day, ())}) or list(QUIET_TYPES)

    def throttled_type(self, day: int) -> str | None:
        """The type whose unit is throttled that day (PARTIAL_DAY only): one with no change."""
        if day != PARTIAL_DAY:
            return None
        changed = self._types(day)
        return next(t for t in ("ec2:security-group", "ec2:vpc", "ec2:subnet") if t not in changed)

    def scope(self, day: int) -> runner.Scope:
        """The day's scan: its focus account and region, the types that changed there (and the
        one throttled)."""
        account, region = self.focus[day]
        types = self._types(day)
        throttled = self.throttled_type(day)
        return runner.Scope(
            account_ids=(AwsAccount.objects.get(pk=account).account_id,),
            regions=(region,),
            types=tuple(sorted([*types, throttled] if throttled else types)),
        )


def first_moment(today: date) -> datetime:
    """When the simulated history starts: the first day's scan."""
    return moment(today, 0, SCAN_AT)


def moment(today: date, day: int, at: time) -> datetime:
    return datetime.combine(today - timedelta(days=DAYS - day), at, tzinfo=UTC)


class HistoryExists(ValueError):
    """The organization has scans already: its past is recorded, not to be simulated."""


class _FirstDay(Mapping):
    """The first day's pages, read when the runner asks for a unit's (in its worker thread):
    the unit is read from AWS by the real scanner (runner.fetch_unit), today's pages are kept
    in the story, and the answer is the unit as it was on the first day. So the first
    simulated scan reads the estate as a real scan does, unit by unit while others are stored,
    and the estate is read once for the whole demo."""

    def __init__(self, story: Story, accounts: dict[int, AwsAccount]) -> None:
        self.story = story
        self.accounts = accounts

    def __getitem__(self, key: runner.UnitKey) -> runner.Fetched:
        account_pk, region, resource_type = key
        account = self.accounts[account_pk]
        unit = ScanUnit(account=account, region=region, resource_type=resource_type)
        today = runner.fetch_unit(unit, runner.credentials_for(account))
        self.story.add(key, today)
        first = self.story.pages(key, 0)
        # A unit AWS did not list today is not known on the first day either.
        first.error_code, first.error = today.error_code, today.error
        return first

    def __iter__(self) -> Iterator[runner.UnitKey]:
        return iter(self.story.keys)

    def __len__(self) -> int:
        return len(self.story.keys)


def simulate(
    organization: Organization,
    *,
    frameworks: list[str],
    today: date,
    workers: int = 4,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[runner.UnitKey, runner.Fetched], dict[str, int]]:
    """Replay the DAYS days before `today` (see the module's doc) for `organization`, whose
    accounts are registered: the built-in `frameworks` are enabled, the first day's scan reads
    the estate from AWS (`workers` threads), then each day is one transaction. Returns
    today's pages of every unit, as the first day read them (for the caller to store as
    today's scan), and counts for the console. `progress` is told what is being done: the
    first day's reading, then each day as it is replayed."""
    say = progress or (lambda text: None)
    first = first_moment(today)
    with tenant_scope(organization, actor=ACTOR):
        if ScanRun.objects.for_org(organization).exists():
            raise HistoryExists("the organization has scans: its history is not simulated")
        with clock.at(first - timedelta(minutes=30)):
            for framework_id in frameworks:
                policy_services.enable_framework(organization, framework_id)
        with clock.at(first):
            scan = runner.plan_scan(
                organization, scope=runner.Scope(), actor=ACTOR, trigger=TRIGGER
            )
        story = Story(runner.unit_key(unit) for unit in scan.units.all())
        accounts = {a.pk: a for a in AwsAccount.objects.for_org(organization)}
    say(
        f"Reading the estate from AWS (moto), {len(story.keys)} units, and storing it as it "
        f"was on {first.date().isoformat()}, the first of {DAYS} days of history…"
    )
    with clock.at(first):
        scan = runner.run_scan_inline(
            scan,
            actor=ACTOR,
            workers=workers,
            fetched=_FirstDay(story, accounts),
            announce=False,
        )
    counts = {"days": 0, "snapshot_rows": 0, "rule_versions": 0}
    for day in range(DAYS):
        if day:
            say(
                f"Replaying the estate's history through the real scan, evaluation and "
                f"snapshot code: day {day + 1} of {DAYS} "
                f"({moment(today, day, SCAN_AT).date().isoformat()})…"
            )
        # A day is one transaction.
        with tenant_scope(organization, actor=ACTOR), without_savepoints():
            if day:
                scan = _scan_day(organization, story, day, today)
            _close_day(organization, scan, day, today, counts)
    return story.today, counts


def _scan_day(organization, story: Story, day: int, today: date) -> ScanRun:
    """A later day's scan: its focus and the types that changed there, stored in this thread
    and the day's transaction (runner.store_fetched_scan: the writer and finish_scan of every
    scan, without the leases and heartbeats that let workers share one)."""
    with clock.at(moment(today, day, SCAN_AT)):
        return runner.store_fetched_scan(
            organization,
            scope=story.scope(day),
            fetched=_Day(story, day),
            actor=ACTOR,
            trigger=TRIGGER,
            announce=False,
        )


class _Day(Mapping):
    """A later day's pages of each unit (the throttled one's: its error), made when asked."""

    def __init__(self, story: Story, day: int) -> None:
        self.story, self.day = story, day

    def __getitem__(self, key: runner.UnitKey) -> runner.Fetched:
        if key[2] == self.story.throttled_type(self.day):
            return runner.Fetched(error_code=THROTTLED[0], error=THROTTLED[1])
        return self.story.pages(key, self.day)

    def __iter__(self) -> Iterator[runner.UnitKey]:
        return iter(self.story.keys)

    def __len__(self) -> int:
        return len(self.story.keys)


@contextmanager
def without_savepoints() -> Iterator[None]:
    """The block's nested atomic blocks (tenant scopes, the writer's pages, audit.record, the
    evaluation's steps) open no savepoint: a simulated day (and the demo's present-day scan)
    is one transaction, committed whole or not at all (an error anywhere ends the demo's
    start), so the two round trips a savepoint costs (SAVEPOINT, RELEASE) buy nothing. A day
    nests about forty of them."""
    features = connection.features
    if not connection.in_atomic_block:
        raise RuntimeError("only inside the day's transaction")
    features.uses_savepoints = False  # this connection's features object; the class's stays
    try:
        yield
    finally:
        del features.uses_savepoints


def _close_day(organization, scan: ScanRun, day: int, today: date, counts: dict) -> None:
    """The evaluation after the day's scan, its rule edit, its snapshot."""
    with clock.at(moment(today, day, SCAN_AT) + timedelta(minutes=2)):
        if day == 0:  # everything, and the ledger of what was evaluated starts
            evaluation.evaluate_organization(organization, trigger=TRIGGER)
        else:
            evaluation.evaluate_after_scan(scan, ACTOR)
    if day in (LOOSEN_DAY, REVERT_DAY):
        with clock.at(moment(today, day, time(10, 30))):
            counts["rule_versions"] += _edit_rule(organization, loosen=day == LOOSEN_DAY)
    with clock.at(moment(today, day, SNAPSHOT_AT)):
        rows = scores.take_snapshot(organization, day=clock.now().date())
        audit.record(
            policies_audit_events.SCORE_SNAPSHOT,
            data={"trigger": TRIGGER, "rows": rows, "day": clock.now().date().isoformat()},
        )
    counts["days"] += 1
    counts["snapshot_rows"] += rows


def _edit_rule(organization, *, loosen: bool) -> int:
    """Allow LOOSENED_VALUE in EDITED_RULE's list (loosen), or take it out again, through
    policies.services (a new rule version, its re-evaluation, its audit event). 1 when a
    version was written."""
    rule = Rule.objects.for_org(organization).filter(rule_id=EDITED_RULE).first()
    if rule is None or "list" not in rule.spec.get("values", {}):
        return 0
    values = [v for v in rule.spec["values"]["list"] if v != LOOSENED_VALUE]
    if loosen:
        values.append(LOOSENED_VALUE)
    before = rule.version
    rule = policy_services.update_rule(
        rule, spec_from_dict({**rule.spec, "values": {"list": values}})
    )
    return rule.version - before
