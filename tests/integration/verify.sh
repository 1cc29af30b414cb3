#!/usr/bin/env bash
# Verifications end to end with the real parts: a PostgreSQL 15 cluster on loopback, two
# pgship-agent daemons dialing a pgship-coordinator over nng TLS, fs storage, the pgship client.
#
#   plain:        `pgship verify ID --wait` passes on the backup's own agent (it holds the key):
#                 every chunk authenticated, the checksum list, the object's SHA-256 (the
#                 catalog's); no database is created
#   restore test: `--restore-test` restores into a scratch database, reports exact row counts for
#                 every table (equal to the source's), and the scratch database is gone after
#   recorded:     pgship show --json has verified_at and verify_result; pgship verifications
#                 lists them; pgship ls flags the backup
#   another agent: a backup whose own agent holds no key is verified by one that does
#   damage:       a byte flipped in the stored object fails verify (exit 1) naming the chunk; a
#                 restore test of it fails too and leaves no scratch database; restored, it
#                 passes again
#   crash:        kill -9 of the agent mid restore test fails the verification; the agent's next
#                 start drops the scratch database it left
#   no key:       with no connected agent holding a key, verify is refused saying so
# usage: verify.sh BINDIR
set -euo pipefail
BIN=$(cd "${1:?usage: verify.sh BINDIR}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
export FLEET_BIN_DIR=$BIN
source "$HERE/lib/pgcluster.sh"
source "$HERE/lib/fleet.sh"

WORK=$(mktemp -d /tmp/pgship-verify.XXXXXX)
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

json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {"d": d}))' "$1"; }
q() { pgc_psql "$PORT" "$1" -XAtq -c "$2"; }
scratch_dbs() { q postgres "SELECT count(*) FROM pg_database WHERE datname LIKE 'pgship\_verify\_%'"; }
t0=$SECONDS

# --- one cluster: appdb (the fixture, and enough incompressible rows for several 1 MiB chunks)
PORT=$(pgc_free_port)
pgc_start "$WORK/pg" "$PORT" >/dev/null
pgc_psql "$PORT" postgres -q -c "CREATE DATABASE appdb" -c "CREATE DATABASE other"
pgc_psql "$PORT" appdb -q -f "$HERE/sql/fixture.sql" >/dev/null
pgc_psql "$PORT" appdb -q -c "CREATE TABLE public.noise AS SELECT g AS id,
    md5(g::text) || md5((g * 7)::text) AS junk FROM generate_series(1, 200000) g" \
    -c "CREATE TABLE public.empty_one (id int)"
pgc_psql "$PORT" other -q -c "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 4321) g"
# every ordinary table's exact row count: what a restore test must report
pgc_psql "$PORT" appdb -XAtq -F '|' -c "SELECT n.nspname, c.relname,
    (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM ONLY %I.%I',
                                                n.nspname, c.relname), false, true, '')))[1]::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
    ORDER BY 1, 2" >source_counts.txt

# --- keys: db1 seals to ops and holds ops's key; db2 seals to ops too but holds no key at all
fleet_certs tls >/dev/null
fleet_recipient keys ops >/dev/null
for a in db1 db2; do fleet_identity keys "$a" >/dev/null; done
# window 1: the coordinator reads at most a piece or two ahead of the agent, so a damaged chunk
# in the middle of the object is met by the agent's own checks before the object's end
fleet_coordinator_conf coordinator.conf tls state --agent db1 keys/db1.pub --agent db2 keys/db2.pub \
    --storage-fs "$WORK/archive" --set window=1
fleet_agent_conf db1.conf db1 tls keys/db1.key --recipient keys/ops.pub \
    --db appdb prod "$(pgc_conninfo "$PORT" appdb)" --set "restore_keys=$WORK/keys/ops.key"
fleet_agent_conf db2.conf db2 tls keys/db2.key --recipient keys/ops.pub \
    --db other test "$(pgc_conninfo "$PORT" other)"
fleet_start_coordinator coordinator.conf coord.log
for a in db1 db2; do
    fleet_start_agent "$a.conf" "$a.log"
    fleet_wait_agent "$a" 30 >/dev/null
done

fleet_client backup db1/appdb --wait --json >b1.json 2>b1.err
ID=$(json 'd["id"]' <b1.json)
SHA=$(json 'd["sha256"]' <b1.json)
check "a backup to verify ($(json 'd["size_bytes"]' <b1.json) bytes)" \
    test "$(json 'd["state"]' <b1.json)" = complete
OBJ=$(find "$WORK/archive" -name "$ID.pgship")
check "its object is in fs storage" test -f "$OBJ"
check "a new backup has no verify_result" \
    test "$(fleet_client show "$ID" --json | json 'd["verify_result"]')" = None

# ===================== plain =====================
rc=0
fleet_client verify "$ID" --wait >v1.out 2>v1.err || rc=$?
check "pgship verify --wait passes (exit $rc)" test "$rc" -eq 0
check "... and says what it checked" grep -q "chunks (of 1.0 MiB) authenticated" v1.out
check "... on the backup's own agent" grep -Eq "^agent +db1" v1.out
fleet_client verify "$ID" --wait --json >v1.json 2>/dev/null
check "the JSON result is ok" test "$(json 'd["state"]' <v1.json)" = ok
check "every chunk was authenticated (several: $(json 'd["report"]["archive"]["chunks"]' <v1.json))" \
    test "$(json 'd["report"]["archive"]["chunks"] >= 3' <v1.json)" = True
check "the checksum list covered every member" \
    test "$(json 'd["report"]["archive"]["members"] >= 4' <v1.json)" = True
check "the whole object's SHA-256 is the catalog's" \
    test "$(json 'd["report"]["object"]["sha256"]' <v1.json)" = "$SHA"
check "no restore test, no scratch database" \
    test "$(json 'd["report"].get("scratch_database")' <v1.json)" = None
check "no database was created" test "$(scratch_dbs)" = 0

# ===================== restore test =====================
rc=0
fleet_client verify "$ID" --restore-test --wait --json >v2.json 2>v2.err || rc=$?
check "pgship verify --restore-test --wait passes (exit $rc)" test "$rc" -eq 0
python3 - "$WORK/source_counts.txt" "$WORK/v2.json" >counts.diff 2>&1 <<'EOF' || true
import json, sys
d = json.load(open(sys.argv[2], encoding="utf-8"))
rep = d["report"]
got = {(t["schema"], t["name"]): t["rows"] for t in rep["tables"]}
want = {}
for line in open(sys.argv[1], encoding="utf-8"):
    s, n, c = line.rstrip("\n").split("|")
    want[(s, n)] = int(c)
bad = [f"{k}: got {got.get(k)}, want {v}" for k, v in sorted(want.items()) if got.get(k) != v]
bad += [f"{k}: not in the source" for k in got if k not in want]
if rep["tables_total"] != len(want) or rep["rows_total"] != sum(want.values()):
    bad.append(f"totals {rep['tables_total']}/{rep['rows_total']}, want {len(want)}/{sum(want.values())}")
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
check "the row count of every table equals the source's ($(wc -l <source_counts.txt) tables)" \
    test ! -s counts.diff
check "... public.noise has its 200000 rows" \
    test "$(json '[t["rows"] for t in d["report"]["tables"] if t["name"] == "noise"]' <v2.json)" = "[200000]"
check "... and the empty table 0" \
    test "$(json '[t["rows"] for t in d["report"]["tables"] if t["name"] == "empty_one"]' <v2.json)" = "[0]"
SCRATCH=$(json 'd["report"]["scratch_database"]' <v2.json)
check "the scratch database ($SCRATCH) was dropped, says the report" \
    test "$(json 'd["report"]["scratch_dropped"]' <v2.json)" = True
check "... and it is gone from pg_database" test "$(scratch_dbs)" = 0
check "the report names the steps, drop last" \
    test "$(json '[s["name"] for s in d["report"]["steps"]][-1]' <v2.json)" = drop
fleet_client verify "$ID" --restore-test --wait >v3.out 2>v3.err || true
check "the human report lists the tables with their rows" grep -Eq "^public\.noise +200000$" v3.out

# ===================== recorded =====================
fleet_client show "$ID" --json >show1.json
check "pgship show --json: verify_result ok" test "$(json 'd["verify_result"]' <show1.json)" = ok
check "pgship show --json: verified_at set" test "$(json 'd["verified_at"] is not None' <show1.json)" = True
fleet_client verifications --backup "$ID" --json >list1.json
check "pgship verifications --backup lists the 4 of them" test "$(json 'len(d)' <list1.json)" = 4
check "... with and without restore tests" \
    test "$(json 'sorted(v["restore_test"] for v in d)' <list1.json)" = "[False, False, True, True]"
fleet_client verifications >list1.txt
check "pgship verifications prints the history" grep -q "$ID" list1.txt
VID=$(json 'd[0]["id"]' <list1.json)
fleet_client verifications "$VID" >one.txt
check "pgship verifications ID shows one" grep -Eq "^state +ok" one.txt

# ===================== another agent =====================
fleet_client backup db2/other --wait --json >b2.json 2>/dev/null
ID2=$(json 'd["id"]' <b2.json)
fleet_client verify "$ID2" --restore-test --wait --json >v4.json 2>v4.err || true
check "a backup whose agent holds no key is verified by one that does" \
    test "$(json 'd["state"] + " " + d["agent"]' <v4.json)" = "ok db1"
check "... its restore test counted its table" \
    test "$(json '[t["rows"] for t in d["report"]["tables"]]' <v4.json)" = "[4321]"
check "... and left no scratch database" test "$(scratch_dbs)" = 0

# ===================== damage =====================
cp "$OBJ" "$WORK/object.orig"
python3 - "$OBJ" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1500000)  # inside chunk 1 (chunks are 1 MiB of plaintext)
    b = f.read(1)
    f.seek(1500000)
    f.write(bytes([b[0] ^ 0x01]))
EOF
expect_fail "a flipped byte fails verify, naming the chunk" \
    "chunk 1 failed authentication" fleet_client verify "$ID" --wait
fleet_client show "$ID" --json >show2.json
check "pgship show --json: verify_result failed, with the reason" \
    grep -q '"verify_result": "failed: .*chunk 1 failed authentication' show2.json
fleet_client ls db1/appdb >ls2.txt
check "pgship ls flags the failed verification" grep -Eq "^$ID .* X( |$)" ls2.txt
rc=0
fleet_client verify "$ID" --restore-test --wait --json >v5.json 2>v5.err || rc=$?
check "a restore test of the damaged object fails (exit $rc)" test "$rc" -eq 1
check "... naming the chunk" grep -q "chunk 1 failed authentication" v5.err
check "... its scratch database dropped on the way out" \
    test "$(json 'd["report"].get("scratch_dropped")' <v5.json)" = True
check "... and gone from pg_database" test "$(scratch_dbs)" = 0
cp "$WORK/object.orig" "$OBJ"
rc=0
fleet_client verify "$ID" --wait >/dev/null 2>&1 || rc=$?
check "restored, the object verifies again (exit $rc)" test "$rc" -eq 0
check "... and the backup says ok again" \
    test "$(fleet_client show "$ID" --json | json 'd["verify_result"]')" = ok

# ===================== crash =====================
VID=$(fleet_client verify "$ID" --restore-test 2>/dev/null)
for _ in $(seq 1 150); do [ "$(scratch_dbs)" = 0 ] || break; sleep 0.1; done
check "a restore test under way has its scratch database" test "$(scratch_dbs)" = 1
kill -9 "${FLEET_AGENT_PID[db1]}"
wait "${FLEET_AGENT_PID[db1]}" 2>/dev/null || true
vstate() { fleet_client verifications "$VID" --json | json 'd["state"] + ": " + str(d["error"])'; }
for _ in $(seq 1 100); do [[ $(vstate) != failed* ]] || break; sleep 0.2; done
check "killed mid restore test, the verification fails ($(vstate))" \
    grep -q "^failed: .*connection to the agent was lost" <<<"$(vstate)"
fleet_start_agent db1.conf db1-restart.log
fleet_wait_agent db1 30 >/dev/null
check "the agent's next start dropped the scratch database it left" test "$(scratch_dbs)" = 0
check "... and said so" grep -q "dropped database pgship_verify_" db1-restart.log

# ===================== no key =====================
expect_fail "an unknown backup is refused" "no backup 20200101T000000Z-00000000" \
    fleet_client verify 20200101T000000Z-00000000
count=$(fleet_client verifications --backup "$ID" --json | json 'len(d)')
_fleet_stop "${FLEET_AGENT_PID[db1]}"
unset 'FLEET_AGENT_PID[db1]'
expect_fail "with no connected agent holding a key, verify is refused saying so" \
    "no connected agent holds a key of backup $ID" fleet_client verify "$ID" --wait
check "the refused request left no verification behind" \
    test "$(fleet_client verifications --backup "$ID" --json | json 'len(d)')" = "$count"

fleet_stop_all
check "SIGTERM stops the fleet cleanly" test $? -eq 0
echo "verify.sh took $((SECONDS - t0)) s"
check_summary verify
