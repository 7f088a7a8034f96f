#!/usr/bin/env bash
# The embedded default: a private PostgreSQL from a wheel (data in var/pgdata), kombu's
# filesystem broker, a Celery worker with beat, a simulated AWS estate served by moto_server, and
# the portal on http://127.0.0.1:8000 with the demo organization. No AWS account, database
# server or API key needed.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE=tagsense.settings.local
PORT=${PORT:-8000}
MOTO_PORT=${MOTO_PORT:-5001}
VAR=${TAGSENSE_VAR_DIR:-var}
DEMO_RESOURCES=${TAGSENSE_DEMO_RESOURCES:-2000}
py=.venv/bin/python
mkdir -p "$VAR/log"

answers() { $py -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$1" >/dev/null 2>&1; }
pids=()
db_pid=
cleanup() {
  rm -f "$VAR/starting"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$db_pid" ]; then
    wait "$db_pid" 2>/dev/null || true  # a start still under way finishes first
    $py -m tagsense.embedded_db stop "$VAR" || true
  fi
}
trap cleanup EXIT INT TERM

# The database starts while moto_server does (initdb the first time, ~2 s).
echo "Starting the embedded PostgreSQL (data in $VAR/pgdata)..."
$py -m tagsense.embedded_db start "$VAR" >"$VAR/database-url" 2>"$VAR/log/database.log" &
db_pid=$!

# The simulated AWS: every process below talks to it, never to real AWS.
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN || true
if answers "$AWS_ENDPOINT_URL/moto-api/"; then
  echo "A moto server already answers on port $MOTO_PORT: reusing it."
else
  MOTO_EC2_LOAD_DEFAULT_AMIS=false .venv/bin/moto_server -H 127.0.0.1 -p "$MOTO_PORT" \
    >"$VAR/log/moto.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    answers "$AWS_ENDPOINT_URL/moto-api/" && break
    sleep 0.2
  done
  answers "$AWS_ENDPOINT_URL/moto-api/" || { echo "moto_server did not start (see $VAR/log/moto.log)"; exit 1; }
fi

# Seeding moto needs no database: it runs while the database is started and prepared.
echo "Seeding the simulated AWS estate ($DEMO_RESOURCES resources) while the database is prepared..."
$py manage.py setup_demo_estate --seed-only --resources "$DEMO_RESOURCES" >"$VAR/log/seed.txt" 2>&1 &
seed_pid=$!
pids+=($seed_pid)

wait "$db_pid" || { echo "PostgreSQL did not start (see $VAR/log/database.log)"; exit 1; }
DATABASE_URL=$(cat "$VAR/database-url")
export DATABASE_URL
echo "Preparing the database..."
$py manage.py migrate --noinput -v 0

# The web server starts now, while the demo is prepared (its own start, imports and system
# checks, takes seconds): until that is done it answers every request, /healthz included, 503
# with what is being done (tagsense.starting), so nothing half-prepared is ever shown.
starting="$VAR/starting"
echo "Preparing the demo organization…" >"$starting"
TAGSENSE_STARTING_FILE=$starting $py manage.py runserver "127.0.0.1:$PORT" --noreload &
web_pid=$!
pids+=($web_pid)
$py manage.py setup_demo > "$VAR/log/demo.txt"
echo "Scanning the demo estate…" >"$starting"
wait "$seed_pid" || { cat "$VAR/log/seed.txt"; echo "Seeding moto_server failed"; exit 1; }
cat "$VAR/log/seed.txt"
echo "Scanning the simulated AWS estate, and replaying its history..."
TAGSENSE_STARTING_FILE=$starting $py manage.py setup_demo_estate --resources "$DEMO_RESOURCES"

.venv/bin/celery -A tagsense worker --beat --pool=threads --concurrency=4 --loglevel=INFO \
  --schedule="$VAR/celerybeat-schedule" >"$VAR/log/worker.log" 2>&1 &
pids+=($!)
kill -0 "$web_pid" 2>/dev/null || { echo "The web server stopped (see above)"; exit 1; }
rm -f "$starting"  # the portal serves from its next request on
echo "Celery worker and beat running (log: $VAR/log/worker.log)"
echo
echo "TagSense: http://127.0.0.1:$PORT/   (Ctrl-C stops everything)"
echo "Database: $DATABASE_URL"
cat "$VAR/log/demo.txt"
echo
wait "$web_pid"
