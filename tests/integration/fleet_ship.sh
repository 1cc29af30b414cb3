#!/usr/bin/env bash
# Shipping backups end to end with the real parts: PostgreSQL 15, pgship-agent daemons dialing a
# pgship-coordinator over nng TLS on loopback, local-directory storage and s3rver, the pgship
# client against the admin API.
#
#   fs:  a backup shipped, fetched, decrypted, restored with stock pg_restore and proved equal to
#        the source (schema dump, row counts, content checksums); object and sidecar in place
#   kill -9 of the agent mid-stream; kill -9 of the coordinator mid-stream: no complete row, no
#        complete-looking object, failed after restart, the next backup succeeds
#   s3:  the same round trip through s3rver; the object read back by rclone has the catalog's
#        SHA-256; s3rver killed mid-upload: the backup fails with the storage's error after
#        visible retries and no object becomes visible
#   8 agents shipping at once to one coordinator: all complete and every archive opens
# usage: fleet_ship.sh BINDIR
set -euo pipefail
BIN=$(cd "${1:?usage: fleet_ship.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
export FLEET_BIN_DIR=$BIN
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/dbcompare.sh"
source "$HERE/lib/s3rver.sh"
source "$HERE/lib/fleet.sh"
PGBIN=${PGC_BINDIR:-/usr/lib/postgresql/15/bin}

WORK=$(mktemp -d /tmp/pgship-ship.XXXXXX)
chmod 755 "$WORK"
source "$HERE/lib/check.sh"
cleanup() {
    fleet_stop_all >/dev/null 2>&1 || true
    s3rver_stop "$WORK/s3" >/dev/null 2>&1 || true
    pgc_destroy "$WORK/pg" >/dev/null 2>&1 || true
    if [ "$failed" -ne 0 ] && [ -z "${KEEP:-}" ]; then
        for f in "$WORK"/*.log; do echo "--- $f"; tail -n 40 "$f"; done
    fi
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

# --- a source cluster: the fixture database, and a bigger one whose dump takes a moment
PORT=$(pgc_free_port)
pgc_start "$WORK/pg" "$PORT" >/dev/null
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE appdb" -c "CREATE DATABASE big"
pgc_psql "$PORT" appdb -q -f "$HERE/sql/fixture.sql" >/dev/null
pgc_psql "$PORT" big -q -c "CREATE TABLE noise AS SELECT g AS id,
    decode(md5(random()::text) || md5(random()::text), 'hex') AS junk
    FROM generate_series(1, 2500000) g"

fleet_certs tls >/dev/null
fleet_recipient keys ops >/dev/null
NAGENTS=8
AGENT_OPTS=()
for i in $(seq 1 $NAGENTS); do
    fleet_identity keys "a$i" >/dev/null
    AGENT_OPTS+=(--agent "a$i" "keys/a$i.pub")
done

S3PORT=$(s3rver_free_port)
s3rver_start "$WORK/s3" "$S3PORT" pgship >/dev/null

json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
show() { fleet_client show "$1" --json; }
state_of() { show "$1" | json 'd["state"]'; }
# wait_bytes ID: until the backup has stored some bytes (mid-stream) or ended
wait_bytes() {
    local i st
    for i in $(seq 600); do
        st=$(show "$1" 2>/dev/null || true)
        if [ -n "$st" ]; then
            [ "$(json 'd["state"]' <<<"$st")" != running ] && [ "$(json 'd["state"]' <<<"$st")" != queued ] && return 1
            STORED=$(json '(d.get("progress") or {}).get("bytes", 0)' <<<"$st")
            [ "$STORED" -gt 0 ] && return 0
        fi
        sleep 0.05
    done
    return 1
}
# wait_state ID STATE [TIMEOUT_S]
wait_state() {
    local i
    for i in $(seq $((${3:-60} * 10))); do
        [ "$(state_of "$1" 2>/dev/null || true)" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
restore_compare() { # restore_compare ARCHIVE DBNAME: decrypt, pg_restore, compare with appdb
    rm -rf "x_$2"
    "$BIN/pgship" decrypt --key keys/ops.key "$1" --extract "x_$2" 2>/dev/null
    pgc_psql "$PORT" postgres -q -c "CREATE DATABASE \"$2\""
    "$PGBIN/pg_restore" -h 127.0.0.1 -p "$PORT" -U postgres -d "$2" --exit-on-error "x_$2/dump.pgdump"
    db_compare "$PORT" appdb "$PORT" "$2"
}
start_agent() { # start_agent N
    fleet_start_agent "agent$1.conf" "agent$1.log" && fleet_wait_agent "a$1" 30 >/dev/null
}

# ===================== local directory storage =====================
fleet_coordinator_conf coordinator.conf tls state "${AGENT_OPTS[@]}" \
    --storage-fs "$WORK/archive"
# API tokens with roles ([token NAME], docs/api.md "Authentication").
for t in read operate; do
    (umask 077 && openssl rand -hex 32 >"tok-$t")
done
add_tokens() { # add_tokens CONF
    printf '\n[token grafana]\nfile = %s\nrole = read\n\n[token ci]\nfile = %s\nrole = operate\n' \
        "$WORK/tok-read" "$WORK/tok-operate" >>"$1"
}
add_tokens coordinator.conf
for i in $(seq 1 $NAGENTS); do
    fleet_agent_conf "agent$i.conf" "a$i" tls "keys/a$i.key" --recipient keys/ops.pub \
        --db appdb prod "$(pgc_conninfo "$PORT" appdb)" --db big dev "$(pgc_conninfo "$PORT" big)"
done
fleet_start_coordinator coordinator.conf coord.log
start_agent 1
agents=$(fleet_client agents --json)
check "pgship agents lists a1 as connected" \
    test "$(json '[a["connected"] for a in d if a["name"] == "a1"]' <<<"$agents")" = "[True]"
check "... with its databases and their server versions" \
    test "$(json '[(x["name"], x["environment"], x["server_version"][:2]) for a in d if a["name"] == "a1" for x in a["databases"]]' <<<"$agents")" \
    = "[('appdb', 'prod', '15'), ('big', 'dev', '15')]"
fleet_client agents >agents.txt
check "pgship agents prints a table" grep -q "a1" agents.txt

fleet_client backup a1/appdb --label it-fs --wait --json >b1.json 2>b1.err
ID=$(json 'd["id"]' <b1.json)
check "backup --wait ends complete" test "$(json 'd["state"]' <b1.json)" = complete
check "the JSON has every field a script needs" \
    test "$(json 'sorted(k for k in ("id","agent","database","environment","label","state","error","started_at","finished_at","size_bytes","sha256","storage_key") if k in d)' <b1.json | tr -d "[]',\" " )" = \
    "agentdatabaseenvironmenterrorfinished_atidlabelsha256size_bytesstarted_atstatestorage_key"
check "progress went to stderr" test -s b1.err
KEY=$(json 'd["storage_key"]' <b1.json)
SHA=$(json 'd["sha256"]' <b1.json)
check "the object key is <environment>/<agent>/<database>/<id>.pgship ($KEY)" \
    test "$KEY" = "prod/a1/appdb/$ID.pgship"
check "the object is in the directory" test -s "archive/$KEY"
check "its SHA-256 is the catalog's" test "$(sha256sum "archive/$KEY" | cut -d' ' -f1)" = "$SHA"
check "the sidecar manifest sits beside it" test -s "archive/prod/a1/appdb/$ID.manifest.json"
check "the sidecar holds no secret" bash -c "! grep -q -i -E 'password|secret|conninfo' archive/prod/a1/appdb/$ID.manifest.json"
fleet_client ls --json >ls.json
check "pgship ls --json lists it" test "$(json '[b["id"] for b in d if b["id"] == "'"$ID"'"]' <ls.json)" = "['$ID']"
fleet_client ls a1/appdb >ls.txt
check "pgship ls AGENT/DB prints it" grep -q "$ID" ls.txt
fleet_client fetch "$ID" -o fetched.pgship 2>/dev/null
check "pgship fetch writes the archive with the catalog's SHA-256" \
    test "$(sha256sum fetched.pgship | cut -d' ' -f1)" = "$SHA"
expect_fail "fetch refuses to overwrite" "exist" fleet_client fetch "$ID" -o fetched.pgship
check "fs: fetched, decrypted, restored and equal to the source" restore_compare fetched.pgship r_fs

# --- kill -9 of the agent mid-stream
ID=$(fleet_client backup a1/big --json | json 'd["id"]')
if wait_bytes "$ID"; then
    kill -STOP "${FLEET_AGENT_PID[a1]}"
    kill -9 "${FLEET_AGENT_PID[a1]}"
    ok "the agent was killed mid-stream ($STORED bytes stored)"
else
    bad "the backup of big never streamed: $(show "$ID")"
fi
check "the backup fails when the agent's connection drops" wait_state "$ID" failed 30
err=$(show "$ID" | json 'd["error"]')
check "... with the reason ($err)" grep -q "connection to the agent was lost" <<<"$err"
check "no object and no temporary file is left for it" \
    bash -c "! find archive -name '*$ID*' | grep -q ."
sleep 0.5
check "no pg_dump is left behind" bash -c "! pgrep -f 'bin/[p]g_dump .*big' >/dev/null"
start_agent 1
fleet_client backup a1/appdb --wait --json >b2.json 2>/dev/null
check "after a restart of the agent, the next backup succeeds" test "$(json 'd["state"]' <b2.json)" = complete

# --- kill -9 of the coordinator mid-stream
ID=$(fleet_client backup a1/big --json | json 'd["id"]')
if wait_bytes "$ID"; then
    kill -STOP "${FLEET_AGENT_PID[a1]}"
    kill -9 "$FLEET_COORD_PID"
    wait "$FLEET_COORD_PID" 2>/dev/null || true
    kill -CONT "${FLEET_AGENT_PID[a1]}"
    ok "the coordinator was killed mid-stream ($STORED bytes stored)"
else
    bad "the backup of big never streamed"
fi
check "the catalog row is not complete after the crash" \
    test "$(sqlite3 state/catalog.db "SELECT state FROM backups WHERE id = '$ID'")" != complete
check "no complete-looking object after the crash" bash -c "! find archive -name '$ID.pgship' | grep -q ."
fleet_start_coordinator coordinator.conf coord2.log
check "the restarted coordinator marks it failed" grep -q "backup $ID .* marked failed" coord2.log
check "the catalog says failed" test "$(state_of "$ID")" = failed
check "the agent is still running and reconnects" fleet_wait_agent a1 30
fleet_client backup a1/appdb --wait --json >b3.json 2>/dev/null
check "after the coordinator's restart, the next backup succeeds" test "$(json 'd["state"]' <b3.json)" = complete
check "nothing is left for the killed backup" bash -c "! find archive -name '*$ID*' | grep -q ."
fleet_stop_all
check "SIGTERM stops the fleet cleanly" test $? -eq 0

# The catalog is a cache of the storage: delete it, rebuild it from the sidecars alone, and the
# complete backups come back the same (every field but finished_at, which is the object's time).
complete_rows() {
    sqlite3 -separator '|' state/catalog.db "SELECT id, agent, database, environment, label,
        requested_by, created_at, started_at, bytes, storage_key, sha256, server_version,
        pg_dump_version, recipients FROM backups WHERE state = 'complete' ORDER BY id"
}
complete_rows >rows.before
mkdir -p old-catalog && mv state/catalog.db* old-catalog/
rc=0; "$BIN/pgship-coordinator" -c coordinator.conf catalog rebuild --json >rebuild.json 2>rebuild.err || rc=$?
check "catalog rebuild exits 0 and imports every complete backup ($(wc -l <rows.before))" \
    test "$rc|$(json 'd["imported"]' <rebuild.json)" = "0|$(wc -l <rows.before)"
complete_rows >rows.after
check "the rebuilt catalog lists the same complete backups, field by field" \
    diff rows.before rows.after
rc=0; "$BIN/pgship-coordinator" -c coordinator.conf catalog rebuild >rebuild2.txt 2>&1 || rc=$?
check "a second rebuild imports nothing and finds them all there" \
    bash -c "test $rc -eq 0 && grep -q ' 0 imported, $(wc -l <rows.before) already there' rebuild2.txt"

# ===================== S3 (s3rver) =====================
fleet_coordinator_conf coordinator-s3.conf tls state "${AGENT_OPTS[@]}" \
    --storage-s3 "http://127.0.0.1:$S3PORT" pgship --storage-set part_size_mib=5 \
    --storage-set prefix=fleet
add_tokens coordinator-s3.conf
fleet_start_coordinator coordinator-s3.conf coord-s3.log
for i in $(seq 1 $NAGENTS); do
    sed -i "s|^coordinator = .*|coordinator = $FLEET_LISTEN|" "agent$i.conf"
done
start_agent 1
fleet_client backup a1/appdb --label it-s3 --wait --json >s1.json 2>/dev/null
ID=$(json 'd["id"]' <s1.json)
SHA=$(json 'd["sha256"]' <s1.json)
KEY=$(json 'd["storage_key"]' <s1.json)
check "s3: backup --wait ends complete" test "$(json 'd["state"]' <s1.json)" = complete
export RCLONE_CONFIG_S3IT_TYPE=s3 RCLONE_CONFIG_S3IT_PROVIDER=Other \
    RCLONE_CONFIG_S3IT_ENDPOINT="http://127.0.0.1:$S3PORT" RCLONE_CONFIG_S3IT_ACCESS_KEY_ID=S3RVER \
    RCLONE_CONFIG_S3IT_SECRET_ACCESS_KEY=S3RVER RCLONE_CONFIG_S3IT_FORCE_PATH_STYLE=true
unset AWS_CA_BUNDLE
check "rclone reads the object back with the catalog's SHA-256" \
    test "$(rclone cat "s3it:pgship/fleet/$KEY" 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$SHA"
check "rclone sees the sidecar" bash -c "rclone lsf s3it:pgship/fleet/prod/a1/appdb/ 2>/dev/null | grep -q '$ID.manifest.json'"
fleet_client fetch "$ID" -o s3.pgship 2>/dev/null
check "s3: fetched, decrypted, restored and equal to the source" restore_compare s3.pgship r_s3

# --- s3rver killed mid-upload
ID=$(fleet_client backup a1/big --json | json 'd["id"]')
if wait_bytes "$ID"; then
    kill -STOP "${FLEET_AGENT_PID[a1]}"
    s3rver_stop "$WORK/s3" >/dev/null
    kill -CONT "${FLEET_AGENT_PID[a1]}"
    ok "s3rver was stopped mid-upload ($STORED bytes stored)"
else
    bad "the backup of big never streamed"
fi
check "the backup fails" wait_state "$ID" failed 120
err=$(show "$ID" | json 'd["error"]')
check "with the storage's error ($err)" grep -q -i -E "s3|storage|connect|attempt" <<<"$err"
check "after visible retries in the coordinator's log" grep -q "retrying in" coord-s3.log
s3rver_start "$WORK/s3" "$S3PORT" pgship >/dev/null
check "no object became visible for it" \
    bash -c "! rclone lsf -R s3it:pgship/fleet/ 2>/dev/null | grep -q '$ID'"
check "the agent is still connected" fleet_wait_agent a1 30
fleet_client backup a1/appdb --wait --json >s2.json 2>/dev/null
check "the next backup succeeds" test "$(json 'd["state"]' <s2.json)" = complete

# ===================== 8 agents at once =====================
for i in $(seq 2 $NAGENTS); do fleet_start_agent "agent$i.conf" "agent$i.log"; done
for i in $(seq 2 $NAGENTS); do fleet_wait_agent "a$i" 60 >/dev/null; done
pids=()
for i in $(seq 1 $NAGENTS); do
    fleet_client backup "a$i/appdb" --label fleet8 --wait --json >"m$i.json" 2>/dev/null &
    pids+=($!)
done
all=0
for p in "${pids[@]}"; do wait "$p" || all=1; done
check "8 backups at once: every pgship backup --wait exits 0" test "$all" -eq 0
opened=0
for i in $(seq 1 $NAGENTS); do
    mid=$(json 'd["id"]' <"m$i.json")
    fleet_client fetch "$mid" -o "m$i.pgship" 2>/dev/null &&
        "$BIN/pgship" decrypt --key keys/ops.key "m$i.pgship" -o "m$i.dump" 2>/dev/null &&
        test "$(sha256sum "m$i.pgship" | cut -d' ' -f1)" = "$(json 'd["sha256"]' <"m$i.json")" &&
        opened=$((opened + 1))
done
check "all 8 are complete, match their checksums and decrypt ($opened of $NAGENTS)" test "$opened" -eq $NAGENTS
check "s3: one of them restores equal to the source" restore_compare m5.pgship r_m5
# Roles: a read token lists and scrapes but cannot start a backup; an operate token can, and the
# backup is recorded as its.
as_token() { local t=$1; shift; PGSHIP_URL=$FLEET_API_URL PGSHIP_TOKEN=$(cat "tok-$t") "$BIN/pgship" "$@"; }
check "a read token lists the agents" as_token read agents --json
rc=0; as_token read backup a1/appdb >ro.out 2>ro.err || rc=$?
check "a read token cannot trigger a backup (exit 1, the role named)" \
    bash -c "test $rc -eq 1 && grep -q 'needs a token with role operate; grafana has role read' ro.err"
check "... the coordinator answers 403" test "$(curl -s -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $(cat tok-read)" -H 'Content-Type: application/json' \
    -d '{"agent":"a1","database":"appdb"}' "$FLEET_API_URL/v1/backups")" = 403
as_token operate backup a1/appdb --label by-ci --wait --json >ci.json 2>/dev/null
check "an operate token triggers a backup, recorded as requested by it" \
    test "$(json '(d["state"], d["requested_by"])' <ci.json)" = "('complete', 'ci')"
check "metrics: a read token may scrape" test "$(curl -s -o /dev/null -w '%{http_code}' \
    -H "Authorization: Bearer $(cat tok-read)" "$FLEET_API_URL/metrics")" = 200

# GET /metrics (docs/monitoring.md): Prometheus text computed from the catalog and the fleet.
TOKEN=$(cat "$FLEET_TOKEN_FILE")
curl -s -H "Authorization: Bearer $TOKEN" "$FLEET_API_URL/metrics" >metrics.txt
check "metrics: every agent connected" grep -q -x "pgship_agents_connected $NAGENTS" metrics.txt
check "metrics: a1/appdb's last good backup time" grep -q -E \
    '^pgship_backup_last_success_timestamp_seconds[{]agent="a1",database="appdb",environment="prod"[}] [0-9][0-9.e+]*$' metrics.txt
check "metrics: a1/appdb's complete backups counted" grep -q -E \
    '^pgship_backups_total[{]agent="a1",database="appdb",result="complete"[}] [1-9][0-9]*$' metrics.txt
check "metrics: nothing queued or running" \
    bash -c "grep -q -x 'pgship_jobs_queued 0' metrics.txt && grep -q -x 'pgship_jobs_running 0' metrics.txt"
check "metrics: typed for Prometheus" grep -q -x "# TYPE pgship_backups_total counter" metrics.txt
check "metrics: refused without the token" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "$FLEET_API_URL/metrics")" = 401
hwm=$(fleet_hwm_kb "$FLEET_COORD_PID")
echo "coordinator peak RSS after 8 concurrent streams: $((hwm / 1024)) MiB"
if ldd "$BIN/pgship-coordinator" | grep -q libasan; then
    echo "(peak RSS not checked: an ASan build's shadow memory is not the daemon's)"
else
    check "coordinator peak RSS within 32 MiB + 32 MiB per stream ($((hwm / 1024)) MiB)" \
        test "$hwm" -le $(((32 + 32 * NAGENTS) * 1024))
fi
fleet_stop_all
check "the fleet stops cleanly" test $? -eq 0
check "no agent left a spool behind" bash -c "! find . -path '*spool*' -type f | grep -q ."
check_summary fleet_ship
