#!/usr/bin/env bash
# `make run`'s time to serving: from starting scripts/run-embedded.sh on an empty var dir (a fresh
# clone's state) to the first 200 from /healthz, then the same again on the var dir it left (the
# second `make run`). Run from the root of a clone whose .venv is installed (or a symlink to one).
#   bench/make_run_startup.sh [RUNS]     (default 3 runs of each; prints one line per run)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
port() { .venv/bin/python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
one() {  # $1: var dir; prints seconds to serving
  local var=$1 web moto start pid
  web=$(port); moto=$(port)
  start=$(date +%s.%N)
  PORT=$web MOTO_PORT=$moto TAGSENSE_VAR_DIR=$var setsid scripts/run-embedded.sh >"$var.console" 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$web/healthz"; do
    kill -0 "$pid" 2>/dev/null || { echo "run-embedded.sh exited; see $var.console" >&2; exit 1; }
    sleep 0.1
  done
  echo "$(date +%s.%N) - $start" | bc
  kill -TERM -- "-$pid"
  wait "$pid" 2>/dev/null || true
}
for i in $(seq 1 "$runs"); do
  var=$(mktemp -d)/var
  printf 'run %s: fresh %6.1f s' "$i" "$(one "$var")"
  printf '   second %6.1f s   load: %s\n' "$(one "$var")" "$(uptime | sed 's/.*load average: //')"
  rm -rf "$(dirname "$var")"
done
