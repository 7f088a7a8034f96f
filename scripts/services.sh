#!/usr/bin/env bash
# Make PostgreSQL and Redis answer on 127.0.0.1 for the test suite: install them with apt-get
# when absent (as root), start them when down, and let the `postgres` role in over TCP.
# Also installs the xmlsec1 program, which the test SAML IdP (pysaml2) signs responses with,
# and Chromium, which the browser tests (tests/browser.py) drive headless.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  log "need root to run: $*"; exit 1; fi; }

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {  # wait_for NAME COMMAND...
  local name=$1; shift
  for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  log "$name did not come up"; return 1
}

# --- PostgreSQL -----------------------------------------------------------------------------
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  log "installing PostgreSQL"
  apt_install postgresql postgresql-client
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for PostgreSQL pg_isready -q -h 127.0.0.1 -p 5432
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; then
  # A fresh cluster asks for a password over TCP: trust local loopback connections instead.
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  log "allowing trust authentication on 127.0.0.1 in $hba"
  as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  wait_for "PostgreSQL login" psql -h 127.0.0.1 -U postgres -d postgres -Atc 'SELECT 1'
fi
log "PostgreSQL ready on 127.0.0.1:5432"

# --- Redis ----------------------------------------------------------------------------------
if ! command -v redis-server >/dev/null; then
  log "installing Redis"
  apt_install redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  log "starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'
fi
log "Redis ready on 127.0.0.1:6379"

# --- xmlsec1 (the pysaml2 test IdP signs with it) ----------------------------------------------
if ! command -v xmlsec1 >/dev/null; then
  log "installing xmlsec1"
  apt_install xmlsec1
fi
log "xmlsec1 ready: $(command -v xmlsec1)"

# --- Chromium (the browser tests drive Debian's build through Playwright) ---------------------
# Playwright's own browser download cannot reach its host from an air-gapped machine; the
# tests launch this one by path instead (tests/browser.py).
if ! command -v chromium >/dev/null; then
  log "installing Chromium"
  apt_install chromium
fi
log "Chromium ready: $(command -v chromium)"

# --- WeasyPrint's libraries (summary.pdf of an evidence package, evidence/pdf.py) ------------
# WeasyPrint lays text out with pango and subsets fonts with harfbuzz through cffi, so these
# shared libraries must be on the machine. The report's own fonts ship in static/fonts;
# fonts-dejavu-core only gives fontconfig a fallback.
missing=()
for pkg in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing WeasyPrint's libraries: ${missing[*]}"
  apt_install "${missing[@]}"
fi
log "WeasyPrint's libraries ready"
