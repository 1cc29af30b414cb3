#!/usr/bin/env bash
# Integration test of the agent daemon (pgship-agent -c FILE) against a scripted coordinator
# (agent_peer) and a throwaway PostgreSQL 15 cluster: --check-config; the handshake over TLS after
# a refusal, with an unreachable database still announced; a streamed backup whose bytes decrypt;
# a job for an unknown database reported as FAIL; a malformed reply and a connection dropped
# mid-stream, each survived by reconnecting with no pg_dump left behind; a stop mid-dump that
# reports FAIL "agent stopping" and exits 0; a job the coordinator fails mid-stream (ERROR
# job_failed) followed by FAIL, and the next job on the same connection; a POLL never answered.
#
# usage: agent_daemon.sh BINDIR     (BINDIR holds pgship, pgship-agent and agent_peer)
set -euo pipefail

BIN=$(cd "${1:?usage: agent_daemon.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/lib/pgcluster.sh"

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
"$BIN/pgship" decrypt --key ops.key "out/$JOB1.pgship" --list --json >list.json 2>/dev/null || true
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

echo "agent_daemon: $passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
    for f in agent1.log agent2.log agent3.log agent4.log agent5.log peer1.out peer2.out peer3.out peer4.out peer5.out; do
        echo "--- $f"; tail -n 25 "$f" 2>/dev/null
    done
fi
[ "$failed" -eq 0 ]
