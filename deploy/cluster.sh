#!/usr/bin/env bash
# The whole deployment of docs/deploy.md on this machine, on free ports: Redis, PostgreSQL
# (role and database made by setup-postgres.sh), three simulated EA Bridges (mt4hub sim),
# two hub instances sharing them (prod.yml, .env from make-env.sh) and nginx in front with
# TLS (the shipped site, a certificate from make-cert.sh).
#
#   deploy/cluster.sh start [DIR]    start it and print its URLs (DIR: $CLUSTER_DIR or .cluster)
#   deploy/cluster.sh stop [DIR]     stop every process it started and delete DIR
#   deploy/cluster.sh status [DIR]   which of its processes run
#
# DIR/cluster.env describes a running cluster for scripts and tests (ports, URLs, pid files).
# Missing nginx, Redis or PostgreSQL are installed with apt-get when running as root.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEPLOY=$ROOT/deploy
MT4HUB=$ROOT/.venv/bin/mt4hub
PROCS=(sim-1 sim-2 sim-3 hub-a hub-b)

die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { echo "cluster.sh: $*" >&2; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

nginx_bin() {
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || return 1
}

alive() {  # NAME: its pid file names a live process of ours
  local pid
  [ -f "$DIR/pids/$1.pid" ] || return 1
  pid=$(cat "$DIR/pids/$1.pid")
  kill -0 "$pid" 2>/dev/null && grep -qaE 'mt4hub|nginx' "/proc/$pid/cmdline" 2>/dev/null
}

spawn() {  # NAME COMMAND...: run in the background, detached from the terminal, logged
  local name=$1
  shift
  nohup "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/pids/$name.pid"
}

wait_http() {  # NAME URL [curl options]: until it answers 200, or fail with the log's tail
  local name=$1 url=$2
  shift 2
  for _ in $(seq 300); do
    curl -sf -o /dev/null --max-time 2 "$@" "$url" && return 0
    if [ "$name" != nginx ] && ! alive "$name"; then
      tail -n 30 "$DIR/logs/$name.log" >&2
      die "$name exited (log: $DIR/logs/$name.log)"
    fi
    sleep 0.2
  done
  tail -n 30 "$DIR/logs/$name.log" >&2
  die "$name did not answer at $url within 60 s (log: $DIR/logs/$name.log)"
}

start() {
  if [ -f "$DIR/cluster.env" ]; then
    alive hub-a && { status; return 0; }
    die "$DIR holds a stopped cluster: deploy/cluster.sh stop $DIR first"
  fi
  "$ROOT/scripts/setup"
  nginx_bin >/dev/null || "$ROOT/scripts/apt-install.sh" nginx
  NGINX=$(nginx_bin) || die "no nginx after installing it"
  mkdir -p "$DIR/logs" "$DIR/pids" "$DIR/nginx/tmp"
  trap 'say "start failed: stopped what had started; logs in $DIR/logs"; stop_all' EXIT

  "$ROOT/scripts/services.sh" start "$DIR/services" >&2
  local pg_port redis_port
  pg_port=$(cat "$DIR/services/pg.port")
  redis_port=$(cat "$DIR/services/redis.port")

  # The operator's files, with this cluster's ports.
  "$DEPLOY/make-env.sh" "$DIR/.env"
  sed -i -e "s|@127.0.0.1:5432/|@127.0.0.1:$pg_port/|" -e "s|127.0.0.1:6379/|127.0.0.1:$redis_port/|" "$DIR/.env"
  PGHOST=127.0.0.1 PGPORT=$pg_port PGUSER=postgres "$DEPLOY/setup-postgres.sh" "$DIR/.env"
  local a b n s1 s2 s3
  a=$(free_port) b=$(free_port) n=$(free_port) s1=$(free_port) s2=$(free_port) s3=$(free_port)
  sed -e "s|127.0.0.1:8081|127.0.0.1:$s1|" -e "s|127.0.0.1:8082|127.0.0.1:$s2|" \
    -e "s|127.0.0.1:8083|127.0.0.1:$s3|" "$DEPLOY/prod.yml" >"$DIR/prod.yml"
  "$MT4HUB" check --config "$DIR/prod.yml" >/dev/null

  spawn sim-1 "$MT4HUB" sim --port "$s1" --balance 200 --symbols XAUUSD
  spawn sim-2 "$MT4HUB" sim --port "$s2" --balance 500 --symbols EURUSD,GBPUSD
  spawn sim-3 "$MT4HUB" sim --port "$s3" --balance 1000 --symbols XAUUSD,EURUSD,GBPUSD,USDJPY
  (
    set -a
    # shellcheck disable=SC1091
    . "$DIR/.env"
    set +a
    HUB_INSTANCE_ID=hub-a HUB_DATA_DIR="$DIR/hub-a" \
      spawn hub-a "$MT4HUB" run --config "$DIR/prod.yml" --port "$a"
    HUB_INSTANCE_ID=hub-b HUB_DATA_DIR="$DIR/hub-b" \
      spawn hub-b "$MT4HUB" run --config "$DIR/prod.yml" --port "$b"
  )

  "$DEPLOY/make-cert.sh" "$DIR/nginx/tls" localhost 2>/dev/null
  sed -e "s|listen 443 ssl;|listen 127.0.0.1:$n ssl;|" -e "s|server_name hub.example.com;|server_name localhost;|" \
    -e "s|127.0.0.1:8090|127.0.0.1:$a|" -e "s|127.0.0.1:8091|127.0.0.1:$b|" \
    "$DEPLOY/nginx/mt4hub.conf" >"$DIR/nginx/mt4hub.conf"
  cat >"$DIR/nginx/nginx.conf" <<EOF
# deploy/cluster.sh: a private nginx around the shipped site (deploy/nginx/mt4hub.conf).
worker_processes 1;
pid $DIR/pids/nginx.pid;
error_log $DIR/logs/nginx.log;
events { worker_connections 1024; }
http {
    access_log $DIR/logs/nginx-access.log;
    client_body_temp_path $DIR/nginx/tmp/body;
    proxy_temp_path $DIR/nginx/tmp/proxy;
    fastcgi_temp_path $DIR/nginx/tmp/fastcgi;
    uwsgi_temp_path $DIR/nginx/tmp/uwsgi;
    scgi_temp_path $DIR/nginx/tmp/scgi;
    include mt4hub.conf;
}
EOF
  "$NGINX" -t -q -c "$DIR/nginx/nginx.conf" -e "$DIR/logs/nginx.log" \
    || die "nginx -t failed on $DIR/nginx/nginx.conf"
  "$NGINX" -c "$DIR/nginx/nginx.conf" -e "$DIR/logs/nginx.log"

  cat >"$DIR/cluster.env" <<EOF
CLUSTER_DIR=$DIR
HUB_URL=https://localhost:$n
HUB_CA_FILE=$DIR/nginx/tls/mt4hub.crt
NGINX_PORT=$n
HUB_A_PORT=$a
HUB_B_PORT=$b
SIM_PORTS="$s1 $s2 $s3"
REDIS_PORT=$redis_port
POSTGRES_PORT=$pg_port
SETTINGS=$DIR/.env
EOF
  wait_http sim-1 "http://127.0.0.1:$s1/account"
  wait_http hub-a "http://127.0.0.1:$a/health"
  wait_http hub-b "http://127.0.0.1:$b/health"
  wait_http nginx "https://localhost:$n/health" --cacert "$DIR/nginx/tls/mt4hub.crt"
  trap - EXIT
  status
  cat <<EOF
the token: HUB_ADMIN_TOKEN in $DIR/.env, e.g.
  set -a; . $DIR/.env; set +a
  curl --cacert $DIR/nginx/tls/mt4hub.crt -H "Authorization: Bearer \$HUB_ADMIN_TOKEN" https://localhost:$n/api/agents
stop it: deploy/cluster.sh stop $DIR   (make cluster-stop)
EOF
}

status() {
  [ -f "$DIR/cluster.env" ] || { echo "no cluster in $DIR"; return 1; }
  # shellcheck disable=SC1091
  . "$DIR/cluster.env"
  echo "cluster in $DIR: nginx https://localhost:$NGINX_PORT -> hub-a :$HUB_A_PORT, hub-b :$HUB_B_PORT"
  echo "  bridges :${SIM_PORTS// / :}, Redis :$REDIS_PORT, PostgreSQL :$POSTGRES_PORT, logs in $DIR/logs"
  local name
  for name in "${PROCS[@]}" nginx; do
    if alive "$name"; then echo "  $name running (pid $(cat "$DIR/pids/$name.pid"))"
    else echo "  $name stopped"; fi
  done
}

stop_all() {
  local name pid
  if [ -f "$DIR/pids/nginx.pid" ] && alive nginx; then kill "$(cat "$DIR/pids/nginx.pid")"; fi
  for name in hub-a hub-b "${PROCS[@]}"; do
    alive "$name" && kill "$(cat "$DIR/pids/$name.pid")" 2>/dev/null || true
  done
  for name in "${PROCS[@]}" nginx; do
    for _ in $(seq 100); do
      alive "$name" || break
      sleep 0.2
    done
    if alive "$name"; then
      pid=$(cat "$DIR/pids/$name.pid")
      say "$name (pid $pid) ignored SIGTERM for 20 s: SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  [ -d "$DIR/services" ] && "$ROOT/scripts/services.sh" stop "$DIR/services"
  return 0
}

stop() {
  [ -d "$DIR" ] || { say "no cluster in $DIR"; return 0; }
  stop_all
  rm -rf "$DIR"
  say "stopped; $DIR removed"
}

[ $# -ge 1 ] || die "usage: cluster.sh start|stop|status [DIR]"
CMD=$1
DIR=${2:-${CLUSTER_DIR:-$ROOT/.cluster}}
[ "$CMD" != start ] || mkdir -p "$DIR"
[ ! -d "$DIR" ] || DIR=$(cd "$DIR" && pwd)
case "$CMD" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: cluster.sh start|stop|status [DIR]" ;;
esac
