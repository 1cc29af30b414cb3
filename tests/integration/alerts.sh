#!/usr/bin/env bash
# Alerts end to end: a coordinator with a [webhook hook] pointing at a receiver in this test
# (python3's http.server, writing each POST's headers and body to a file), a [schedule] of
# "* * * * *" sped up 60 times (PGSHIP_SCHEDULER_SPEED=60: one due time a second), one agent with
# two databases, one of which is dropped after the agent announced it.
#
#   `pgship backup` of the dropped database fails -> the receiver gets backup.failed naming the
#   database, the backup id and the reason, within seconds, signed (X-Pgship-Signature checked
#   here with the secret, by Python's hmac)
#   the scheduled database without a good backup -> one backup.overdue, and GET /metrics shows
#   pgship_backup_overdue 1 for it (0 for the healthy one) and the webhook's delivered count
#   a restarted coordinator sends none of the failures the previous run had seen
# usage: alerts.sh BINDIR
set -euo pipefail
BIN=$(cd "${1:?usage: alerts.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
export FLEET_BIN_DIR=$BIN
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/fleet.sh"

WORK=$(mktemp -d /tmp/pgship-alerts.XXXXXX)
chmod 755 "$WORK"
source "$HERE/lib/check.sh"
RX_PID=""
cleanup() {
    fleet_stop_all >/dev/null 2>&1 || true
    [ -z "$RX_PID" ] || kill "$RX_PID" 2>/dev/null || true
    pgc_destroy "$WORK/pg" >/dev/null 2>&1 || true
    if [ "$failed" -ne 0 ] && [ -z "${KEEP:-}" ]; then
        for f in "$WORK"/*.log; do echo "--- $f"; tail -n 40 "$f"; done
        echo "--- received"; head -c 4000 "$WORK/received.jsonl" 2>/dev/null || true
    fi
    [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

# --- the receiver: one JSON line per POST ({"headers": {...}, "body": "..."}), answers 204
cat >receiver.py <<'EOF'
import http.server, json, sys

out = sys.argv[1]

class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": dict(self.headers.items()),
                                "body": body.decode("utf-8")}) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass

s = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[2], "w") as f:
    f.write(str(s.server_address[1]))
s.serve_forever()
EOF
: >received.jsonl
python3 receiver.py "$WORK/received.jsonl" "$WORK/rx.port" &
RX_PID=$!
for _ in $(seq 50); do [ -s rx.port ] && break; sleep 0.1; done
RX_PORT=$(cat rx.port)

# events EVENT [PYTHON CONDITION on d (the data)]: how many requests of EVENT match
events() {
    python3 - "$WORK/received.jsonl" "$1" "${2:-True}" <<'EOF'
import json, sys
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    b = json.loads(r["body"])
    d = b["data"]
    if b["event"] == sys.argv[2] and eval(sys.argv[3]):
        n += 1
print(n)
EOF
}
# wait_events EVENT CONDITION WANT TIMEOUT_S: until events EVENT CONDITION >= WANT
wait_events() {
    local i
    for i in $(seq $(($4 * 10))); do
        [ "$(events "$1" "$2")" -ge "$3" ] && return 0
        sleep 0.1
    done
    return 1
}

# --- PostgreSQL: a healthy database and one that will disappear
PORT=$(pgc_free_port)
pgc_start "$WORK/pg" "$PORT" >/dev/null
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE appdb" -c "CREATE DATABASE gone"
pgc_psql "$PORT" appdb -q -c "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g"

fleet_certs tls >/dev/null
fleet_recipient keys ops >/dev/null
fleet_identity keys a1 >/dev/null
fleet_coordinator_conf coordinator.conf tls state --agent a1 keys/a1.pub
SECRET=$(openssl rand -hex 24)
(umask 077 && printf '%s\n' "$SECRET" >hook-secret)
cat >>coordinator.conf <<EOF

[scheduler]
overdue_factor = 2

[schedule every-minute]
cron = * * * * *
select = agent=a1 database=gone

[webhook hook]
url = http://127.0.0.1:$RX_PORT/pgship/alerts?token=abc
secret_file = $WORK/hook-secret
timeout = 5s
max_attempts = 3
EOF
fleet_agent_conf agent.conf a1 tls keys/a1.key --recipient keys/ops.pub \
    --db appdb prod "$(pgc_conninfo "$PORT" appdb)" --db gone dev "$(pgc_conninfo "$PORT" gone)"

# One due time a second: the schedule's interval is 1 s of real time, so "gone" is overdue
# 2 s (overdue_factor) after the alerter started without a good backup of it.
export PGSHIP_SCHEDULER_SPEED=60
fleet_start_coordinator coordinator.conf coord.log
fleet_start_agent agent.conf agent.log
fleet_wait_agent a1 30 >/dev/null
# The agent announced both databases; now one goes away (FORCE: a scheduled dump may be on it).
pgc_psql "$PORT" postgres -q -c "DROP DATABASE gone WITH (FORCE)"

# --- a backup of the dropped database fails: backup.failed, within seconds
T0=$SECONDS
rc=0
fleet_client backup a1/gone --label manual --wait --json >b.json 2>b.err || rc=$?
ID=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <b.json)
check "pgship backup of the dropped database fails (exit $rc)" \
    test "$rc" -ne 0 -a "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' <b.json)" = failed
check "the receiver gets backup.failed for $ID within 5 s" \
    wait_events backup.failed "d['backup_id'] == '$ID'" 1 5
echo "  (after $((SECONDS - T0)) s)"
check "... naming the agent, database, environment, reason and error" \
    test "$(events backup.failed "d['backup_id'] == '$ID' and d['agent'] == 'a1' and d['database'] == 'gone' and d['environment'] == 'dev' and d['reason'] == 'database' and 'gone' in d['error'] and d['label'] == 'manual' and d['finished_at'] is not None")" = 1
check "... once" test "$(events backup.failed "d['backup_id'] == '$ID'")" = 1

# --- the scheduled database without a good backup is overdue: one event, and the gauge
check "backup.overdue for a1/gone" wait_events backup.overdue "d['database'] == 'gone'" 1 15
check "... naming the scheduled database and its allowance" \
    test "$(events backup.overdue "d['agent'] == 'a1' and d['database'] == 'gone' and d['overdue_after_s'] >= 1")" = 1
check "scheduled runs that fail are alerted too (requested_by schedule:every-minute)" \
    wait_events backup.failed "d['database'] == 'gone' and d['scheduled'] == 'every-minute'" 1 10
TOKEN=$(cat "$FLEET_TOKEN_FILE")
metrics() { curl -sf -H "Authorization: Bearer $TOKEN" "$FLEET_API_URL/metrics"; }
metrics >metrics.txt
check "GET /metrics: pgship_backup_overdue 1 for a1/gone" \
    grep -qx 'pgship_backup_overdue{agent="a1",database="gone"} 1' metrics.txt
check "GET /metrics: pgship_backup_overdue 0 for the unscheduled a1/appdb" \
    grep -qx 'pgship_backup_overdue{agent="a1",database="appdb"} 0' metrics.txt
DELIVERED=$(sed -n 's/^pgship_webhook_deliveries_total{webhook="hook",result="delivered"} //p' metrics.txt)
check "GET /metrics: the webhook's delivered count (${DELIVERED:-none}) is at least 2" \
    test "${DELIVERED:-0}" -ge 2
check "GET /metrics: nothing failed or dropped" \
    grep -qx 'pgship_webhook_deliveries_total{webhook="hook",result="failed"} 0' metrics.txt
check "GET /metrics: pgship_webhook_retries_total for the webhook" \
    grep -qx 'pgship_webhook_retries_total{webhook="hook"} 0' metrics.txt
sleep 2
check "still one backup.overdue for a1/gone (one per episode)" \
    test "$(events backup.overdue "d['database'] == 'gone'")" = 1

# --- every request: signed with the secret, headers agree with the body, the documented shape
check "every request is signed with the secret (HMAC-SHA-256 of the body) and well formed" \
    python3 - "$WORK/received.jsonl" "$SECRET" <<'EOF'
import hashlib, hmac, json, re, sys
secret = sys.argv[2].encode()
n = 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    h = {k.lower(): v for k, v in r["headers"].items()}
    body = r["body"].encode("utf-8")
    want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(want, h.get("x-pgship-signature", "")), "bad signature"
    b = json.loads(body)
    assert list(b) == ["event", "id", "time", "coordinator", "data"], list(b)
    assert h["x-pgship-event"] == b["event"] and h["x-pgship-delivery"] == b["id"]
    assert re.fullmatch(r"[0-9a-f]{32}", b["id"]) and h["content-type"] == "application/json"
    assert r["path"] == "/pgship/alerts?token=abc"
    n += 1
assert n >= 2, n
EOF
check "the log names the webhook, never its URL's token or the secret" \
    bash -c "grep -q 'webhook hook: sends backup.failed' coord.log && ! grep -q -e 'token=abc' -e '$SECRET' coord.log"

# --- a restart sends nothing that ended before it
kill -TERM "$FLEET_COORD_PID"
wait "$FLEET_COORD_PID" || true
# Counted once the old coordinator is gone: it may still have delivered what it saw last.
LINES=$(wc -l <received.jsonl)
RESTART_AT=$(python3 -c 'import datetime; print(datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")')
fleet_start_coordinator coordinator.conf coord2.log
# Until the new run has sent something (its own overdue or failures), then a poll more.
for _ in $(seq 100); do [ "$(wc -l <received.jsonl)" -gt "$LINES" ] && break; sleep 0.1; done
sleep 1.5
check "after a restart, no failure from before it is sent again" \
    python3 - "$WORK/received.jsonl" "$LINES" "$RESTART_AT" <<'EOF'
import json, sys
lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
assert lines, "the restarted coordinator sent nothing"
for line in lines:
    b = json.loads(json.loads(line)["body"])
    if b["event"] != "backup.overdue":
        assert b["data"]["finished_at"] >= sys.argv[3], (b["data"]["finished_at"], sys.argv[3])
EOF

check_summary alerts
