#!/usr/bin/env bash
# A fleet of 30 agents on loopback (issue 5, asks 7 and 8): real pgship-agent processes, one
# database each in one PostgreSQL 15 cluster (agent a30 also serves d31), one coordinator with
# local-directory storage.
#
#   cost: the coordinator's memory, file descriptors, threads and CPU with no agent, with 30
#         agents connected and idle, and while 30 backups stream at once (held at the same point
#         by table locks so that all 30 are open together); one agent's memory and CPU. The
#         figures table at the end is docs/scale.md's
#   roles: a read token cannot start a backup (exit 1, 403 naming the role it needs)
#   unreachable: d31 refuses connections (ALLOW_CONNECTIONS false); its backup fails saying so
#   schedule: the coordinator restarted with a fast schedule (PGSHIP_SCHEDULER_SPEED=25) over all
#         31 databases, due 5 times 12 s apart and then not for minutes, keep_last = 3 for
#         d1..d30. Once every due time is dealt with and the fleet is at rest, the schedule is
#         stopped, and the catalog (pgship ls --json and sqlite3) holds exactly the 3 newest
#         scheduled backups of each of d1..d30, complete, and the storage exactly their objects
#         and sidecars with the catalog's SHA-256; d31 only failed backups saying why
#   metrics: scraped with the read token and checked against the catalog
#   webhook: a receiver in this script gets backup.failed for d31, and for no other database
# usage: fleet_scale.sh BINDIR       (KEEP=1 keeps the scratch directory)
set -euo pipefail
BIN=$(cd "${1:?usage: fleet_scale.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
export FLEET_BIN_DIR=$BIN
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/fleet.sh"
source "$HERE/lib/scale.sh"

N=30                          # agents; agent aN also serves d(N+1), the unreachable one
BAD=d$((N + 1))
ROWS=300                      # rows per database
# The schedule: due every PERIOD real seconds (5 scheduler minutes at speed 25), RUNS times and
# then not again for 40 scheduler minutes (96 s), so that the fleet comes to rest by itself and the
# end state can be asserted exactly. A cycle of 31 small backups, 8 at a time, takes about 5 s
# on two cores (about 1.3 s each from queued to complete), 8-10 s when the machine is loaded.
: "${SCALE_SPEED:=25}"
PERIOD=$((300 / SCALE_SPEED))
RUNS=5                        # due times of the schedule
CYCLES=4                      # scheduled backups each database must have had, at least
KEEP_LAST=3
T0=$SECONDS

WORK=$(mktemp -d /tmp/pgship-scale.XXXXXX)
chmod 755 "$WORK"
source "$HERE/lib/check.sh"
LOCKS_PID=""
cleanup() {
    scale_sampler_stop
    [ -z "$LOCKS_PID" ] || kill "$LOCKS_PID" 2>/dev/null || true
    fleet_stop_all >/dev/null 2>&1 || true
    scale_hook_stop "$WORK/hook" 2>/dev/null || true
    pgc_destroy "$WORK/pg" >/dev/null 2>&1 || true
    if [ "$failed" -ne 0 ] && [ -z "${KEEP:-}" ]; then
        for f in "$WORK"/coord*.log "$WORK/agent1.log" "$WORK/agent$N.log"; do
            [ -e "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }
        done
    fi
    if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
cd "$WORK"
step() { echo "== [$((SECONDS - T0)) s] $*"; }

# ===================== the fleet =====================
step "a cluster with $((N + 1)) databases"
PORT=$(pgc_free_port)
pgc_start "$WORK/pg" "$PORT" max_connections=150 >/dev/null
# d1 is the template of the others; each then gets a row of its own, so no two dumps are alike.
{
    echo "CREATE DATABASE d1;"
    echo "\\c d1"
    echo "CREATE TABLE t (id int PRIMARY KEY, note text NOT NULL);"
    echo "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, $ROWS) g;"
    echo "\\c postgres"
    for i in $(seq 2 $((N + 1))); do echo "CREATE DATABASE d$i TEMPLATE d1;"; done
    for i in $(seq 1 $((N + 1))); do
        echo "\\c d$i"
        echo "INSERT INTO t VALUES (0, 'database d$i');"
    done
} | pgc_psql "$PORT" postgres -q >/dev/null

step "keys, configs and $N agents"
fleet_certs tls >/dev/null
fleet_recipient keys ops >/dev/null
AGENT_OPTS=()
for i in $(seq 1 $N); do
    fleet_identity keys "a$i" >/dev/null
    AGENT_OPTS+=(--agent "a$i" "keys/a$i.pub")
done
# 32 streams, so that all 30 agents can stream at once for the measurement.
fleet_coordinator_conf coord.conf tls state "${AGENT_OPTS[@]}" --storage-fs "$WORK/archive" \
    --set max_streams=32
for t in read operate; do (umask 077 && openssl rand -hex 32 >"tok-$t"); done
printf '\n[token grafana]\nfile = %s\nrole = read\n\n[token ci]\nfile = %s\nrole = operate\n' \
    "$WORK/tok-read" "$WORK/tok-operate" >>coord.conf
for i in $(seq 1 $N); do
    extra=()
    [ "$i" -ne $N ] || extra=(--db "$BAD" prod "$(pgc_conninfo "$PORT" "$BAD")")
    fleet_agent_conf "agent$i.conf" "a$i" tls "keys/a$i.key" --recipient keys/ops.pub \
        --db "d$i" prod "$(pgc_conninfo "$PORT" "d$i")" "${extra[@]}"
done

TOKEN=""
api() { curl -sS -f -H "Authorization: Bearer $TOKEN" "$FLEET_API_URL$1"; }
connected() { api /v1/agents | jq '[(if type == "array" then .[] else .agents[] end) | select(.connected)] | length'; }
wait_connected() { # wait_connected COUNT TIMEOUT_S
    local i c=0
    for ((i = 0; i < $2 * 5; i++)); do
        c=$(connected 2>/dev/null || echo 0)
        [ "$c" -eq "$1" ] && return 0
        sleep 0.2
    done
    echo "only $c of $1 agents connected after $2 s" >&2
    return 1
}
backups() { api "/v1/backups?limit=10000" | jq -c '.backups'; }
# A process's figures: "rss_kb hwm_kb fds threads cpu_ticks" (scale_snap).
TICK=$(getconf CLK_TCK)
f() { scale_field "$1" "$2"; }

fleet_start_coordinator coord.conf coord1.log
TOKEN=$(cat "$FLEET_TOKEN_FILE")
sleep 1
C0=$(scale_snap "$FLEET_COORD_PID")
for i in $(seq 1 $N); do
    "$FLEET_AGENT" -c "$WORK/agent$i.conf" >"agent$i.log" 2>&1 &
    FLEET_AGENT_PID[a$i]=$! FLEET_AGENT_LOG[a$i]=$WORK/agent$i.log
    FLEET_PIDS+=($!)
done
check "all $N agents connect" wait_connected $N 60
sleep 1
C1=$(scale_snap "$FLEET_COORD_PID")
A1=$(scale_snap "${FLEET_AGENT_PID[a1]}")
# Idle for one heartbeat interval (15 s): every agent's heartbeat is in the CPU figure.
IDLE_S=15
sleep $IDLE_S
C1b=$(scale_snap "$FLEET_COORD_PID")
IDLE_NS=$(($(f "$C1b" 7) - $(f "$C1" 7)))
agents_json=$(api /v1/agents)
check "a$N announces both its databases" test "$(jq -c --arg a "a$N" \
    '[(if type == "array" then .[] else .agents[] end) | select(.name == $a) | .databases[].name]' \
    <<<"$agents_json")" = "[\"d$N\",\"$BAD\"]"

# ===================== roles =====================
step "roles"
as_token() { local t=$1; shift; PGSHIP_URL=$FLEET_API_URL PGSHIP_TOKEN=$(cat "tok-$t") "$BIN/pgship" "$@"; }
rc=0; as_token read backup a1/d1 >ro.out 2>ro.err || rc=$?
check "a read token cannot start a backup: exit 1, the role it needs named ($(head -c 120 ro.err))" \
    bash -c "test $rc -eq 1 && grep -q 'role operate' ro.err"
check "... and no backup was queued for it" test "$(backups | jq length)" -eq 0

# ===================== 30 streams at once =====================
step "$N backups streaming at once"
# Each database's table locked, so that every pg_dump waits at the same point with its job
# open on both sides; released together once all $N are running.
for i in $(seq 1 $N); do
    pgc_psql "$PORT" "d$i" -q -c "SET application_name = 'scale-lock'" \
        -c "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(300); COMMIT" \
        >/dev/null 2>&1 &
done
LOCKS_PID=$!
locked() {
    pgc_psql "$PORT" postgres -At -c "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a
        USING (pid) WHERE a.application_name = 'scale-lock' AND l.locktype = 'relation'
        AND l.mode = 'AccessExclusiveLock' AND l.granted"
}
for _ in $(seq 100); do [ "$(locked)" -ge $N ] && break; sleep 0.1; done
C2a=$(scale_snap "$FLEET_COORD_PID")
# Every agent's CPU (its own, and its pg_dump's once reaped), summed: one small backup costs an
# agent about one clock tick, too coarse to read from one agent alone.
agents_cpu() {
    local i s own=0 kids=0
    for i in $(seq 1 $N); do
        s=$(scale_snap "${FLEET_AGENT_PID[a$i]}")
        own=$((own + $(f "$s" 5))) kids=$((kids + $(f "$s" 6)))
    done
    echo "$own $kids"
}
AC0=$(agents_cpu)
scale_sampler_start "$FLEET_COORD_PID" "$WORK/burst.peak"
for i in $(seq 1 $N); do
    curl -sS -f -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        -d "{\"agent\":\"a$i\",\"database\":\"d$i\",\"label\":\"burst\"}" \
        "$FLEET_API_URL/v1/backups" >/dev/null
done
running=0
for _ in $(seq 150); do
    running=$(backups | jq '[.[] | select(.state == "running")] | length')
    [ "$running" -ge $N ] && break
    sleep 0.2
done
check "$N backups running at once ($running)" test "$running" -ge $N
sleep 1
C2=$(scale_snap "$FLEET_COORD_PID")
echo "files under the storage directory while they are held: $(find archive -type f | wc -l)"
phase=$(api "/v1/backups/$(backups | jq -r '[.[] | select(.agent == "a1")][0].id')" | jq -r '.progress.phase')
echo "a1's backup while its table is locked: $phase"
pgc_psql "$PORT" postgres -q -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
    WHERE application_name = 'scale-lock'" >/dev/null
B0=$(date +%s.%N)
for _ in $(seq 300); do
    [ "$(backups | jq '[.[] | select(.state == "queued" or .state == "running")] | length')" -eq 0 ] && break
    sleep 0.2
done
BURST_S=$(awk -v a="$B0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
scale_sampler_stop
C3=$(scale_snap "$FLEET_COORD_PID")
A3=$(scale_snap "${FLEET_AGENT_PID[a1]}")
AC1=$(agents_cpu)
wait "$LOCKS_PID" 2>/dev/null || true
LOCKS_PID=""
list=$(backups)
check "all $N complete" test "$(jq '[.[] | select(.state == "complete" and .label == "burst")] | length' <<<"$list")" -eq $N
BURST_BYTES=$(jq '[.[] | select(.label == "burst") | .size_bytes // 0] | add' <<<"$list")

# The database becomes unreachable: it refuses every connection, as one being moved does.
pgc_psql "$PORT" postgres -q -c "ALTER DATABASE $BAD ALLOW_CONNECTIONS false"
rc=0; fleet_client backup "a$N/$BAD" --wait --json >bad.json 2>bad.err || rc=$?
check "a backup of $BAD now fails, saying why ($(jq -r .error bad.json | cut -c1-120))" \
    bash -c "test $rc -ne 0 && test \"\$(jq -r .state bad.json)\" = failed && jq -r .error bad.json | grep -q 'not currently accepting connections'"

# ===================== the schedule =====================
step "the coordinator restarted with a schedule ($RUNS runs, every $PERIOD s at speed $SCALE_SPEED)"
# The due times: RUNS of them, PERIOD apart in real time, the first about 6 s after the start
# (the agents reconnect in 1-2 s). The scheduler's clock starts at the coordinator's start and
# runs SCALE_SPEED times faster, so scheduler time is now + (real elapsed) x SCALE_SPEED. As a
# cron expression: the minutes and hours of those due times. They span 20 minutes, so the
# expression's next match after them is at least 40 minutes later.
read -r D_LAST CRON < <(python3 - "$SCALE_SPEED" "$PERIOD" "$RUNS" <<'PY'
import datetime, sys, time
speed, period, runs = map(int, sys.argv[1:])
first = -(-(int(time.time()) + 6 * speed) // 60) * 60
dues = [datetime.datetime.fromtimestamp(first + k * period * speed, datetime.timezone.utc)
        for k in range(runs)]
print(dues[-1].strftime("%Y-%m-%dT%H:%M:%SZ"),
      ",".join(str(m) for m in sorted({d.minute for d in dues})),
      ",".join(str(h) for h in sorted({d.hour for d in dues})), "* * *")
PY
)
echo "cron \"$CRON\" (UTC), last due time $D_LAST in scheduler time"
HOOKPORT=$(fleet_free_port)
scale_hook_start "$WORK/hook" "$HOOKPORT"
cp coord.conf coord2.conf
cat >>coord2.conf <<EOF

[scheduler]
max_concurrent = 8
max_per_agent = 1
catch_up = false

# d1..d$N: kept by keep3. $BAD has a schedule of its own without retention, because a prune
# deletes failed backups, and its failures are what this test looks at.
[schedule fast]
cron = $CRON
select = database=d?,d1?,d2?,d30
jitter = 0
retention = keep3

[schedule edge]
cron = $CRON
select = agent=a$N database=$BAD
jitter = 0

[retention keep3]
keep_last = $KEEP_LAST

[webhook receiver]
url = http://127.0.0.1:$HOOKPORT/pgship
events = backup.failed
timeout = 2s
max_attempts = 3
EOF
kill -TERM "$FLEET_COORD_PID"
wait "$FLEET_COORD_PID" 2>/dev/null || true
export PGSHIP_SCHEDULER_SPEED=$SCALE_SPEED
fleet_start_coordinator coord2.conf coord2.log
unset PGSHIP_SCHEDULER_SPEED
S0=$SECONDS
check "the agents reconnect" wait_connected $N 30


# quiet.py DLAST KEEP N SCHEDULES < backups: exit 0 when the schedule is done and the fleet at
# rest: every entry of GET /v1/schedules (SCHEDULES, a file) next due after DLAST (every due time
# up to the last was dealt with), nothing queued or running, each of d1..dN at KEEP complete
# backups and no failed one (the last prunes done).
cat >quiet.py <<'PY'
import datetime, json, sys
dlast, keep, n, sched = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
runs = json.load(open(sched))["runs"]
if len(runs) != n + 1 or any(r["due"] is not None and t(r["due"]) <= t(dlast) for r in runs):
    sys.exit(1)
b = json.load(sys.stdin)
if any(x["state"] in ("queued", "running") for x in b):
    sys.exit(1)
for i in range(1, n + 1):
    mine = [x for x in b if x["database"] == f"d{i}"]
    if sum(x["state"] == "complete" for x in mine) != keep or any(x["state"] == "failed" for x in mine):
        sys.exit(1)
PY

# Complete scheduled backups seen per database: a prune keeps the newest $KEEP_LAST, so polling
# every 0.5 s sees each one.
declare -A SEEN=()
quiet=0
deadline=$((SECONDS + 40 + RUNS * PERIOD * 2))
while [ $SECONDS -lt $deadline ]; do
    if ! list=$(backups 2>/dev/null) || ! api /v1/schedules >schedules.json 2>/dev/null; then
        sleep 0.5
        continue
    fi
    while read -r id db; do SEEN[$db:$id]=1; done < <(jq -r '.[] | select(.state == "complete"
        and (.requested_by // "" | startswith("schedule:"))) | "\(.id) \(.database)"' <<<"$list")
    if python3 quiet.py "$D_LAST" "$KEEP_LAST" "$N" schedules.json <<<"$list"; then
        quiet=1
        break
    fi
    sleep 0.5
done
SCHED_S=$((SECONDS - S0))
check "the schedule's $RUNS due times dealt with, every backup ended and pruned ($SCHED_S s)" \
    test "$quiet" -eq 1
seen=$(for i in $(seq 1 $N); do printf '%s\n' "${!SEEN[@]}" | grep -c "^d$i:" || true; done | sort -n | uniq -c | awk '{ printf "%s%s x %s", (NR > 1 ? ", " : ""), $1, $2 }')
min=$(for i in $(seq 1 $N); do printf '%s\n' "${!SEEN[@]}" | grep -c "^d$i:" || true; done | sort -n | head -1)
check "each of d1..d$N had at least $CYCLES scheduled backups (databases x backups: $seen)" \
    test "$min" -ge $CYCLES
# What an operator sees before the schedule stops: the metrics (with the read token) and the list.
curl -sS -H "Authorization: Bearer $(cat tok-read)" "$FLEET_API_URL/metrics" >metrics.txt || true
as_token read ls --limit 10000 --json >ls.json 2>ls.err || true
C4=$(scale_snap "$FLEET_COORD_PID")
kill -TERM "$FLEET_COORD_PID"
wait "$FLEET_COORD_PID" 2>/dev/null || true
step "schedule stopped"

# ===================== exactly the expected backups =====================
ls_rows() { jq -r '(if type == "array" then . else .backups end)[]
    | [.id, .agent, .database, .state, (.requested_by // ""), (.storage_key // ""), (.sha256 // "")] | join("|")' ls.json | sort; }
db_rows() { sqlite3 -separator '|' state/catalog.db "SELECT id, agent, database, state, requested_by,
    coalesce(storage_key, ''), coalesce(sha256, '') FROM backups ORDER BY id" | sort; }
ls_rows >rows.ls
db_rows >rows.db
check "pgship ls --json and the catalog file list the same backups ($(wc -l <rows.db))" \
    diff rows.ls rows.db
exact=0
for i in $(seq 1 $N); do
    want=$(printf '%s\n' "${!SEEN[@]}" | sed -n "s/^d$i://p" | sort | tail -n $KEEP_LAST | sed "s/\$/|a$i|d$i|complete|schedule:fast/")
    have=$(awk -F'|' -v d="d$i" '$3 == d { print $1 "|" $2 "|" $3 "|" $4 "|" $5 }' rows.db)
    if [ "$want" = "$have" ]; then exact=$((exact + 1)); else echo "d$i: want [$want] have [$have]"; fi
done
check "each of d1..d$N: exactly its $KEEP_LAST newest scheduled backups, complete, nothing else ($exact of $N)" \
    test "$exact" -eq $N
check "the $N burst backups were pruned" bash -c "! sqlite3 state/catalog.db \"SELECT label FROM backups\" | grep -q burst"
awk -F'|' '$4 == "complete" { k = $6; sub(/\.pgship$/, "", k); print k ".manifest.json"; print $6 }' rows.db | sort >objects.want
(cd archive && find . -type f | sed 's|^\./||' | sort) >objects.have
check "the storage holds exactly their objects and sidecars ($(wc -l <objects.want) files), nothing else" \
    diff objects.want objects.have
sums=0
while IFS='|' read -r _ _ _ st _ key sha; do
    [ "$st" = complete ] || continue
    [ "$(sha256sum "archive/$key" | cut -d' ' -f1)" = "$sha" ] && sums=$((sums + 1))
done <rows.db
check "every object has its catalog SHA-256 ($sums)" test "$sums" -eq $((N * KEEP_LAST))
sqlite3 -separator '|' state/catalog.db "SELECT state, requested_by, coalesce(error, '') FROM backups
    WHERE database = '$BAD'" >bad.rows
nbad=$(grep -c '^failed|' bad.rows || true)
nsbad=$(grep -c '^failed|schedule:edge|' bad.rows || true)
check "$BAD: failed backups ($nbad, $nsbad of them scheduled), never a complete one" \
    bash -c "test $nsbad -ge $CYCLES && ! grep -q -v '^failed|' bad.rows"
check "$BAD: each says why: the connection refused, or missed ($(grep -m1 -o -E 'FATAL.*|missed:.*' bad.rows | cut -c1-100))" \
    bash -c "! grep -v -q -E 'connection|unreachable|missed:' bad.rows && grep -q 'not currently accepting connections' bad.rows"

# ===================== metrics =====================
step "metrics"
check "metrics: scraped with the read token" grep -q '^# TYPE pgship_backups_total counter' metrics.txt
check "metrics: $N agents connected" grep -q -x "pgship_agents_connected $N" metrics.txt
cat >metrics_check.py <<'PY'
import datetime, json, re, sys
n, bad, keep = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ls = json.load(open("ls.json"))
ls = ls if isinstance(ls, list) else ls["backups"]
m = {}
for line in open("metrics.txt"):
    r = re.match(r'^(pgship_\w+)(?:\{(.*)\})? (\S+)$', line.strip())
    if r:
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', r.group(2) or ""))
        m.setdefault(r.group(1), []).append((labels, float(r.group(3))))
def get(name, **kw):
    return [v for l, v in m.get(name, []) if all(l.get(k) == w for k, w in kw.items())]
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
errors = []
for i in range(1, n + 1):
    a, d = f"a{i}", f"d{i}"
    done = [t(x["finished_at"]) for x in ls if x["database"] == d and x["state"] == "complete"]
    last = get("pgship_backup_last_success_timestamp_seconds", agent=a, database=d, environment="prod")
    if len(last) != 1 or not done or abs(last[0] - max(done)) > 1.0:
        errors.append(f"{d}: last success {last} vs the catalog's {max(done) if done else None}")
    if get("pgship_backups_total", agent=a, database=d, result="complete") != [keep]:
        errors.append(f"{d}: backups_total complete {get('pgship_backups_total', agent=a, database=d, result='complete')}")
    if sum(get("pgship_backup_failures_total", agent=a, database=d)) != 0:
        errors.append(f"{d}: failures counted")
    if any(v != 0 for v in get("pgship_backup_overdue", agent=a, database=d)):
        errors.append(f"{d}: overdue")
a = f"a{n}"
nfail = sum(1 for x in ls if x["database"] == bad and x["state"] == "failed")
fails = get("pgship_backup_failures_total", agent=a, database=bad)
if sum(fails) != nfail or nfail == 0:
    errors.append(f"{bad}: failures {fails} vs {nfail} failed in the catalog")
if get("pgship_backups_total", agent=a, database=bad, result="failed") != [nfail]:
    errors.append(f"{bad}: backups_total failed {get('pgship_backups_total', agent=a, database=bad, result='failed')}")
if get("pgship_backup_last_success_timestamp_seconds", agent=a, database=bad):
    errors.append(f"{bad}: has a last success")
over = get("pgship_backup_overdue", agent=a, database=bad)
print("overdue gauge for", bad, over if over else "absent")
if "pgship_backup_overdue" in m and over != [1]:
    errors.append(f"{bad}: overdue {over}")
reasons = sorted({l["reason"] for l, v in m.get("pgship_backup_failures_total", []) if l.get("database") == bad and v > 0})
print("failure reasons for", bad, reasons)
for e in errors:
    print(e)
sys.exit(1 if errors else 0)
PY
check "metrics: last success, counts and failures agree with the catalog, $BAD failing" \
    python3 metrics_check.py $N "$BAD" $KEEP_LAST
check "metrics: the overdue gauge is there, $BAD overdue" grep -q -x "pgship_backup_overdue{agent=\"a$N\",database=\"$BAD\"} 1" metrics.txt

# ===================== webhook =====================
step "webhook"
scale_hook_stop "$WORK/hook"
nhook=$(jq -s --arg d "$BAD" '[.[] | select(.event == "backup.failed" and .data.database == $d
    and .data.agent == "a'$N'")] | length' hook/hook.bodies 2>/dev/null || echo 0)
check "the receiver got backup.failed for a$N/$BAD ($nhook)" test "$nhook" -ge 1
check "... and no event for any other database" test "$(jq -s --arg d "$BAD" \
    '[.[] | select(.data.database != $d)] | length' hook/hook.bodies 2>/dev/null || echo x)" = 0
jq -r '.data.backup_id' hook/hook.bodies | sort >hook.ids
sqlite3 state/catalog.db "SELECT id FROM backups WHERE database = '$BAD' AND state = 'failed'
    AND requested_by LIKE 'schedule:%'" | sort >bad.ids
check "... one for each scheduled backup of $BAD that failed ($(wc -l <bad.ids))" diff bad.ids hook.ids
check "... each delivered once (distinct delivery ids)" test "$(cut -d' ' -f2 hook/hook.headers | sort | uniq -d | wc -l)" -eq 0

fleet_stop_all
check "the agents stop cleanly" test $? -eq 0

# ===================== figures =====================
kib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.0f", (b - a) / n }'; }
msper() { awk -v t="$1" -v hz="$TICK" -v n="$2" 'BEGIN { printf "%.1f", t * 1000 / hz / n }'; }
BURST_TICKS=$(($(f "$C3" 5) - $(f "$C2a" 5)))
PEAK=$(cat burst.peak 2>/dev/null || echo "0 0 0 0")
A_TICKS=$(($(f "$AC1" 1) - $(f "$AC0" 1)))
A_CHILD=$(($(f "$AC1" 2) - $(f "$AC0" 2)))
NSCHED=${#SEEN[@]}
cat <<EOF | tee figures.txt

Figures (fleet_scale: $N agents, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -m); dumps of $ROWS rows, $((BURST_BYTES / N)) bytes stored each)
| coordinator                    | RSS       | fds | threads | CPU |
|--------------------------------|-----------|-----|---------|-----|
| started, 0 agents              | $(kib "$(f "$C0" 1)") | $(f "$C0" 3) | $(f "$C0" 4) | |
| $N agents connected, idle       | $(kib "$(f "$C1" 1)") | $(f "$C1" 3) | $(f "$C1" 4) | $(awk -v ns="$IDLE_NS" -v s=$IDLE_S 'BEGIN { printf "%.2f", ns / 1e6 / s }') ms/s over $IDLE_S s |
| per agent                      | $(per "$(f "$C0" 1)" "$(f "$C1" 1)" $N) KiB | $(awk -v a="$(f "$C0" 3)" -v b="$(f "$C1" 3)" -v n=$N 'BEGIN { printf "%.2f", (b - a) / n }') | $(awk -v a="$(f "$C0" 4)" -v b="$(f "$C1" 4)" -v n=$N 'BEGIN { printf "%.2f", (b - a) / n }') | $(awk -v ns="$IDLE_NS" -v s=$IDLE_S -v n=$N 'BEGIN { printf "%.2f", ns / 1e6 / s * 60 / n }') ms/min |
| $N streams open at once         | $(kib "$(f "$C2" 1)") | $(f "$C2" 3) | $(f "$C2" 4) | |
| per stream                     | $(per "$(f "$C2a" 1)" "$(f "$C2" 1)" $N) KiB | $(awk -v a="$(f "$C2a" 3)" -v b="$(f "$C2" 3)" -v n=$N 'BEGIN { printf "%.2f", (b - a) / n }') | $(awk -v a="$(f "$C2a" 4)" -v b="$(f "$C2" 4)" -v n=$N 'BEGIN { printf "%.2f", (b - a) / n }') | $(msper "$BURST_TICKS" $N) ms per backup |
| peak during the $N streams      | $(kib "$(f "$PEAK" 1)") | $(f "$PEAK" 2) | $(f "$PEAK" 3) | all $N complete $BURST_S s after the release |
| scheduled phase, at the end    | $(kib "$(f "$C4" 1)") (peak $(kib "$(f "$C4" 2)")) | $(f "$C4" 3) | $(f "$C4" 4) | $(msper "$(f "$C4" 5)" "$NSCHED") ms per scheduled backup ($NSCHED complete in $SCHED_S s) |
| one agent (a1)                 | $(kib "$(f "$A1" 1)") idle, peak $(kib "$(f "$A3" 2)") | $(f "$A1" 3) | $(f "$A1" 4) | $(msper "$A_TICKS" $N) ms per backup, its pg_dump $(msper "$A_CHILD" $N) ms (mean of $N) |
test time: $((SECONDS - T0)) s
EOF
check_summary fleet_scale
