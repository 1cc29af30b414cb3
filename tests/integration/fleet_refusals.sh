#!/usr/bin/env bash
# The coordinator refuses who it must and survives what it is sent, with a real daemon over real
# nng TLS on loopback: an unknown identity, a key that is not the configured one, a bad signature,
# a second agent claiming a connected name, a client certificate from another CA (tls_ca set),
# malformed and oversize frames, a reply type sent as a request, POLL before the handshake. Every
# refusal is logged with its reason; an authenticated agent that stays connected throughout is
# still served at the end, and the daemon stops cleanly on SIGTERM.
# usage: fleet_refusals.sh BINDIR
set -euo pipefail
BIN=$(cd "${1:?usage: fleet_refusals.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d /tmp/pgship-refusals.XXXXXX)
COORD_PID=
cleanup() {
    [ -n "$COORD_PID" ] && kill -9 "$COORD_PID" 2>/dev/null || true
    jobs -p | xargs -r kill 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
source "$HERE/lib/check.sh"
cd "$WORK"

"$ROOT/deploy/make-certs.sh" tls --client a1 >/dev/null 2>&1
"$ROOT/deploy/make-certs.sh" other --client a1 >/dev/null 2>&1
for n in a1 a2 intruder; do "$BIN/pgship" keygen --identity "$n" >/dev/null 2>&1; done
pubkey() { grep -v '^#' "$1.pub"; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >coordinator.conf <<EOF
[coordinator]
listen = tls+tcp://127.0.0.1:$PORT
tls_cert = $WORK/tls/coordinator.crt
tls_key = $WORK/tls/coordinator.key
tls_ca = $WORK/tls/ca.crt
api_listen = off
catalog = $WORK/catalog.db
[storage]
type = fs
path = $WORK/store
[agent a1]
public_key = $(pubkey a1)
[agent a2]
public_key = $(pubkey a2)
EOF
check "--check-config accepts the file" "$BIN/pgship-coordinator" -c coordinator.conf --check-config
"$BIN/pgship-coordinator" -c coordinator.conf 2>coord.log &
COORD_PID=$!
for _ in $(seq 50); do grep -q "ready" coord.log && break; sleep 0.1; done
check "the coordinator says it is ready" grep -q "ready" coord.log

URL=tls+tcp://127.0.0.1:$PORT
peer() { "$BIN/wire_peer" "$URL" "$@" --ca tls/ca.crt --server-name localhost --cert tls/a1.crt --key tls/a1.key; }

# a2 connects properly and stays connected while the rest goes on
peer auth --agent a2 --identity a2.key --hold 30 >held.out &
HELD=$!
for _ in $(seq 50); do grep -q welcome held.out 2>/dev/null && break; sleep 0.1; done
check "a configured agent with its key is welcomed" grep -q welcome held.out

r=$(peer auth --agent intruder --identity intruder.key)
check "an unknown agent is refused ($r)" test "${r#refused }" != "$r"
check "... and logged with its key id" grep -q "refused agent intruder .*no \[agent\] section" coord.log
r=$(peer auth --agent a1 --identity intruder.key)
check "a known name with another identity key is refused ($r)" grep -q "identity key is not" <<<"$r"
r=$(peer badsig --agent a1 --identity a1.key)
check "a signature over another nonce is refused ($r)" grep -q "bad signature" <<<"$r"
r=$(peer auth --agent a2 --identity a2.key)
check "a second agent claiming a connected name is refused ($r)" grep -q "already connected" <<<"$r"
check "... and logged" grep -q "refused agent a2 .*already connected" coord.log

r=$("$BIN/wire_peer" "$URL" auth --agent a1 --identity a1.key --ca tls/ca.crt \
    --server-name localhost --cert other/a1.crt --key other/a1.key || true)
check "a client certificate from another CA gets no session ($r)" \
    grep -q -E "cannot connect|dropped" <<<"$r"
r=$("$BIN/wire_peer" "$URL" auth --agent a1 --identity a1.key --ca tls/ca.crt \
    --server-name localhost || true)
check "no client certificate when tls_ca is set gets no session ($r)" \
    grep -q -E "cannot connect|dropped" <<<"$r"
r=$("$BIN/wire_peer" "$URL" auth --agent a1 --identity a1.key --ca other/ca.crt \
    --server-name localhost --cert tls/a1.crt --key tls/a1.key || true)
check "an agent that does not trust the coordinator's CA does not talk to it ($r)" \
    grep -q "cannot connect" <<<"$r"

for mode in garbage oversize reply-type poll-first bad-json; do
    r=$(peer "$mode")
    check "$mode: the peer is dropped without a reply ($r)" test "$r" = dropped
done
check "malformed frames are logged with the reason" grep -q "malformed frame: not a pgship frame" coord.log
check "an unknown JSON field is named" grep -q 'unexpected field "extra"' coord.log
check "POLL before the handshake is logged" grep -q "POLL before authentication" coord.log
r=$(peer data-flood --agent a1 --identity a1.key)
check "DATA for a job never given is answered with an error ($r)" grep -q unknown_job <<<"$r"

check "the coordinator is still running" kill -0 "$COORD_PID"
check "the held agent is still connected" kill -0 "$HELD"
r=$(peer auth --agent a1 --identity a1.key)
check "and still welcomes a proper agent ($r)" test "$r" = welcome
kill "$HELD" 2>/dev/null || true

kill -TERM "$COORD_PID"
rc=0
wait "$COORD_PID" || rc=$?
COORD_PID=
check "SIGTERM stops the coordinator with status 0 (got $rc)" test "$rc" -eq 0
check "it logs that it stopped" grep -q "info: stopped" coord.log
check "every log line has the documented format" \
    bash -c '! grep -v -E "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{12}Z pgship-coordinator\[[0-9]+\] (error|warning|info|debug): " coord.log'
check_summary fleet_refusals
