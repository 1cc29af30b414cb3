#!/usr/bin/env bash
# Remote restores and prod -> staging syncs end to end with the real parts: two PostgreSQL 15
# clusters on loopback ("prod" and "staging"), a realistic application database (30,000 users
# with emails, phones, addresses, orders, payments: tests/integration/sql/app.sql), pgship-agent
# daemons dialing a pgship-coordinator over nng TLS, s3rver as the bucket, the pgship client.
#
#   policy:   a prod backup into staging without a profile is refused; into prod without
#             --overwrite-prod is refused; an allow_unsanitized pair (prod:dr) lets one through
#   restore:  a backup restored on another host into a dr database, proved equal (schema dump,
#             row counts, content checksums); the replaced database is dropped, or kept with
#             --keep-old
#   sync:     a fresh backup, restored into staging through the example profile: every check
#             query returns nothing, row counts intact, foreign keys valid, no original email
#   at source: a sanitizer agent in the prod zone restores, sanitizes and re-encrypts to the
#             staging agent's key only; the staging agent holds no prod key and restores it
#   failures: a sanitization failing half-way, a check query returning rows, a wrong key, kill -9
#             of the target agent mid-restore: each leaves the target byte-for-byte as it was
#             and no temporary database (after the agent's restart)
# usage: restore_sync.sh BINDIR
set -euo pipefail
BIN=$(cd "${1:?usage: restore_sync.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export FLEET_BIN_DIR=$BIN
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/dbcompare.sh"
source "$HERE/lib/s3rver.sh"
source "$HERE/lib/fleet.sh"

WORK=$(mktemp -d /tmp/pgship-restore.XXXXXX)
chmod 755 "$WORK"
source "$HERE/lib/check.sh"
cleanup() {
    fleet_stop_all >/dev/null 2>&1 || true
    s3rver_stop "$WORK/s3" >/dev/null 2>&1 || true
    pgc_destroy "$WORK/prod" >/dev/null 2>&1 || true
    pgc_destroy "$WORK/staging" >/dev/null 2>&1 || true
    if [ "$failed" -ne 0 ] && [ -z "${KEEP:-}" ]; then
        for f in "$WORK"/*.log; do echo "--- $f"; tail -n 40 "$f"; done
    fi
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
psql_p() { pgc_psql "$PP" "$@"; }
psql_s() { pgc_psql "$SP" "$@"; }
q_s() { psql_s "$1" -XAtq -c "$2"; }
tmp_dbs() { q_s postgres "SELECT count(*) FROM pg_database WHERE datname LIKE '%\_\_pgship\_tmp\_%'"; }
old_dbs() { q_s postgres "SELECT count(*) FROM pg_database WHERE datname LIKE '${1}\_\_pgship\_old\_%'"; }
fp_s() { db_fingerprint "$SP" "$1"; }
# checks DB: the profile's check queries, run by hand; prints the rows they return
checks() { psql_s "$1" -XAtq -f "$PROFILES/app-anonymize/check.sql"; }

# --- two clusters: prod (the application, the sanitizer's scratch database) and staging
PP=$(pgc_free_port)
pgc_start "$WORK/prod" "$PP" >/dev/null
SP=$(pgc_free_port)
pgc_start "$WORK/staging" "$SP" >/dev/null
psql_p postgres -q -c "CREATE DATABASE appdb" -c "CREATE DATABASE scratch" -c "CREATE DATABASE big"
t0=$(date +%s.%N)
psql_p appdb -q -f "$HERE/sql/app.sql" >/dev/null
echo "app.sql loaded in $(python3 -c "import time; print(round(time.time() - $t0, 1))") s"
psql_p big -q -c "CREATE TABLE noise AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS junk
    FROM generate_series(1, 3000000) g" -c "ALTER TABLE noise ADD PRIMARY KEY (id)"
# staging starts with content of its own (which a failed restore must leave as it was)
psql_s postgres -q -c "CREATE DATABASE appdb" -c "CREATE DATABASE appdb2" -c "CREATE DATABASE dr" \
    -c "CREATE DATABASE drbig"
for db in appdb appdb2 dr drbig; do
    psql_s "$db" -q -f "$HERE/sql/fixture.sql" >/dev/null
    psql_s "$db" -q -c "CREATE TABLE staging_marker AS SELECT 'staging data of $db'::text AS note"
done

# --- keys: prod's archive key (held by prod and by the sanitizer), staging's
fleet_certs tls >/dev/null
fleet_recipient keys prod >/dev/null
fleet_recipient keys stg >/dev/null
for a in prod-db1 staging-db1 staging-db2 prod-sanitizer; do fleet_identity keys "$a" >/dev/null; done

PROFILES=$WORK/profiles
mkdir -p "$PROFILES"
cp -r "$ROOT/deploy/profiles/app-anonymize" "$PROFILES/app-anonymize"
rm -f "$PROFILES/app-anonymize/profile.ini"
# the same rules, applied at the source by the sanitizer agent
cp -r "$PROFILES/app-anonymize" "$PROFILES/app-anonymize-src"
printf '[profile]\ndescription = anonymised in the prod zone\nsanitizer = prod-sanitizer\nsanitizer_database = scratch\n' \
    >"$PROFILES/app-anonymize-src/profile.ini"
# a sanitization that fails half-way: the first UPDATE succeeds, then an error
mkdir -p "$PROFILES/fails-halfway"
printf "UPDATE app.users SET email = 'gone-' || id || '@example.invalid';\nUPDATE app.users SET phone = 1 / 0;\n" \
    >"$PROFILES/fails-halfway/sanitize.sql"
# a sanitization that runs, and a check that finds what it missed
mkdir -p "$PROFILES/leaky"
printf "UPDATE app.users SET first_name = 'X';\n" >"$PROFILES/leaky/sanitize.sql"
printf "SELECT id, email FROM app.users WHERE email NOT LIKE '%%@example.invalid' ORDER BY id LIMIT 5;\n" \
    >"$PROFILES/leaky/check.sql"

S3PORT=$(s3rver_free_port)
s3rver_start "$WORK/s3" "$S3PORT" pgship >/dev/null
fleet_coordinator_conf coordinator.conf tls state \
    --agent prod-db1 keys/prod-db1.pub --agent staging-db1 keys/staging-db1.pub \
    --agent staging-db2 keys/staging-db2.pub --agent prod-sanitizer keys/prod-sanitizer.pub \
    --storage-s3 "http://127.0.0.1:$S3PORT" pgship \
    --set "profiles_dir=$PROFILES"
printf '\n[policy]\nprod_environments = prod\nallow_unsanitized = prod:dr\n' >>coordinator.conf
fleet_agent_conf prod-db1.conf prod-db1 tls keys/prod-db1.key --recipient keys/prod.pub \
    --db appdb prod "$(pgc_conninfo "$PP" appdb)" --db big prod "$(pgc_conninfo "$PP" big)" \
    --set "restore_keys=$WORK/keys/prod.key"
# staging-db1 may hold the prod key (it restores prod through a profile, and the dr copies)
fleet_agent_conf staging-db1.conf staging-db1 tls keys/staging-db1.key --recipient keys/stg.pub \
    --db appdb staging "$(pgc_conninfo "$SP" appdb)" --db dr dr "$(pgc_conninfo "$SP" dr)" \
    --db drbig dr "$(pgc_conninfo "$SP" drbig)" \
    --set "restore_keys=$WORK/keys/prod.key,$WORK/keys/stg.key"
# staging-db2 must never hold production data or keys
fleet_agent_conf staging-db2.conf staging-db2 tls keys/staging-db2.key --recipient keys/stg.pub \
    --db appdb2 staging "$(pgc_conninfo "$SP" appdb2)" --set "restore_keys=$WORK/keys/stg.key"
fleet_agent_conf prod-sanitizer.conf prod-sanitizer tls keys/prod-sanitizer.key \
    --recipient keys/prod.pub --db scratch prod "$(pgc_conninfo "$PP" scratch)" \
    --set "restore_keys=$WORK/keys/prod.key"

fleet_start_coordinator coordinator.conf coord.log
for a in prod-db1 staging-db1 staging-db2 prod-sanitizer; do
    fleet_start_agent "$a.conf" "$a.log"
    fleet_wait_agent "$a" 30 >/dev/null
done

# ===================== policy =====================
fleet_client backup prod-db1/appdb --label base --wait --json >b1.json 2>b1.err
ID=$(json 'd["id"]' <b1.json)
check "a prod backup to restore from" test "$(json 'd["state"]' <b1.json)" = complete

expect_fail "an unsanitized prod -> staging restore is refused, saying how to do it" \
    "sanitization profile" fleet_client restore "$ID" --to staging-db1/appdb --wait
expect_fail "a restore into prod without --overwrite-prod is refused, naming the flag" \
    "--overwrite-prod" fleet_client restore "$ID" --to prod-db1/appdb --wait
expect_fail "a restore into a database the agent does not serve is refused" \
    "no database nosuchdb" fleet_client restore "$ID" --to staging-db1/nosuchdb --wait
expect_fail "an unknown profile is refused" \
    "no profile no-such-profile" fleet_client restore "$ID" --to staging-db1/appdb \
    --sanitize no-such-profile --wait
check "no restore ran: staging appdb untouched" test "$(q_s appdb "SELECT note FROM staging_marker")" = "staging data of appdb"

# ===================== restore round trip (prod -> dr, allowed unsanitized) =====================
fleet_client restore "$ID" --to staging-db1/dr --wait --json >r1.json 2>r1.err
check "restore prod -> dr (allow_unsanitized = prod:dr) completes" test "$(json 'd["state"]' <r1.json)" = complete
check "the restored database equals prod's (schema, counts, checksums)" db_compare "$PP" appdb "$SP" dr
check "the replaced database was dropped" test "$(old_dbs dr)" = 0
check "the report has per-table row counts" \
    test "$(json '[t["rows"] for t in d["report"]["tables"] if t["name"] == "users"]' <r1.json)" = "[30000]"
check "... and the time of each step" \
    test "$(json 'sorted(s["name"] for s in d["report"]["steps"] if "ms" in s)' <r1.json | grep -c pg_restore)" = 1
fleet_client restore "$ID" --to staging-db1/dr --keep-old --jobs 1 --wait --json >r2.json 2>r2.err
check "--keep-old keeps the replaced database as dr__pgship_old_<time>" test "$(old_dbs dr)" = 1
check "no temporary database is left" test "$(tmp_dbs)" = 0

# ===================== sync through a profile =====================
before_rows=$(psql_p appdb -XAtq -c "SELECT (SELECT count(*) FROM app.users), (SELECT count(*) FROM app.orders), (SELECT count(*) FROM app.payments)")
check "the checks find production data before sanitization" test -n "$(psql_p appdb -XAtq -f "$PROFILES/app-anonymize/check.sql" | head -1)"
fleet_client sync prod-db1/appdb --to staging-db1/appdb --sanitize app-anonymize --safety-backup \
    --wait --json >s1.json 2>s1.err
check "sync prod -> staging with app-anonymize completes" test "$(json 'd["state"]' <s1.json)" = complete
check "it backed up prod first (a fresh backup)" test "$(json 'd["source_backup_id"] != "'"$ID"'"' <s1.json)" = True
SAFE=$(json 'd["safety_backup_id"]' <s1.json)
check "--safety-backup shipped a backup of staging first, named in the report" \
    test "$(fleet_client show "$SAFE" --json | json '(d["label"], d["state"], d["agent"], d["database"])')" = "('safety', 'complete', 'staging-db1', 'appdb')"
check "... and the report's coordinator steps are backup, safety, restore" \
    test "$(json '[s["name"] for s in d["report"]["coordinator_steps"]]' <s1.json)" = "['backup', 'safety', 'restore']"
check "every check query returns nothing in staging" test -z "$(checks appdb)"
check "application row counts are intact" \
    test "$(psql_s appdb -XAtq -c "SELECT (SELECT count(*) FROM app.users), (SELECT count(*) FROM app.orders), (SELECT count(*) FROM app.payments)")" = "$before_rows"
check "every foreign key is there and valid" \
    test "$(q_s appdb "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND convalidated")" = \
    "$(psql_p appdb -XAtq -c "SELECT count(*) FROM pg_constraint WHERE contype = 'f'")"
check "no order points at a missing user" \
    test "$(q_s appdb "SELECT count(*) FROM app.orders o LEFT JOIN app.users u ON u.id = o.user_id WHERE u.id IS NULL")" = 0
check "emails are still unique" \
    test "$(q_s appdb "SELECT count(*) - count(DISTINCT email) FROM app.users")" = 0
psql_p appdb -XAtq -c "SELECT email FROM app.users ORDER BY id LIMIT 200" | sort >prod_emails
psql_s appdb -XAtq -c "SELECT email FROM app.users ORDER BY id LIMIT 200" | sort >stg_emails
check "no production email reached staging" test -z "$(comm -12 prod_emails stg_emails)"
check "staging's own data was replaced" test "$(q_s appdb "SELECT count(*) FROM pg_tables WHERE tablename = 'staging_marker'")" = 0
fleet_client restores --json >list.json
check "pgship restores lists every restore, newest first" \
    test "$(json '[r["kind"] + ":" + r["state"] for r in d][:3]' <list.json)" = "['sync:complete', 'restore:complete', 'restore:complete']"
check "... with who asked, the profile and the target" \
    test "$(json '[(r["profile"], r["target_agent"], r["target_database"]) for r in d][0]' <list.json)" = "('app-anonymize', 'staging-db1', 'appdb')"

# ===================== sanitized at the source =====================
check "staging-db2's configuration holds no production key" bash -c "! grep -q 'prod.key' staging-db2.conf"
fleet_client sync prod-db1/appdb --to staging-db2/appdb2 --sanitize app-anonymize-src --from-latest \
    --wait --json >s2.json 2>s2.err
check "a sync sanitized at the source completes" test "$(json 'd["state"]' <s2.json)" = complete
SAN=$(json 'd["sanitized_backup_id"]' <s2.json)
check "it names the sanitizer agent" test "$(json 'd["sanitizer_agent"]' <s2.json)" = prod-sanitizer
fleet_client show "$SAN" --json >san.json
check "the sanitized backup is labelled sanitized and linked to its source" \
    test "$(json '(d["label"], d["source_backup_id"] == "'"$(json 'd["source_backup_id"]' <s2.json)"'")' <san.json)" = "('sanitized', True)"
stg_kid=$(sed -n 's/.*key id \([0-9a-f]\{16\}\).*/\1/p' keys/stg.pub | head -1)
check "its recipients are the staging key only" test "$(json 'd["recipients"]' <san.json)" = "['$stg_kid']"
fleet_client fetch "$SAN" -o san.pgship >/dev/null 2>&1
check "the sanitized archive opens with the staging key" "$BIN/pgship" decrypt --key keys/stg.key --list san.pgship >/dev/null
expect_fail "... and not with the prod key" "key" "$BIN/pgship" decrypt --key keys/prod.key --list san.pgship
check "staging-db2 restored it: the checks find nothing" test -z "$(psql_s appdb2 -XAtq -f "$PROFILES/app-anonymize/check.sql")"
check "row counts intact there too" \
    test "$(psql_s appdb2 -XAtq -c "SELECT (SELECT count(*) FROM app.users), (SELECT count(*) FROM app.orders), (SELECT count(*) FROM app.payments)")" = "$before_rows"
check "the sanitizer left no temporary database in the prod zone" \
    test "$(psql_p postgres -XAtq -c "SELECT count(*) FROM pg_database WHERE datname LIKE '%pgship%'")" = 0

# ===================== failures leave staging as it was =====================
fp1=$(fp_s appdb)
fleet_client restore "$ID" --to staging-db1/appdb --sanitize fails-halfway --wait --json >f1.json 2>f1.err || true
check "a sanitization failing half-way fails the restore" test "$(json 'd["state"]' <f1.json)" = failed
check "... in step sanitize, saying why" test "$(json 'd["step"]' <f1.json)" = sanitize
check "... with the line of the failing statement" grep -q "division by zero" f1.json
check "... and staging is byte-for-byte as it was" test "$(fp_s appdb)" = "$fp1"
check "... with no temporary database" test "$(tmp_dbs)" = 0

fleet_client restore "$ID" --to staging-db1/appdb --sanitize leaky --wait --json >f2.json 2>f2.err || true
check "a check query returning rows fails the restore in step check" \
    test "$(json '(d["state"], d["step"])' <f2.json)" = "('failed', 'check')"
check "... and the report shows the rows" \
    test "$(json 'len(d["report"]["check_failures"]) > 0' <f2.json)" = True
check "... staging unchanged" test "$(fp_s appdb)" = "$fp1"
check "... no temporary database" test "$(tmp_dbs)" = 0

fp2b=$(fp_s appdb2)
fleet_client restore "$ID" --to staging-db2/appdb2 --sanitize app-anonymize --wait --json >f3.json 2>f3.err || true
check "a restore with no key that opens the archive fails in step unpack" \
    test "$(json '(d["state"], d["step"])' <f3.json)" = "('failed', 'unpack')"
check "... naming the archive's recipients" grep -q "recipient" f3.json
check "... staging-db2 unchanged" test "$(fp_s appdb2)" = "$fp2b"
check "... no temporary database" test "$(tmp_dbs)" = 0

# kill -9 of the target agent in the middle of pg_restore
fleet_client backup prod-db1/big --wait --json >bb.json 2>bb.err
BIG=$(json 'd["id"]' <bb.json)
fpb=$(fp_s drbig)
fleet_client restore "$BIG" --to staging-db1/drbig --json >k.json 2>k.err
RID=$(json 'd["id"]' <k.json)
for i in $(seq 600); do
    st=$(fleet_client restores "$RID" --json 2>/dev/null || true)
    [ "$(json '(d.get("progress") or {}).get("agent_step", "")' <<<"$st" 2>/dev/null)" = pg_restore ] && break
    sleep 0.1
done
sleep 0.5
kill -9 "${FLEET_AGENT_PID[staging-db1]}"
check "the temporary database exists at the kill" test "$(tmp_dbs)" = 1
for i in $(seq 300); do
    st=$(fleet_client restores "$RID" --json 2>/dev/null || true)
    [ "$(json 'd["state"]' <<<"$st" 2>/dev/null)" = failed ] && break
    sleep 0.1
done
check "the restore fails: the agent was lost" test "$(json 'd["state"]' <<<"$st")" = failed
check "drbig is byte-for-byte as it was" test "$(fp_s drbig)" = "$fpb"
fleet_start_agent staging-db1.conf staging-db1-2.log
fleet_wait_agent staging-db1 30 >/dev/null
check "after the agent's restart no temporary database is left" test "$(tmp_dbs)" = 0
check "... and the agent logged dropping it" grep -q "__pgship_tmp_" staging-db1-2.log

fleet_client restores >restores.txt
check "pgship restores prints a table" grep -q "staging-db1" restores.txt
check_summary restore_sync
