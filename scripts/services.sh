#!/usr/bin/env bash
# Throwaway test services: a Postgres 15 cluster and a Redis server on free loopback ports.
#
#   scripts/services.sh start DIR [postgres] [redis]   start (or resume) them; writes DIR/env
#   scripts/services.sh pause DIR [postgres] [redis]   stop them, keeping data and ports (start resumes)
#   scripts/services.sh stop  DIR [postgres] [redis]   stop them and delete their data
#
# With no service named, both. DIR/env holds
#   export TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/mt4hub_test
#   export TEST_REDIS_URL=redis://127.0.0.1:PORT/0
# PG_PORT and REDIS_PORT choose the ports instead (5432 and 6379 in a private network
# namespace: tests/machinekit.py). Every command is idempotent. Postgres refuses to run as
# root, so as root the cluster belongs to the postgres user and lives in
# /tmp/mt4hub-pg-XXXXXX (DIR may not be traversable by it).
# Missing servers are installed with apt-get when running as root.
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

die() { echo "services.sh: $*" >&2; exit 1; }

usage() { die "usage: services.sh start|pause|stop DIR [postgres] [redis]"; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

apt_install() {
  "$(dirname "$0")/apt-install.sh" "$2" || die "$1 is not installed: install package $2"
}

pg_running() {
  [ -f "$DIR/pg.root" ] && as_pg "$PG_BIN/pg_ctl" status -D "$(cat "$DIR/pg.root")/data" >/dev/null 2>&1
}

pg_start() {
  [ -x "$PG_BIN/initdb" ] || apt_install postgres postgresql-15
  [ -x "$PG_BIN/initdb" ] || die "no Postgres binaries in $PG_BIN"
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    die "running as root but there is no postgres user to own the cluster"
  fi
  local root port
  if [ -f "$DIR/pg.root" ] && [ -d "$(cat "$DIR/pg.root")/data" ]; then
    root=$(cat "$DIR/pg.root")
    port=$(cat "$DIR/pg.port")
    pg_running && return 0
  else
    root=$(mktemp -d /tmp/mt4hub-pg-XXXXXX)
    chmod 755 "$root"
    [ "$(id -u)" = 0 ] && chown postgres: "$root"
    port=${PG_PORT:-$(free_port)}
    as_pg "$PG_BIN/initdb" -D "$root/data" --username=postgres --auth=trust \
      --encoding=UTF8 --locale=C >"$root/initdb.log" 2>&1 \
      || { cat "$root/initdb.log" >&2; die "initdb failed in $root/data"; }
    echo "$root" >"$DIR/pg.root"
    echo "$port" >"$DIR/pg.port"
  fi
  as_pg "$PG_BIN/pg_ctl" start -w -t 60 -D "$root/data" -l "$root/postgres.log" \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$root -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    >/dev/null || { tail -n 20 "$root/postgres.log" >&2; die "Postgres did not start (log: $root/postgres.log)"; }
  if ! as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAq \
      -c "SELECT 1 FROM pg_database WHERE datname = 'mt4hub_test'" | grep -q 1; then
    as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres mt4hub_test \
      || die "could not create database mt4hub_test"
  fi
}

pg_pause() {
  pg_running || return 0
  as_pg "$PG_BIN/pg_ctl" stop -w -m fast -D "$(cat "$DIR/pg.root")/data" >/dev/null \
    || die "pg_ctl stop failed"
}

pg_stop() {
  pg_pause
  if [ -f "$DIR/pg.root" ]; then
    local root
    root=$(cat "$DIR/pg.root")
    case "$root" in /tmp/mt4hub-pg-*) rm -rf "$root" ;; *) die "refusing to delete $root" ;; esac
    rm -f "$DIR/pg.root" "$DIR/pg.port"
  fi
}

redis_pid() {
  local pid
  [ -f "$DIR/redis/redis.pid" ] || return 1
  pid=$(cat "$DIR/redis/redis.pid")
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

redis_start() {
  command -v redis-server >/dev/null || apt_install redis-server redis-server
  redis_pid >/dev/null && return 0
  mkdir -p "$DIR/redis"
  local port
  if [ -f "$DIR/redis.port" ]; then port=$(cat "$DIR/redis.port"); else port=${REDIS_PORT:-$(free_port)}; fi
  echo "$port" >"$DIR/redis.port"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
    --dir "$DIR/redis" --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/redis.log" \
    || die "redis-server did not start (log: $DIR/redis/redis.log)"
  for _ in $(seq 100); do
    redis_pid >/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  die "redis-server did not answer on port $port (log: $DIR/redis/redis.log)"
}

redis_pause() {
  local pid
  pid=$(redis_pid) || return 0
  kill "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "redis-server (pid $pid) did not stop"
}

redis_stop() {
  redis_pause
  rm -rf "$DIR/redis" "$DIR/redis.port"
}

write_env() {
  {
    if [ -f "$DIR/pg.port" ] && pg_running; then
      echo "export TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:$(cat "$DIR/pg.port")/mt4hub_test"
    fi
    if [ -f "$DIR/redis.port" ] && redis_pid >/dev/null; then
      echo "export TEST_REDIS_URL=redis://127.0.0.1:$(cat "$DIR/redis.port")/0"
    fi
  } >"$DIR/env"
}

[ $# -ge 2 ] || usage
CMD=$1
case "$CMD" in start | pause | stop) ;; *) usage ;; esac
mkdir -p "$2"
DIR=$(cd "$2" && pwd)
shift 2
SERVICES=("$@")
[ ${#SERVICES[@]} -gt 0 ] || SERVICES=(postgres redis)
for s in "${SERVICES[@]}"; do
  case "$s" in postgres | redis) ;; *) die "unknown service '$s' (expected postgres or redis)" ;; esac
done

for s in "${SERVICES[@]}"; do
  case "$s" in postgres) "pg_$CMD" ;; redis) "redis_$CMD" ;; esac
done
write_env
