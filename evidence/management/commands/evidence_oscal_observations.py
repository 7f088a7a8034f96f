"""Write the OSCAL observations of an evidence package's failing resources (one per run of a
rule's findings, each finding a subject: evidence.oscal.write_rule_observations) from the
findings' spooled JSON lines to a file, and print what the package records of them as one
JSON line: {"count": ..., "by_rule": {rule id: [observation uuid, ...]}}.

Internal: evidence.package runs it beside a build (a million subjects are Python's work, which
in the build's own process would hold up its copies of the members). Reads no database.
Not audited: the build it is part of is."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand

from evidence import oscal
from evidence.package import failing_from_lines


class Command(BaseCommand):
    help = "Internal (evidence packages): write the failing resources' OSCAL observations."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("package_id")
        parser.add_argument("end", type=datetime.fromisoformat)
        parser.add_argument("findings", help="the findings' JSON lines, one record a line")
        parser.add_argument("path", help="the file to write the observations into")

    def handle(self, *args: Any, **options: Any) -> None:
        with open(options["findings"], "rb") as lines, open(options["path"], "r+b") as fp:
            count, by_rule = oscal.write_rule_observations(
                fp, options["package_id"], failing_from_lines(lines), options["end"]
            )
        self.stdout.write(json.dumps({"count": count, "by_rule": by_rule}))
