"""Verify the audit chains against the chain key and the anchors: exit 0 when intact, 1 naming
the first bad event (or the anchor the database no longer matches) otherwise."""

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.services import verify_all
from tagsense.tenancy import get_organization_model


class Command(BaseCommand):
    help = "Verify the audit log's hash chain of one organization, or of all and the global one."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--org", metavar="SLUG", help="only this organization's chain")

    def handle(self, *args: Any, org: str | None = None, **options: Any) -> None:
        organizations = get_organization_model().objects
        if org:
            organization = organizations.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"no organization with slug {org!r}")
            chains: list[tuple[str, int | None]] = [(organization.slug, organization.pk)]
        else:
            chains = [(o.slug, o.pk) for o in organizations.order_by("slug")]
            chains.append(("(global)", None))
        reports = verify_all([pk for _, pk in chains])
        broken = 0
        for (label, _), report in zip(chains, reports, strict=True):
            if report.intact:
                if report.anchored:
                    anchoring = (
                        f"{report.anchors} anchors match, the last at #{report.last_anchor_seq}"
                    )
                else:
                    anchoring = "UNANCHORED: no anchor store is configured (AUDIT_ANCHOR_BUCKET)"
                self.stdout.write(
                    f"{label}: intact, {report.events} events, head {report.head_hash}; {anchoring}"
                )
                continue
            broken += 1
            bad = report.first_bad
            where = (
                f" at event id={bad.pk} #{bad.seq} {bad.action} "
                f"at {bad.created_at:%Y-%m-%d %H:%M:%S}"
                if bad
                else ""
            )
            self.stderr.write(f"{label}: BROKEN{where}: {report.problem}")
        if broken:
            raise CommandError(f"{broken} audit chain(s) broken", returncode=1)
