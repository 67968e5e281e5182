#!/usr/bin/env bash
# Starts (up) or stops (down) the database servers the tests use, on
# loopback, with their data under $WORK (default /tmp/chima-services):
#
#   PostgreSQL 15 on 127.0.0.1:$PG_PORT (55440), superuser "postgres",
#     trust auth on loopback only;
#   MariaDB on 127.0.0.1:$MARIADB_PORT (55441), user "root" with no password
#     on loopback only.
#
# "up" writes $WORK/env, which tests read through $CHIMA_SERVICES_ENV:
#   CHIMA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:55440/postgres?sslmode=disable
#   CHIMA_TEST_MARIADB_DSN=root@tcp(127.0.0.1:55441)/
#   CHIMA_TEST_MARIADB_PORT=55441
# and CHIMA_RESTIC, the restic binary (0.18.1, built with go install into
# $TOOLS, default ~/.cache/chima-tools, the first time).
#
# Runs as root (CI does): PostgreSQL runs as the "postgres" user, MariaDB as
# root with its own data directory. Idempotent: "up" on running servers
# only rewrites the env file.
set -euo pipefail
WORK="${WORK:-/tmp/chima-services}"
PG_PORT="${PG_PORT:-55440}"
MARIADB_PORT="${MARIADB_PORT:-55441}"
TOOLS="${TOOLS:-${HOME:-/root}/.cache/chima-tools}"
RESTIC_VERSION=0.18.1

pgbin() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1; }

wait_for() { # command... : retries for 30 s
  for _ in $(seq 1 150); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  "$@"
}

up_postgres() {
  local bin data="$WORK/pg"
  bin="$(pgbin)"
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data" && chown postgres:postgres "$data" && chmod 700 "$data"
    runuser -u postgres -- "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  if ! runuser -u postgres -- "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data -c max_connections=200 -c fsync=off" start >/dev/null
  fi
  wait_for "$bin/pg_isready" -h 127.0.0.1 -p "$PG_PORT"
}

up_mariadb() {
  local data="$WORK/mariadb"
  if [ ! -d "$data/mysql" ]; then
    mkdir -p "$data"
    mariadb-install-db --datadir="$data" --user=root --auth-root-authentication-method=normal \
      --skip-test-db >"$WORK/mariadb-install.log" 2>&1
  fi
  if ! mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$MARIADB_PORT" -uroot ping >/dev/null 2>&1; then
    nohup mariadbd --no-defaults --datadir="$data" --user=root --bind-address=127.0.0.1 \
      --port="$MARIADB_PORT" --socket="$WORK/mariadb.sock" --pid-file="$WORK/mariadb.pid" \
      --skip-name-resolve --innodb-flush-log-at-trx-commit=0 >"$WORK/mariadb.log" 2>&1 &
  fi
  wait_for mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$MARIADB_PORT" -uroot ping
}

up_restic() {
  if [ ! -x "$TOOLS/bin/restic" ] || ! "$TOOLS/bin/restic" version | grep -q "restic $RESTIC_VERSION "; then
    mkdir -p "$TOOLS/bin"
    (cd /tmp && GOBIN="$TOOLS/bin" GOFLAGS=-mod=mod go install "github.com/restic/restic/cmd/restic@v$RESTIC_VERSION")
  fi
}

case "${1:-}" in
  up)
    mkdir -p "$WORK"
    up_postgres
    up_mariadb
    up_restic
    cat >"$WORK/env" <<ENV
CHIMA_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres?sslmode=disable
CHIMA_TEST_MARIADB_DSN=root@tcp(127.0.0.1:$MARIADB_PORT)/
CHIMA_TEST_MARIADB_PORT=$MARIADB_PORT
CHIMA_RESTIC=$TOOLS/bin/restic
ENV
    echo "$WORK/env"
    ;;
  down)
    if [ -s "$WORK/pg/PG_VERSION" ]; then
      runuser -u postgres -- "$(pgbin)/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
    fi
    if [ -s "$WORK/mariadb.pid" ]; then
      kill "$(cat "$WORK/mariadb.pid")" 2>/dev/null || true
    fi
    ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
