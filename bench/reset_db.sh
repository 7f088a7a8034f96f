#!/usr/bin/env bash
# Drop and recreate the dedicated benchmark database, then migrate it (as the owner).
# Never touches tagsense, test_tagsense or tagsense_dev.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${BENCH_DB:-tagsense_bench}
case "$DB" in
  tagsense | test_tagsense | tagsense_dev) echo "refusing to reset $DB" >&2; exit 2 ;;
esac
psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE $DB"
DJANGO_SETTINGS_MODULE=tagsense.settings.test \
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB \
  .venv/bin/python manage.py migrate --no-input -v 0
echo "$DB recreated and migrated"
