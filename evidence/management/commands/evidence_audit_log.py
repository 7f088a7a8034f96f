"""Write an organization's audit log of a period to a file as an evidence package holds it
(audit.exports.write_chain_segment, verified), and print what the package records of it as
one JSON line: {"segment": ..., "verified": ..., "head": ...}.

Internal: evidence.package runs it beside a build (its per-event hashing is CPU work that the
build's own process, busy with the other files, would otherwise share one interpreter with).
Not audited: the build it is part of is."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand
from django.db import connections

from accounts.models import Organization
from audit import exports
from tagsense.tenancy.db import all_tenants, tenant_scope


class Command(BaseCommand):
    help = "Internal (evidence packages): write a period's audit log, verified, to a file."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("organization", type=int)
        parser.add_argument("start", type=datetime.fromisoformat)
        parser.add_argument("end", type=datetime.fromisoformat)
        parser.add_argument("path")
        parser.add_argument(
            "--database-name",
            help="the database to read, when the caller's is not the one settings name (a "
            "test runner's copy)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["database_name"]:
            named = connections["default"].settings_dict["NAME"]
            for alias in connections:
                if connections[alias].settings_dict["NAME"] == named:
                    connections[alias].settings_dict["NAME"] = options["database_name"]
        with all_tenants():
            organization = Organization.objects.get(pk=options["organization"])
        with open(options["path"], "r+b") as fp, tenant_scope(organization):
            segment = exports.write_chain_segment(
                fp, organization.pk, options["start"], options["end"], verify=True
            )
            head = exports.chain_head(organization.pk)
        verified = segment.pop("verified")
        self.stdout.write(
            json.dumps({"segment": segment, "verified": verified.found(), "head": head})
        )
