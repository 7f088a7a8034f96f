"""The tests that must hold on the embedded default's engine run again on SQLite: pytest in a
subprocess with tagsense.settings.test_sqlite (the suite itself runs on PostgreSQL). Each module
listed asserts against what its data says, so passing on both engines means the same rows on
both."""

import os
import subprocess
import sys

from django.conf import settings

ON_BOTH_ENGINES = ["tests/test_filters_every_engine.py"]


def test_filters_give_the_same_rows_on_sqlite(tmp_path):
    env = {**os.environ, "TAGSENSE_VAR_DIR": str(tmp_path), "TAGSENSE_TEST_ENGINE": "sqlite"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--ds=tagsense.settings.test_sqlite", *ON_BOTH_ENGINES],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20_000:]
    assert " passed" in output and "skipped" not in output and "failed" not in output, output
