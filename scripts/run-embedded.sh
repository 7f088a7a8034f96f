#!/usr/bin/env bash
# The embedded default: SQLite, kombu's filesystem broker, a Celery worker with beat, and the
# portal on http://127.0.0.1:8000 with the demo organization. Nothing else to install or run.
set -euo pipefail
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE=tagsense.settings.local
PORT=${PORT:-8000}
VAR=${TAGSENSE_VAR_DIR:-var}
py=.venv/bin/python
mkdir -p "$VAR/log"

echo "Preparing the embedded database (SQLite in $VAR/)..."
$py manage.py migrate --noinput -v 0
$py manage.py setup_demo > "$VAR/log/demo.txt"

.venv/bin/celery -A tagsense worker --beat --pool=solo --loglevel=INFO \
  --schedule="$VAR/celerybeat-schedule" >"$VAR/log/worker.log" 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
echo "Celery worker and beat running (log: $VAR/log/worker.log)"
echo
echo "TagSense: http://127.0.0.1:$PORT/   (Ctrl-C stops everything)"
cat "$VAR/log/demo.txt"
echo
$py manage.py runserver "127.0.0.1:$PORT" --noreload
