#!/usr/bin/env bash
# Drop and recreate the dedicated benchmark database, then migrate it (as the owner).
# Never touches tagsense, test_tagsense or tagsense_dev.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${BENCH_DB:-tagsense_bench}
case "$DB" in
  tagsense | test_tagsense | tagsense_dev) echo "refusing to reset $DB" >&2; exit 2 ;;
esac
# Never WITH (FORCE): the database is shared with other benchmarks; refuse while anyone uses it.
busy=$(psql -h 127.0.0.1 -U postgres -Atc \
  "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid()")
if [ "$busy" != "0" ]; then
  echo "$DB has $busy open connection(s): another benchmark is using it; not dropping" >&2
  exit 1
fi
psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS $DB"
psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q -c "CREATE DATABASE $DB"
DJANGO_SETTINGS_MODULE=tagsense.settings.test \
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB \
  .venv/bin/python manage.py migrate --no-input -v 0
echo "$DB recreated and migrated"
