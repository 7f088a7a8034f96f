"""The test settings on the embedded default's engine: SQLite, configured as `make run`
configures it (tagsense.settings.base.database), with no row-level security. The tests that
must hold on both engines run under it in a subprocess (tests/test_both_engines.py)."""

from .test import *  # noqa: F403
from .test import VAR_DIR, database, env

DATABASES = {
    "default": database(
        env.db("TAGSENSE_SQLITE_URL", default=f"sqlite:///{VAR_DIR / 'tagsense-test.sqlite3'}")
    )
}
TENANCY_FLUSH_AS_OWNER = False
