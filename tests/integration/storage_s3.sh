#!/usr/bin/env bash
# Integration test of the S3 storage backend with real parts: s3rver (npm) on loopback, behind a
# proxy that checks every request's SigV4 signature with botocore (lib/sigv4_proxy.py), driven by
# storage_tool (the storage API on the command line). Objects are read back both with the storage
# API and with rclone from Debian, an independent S3 client, and compared by SHA-256.
#
#   single PUT; multipart of ~23 MiB in 5 MiB parts, 4 in flight; memory bounded by the parts
#   while a 64 MiB stream goes through; list; delete; an aborted multipart upload leaves nothing;
#   virtual-host style; every request kind verifies, a wrong secret gets a clear 403, and the
#   proxy refuses what libcurl alone would send; s3rver killed mid-upload: retries are logged,
#   the upload fails, and after a restart on the same directory no object is visible.
#
# usage: storage_s3.sh BINDIR     (BINDIR holds storage_tool)
set -Eeuo pipefail

BIN=$(cd "${1:?usage: storage_s3.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib/s3rver.sh"
PY=/usr/bin/python3 # Debian's, which has python3-botocore

for need in rclone curl "$PY"; do
    command -v "$need" >/dev/null || { echo "missing $need: run deploy/setup.sh" >&2; exit 1; }
done
"$PY" -c 'import botocore' 2>/dev/null || { echo "missing python3-botocore: run deploy/setup.sh" >&2; exit 1; }
s3rver_bin >/dev/null

WORK=$(mktemp -d /tmp/pgship-s3-it.XXXXXX)
PROXY_PID=
cleanup() {
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null
    s3rver_stop "$WORK/s3"
    # This test's own background jobs (producer, uploads), should it have stopped half-way.
    local j
    for j in $(jobs -p); do kill "$j" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
# A command outside check() that fails ends the test (set -e): say which, on the test's own
# stdout (fd 3), not into the command's redirection.
exec 3>&1
trap 'echo "FAILED: line $LINENO: $BASH_COMMAND (exit $?)" >&3' ERR
cd "$WORK"

passed=0 failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
# expect_fail WHAT PATTERN CMD...: CMD must exit non-zero and print PATTERN on stderr.
expect_fail() {
    local what=$1 pattern=$2; shift 2
    local rc=0
    "$@" >out.txt 2>err.txt || rc=$?
    if [ "$rc" -ne 0 ] && grep -q -E -- "$pattern" err.txt; then
        ok "$what (exit $rc: $(grep -m1 -E -- "$pattern" err.txt | cut -c1-160))"
    else
        bad "$what: exit $rc, stderr: $(head -c 800 err.txt)"
    fi
}

start=$(date +%s)
echo S3RVER >secret # s3rver's fixed account; the proxy checks signatures with the same secret
echo not-the-secret >wrong-secret
S3PORT=$(s3rver_free_port)
s3rver_start "$WORK/s3" "$S3PORT" pgship
"$PY" "$HERE/lib/sigv4_proxy.py" --port-file proxy.port --upstream "127.0.0.1:$S3PORT" \
    --access-key-id S3RVER --secret-file secret --log proxy.log &
PROXY_PID=$!
for _ in $(seq 1 100); do [ -f proxy.port ] && break; sleep 0.1; done
PPORT=$(cat proxy.port)

COMMON=(--type s3 --bucket pgship --prefix it --access-key-id S3RVER --part-size-mib 5
        --parallel-parts 4)
tool() { "$BIN/storage_tool" "${COMMON[@]}" --endpoint "http://127.0.0.1:$PPORT" --path-style \
         --secret-file secret "$@"; }
direct() { "$BIN/storage_tool" "${COMMON[@]}" --endpoint "http://127.0.0.1:$S3PORT" --path-style \
           --secret-file secret "$@"; }
# rclone straight to s3rver: an independent client. This machine may set AWS_CA_BUNDLE, which
# rclone refuses for plain http.
rcl() { env -u AWS_CA_BUNDLE RCLONE_CONFIG=/dev/null RCLONE_CONFIG_S3IT_TYPE=s3 \
        RCLONE_CONFIG_S3IT_PROVIDER=Other RCLONE_CONFIG_S3IT_ENDPOINT="http://127.0.0.1:$S3PORT" \
        RCLONE_CONFIG_S3IT_ACCESS_KEY_ID=S3RVER RCLONE_CONFIG_S3IT_SECRET_ACCESS_KEY=S3RVER \
        RCLONE_CONFIG_S3IT_FORCE_PATH_STYLE=true RCLONE_CONFIG_S3IT_REGION=us-east-1 rclone "$@"; }
visible() { rcl lsf -R --files-only s3it:pgship/it/ | grep -q -x -F -- "$1"; }
not_visible() { ! visible "$1"; }
lacks() { ! grep -q -- "$1" "$2"; } # lacks PATTERN FILE

# --- single PUT
head -c 100000 /dev/urandom >small.bin
tool put small.bin prod/agent1/db1/0001.manifest.json >put.out
check "put: storage_put reports the file's sha256" grep -q "sha256 $(sha small.bin) size 100000" put.out
check "put: rclone reads the same bytes" \
    test "$(rcl cat s3it:pgship/it/prod/agent1/db1/0001.manifest.json | sha256sum | cut -d' ' -f1)" = "$(sha small.bin)"
check "put: one PUT without multipart" \
    grep -q -x "ok PUT /pgship/it/prod/agent1/db1/0001.manifest.json" proxy.log

# --- a streamed upload smaller than one part is a single PUT too
head -c 3000000 /dev/urandom >onepart.bin
tool upload-stream prod/agent1/db1/0002.pgship <onepart.bin >onepart.out
check "small stream: commit reports sha256 and size" \
    grep -q "sha256 $(sha onepart.bin) size 3000000" onepart.out
check "small stream: sent as one PUT" grep -q -x "ok PUT /pgship/it/prod/agent1/db1/0002.pgship" proxy.log
check "small stream: no multipart upload created" lacks "0002.pgship?uploads" proxy.log

# --- multipart: ~23 MiB in 5 MiB parts, 4 in flight
head -c $((23 * 1048576 + 4321)) /dev/urandom >big.bin
t0=$(date +%s.%N)
tool upload-stream prod/agent1/db1/0003.pgship <big.bin >big.out
t1=$(date +%s.%N)
echo "   (multipart upload of 23 MiB through the proxy: $(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s)"
check "multipart: commit reports the input's sha256 and size" \
    grep -q "sha256 $(sha big.bin) size $((23 * 1048576 + 4321))" big.out
check "multipart: 5 parts sent" test "$(grep -c '0003.pgship?partNumber=' proxy.log)" -eq 5
tool get prod/agent1/db1/0003.pgship big.back >get.out
check "multipart: storage_get reads back the same sha256" test "$(sha big.back)" = "$(sha big.bin)"
check "multipart: storage_get reports it too" grep -q "sha256 $(sha big.bin)" get.out
check "multipart: rclone reads back the same sha256" \
    test "$(rcl cat s3it:pgship/it/prod/agent1/db1/0003.pgship | sha256sum | cut -d' ' -f1)" = "$(sha big.bin)"

# --- memory: a 64 MiB stream with 5 MiB parts, 4 in flight, stays within 5 x 5 MiB of buffers
# Started without a shell function around it, so that $! is storage_tool itself.
"$BIN/storage_tool" "${COMMON[@]}" --endpoint "http://127.0.0.1:$S3PORT" --path-style \
    --secret-file secret upload-stream prod/agent1/db1/0004.pgship \
    < <(head -c $((64 * 1048576)) /dev/urandom) >stream.out 2>stream.err &
tpid=$!
peak=0
while kill -0 "$tpid" 2>/dev/null; do
    rss=$(awk '/^VmHWM/ {print $2}' "/proc/$tpid/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss
    sleep 0.05
done
wait "$tpid" || true
check "stream of 64 MiB: committed, 64 MiB stored" grep -q "size $((64 * 1048576))\$" stream.out
# 5 part buffers of 5 MiB (25 MiB) on top of ~11 MiB for the program, libcurl and OpenSSL (a
# small put peaks there); holding the stream would need 64 MiB more.
check "stream of 64 MiB: peak RSS ${peak} KiB stays under 25 + 20 MiB" test "$peak" -lt $((45 * 1024))
rcl lsl s3it:pgship/it/prod/agent1/db1/0004.pgship >rlsl.out
check "stream of 64 MiB: rclone sees the size" grep -q '^ *67108864 ' rlsl.out

# --- list
tool list prod/ >list.out
check "list: every object with its size" bash -c \
    "grep -q -x '100000 prod/agent1/db1/0001.manifest.json' list.out &&
     grep -q -x '3000000 prod/agent1/db1/0002.pgship' list.out &&
     grep -q -x '$((23 * 1048576 + 4321)) prod/agent1/db1/0003.pgship' list.out &&
     test \$(wc -l <list.out) -eq 4"
tool list prod/agent1/db1/0003 >list1.out
check "list: a partial prefix selects one object" test "$(cat list1.out)" = "$((23 * 1048576 + 4321)) prod/agent1/db1/0003.pgship"
tool list staging/ >list2.out
check "list: an empty prefix lists nothing" test ! -s list2.out

# --- delete
tool delete prod/agent1/db1/0003.pgship
tool list prod/ >list3.out
check "delete: gone from the listing" lacks 0003 list3.out
check "delete: rclone no longer sees it" not_visible prod/agent1/db1/0003.pgship
expect_fail "get of a deleted object: not found" "HTTP 404 NoSuchKey.*not found" \
    tool get prod/agent1/db1/0003.pgship gone.bin
check "get of a deleted object leaves no output file" test ! -e gone.bin
check "delete of a missing object succeeds" tool delete prod/agent1/db1/0003.pgship

# --- abort: parts were stored, but no object appears
# 12 MiB, then a pause before the end of input, so that parts 1 and 2 are stored before the abort
# (the third, last part is never sent).
{ head -c $((12 * 1048576)) /dev/urandom; sleep 1; } | tool upload-abort prod/agent1/db1/0005.pgship 2>abort.err
check "abort: a multipart upload was created" grep -q 'ok POST /pgship/it/prod/agent1/db1/0005.pgship?uploads=' proxy.log
check "abort: parts were stored before the abort" grep -q '0005.pgship?partNumber=2' proxy.log
check "abort: AbortMultipartUpload was asked for" grep -q 'ok DELETE /pgship/it/prod/agent1/db1/0005.pgship?uploadId=' proxy.log
check "abort: s3rver's 405 is logged as unsupported" grep -q "does not support aborting multipart uploads" abort.err
tool list "" >list4.out
check "abort: no object in the storage listing" lacks 0005 list4.out
check "abort: rclone sees no object" not_visible prod/agent1/db1/0005.pgship

# --- virtual-host style (pgship.s3.localhost; libcurl resolves *.localhost to loopback)
"$BIN/storage_tool" "${COMMON[@]}" --endpoint "http://s3.localhost:$PPORT" --secret-file secret \
    upload big.bin vhost/agent2/db/0001.pgship >vhost.out
check "virtual-host: multipart upload stored the input" \
    test "$(rcl cat s3it:pgship/it/vhost/agent2/db/0001.pgship | sha256sum | cut -d' ' -f1)" = "$(sha big.bin)"
check "virtual-host: requests went to /<key> with the bucket in Host" \
    grep -q 'ok PUT /it/vhost/agent2/db/0001.pgship?partNumber=1' proxy.log

# --- signatures: every kind of request verified, none refused so far
for kind in "PUT /pgship/it/prod/agent1/db1/0001.manifest.json\$" "POST .*[?]uploads=\$" \
            "PUT .*[?]partNumber=[0-9]+&uploadId=" "POST .*[?]uploadId=" "GET /pgship/it/prod/" \
            "GET /pgship[?]list-type=2&max-keys=1000&prefix=it%2Fprod%2F\$" \
            "DELETE /pgship/it/prod/agent1/db1/0003.pgship\$" "DELETE .*[?]uploadId="; do
    check "signature verified by botocore: $kind" grep -q -E "^ok $kind" proxy.log
done
check "signature: no request was refused" lacks "^bad" proxy.log
expect_fail "signature: a wrong secret gets a clear 403, without retries" \
    "HTTP 403 SignatureDoesNotMatch.*\(1 attempt\).*authentication failed" \
    "$BIN/storage_tool" "${COMMON[@]}" --endpoint "http://127.0.0.1:$PPORT" --path-style \
    --secret-file wrong-secret put small.bin prod/agent1/db1/0009.manifest.json
check "signature: the proxy logged the refusal" grep -q "^bad PUT /pgship/it/prod/agent1/db1/0009" proxy.log
# The proxy must be able to fail: libcurl's signer alone (no x-amz-content-sha256, the query
# signed in the order given) is refused. The secret goes in a curl config file, not argv.
printf 'user = "S3RVER:S3RVER"\n' >curl.conf
code=$(curl -s -o /dev/null -w '%{http_code}' -K curl.conf --aws-sigv4 aws:amz:us-east-1:s3 \
       "http://127.0.0.1:$PPORT/pgship/it/prod/agent1/db1/0001.manifest.json")
check "proxy refuses a request without x-amz-content-sha256 (HTTP $code)" test "$code" = 403
code=$(curl -s -o /dev/null -w '%{http_code}' -K curl.conf --aws-sigv4 aws:amz:us-east-1:s3 \
       -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
       "http://127.0.0.1:$PPORT/pgship?prefix=it&list-type=2")
check "proxy refuses a query signed unsorted (HTTP $code)" test "$code" = 403
code=$(curl -s -o /dev/null -w '%{http_code}' -K curl.conf --aws-sigv4 aws:amz:us-east-1:s3 \
       -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
       "http://127.0.0.1:$PPORT/pgship?list-type=2&prefix=it")
check "proxy accepts the same query signed sorted (HTTP $code)" test "$code" = 200

# --- s3rver killed mid-upload: a slow producer on a fifo, s3rver dies while parts go out
mkfifo producer.fifo
( for _ in $(seq 1 300); do head -c 1048576 /dev/urandom || exit 0; sleep 0.05; done ) \
    >producer.fifo 2>/dev/null &
prod_pid=$!
( trap - ERR; direct --max-attempts 4 --retry-base-ms 200 upload-stream \
    prod/agent1/db1/0006.pgship <producer.fifo >kill.out 2>kill.err ) &
tpid=$!
sleep 2.5
s3_pid=$(cat "$WORK/s3.pid")
{ kill -9 "$s3_pid"; wait "$s3_pid"; } 2>/dev/null || true
rc=0
wait "$tpid" || rc=$?
kill "$prod_pid" 2>/dev/null || true
wait "$prod_pid" 2>/dev/null || true
check "killed s3rver: storage_tool exits non-zero (exit $rc)" test "$rc" -ne 0
check "killed s3rver: retries were logged" grep -q "retrying in .* (attempt 2 of 4)" kill.err
check "killed s3rver: the error names the request and the attempts" \
    grep -q -E "error: s3 (PUT|POST) it/prod/agent1/db1/0006.pgship.*\(4 attempts\)" kill.err
check "killed s3rver: no commit was reported" test ! -s kill.out
echo "   ($(grep -c 'retrying in' kill.err) retries logged; last: $(grep error: kill.err | cut -c1-150))"
rm -f "$WORK/s3.pid"
s3rver_start "$WORK/s3" "$S3PORT" pgship
direct list "" >after.out
check "killed s3rver: after a restart on the same directory, no object 0006" lacks 0006 after.out
check "killed s3rver: rclone sees no object 0006 either" not_visible prod/agent1/db1/0006.pgship
check "killed s3rver: the objects stored before are all still there" \
    grep -q -x '100000 prod/agent1/db1/0001.manifest.json' after.out

echo "storage_s3: $(( $(date +%s) - start )) s"
echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then exit 1; fi
