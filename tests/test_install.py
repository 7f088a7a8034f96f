"""`make install` installs the project itself, so its console scripts are in .venv/bin."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_ci_client_is_installed_with_the_project():
    script = ROOT / ".venv" / "bin" / "tagsense-ci"
    done = subprocess.run(  # noqa: S603
        [str(script), "check", "--help"], capture_output=True, text=True, timeout=60, cwd="/"
    )
    assert done.returncode == 0, done.stderr
    assert "usage: tagsense-ci check" in done.stdout and "--changed-only" in done.stdout


def test_make_install_installs_the_project_after_its_locked_requirements():
    venv = (ROOT / "scripts" / "venv.sh").read_text()
    locked = venv.index("-r requirements.lock")
    assert venv.index("--no-deps -e .", locked) > locked
    makefile = (ROOT / "Makefile").read_text()
    assert "$(INSTALLED): requirements.lock pyproject.toml" in makefile
