"""`migrate` runs as the database login (the table owner), never as the row-level-security role."""

from typing import Any

from django.core.management.commands.migrate import Command as MigrateCommand

from tagsense.tenancy.db import owner_mode


class Command(MigrateCommand):
    def handle(self, *args: Any, **options: Any) -> str | None:
        with owner_mode():
            return super().handle(*args, **options)
