"""Record today's compliance scores of one organization (or all) from its current findings,
as the daily beat task does. Every snapshot is computed from recorded findings: the demo's past
days too, which it simulates through the real scan and evaluation code (demo.simulation)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from policies.scoring import scores
from tagsense.tenancy import context
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope


class Command(BaseCommand):
    help = "Record today's compliance score snapshot."

    def add_arguments(self, parser):
        parser.add_argument("--org", help="organization slug (default: every organization)")

    def handle(self, *args, org=None, **options):
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
