#!/usr/bin/env bash
# The pgship client's coordinator commands (agents, backup, ls, show, fetch, restore, sync,
# restores) against the real HTTP API: api_serve runs it over a fixture catalog and storage with a
# scripted fleet and restorer. Checks output, JSON, exit codes (0 ok, 1 failed or refused, 2
# usage, 3 unreachable or refused), that fetch verifies the digest and leaves nothing behind when
# it does not match, that restore --wait follows each step to its report, and that the token is
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
. "$WORK/srv/ids.sh" # port, id_complete, id_failed, id_corrupt, id_running
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
check "ls: the header" grep -q -E '^ID +AGENT/DATABASE +ENV +STATE +SIZE +CREATED +FLAGS +NOTE$' \
    "$WORK/ls.txt"
check "ls: newest first" test "$(sed -n 2p "$WORK/ls.txt" | cut -d' ' -f1)" = "$id_running"
check "ls: then the failed one" test "$(sed -n 3p "$WORK/ls.txt" | cut -d' ' -f1)" = "$id_failed"
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

# ---- restore, sync, restores ----
R="$P restore $id_complete"
expect_rc "restore without --to is a usage error" 2 "--to AGENT/DATABASE is required" $R
expect_rc "restore of AGENT/DB without @latest is a usage error" 2 "use pgship sync" \
    "$P" restore prod-db1/appdb --to stage-db1/appdb
expect_rc "restore of something that is not an id" 2 "is not a backup id" \
    "$P" restore 'x;y' --to stage-db1/appdb
expect_rc "sync of AGENT/DB@latest is a usage error" 2 "pgship sync takes AGENT/DATABASE" \
    "$P" sync prod-db1/appdb@latest --to stage-db1/appdb
expect_rc "--from-latest is sync's option" 2 "usage: pgship restore" \
    "$P" restore prod-db1/appdb@latest --to stage-db1/appdb --from-latest
expect_rc "--to must be AGENT/DATABASE" 2 "is not AGENT/DATABASE" $R --to stage-db1
expect_rc "--schema-only with --data-only" 2 "exclude each other" \
    $R --to stage-db1/appdb --schema-only --data-only
expect_rc "--jobs out of range" 2 "--jobs takes a number from 1 to 64" $R --to stage-db1/appdb -j 0
expect_rc "a bad profile name" 2 "is not a profile name" $R --to stage-db1/appdb --sanitize ../p
expect_rc "a --table with a control character" 2 "--table takes" \
    $R --to stage-db1/appdb --table "$(printf 'a\tb')"
expect_rc "restores takes at most one id" 2 "usage: pgship restores" "$P" restores a b
expect_rc "restores of something that is not an id" 2 "is not a restore id" "$P" restores ../x
"$P" restore --help >"$WORK/help.txt"
check "restore --help explains SOURCE" grep -q 'AGENT/DATABASE@latest: the newest' \
    "$WORK/help.txt"
check "restore --help names the options" grep -q -- '--overwrite-prod' "$WORK/help.txt"
check "sync --help names --from-latest" bash -c "'$P' sync --help | grep -q -- --from-latest"

# refusals: exit 1 with the coordinator's message
expect_rc "an unsanitized prod copy is refused (403)" 1 "only through a sanitization profile" \
    $R --to stage-db1/appdb
expect_rc "restoring into prod needs --overwrite-prod (403)" 1 "add --overwrite-prod" \
    $R --to prod-db1/billing
expect_rc "an unknown backup (404)" 1 "no backup 20200101T000000Z-00000000" \
    "$P" restore 20200101T000000Z-00000000 --to stage-db1/appdb --sanitize app-anonymize
expect_rc "an unknown profile (404)" 1 "no profile nope" $R --to stage-db1/appdb --sanitize nope
expect_rc "a database the target does not have (404)" 1 "has no database nodb" \
    $R --to stage-db1/nodb --sanitize app-anonymize
expect_rc "a source that is not complete (409)" 1 "is running, not complete" \
    "$P" restore "$id_running" --to stage-db1/appdb --sanitize app-anonymize
expect_rc "restores of an unknown id (404)" 1 "no restore 20200101T000000Z-00000000" \
    "$P" restores 20200101T000000Z-00000000

# without --wait: the id, or the queued restore's JSON
rid=$($R --to stage-db1/appdb --sanitize app-anonymize 2>"$WORK/err.txt")
check "restore prints the new id" grep -q -E '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$' <<<"$rid"
check "restore says it is queued" grep -q "restore $rid ($id_complete -> stage-db1/appdb) is queued" \
    "$WORK/err.txt"
"$P" restore prod-db1/appdb@latest --to stage-db1/appdb --sanitize app-anonymize --keep-old \
    -n public -t users -t orders --json >"$WORK/queued.json" 2>/dev/null
check "restore --json: the queued restore" test "$(jq -r '[.state, .kind, .source, .target_agent,
    .target_database, .profile, .requested_by] | join(" ")' "$WORK/queued.json")" = \
    "queued restore prod-db1/appdb@latest stage-db1 appdb app-anonymize api"
check "restore --json: the fields" test "$(jq -r '[has("id", "step", "error", "source_backup_id",
    "target_environment", "safety_backup_id", "created_at", "options", "report")] | all' \
    "$WORK/queued.json")" = true

# --wait: progress on stderr, the report on stdout, exit 0 only when complete
expect_rc "restore --wait follows it to complete" 0 "restore [0-9TZa-f-]+ is complete" \
    $R --to prod-db1/appdb --overwrite-prod --safety-backup --keep-old -j 4 --wait
check "restore --wait: each step on stderr" grep -q -E 'restore [0-9TZa-f-]+: restore, agent: ' \
    "$WORK/err.txt"
check "restore --wait: bytes while fetching" grep -q -E 'agent: fetch, [0-9.]+ [KM]iB received' \
    "$WORK/err.txt"
check "report: complete" grep -q -E '^state +complete$' "$WORK/out.txt"
check "report: the source backup" grep -q -E "^source +$id_complete \(prod-db1/appdb, prod\)$" \
    "$WORK/out.txt"
check "report: the target" grep -q -E '^target +prod-db1/appdb \(prod\)$' "$WORK/out.txt"
check "report: the safety backup" grep -q -E '^safety backup +[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$' \
    "$WORK/out.txt"
check "report: the coordinator's steps with their times" \
    grep -q -E '^ +coordinator +safety +[0-9.]+ m?s +ok +backup ' "$WORK/out.txt"
check "report: the agent's steps with their times" \
    grep -q -E '^ +agent +pg_restore +[0-9.]+ m?s +ok$' "$WORK/out.txt"
check "report: rows per table" grep -q -E '^public\.users +50000$' "$WORK/out.txt"
check "report: the total" grep -q -F '(2 tables, 170000 rows)' "$WORK/out.txt"
check "report: unsanitized says so" grep -q -E '^profile +none' "$WORK/out.txt"

expect_rc "sync --wait of a failing check exits 1 with the step and reason" 1 \
    "failed in step check: 2 rows failed the profile's checks" \
    "$P" sync prod-db1/appdb --to stage-db1/appdb --sanitize broken-check --wait
check "sync report: failed in check" grep -q -E '^state +failed in check$' "$WORK/out.txt"
check "sync report: the error" grep -q -E "^error +2 rows failed the profile's checks" \
    "$WORK/out.txt"
check "sync report: the fresh backup" \
    grep -q -E '^ +coordinator +backup +[0-9.]+ m?s +ok +backup [0-9]{8}T' "$WORK/out.txt"
check "sync report: the failed step" grep -q -E '^ +agent +check +[0-9.]+ m?s +failed$' \
    "$WORK/out.txt"
check "sync report: each row a check returned" \
    grep -q -F 'query 1 (line 3): id=17, email=alice@example.com' "$WORK/out.txt"
check "sync report: the failures counted" grep -q -F 'check failures (2 shown of 2)' \
    "$WORK/out.txt"
"$P" sync prod-db1/appdb --to stage-db1/appdb --sanitize app-anonymize --wait --json \
    >"$WORK/sync.json" 2>/dev/null
check "sync --wait --json: the final restore" test "$(jq -r '[.kind, .state, .step] | join(" ")' \
    "$WORK/sync.json")" = "sync complete done"
check "sync --wait --json: the backup it made and restored" test "$(jq -r \
    '.report.coordinator_steps[0].backup_id == .source_backup_id and .source_backup_id != null' \
    "$WORK/sync.json")" = true
check "sync --wait --json: rows per table" \
    test "$(jq -r '.report.tables[0].rows' "$WORK/sync.json")" = 50000
"$P" sync prod-db1/appdb --to stage-db1/appdb --from-latest --sanitize app-anonymize --json \
    >"$WORK/latest.json" 2>/dev/null
check "sync --from-latest restores AGENT/DB@latest" \
    test "$(jq -r .source "$WORK/latest.json")" = "prod-db1/appdb@latest"
expect_rc "restore --wait --timeout gives up and says so" 1 "gave up waiting after 1 s" \
    $R --to stage-db1/appdb --sanitize slow-anonymize --wait --timeout 1
"$P" restore "$id_complete" --to stage-db1/appdb --sanitize slow-anonymize --wait \
    >"$WORK/out.txt" 2>"$WORK/err.txt" &
cpid=$!
sleep 0.8
kill -INT "$cpid"
rc=0
wait "$cpid" || rc=$?
check "restore --wait stopped by SIGINT exits 130" test "$rc" -eq 130
check "restore --wait stopped: says the restore goes on" grep -q "goes on (pgship restores" \
    "$WORK/err.txt"

# the history
"$P" restores >"$WORK/restores.txt"
check "restores: the header" grep -q -E \
    '^ID +CREATED +BY +SOURCE +TARGET +PROFILE +RESULT +TOOK +ROWS$' "$WORK/restores.txt"
check "restores: the failed sync with its step" grep -q -E \
    ' api +prod-db1/appdb +stage-db1/appdb +broken-check +failed in check +[0-9.]+ m?s +170000$' \
    "$WORK/restores.txt"
check "restores: the complete restore" grep -q -E \
    " api +$id_complete +prod-db1/appdb +- +complete +[0-9.]+ m?s +170000$" "$WORK/restores.txt"
check "restores: newest first" test "$(sed -n 2p "$WORK/restores.txt" | cut -d' ' -f1)" = \
    "$("$P" restores --json | jq -r '.[0].id')"
"$P" restores --json >"$WORK/restores.json"
check "restores --json: an array of restores" test "$(jq -r '[length >= 8, (.[] | has("id",
    "kind", "state", "requested_by", "source", "target_agent", "profile", "report"))] | all' \
    "$WORK/restores.json")" = true
expect_rc "restores --limit 1 says there are more" 0 "there are more restores" \
    "$P" restores --limit 1
check "restores --limit 1 shows one" test "$(wc -l <"$WORK/out.txt")" -eq 2
"$P" restores "$rid" >"$WORK/one.txt"
check "restores ID: its report" grep -q -E "^restore +$rid$" "$WORK/one.txt"
check "restores ID --json" test "$("$P" restores "$rid" --json | jq -r .id)" = "$rid"

# the coordinator goes away
kill "$SERVE_PID"
wait "$SERVE_PID" 2>/dev/null
SERVE_PID=
expect_rc "a stopped coordinator exits 3" 3 "cannot reach the coordinator" "$P" agents
check "the token never reaches the coordinator's log" \
    bash -c "! grep -q -F -- '$PGSHIP_TOKEN' '$WORK/serve.log'"

check_summary api_client
