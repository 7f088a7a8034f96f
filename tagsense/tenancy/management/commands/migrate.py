"""`migrate` runs as the database login (the table owner), never as the row-level-security role."""

from django.core.management.commands.migrate import Command as MigrateCommand

from tagsense.tenancy.db import owner_mode


class Command(MigrateCommand):
    def handle(self, *args, **options):
        with owner_mode():
            return super().handle(*args, **options)
