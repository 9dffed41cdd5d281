#!/usr/bin/env bash
# Makes PostgreSQL and Redis reachable on 127.0.0.1 for the test suite: starts them
# when they are installed but stopped, installs them from Debian packages when missing.
# Also installs Chromium, in which the docs and GraphiQL pages are rendered offline.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=${PIM_TEST_PG_USER:-postgres}
REDIS_PORT=6379
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { echo "[services] $*"; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "$@" >/dev/null
}

pg_ready() { pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; }
pg_login() { psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc "SELECT 1" >/dev/null 2>&1; }

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1 && ! command -v pg_isready >/dev/null 2>&1; then
    log "installing PostgreSQL from Debian packages"
    apt_install postgresql postgresql-client
  fi
  if ! pg_ready; then
    log "starting PostgreSQL"
    for version in $(ls /etc/postgresql 2>/dev/null); do
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
  fi
  pg_ready || { log "PostgreSQL is not reachable on $PG_HOST:$PG_PORT"; exit 1; }
  if ! pg_login; then
    # A fresh Debian cluster asks for passwords on TCP: trust local TCP, as the test
    # machines do, so the suite can connect as $PG_USER without a secret.
    log "allowing trusted TCP logins from 127.0.0.1 for the test suite"
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
      grep -q "pixee-pim-tests" "$hba" || $SUDO sed -i '1i host all all 127.0.0.1/32 trust # pixee-pim-tests\nhost all all ::1/128 trust # pixee-pim-tests' "$hba"
    done
    for version in $(ls /etc/postgresql); do
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload || true
    done
    sleep 1
  fi
  pg_login || { log "cannot log in to PostgreSQL as $PG_USER"; exit 1; }
}

redis_ready() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

ensure_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    log "installing Redis from Debian packages"
    apt_install redis-server redis-tools
  fi
  if ! redis_ready; then
    log "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 1 30); do redis_ready && break; sleep 0.5; done
  fi
  redis_ready || { log "Redis is not reachable on 127.0.0.1:$REDIS_PORT"; exit 1; }
}

ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && return
  log "installing Chromium from Debian packages (browser tests of /docs and GraphiQL)"
  apt_install chromium || log "Chromium could not be installed: those tests will be skipped"
}

ensure_postgres
ensure_redis
ensure_chromium
log "PostgreSQL and Redis are ready"
