"""Row-level security: the second wall of tenancy, on PostgreSQL.

Every tenant table carries one policy that admits a row when its organization is the one named by
the per-transaction setting `tagsense.organization_id` (set by tenant_scope), or when the block
runs under all_tenants() (the Django admin, audit verification, system fan-out). With neither
set, a query returns nothing. The processes `SET ROLE` to a role that owns no table (the
`assume_role` database option), so the policies bind them; `manage.py migrate` runs as the
owner (owner_mode). On SQLite none of this applies and the ORM layer is the only wall.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.db import connections, transaction

from . import context

if TYPE_CHECKING:
    from accounts.models import Membership, Organization

logger = logging.getLogger(__name__)

ORG_SETTING = "tagsense.organization_id"
USER_SETTING = "tagsense.user_id"
ALL_SETTING = "tagsense.all_tenants"
_SETTINGS = (ORG_SETTING, USER_SETTING, ALL_SETTING)

_owner_mode = False


def owner_mode_active() -> bool:
    return _owner_mode


@contextlib.contextmanager
def owner_mode(*, reconnect: bool = True) -> Iterator[None]:
    """Connections opened inside stay the login role (the table owner): migrations only.

    With reconnect, open connections are closed on entry and exit so none carries the wrong role.
    """
    global _owner_mode
    previous = _owner_mode
    _owner_mode = True
    if reconnect:
        connections.close_all()
    try:
        yield
    finally:
        _owner_mode = previous
        if reconnect:
            connections.close_all()


# The settings of a transaction no scope has set: custom settings are unset (current_setting
# gives NULL, read as '') until a scope sets them, and each scope gives the one around it, or
# the transaction, its settings back (only _scope sets them).
_UNSET = {ORG_SETTING: "", USER_SETTING: "", ALL_SETTING: ""}


def _set(connection, values: dict[str, str]) -> None:
    """Set the given settings for the current transaction (PostgreSQL only)."""
    if connection.vendor != "postgresql":
        return
    params: list[Any] = []
    for name, value in values.items():
        params.extend([name, value])
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(values)), params)


@contextlib.contextmanager
def _scope(using: str, values: dict[str, str], **ctx: Any) -> Iterator[None]:
    connection = connections[using]
    # The settings the enclosing scope gave this transaction, or none set: known here, so
    # never read back from the database. A nested scope with the same values as the one
    # around it (a service's tenant_scope inside the view's) sets nothing.
    outer = getattr(connection, "tagsense_scope_values", None)
    previous = _UNSET if outer is None else outer
    # Its transaction ends with it (not so under a manual set_autocommit(False)).
    outermost = connection.get_autocommit() and not connection.in_atomic_block
    with transaction.atomic(using=using):
        if previous != values:
            _set(connection, values)
        connection.tagsense_scope_values = values
        try:
            with context.use(**ctx):
                yield
        finally:
            connection.tagsense_scope_values = outer
        # A nested scope hands the outer one (or the rest of the transaction) its settings
        # back; on an exception the savepoint's rollback restores them instead.
        if previous != values and not outermost and not connection.needs_rollback:
            _set(connection, previous)


def tenant_scope(
    organization: Organization,
    *,
    membership: Membership | None = None,
    actor: context.Actor | None = None,
    using: str = "default",
) -> contextlib.AbstractContextManager[None]:
    """Run a block in a transaction whose tenant is `organization`.

    Assumes the caller has already decided the actor may act for this organization (the view
    and API base classes resolve the membership first).
    """
    ctx: dict[str, Any] = {"organization": organization, "membership": membership}
    if actor is not None:
        ctx["actor"] = actor
    # No user setting here: the user's rows of other organizations stay invisible.
    values = {ORG_SETTING: str(organization.pk), USER_SETTING: "", ALL_SETTING: ""}
    return _scope(using, values, **ctx)


def user_scope(user: Any, using: str = "default") -> contextlib.AbstractContextManager[None]:
    """A transaction in which the user's own memberships (of every organization) are readable,
    never writable, and no tenant is set."""
    values = {ORG_SETTING: "", USER_SETTING: str(user.pk), ALL_SETTING: ""}
    return _scope(using, values)


def all_tenants(using: str = "default") -> contextlib.AbstractContextManager[None]:
    """Every organization's rows: for superusers' admin, audit verification and system fan-out."""
    values = {ORG_SETTING: "", USER_SETTING: "", ALL_SETTING: "on"}
    return _scope(using, values)


# --- policies ---------------------------------------------------------------------------------

CURRENT_ORG_SQL = f"NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint"
CURRENT_USER_SQL = f"NULLIF(current_setting('{USER_SETTING}', true), '')::bigint"
ALL_TENANTS_SQL = f"COALESCE(current_setting('{ALL_SETTING}', true), '') = 'on'"
POLICY_NAME = "tagsense_tenant_isolation"
OWN_ROWS_POLICY_NAME = "tagsense_own_rows"


def tenant_models() -> list[type]:
    from .models import TenantModel

    return [
        model
        for model in apps.get_models()
        if issubclass(model, TenantModel) and not model._meta.proxy and model._meta.managed
    ]


def policy_sql(model: type) -> str:
    """The USING/WITH CHECK expression of the tenant policy (every command)."""
    return f"(organization_id = {CURRENT_ORG_SQL}) OR ({ALL_TENANTS_SQL})"


def own_rows_sql(model: type) -> str | None:
    """The read-only policy for rows that belong to the current user, if the model has one."""
    user_column = getattr(model, "rls_user_column", None)
    return f"{user_column} = {CURRENT_USER_SQL}" if user_column else None


def sync_row_level_security(sender: Any = None, using: str = "default", **kwargs: Any) -> None:
    """After every migrate: the app role, its grants, and one policy per tenant table.

    Idempotent, so a new tenant model is covered by its first migrate without a hand-written
    migration.
    """
    if sender is not None and getattr(sender, "label", None) != "tenancy":
        return
    if not owner_mode_active():  # post_migrate also follows a test flush: nothing to change
        return
    connection = connections[using]
    if connection.vendor != "postgresql":
        return
    role = settings.DATABASE_APP_ROLE
    switches_role = bool(connection.settings_dict.get("OPTIONS", {}).get("assume_role"))
    qn = connection.ops.quote_name
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone() is None:
            cursor.execute(f"CREATE ROLE {qn(role)} NOLOGIN")
        # SET ROLE needs the login to be a member of the role (superusers are implicitly).
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if switches_role and not cursor.fetchone()[0]:
            cursor.execute(f"GRANT {qn(role)} TO CURRENT_USER")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {qn(role)}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {qn(role)}"
        )
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {qn(role)}")
        for model in tenant_models():
            table = qn(model._meta.db_table)
            if getattr(model, "append_only", False):
                cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {qn(role)}")
            expression = policy_sql(model)
            cursor.execute(f"DROP POLICY IF EXISTS {POLICY_NAME} ON {table}")
            cursor.execute(
                f"CREATE POLICY {POLICY_NAME} ON {table} USING ({expression}) "
                f"WITH CHECK ({expression})"
            )
            cursor.execute(f"DROP POLICY IF EXISTS {OWN_ROWS_POLICY_NAME} ON {table}")
            if own_rows := own_rows_sql(model):
                cursor.execute(
                    f"CREATE POLICY {OWN_ROWS_POLICY_NAME} ON {table} FOR SELECT USING ({own_rows})"
                )
            cursor.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    logger.info("row-level security in place for %d tenant tables", len(tenant_models()))


def flush_as_owner_enabled() -> bool:
    return bool(getattr(settings, "TENANCY_FLUSH_AS_OWNER", False))
