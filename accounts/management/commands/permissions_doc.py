"""Write docs/permissions.md from accounts/roles.py (or, with --check, fail if it differs)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.permissions import render_permissions_markdown

PATH = Path(settings.BASE_DIR) / "docs" / "permissions.md"


class Command(BaseCommand):
    help = "Render docs/permissions.md (the role × action matrix) from accounts/roles.py."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="fail if the file is stale")

    def handle(self, *args, check=False, **options):
        text = render_permissions_markdown()
        if check:
            if not PATH.exists() or PATH.read_text() != text:
                raise CommandError(f"{PATH} is stale: run manage.py permissions_doc")
            self.stdout.write("docs/permissions.md is up to date")
            return
        PATH.write_text(text)
        self.stdout.write(f"wrote {PATH}")
