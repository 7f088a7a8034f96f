"""Scan an organization's AWS accounts inline, with a progress bar."""

import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from inventory import runner
from inventory.scanners.base import scanners
from tagsense.tenancy import context
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = int(width * done / total) if total else width
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class Command(BaseCommand):
    help = "Scan AWS accounts of one organization now (inline, not through the workers)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, metavar="SLUG")
        parser.add_argument("--account", action="append", default=[], metavar="ID")
        parser.add_argument("--region", action="append", default=[], metavar="R")
        parser.add_argument(
            "--type", action="append", default=[], metavar="T", help="e.g. ec2:instance"
        )
        parser.add_argument("--workers", type=int, default=4, help="units scanned at once")
        parser.add_argument(
            "--processes",
            action="store_true",
            help="run the units in worker processes instead of threads (uses every core)",
        )
        parser.add_argument("--list-types", action="store_true")

    def handle(self, *args, **o):
        if o["list_types"]:
            for name, cls in scanners().items():
                self.stdout.write(f"{name:36} {cls.label}")
            return
        organization = Organization.objects.filter(slug=o["org"]).first()
        if organization is None:
            raise CommandError(f"no organization {o['org']!r}")
        actor = Actor.system("cli:scan")
        scope = runner.Scope(tuple(o["account"]), tuple(o["region"]), tuple(o["type"]))
        with context.use(actor=actor):
            try:
                with tenant_scope(organization):
                    scan = runner.plan_scan(organization, scope=scope, actor=actor, trigger="cli")
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            interactive = sys.stdout.isatty()

            def progress(run, unit):
                line = (
                    f"{_bar(run.units_done, run.units_total)} {run.units_done}/{run.units_total}"
                    f"  new {run.new}  changed {run.changed}  deleted {run.deleted}"
                    f"  failed {run.units_failed}"
                )
                self.stdout.write(("\r" + line) if interactive else line, ending="")
                if not interactive:
                    self.stdout.write("")

            scan = runner.run_scan_inline(
                scan,
                actor=actor,
                workers=o["workers"],
                processes=o["processes"],
                progress=progress,
            )
        self.stdout.write("")
        self.stdout.write(
            f"scan {scan.pk} {scan.status}: {scan.new} new, {scan.changed} changed, "
            f"{scan.unchanged} unchanged, {scan.deleted} deleted, {scan.api_calls} API calls"
        )
        if scan.units_failed:
            with tenant_scope(organization):
                for unit in scan.units.filter(status="failed").select_related("account"):
                    self.stderr.write(
                        f"  failed: {unit.account.account_id} {unit.region} "
                        f"{unit.resource_type}: {unit.error_code} {unit.error[:200]}"
                    )
        if scan.status == "failed":
            raise CommandError("every unit failed")
