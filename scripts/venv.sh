#!/usr/bin/env bash
# Create .venv with Python 3.11 and install the locked requirements (hash-checked).
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
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --require-hashes -r requirements.lock
touch .venv/.installed
