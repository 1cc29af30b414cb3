#!/usr/bin/env bash
# The coordinator's status page (GET /status) as a browser sees it: a real coordinator, one
# agent, PostgreSQL 15, local-directory storage, one complete backup and one failed backup (of a
# database the agent announced and that was then dropped), a [schedule]; the page read by
# headless Chromium with HTTP Basic credentials in the URL (a read-role token), its DOM checked
# for what an operator looks for, a screenshot taken; and curl for the authentication challenge,
# the security headers and the methods.
#
# Skips (exit 77) only when no chromium binary is installed: deploy/setup.sh installs Debian's
# chromium package.
# usage: status_page.sh BINDIR
set -euo pipefail
BIN=$(cd "${1:?usage: status_page.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
    echo "SKIP: no chromium binary (apt-get install chromium, or run deploy/setup.sh)"
    exit 77
fi
export FLEET_BIN_DIR=$BIN
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/fleet.sh"

WORK=$(mktemp -d /tmp/pgship-status.XXXXXX)
chmod 755 "$WORK"
source "$HERE/lib/check.sh"
cleanup() {
    fleet_stop_all >/dev/null 2>&1 || true
    pgc_destroy "$WORK/pg" >/dev/null 2>&1 || true
    if [ "$failed" -ne 0 ] && [ -z "${KEEP:-}" ]; then
        for f in "$WORK"/*.log; do echo "--- $f"; tail -n 30 "$f"; done
    fi
    if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
cd "$WORK"

json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }

# domq FILE SECTION: the rows of section SECTION's tables in an HTML file, one line each, cells
# joined by " | " (text content, whitespace collapsed).
domq() {
    python3 - "$1" "$2" <<'EOF'
import html.parser, sys
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.sec = None; self.depth = 0; self.row = None; self.cell = None; self.rows = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.depth += 1
            if a.get("id") == sys.argv[2]:
                self.sec = self.depth
        if self.sec is None:
            return
        if tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []
    def handle_endtag(self, tag):
        if tag == "section":
            if self.sec == self.depth:
                self.sec = None
            self.depth -= 1
        if self.sec is None:
            return
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.append(" | ".join(self.row))
            self.row = None
    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
p = P()
p.feed(open(sys.argv[1], encoding="utf-8").read())
print("\n".join(p.rows))
EOF
}
has_row() { # has_row FILE SECTION ERE: a row of the section matches ERE
    local rows
    rows=$(domq "$1" "$2") && grep -q -E -- "$3" <<<"$rows"
}

# --- PostgreSQL: a database to back up, and one the agent announces and then loses
PORT=$(pgc_free_port)
pgc_start "$WORK/pg" "$PORT" >/dev/null
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE appdb" -c "CREATE DATABASE gone"
pgc_psql "$PORT" appdb -q -c "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v
    FROM generate_series(1, 1000) g"

fleet_certs tls >/dev/null
fleet_recipient keys ops >/dev/null
fleet_identity keys a1 >/dev/null
fleet_coordinator_conf coordinator.conf tls state --agent a1 keys/a1.pub --storage-fs "$WORK/archive"
(umask 077 && openssl rand -hex 32 >tok-read)
# A read-only token for the browser; a schedule that selects appdb and never fires during the
# test (January 1st, no catch-up run at start).
cat >>coordinator.conf <<EOF

[token viewer]
file = $WORK/tok-read
role = read

[scheduler]
catch_up = false

[schedule status-yearly]
cron = 0 0 1 1 *
select = agent=a1 database=appdb
EOF
fleet_agent_conf agent1.conf a1 tls keys/a1.key --recipient keys/ops.pub \
    --db appdb prod "$(pgc_conninfo "$PORT" appdb)" --db gone dev "$(pgc_conninfo "$PORT" gone)"
fleet_start_coordinator coordinator.conf coord.log
fleet_start_agent agent1.conf agent1.log
fleet_wait_agent a1 30
API=$FLEET_API_URL
HOSTPORT=${API#http://}
ADMIN=$(<"$FLEET_TOKEN_FILE")
READ=$(<tok-read)

# --- one good backup, one failed
fleet_client backup a1/appdb --label status-ok --wait --json >ok.json 2>/dev/null
OK_ID=$(json 'd["id"]' <ok.json)
check "a backup of appdb completes ($OK_ID)" test "$(json 'd["state"]' <ok.json)" = complete
pgc_psql "$PORT" postgres -q -c "DROP DATABASE gone"
fleet_client backup a1/gone --wait --json >bad.json 2>/dev/null || true
BAD_ID=$(json 'd["id"]' <bad.json)
REASON=$(json 'd["error"]' <bad.json)
check "a backup of the dropped database fails ($BAD_ID: $REASON)" \
    test "$(json 'd["state"]' <bad.json)" = failed
check "... because the database does not exist" grep -q 'does not exist' <<<"$REASON"

# --- the page in a browser: Chromium, Basic credentials in the URL, the read token
chrome() { # chrome ARGS... URL: headless Chromium with a profile of its own, bounded in time
    timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-dev-shm-usage --user-data-dir="$WORK/chrome" "$@" 2>>chromium.log
}
URL="http://viewer:$READ@$HOSTPORT/status"
t0=$SECONDS
if chrome --dump-dom "$URL" >dom.html && [ -s dom.html ]; then
    ok "chromium --dump-dom read the page ($((SECONDS - t0)) s, $(wc -c <dom.html) bytes)"
else
    bad "chromium --dump-dom gave nothing (see chromium.log)"
fi
check "the DOM is the status page" grep -q '<title>pgship status</title>' dom.html
generated_recently() { # the page's generated-at time is within a minute of now
    python3 - dom.html <<'EOF'
import datetime, re, sys
m = re.search(r'<time id="generated">([0-9T:.-]+)Z</time>', open(sys.argv[1]).read())
t = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc)
assert abs((datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()) < 60
EOF
}
check "... generated just now" generated_recently
check "Fleet: a1 is connected, with its databases" \
    has_row dom.html fleet '^a1 \| connected \| pgship-agent [^|]+ \| connected since [^|]+ \| appdb \(prod\), gone \(dev\) \| '
check "Databases: appdb has its good backup, its size and OK" \
    has_row dom.html databases "^a1/appdb \| prod \| OK \| [0-9T:.Z-]+ \| [0-9]+ s \| [0-9.]+ (B|KiB|MiB) \| $OK_ID \| complete$"
check "Databases: gone is marked (no good backup) with the failure's reason" \
    has_row dom.html databases "^a1/gone \| dev \| NO BACKUP \| never \| .*failed [0-9T:.Z-]+: .*does not exist"
grep_reason() {
    local rows
    rows=$(domq dom.html failures) && grep -F -q -- "$BAD_ID | a1/gone | " <<<"$rows" &&
        grep -F -q -- "$REASON" <<<"$rows"
}
check "Recent failures: the failed backup with its reason" grep_reason
check "Next runs: the configured schedule, its cron and selector" \
    has_row dom.html next-runs '^status-yearly \| 0 0 1 1 \* \| agent=a1 database=appdb \| '
# When the scheduler has planned its runs, the page lists the one /v1/schedules lists.
curl -sS -H "Authorization: Bearer $READ" "$API/v1/schedules" >sched.json
RUN_AT=$(json '",".join(r["run_at"] or "" for r in d.get("runs", []) if r["schedule"] == "status-yearly" and r["database"] == "appdb")' <sched.json)
if [ -n "$RUN_AT" ]; then
    check "Next runs: appdb's run at $RUN_AT, as /v1/schedules says" \
        has_row dom.html next-runs "^status-yearly \| a1/appdb \| $RUN_AT \| "
else
    check "Next runs: the scheduler has not planned yet, and the page says so" \
        has_row dom.html next-runs '^No run is planned\.$'
fi
check "no script in the page" bash -c "! grep -q -i '<script' dom.html"

rm -f status.png
chrome --screenshot="$WORK/status.png" --window-size=1280,1024 "$URL" >/dev/null || true
png_ok() { # a PNG of 1280x1024, between 10 KB and 10 MB
    python3 - "$WORK/status.png" <<'EOF'
import struct, sys, os
b = open(sys.argv[1], "rb").read(32)
assert b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR", "not a PNG"
w, h = struct.unpack(">II", b[16:24])
size = os.path.getsize(sys.argv[1])
print(f"{w}x{h}, {size} bytes")
assert (w, h) == (1280, 1024) and 10_000 < size < 10_000_000
EOF
}
check "a screenshot of the page is a PNG of sensible size ($(png_ok 2>&1 | tail -1))" png_ok

# --- curl: the challenge, the headers, the methods
code() { curl -sS -o /dev/null -w '%{http_code}' "$@"; }
curl -sS -D noauth.h -o noauth.body "$API/status" || true
check "without credentials: 401" grep -q '^HTTP/1.1 401' noauth.h
check "... with WWW-Authenticate: Basic realm=\"pgship\"" grep -q -i '^WWW-Authenticate: Basic realm="pgship"' noauth.h
curl -sS -D v1.h -o /dev/null "$API/v1/agents" || true
check "the JSON API still challenges for Bearer" grep -q -i '^WWW-Authenticate: Bearer realm="pgship"' v1.h
check "a wrong password: 401" test "$(code -u "viewer:not-the-token" "$API/status")" = 401
curl -sS -D page.h -o page.html -u "viewer:$READ" "$API/status"
check "the read token by Basic: 200" grep -q '^HTTP/1.1 200' page.h
hdr() { grep -i -q -- "^$1: $2"$'\r'"\$" page.h; }
check "Content-Type: text/html; charset=utf-8" hdr Content-Type 'text/html; charset=utf-8'
check "Cache-Control: no-store" hdr Cache-Control no-store
check "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; ..." \
    grep -i -q "^Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'" page.h
check "X-Content-Type-Options: nosniff" hdr X-Content-Type-Options nosniff
check "X-Frame-Options: DENY" hdr X-Frame-Options DENY
check "the page refreshes itself every 30 s" grep -q '<meta http-equiv="refresh" content="30">' page.html
check "the reason's quotes are escaped in the HTML" grep -q '&quot;gone&quot;' page.html
check "the read token as Bearer: 200" test "$(code -H "Authorization: Bearer $READ" "$API/status")" = 200
check "/status/ is the page too" test "$(code -u "x:$ADMIN" "$API/status/")" = 200
check "HEAD: 200" test "$(code -I -u "x:$READ" "$API/status")" = 200
check "POST /status: 405" test "$(code -X POST -H "Authorization: Bearer $READ" "$API/status")" = 405
check "Basic works for GET elsewhere (GET /v1/agents)" test "$(code -u "x:$READ" "$API/v1/agents")" = 200
check "Basic is refused for POST, even with the admin token" \
    test "$(code -u "x:$ADMIN" -X POST -H 'Content-Type: application/json' \
        --data '{"agent":"a1","database":"appdb"}' "$API/v1/backups")" = 401
check "the token never reaches the coordinator's log" bash -c "! grep -q -F -e '$READ' -e '$ADMIN' coord.log"

fleet_stop_all
check "SIGTERM stops the fleet cleanly" test $? -eq 0
check_summary status_page
