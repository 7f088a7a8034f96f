"""Record today's compliance scores of one organization (or all) from its current findings,
as the daily beat task does. `--demo-history` also writes the demo organization's invented,
labelled history (demo.history, plugged in as policies.scoring.scores.DEMO_HISTORY); it refuses any
other organization.

There is no backfill of past days from real data: findings keep only their current state, so a
past day's scores cannot be computed. Trends grow one measured point a day."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from policies.scoring import scores
from tagsense.tenancy import context
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope


class Command(BaseCommand):
    help = "Record today's compliance score snapshot (and, for the demo, labelled demo history)."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="organization slug (default: every organization)")
        parser.add_argument("--demo-history", action="store_true")

    def handle(self, *args, org=None, demo_history=False, **options):
        organizations = Organization.objects.all()
        if org:
            organizations = organizations.filter(slug=org)
            if not organizations.exists():
                raise CommandError(f"no organization {org!r}")
        actor = Actor.system("score_snapshot")
        for organization in organizations:
            with context.use(actor=actor), tenant_scope(organization, actor=actor):
                rows = scores.record_snapshot(organization, trigger="command")
                self.stdout.write(f"{organization.slug}: {rows} snapshot rows for today")
                if demo_history:
                    try:
                        seeded = scores.DEMO_HISTORY(organization)
                    except ValueError as exc:  # demo.NotTheDemo: not the demo organization
                        raise CommandError(str(exc)) from exc
                    self.stdout.write(f"{organization.slug}: {seeded} rows of DEMO history")
