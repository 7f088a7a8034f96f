"""Seed a demo AWS estate (an AWS Organization, member accounts, resources of every scanned
type with realistic tag hygiene) into a running moto server. Touches no database: registering
the accounts in TagSense and scanning them are separate steps."""

import time

from botocore.exceptions import BotoCoreError
from django.core.management.base import BaseCommand, CommandError

from demo.estate import DEFAULT_REGIONS, EstateError, reset_moto, seed_estate


class Command(BaseCommand):
    help = "Seed a demo AWS estate into a moto server (never real AWS)."
    requires_system_checks = []  # nothing here reads the database or the models

    def add_arguments(self, parser):
        parser.add_argument(
            "--endpoint", required=True, metavar="URL", help="moto server, http://host:port"
        )
        parser.add_argument("--resources", type=int, default=2000, metavar="N")
        parser.add_argument("--seed", type=int, default=7, metavar="S")
        parser.add_argument(
            "--region",
            action="append",
            default=[],
            metavar="R",
            help=f"repeatable; default {' '.join(DEFAULT_REGIONS)}",
        )
        parser.add_argument(
            "--external-id", default="", help="sts:ExternalId required by TagSenseReadOnly"
        )
        parser.add_argument(
            "--reset", action="store_true", help="forget everything the moto server holds first"
        )

    def handle(self, *args, **o):
        if o["resources"] < 0:
            raise CommandError("--resources must be 0 or more")
        started = time.monotonic()
        try:
            if o["reset"]:
                reset_moto(o["endpoint"])
            summary = seed_estate(
                o["endpoint"],
                resources=o["resources"],
                seed=o["seed"],
                regions=tuple(o["region"]) or DEFAULT_REGIONS,
                external_id=o["external_id"],
            )
        except (EstateError, ValueError, OSError, BotoCoreError) as exc:
            raise CommandError(str(exc)) from exc
        seconds = time.monotonic() - started
        out = self.stdout.write
        out(
            f"Organization {summary.organization_id}, "
            f"management account {summary.management_account_id}"
        )
        out("Member accounts:")
        for account in summary.accounts:
            out(
                f"  {account['account_id']}  {account['name']:<18} {account['ou_path']:<18} "
                f"{account['role_arn']}"
            )
            out(f"  {'':12}  regions: {', '.join(account['regions'])}")
        out("Resources:")
        for resource_type, count in summary.counts.items():
            out(f"  {resource_type:<34} {count:>6}")
        out(f"  {'total':<34} {summary.total:>6}")
        if summary.defaults:
            made = ", ".join(f"{t} {n}" for t, n in summary.defaults.items())
            out(f"Also there, made by AWS (default VPCs, subnets, security groups): {made}")
        hygiene = ", ".join(f"{name} {n}" for name, n in summary.hygiene.items())
        out(f"Tag hygiene (resources per card): {hygiene}")
        for note in summary.notes:
            self.stderr.write(f"note: {note}")
        out(f"Seeded in {seconds:.1f} s ({summary.api_calls} API calls)")
