"""The scan runner: plans units (account × region × type), runs them with bounded concurrency,
stores pages as they arrive, records errors per unit, and closes the run.

The same code runs inline (CLI, embedded default, tests) and fanned out as Celery tasks per
account × region (inventory/tasks.py). Every database write happens inside the organization's
tenant scope; AWS calls happen outside any transaction.

Every time a scan records (its units' start and end, its resources' first sighting, changes and
deletions, the leases) is tagsense.clock.now(): the present, or the simulated moment of the
demo's replayed history (demo.simulation). A unit's pages come from AWS, or from `fetched`:
pages read earlier (fetch_units) or derived from them (the replay), stored by the same code.
"""

from __future__ import annotations

import contextvars
import gc
import logging
import multiprocessing
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Q

import audit
from accounts.models import Organization
from tagsense import clock
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope

from . import audit_events, aws, graph, signals, storage
from .models import AwsAccount, ScanRun, ScanUnit
from .models.resources import GLOBAL
from .scanners.base import ResourceRecord, ScanContext, scanner_for, scanners

logger = logging.getLogger(__name__)

# How long an account stays reserved for a scan without a sign of life from it.
LEASE = timedelta(minutes=15)
ProgressCallback = Callable[[ScanRun, ScanUnit], None]


@dataclass(frozen=True)
class Scope:
    account_ids: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    types: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "accounts": list(self.account_ids),
            "regions": list(self.regions),
            "types": list(self.types),
        }


class RegionDiscoveryError(ValueError):
    """AWS did not list an account's enabled regions (no credentials, a role it may not
    assume, AWS unreachable): a scan cannot be planned. A ValueError, like every reason a
    scan is not planned, so the page shows it and a scheduled scan skips the run."""


def regions_for(account: AwsAccount, credentials: aws.AccountCredentials) -> list[str]:
    if account.regions:
        return list(account.regions)
    try:
        return aws.enabled_regions(aws.session_for(credentials, aws.HOME_REGION))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
    except BotoCoreError as exc:
        code = type(exc).__name__
    raise RegionDiscoveryError(
        f"AWS did not list the enabled regions of account {account.account_id} ({code}): "
        "check its role, or give the account its regions"
    )


def credentials_for(account: AwsAccount) -> aws.AccountCredentials:
    return aws.AccountCredentials(account.role_arn, account.external_id)


def _scope_accounts(organization, scope: Scope) -> tuple[list[AwsAccount], list[str]]:
    """The enabled accounts and the resource types a scope names (every one when it names
    none). ValueError for an unknown type or no matching account."""
    all_types = scanners()
    types = list(scope.types) or list(all_types)
    unknown = [t for t in types if t not in all_types]
    if unknown:
        raise ValueError(f"unknown resource type(s): {', '.join(unknown)}")
    accounts = AwsAccount.objects.for_org(organization).enabled()
    if scope.account_ids:
        accounts = accounts.filter(account_id__in=scope.account_ids)
    accounts = list(accounts)
    if not accounts:
        raise ValueError("no enabled AWS account matches")
    return accounts, types


def _units_of(
    accounts: list[AwsAccount], types: list[str], scope: Scope
) -> list[tuple[AwsAccount, str, str]]:
    """(account, region, type) of every unit: a global type once per account (GLOBAL), the
    others in each region the scope names or the account has (region discovery calls AWS)."""
    all_types = scanners()
    units = []
    for account in accounts:
        regions = list(scope.regions) or regions_for(account, credentials_for(account))
        for resource_type in types:
            if all_types[resource_type].global_region:
                units.append((account, GLOBAL, resource_type))
            else:
                units.extend((account, region, resource_type) for region in regions)
    return units


def plan_scan(organization, *, scope: Scope, actor: Actor, trigger: str = "manual") -> ScanRun:
    """Create the run and its units. Caller is inside the organization's tenant scope and may
    start scans. Region discovery (when an account says 'all enabled') calls AWS."""
    accounts, types = _scope_accounts(organization, scope)
    with transaction.atomic():
        scan = ScanRun.objects.create(
            organization=organization,
            started_by=actor.label or actor.kind,
            trigger=trigger,
            scope=scope.as_dict(),
        )
        busy = _take_leases(scan, accounts)
        accounts = [a for a in accounts if a.pk not in busy]
        if not accounts:
            holders = ", ".join(f"#{n}" for n in sorted(set(busy.values())))
            raise ValueError(f"every matching account is being scanned already (scan {holders})")
        if busy:
            scan.scope = {
                **scan.scope,
                "skipped_busy_accounts": sorted(
                    AwsAccount.objects.filter(pk__in=busy).values_list("account_id", flat=True)
                ),
            }
            scan.save(update_fields=["scope"])
        units = _units_of(accounts, types, scope)
        ScanUnit.objects.bulk_create(
            [
                ScanUnit(
                    organization=organization,
                    scan=scan,
                    account=account,
                    region=region,
                    resource_type=resource_type,
                )
                for account, region, resource_type in units
            ]
        )
        scan.units_total = len(units)
        scan.save(update_fields=["units_total"])
        audit.record(
            audit_events.SCAN_START,
            target=scan,
            data={"units": len(units), "trigger": trigger, **scope.as_dict()},
            actor=actor,
        )
    return scan


def _take_leases(scan: ScanRun, accounts: list[AwsAccount]) -> dict[int, int]:
    """Reserve the accounts for this scan; return {account pk: holding scan id} of the busy."""
    now = clock.now()
    ids = [a.pk for a in accounts]
    AwsAccount.objects.filter(pk__in=ids).filter(
        Q(scan_lease_until__isnull=True) | Q(scan_lease_until__lt=now)
    ).update(scan_lease_until=now + LEASE, scan_lease_holder=scan)
    return dict(
        AwsAccount.objects.filter(pk__in=ids)
        .exclude(scan_lease_holder=scan)
        .values_list("pk", "scan_lease_holder_id")
    )


def _renew_lease(unit: ScanUnit) -> None:
    AwsAccount.objects.filter(pk=unit.account_id, scan_lease_holder_id=unit.scan_id).update(
        scan_lease_until=clock.now() + LEASE
    )


# A unit: (account pk, region or GLOBAL, resource type).
UnitKey = tuple[int, str, str]


def unit_key(unit: ScanUnit) -> UnitKey:
    return (unit.account_id, unit.region, unit.resource_type)


@dataclass
class Fetched:
    """A unit's pages read before they are stored: read from AWS by fetch_units (kept while
    other work runs) or derived from such pages by a replay (demo.simulation), with the API
    calls that took and the error that ended the listing, if one did. run_unit(fetched=...)
    stores them as it stores pages it reads itself, and a recorded error fails the unit as it
    would have failed then: what was listed before it is stored, nothing is marked deleted."""

    pages: list[list[ResourceRecord]] = field(default_factory=list)
    api_calls: int = 0
    error_code: str = ""
    error: str = ""


def _aws_pages(
    unit: ScanUnit, credentials: aws.AccountCredentials, counter: aws.CallCounter
) -> Iterator[list[ResourceRecord]]:
    """The unit's pages as its scanner lists them from AWS (the session opens at the first)."""
    scanner = scanner_for(unit.resource_type)
    region = scanner.global_region if unit.region == GLOBAL else unit.region
    session = aws.session_for(credentials, region, scanning=True)
    ctx = ScanContext(
        account_id=unit.account.account_id,
        region=region,
        partition="aws",
        client=aws.client_factory(session, region, counter),
    )
    yield from scanner.pages(ctx)


def _failure(exc: Exception) -> tuple[str, str]:
    """(error code, message) of a unit that failed with `exc`."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "ClientError"), str(exc)
    if isinstance(exc, storage.StorageError):
        return "StorageError", str(exc)
    return type(exc).__name__, str(exc)


def fetch_unit(unit: ScanUnit, credentials: aws.AccountCredentials) -> Fetched:
    """Read one unit's pages from AWS without storing anything (run_unit(fetched=) stores
    them). `unit` may be unsaved: only its account, region and type are read."""
    counter = aws.CallCounter()
    fetched = Fetched()
    try:
        for page in _aws_pages(unit, credentials, counter):
            fetched.pages.append(page)
    except (ClientError, BotoCoreError, OSError) as exc:
        fetched.error_code, fetched.error = _failure(exc)
    fetched.api_calls = counter.calls
    return fetched


def fetch_units(organization, *, scope: Scope, workers: int = 4) -> dict[UnitKey, Fetched]:
    """The pages of every unit a scan of `scope` would plan, read from AWS (threads, at most
    TAGSENSE_SCAN_CONCURRENCY_PER_ACCOUNT units of one account at once), nothing written:
    for a caller that stores them later with run_scan_inline(fetched=). Inside the
    organization's tenant scope (the accounts are read)."""
    accounts, types = _scope_accounts(organization, scope)
    units = [
        ScanUnit(organization=organization, account=account, region=region, resource_type=rtype)
        for account, region, rtype in _units_of(accounts, types, scope)
    ]
    per_account = getattr(settings, "TAGSENSE_SCAN_CONCURRENCY_PER_ACCOUNT", 4)
    gates = {a.pk: threading.BoundedSemaphore(per_account) for a in accounts}
    credentials = {a.pk: credentials_for(a) for a in accounts}

    def work(unit: ScanUnit) -> tuple[UnitKey, Fetched]:
        with gates[unit.account_id]:
            return unit_key(unit), fetch_unit(unit, credentials[unit.account_id])

    gc.freeze()  # as run_units: parsing creates many objects; collections would walk the heap
    try:
        with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
            return dict(pool.map(work, units))
    finally:
        gc.unfreeze()


def _store(unit: ScanUnit, pages: Iterable[list[ResourceRecord]], counts, *, complete: bool):
    """Write the unit's pages, then close it (mark deleted what it did not see) when the
    listing was `complete`."""
    organization = unit.organization
    writer = storage.unit_writer(
        account=unit.account,
        resource_type=unit.resource_type,
        region=unit.region,
        scan=unit.scan,
        started=clock.now(),
    )
    for page in pages:
        with tenant_scope(organization):
            counts.add(writer.write(page, now=clock.now()))
    if complete:
        with tenant_scope(organization):
            counts.deleted = writer.finish(now=clock.now())


def run_unit(
    unit: ScanUnit, credentials: aws.AccountCredentials, fetched: Fetched | None = None
) -> None:
    """Scan one unit and store it: its pages from AWS, or the `fetched` ones. Assumes the
    caller set the tenant context; opens short tenant transactions per page so a long unit
    holds no transaction open."""
    organization = unit.organization
    counter = aws.CallCounter()
    started = clock.now()
    if fetched is None:  # a unit read from AWS may take minutes: the page shows it running
        with tenant_scope(organization):
            ScanUnit.objects.filter(pk=unit.pk).update(status=ScanUnit.RUNNING, started_at=started)
    counts = storage.Counts()
    status, code, message = ScanUnit.SUCCEEDED, "", ""
    try:
        if fetched is None:
            _store(unit, _aws_pages(unit, credentials, counter), counts, complete=True)
        else:
            _store(unit, fetched.pages, counts, complete=not fetched.error_code)
            if fetched.error_code:
                status, code, message = ScanUnit.FAILED, fetched.error_code, fetched.error
    except (storage.StorageError, ClientError, BotoCoreError, OSError) as exc:
        status = ScanUnit.FAILED
        code, message = _failure(exc)
    api_calls = counter.calls if fetched is None else fetched.api_calls
    with tenant_scope(organization):
        ScanUnit.objects.filter(pk=unit.pk).update(
            status=status,
            started_at=started,
            finished_at=clock.now(),
            seen=counts.seen,
            new=counts.new,
            changed=counts.changed,
            unchanged=counts.unchanged,
            deleted=counts.deleted,
            api_calls=api_calls,
            error_code=code[:128],
            error=message[:4000],
        )
        ScanRun.objects.filter(pk=unit.scan_id).update(
            units_done=F("units_done") + 1,
            units_failed=F("units_failed") + (1 if status == ScanUnit.FAILED else 0),
            new=F("new") + counts.new,
            changed=F("changed") + counts.changed,
            unchanged=F("unchanged") + counts.unchanged,
            deleted=F("deleted") + counts.deleted,
            api_calls=F("api_calls") + api_calls,
            heartbeat_at=clock.now(),
        )
        _renew_lease(unit)
    if status == ScanUnit.FAILED:
        logger.warning("scan unit %s failed: %s %s", unit.pk, code, message[:200])


def run_units(
    units: Iterable[ScanUnit],
    *,
    workers: int = 4,
    processes: bool = False,
    progress: ProgressCallback | None = None,
    fetched: Mapping[UnitKey, Fetched] | None = None,
) -> None:
    """Run units concurrently; `progress` is called in the caller's thread after each one.
    A unit whose key is in `fetched` stores those pages instead of reading AWS.

    Threads by default, each running in a copy of the caller's context (tagsense.clock's
    moment among it). With `processes`, units run in forked worker processes, as Celery's
    prefork pool runs them in production: parsing AWS responses holds the GIL, so threads
    share one core. At most TAGSENSE_SCAN_CONCURRENCY_PER_ACCOUNT processes then run at once
    (the per-account limit cannot be enforced across processes otherwise)."""
    units = list(units)
    fetched = fetched or {}
    if processes and fetched:
        raise ValueError("pages already fetched are stored in threads, not processes")
    # At most this many units of one account at once: keeps API calls under AWS rate limits.
    per_account = getattr(settings, "TAGSENSE_SCAN_CONCURRENCY_PER_ACCOUNT", 4)

    def report(unit: ScanUnit) -> None:
        if progress is not None:
            with tenant_scope(unit.organization):
                scan = ScanRun.objects.get(pk=unit.scan_id)
            progress(scan, unit)

    # The objects alive now (Django, botocore's service models) are set aside from the garbage
    # collector while units run: parsing a page creates ~100,000 objects, and the collections
    # that triggers would otherwise walk the whole heap, which more than doubled parse time.
    # (Also what the gc module advises before fork(): children keep sharing those pages.)
    gc.freeze()
    try:
        if processes and workers > 1 and len(units) > 1:
            _run_in_processes(units, min(workers, per_account, len(units)), report)
        else:
            _run_in_threads(units, workers, per_account, report, fetched)
    finally:
        gc.unfreeze()


def _run_in_processes(units: list[ScanUnit], workers: int, report) -> None:
    # Children must not share the parent's database connections: close them before the pool
    # forks (it forks every worker at its first submit); each child opens its own.
    connections.close_all()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    with pool:
        futures = {
            pool.submit(_run_unit_in_child, unit.pk, unit.organization.pk): unit for unit in units
        }
        for future in as_completed(futures):
            future.result()
            report(futures[future])


def _run_in_threads(
    units: list[ScanUnit],
    workers: int,
    per_account: int,
    report,
    fetched: Mapping[UnitKey, Fetched],
) -> None:
    credentials: dict[int, aws.AccountCredentials] = {}
    gates: dict[int, threading.BoundedSemaphore] = {}
    for unit in units:
        if unit.account_id not in credentials:
            credentials[unit.account_id] = credentials_for(unit.account)
            gates[unit.account_id] = threading.BoundedSemaphore(per_account)

    if workers <= 1:  # in the caller's thread and its database connection
        for unit in units:
            run_unit(unit, credentials[unit.account_id], fetched.get(unit_key(unit)))
            report(unit)
        return

    def work(unit: ScanUnit) -> ScanUnit:
        try:
            with gates[unit.account_id]:
                run_unit(unit, credentials[unit.account_id], fetched.get(unit_key(unit)))
        finally:
            connections.close_all()  # this thread's connection
        return unit

    # A pool's thread does not inherit the caller's context variables: each unit runs in a
    # copy of the caller's, taken here (one per unit: a context runs in one thread at a time).
    contexts = [contextvars.copy_context() for _ in units]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for unit in pool.map(lambda c, u: c.run(work, u), contexts, units):
            report(unit)


_child_credentials: dict[int, aws.AccountCredentials] = {}


def _run_unit_in_child(unit_pk: int, organization_pk: int) -> int:
    """One unit in a worker process of run_units(processes=True); credentials are kept per
    account for the process's later units."""

    organization = Organization.objects.get(pk=organization_pk)
    with tenant_scope(organization):
        unit = ScanUnit.objects.select_related("account", "scan").get(pk=unit_pk)
    unit.organization = organization
    if unit.account_id not in _child_credentials:
        _child_credentials[unit.account_id] = credentials_for(unit.account)
    run_unit(unit, _child_credentials[unit.account_id])
    return unit_pk


def finish_scan(scan: ScanRun, actor: Actor, *, announce: bool = True) -> ScanRun:
    """Close the run: succeeded, partial (some units failed) or failed (all failed); once that
    commits, announce it (signals.scan_finished) unless not `announce`: a caller that brings
    the findings up to date itself, in order (the demo's replayed days, each evaluated at its
    own simulated moment, not later by a task at the present one)."""
    with tenant_scope(scan.organization), transaction.atomic():
        scan = ScanRun.objects.select_for_update().get(pk=scan.pk)
        if scan.is_finished:
            return scan
        failed = scan.units_failed
        if failed == 0:
            scan.status = ScanRun.SUCCEEDED
        elif failed < scan.units_total:
            scan.status = ScanRun.PARTIAL
        else:
            scan.status = ScanRun.FAILED
        scan.finished_at = clock.now()
        scan.save(update_fields=["status", "finished_at"])
        AwsAccount.objects.filter(
            pk__in=scan.units.filter(status=ScanUnit.SUCCEEDED).values("account_id")
        ).update(last_scanned_at=scan.finished_at)
        AwsAccount.objects.filter(scan_lease_holder=scan).update(
            scan_lease_until=None, scan_lease_holder=None
        )
        graph.resolve_dns_targets(scan.organization)
        errors = list(
            scan.units.filter(status=ScanUnit.FAILED).values_list(
                "account__account_id", "region", "resource_type", "error_code"
            )[:20]
        )
        audit.record(
            audit_events.SCAN_FAIL if scan.status == ScanRun.FAILED else audit_events.SCAN_FINISH,
            target=scan,
            data={
                "status": scan.status,
                "new": scan.new,
                "changed": scan.changed,
                "unchanged": scan.unchanged,
                "deleted": scan.deleted,
                "failed_units": failed,
                "errors": [list(e) for e in errors],
            },
            actor=actor,
        )
        # Once this commits: the apps above act on the stored scan (policies evaluates the
        # resources it touched in a task of its own).
        if announce:
            signals.send_on_commit(signals.scan_finished, ScanRun, scan=scan, actor=actor)
    return scan


def store_fetched_scan(
    organization,
    *,
    scope: Scope,
    fetched: Mapping[UnitKey, Fetched],
    actor: Actor,
    trigger: str = "manual",
    announce: bool = True,
) -> ScanRun:
    """A scan whose every unit's pages are already read (`fetched`: every unit of `scope`),
    stored here, in the caller's thread and transaction (inside the organization's tenant
    scope), by the same writer as run_unit and closed by finish_scan (`announce` as it takes
    it).

    Left out is only the bookkeeping that lets workers share a scan while it runs: account
    leases, each unit's running status, heartbeats, per-unit counter updates. Nobody else can
    see or run this scan before the transaction commits. What a reader sees is what a scan run
    by workers leaves: the run and its units with their statuses, counts, errors and times, its
    scan.start and scan.finish audit events, the resources, tag events, deletions and coverage
    the writer records. For a scan of many small units (the demo's replayed days) this is a
    few statements a unit instead of a dozen."""
    accounts, types = _scope_accounts(organization, scope)
    planned = _units_of(accounts, types, scope)
    now = clock.now()
    scan = ScanRun.objects.create(
        organization=organization,
        started_by=actor.label or actor.kind,
        trigger=trigger,
        scope=scope.as_dict(),
        status=ScanRun.RUNNING,
        created_at=now,
        started_at=now,
        heartbeat_at=now,
        units_total=len(planned),
    )
    audit.record(
        audit_events.SCAN_START,
        target=scan,
        data={"units": len(planned), "trigger": trigger, **scope.as_dict()},
        actor=actor,
    )
    units, total = [], storage.Counts()
    api_calls = failed = 0
    for account, region, resource_type in planned:
        unit = ScanUnit(
            organization=organization,
            scan=scan,
            account=account,
            region=region,
            resource_type=resource_type,
            status=ScanUnit.SUCCEEDED,
            started_at=clock.now(),
        )
        read = fetched[unit_key(unit)]
        counts = storage.Counts()
        _store(unit, read.pages, counts, complete=not read.error_code)
        if read.error_code:
            unit.status, failed = ScanUnit.FAILED, failed + 1
            unit.error_code, unit.error = read.error_code[:128], read.error[:4000]
            logger.warning("scan unit of %s failed: %s %s", scan.pk, read.error_code, read.error)
        unit.finished_at = clock.now()
        unit.seen, unit.new, unit.changed = counts.seen, counts.new, counts.changed
        unit.unchanged, unit.deleted = counts.unchanged, counts.deleted
        unit.api_calls = read.api_calls
        api_calls += read.api_calls
        total.add(counts)
        units.append(unit)
    ScanUnit.objects.bulk_create(units)
    ScanRun.objects.filter(pk=scan.pk).update(
        units_done=len(units),
        units_failed=failed,
        new=total.new,
        changed=total.changed,
        unchanged=total.unchanged,
        deleted=total.deleted,
        api_calls=api_calls,
        heartbeat_at=clock.now(),
    )
    return finish_scan(scan, actor, announce=announce)


def reap_stale_scans(organization, *, older_than: timedelta = 2 * LEASE) -> list[int]:
    """Scans whose workers stopped sending heartbeats: their unfinished units are marked
    failed ("worker died") and the scan is closed as partial or failed."""
    cutoff = clock.now() - older_than
    with tenant_scope(organization):
        stale = list(
            ScanRun.objects.for_org(organization)
            .filter(status__in=[ScanRun.RUNNING, ScanRun.PENDING])
            .filter(
                Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
            )
        )
        for scan in stale:
            lost = scan.units.filter(status__in=[ScanUnit.PENDING, ScanUnit.RUNNING])
            count = lost.update(
                status=ScanUnit.FAILED,
                error_code="WorkerLost",
                error="no heartbeat from the worker; the unit did not finish",
                finished_at=clock.now(),
            )
            ScanRun.objects.filter(pk=scan.pk).update(
                units_failed=F("units_failed") + count, units_done=F("units_done") + count
            )
    for scan in stale:
        finish_scan(scan, Actor.system("inventory.reap_stale_scans"))
    return [s.pk for s in stale]


def run_scan_inline(
    scan: ScanRun,
    *,
    actor: Actor,
    workers: int = 4,
    processes: bool = False,
    progress: ProgressCallback | None = None,
    fetched: Mapping[UnitKey, Fetched] | None = None,
    announce: bool = True,
) -> ScanRun:
    """Run the planned scan here (not in Celery tasks) and close it; `fetched` and `announce`
    as run_units and finish_scan take them."""
    with tenant_scope(scan.organization):
        ScanRun.objects.filter(pk=scan.pk).update(
            status=ScanRun.RUNNING, started_at=clock.now(), heartbeat_at=clock.now()
        )
        units = list(scan.units.filter(status=ScanUnit.PENDING).select_related("account"))
    for unit in units:
        unit.organization = scan.organization
        unit.scan = scan
    run_units(units, workers=workers, processes=processes, progress=progress, fetched=fetched)
    return finish_scan(scan, actor, announce=announce)
