"""Row-level security: the second wall of tenancy.

Every tenant table carries one policy that admits a row when its organization is the one named by
the per-transaction setting `tagsense.organization_id` (set by tenant_scope), or when the block
runs under all_tenants() (the Django admin, audit verification, system fan-out). With neither
set, a query returns nothing. The processes work as a role that owns no table (a login that is a
member of it, or `SET ROLE` through the `assume_role` database option), so the policies bind
them; `manage.py migrate` runs as the owner (owner_mode).

Any SQL the app role runs can call `set_config()`, so the settings alone prove nothing. Each
scope also sets `tagsense.tenant_mac`, an HMAC-SHA256 under a key only this code and the table
owner know (`tenant_key()`) over the backend's pid, its start time and the three settings. The
policies read the settings only through owner-owned functions that recompute that MAC with the
key from a table the app role cannot read, and answer "no tenant" when it does not match: SQL
that changes a setting loses every row, and a MAC taken from another connection (even a later
backend that got the same pid) is worthless here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import psycopg
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections, transaction
from django.utils.crypto import salted_hmac

from . import context

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper

    from .models import Member, Organization, TenantModel

    class TenantConnection(BaseDatabaseWrapper):
        """Django's connection wrapper with the state this module keeps on it (the wrapper
        takes ad-hoc attributes; only the type checker sees this class)."""

        # The raw connection the backend's pid and start time were read on, and them.
        tagsense_backend: tuple[Any, int, str]
        # The settings the innermost open scope gave the transaction.
        tagsense_scope_values: dict[str, str] | None


logger = logging.getLogger(__name__)

ORG_SETTING = "tagsense.organization_id"
USER_SETTING = "tagsense.user_id"
ALL_SETTING = "tagsense.all_tenants"
MAC_SETTING = "tagsense.tenant_mac"
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


def tenant_key() -> bytes:
    """The key of the tenant settings' MAC: derived from SECRET_KEY for this purpose only, so
    `migrate` (which stores it, and those of SECRET_KEY_FALLBACKS, for the database) and the
    processes agree. Rotating SECRET_KEY means running `migrate` again (docs/architecture.md)."""
    return _derive_key(settings.SECRET_KEY)


@functools.lru_cache(maxsize=4)
def _derive_key(secret: str) -> bytes:
    return salted_hmac(
        "tagsense.tenancy.row_level_security", "tenant settings", secret=secret, algorithm="sha256"
    ).digest()


def tenant_mac(backend_pid: int, backend_start: str, values: dict[str, str]) -> str:
    """The MAC the policy functions expect for these settings on this database backend, which
    the pid and the start time (`BACKEND_START_SQL`'s text) identify: the OS reuses pids."""
    message = (
        f"{backend_pid}|{backend_start}|"
        f"{values[ORG_SETTING]}|{values[USER_SETTING]}|{values[ALL_SETTING]}"
    )
    return hmac.new(tenant_key(), message.encode(), hashlib.sha256).hexdigest()


def _backend(connection: TenantConnection) -> tuple[int, str]:
    """This connection's backend pid and start time: read once per new database connection
    (cached on the wrapper with the raw connection it belongs to), never per scope."""

    raw = connection.connection
    cached = getattr(connection, "tagsense_backend", None)
    if cached is not None and cached[0] is raw:
        return cached[1], cached[2]
    with psycopg.Cursor(raw) as cursor:
        cursor.execute(f"SELECT pg_catalog.pg_backend_pid(), {BACKEND_START_SQL}")
        row = cursor.fetchone()
        assert row is not None  # a SELECT without FROM answers one row
        pid, start = row
    if start is None:  # fail closed: the functions would refuse every MAC on this backend
        start = ""
    connection.tagsense_backend = (raw, pid, start)
    return pid, start


def _execute_bound(connection: BaseDatabaseWrapper, sql: str, params: list[Any]) -> None:
    """Run one statement with its parameters bound by the server, not by Django.

    Django's psycopg cursors inline parameters into the statement's text, which
    pg_stat_activity shows to every session of the same role (and the query log records);
    here the text keeps `$1`, `$2`, ... and the values travel apart. Nor does the statement
    pass Django's query logging, which would log its parameters.
    """

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)


def _set(connection: TenantConnection, values: dict[str, str]) -> None:
    """Set the given settings, and their MAC, for the current transaction: one statement."""
    connection.ensure_connection()
    with connection.wrap_database_errors:
        mac = tenant_mac(*_backend(connection), values)
    params: list[Any] = []
    for name, value in {**values, MAC_SETTING: mac}.items():
        params.extend([name, value])
    _execute_bound(
        connection, "SELECT " + ", ".join(["set_config(%s, %s, true)"] * (len(values) + 1)), params
    )


@contextlib.contextmanager
def _scope(using: str, values: dict[str, str], **ctx: Any) -> Iterator[None]:
    connection = cast("TenantConnection", connections[using])
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
    membership: Member | None = None,
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

# The policies never read a setting themselves: they call these owner-owned functions, which
# answer only when the transaction's MAC matches its settings. `(SELECT f())` makes each an
# initplan: run once per statement, not per row, and usable as an index condition.
KEY_TABLE = "tagsense_tenant_key"
ORG_FUNCTION = "tagsense_tenant_org"
USER_FUNCTION = "tagsense_tenant_user"
ALL_FUNCTION = "tagsense_tenant_all"
# Each of the three is a SECURITY INVOKER wrapper that reads the backend's start time and
# hands it to a SECURITY DEFINER function of this suffix, which checks the MAC with the key.
CHECKED_SUFFIX = "_checked"
# The owner's view of its own backend's start (SECURITY DEFINER), for the one-login set-up.
OWNER_START_FUNCTION = "tagsense_backend_start_as_owner"
CURRENT_ORG_SQL = f"(SELECT public.{ORG_FUNCTION}())"
CURRENT_USER_SQL = f"(SELECT public.{USER_FUNCTION}())"
ALL_TENANTS_SQL = f"(SELECT public.{ALL_FUNCTION}())"
POLICY_NAME = "tagsense_tenant_isolation"
OWN_ROWS_POLICY_NAME = "tagsense_own_rows"


def _setting(name: str) -> str:
    return f"coalesce(current_setting('{name}', true), '')"


# This backend's start time, as the text of a numeric (epoch seconds with microseconds, the
# same whatever DateStyle or TimeZone): with the pid, it names one backend for good. PostgreSQL
# shows a backend's start only to roles with the privileges of its login (or
# pg_read_all_stats): the login itself with separate logins (the invoker here), the owner with
# one login (the login is the owner, the invoker the app role). Hence both views; each is
# about this backend only and neither can be altered by SQL.
_OWN_START_SQL = (
    "(SELECT extract(epoch FROM s.backend_start)::text "
    "FROM pg_catalog.pg_stat_get_activity(pg_catalog.pg_backend_pid()) s)"
)
BACKEND_START_SQL = f"coalesce({_OWN_START_SQL}, public.{OWNER_START_FUNCTION}())"

# HMAC-SHA256(K, msg) = sha256(K^opad || sha256(K^ipad || msg)), with PostgreSQL's built-in
# sha256() (no pgcrypto) and the padded keys read from the owner-only key table `k`. The MAC is
# compared as hex text, so a malformed one is a mismatch, not an error. `$1` is the backend's
# start, passed by the invoker wrapper: NULL (unreadable) makes the message NULL, a mismatch.
# Calling the checked function directly with another start only answers the caller; the
# policies call the wrappers, which compute it themselves.
_MAC_MATCHES_SQL = (
    "encode(sha256(k.opad || sha256(k.ipad || convert_to(pg_backend_pid()::text || '|' || "
    "$1 || '|' || "
    + " || '|' || ".join(_setting(name) for name in _SETTINGS)
    + f", 'UTF8'))), 'hex') = current_setting('{MAC_SETTING}', true)"
)
_FUNCTIONS = {
    ORG_FUNCTION: ("bigint", f"NULLIF(current_setting('{ORG_SETTING}', true), '')::bigint"),
    USER_FUNCTION: ("bigint", f"NULLIF(current_setting('{USER_SETTING}', true), '')::bigint"),
    ALL_FUNCTION: ("boolean", f"{_setting(ALL_SETTING)} = 'on'"),
}


def _function_sql(name: str) -> list[str]:
    returns, value = _FUNCTIONS[name]
    # SECURITY DEFINER: runs as the owner, who alone may read the key. The fixed search_path
    # (pg_temp last) keeps a caller's temporary objects from standing in for the key table.
    otherwise = "false" if returns == "boolean" else "NULL"
    # Only constants go into this text.
    checked = (
        f"CREATE OR REPLACE FUNCTION public.{name}{CHECKED_SUFFIX}(text) RETURNS {returns} "  # noqa: S608
        "LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$ "
        f"SELECT coalesce((SELECT CASE WHEN bool_or({_MAC_MATCHES_SQL}) THEN {value} END "
        f"FROM public.{KEY_TABLE} k), {otherwise}) $fn$"
    )
    # The wrapper the policies call runs as the invoker, so that it can read the start time of
    # a backend whose login is not the owner (see BACKEND_START_SQL).
    wrapper = (
        f"CREATE OR REPLACE FUNCTION public.{name}() RETURNS {returns} LANGUAGE sql STABLE "
        "SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $fn$ "
        f"SELECT public.{name}{CHECKED_SUFFIX}({BACKEND_START_SQL}) $fn$"
    )
    return [checked, wrapper]


_OWNER_START_FUNCTION_SQL = (
    f"CREATE OR REPLACE FUNCTION public.{OWNER_START_FUNCTION}() RETURNS text LANGUAGE sql "
    "STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$ "
    f"SELECT {_OWN_START_SQL} $fn$"
)


def _padded_keys(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys (block size 64 bytes)."""
    block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def _install_tenant_functions(
    connection: BaseDatabaseWrapper, cursor: CursorWrapper, role: str
) -> None:
    """The key table (owner only), the keys of SECRET_KEY and of each SECRET_KEY_FALLBACKS
    entry, and the policy functions. A process MACs with SECRET_KEY's key; the functions accept
    any stored key, so a rotation (new key, old one in the fallbacks, then `migrate`) lets the
    processes still on the old key and those on the new one both work until the fallback goes."""
    qn = connection.ops.quote_name
    cursor.execute(
        f"CREATE TABLE IF NOT EXISTS public.{KEY_TABLE} (id smallint PRIMARY KEY, "
        "ipad bytea NOT NULL, opad bytea NOT NULL)"
    )
    # Databases migrated while the table held exactly one key carry this constraint.
    cursor.execute(f"ALTER TABLE public.{KEY_TABLE} DROP CONSTRAINT IF EXISTS {KEY_TABLE}_id_check")
    cursor.execute(f"REVOKE ALL ON public.{KEY_TABLE} FROM PUBLIC, {qn(role)}")
    cursor.execute(f"DELETE FROM public.{KEY_TABLE}")  # noqa: S608 - a constant
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    for position, secret in enumerate(dict.fromkeys(secrets)):
        ipad, opad = _padded_keys(_derive_key(secret))
        _execute_bound(
            connection,
            f"INSERT INTO public.{KEY_TABLE} (id, ipad, opad) VALUES (%s, %s, %s)",  # noqa: S608
            [position, ipad, opad],
        )
    cursor.execute(_OWNER_START_FUNCTION_SQL)
    for name in _FUNCTIONS:
        for statement in _function_sql(name):
            cursor.execute(statement)


def tenant_settings_problem(using: str = "default") -> str | None:
    """Why the database would refuse this process's tenant settings, or None when it accepts
    them: the policy functions are missing, or the key `migrate` stored differs from this
    process's (SECRET_KEY changed since the last migrate)."""
    connection = connections[using]
    try:
        with all_tenants(using), connection.cursor() as cursor:
            cursor.execute(f"SELECT public.{ALL_FUNCTION}()")
            accepted = cursor.fetchone()[0]
    except DatabaseError:
        return "row-level security functions missing: run migrate"
    if not accepted:
        return "row-level security key differs from the database's: run migrate"
    return None


def tenant_models() -> list[type[TenantModel]]:
    from .models import TenantModel  # noqa: PLC0415 - tenancy.models imports this module

    return [
        model
        for model in apps.get_models()
        if issubclass(model, TenantModel) and not model._meta.proxy and model._meta.managed
    ]


def policy_sql(model: type[TenantModel]) -> str:
    """The USING/WITH CHECK expression of the tenant policy (every command)."""
    return f"(organization_id = {CURRENT_ORG_SQL}) OR ({ALL_TENANTS_SQL})"


def own_rows_sql(model: type[TenantModel]) -> str | None:
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
        _install_tenant_functions(connection, cursor, role)
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
