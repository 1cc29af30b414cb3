#!/usr/bin/env bash
# The scheduler daemon with the real parts: PostgreSQL 15, two pgship-agent daemons dialing a
# pgship-coordinator over nng TLS on loopback, fs storage. The scheduler's clock runs 60 times
# faster (PGSHIP_SCHEDULER_SPEED=60), so "* * * * *" is due every second.
#
#   scheduled backups of a1's two databases run every cycle, one at a time (max_concurrent = 1),
#   recorded as scheduled by their schedule; retention keep_last = 2 prunes after each: exactly
#   the two newest complete backups per database stay, in the catalog and in storage
#   an agent killed -9 stays away past the grace: its database gets a failed backup whose
#   reason starts with "missed:"; the agent comes back and its schedule runs again
#   a schedule with action = verify checks d1's newest backup on its agent, apart from the
#   backups due at the same times; the schedule state survives a restart (no run is repeated for
#   a due time already handled)
# usage: schedd.sh BINDIR
set -euo pipefail
BIN=$(cd "${1:?usage: schedd.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
export FLEET_BIN_DIR=$BIN
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/fleet.sh"

WORK=$(mktemp -d /tmp/pgship-schedd.XXXXXX)
chmod 755 "$WORK"
source "$HERE/lib/check.sh"
cleanup() {
    fleet_stop_all >/dev/null 2>&1 || true
    pgc_destroy "$WORK/pg" >/dev/null 2>&1 || true
    if [ "$failed" -ne 0 ] && [ -z "${KEEP:-}" ]; then
        for f in "$WORK"/*.log; do echo "--- $f"; tail -n 40 "$f"; done
    fi
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

PORT=$(pgc_free_port)
pgc_start "$WORK/pg" "$PORT" >/dev/null
for d in d1 d2 d3; do
    pgc_psql "$PORT" postgres -q -c "CREATE DATABASE $d"
    pgc_psql "$PORT" "$d" -q -c "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 500) g"
done

fleet_certs tls >/dev/null
fleet_recipient keys ops >/dev/null
fleet_identity keys a1 >/dev/null
fleet_identity keys a2 >/dev/null
fleet_coordinator_conf coordinator.conf tls state --agent a1 keys/a1.pub --agent a2 keys/a2.pub
cat >>coordinator.conf <<CONF

[scheduler]
max_concurrent = 1
max_per_agent = 1

[retention keep2]
keep_last = 2

[schedule often]
cron = * * * * *
select = agent=a1
retention = keep2

[schedule other]
cron = */2 * * * *
select = agent=a2

[schedule drill]
cron = */3 * * * *
select = agent=a1 database=d1
action = verify
CONF
fleet_agent_conf a1.conf a1 tls keys/a1.key --recipient keys/ops.pub \
    --set "restore_keys=$WORK/keys/ops.key" \
    --db d1 prod "host=127.0.0.1 port=$PORT user=postgres dbname=d1" \
    --db d2 prod "host=127.0.0.1 port=$PORT user=postgres dbname=d2"
fleet_agent_conf a2.conf a2 tls keys/a2.key --recipient keys/ops.pub \
    --db d3 staging "host=127.0.0.1 port=$PORT user=postgres dbname=d3"

json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
catalog() { sqlite3 state/catalog.db "$@"; }

export PGSHIP_SCHEDULER_SPEED=60
fleet_start_coordinator coordinator.conf coord.log
fleet_start_agent a1.conf a1.log
fleet_start_agent a2.conf a2.log
A2_PID=$FLEET_LAST_PID
fleet_wait_agent a1 30 >/dev/null
fleet_wait_agent a2 30 >/dev/null
check "the coordinator warns that scheduled time is sped up" \
    grep -q "PGSHIP_SCHEDULER_SPEED=60" coord.log

# a2 goes away for good: its "*/2" runs come due while it is gone, and after the grace
# (5 minutes of scheduled time, 5 s here) they are recorded as missed
sleep 1
kill -9 "$A2_PID"

# a1's two databases: several cycles (a cycle is one second; each backup takes a moment)
started() { grep -c "schedule often, a1/$1: backup .* started" coord.log || true; }
for _ in $(seq 120); do
    [ "$(started d1)" -ge 4 ] && [ "$(started d2)" -ge 4 ] && break
    sleep 0.5
done
check "the schedule ran d1 at least 4 times ($(started d1))" test "$(started d1)" -ge 4
check "the schedule ran d2 at least 4 times ($(started d2))" test "$(started d2)" -ge 4

# the drill: scheduled verifications of d1's newest backup, run apart from the backups (the
# "often" schedule's backups of d1 at the same due times still happen: counted above)
for _ in $(seq 60); do
    [ "$(catalog "SELECT count(*) FROM verifications WHERE state='ok'")" -ge 1 ] && break
    sleep 0.5
done
check "the drill schedule verified d1's backup (ok)" \
    test "$(catalog "SELECT count(*) FROM verifications v JOIN backups b ON b.id = v.backup_id WHERE v.state='ok' AND b.database='d1'")" -ge 1
check "... and logged it as the schedule's" grep -q "schedule drill, a1/d1: verification .* of backup .* started" coord.log
check "... and never verified d2" test "$(catalog "SELECT count(*) FROM verifications v JOIN backups b ON b.id = v.backup_id WHERE b.database='d2'")" = 0

# missed runs of d3: a failed backup row saying so
for _ in $(seq 60); do
    [ "$(catalog "SELECT count(*) FROM backups WHERE database='d3' AND state='failed' AND error LIKE 'missed:%'")" -ge 1 ] && break
    sleep 0.5
done
MISSED=$(catalog "SELECT error FROM backups WHERE database='d3' AND state='failed' AND error LIKE 'missed:%' LIMIT 1")
check "a missed run of d3 is a failed backup: \"$MISSED\"" grep -q "agent" <<<"$MISSED"
check "the missed row names its schedule" \
    test "$(catalog "SELECT scheduled || ' ' || requested_by FROM backups WHERE database='d3' AND error LIKE 'missed:%' LIMIT 1")" = "other schedule:other"
check "pgship ls shows the missed run as failed" \
    bash -c "'$BIN/pgship' ls a2/d3 --json --url '$FLEET_API_URL' --token-file '$FLEET_TOKEN_FILE' | grep -q 'missed:'"

# stop the agent, so that nothing new starts; the scheduler prunes after the backups that
# ended (at its next tick); then stop the coordinator and count
kill -TERM "${FLEET_AGENT_PID[a1]}"
sleep 3
fleet_stop_all >/dev/null 2>&1 || true
for d in d1 d2; do
    n=$(catalog "SELECT count(*) FROM backups WHERE database='$d' AND state='complete'")
    check "retention keep_last = 2: $d has exactly 2 complete backups in the catalog (got $n)" test "$n" = 2
    n=$(find state/archive -path "*/a1/$d/*.pgship" | wc -l)
    check "... and exactly 2 objects in storage (got $n)" test "$n" = 2
    n=$(find state/archive -path "*/a1/$d/*.manifest.json" | wc -l)
    check "... and exactly 2 sidecars (got $n)" test "$n" = 2
    ids=$(catalog "SELECT id FROM backups WHERE database='$d' AND state='complete' ORDER BY id")
    for id in $ids; do
        check "$d: backup $id is in storage" test -f "$(find state/archive -name "$id.pgship" | head -1)"
    done
    n=$(catalog "SELECT count(*) FROM backups WHERE database='$d' AND (scheduled IS NOT 'often' OR requested_by IS NOT 'schedule:often')")
    check "$d: every backup is recorded as asked for by schedule often" test "$n" = 0
done
check "prune ran after the scheduled backups" grep -q "scheduler: prune after scheduled backups" coord.log

# the state survives a restart: no due time is run twice
BEFORE=$(catalog "SELECT count(*) FROM schedule_runs")
check "schedule runs are recorded per entry ($BEFORE)" test "$BEFORE" -ge 3
LASTDUE=$(catalog "SELECT last_due FROM schedule_runs WHERE schedule='often' AND database='d1'")
unset PGSHIP_SCHEDULER_SPEED
fleet_start_coordinator coordinator.conf coord2.log
sleep 3
fleet_stop_all >/dev/null 2>&1 || true
check "after a restart at normal speed, due times already handled are not run again" \
    bash -c "! grep -q 'backup .* started' coord2.log"
check "... and last_due did not move back" \
    test "$(catalog "SELECT last_due FROM schedule_runs WHERE schedule='often' AND database='d1'")" -ge "$LASTDUE"

check_summary schedd
