#!/usr/bin/env bash
# Integration test of the agent's restore procedure (agent/restore.c) through `pgship-agent
# restore`, against a throwaway PostgreSQL 15 cluster: archives made by `pgship-agent dump` in
# both formats restored into a target that already exists (proved equal to the source; its open
# sessions ended; its database-level grants and settings kept; the old database dropped or kept),
# into a target that does not exist yet, with pg_restore's options; then every failure a user
# meets must leave the target exactly as it was (same fingerprint, still open to connections) and
# no temporary database: a sanitize script failing half-way, a check query returning rows, a wrong
# key, SIGTERM mid-restore, kill -9 mid-restore followed by `restore --cleanup`. Last, a sanitized
# re-dump into a new archive (the sanitizer agent's path).
#
# usage: agent_restore.sh BINDIR     (BINDIR holds pgship and pgship-agent)
set -euo pipefail

BIN=$(cd "${1:?usage: agent_restore.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/dbcompare.sh"

WORK=$(mktemp -d /tmp/pgship-restore-it.XXXXXX)
chmod 755 "$WORK"
# KEEP=1 keeps the scratch directory (outputs, logs) for a look after a failure.
cleanup() { pgc_destroy "$WORK/pg" >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT
source "$HERE/lib/check.sh"

cd "$WORK"
PORT=$(pgc_free_port)
pgc_start "$WORK/pg" "$PORT" >/dev/null
q() { pgc_psql "$PORT" "$1" -q -A -t -c "$2"; } # q DB SQL: unaligned, tuples only
q postgres "CREATE DATABASE src"
pgc_psql "$PORT" src -q -f "$HERE/sql/fixture.sql" >/dev/null
q postgres "CREATE DATABASE small"
q small "CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 50) g;
         CREATE TABLE b (id int PRIMARY KEY, v text); INSERT INTO b SELECT g, 'b' || g FROM generate_series(1, 70) g"
# The target, with content of its own, a session open on it, and database-level settings and
# grants that pg_dump (without --create) does not carry: the swap must keep them.
q postgres "CREATE DATABASE dst"
q dst "CREATE TABLE mine (x int); INSERT INTO mine VALUES (42)"
q postgres "CREATE ROLE app LOGIN CREATEDB; ALTER DATABASE dst SET work_mem = '8MB';
            ALTER DATABASE dst SET search_path = \"\$user\", public, shop;
            REVOKE CONNECT ON DATABASE dst FROM PUBLIC; GRANT CONNECT ON DATABASE dst TO app"

"$BIN/pgship" keygen ops 2>/dev/null
"$BIN/pgship" keygen stranger 2>/dev/null
"$BIN/pgship" keygen --identity agent1 2>/dev/null
mkdir spool
{
    echo "[agent]"
    echo "name = agent1"
    echo "coordinator = tcp://127.0.0.1:1"
    echo "allow_insecure_transport = true"
    echo "identity_key = $WORK/agent1.key"
    echo "recipients = $WORK/ops.pub"
    echo "spool_dir = $WORK/spool"
    echo "restore_keys = $WORK/ops.key"
    for db in dst part; do
        echo
        echo "[database $db]"
        echo "conninfo = $(pgc_conninfo "$PORT" "$db") password=sekrit-never-shown"
        echo "environment = staging"
    done
} >agent.conf

# tmp_dbs: the temporary databases on the cluster, one per line.
tmp_dbs() { q postgres "SELECT datname FROM pg_database WHERE strpos(datname, '__pgship_tmp_') > 0"; }
old_dbs() { q postgres "SELECT datname FROM pg_database WHERE strpos(datname, '__pgship_old_') > 0"; }
allowconn() { q postgres "SELECT datallowconn FROM pg_database WHERE datname = '$1'"; }
spool_empty() { test -z "$(ls -A "$WORK/spool")"; }
restore() { "$BIN/pgship-agent" restore -c agent.conf "$@"; }
fp_same() {
    diff <(db_fingerprint "$PORT" dst) "$FP0" >/dev/null &&
        test "$(q postgres "SELECT oid FROM pg_database WHERE datname = 'dst'")" = "$OID0"
}
nothing_left() { test -z "$(tmp_dbs)" && spool_empty; }
# unchanged WHAT: dst has the fingerprint taken in $FP0, takes connections, and nothing is left.
unchanged() {
    check "$1: the target is the same database (oid) with the same fingerprint" fp_same
    check "$1: the target still takes connections" test "$(allowconn dst)" = t
    check "$1: no temporary database, spool empty" nothing_left
}

SRC=$(pgc_conninfo "$PORT" src)
"$BIN/pgship-agent" dump -d "$SRC" -r ops.pub --part-size 1M -o custom.pgship 2>/dev/null
"$BIN/pgship-agent" dump -d "$SRC" -r ops.pub -F directory -j 2 --spool-dir "$WORK/spool" \
    -o dir.pgship 2>/dev/null
"$BIN/pgship-agent" dump -d "$(pgc_conninfo "$PORT" small)" -r ops.pub -o small.pgship 2>/dev/null

# --- custom format into the existing dst, with a session open on it
pgc_psql "$PORT" dst -q -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
SLEEPER=$!
sleep 0.5
rc=0; restore --database dst --from custom.pgship -j 2 >custom.out 2>custom.err || rc=$?
check "custom: restore exits 0" test "$rc" -eq 0
check "custom: restored database equals the source" db_compare "$PORT" src "$PORT" dst
check "custom: the target's own table is gone" test -z "$(q dst "SELECT to_regclass('mine')")"
rc=0; wait "$SLEEPER" || rc=$?
check "custom: the session open on the target was ended" test "$rc" -ne 0
check "custom: the old database is dropped, no temporary one" test -z "$(old_dbs)$(tmp_dbs)"
check "custom: spool empty" spool_empty
check "custom: the report counts shop.events" grep -q -E '150000 +shop.events' custom.out
check "custom: the report times each step" \
    bash -c "grep -E '^  (unpack|create|pg_restore|analyze|swap) ' custom.out | wc -l | grep -qx 5"
check "custom: database settings kept" \
    test "$(q postgres "SELECT array_to_string(setconfig, ';') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE datname = 'dst'")" \
         = 'work_mem=8MB;search_path="$user", public, shop'
check "custom: database grants kept (app may connect, PUBLIC may not)" \
    test "$(q postgres "SELECT has_database_privilege('app', 'dst', 'CONNECT'), has_database_privilege('public', 'dst', 'CONNECT')")" = "t|f"
check "custom: no password in the output" bash -c "! grep -q sekrit custom.out custom.err"

# --- directory format, --keep-old, --json
rc=0; restore --database dst --from dir.pgship -j 2 --keep-old --json >dir.json 2>dir.err || rc=$?
check "directory: restore exits 0" test "$rc" -eq 0
check "directory: restored database equals the source" db_compare "$PORT" src "$PORT" dst
OLD=$(old_dbs)
check "directory --keep-old: the old database is kept and named in the report" \
    bash -c "test -n '$OLD' && grep -q '\"old_database\": \"$OLD\"' dir.json"
check "directory --keep-old: the old database takes connections" test "$(allowconn "$OLD")" = t
check "directory --json: ok, the steps and the tables" \
    bash -c "grep -q '\"ok\": true' dir.json && grep -q '\"name\": \"swap\"' dir.json && grep -q '\"rows\": 150000' dir.json"
check "directory --json: the source's manifest" grep -q '"format": "directory"' dir.json
q postgres "DROP DATABASE \"$OLD\""

# --- a target that does not exist yet; pg_restore's options
expect_fail "--data-only into a database that does not exist: refused" \
    "data-only keeps the target's schema, but database part does not exist" \
    restore --database part --from small.pgship --data-only
restore --database part --from small.pgship --schema-only -q >/dev/null 2>&1 || true
check "--schema-only into a new database: both tables, no rows" \
    test "$(q part "SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b), to_regclass('b') IS NOT NULL")" = "0|t"
q part "ALTER TABLE b ADD COLUMN extra int DEFAULT 7; CREATE INDEX b_v ON b (v)"
restore --database part --from small.pgship --data-only -j 2 -q >/dev/null 2>&1 || true
check "--data-only: the target's schema (its own column and index) with the archive's rows" \
    test "$(q part "SELECT (SELECT count(*) FROM a), (SELECT sum(extra) FROM b), to_regclass('b_v') IS NOT NULL")" = "50|490|t"
restore --database part --from small.pgship --table b -q >/dev/null 2>&1 || true
check "--table b: only b, with its rows" \
    test "$(q part "SELECT to_regclass('a') IS NULL, (SELECT count(*) FROM b)")" = "t|70"
# The temporary database takes the target's owner: app, who may then create in public.
q postgres "ALTER DATABASE part OWNER TO app"
restore --database part --from small.pgship --schema public --no-owner --role app -q >/dev/null 2>&1 || true
check "--schema public --no-owner --role app: both tables, owned by app" \
    test "$(q part "SELECT string_agg(tableowner, ',') FROM pg_tables WHERE schemaname = 'public'")" = "app,app"

# The parallel loader (docs/restore.md, "Streamed restore"): both tables loaded by the agent's own
# sessions, with TRUNCATE + COPY FREEZE as a superuser, and without them under a non-superuser role.
restore --database part --from small.pgship -j 2 --json >par.json 2>par.err || true
check "parallel load: 2 tables, both frozen, 120 rows as COPY counted them" \
    bash -c "grep -A6 '\"load\"' par.json | tr -d ' \n' | grep -q '\"tables\":2,\"frozen\":2,\"rows\":120'"
check "parallel load: every row is there" \
    test "$(q part "SELECT (SELECT count(*) FROM a) + (SELECT count(*) FROM b)")" = "120"
restore --database part --from small.pgship -j 2 --no-owner --role app --json >par2.json 2>par2.err || true
check "parallel load as a non-superuser role: loaded, not frozen" \
    bash -c "grep -A6 '\"load\"' par2.json | tr -d ' \n' | grep -q '\"tables\":2,\"frozen\":0,\"rows\":120'"
restore --database part --from small.pgship --table b --json >par3.json 2>par3.err || true
check "--table b (pg_restore's own selection): restored, with no parallel load in the report" \
    bash -c "grep -q '\"swap\"' par3.json && ! grep -q '\"load\"' par3.json"

# A dump without table data: the loader declines it and pg_restore gets all of it through the
# FIFO, from the first byte (the part the loader had read is fed first).
q postgres "CREATE DATABASE nodata"
q nodata "CREATE SEQUENCE s; SELECT setval('s', 42); CREATE VIEW v AS SELECT 1 AS one"
"$BIN/pgship-agent" dump -d "$(pgc_conninfo "$PORT" nodata)" -r ops.pub -o nodata.pgship 2>/dev/null
restore --database part --from nodata.pgship --json >nodata.json 2>nodata.err || true
check "no table data: restored by pg_restore alone (no parallel load in the report)" \
    bash -c "grep -q '\"swap\"' nodata.json && ! grep -q '\"load\"' nodata.json"
check "no table data: the sequence's value and the view are there" \
    test "$(q part "SELECT (SELECT last_value FROM s) || '|' || (SELECT one FROM v)")" = "42|1"

# From here on dst differs from every archive, so that a swap would show in its fingerprint.
q dst "CREATE TABLE public.marker (x int); INSERT INTO marker VALUES (1); UPDATE shop.customers SET name = 'changed' WHERE id = 1"
FP0=$WORK/fp0
db_fingerprint "$PORT" dst >"$FP0"
OID0=$(q postgres "SELECT oid FROM pg_database WHERE datname = 'dst'")

# --- a sanitize script that fails half-way, after an UPDATE that succeeded
printf '%s\n' "-- anonymize" "UPDATE shop.customers SET name = 'x';" "" \
    "UPDATE shop.orders SET no_such_column = 1;" "SELECT 1;" >bad_sanitize.sql
expect_fail "sanitize failing half-way: fails naming the line and the error" \
    "sanitize.sql failed at line 4 .*no_such_column" \
    restore --database dst --from custom.pgship --sanitize-sql bad_sanitize.sql
check "sanitize failing half-way: the report names step and line" \
    bash -c "grep -q 'FAILED in step sanitize' '$WORK/out.txt' && grep -q 'sanitize error at line 4' '$WORK/out.txt'"
unchanged "sanitize failing half-way"
# A run-time error has no position: its statement's line is found by splitting the script.
printf '%s\n' "UPDATE shop.customers SET name = 'x'; -- ; not the end" "DO \$\$ BEGIN PERFORM 1; END \$\$;" \
    "SELECT 'a;b', E'c\\';d';" "/* ; */ SELECT 1 / 0;" >bad_sanitize2.sql
restore --database dst --from custom.pgship --sanitize-sql bad_sanitize2.sql --json \
    >sanitize2.json 2>/dev/null || true
check "sanitize run-time error: statement 4 at line 4" \
    bash -c "grep -A3 '\"sanitize_error\"' sanitize2.json | tr -d ' \n' | grep -q '\"line\":4,\"statement\":4'"
unchanged "sanitize run-time error"

# --- a check query returning rows
printf '%s\n' "SELECT 1 WHERE false;" "SELECT id, name FROM shop.customers" "  WHERE id <= 3 ORDER BY id;" >check.sql
printf '%s\n' "UPDATE shop.customers SET name = 'anon';" >ok_sanitize.sql
restore --database dst --from custom.pgship --sanitize-sql ok_sanitize.sql --check-sql check.sql \
    --json >check.json 2>check.err && rc=0 || rc=$?
check "check returning rows: exit 1" test "$rc" -eq 1
check "check returning rows: step check, 3 failures shown with their columns and values" \
    bash -c "grep -q '\"step\": \"check\"' check.json && grep -q '\"check_failures_total\": 3' check.json &&
             tr -d ' \n' <check.json | grep -q '{\"query\":2,\"line\":2,\"columns\":\\[\"id\",\"name\"\\],\"row\":\\[\"1\",\"anon\"\\]}'"
unchanged "check returning rows"

# --- a key that is not a recipient
ops_id=$(grep -o 'key id [0-9a-f]*' ops.pub | cut -d' ' -f3)
stranger_id=$(grep -o 'key id [0-9a-f]*' stranger.pub | cut -d' ' -f3)
expect_fail "wrong key: names the archive's recipients and the agent's keys" \
    "unpack: no restore key opens this archive: its recipient is key id $ops_id; the agent's restore keys are $stranger_id \(stranger\)" \
    restore --database dst --from custom.pgship --key stranger.key
unchanged "wrong key"

# --- SIGTERM during pg_restore
"$BIN/pgship-agent" restore -c agent.conf --database dst --from custom.pgship >term.out 2>term.err &
pid=$!
for _ in $(seq 100); do grep -q 'step pg_restore' term.err && break; sleep 0.05; done
sleep 0.3
kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
check "SIGTERM during pg_restore: exit 143, step pg_restore" \
    bash -c "test $rc -eq 143 && grep -q 'FAILED in step pg_restore' term.out"
unchanged "SIGTERM during pg_restore"

# --- kill -9 during pg_restore, then --cleanup
"$BIN/pgship-agent" restore -c agent.conf --database dst --from custom.pgship >kill.out 2>kill.err &
pid=$!
for _ in $(seq 100); do grep -q 'step pg_restore' kill.err && break; sleep 0.05; done
sleep 0.3
disown "$pid"        # (no "Killed" notice from bash)
kill -KILL "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
check "kill -9: a temporary database and a spool directory are left" \
    test -n "$(tmp_dbs)" -a -n "$(ls -A spool)"
# A swap that died after closing the target, and an admin's own closed database beside it.
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE \"part__pgship_tmp_20260101T000000Z-00000000\"" \
    -c "ALTER DATABASE part ALLOW_CONNECTIONS false" -c "CREATE DATABASE closed_by_admin" \
    -c "ALTER DATABASE closed_by_admin ALLOW_CONNECTIONS false"
rc=0; restore --cleanup >cleanup.out 2>cleanup.err || rc=$?
check "--cleanup exits 0, reports what it did" \
    bash -c "test $rc -eq 0 && grep -q 'dropped 2 temporary databases, removed 1 spool directory' cleanup.err"
unchanged "kill -9 and --cleanup"
check "--cleanup re-allows connections to a target a swap left closed" test "$(allowconn part)" = t
check "--cleanup leaves an admin's closed database alone" test "$(allowconn closed_by_admin)" = f

# --- a sanitized re-dump into a new archive (the sanitizer agent's path); dst untouched
rc=0; restore --database dst --from custom.pgship --sanitize-sql ok_sanitize.sql -o sanitized.pgship \
    -r stranger.pub >redump.out 2>redump.err || rc=$?
check "re-dump: exit 0, the report names the new archive" \
    bash -c "test $rc -eq 0 && grep -q 'sanitized archive: ' redump.out && test -s sanitized.pgship"
unchanged "re-dump"
restore --database part --from sanitized.pgship --key stranger.key -q >/dev/null 2>&1
check "re-dump: the new archive holds the sanitized data" \
    test "$(q part "SELECT count(*), count(*) FILTER (WHERE name = 'anon') FROM shop.customers")" = "2000|2000"

check "no pg_restore of ours left running" bash -c "! pgrep -f '^[^ ]*pg_restore .*$WORK' >/dev/null"
check_summary agent_restore
