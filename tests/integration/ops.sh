#!/usr/bin/env bash
# The operator's fleet operations end to end with the real parts: PostgreSQL 15, one
# pgship-agent, a pgship-coordinator with local-directory storage, a retention policy
# ([retention keep2] keep_last = 2, select = *) and three [token NAME]s of the three roles, all
# driven through the pgship client:
#
#   four backups; the oldest pinned (operate); prune --dry-run keeps the newest two and the pinned
#   one and says why, deletes nothing; prune deletes the other one: its object and sidecar are
#   gone from storage and its row from ls; stats counts what is left; unpin by an operate token
#   is refused (403, exit 1) and changes nothing; an admin unpins; the audit log lists the
#   backups, the pin, the refused unpin and prune, and the prune, each with who asked; ls and show
#   show the pin.
# usage: ops.sh BINDIR
set -euo pipefail
BIN=$(cd "${1:?usage: ops.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
export FLEET_BIN_DIR=$BIN
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/fleet.sh"

WORK=$(mktemp -d /tmp/pgship-ops.XXXXXX)
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
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE appdb"
pgc_psql "$PORT" appdb -q -c "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g"

fleet_certs tls >/dev/null
fleet_recipient keys ops >/dev/null
fleet_identity keys a1 >/dev/null
fleet_coordinator_conf coordinator.conf tls state --agent a1 keys/a1.pub \
    --storage-fs "$WORK/archive"
for t in reader operator boss; do
    (umask 077 && openssl rand -hex 32 >"tok-$t")
done
cat >>coordinator.conf <<EOF

[retention keep2]
keep_last = 2
select = *

# due once a year, on a date this test does not run on: listed by pgship schedules, never fired
[schedule yearly]
cron = 0 0 1 1 *
select = agent=a1

[token reader]
file = $WORK/tok-reader
role = read

[token operator]
file = $WORK/tok-operator
role = operate

[token boss]
file = $WORK/tok-boss
role = admin
EOF
fleet_agent_conf agent.conf a1 tls keys/a1.key --recipient keys/ops.pub \
    --db appdb prod "$(pgc_conninfo "$PORT" appdb)"
fleet_start_coordinator coordinator.conf coord.log
fleet_start_agent agent.conf agent.log
fleet_wait_agent a1 30 >/dev/null

# as ROLE ARG...: pgship ARG... with the token of [token ROLE]
as() {
    local who=$1
    shift
    PGSHIP_URL=$FLEET_API_URL PGSHIP_TOKEN_FILE=$WORK/tok-$who "$BIN/pgship" "$@"
}

# --- --help answers for every command
for c in schedules prune pin unpin stats audit; do
    check "pgship $c --help" bash -c "'$BIN/pgship' $c --help | grep -q 'usage: pgship $c'"
done

# --- four backups, by the operate token
IDS=()
for i in 1 2 3 4; do
    as operator backup a1/appdb --label "b$i" --wait --json >"b$i.json" 2>"b$i.err" || true
    IDS+=("$(jq -r .id "b$i.json")")
    check "backup $i is complete" test "$(jq -r .state "b$i.json")" = complete
done
OLD=${IDS[0]} GONE=${IDS[1]}
key_of() { jq -r .storage_key "b$1.json"; }
K1=$(key_of 1) K2=$(key_of 2)
check "the objects are in storage" test -s "archive/$K2" -a -s "archive/${K2%.pgship}.manifest.json"

# --- pin the oldest (operate may)
as operator pin "$OLD" >pin.txt
check "pin: says so" grep -q "backup $OLD .* is pinned" pin.txt
K1=$(key_of 1)
check "pin: its marker is in storage beside the object (a catalog rebuild keeps the pin)" \
    test "$(jq -r .backup_id "archive/${K1%.pgship}.pin")" = "$OLD"
check "show --json: pinned" test "$(as reader show "$OLD" --json | jq -r .pinned)" = true
as reader show "$OLD" >show.txt
check "show: a pinned line" grep -q -E '^pinned +yes' show.txt
as reader ls >ls.txt
check "ls: the FLAGS column" grep -q -E '^ID +AGENT/DATABASE +ENV +STATE +SIZE +CREATED +FLAGS +NOTE$' ls.txt
check "ls: P on the pinned backup" grep -q -E "^$OLD .* P +b1$" ls.txt
check "ls: no flag on the others" grep -q -E "^$GONE .* - +b2$" ls.txt

# --- prune: admin only
expect_fail "prune by an operate token is refused" "role admin" as operator prune --dry-run
as boss prune --dry-run --json >dry.json
fate() { jq -r --arg id "$1" '.backups[] | select(.id == $id) | .fate' dry.json; }
why() { jq -r --arg id "$1" '.backups[] | select(.id == $id) | .reasons | join(", ")' dry.json; }
check "dry run: the pinned oldest is kept, because it is pinned" \
    test "$(fate "$OLD")/$(why "$OLD")" = "keep/pinned"
check "dry run: the newest two are kept by keep_last ($(why "${IDS[3]}"); $(why "${IDS[2]}"))" \
    bash -c "[[ '$(fate "${IDS[3]}")/$(why "${IDS[3]}")' == keep/last\ 1* && '$(fate "${IDS[2]}")/$(why "${IDS[2]}")' == keep/last\ 2* ]]"
check "dry run: the second oldest is to be deleted" test "$(fate "$GONE")" = delete
check "dry run: one deletion, policy keep2" \
    test "$(jq -r '[.delete, .keep, (.backups[0].policy)] | join(" ")' dry.json)" = "1 3 keep2"
check "dry run: nothing deleted" test -s "archive/$K2"
as boss prune --dry-run >dry.txt
check "dry run table: DELETE row" grep -q -E "^$GONE .* DELETE +keep2" dry.txt
check "dry run table: the summary" grep -q "1 to delete .* nothing was deleted" dry.txt

as boss prune >prune.txt
check "prune: exit 0 and the summary" grep -q "deleted 1 of 1 backups" prune.txt
check "prune: the object is gone" test ! -e "archive/$K2"
check "prune: its sidecar is gone" test ! -e "archive/${K2%.pgship}.manifest.json"
check "prune: the others stay" test -s "archive/$K1" -a -s "archive/$(key_of 3)" -a -s "archive/$(key_of 4)"
as reader ls --json >ls.json
check "prune: the row is gone from ls" test "$(jq -r --arg id "$GONE" '[.[] | select(.id == $id)] | length' ls.json)" = 0
check "prune: three backups left" test "$(jq length ls.json)" = 3
expect_fail "show of the pruned backup fails" "no backup|not found|no such" as reader show "$GONE"

# --- stats
as reader stats --json >stats.json
sum=$(jq '[.[].size_bytes] | add' ls.json)
check "stats: three complete, their bytes" \
    test "$(jq -r '.databases[0] | "\(.agent)/\(.database) \(.complete) \(.total_bytes)"' stats.json)" = "a1/appdb 3 $sum"
check "stats: the total" test "$(jq -r '.total | "\(.databases) \(.complete) \(.total_bytes)"' stats.json)" = "1 3 $sum"
as reader stats >stats.txt
check "stats table" grep -q -E '^a1/appdb +prod +3 ' stats.txt
check "stats table: the total line" grep -q -E '^total \(1 database\) +- +3 ' stats.txt

# --- unpin needs admin
expect_fail "unpin by an operate token: 403" "needs a token with role admin" as operator unpin "$OLD"
rc=0; as operator unpin "$OLD" >/dev/null 2>&1 || rc=$?
check "... exit status 1" test "$rc" = 1
check "... and it stays pinned" test "$(as reader show "$OLD" --json | jq -r .pinned)" = true
as boss unpin "$OLD" >/dev/null
check "unpin by admin" test "$(as reader show "$OLD" --json | jq -r .pinned)" = false
check "unpin: the marker is gone" test ! -e "archive/${K1%.pgship}.pin"

# --- the audit log
expect_fail "audit needs admin" "role admin" as operator audit
as boss audit --json >audit.json
n_of() { jq -r --arg w "$1" --arg a "$2" --arg r "$3" \
    '[.[] | select(.who == $w and .action == $a and .result == $r)] | length' audit.json; }
check "audit: four backups requested by operator" test "$(n_of operator backup_request ok)" = 4
check "audit: the backups' targets name the database" \
    test "$(jq -r '[.[] | select(.action == "backup_request") | .target | startswith("a1/appdb ")] | all' audit.json)" = true
check "audit: the pin, by operator, of the oldest" \
    test "$(jq -r '[.[] | select(.action == "pin")][0] | "\(.who) \(.role) \(.target) \(.result)"' audit.json)" = "operator operate $OLD ok"
check "audit: the refused unpin" test "$(n_of operator unpin denied)" = 2
check "audit: the admin's unpin" test "$(n_of boss unpin ok)" = 1
check "audit: the refused prune" test "$(n_of operator prune denied)" = 1
check "audit: the prune, by boss, with what it did" \
    test "$(jq -r '[.[] | select(.action == "prune" and .who == "boss")][0] | "\(.result) \(.detail.deleted)"' audit.json)" = "ok 1"
check "audit: newest first" test "$(jq -r '.[0].action' audit.json)" = unpin
as boss audit --limit 2 >audit.txt 2>audit.err
check "audit table" grep -q -E '^AT +WHO +ROLE +ACTION +TARGET +RESULT$' audit.txt
check "audit --limit 2: two entries, and a note" \
    bash -c "[ \$(wc -l <audit.txt) = 3 ] && grep -q 'older entries' audit.err"

# --- schedules: the yearly one
as reader schedules --json >sched.json
check "schedules --json: the schedule" \
    test "$(jq -r '.schedules | map("\(.name) \(.cron)") | join(",")' sched.json)" = "yearly 0 0 1 1 *"
check "schedules --json: a1/appdb's next run, on a January 1st" \
    test "$(jq -r '.runs | map("\(.schedule) \(.agent)/\(.database) \(.run_at[5:10])") | join(",")' sched.json)" = "yearly a1/appdb 01-01"
as reader schedules >sched.txt
check "schedules table" grep -q -E '^a1/appdb \(prod\) +yearly +0 0 1 1 \* \(UTC\) +[0-9]{4}-01-01 00:00:00 +-$' sched.txt

check_summary ops
