#!/usr/bin/env bash
# The demo fleet on local defaults: a throwaway PostgreSQL 15 with an application database, s3rver
# as the S3 bucket, a pgship-coordinator and two pgship-agents (production and staging) talking nng
# over TLS; one encrypted backup shipped into the bucket, the catalog listed, the backup fetched,
# decrypted, restored with stock pg_restore and shown equal to its source; then a prod -> staging
# sync through the example sanitization profile, and an unsanitized copy refused.
#
# Everything lives in $PGSHIP_DEMO_DIR (default /tmp/pgship-demo): configuration files, keys,
# certificates, catalog, the bucket's files, logs. The daemons and servers are stopped at the end
# (the files stay for you to look at); `--keep-running` leaves them up and prints how to talk to
# them.
# usage: deploy/demo.sh BINDIR [--keep-running]
set -euo pipefail
BIN=$(cd "${1:?usage: demo.sh BINDIR [--keep-running]}" && pwd)
KEEP=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export FLEET_BIN_DIR=$BIN
source "$ROOT/tests/integration/lib/pgcluster.sh"
source "$ROOT/tests/integration/lib/dbcompare.sh"
source "$ROOT/tests/integration/lib/s3rver.sh"
source "$ROOT/tests/integration/lib/fleet.sh"
PGBIN=${PGC_BINDIR:-/usr/lib/postgresql/15/bin}
DEMO=${PGSHIP_DEMO_DIR:-/tmp/pgship-demo}

if [ -f "$DEMO/pids" ]; then # a demo left running by --keep-running
    xargs -r kill <"$DEMO/pids" 2>/dev/null || true
    sleep 1
fi
pgc_stop "$DEMO/pg" >/dev/null 2>&1 || true
s3rver_stop "$DEMO/s3" >/dev/null 2>&1 || true
rm -rf "$DEMO"
mkdir -p "$DEMO"
chmod 755 "$DEMO"
stop_all() {
    fleet_stop_all >/dev/null 2>&1 || true
    s3rver_stop "$DEMO/s3" >/dev/null 2>&1 || true
    pgc_stop "$DEMO/pg" >/dev/null 2>&1 || true
}
if [ "$KEEP" != --keep-running ]; then
    trap stop_all EXIT
else
    trap 'echo "demo failed: stopping"; stop_all' ERR
fi
cd "$DEMO"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }

step "a PostgreSQL 15 with an application database (appdb: users, addresses, orders, payments) as production, and an empty staging_appdb"
PORT=$(pgc_free_port)
pgc_start "$DEMO/pg" "$PORT" >/dev/null
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE appdb" -c "CREATE DATABASE staging_appdb"
pgc_psql "$PORT" appdb -q -v users=10000 -f "$ROOT/tests/integration/sql/app.sql" >/dev/null
echo "server on 127.0.0.1:$PORT, appdb is $(pgc_psql "$PORT" appdb -Atc "SELECT pg_size_pretty(pg_database_size('appdb'))")"

step "s3rver as the S3 bucket 'pgship' (local S3; any S3-compatible service works the same)"
S3PORT=$(s3rver_free_port)
s3rver_start "$DEMO/s3" "$S3PORT" pgship >/dev/null
echo "s3rver on http://127.0.0.1:$S3PORT"

step "keys: a TLS CA and certificate, the agents' identities, the backups' recipient"
echo '$ deploy/make-certs.sh tls; pgship keygen --identity keys/db-prod-1; ... db-staging-1; pgship keygen keys/ops'
fleet_certs "$DEMO/tls" >/dev/null
fleet_identity "$DEMO/keys" db-prod-1 >/dev/null
fleet_identity "$DEMO/keys" db-staging-1 >/dev/null
fleet_recipient "$DEMO/keys" ops >/dev/null
ls tls keys | tr '\n' ' '
echo
echo "keys/ops.key opens the backups: keep it away from the coordinator; only the agent that restores holds it"

step "configuration: coordinator.conf, agent.conf (production) and staging-agent.conf"
fleet_coordinator_conf "$DEMO/coordinator.conf" "$DEMO/tls" "$DEMO/state" \
    --agent db-prod-1 "$DEMO/keys/db-prod-1.pub" --agent db-staging-1 "$DEMO/keys/db-staging-1.pub" \
    --storage-s3 "http://127.0.0.1:$S3PORT" pgship --storage-set prefix=demo \
    --set "profiles_dir=$ROOT/deploy/profiles"
fleet_agent_conf "$DEMO/agent.conf" db-prod-1 "$DEMO/tls" "$DEMO/keys/db-prod-1.key" \
    --recipient "$DEMO/keys/ops.pub" --db appdb prod "$(pgc_conninfo "$PORT" appdb)"
fleet_agent_conf "$DEMO/staging-agent.conf" db-staging-1 "$DEMO/tls" "$DEMO/keys/db-staging-1.key" \
    --recipient "$DEMO/keys/ops.pub" --db appdb staging "$(pgc_conninfo "$PORT" staging_appdb)" \
    --set "restore_keys=$DEMO/keys/ops.key"
sed 's/^/    /' coordinator.conf
echo
sed 's/^/    /' agent.conf | grep -v '^    conninfo'
echo "    conninfo = (host, port and user of the demo server; never printed by pgship)"

step "pgship-coordinator -c coordinator.conf   and   pgship-agent -c agent.conf"
fleet_start_coordinator "$DEMO/coordinator.conf" "$DEMO/coordinator.log"
fleet_start_agent "$DEMO/agent.conf" "$DEMO/agent.log"
fleet_start_agent "$DEMO/staging-agent.conf" "$DEMO/staging-agent.log"
fleet_wait_agent db-prod-1 30 >/dev/null
fleet_wait_agent db-staging-1 30 >/dev/null
tail -n 3 coordinator.log
export PGSHIP_URL=$FLEET_API_URL
PGSHIP_TOKEN=$(cat "$FLEET_TOKEN_FILE")
export PGSHIP_TOKEN

step "pgship agents"
run "$BIN/pgship" agents

step "pgship backup db-prod-1/appdb --label demo --wait"
run "$BIN/pgship" backup db-prod-1/appdb --label demo --wait --json >backup.json
ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <backup.json)
echo "backup $ID is complete"

step "pgship ls"
run "$BIN/pgship" ls

step "pgship show $ID"
run "$BIN/pgship" show "$ID"

step "the bucket, seen by another S3 client: the archive and its sidecar manifest"
export RCLONE_CONFIG_DEMO_TYPE=s3 RCLONE_CONFIG_DEMO_PROVIDER=Other \
    RCLONE_CONFIG_DEMO_ENDPOINT="http://127.0.0.1:$S3PORT" RCLONE_CONFIG_DEMO_ACCESS_KEY_ID=S3RVER \
    RCLONE_CONFIG_DEMO_SECRET_ACCESS_KEY=S3RVER RCLONE_CONFIG_DEMO_FORCE_PATH_STYLE=true
run env -u AWS_CA_BUNDLE rclone ls demo:pgship

step "pgship fetch $ID -o appdb.pgship   then   pgship decrypt --key keys/ops.key ..."
run "$BIN/pgship" fetch "$ID" -o appdb.pgship
run "$BIN/pgship" decrypt --key keys/ops.key appdb.pgship --list
run "$BIN/pgship" decrypt --key keys/ops.key appdb.pgship --extract restored

step "pg_restore -d appdb_restored restored/dump.pgdump"
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE appdb_restored"
"$PGBIN/pg_restore" -h 127.0.0.1 -p "$PORT" -U postgres -d appdb_restored --exit-on-error restored/dump.pgdump
echo "restored"

step "appdb and appdb_restored compared: schema dump, row counts, content checksums"
db_compare "$PORT" appdb "$PORT" appdb_restored

step "pgship sync db-prod-1/appdb --to db-staging-1/appdb --sanitize app-anonymize --wait"
echo "(a fresh backup of production, restored into staging through deploy/profiles/app-anonymize:"
echo " sanitized in one transaction, checked, analyzed, then swapped in)"
run "$BIN/pgship" sync db-prod-1/appdb --to db-staging-1/appdb --sanitize app-anonymize --wait

step "the same user in production and in staging"
pgc_psql "$PORT" appdb -c "SELECT id, first_name, last_name, email, phone FROM app.users ORDER BY id LIMIT 3"
pgc_psql "$PORT" staging_appdb -c "SELECT id, first_name, last_name, email, phone FROM app.users ORDER BY id LIMIT 3"

step "an unsanitized copy of production into staging is refused"
run "$BIN/pgship" restore db-prod-1/appdb@latest --to db-staging-1/appdb || echo "(refused, as the policy says)"

step "pgship restores"
run "$BIN/pgship" restores

if [ "$KEEP" = --keep-running ]; then
    { echo "$FLEET_COORD_PID"; printf '%s\n' "${FLEET_AGENT_PID[@]}"; } >"$DEMO/pids"
    printf '\n\033[1mdemo fleet running.\033[0m Talk to it with:\n'
    echo "  export PGSHIP_URL=$PGSHIP_URL PGSHIP_TOKEN=\$(cat $FLEET_TOKEN_FILE)"
    echo "  $BIN/pgship agents; $BIN/pgship backup db-prod-1/appdb --wait; $BIN/pgship ls"
    echo "  $BIN/pgship sync db-prod-1/appdb --to db-staging-1/appdb --sanitize app-anonymize --wait"
    echo "Run deploy/demo.sh again to start over; its files are in $DEMO."
else
    printf '\n\033[1mdemo complete:\033[0m configuration, keys, catalog, bucket and logs are in %s\n' "$DEMO"
fi
