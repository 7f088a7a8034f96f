#!/usr/bin/env bash
# Create .venv with Python 3.11, install the locked requirements (hash-checked), then the project
# itself, editable and without dependencies: that puts its console scripts (tagsense-ci) in
# .venv/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/python.sh)
if [ ! -x .venv/bin/python ]; then
  if ! "$python" -m venv .venv 2>/dev/null; then
    # Debian splits venv out of the interpreter package.
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf .venv && "$python" -m venv .venv
    else
      echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)" >&2; exit 1
    fi
  fi
fi
# (This machine's pip configuration may name local package folders that do not exist; pip warns
# about each, so those warnings are filtered out.)
quiet_pip() { .venv/bin/python -m pip "$@" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }; }
quiet_pip install --quiet --upgrade pip
set -o pipefail
.venv/bin/python -m pip install --quiet --require-hashes -r requirements.lock 2>&1 |
  { grep -v "^WARNING: Location 'file:" || true; }
# Built with the setuptools pyproject.toml asks for (the venv's own lacks bdist_wheel).
quiet_pip install --quiet --no-deps -e .
touch .venv/.installed
