#!/usr/bin/env bash
# The pgship client's coordinator commands (agents, backup, ls, show, fetch) against the real
# HTTP API: api_serve runs it over a fixture catalog and storage with a scripted fleet. Checks
# output, JSON, exit codes (0 ok, 1 failed, 2 usage, 3 unreachable or refused), that fetch
# verifies the digest and leaves nothing behind when it does not match, and that the token is
# never accepted from a world-readable place without a warning.
# usage: api_client.sh BINDIR
set -uo pipefail
BIN=$(cd "${1:?usage: api_client.sh BINDIR}" && pwd)
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/pgship-api-client.XXXXXX)
# shellcheck source=lib/check.sh
. "$ROOT/tests/integration/lib/check.sh"
SERVE_PID=
cleanup() {
    [ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
unset PGSHIP_URL PGSHIP_TOKEN PGSHIP_TOKEN_FILE http_proxy https_proxy HTTP_PROXY HTTPS_PROXY \
    all_proxy ALL_PROXY

quiet() { "$@" >/dev/null; }

# expect_rc WHAT RC PATTERN CMD...: CMD exits with RC and prints PATTERN (ERE) on stderr
expect_rc() {
    local what=$1 want=$2 pattern=$3; shift 3
    local rc=0
    "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" || rc=$?
    if [ "$rc" -eq "$want" ] && grep -q -E -- "$pattern" "$WORK/err.txt"; then
        ok "$what (exit $rc)"
    else
        bad "$what: exit $rc (want $want), stderr: $(head -c 600 "$WORK/err.txt")"
    fi
}

P=$BIN/pgship
mkdir -p "$WORK/srv"
printf 'tok-%s\n' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$WORK/token"
chmod 600 "$WORK/token"
"$BIN/api_serve" "$WORK/srv" "$WORK/token" 2>"$WORK/serve.log" &
SERVE_PID=$!
for _ in $(seq 100); do [ -f "$WORK/srv/ids.sh" ] && break; sleep 0.1; done
if [ ! -f "$WORK/srv/ids.sh" ]; then
    cat "$WORK/serve.log"
    echo "FAILED: api_serve did not start"
    exit 1
fi
# shellcheck disable=SC1091
. "$WORK/srv/ids.sh" # port, id_complete, id_failed, id_corrupt
URL=http://127.0.0.1:$port

# ---- usage, address and token ----
expect_rc "no token is a usage error" 2 "no API token" "$P" ls --url "$URL"
expect_rc "bad usage exits 2" 2 "usage: pgship ls" "$P" ls a b --url "$URL"
expect_rc "bad AGENT/DB exits 2" 2 "is not AGENT/DATABASE" "$P" backup justagent \
    --url "$URL" --token-file "$WORK/token"
expect_rc "bad --state exits 2" 2 "--state takes" "$P" ls --state done --url "$URL" \
    --token-file "$WORK/token"
expect_rc "bad id exits 2" 2 "is not a backup id" "$P" show ../v1/agents --url "$URL" \
    --token-file "$WORK/token"
expect_rc "a wrong token exits 3" 3 "the coordinator refused the token" \
    env PGSHIP_TOKEN=tok-wrong-wrong-wrong "$P" ls --url "$URL"
expect_rc "no coordinator exits 3" 3 "cannot reach the coordinator at http://127.0.0.1:1" \
    "$P" ls --url http://127.0.0.1:1 --token-file "$WORK/token"
expect_rc "--token works and warns" 0 "token where every user" \
    "$P" agents --url "$URL" --token "$(cat "$WORK/token")"
cp "$WORK/token" "$WORK/token.open"
chmod 644 "$WORK/token.open"
expect_rc "a world-readable token file warns" 0 "can be read by other users" \
    "$P" agents --url "$URL" --token-file "$WORK/token.open"
export PGSHIP_URL=$URL
check "PGSHIP_TOKEN_FILE and PGSHIP_URL are used" \
    quiet env PGSHIP_TOKEN_FILE="$WORK/token" "$P" agents
export PGSHIP_TOKEN
PGSHIP_TOKEN=$(cat "$WORK/token")
check "--help exits 0" quiet "$P" fetch --help

# ---- agents, ls, show ----
"$P" agents >"$WORK/agents.txt"
check "agents: a table with a header" grep -q -E '^NAME +STATE +VERSION +SINCE +JOBS +DATABASES$' \
    "$WORK/agents.txt"
check "agents: prod-db1 is connected" grep -q -E '^prod-db1 +connected +0\.1\.0-test' \
    "$WORK/agents.txt"
check "agents: stage-db1 is offline" grep -q -E '^stage-db1 +offline .*appdb \(staging, 15\.4\)' \
    "$WORK/agents.txt"
"$P" agents --json >"$WORK/agents.json"
check "agents --json" test "$(jq -r '[.[] | "\(.name)=\(.connected)"] | join(",")' \
    "$WORK/agents.json")" = "prod-db1=true,stage-db1=false"

"$P" ls >"$WORK/ls.txt"
check "ls: the header" grep -q -E '^ID +AGENT/DATABASE +ENV +STATE +SIZE +CREATED +LABEL$' \
    "$WORK/ls.txt"
check "ls: newest first" test "$(sed -n 2p "$WORK/ls.txt" | cut -d' ' -f1)" = "$id_failed"
check "ls: the complete backup with its size and label" \
    grep -q -E "^$id_complete +prod-db1/appdb +prod +complete +3\.0 MiB .* before migration$" \
    "$WORK/ls.txt"
"$P" ls prod-db1/appdb --state complete --json >"$WORK/ls.json"
check "ls AGENT/DB --state --json" test "$(jq -r '[.[].id] | join(",")' \
    "$WORK/ls.json")" = "$id_complete"
check "ls --json: the fields" test "$(jq -r '.[0] | [has("id", "agent", "database",
    "environment", "label", "state", "error", "started_at", "finished_at", "size_bytes",
    "sha256", "storage_key")] | all' "$WORK/ls.json")" = true
expect_rc "ls --limit 1 says there are more" 0 "more backups match" "$P" ls --limit 1
check "ls --limit 1 shows one" test "$(wc -l <"$WORK/out.txt")" -eq 2
expect_rc "ls --limit 1 --json says there are more on stderr" 0 "more backups match" \
    "$P" ls --limit 1 --json
check "ls --limit 1 --json: an array of one" test "$(jq length "$WORK/out.txt")" -eq 1
expect_rc "ls of an agent without backups" 0 "no backups match" "$P" ls stage-db1

"$P" show "$id_complete" >"$WORK/show.txt"
check "show: state" grep -q -E '^state +complete$' "$WORK/show.txt"
check "show: size" grep -q -E '^size +3\.0 MiB \(3145728 bytes\)$' "$WORK/show.txt"
"$P" show "$id_failed" >"$WORK/show-failed.txt"
check "show: a failure's reason" grep -q -E '^error +pg_dump exited with status 1$' \
    "$WORK/show-failed.txt"
sha=$("$P" show "$id_complete" --json | jq -r .sha256)
check "show --json: sha256" test "${#sha}" -eq 64
expect_rc "show of an unknown backup exits 1" 1 "no backup|not found|No such|no such" \
    "$P" show 20260101T000000Z-00000000

# ---- fetch ----
mkdir "$WORK/dl"
expect_rc "fetch a complete backup" 0 "SHA-256 verified" \
    "$P" fetch "$id_complete" -o "$WORK/dl/a.pgship"
check "fetch: the bytes match the catalog's digest" \
    test "$(sha256sum "$WORK/dl/a.pgship" | cut -d' ' -f1)" = "$sha"
check "fetch: the file is private" test "$(stat -c %a "$WORK/dl/a.pgship")" = 600
expect_rc "fetch never overwrites without -f" 1 "exists; use -f" \
    "$P" fetch "$id_complete" -o "$WORK/dl/a.pgship"
expect_rc "fetch -f overwrites" 0 "SHA-256 verified" \
    "$P" fetch "$id_complete" -o "$WORK/dl/a.pgship" -f
expect_rc "fetch refuses bytes that do not match the catalog" 1 "SHA-256 of the 4096 bytes" \
    "$P" fetch "$id_corrupt" -o "$WORK/dl/c.pgship"
check "fetch: nothing is left behind after a mismatch" \
    test "$(find "$WORK/dl" -mindepth 1 | wc -l)" -eq 1
expect_rc "fetch of a failed backup exits 1" 1 "only a complete backup can be fetched" \
    "$P" fetch "$id_failed" -o "$WORK/dl/f.pgship"
expect_rc "fetch without -o is a usage error" 2 "usage: pgship fetch" "$P" fetch "$id_complete"
check "fetch -o - writes to a pipe" \
    test "$("$P" fetch "$id_complete" -o - 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$sha"
"$P" fetch "$id_complete" -o "$WORK/dl/j.pgship" --json >"$WORK/fetch.json" 2>/dev/null
check "fetch --json" test "$(jq -r .sha256 "$WORK/fetch.json")" = "$sha"

# ---- backup ----
id=$("$P" backup prod-db1/appdb --label "from the test" 2>"$WORK/err.txt")
check "backup prints the new id" grep -q -E '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$' <<<"$id"
check "backup says it is queued" grep -q "backup $id of prod-db1/appdb is queued" "$WORK/err.txt"
expect_rc "backup --wait follows it to complete" 0 "is complete: 12\.0 MiB" \
    "$P" backup prod-db1/billing --wait
check "backup --wait: progress lines without a terminal" grep -q -E 'streaming, [0-9.]+ MiB' \
    "$WORK/err.txt"
wid=$(cat "$WORK/out.txt")
check "backup --wait: the backup is complete in the catalog" \
    test "$("$P" show "$wid" --json | jq -r .state)" = complete
expect_rc "backup --wait of a failing backup exits 1 with the reason" 1 \
    "failed: pg_dump exited with status 1" "$P" backup prod-db1/appdb --label fail --wait
"$P" backup prod-db1/appdb --wait --json >"$WORK/wait.json" 2>/dev/null
check "backup --wait --json: the final row" test "$(jq -r .state "$WORK/wait.json")" = complete
expect_rc "backup of an agent that is not connected exits 1" 1 "stage-db1 is not connected" \
    "$P" backup stage-db1/appdb
expect_rc "backup of a database the agent does not have exits 1" 1 "did not announce" \
    "$P" backup prod-db1/nodb
expect_rc "backup --wait --timeout gives up and says so" 1 "gave up waiting after 1 s" \
    "$P" backup prod-db1/appdb --wait --timeout 1
# interrupted while waiting: 128+SIGINT, and the backup goes on
"$P" backup prod-db1/appdb --wait >"$WORK/out.txt" 2>"$WORK/err.txt" &
cpid=$!
sleep 0.8
kill -INT "$cpid"
rc=0
wait "$cpid" || rc=$?
check "backup --wait stopped by SIGINT exits 130" test "$rc" -eq 130
check "backup --wait stopped: says the backup goes on" grep -q "goes on" "$WORK/err.txt"

# the coordinator goes away
kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null
SERVE_PID=
expect_rc "a stopped coordinator exits 3" 3 "cannot reach the coordinator" "$P" agents
check "the token never reaches the coordinator's log" \
    bash -c "! grep -q -F -- '$PGSHIP_TOKEN' '$WORK/serve.log'"

check_summary api_client
