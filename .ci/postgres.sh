#!/usr/bin/env bash
# Install (Debian package), start and provision a local PostgreSQL for the store tests.
#
# Prints one line on stdout, the URL for NMES_TEST_PG_URL; everything else goes to stderr.
# Idempotent and quick when PostgreSQL is already installed and running. Needs root (or sudo).
#   usage in .ci/run:  NMES_TEST_PG_URL="${NMES_TEST_PG_URL:-$(.ci/postgres.sh)}"; export ...
set -euo pipefail

ROLE="${NMES_PG_ROLE:-nmes}"
PASSWORD="${NMES_PG_PASSWORD:-nmes}"
DB="${NMES_PG_DB:-nmes_test}"

log() { echo "postgres.sh: $*" >&2; }
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else
        log "need root (or sudo) to run: $*"; exit 1; fi
}

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || ! command -v pg_ctlcluster >/dev/null; then
    log "installing PostgreSQL (Debian package)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi

VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$VERSION main"; then
    log "creating cluster $VERSION/main"
    as_root pg_createcluster "$VERSION" main >&2
fi
if ! pg_lsclusters -h | awk -v v="$VERSION" '$1==v && $2=="main" {print $4}' | grep -q online; then
    log "starting cluster $VERSION/main"
    as_root pg_ctlcluster "$VERSION" main start >&2
fi
PORT="$(pg_lsclusters -h | awk -v v="$VERSION" '$1==v && $2=="main" {print $3}')"

psql_pg() { as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"; }
for _ in $(seq 1 30); do  # wait until the server accepts connections
    if psql_pg -tAc "SELECT 1" >/dev/null 2>&1; then break; fi
    sleep 0.5
done
if [ "$(psql_pg -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != "1" ]; then
    log "creating role $ROLE"
    psql_pg -c "CREATE ROLE \"$ROLE\" LOGIN CREATEDB PASSWORD '$PASSWORD'" >&2
fi
if [ "$(psql_pg -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    log "creating database $DB"
    psql_pg -c "CREATE DATABASE \"$DB\" OWNER \"$ROLE\"" >&2
fi
# the tests drop their databases WITH (FORCE), which may terminate other backends
psql_pg -c "GRANT pg_signal_backend TO \"$ROLE\"" >/dev/null 2>&1 || true
URL="postgresql://$ROLE:$PASSWORD@localhost:$PORT/$DB"
PGPASSWORD="$PASSWORD" psql -X -q -h localhost -p "$PORT" -U "$ROLE" -d "$DB" -tAc "SELECT 1" >/dev/null
log "PostgreSQL $VERSION ready on localhost:$PORT (database $DB, role $ROLE)"
echo "$URL"
