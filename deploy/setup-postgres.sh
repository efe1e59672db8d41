#!/usr/bin/env bash
# Create the Postgres role and database that DATABASE_URL in a settings file names, with
# its password; does nothing for what exists already. Run it as root (or as the postgres
# user) on the database host: psql runs as the postgres superuser there. The hub creates
# its schema (`trading`) itself at start.
#
#   deploy/setup-postgres.sh [FILE]      (default: .env)
set -euo pipefail
FILE=${1:-.env}
die() { echo "setup-postgres.sh: $*" >&2; exit 1; }
[ -r "$FILE" ] || die "cannot read $FILE (make it with deploy/make-env.sh $FILE)"
URL=$(sed -n 's/^DATABASE_URL=//p' "$FILE" | tail -n 1)
RE='^postgres(ql)?://([^:@/]+):([^@/]+)@[^/]+/([^?]+)'
[[ $URL =~ $RE ]] || die "DATABASE_URL in $FILE is not postgresql://USER:PASSWORD@HOST:PORT/DB"
USER_NAME=${BASH_REMATCH[2]} PASSWORD=${BASH_REMATCH[3]} DB=${BASH_REMATCH[4]}

as_postgres() {
  if [ -n "${PGUSER:-}" ] || [ "$(id -un)" = postgres ]; then "$@"
  elif [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"
  else sudo -u postgres "$@"
  fi
}

as_postgres psql -X -q -v ON_ERROR_STOP=1 -v name="$USER_NAME" -v password="$PASSWORD" \
  -v db="$DB" -d postgres <<'SQL' || die "psql failed (is PostgreSQL running on this host?)"
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'name', :'password')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
echo "setup-postgres.sh: role $USER_NAME and database $DB ready" >&2
