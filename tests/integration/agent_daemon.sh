#!/usr/bin/env bash
# Integration test of the agent daemon (pgship-agent -c FILE) against a scripted coordinator
# (agent_peer) and a throwaway PostgreSQL 15 cluster: --check-config; the handshake over TLS after
# a refusal, with an unreachable database still announced; a streamed backup whose bytes decrypt;
# a job for an unknown database reported as FAIL; a malformed reply and a connection dropped
# mid-stream, each survived by reconnecting with no pg_dump left behind; a stop mid-dump that
# reports FAIL "agent stopping" and exits 0; a job the coordinator fails mid-stream (ERROR
# job_failed) followed by FAIL, and the next job on the same connection; a POLL never answered.
# Restore and sanitize jobs (agent/restore.c under the daemon): restore_keys announced in AUTH; a
# restore proved equal to its source (dbcompare.sh); a database not in the config, a wrong key, an
# EOF whose SHA-256 differs and ERROR job_failed to a FETCH, each reported with its step and the
# target unchanged; a connection dropped mid-fetch; a sanitize job whose new archive opens with
# the job's recipient only and holds sanitized data, and one whose DATA the coordinator fails;
# kill -9 mid-restore, then a restart that leaves no temporary database; SIGTERM mid-restore.
#
# usage: agent_daemon.sh BINDIR     (BINDIR holds pgship, pgship-agent and agent_peer)
set -euo pipefail

BIN=$(cd "${1:?usage: agent_daemon.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/dbcompare.sh"

WORK=$(mktemp -d /tmp/pgship-agentd.XXXXXX)
chmod 755 "$WORK"
AGENT_PID="" PEER_PID=""
cleanup() {
    if [ -n "$AGENT_PID" ]; then kill -9 "$AGENT_PID" 2>/dev/null || true; fi
    if [ -n "$PEER_PID" ]; then kill -9 "$PEER_PID" 2>/dev/null || true; fi
    pgc_destroy "$WORK/pg" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

source "$HERE/lib/check.sh"
# wait_for FILE PATTERN SECONDS: until FILE has a line matching PATTERN.
wait_for() {
    local end=$((SECONDS + $3))
    while [ $SECONDS -lt $end ]; do
        grep -q -E -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "  (no \"$2\" in $1 after $3 s)" >&2
    return 1
}
# stop_agent: SIGTERM; its exit status in $rc and the children it had then in $children.
stop_agent() {
    children=$(pgrep -P "$AGENT_PID" | tr '\n' ' ' || true)
    kill -TERM "$AGENT_PID"
    rc=0
    wait "$AGENT_PID" || rc=$?
    AGENT_PID=""
}
gone() { local p; for p in "$@"; do ! kill -0 "$p" 2>/dev/null || return 1; done; }
no_children() { ! pgrep -P "$1" >/dev/null; }

cd "$WORK"
PORT=$(pgc_free_port)
pgc_start "$WORK/pg" "$PORT" >/dev/null
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE src"
pgc_psql "$PORT" src -q -f "$HERE/sql/fixture.sql" >/dev/null
SRC=$(pgc_conninfo "$PORT" src)

"$BIN/pgship" keygen ops 2>/dev/null
"$BIN/pgship" keygen --identity agent1 2>/dev/null
"$ROOT/deploy/make-certs.sh" "$WORK/tls" 2>/dev/null
mkdir spool out
CPORT=$(pgc_free_port)

# write_conf FILE URL [extra [agent] lines]
write_conf() {
    local file=$1 url=$2; shift 2
    {
        echo "[agent]"
        echo "name = agent1"
        echo "coordinator = $url"
        echo "identity_key = $WORK/agent1.key"
        echo "recipients = $WORK/ops.pub"
        echo "spool_dir = $WORK/spool"
        for l in "$@"; do echo "$l"; done
        echo
        echo "[database src]"
        echo "conninfo = $SRC password=sekrit-never-shown"
        echo "environment = prod"
        echo
        echo "[database down]"
        echo "conninfo = host=127.0.0.1 port=1 dbname=down"
        echo "environment = staging"
    } >"$file"
}
write_conf tls.conf "tls+tcp://localhost:$CPORT" "tls_ca = $WORK/tls/ca.crt"
write_conf plain.conf "tcp://127.0.0.1:$CPORT" "allow_insecure_transport = true"

# --- --check-config
"$BIN/pgship-agent" -c tls.conf --check-config >check.out 2>check.err
check "--check-config exits 0 and prints the effective configuration" grep -q -E "^name += agent1" check.out
check "--check-config never prints a conninfo" bash -c "! grep -q sekrit check.out check.err"
rc=0
"$BIN/pgship-agent" run -c tls.conf --check-config >/dev/null 2>&1 || rc=$?
check "run -c FILE --check-config is the same" test "$rc" -eq 0
sed 's/^environment = staging/environment = a-very-long-environment-name-over-31/' tls.conf >long.conf
rc=0
"$BIN/pgship-agent" -c long.conf --check-config >/dev/null 2>long.err || rc=$?
check "--check-config: an environment the wire cannot carry exits 1" \
    bash -c "[ $rc -eq 1 ] && grep -q 'use 1-31 of' long.err"
rc=0
"$BIN/pgship-agent" run >/dev/null 2>&1 || rc=$?
check "run without -c is bad usage (2)" test "$rc" -eq 2

# --- TLS: a refusal, then the handshake; a backup; a job for a database it does not have
"$BIN/agent_peer" "tls+tcp://localhost:$CPORT" --cert tls/coordinator.crt --key tls/coordinator.key \
    --identity agent1.pub --out out --refuse 1 --jobs src,nosuch,down --window 4 --data-max 16384 \
    >peer1.out 2>peer1.err &
PEER_PID=$!
sleep 0.3
"$BIN/pgship-agent" -c tls.conf 2>agent1.log &
AGENT_PID=$!
wait_for peer1.out "^fail .*-00000003 " 90 || true
check "the first HELLO is refused and logged" grep -q "the coordinator refused agent agent1.*not now" agent1.log
check "the agent retries after the refusal" grep -q "^hello agent1 [0-9a-f]\{16\} pgship-agent " peer1.out
check "AUTH verifies and announces both databases, the unreachable one too" \
    grep -q -E "^auth ok src:prod:15[.0-9]* down:staging:unreachable" peer1.out
check "the unreachable database is a warning" grep -q "database down: cannot connect .* announced as unreachable" agent1.log
check "the backup is streamed in several DATA frames" test "$(grep -c '^data ' peer1.out)" -gt 4
check "END matches what arrived (chunks, bytes, sha256)" grep -q "^end ok " peer1.out
check "the agent logs the stored backup" grep -q -E "job [0-9T]+Z-[0-9a-f]+: backup of src complete: .*sha256 [0-9a-f]{64}, stored as test/" agent1.log
JOB1=$(grep -m1 "^job " peer1.out | cut -d' ' -f2)
cp "out/$JOB1.pgship" src.pgship # later peers reuse the job id; the restores below serve this one
"$BIN/pgship" decrypt --key ops.key src.pgship --list --json >list.json 2>/dev/null || true
check "the streamed archive decrypts and verifies" grep -q '"database": "src"' list.json
check "a job for an unknown database is reported as FAIL" grep -q "^fail .* database nosuch is not configured on agent agent1" peer1.out
check "a dump that fails (database down) is reported as FAIL with libpq's reason" \
    grep -q "^fail .*-00000003 cannot connect to the database: .*refused" peer1.out
check "log lines are timestamped daemon lines" grep -q -E "^[0-9-]{10}T[0-9:.]{12}Z pgship-agent\[[0-9]+\] info: " agent1.log
check "no conninfo in the log" bash -c "! grep -q -E 'sekrit|port=1|dbname=' agent1.log"
stop_agent
check "SIGTERM while idle: exit 0" test "$rc" -eq 0
check "stopping is logged" grep -q "stopped (signal 15)" agent1.log
wait "$PEER_PID" 2>/dev/null || true
PEER_PID=""

# --- plain tcp: a malformed reply, then a connection dropped mid-stream
"$BIN/agent_peer" "tcp://127.0.0.1:$CPORT" --identity agent1.pub --out out --garbage-poll \
    --jobs src --drop-at 3 --data-max 4096 --linger 30 >peer2.out 2>peer2.err &
PEER_PID=$!
sleep 0.3
"$BIN/pgship-agent" -c plain.conf 2>agent2.log &
AGENT_PID=$!
wait_for peer2.out "^dropped " 60 || true
wait_for agent2.log "backup of src failed: connection to the coordinator lost" 30 || true
check "insecure transport is a warning" grep -q "not encrypted (allow_insecure_transport = true)" agent2.log
check "a malformed reply is a protocol error that closes the connection" \
    grep -q "protocol error: malformed reply to POLL" agent2.log
check "a dropped connection fails the job in the log" \
    grep -q "backup of src failed: connection to the coordinator lost" agent2.log
wait_for peer2.out "^hello" 1 >/dev/null
sleep 3
check "each new connection starts with a handshake (3 HELLOs)" test "$(grep -c '^hello ' peer2.out)" -ge 3
check "no request reached the peer before a handshake" bash -c "! grep -q 'unauthenticated' peer2.out"
check "no pg_dump is left running" no_children "$AGENT_PID"
check "nothing is left in spool_dir" bash -c "[ -z \"\$(ls -A spool)\" ]"
stop_agent
check "SIGTERM after reconnecting: exit 0" test "$rc" -eq 0
kill "$PEER_PID" 2>/dev/null; wait "$PEER_PID" 2>/dev/null || true
PEER_PID=""

# --- a coordinator that does not answer a POLL: the deadline (heartbeat_ms + 15 s) closes the
# connection and a new one starts with a handshake
"$BIN/agent_peer" "tcp://127.0.0.1:$CPORT" --identity agent1.pub --out out --silent-poll \
    --heartbeat 100 >peer5.out 2>peer5.err &
PEER_PID=$!
sleep 0.3
"$BIN/pgship-agent" -c plain.conf 2>agent5.log &
AGENT_PID=$!
wait_for agent5.log "no reply to POLL within 15 s; closing the connection" 30 || true
check "a POLL without an answer: the connection is closed after heartbeat_ms + 15 s" \
    grep -q "no reply to POLL within 15 s; closing the connection" agent5.log
wait_for peer5.out "^silent" 1 >/dev/null || true
sleep 2
check "... and made again, with a handshake" test "$(grep -c '^hello ' peer5.out)" -ge 2
stop_agent
check "SIGTERM: exit 0" test "$rc" -eq 0
kill "$PEER_PID" 2>/dev/null; wait "$PEER_PID" 2>/dev/null || true
PEER_PID=""

# --- the coordinator fails a job mid-stream: FAIL follows, and the next job runs on the same
# connection
"$BIN/agent_peer" "tcp://127.0.0.1:$CPORT" --identity agent1.pub --out out --jobs src,src \
    --fail-at 5 --data-max 4096 >peer4.out 2>peer4.err &
PEER_PID=$!
sleep 0.3
"$BIN/pgship-agent" -c plain.conf 2>agent4.log &
AGENT_PID=$!
wait_for peer4.out "^end " 60 || true
check "ERROR job_failed to a DATA: the agent stops and sends FAIL with the reason" \
    grep -q "^fail .* the coordinator refused DATA seq 5: storage said no (test) (job_failed)" peer4.out
check "ERROR job_failed: logged" grep -q "backup of src failed: the coordinator refused DATA seq 5" agent4.log
check "the next job completes on the same connection" \
    bash -c "grep -q '^end ok' peer4.out && [ \$(grep -c '^hello ' peer4.out) -eq 1 ]"
stop_agent
check "SIGTERM: exit 0" test "$rc" -eq 0
wait "$PEER_PID" 2>/dev/null || true
PEER_PID=""

# --- a stop mid-dump: FAIL "agent stopping", exit 0
"$BIN/agent_peer" "tcp://127.0.0.1:$CPORT" --identity agent1.pub --out out --jobs src \
    --data-max 4096 --ack-delay 200 --linger 30 >peer3.out 2>peer3.err &
PEER_PID=$!
sleep 0.3
"$BIN/pgship-agent" -c plain.conf 2>agent3.log &
AGENT_PID=$!
wait_for peer3.out "^data .* 2 " 60 || true
start=$SECONDS
stop_agent
check "SIGTERM mid-dump: exit 0" test "$rc" -eq 0
check "SIGTERM mid-dump: stopped within 5 s" test $((SECONDS - start)) -le 5
wait_for peer3.out "^fail .* agent stopping" 2 || true
check "SIGTERM mid-dump: the job is reported as FAIL \"agent stopping\"" grep -q "^fail .* agent stopping" peer3.out
check "SIGTERM mid-dump: logged" grep -q "backup of src failed: agent stopping" agent3.log
check "SIGTERM mid-dump: nothing left in spool_dir" bash -c "[ -z \"\$(ls -A spool)\" ]"
check "SIGTERM mid-dump: pg_dump was running, and is gone" bash -c "[ -n '$children' ]"
sleep 0.5
check "SIGTERM mid-dump: no pg_dump left" gone $children
kill "$PEER_PID" 2>/dev/null; wait "$PEER_PID" 2>/dev/null || true
PEER_PID=""

# --- restore and sanitize jobs
"$BIN/pgship" keygen staging 2>/dev/null
"$BIN/pgship" keygen other 2>/dev/null
for db in dst scratch; do pgc_psql "$PORT" postgres -q -c "CREATE DATABASE $db"; done
pgc_psql "$PORT" dst -q -c "CREATE TABLE before_restore (x int); INSERT INTO before_restore VALUES (42)"
write_conf restore.conf "tcp://127.0.0.1:$CPORT" "allow_insecure_transport = true" \
    "restore_keys = $WORK/ops.key"
{
    echo
    echo "[database dst]"
    echo "conninfo = $(pgc_conninfo "$PORT" dst)"
    echo "environment = staging"
    echo
    echo "[database scratch]"
    echo "conninfo = $(pgc_conninfo "$PORT" scratch)"
    echo "environment = prod"
} >>restore.conf
# tmp_dbs: the temporary databases of restores on the cluster, one per line.
tmp_dbs() {
    pgc_psql "$PORT" postgres -A -t \
        -c "SELECT datname FROM pg_database WHERE strpos(datname, '__pgship_tmp_') > 0"
}
# restore_peer NAME [agent_peer options]: a peer serving restore jobs, its output in NAME.out.
restore_peer() {
    local name=$1
    shift
    "$BIN/agent_peer" "tcp://127.0.0.1:$CPORT" --identity agent1.pub --out out --data-max 4096 \
        "$@" >"$name.out" 2>"$name.err" &
    PEER_PID=$!
    sleep 0.3
}
end_peer() {
    kill "$PEER_PID" 2>/dev/null || true
    wait "$PEER_PID" 2>/dev/null || true
    PEER_PID=""
}
# report_json FILE JQ-FILTER: a field of the first report the peer printed.
report_json() { grep -m1 '^report-json ' "$1" | cut -d' ' -f3- | jq -r "$2"; }

"$BIN/pgship-agent" -c restore.conf --check-config >rcheck.out 2>&1
OPS_SECRET=$(grep -v '^#' ops.key | awk '{print $3}')
check "--check-config shows the restore key by its id" \
    grep -q -E "^# restore key [0-9a-f]{16} \(ops\)$" rcheck.out
check "--check-config never shows the restore key's secret" \
    bash -c "! grep -q -F '$OPS_SECRET' rcheck.out"
cp ops.key ops-open.key
chmod 644 ops-open.key
sed "s|^restore_keys = .*|restore_keys = $WORK/ops-open.key|" restore.conf >open.conf
rc=0
"$BIN/pgship-agent" -c open.conf --check-config >/dev/null 2>open.err || rc=$?
check "a restore key readable by others is refused (exit 1)" \
    bash -c "[ $rc -eq 1 ] && grep -q 'restore_keys: .*ops-open.key holds a secret but is accessible by group or others' open.err"

# A restore of the backup shipped above into dst, then one for a database the agent does not have.
restore_peer peer6 --jobs restore:dst,restore:nosuch --source src.pgship
"$BIN/pgship-agent" -c restore.conf 2>agent6.log &
AGENT_PID=$!
wait_for peer6.out "^report .*-00000002 " 120 || true
OPS_LINE=$(grep '^pgship-public-key-v1' ops.pub)
check "AUTH announces the public half of restore_keys" grep -q -x -F "restore-key $OPS_LINE" peer6.out
check "at start, a server that cannot be reached for the cleanup is a warning" \
    grep -q "database down: cannot clean up after earlier restores on its server" agent6.log
check "the restore is reported ok" grep -q "^report .*-00000001 ok done $" peer6.out
check "STEP: fetch first, then restore_run's steps" \
    bash -c "grep '^step .*-00000001 ' peer6.out | head -2 | cut -d' ' -f3 | tr '\n' ' ' | grep -q '^fetch unpack '"
check "the source is fetched to its EOF in several pieces" \
    bash -c "grep -q '^fetch .*-00000001 [0-9]* eof' peer6.out && [ \$(grep -c '^fetch .*-00000001 [0-9]* piece' peer6.out) -gt 4 ]"
check "the agent logs each step and the outcome" \
    bash -c "grep -q 'restore of [0-9T]*Z-[0-9a-f]* into dst: step pg_restore' agent6.log && grep -q 'restore of .* into dst complete in' agent6.log"
check "the report has per-table row counts and step times" \
    test "$(report_json peer6.out '[(.tables | length) > 0, (.steps | length) > 0] | all')" = true
check "the restored database equals its source (schema, rows, content)" \
    db_compare "$PORT" src "$PORT" dst
check "no temporary database is left" test -z "$(tmp_dbs)"
check "a database not in the config: REPORT failed in step dispatch" \
    grep -q "^report .*-00000002 failed dispatch database nosuch is not configured on agent agent1$" peer6.out
end_peer
db_fingerprint "$PORT" dst >dst.before

# A wrong key: an archive sealed to "other" only.
"$BIN/pgship-agent" dump --dbname "$SRC" --recipient other.pub -o other.pgship 2>/dev/null
OTHER_ID=$("$BIN/pgship" decrypt --key other.key other.pgship --list --json 2>/dev/null |
    jq -r '.manifest.recipients[0].key_id')
restore_peer peer7 --jobs restore:dst --source other.pgship
wait_for peer7.out "^report " 60 || true
check "a wrong key: REPORT failed in step unpack, naming the archive's recipients" \
    bash -c "grep -q '^report .* failed unpack ' peer7.out && grep '^report ' peer7.out | grep -q -F -- '${OTHER_ID:-no-id}'"
end_peer

# EOF whose SHA-256 is not that of the pieces.
restore_peer peer8 --jobs restore:dst --source src.pgship --bad-sha
wait_for peer8.out "^report " 60 || true
check "EOF with a wrong SHA-256: REPORT failed in step fetch, saying so" \
    grep -q "^report .* failed fetch the source's SHA-256 is [0-9a-f]*, but the coordinator's catalog says" peer8.out
end_peer

# ERROR job_failed to a FETCH.
restore_peer peer9 --jobs restore:dst --source src.pgship --fetch-fail-at 2
wait_for peer9.out "^report " 60 || true
check "ERROR job_failed to a FETCH: REPORT failed in step fetch with the coordinator's reason" \
    grep -q -F "failed fetch the coordinator could not serve the source (FETCH seq 2): storage could not read the object (test) (job_failed)" peer9.out
check "... and the agent stays connected for the next job" test "$(grep -c '^hello ' peer9.out)" -eq 1
end_peer
db_fingerprint "$PORT" dst >dst.after
check "after those failures the target is unchanged" cmp -s dst.before dst.after
check "... and no temporary database is left" test -z "$(tmp_dbs)"

# The connection dropped mid-fetch: restore_run's source fails, nothing is left, a new connection.
restore_peer peer14 --jobs restore:dst --source src.pgship --fetch-drop-at 40 --linger 30
wait_for peer14.out "^dropped " 60 || true
wait_for agent6.log "restore of .* into dst failed: connection to the coordinator lost" 30 || true
check "connection lost mid-fetch: the job fails in the log, with no REPORT" \
    bash -c "grep -q 'restore of .* into dst failed: connection to the coordinator lost' agent6.log && ! grep -q '^report ' peer14.out"
wait_for peer14.out "^hello" 1 >/dev/null || true
sleep 2
check "connection lost mid-fetch: the agent connects again" test "$(grep -c '^hello ' peer14.out)" -ge 2
check "connection lost mid-fetch: no temporary database, nothing in spool_dir" \
    bash -c "[ -z \"\$(ls -A spool)\" ] && [ -z '$(tmp_dbs)' ]"
end_peer
db_fingerprint "$PORT" dst >dst.after
check "connection lost mid-fetch: the target is unchanged" cmp -s dst.before dst.after

# A sanitize job: restored into a temporary database of scratch, sanitized, dumped again sealed
# to staging only and shipped as DATA/END; then the REPORT.
echo "UPDATE shop.customers SET email = 'customer' || id || '@example.invalid', name = 'Customer ' || id;" >sanitize.sql
echo "SELECT id, email FROM shop.customers WHERE email NOT LIKE '%@example.invalid';" >check.sql
restore_peer peer10 --jobs sanitize:scratch --source src.pgship --recipient staging.pub \
    --sanitize-sql sanitize.sql --check-sql check.sql
wait_for peer10.out "^report " 120 || true
check "sanitize: the new archive is streamed and END matches" grep -q "^end ok .*-00000001 " peer10.out
check "sanitize: END, then REPORT ok" \
    bash -c "grep -E '^(end|report) ' peer10.out | cut -d' ' -f1,2 | tr '\n' ' ' | grep -q -x 'end ok report [0-9T]*Z-00000001 '"
check "sanitize: REPORT ok" grep -q "^report .*-00000001 ok done $" peer10.out
SAN=out/20261121T120000Z-00000001.pgship
"$BIN/pgship" decrypt --key staging.key "$SAN" --list --json >san.json 2>san.err || true
check "sanitize: the new archive opens with the job's recipient" grep -q '"database"' san.json
check "sanitize: ... and neither with the agent's own recipient (ops) nor another key" \
    bash -c "! '$BIN/pgship' decrypt --key ops.key '$SAN' --list >/dev/null 2>&1 && ! '$BIN/pgship' decrypt --key other.key '$SAN' --list >/dev/null 2>&1"
rm -rf san.x
"$BIN/pgship" decrypt --key staging.key "$SAN" --extract san.x >/dev/null 2>&1 || true
chmod -R a+rX san.x 2>/dev/null || true
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE sanout"
"$(pgc_bin pg_restore)" -h 127.0.0.1 -p "$PORT" -U postgres -d sanout san.x/dump.pgdump \
    >/dev/null 2>sanout.err || true
check "sanitize: its data is sanitized and every customer is there" test \
    "$(pgc_psql "$PORT" sanout -A -t -c "SELECT count(*) FILTER (WHERE email LIKE '%@example.invalid'), count(*) FROM shop.customers" 2>&1)" = \
    "$(pgc_psql "$PORT" src -A -t -c "SELECT count(*), count(*) FROM shop.customers")"
check "sanitize: the scratch database is not replaced" \
    test -z "$(pgc_psql "$PORT" scratch -A -t -c "SELECT 1 FROM pg_tables WHERE schemaname = 'shop'")"
check "sanitize: no temporary database is left" test -z "$(tmp_dbs)"
end_peer

# A sanitize job whose new backup the coordinator fails mid-stream: FAIL, then REPORT.
restore_peer peer13 --jobs sanitize:scratch --source src.pgship --recipient staging.pub \
    --sanitize-sql sanitize.sql --fail-at 5
wait_for peer13.out "^report " 120 || true
check "sanitize, DATA refused: FAIL with the coordinator's reason, then REPORT failed in step dump" \
    bash -c "grep -E '^(fail|report) ' peer13.out | cut -d' ' -f1,3,4 | tr '\n' ' ' | grep -q -x 'fail the coordinator report failed dump '"
check "sanitize, DATA refused: the REPORT says why" \
    grep -q "^report .* failed dump the coordinator refused DATA seq 5: storage said no (test) (job_failed)$" peer13.out
check "sanitize, DATA refused: no temporary database is left" test -z "$(tmp_dbs)"
end_peer

# kill -9 mid-restore (in its sanitize step, which sleeps), then a restart: no temporary database.
echo "SELECT pg_sleep(20);" >slow.sql
restore_peer peer11 --jobs restore:dst --source src.pgship --sanitize-sql slow.sql
wait_for peer11.out "^step .* sanitize " 60 || true
sleep 0.5
TMP_AT_KILL=$(tmp_dbs)
kill -9 "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null || true
AGENT_PID=""
check "kill -9 mid-restore: killed with a temporary database in place" test -n "$TMP_AT_KILL"
"$BIN/pgship-agent" -c restore.conf 2>agent7.log &
AGENT_PID=$!
wait_for agent7.log "authenticated as agent1" 60 || true
check "kill -9 mid-restore: after the restart, no temporary database is left" test -z "$(tmp_dbs)"
db_fingerprint "$PORT" dst >dst.after
check "kill -9 mid-restore: the target is unchanged" cmp -s dst.before dst.after
end_peer

# SIGTERM mid-restore: restore_run stops and cleans up, REPORT "agent stopping", exit 0.
restore_peer peer12 --jobs restore:dst --source src.pgship --sanitize-sql slow.sql
wait_for peer12.out "^step .* sanitize " 60 || true
sleep 0.5
start=$SECONDS
stop_agent
check "SIGTERM mid-restore: exit 0 within 10 s" bash -c "[ $rc -eq 0 ] && [ $((SECONDS - start)) -le 10 ]"
wait_for peer12.out "^report " 2 || true
check "SIGTERM mid-restore: REPORT failed, \"agent stopping\"" \
    grep -q "^report .* failed [a-z_]* agent stopping$" peer12.out
check "SIGTERM mid-restore: no temporary database is left" test -z "$(tmp_dbs)"
db_fingerprint "$PORT" dst >dst.after
check "SIGTERM mid-restore: the target is unchanged" cmp -s dst.before dst.after
end_peer

echo "agent_daemon: $passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
    for f in agent1.log agent2.log agent3.log agent4.log agent5.log agent6.log agent7.log \
        peer1.out peer2.out peer3.out peer4.out peer5.out peer6.out peer7.out peer8.out peer9.out \
        peer10.out peer11.out peer12.out peer13.out peer14.out; do
        echo "--- $f"; tail -n 25 "$f" 2>/dev/null
    done
fi
[ "$failed" -eq 0 ]
