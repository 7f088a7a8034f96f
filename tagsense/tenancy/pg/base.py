"""PostgreSQL backend that takes the row-level-security role except while migrating.

Django's `assume_role` option issues `SET ROLE` on every new connection; this backend skips it
in owner mode (migrations, creating the test database) and, in the test settings only, flushes
tables as the owner with triggers disabled so transactional tests can empty the audit table.
"""

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from django.db import transaction
from django.db.backends.postgresql import base, operations
from django.db.backends.utils import CursorWrapper

from tagsense.tenancy import db


class DatabaseOperations(operations.DatabaseOperations):
    def execute_sql_flush(self, sql_list: Iterable[str]) -> None:
        if not db.flush_as_owner_enabled():
            return super().execute_sql_flush(sql_list)
        with transaction.atomic(using=self.connection.alias), self.connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE NONE")
            cursor.execute("SET LOCAL session_replication_role = replica")
            for sql in sql_list:
                cursor.execute(sql)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()
        owner = self.settings_dict.get("OWNER")
        if owner and db.owner_mode_active():
            # Migrations log in with the owner's own credentials (DATABASE_OWNER_URL).
            params.update(
                {
                    key: value
                    for key, value in (
                        ("user", owner.get("USER")),
                        ("password", owner.get("PASSWORD")),
                        ("host", owner.get("HOST")),
                        ("port", owner.get("PORT")),
                    )
                    if value
                }
            )
        return params

    def _configure_role(self, connection: Any) -> bool:
        if db.owner_mode_active():
            return False
        # misc: Django 5.2's PostgreSQL wrapper has _configure_role (the assume_role option);
        # django-stubs 5.2 does not declare it.
        configured: bool = super()._configure_role(connection)  # type: ignore[misc]
        return configured

    @contextlib.contextmanager
    def _nodb_cursor(self) -> Iterator[CursorWrapper]:
        # Creating or dropping a database happens as the login, before the role may exist.
        with db.owner_mode(reconnect=False), super()._nodb_cursor() as cursor:
            yield cursor
