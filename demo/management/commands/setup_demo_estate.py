"""The embedded default's AWS: seed the simulated estate into moto_server, register its accounts
in the demo organization (discovered from its AWS Organization) and scan it, so the inventory is
full the moment the portal opens. Idempotent: a server that already holds the estate is reused.

The scan reads the estate from moto once (inventory.runner.fetch_units). For a new demo
organization, the 89 days before today are then simulated from those pages through the real
scan, evaluation and snapshot code with the clock set to each day (demo.simulation), and only
then are the pages stored as today's scan: history stays in time order, and the present is
exactly what the scan read. An organization with scans already is scanned, never re-simulated.
"""

import json
import os
import time
import urllib.request
from contextlib import nullcontext
from datetime import timedelta

import boto3
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Organization, Team
from demo import estate, simulation
from demo.costs import seed_demo_costs
from inventory import discovery, runner, schedules, services
from inventory.models import AwsAccount, ScanRun, ScanSchedule
from policies import evaluation
from policies import services as policy_services
from policies.models import ScoreSnapshot
from policies.scoring import scores
from tagsense import clock
from tagsense.tenancy import context
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope


def _seed_random(endpoint: str, seed: int) -> None:
    """moto's ids follow this seed, so the same estate gets the same ids on every start."""
    request = urllib.request.Request(f"{endpoint}/moto-api/seed?a={seed}", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - the local moto server
        pass


def _has_organization(endpoint: str) -> str | None:
    client = boto3.client("organizations", endpoint_url=endpoint, region_name="us-east-1")
    try:
        return client.describe_organization()["Organization"]["MasterAccountId"]
    except client.exceptions.AWSOrganizationsNotInUseException:
        return None


def seeded_message(summary: estate.EstateSummary) -> str:
    """What was seeded, and what AWS (moto) made by itself that the first scan finds too, so
    that the scan's count does not look like a discrepancy."""
    text = (
        f"Seeded {summary.total} resources in {len(summary.accounts)} member accounts "
        f"({summary.seconds:.0f} s): " + json.dumps(dict(sorted(summary.counts.items())))
    )
    made = sum(summary.defaults.values())
    if made:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(summary.defaults.items()))
        text += (
            f"\nAWS (moto) also made {made} default resources by itself ({kinds}: each "
            f"region's default VPC and subnets, each VPC's default security group); the scan "
            f"finds them too, about {summary.total + made} resources in all."
        )
    return text


class Command(BaseCommand):
    help = "Seed the demo AWS estate into moto_server, register it in the demo organization, scan."
    # Checked already: `make run` runs it after migrate, and with --seed-only beside it (the
    # system checks import every URLconf and admin: about a second of its start).
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL", ""))
        parser.add_argument("--resources", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--no-scan", action="store_true")
        parser.add_argument(
            "--seed-only",
            action="store_true",
            help="seed the estate into moto (unless it holds it) and stop; reads no database, "
            "so it can run while the database is prepared",
        )
        parser.add_argument("--workers", type=int, default=4)

    def handle(self, *args, endpoint, resources, seed, no_scan, seed_only, workers, **options):
        if not endpoint:
            raise CommandError("name the moto server with --endpoint or AWS_ENDPOINT_URL")
        endpoint = endpoint.rstrip("/")
        if seed_only:
            self._seed(endpoint, resources, seed)
            return
        organization = Organization.objects.filter(slug=settings.TAGSENSE_DEMO_ORG_SLUG).first()
        if organization is None:
            raise CommandError("run setup_demo first: there is no demo organization")
        started = time.monotonic()
        management_id = self._seed(endpoint, resources, seed)
        actor = Actor.system("setup_demo_estate")
        today = timezone.now().date()
        with tenant_scope(organization, actor=actor):
            simulate = not no_scan and not ScanRun.objects.for_org(organization).exists()
        # A new organization's accounts are registered when its simulated history starts.
        registered_at = simulation.first_moment(today) - timedelta(hours=1)
        with (
            context.use(actor=actor),
            clock.at(registered_at) if simulate else nullcontext(),
            tenant_scope(organization, actor=actor),
        ):
            found, created = _register(organization, management_id)
        self.stdout.write(
            f"{len(found)} accounts in the AWS Organization, {len(created)} newly registered."
        )
        if no_scan:
            return
        with context.use(actor=actor):
            pages = None
            if simulate:  # reads the estate once: its first day, and today's pages
                pages = self._simulate(organization, today, workers)
            scan = self._scan(organization, actor, workers, pages)
        self.stdout.write(
            f"Scan #{scan.pk} {scan.status}: {scan.new} new, {scan.changed} changed, "
            f"{scan.unchanged} unchanged, {scan.deleted} deleted "
            f"({time.monotonic() - started:.0f} s in all)."
        )
        with context.use(actor=actor), tenant_scope(organization, actor=actor):
            self.stdout.write(_demo_costs(organization))
            self.stdout.write(_frameworks_and_scores(organization))

    def _seed(self, endpoint: str, resources: int, seed: int) -> str:
        """Seed the estate unless the server holds it already; the management account's id."""
        management_id = _has_organization(endpoint)
        if management_id is None:
            _seed_random(endpoint, seed)
            summary = estate.seed_estate(endpoint, resources=resources, seed=seed)
            management_id = summary.management_account_id
            self.stdout.write(seeded_message(summary))
        else:
            self.stdout.write("The moto server holds the demo estate.")
        return management_id

    def _simulate(self, organization, today, workers: int) -> dict:
        """The simulated days before today (demo.simulation), the built-in frameworks enabled
        when they start; today's pages of every unit, read from moto on the first day."""
        began = time.monotonic()
        pages, counts = simulation.simulate(
            organization,
            frameworks=sorted(policy_services.builtin_library()),
            today=today,
            workers=workers,
            progress=_starting_page,
        )
        records = sum(len(page) for fetched in pages.values() for page in fetched.pages)
        self.stdout.write(
            f"Simulated the {counts['days']} days before today from the {records} resources "
            f"read from AWS (moto), through the real scan, evaluation and snapshot code with "
            f'the clock set to each day: one scan a day (trigger "{simulation.TRIGGER}"), '
            f"{counts['snapshot_rows']} snapshot rows, {counts['rule_versions']} rule edits "
            f"({time.monotonic() - began:.1f} s)."
        )
        return pages

    def _scan(self, organization, actor, workers: int, pages: dict | None):
        """Today's full scan, run here (not by a worker): the `pages` the simulation read from
        moto when there are some, stored in one transaction (runner.store_fetched_scan, the
        writer and close of every scan), else read now, reporting progress every 2 s."""
        if pages is not None:
            _starting_page("Storing today's scan of the estate…")
            with tenant_scope(organization, actor=actor), simulation.without_savepoints():
                return runner.store_fetched_scan(
                    organization, scope=runner.Scope(), fetched=pages, actor=actor, trigger="demo"
                )
        with tenant_scope(organization, actor=actor):
            try:
                scan = runner.plan_scan(
                    organization, scope=runner.Scope(), actor=actor, trigger="demo"
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        last = [0.0]

        def progress(run, unit):
            if time.monotonic() - last[0] > 2 or run.units_done == run.units_total:
                last[0] = time.monotonic()
                self.stdout.write(
                    f"  scanning: {run.units_done}/{run.units_total} units, "
                    f"{run.new + run.changed + run.unchanged} resources"
                )

        return runner.run_scan_inline(scan, actor=actor, workers=workers, progress=progress)


def _starting_page(text: str) -> None:
    """What the portal's starting page says (tagsense.starting), while `make run` starts it
    beside this command (TAGSENSE_STARTING_FILE; nothing without). Replaced whole, so the page
    never reads half a line."""
    path = getattr(settings, "TAGSENSE_STARTING_FILE", "")
    if not path:
        return
    staged = f"{path}.{os.getpid()}"
    with open(staged, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(staged, path)


def _register(organization, management_id: str) -> tuple[list, list]:
    """The management account (registered through the service, so it is audited), the member
    accounts discovered from its AWS Organization, the demo teams' grants and a nightly
    schedule. Inside the organization's tenant scope. (found, newly registered)."""
    management = AwsAccount.objects.for_org(organization).filter(account_id=management_id).first()
    if management is None:
        management = services.register_account(
            organization,
            account_id=management_id,
            name="Management",
            regions=list(estate.DEFAULT_REGIONS),
            is_management=True,
            ou_path="Root",
        )
    found = discovery.discover(management)
    created = discovery.register_discovered(management, found)
    _grant_demo_accounts(organization)
    if not ScanSchedule.objects.for_org(organization).exists():
        schedules.create_schedule(
            organization,
            name="Nightly full scan",
            account=None,
            kind="cron",
            cron="0 2 * * *",
            tz="UTC",
        )
    return found, created


def _demo_costs(organization) -> str:
    """The labelled DEMO costs of the estate's running instances (demo.costs): moto tracks no
    cost and has no GetCostAndUsageWithResources for the real import to read."""
    rows = seed_demo_costs(organization)
    return f"{rows} rows of labelled demo costs (running instances, last 14 days; not measured)."


def _frameworks_and_scores(organization) -> str:
    """Enable the four built-in frameworks (installing the rules they cite that are missing;
    refreshing their controls), evaluate what changed, and record today's scores."""
    names = []
    for framework_id in sorted(policy_services.builtin_library()):
        names.append(policy_services.enable_framework(organization, framework_id).name)
    result = evaluation.evaluate_organization(organization, trigger="demo")
    scores.record_snapshot(organization, trigger="demo")
    days = ScoreSnapshot.objects.for_org(organization).values("day").distinct().count()
    return (
        f"Frameworks enabled: {', '.join(names)}; {result['failing']} findings open; "
        f"scores recorded for {days} days, each computed from recorded history."
    )


# Which demo team holds the accounts of which OU path (setup_demo creates the teams): the demo's
# editors and viewers see their teams' accounts only.
DEMO_TEAM_OUS = {
    "Platform": ("Root/Production", "Root/Development"),
    "Security": ("Root", "Root/Security"),
    "FinOps": ("Root/Production",),
}


def _grant_demo_accounts(organization) -> None:
    teams = {t.name: t for t in Team.objects.for_org(organization)}
    for account in AwsAccount.objects.for_org(organization):
        for name, ous in DEMO_TEAM_OUS.items():
            if name in teams and account.ou_path in ous:
                services.grant_account(account, teams[name])
