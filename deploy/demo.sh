#!/usr/bin/env bash
# The demo on local defaults: a throwaway PostgreSQL with a sample database, dumped into an
# encrypted archive, decrypted, restored into a new database with stock pg_restore, and shown
# equal. Everything lives in $PGSHIP_DEMO_DIR (default /tmp/pgship-demo); the server is stopped
# at the end, the keys and archives stay for you to look at.
# usage: deploy/demo.sh BINDIR
set -euo pipefail
BIN=$(cd "${1:?usage: demo.sh BINDIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/tests/integration/lib/pgcluster.sh"
source "$ROOT/tests/integration/lib/dbcompare.sh"
PGBIN=${PGC_BINDIR:-/usr/lib/postgresql/15/bin}
DEMO=${PGSHIP_DEMO_DIR:-/tmp/pgship-demo}

rm -rf "$DEMO"
mkdir -p "$DEMO"
chmod 755 "$DEMO"
trap 'pgc_stop "$DEMO/pg" >/dev/null 2>&1 || true' EXIT
cd "$DEMO"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "a throwaway PostgreSQL 15 with a sample database (appdb)"
PORT=$(pgc_free_port)
pgc_start "$DEMO/pg" "$PORT" >/dev/null
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE appdb"
pgc_psql "$PORT" appdb -q -f "$ROOT/tests/integration/sql/fixture.sql" >/dev/null
echo "server on 127.0.0.1:$PORT, appdb is $(pgc_psql "$PORT" appdb -Atc "SELECT pg_size_pretty(pg_database_size('appdb'))")"

step "pgship keygen ops"
"$BIN/pgship" keygen ops
cat ops.pub

step "pgship-agent dump --dbname '...' --recipient ops.pub -o appdb.pgship"
"$BIN/pgship-agent" dump --dbname "$(pgc_conninfo "$PORT" appdb)" --recipient ops.pub -o appdb.pgship

step "pgship decrypt --key ops.key appdb.pgship --list"
"$BIN/pgship" decrypt --key ops.key appdb.pgship --list

step "pgship decrypt --key ops.key appdb.pgship --extract restored/"
"$BIN/pgship" decrypt --key ops.key appdb.pgship --extract restored

step "pg_restore -d appdb_restored restored/dump.pgdump"
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE appdb_restored"
"$PGBIN/pg_restore" -h 127.0.0.1 -p "$PORT" -U postgres -d appdb_restored --exit-on-error restored/dump.pgdump
echo "restored"

step "appdb and appdb_restored compared: schema dump, row counts, content checksums"
db_compare "$PORT" appdb "$PORT" appdb_restored

printf '\n\033[1mdemo complete:\033[0m the archive, keys and extracted dump are in %s\n' "$DEMO"
