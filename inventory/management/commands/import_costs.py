"""Import resource costs from AWS Cost Explorer (inventory.costs), or write the demo's labelled
demo costs (demo.costs, plugged in as inventory.costs.DEMO_COSTS)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from inventory import costs
from tagsense.tenancy import context
from tagsense.tenancy.context import Actor
from tagsense.tenancy.db import tenant_scope


class Command(BaseCommand):
    help = (
        "Import the last 14 days of resource-level costs from AWS Cost Explorer "
        "(GetCostAndUsageWithResources) for an organization's enabled accounts."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--org", help="the organization's slug")
        which.add_argument("--all", action="store_true", help="every organization")
        parser.add_argument(
            "--account", action="append", default=[], help="only this account id (repeatable)"
        )
        parser.add_argument(
            "--demo",
            action="store_true",
            help="write the demo organization's invented, labelled demo costs instead of importing",
        )

    def handle(self, *args, org, all, account, demo, **options):
        actor = Actor.system("import_costs")
        organizations = Organization.objects.order_by("slug")
        if org:
            organizations = organizations.filter(slug=org)
            if not organizations.exists():
                raise CommandError(f"no organization {org}")
        for organization in organizations:
            with context.use(actor=actor, organization=organization):
                if demo:
                    if organization.slug != settings.TAGSENSE_DEMO_ORG_SLUG:
                        raise CommandError("demo costs are only for the demo organization")
                    with tenant_scope(organization, actor=actor):
                        rows = costs.DEMO_COSTS(organization)
                    self.stdout.write(
                        f"{organization.slug}: {rows} rows of demo costs (not measured)"
                    )
                    continue
                try:
                    result = costs.import_costs(organization, actor=actor, account_ids=account)
                except ValueError as exc:
                    if org:
                        raise CommandError(str(exc)) from exc
                    continue
            failed = ", ".join(f"{a} ({code})" for a, code in result["failed"])
            self.stdout.write(
                f"{organization.slug}: {result['rows']} cost rows for {result['accounts']} "
                f"accounts ({result['linked']} linked to resources), {result['amount']} "
                f"{result['currency']} over {result['period'][0]}..{result['period'][1]}"
                + (f"; failed: {failed}" if failed else "")
            )
