#!/usr/bin/env bash
# `make run`'s time to serving: from starting scripts/run-embedded.sh on an empty var dir (a fresh
# clone's state) to the first 200 from /healthz, then the same again on the var dir it left (the
# second `make run`). Run from the root of a clone whose .venv is installed (or a symlink to one).
#   bench/make_run_startup.sh [RUNS]     (default 3 runs of each; prints one line per run)
# WEB_PORT and MOTO_PORT fix the ports (on a shared machine, ports of your own); free ones else.
# CONSOLE_DIR=dir keeps each run's console there, every line prefixed with the seconds since the
# start (Python unbuffered, so a line's time is when it was written): where the time went.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
port() { .venv/bin/python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
stamp() {  # each line of stdin prefixed with the seconds since $1
  while IFS= read -r line; do
    printf '%7.1f %s\n' "$(echo "$(date +%s.%N) - $1" | bc)" "$line"
  done
}
one() {  # $1: var dir, $2: name of the run; prints seconds to serving
  local var=$1 web moto start pid
  web=${WEB_PORT:-$(port)}; moto=${MOTO_PORT:-$(port)}
  start=$(date +%s.%N)
  PORT=$web MOTO_PORT=$moto TAGSENSE_VAR_DIR=$var PYTHONUNBUFFERED=1 setsid scripts/run-embedded.sh \
    > >(stamp "$start" >"$var.console") 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$web/healthz"; do
    kill -0 "$pid" 2>/dev/null || { echo "run-embedded.sh exited; see $var.console" >&2; exit 1; }
    sleep 0.1
  done
  local took
  took=$(echo "$(date +%s.%N) - $start" | bc)
  echo "$took"
  kill -TERM -- "-$pid"
  wait "$pid" 2>/dev/null || true
  sleep 0.5  # the console's last lines
  printf '%7.1f (serving: the first 200 from /healthz)\n' "$took" >>"$var.console"
  if [ -n "${CONSOLE_DIR:-}" ]; then cp "$var.console" "$CONSOLE_DIR/$2.console"; fi
}
for i in $(seq 1 "$runs"); do
  var=$(mktemp -d)/var
  printf 'run %s: fresh %6.1f s' "$i" "$(one "$var" "run$i-fresh-$(date +%H%M%S)")"
  printf '   second %6.1f s   load: %s\n' "$(one "$var" "run$i-second-$(date +%H%M%S)")" \
    "$(uptime | sed 's/.*load average: //')"
  rm -rf "$(dirname "$var")"
done
