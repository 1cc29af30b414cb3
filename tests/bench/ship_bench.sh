#!/usr/bin/env bash
# ship_bench.sh - benchmark a whole backup into S3: pgship end to end against the two ways people
# do it today.
#
# Starts a throwaway PostgreSQL 15 cluster with the text-heavy data set (tests/bench/textheavy.sql,
# made by tests/bench/lib.sh's gen_text, as in dump_bench.sh), two s3rver instances (plain HTTP,
# and HTTPS because pgBackRest speaks S3 over TLS only), then measures, interleaved, --runs times:
#   a) pg_dump -Fc to a file, then one PUT of the file with curl --aws-sigv4 (wall: dump + upload)
#   b) pgbackrest backup --type=full (compress-type=zst, compress-level=3, process-max=2) of the
#      whole cluster into the HTTPS s3rver, WAL archived by archive_command = archive-push
#   c) pgship backup AGENT/DB --wait --json through a real coordinator and agent (TLS between
#      them, S3 storage on the HTTP s3rver); skipped, with the reason, until the daemons and the
#      client can do it
# and prints one table with the median wall times, the bytes each stored in its bucket, and the
# goals. It is a benchmark, not a test: the exit status is 0 unless something errored.
#
# Run as root (the cluster and pgBackRest run as the `postgres` OS user). See --help.

# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
    cat <<'EOF'
usage: tests/bench/ship_bench.sh [OPTIONS]

Time a full backup of the text-heavy data set into S3 (s3rver) three ways:
pg_dump -Fc + curl PUT, pgBackRest full backup (zstd -3, 2 processes), and
pgship backup --wait (coordinator + agent), on a throwaway PostgreSQL 15 cluster.

  --scale F           size of the data set as a fraction of the default ~300 MB
                      (e.g. 0.1 for ~30 MB, for a quick try; default 1)
  --runs N            run every row N times, interleaved, and report the median
                      wall time and the largest RSS (default 3)
  --keep              keep the work directory (cluster data dir, buckets, logs);
                      every process is stopped on exit all the same
  --workdir DIR       work directory (default: a new mktemp dir under /tmp)
  -h, --help          this help

Environment:
  PGSHIP_COORDINATOR, PGSHIP_AGENT, PGSHIP_CLI   the pgship binaries (default
                      build/bin/pgship-coordinator, pgship-agent, pgship)
  PGSHIP_PGCLUSTER_LIB  cluster helper library
                      (default tests/integration/lib/pgcluster.sh)

Row (c) runs only when pgship-coordinator -c FILE --check-config, pgship-agent
-c FILE --check-config and `pgship backup --help` all work; otherwise it says
why it was skipped.

Columns: wall_s = median wall-clock seconds (row a: pg_dump + upload,
measured separately and added per run; runs_s lists every run); stored_MB = bytes the tool left in its bucket
for one backup / 1e6 (a: the object; b: the backup's files as pgBackRest
stored them plus the WAL segments it needs; c: the archive and its manifest);
peak_rss_MiB = GNU time %M, the largest process of the command's tree (for c:
the pgship client; the daemons' VmHWM are printed below the table).
EOF
}

BENCH_NAME=ship_bench
die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PG_DUMP=$PGBIN/pg_dump
PGC_LIB=${PGSHIP_PGCLUSTER_LIB:-$ROOT/tests/integration/lib/pgcluster.sh}
SQL=$ROOT/tests/bench/textheavy.sql
GNUTIME=/usr/bin/time
# shellcheck source=lib.sh
source "$ROOT/tests/bench/lib.sh"

SCALE=1
RUNS=3
KEEP=0
WORK=
BUCKET=bench
STANZA=bench
AGENT_NAME=bench-agent
DB=texty
# The goals pgship is built to meet (docs: DESIGN.md; the figures are the team's targets).
GOAL_VS_DUMP=3       # at least this many times faster than pg_dump -Fc + upload
GOAL_VS_PGBR=0.6     # at most this fraction of pgBackRest's time
GOAL_RSS_BASE=32     # coordinator peak RSS, MiB: base + per concurrent stream
GOAL_RSS_STREAM=32
STREAMS=1            # concurrent streams in row c

while [[ $# -gt 0 ]]; do
    case $1 in
        --scale) [[ $# -ge 2 ]] || die "$1 needs a value"; SCALE=$2; shift 2 ;;
        --scale=*) SCALE=${1#*=}; shift ;;
        --runs) [[ $# -ge 2 ]] || die "$1 needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --keep) KEEP=1; shift ;;
        --workdir) [[ $# -ge 2 ]] || die "$1 needs a value"; WORK=$2; shift 2 ;;
        --workdir=*) WORK=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
is_uint "$RUNS" || die "--runs must be a positive integer"
if [[ ! $SCALE =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] ||
    ! awk -v s="$SCALE" 'BEGIN { exit !(s > 0 && s <= 100) }'; then
    die "--scale must be a number above 0 (and at most 100)"
fi
# ~8 MB of an empty database is fixed cost; gen_text needs at least that.
TEXT_MB=$(awk -v s="$SCALE" 'BEGIN { m = int(300 * s + 0.5); print (m < 10 ? 10 : m) }')

[[ $(id -u) -eq 0 ]] || die "run as root (the cluster and pgBackRest run as the postgres OS user via runuser)"
[[ -x $PG_DUMP ]] || die "missing $PG_DUMP (postgresql-15)"
[[ -r $SQL ]] || die "missing $SQL"
[[ -r $PGC_LIB ]] || die "missing $PGC_LIB"
[[ -x $GNUTIME ]] || apt_install time
command -v pgbackrest >/dev/null 2>&1 || apt_install pgbackrest
command -v jq >/dev/null 2>&1 || apt_install jq
command -v curl >/dev/null 2>&1 || apt_install curl
PGBACKREST=$(command -v pgbackrest)

# shellcheck source=../integration/lib/pgcluster.sh
source "$PGC_LIB"
# shellcheck source=../integration/lib/s3rver.sh
source "$ROOT/tests/integration/lib/s3rver.sh"
# shellcheck source=../integration/lib/fleet.sh
source "$ROOT/tests/integration/lib/fleet.sh"
S3RVER=$(s3rver_bin) || die "s3rver is missing: run deploy/setup.sh"

# ---------------------------------------------------------------------------
# work directory and cleanup
bench_workdir pgship-shipbench
PGDIR=$WORK/pg
OUT=$WORK/out
LOGS=$WORK/logs
CERTS=$WORK/certs
S3_HTTP=$WORK/s3-http   # s3rver data: row a's object and row c's archives
S3_TLS=$WORK/s3-https   # s3rver data: row b's repository (and row a's HTTPS reference upload)
PGBR=$WORK/pgbackrest   # pgBackRest's config, logs, locks and spool, owned by postgres
FLEET=$WORK/fleet
mkdir -p -- "$OUT" "$LOGS" "$PGBR" "$FLEET"

# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local rc=$?
    set +e
    fleet_stop_all >/dev/null 2>&1
    s3rver_stop "$S3_HTTP"
    s3rver_stop "$S3_TLS"
    pgc_stop "$PGDIR" >/dev/null 2>&1
    if [[ $KEEP -eq 1 ]]; then
        echo "$BENCH_NAME: kept work directory $WORK (every process stopped)" >&2
    elif [[ $CREATED_WORK -eq 1 ]]; then
        rm -rf -- "$WORK"
    else
        rm -rf -- "$PGDIR" "$OUT" "$LOGS" "$CERTS" "$S3_HTTP" "$S3_TLS" "$PGBR" "$FLEET" \
            "$S3_HTTP.log" "$S3_TLS.log"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_nap_init

# s3_bytes DIR PREFIX: bytes of the objects whose keys start with PREFIX in s3rver data directory
# DIR's bucket (s3rver keeps each object's bytes in a file KEY._S3rver_object, metadata beside it).
s3_bytes() {
    local b=$1/$BUCKET
    find "$b" -type f -path "$b/$2*" -name '*._S3rver_object' -printf '%s\n' |
        awk '{ s += $1 } END { printf "%d\n", s }'
}

# ---------------------------------------------------------------------------
# object storage
echo "== certificates and s3rver (HTTP and HTTPS)"
fleet_certs "$CERTS" || die "fleet_certs failed"
S3_HTTP_PORT=$(s3rver_free_port)
S3_TLS_PORT=$(s3rver_free_port)
s3rver_start "$S3_HTTP" "$S3_HTTP_PORT" "$BUCKET" || die "s3rver (http) did not start"
s3rver_start_tls "$S3_TLS" "$S3_TLS_PORT" "$BUCKET" "$CERTS/coordinator.crt" "$CERTS/coordinator.key" \
    "$CERTS/ca.crt" || die "s3rver (https) did not start"
note_cmd "$(show_cmd "$S3RVER" --directory DIR --port PORT --address 127.0.0.1 --silent --service-endpoint localhost --configure-bucket "$BUCKET") [--cert coordinator.crt --key coordinator.key]   (s3rver $("$S3RVER" --version))"

# ---------------------------------------------------------------------------
# cluster and data
PORT=$(pgc_free_port)
echo "== starting cluster in $PGDIR on port $PORT"
# Generate with wal_level=minimal (fast, no WAL archive to fill), then restart with archiving.
pgc_start "$PGDIR" "$PORT" shared_buffers=512MB max_wal_size=4GB wal_level=minimal max_wal_senders=0
psql_q postgres -q -c "CREATE DATABASE $DB"
echo "== generating data: $DB ~${TEXT_MB} MB"
t=$(now)
gen_text "$DB" "$TEXT_MB" || die "generating $DB failed (logs above)"
psql_q postgres -q -c CHECKPOINT
echo "   $DB done in $(secs_since "$t") s"

PGBR_CONF=$PGBR/pgbackrest.conf
PGBR_ARCHIVE_CMD="$PGBACKREST --config=$PGBR_CONF --stanza=$STANZA archive-push %p"
pgc_stop "$PGDIR"
pgc_start "$PGDIR" "$PORT" shared_buffers=512MB max_wal_size=4GB wal_level=replica \
    archive_mode=on "archive_command=$PGBR_ARCHIVE_CMD"
note_cmd "pgc_start $PGDIR $PORT shared_buffers=512MB max_wal_size=4GB wal_level=replica archive_mode=on 'archive_command=$PGBR_ARCHIVE_CMD'  (data generated before with wal_level=minimal; pgcluster.sh also sets fsync=off synchronous_commit=off full_page_writes=off)"

DB_BYTES=$(db_bytes "$DB")
CLUSTER_BYTES=$(psql_q postgres -Atc "SELECT sum(pg_database_size(oid)) FROM pg_database")
echo "   db $DB: $(mb "$DB_BYTES") MiB; all databases of the cluster: $(mb "$CLUSTER_BYTES") MiB (pg_database_size)"
CONN=$(pgc_conninfo "$PORT" "$DB")

# ---------------------------------------------------------------------------
# pgBackRest: stanza on the HTTPS s3rver
echo "== pgBackRest $("$PGBACKREST" version | awk '{ print $2 }'): stanza-create, check"
cp -- "$CERTS/ca.crt" "$PGBR/ca.crt"
mkdir -p -- "$PGBR/log" "$PGBR/lock" "$PGBR/spool"
cat >"$PGBR_CONF" <<EOF
# written by tests/bench/ship_bench.sh
[global]
repo1-type=s3
repo1-path=/pgbackrest
repo1-s3-bucket=$BUCKET
# the certificate names localhost (pgBackRest checks DNS names); path style, as s3rver needs
repo1-s3-endpoint=localhost
repo1-storage-port=$S3_TLS_PORT
repo1-storage-ca-file=$PGBR/ca.crt
repo1-s3-uri-style=path
repo1-s3-region=us-east-1
repo1-s3-key=S3RVER
repo1-s3-key-secret=S3RVER
repo1-retention-full=1
compress-type=zst
compress-level=3
process-max=2
start-fast=y
log-path=$PGBR/log
lock-path=$PGBR/lock
spool-path=$PGBR/spool
log-level-console=warn
log-level-file=info

[$STANZA]
pg1-path=$PGDIR/data
pg1-port=$PORT
pg1-socket-path=$PGDIR
pg1-user=postgres
EOF
chown -R "$PGC_OSUSER:" -- "$PGBR"
chmod 600 -- "$PGBR_CONF"
pgbr() { runuser -u "$PGC_OSUSER" -- "$PGBACKREST" --config="$PGBR_CONF" --stanza="$STANZA" "$@"; }
pgbr stanza-create >"$LOGS/pgbr-stanza-create.log" 2>&1 \
    || { cat "$LOGS/pgbr-stanza-create.log" >&2; die "pgbackrest stanza-create failed"; }
pgbr check >"$LOGS/pgbr-check.log" 2>&1 \
    || { cat "$LOGS/pgbr-check.log" >&2; die "pgbackrest check failed (archive_command?)"; }
note_cmd "pgbackrest.conf: $(grep -v -e '^#' -e '^$' "$PGBR_CONF" | grep -v -e -key -e -path= | tr '\n' ' ')"
note_cmd "runuser -u postgres -- pgbackrest --config=$PGBR_CONF --stanza=$STANZA stanza-create; ... check"

# pgbr_stored RUNKEY: R_BYTES[RUNKEY] = the newest backup's repository size plus the WAL
# segments from its start to its stop (what a restore of it needs), as stored in the bucket.
pgbr_stored() {
    local key=$1 info label repo start stop wal
    info=$(pgbr info --output=json) || { R_ERR[$key]="pgbackrest info failed"; return; }
    label=$(jq -r '.[0].backup[-1].label' <<<"$info")
    repo=$(jq -r '.[0].backup[-1].info.repository.size' <<<"$info")
    start=$(jq -r '.[0].backup[-1].archive.start' <<<"$info")
    stop=$(jq -r '.[0].backup[-1].archive.stop' <<<"$info")
    wal=$(find "$S3_TLS/$BUCKET/pgbackrest/archive/$STANZA" -type f -name '*._S3rver_object' -printf '%f %s\n' \
        | awk -v a="$start" -v b="$stop" '{ seg = substr($1, 1, 24) } seg >= a && seg <= b { s += $2 }
                                           END { printf "%d\n", s }')
    R_BYTES[$key]=$((repo + wal))
    PGBR_DETAIL="backup $label: files $(awk -v r="$repo" 'BEGIN { printf "%.1f", r / 1e6 }') MB + WAL $start..$stop $(awk -v w="$wal" 'BEGIN { printf "%.2f", w / 1e6 }') MB; original size $(jq -r '.[0].backup[-1].info.size' <<<"$info" | awk '{ printf "%.1f", $1 / 1e6 }') MB"
}

# ---------------------------------------------------------------------------
# pgship fleet (row c)
HAVE_PGSHIP=1
PGSHIP_WHY=
COORD_CONF=$FLEET/coordinator.conf
AGENT_CONF=$FLEET/agent.conf
if [[ ! -x $FLEET_COORDINATOR ]]; then
    HAVE_PGSHIP=0; PGSHIP_WHY="pgship-coordinator not built ($FLEET_COORDINATOR missing)"
elif [[ ! -x $FLEET_AGENT ]]; then
    HAVE_PGSHIP=0; PGSHIP_WHY="pgship-agent not built ($FLEET_AGENT missing)"
elif [[ ! -x $FLEET_CLI ]]; then
    HAVE_PGSHIP=0; PGSHIP_WHY="pgship not built ($FLEET_CLI missing)"
fi
if [[ $HAVE_PGSHIP -eq 1 ]]; then
    echo "== pgship fleet: coordinator (S3 storage on the HTTP s3rver) + agent $AGENT_NAME"
    fleet_identity "$FLEET/keys" "$AGENT_NAME" || die "fleet_identity failed"
    fleet_recipient "$FLEET/keys" bench-recovery || die "fleet_recipient failed"
    fleet_coordinator_conf "$COORD_CONF" "$CERTS" "$FLEET/state" \
        --agent "$AGENT_NAME" "$FLEET/keys/$AGENT_NAME.pub" \
        --storage-s3 "http://127.0.0.1:$S3_HTTP_PORT" "$BUCKET" --storage-set prefix=pgship \
        || die "fleet_coordinator_conf failed"
    fleet_agent_conf "$AGENT_CONF" "$AGENT_NAME" "$CERTS" "$FLEET/keys/$AGENT_NAME.key" \
        --db "$DB" bench "$CONN" --recipient "$FLEET/keys/bench-recovery.pub" \
        || die "fleet_agent_conf failed"
    if ! "$FLEET_COORDINATOR" -c "$COORD_CONF" --check-config >"$LOGS/coord-check.log" 2>&1; then
        HAVE_PGSHIP=0; PGSHIP_WHY="pgship-coordinator -c FILE --check-config failed (see $LOGS/coord-check.log): $(tail -n 1 "$LOGS/coord-check.log")"
    elif ! "$FLEET_AGENT" -c "$AGENT_CONF" --check-config >"$LOGS/agent-check.log" 2>&1; then
        HAVE_PGSHIP=0; PGSHIP_WHY="pgship-agent -c FILE --check-config failed (see $LOGS/agent-check.log): $(tail -n 1 "$LOGS/agent-check.log")"
    elif ! "$FLEET_CLI" backup --help >"$LOGS/cli-backup-help.log" 2>&1; then
        HAVE_PGSHIP=0; PGSHIP_WHY="the client has no 'pgship backup' yet ($(grep -m 1 error "$LOGS/cli-backup-help.log" || tail -n 1 "$LOGS/cli-backup-help.log"))"
    elif ! "$FLEET_CLI" agents --help >/dev/null 2>&1; then
        HAVE_PGSHIP=0; PGSHIP_WHY="the client has no 'pgship agents' yet (fleet_wait_agent needs it)"
    fi
fi
if [[ $HAVE_PGSHIP -eq 1 ]]; then
    fleet_start_coordinator "$COORD_CONF" "$LOGS/coordinator.log" || die "the coordinator did not start"
    fleet_start_agent "$AGENT_CONF" "$LOGS/agent.log" || die "the agent did not start"
    fleet_wait_agent "$AGENT_NAME" 60 || die "the agent did not connect"
    COORD_PID=$FLEET_COORD_PID
    AGENT_PID=${FLEET_AGENT_PID[$AGENT_NAME]}
    note_cmd "$(show_cmd "$FLEET_COORDINATOR" -c "$COORD_CONF") &   (config written by fleet_coordinator_conf)"
    note_cmd "$(show_cmd "$FLEET_AGENT" -c "$AGENT_CONF") &   (config written by fleet_agent_conf)"
else
    echo "== SKIPPING the pgship row: $PGSHIP_WHY"
fi

# ---------------------------------------------------------------------------
# measurement (from the work directory: runuser keeps the current directory)
cd -- "$WORK"
echo "== warm-up: pg_dump -Fc -Z0 > /dev/null"
"$PG_DUMP" -d "$CONN" -Fc -Z0 >/dev/null 2>"$LOGS/warmup.log" \
    || { cat "$LOGS/warmup.log" >&2; die "warm-up pg_dump failed"; }

DUMP_FILE=$OUT/$DB.fc.dump
PUT_KEY=pgdump/$DB.fc.dump
CURL_PUT=(curl -sS -f --aws-sigv4 "aws:amz:us-east-1:s3" --user S3RVER:S3RVER
          -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -o /dev/null -T "$DUMP_FILE")

# sum_run KEY A B: R_*[KEY] = the sum of runs A and B (wall), the larger RSS, B's bytes.
sum_run() {
    local key=$1 a=$2 b=$3
    if [[ -n ${R_ERR[$a]:-} || -n ${R_ERR[$b]:-} ]]; then R_ERR[$key]=${R_ERR[$a]:-${R_ERR[$b]}}; return; fi
    R_WALL[$key]=$(awk -v x="${R_WALL[$a]}" -v y="${R_WALL[$b]}" 'BEGIN { printf "%.2f", x + y }')
    R_RSS[$key]=$(awk -v x="${R_RSS[$a]}" -v y="${R_RSS[$b]}" 'BEGIN { print (x > y ? x : y) }')
    R_SELF[$key]=$(awk -v x="${R_SELF[$a]}" -v y="${R_SELF[$b]}" 'BEGIN { print (x > y ? x : y) }')
    R_BYTES[$key]=${R_BYTES[$b]}
    R_CMD[$key]="${R_CMD[$a]}; ${R_CMD[$b]}"
}

PGSHIP_BACKUP=("$FLEET_CLI" backup "$AGENT_NAME/$DB" --wait --json)

# ship_json: from the last pgship backup's --json output (the {...} in its log, after the
# progress lines), SHIP_STATE and SHIP_SECS = finished_at - created_at: the backup as the
# coordinator timed it, without the client's polling.
ship_json() {
    local log=$LOGS/run.ship#$run.log json created finished
    SHIP_STATE="" SHIP_SECS=""
    json=$(sed -n '/^{/,/^}/p' "$log")
    [[ -n $json ]] || return 0
    SHIP_STATE=$(jq -r '.state // empty' <<<"$json" 2>/dev/null) || SHIP_STATE=""
    created=$(jq -r '.created_at // empty' <<<"$json" 2>/dev/null) || created=""
    finished=$(jq -r '.finished_at // empty' <<<"$json" 2>/dev/null) || finished=""
    [[ -n $created && -n $finished ]] || return 0
    created=$(date -d "$created" +%s.%N 2>/dev/null) || return 0
    finished=$(date -d "$finished" +%s.%N 2>/dev/null) || return 0
    SHIP_SECS=$(awk -v a="$created" -v b="$finished" 'BEGIN { printf "%.2f", b - a }')
}
PGBR_DETAIL=
for ((run = 1; run <= RUNS; run++)); do
    echo "== run $run of $RUNS"
    # a) pg_dump -Fc to a file, then one PUT
    measure "dump#$run" "$DUMP_FILE" - "$PG_DUMP" -d "$CONN" -Fc -f "$DUMP_FILE"
    if [[ -z ${R_ERR[dump#$run]:-} ]]; then
        measure "put#$run" - - "${CURL_PUT[@]}" "http://127.0.0.1:$S3_HTTP_PORT/$BUCKET/$PUT_KEY"
        R_BYTES[put#$run]=$(s3_bytes "$S3_HTTP" "$PUT_KEY")
        measure "puts#$run" - - "${CURL_PUT[@]}" --cacert "$CERTS/ca.crt" \
            "https://localhost:$S3_TLS_PORT/$BUCKET/$PUT_KEY"
        R_BYTES[puts#$run]=$(s3_bytes "$S3_TLS" "$PUT_KEY")
    else
        R_ERR[put#$run]=${R_ERR[dump#$run]} R_ERR[puts#$run]=${R_ERR[dump#$run]}
    fi
    sum_run "fc#$run" "dump#$run" "put#$run"
    rm -f -- "$DUMP_FILE"

    # b) pgBackRest full backup
    measure "pgbr#$run" - - runuser -u "$PGC_OSUSER" -- "$PGBACKREST" --config="$PGBR_CONF" \
        --stanza="$STANZA" backup --type=full
    [[ -n ${R_ERR[pgbr#$run]:-} ]] || pgbr_stored "pgbr#$run"

    # c) pgship end to end
    if [[ $HAVE_PGSHIP -eq 1 ]]; then
        before=$(s3_bytes "$S3_HTTP" pgship)
        PGSHIP_URL=$FLEET_API_URL PGSHIP_TOKEN=$(<"$FLEET_TOKEN_FILE")
        export PGSHIP_URL PGSHIP_TOKEN
        measure "ship#$run" - - timeout 3600 "${PGSHIP_BACKUP[@]}"
        unset PGSHIP_URL PGSHIP_TOKEN
        if [[ -z ${R_ERR[ship#$run]:-} ]]; then
            added=$(( $(s3_bytes "$S3_HTTP" pgship) - before ))
            R_BYTES[ship#$run]=$added
            ship_json
            if (( added <= 0 )); then
                R_ERR[ship#$run]="exit 0 but nothing new in the bucket"
                ERRORS=$((ERRORS + 1))
            elif [[ -n $SHIP_STATE && $SHIP_STATE != complete ]]; then
                R_ERR[ship#$run]="exit 0 but state $SHIP_STATE"
                ERRORS=$((ERRORS + 1))
            fi
            if [[ -n $SHIP_SECS ]]; then
                R_WALL[srv#$run]=$SHIP_SECS R_RSS[srv#$run]=0 R_SELF[srv#$run]=0 R_BYTES[srv#$run]=0
                R_CMD[srv#$run]="finished_at - created_at"
            else
                R_ERR[srv#$run]="no created_at/finished_at in the --json output"
            fi
        fi
    else
        R_ERR[ship#$run]=skipped
    fi
done

ROWS=(fc dump put puts pgbr ship srv)
for r in "${ROWS[@]}"; do
    [[ ${R_ERR[$r#1]:-} == skipped || ($r == srv && $HAVE_PGSHIP -ne 1) ]] && { R_ERR[$r]=skipped; continue; }
    aggregate "$r" "$RUNS"
done
note_cmd "$(show_cmd "$PG_DUMP" -d "$CONN" -Fc -f "$DUMP_FILE")"
note_cmd "$(show_cmd "${CURL_PUT[@]}" "http://127.0.0.1:$S3_HTTP_PORT/$BUCKET/$PUT_KEY")   (and the same with --cacert ca.crt to https://localhost:$S3_TLS_PORT/...)"
note_cmd "runuser -u postgres -- $(show_cmd "$PGBACKREST" --config="$PGBR_CONF" --stanza="$STANZA" backup --type=full)"
[[ $HAVE_PGSHIP -ne 1 ]] || note_cmd "PGSHIP_URL=$FLEET_API_URL PGSHIP_TOKEN=\$(cat $FLEET_TOKEN_FILE) $(show_cmd timeout 3600 "${PGSHIP_BACKUP[@]}")"

COORD_HWM="" AGENT_HWM=""
if [[ $HAVE_PGSHIP -eq 1 ]]; then
    # VmHWM is the peak since the process started: read now, after every run, before stopping.
    COORD_HWM=$(awk -v k="$(fleet_hwm_kb "$COORD_PID")" 'BEGIN { printf "%.1f", k / 1024 }')
    AGENT_HWM=$(awk -v k="$(fleet_hwm_kb "$AGENT_PID")" 'BEGIN { printf "%.1f", k / 1024 }')
    fleet_stop_all || echo "$BENCH_NAME: a pgship daemon did not stop on SIGTERM (see $LOGS)" >&2
fi

# ---------------------------------------------------------------------------
# report
# runs_list KEY: every run's wall time, "18.1 18.9 19.3", to show how noisy the median is.
runs_list() {
    local i out=""
    for ((i = 1; i <= RUNS; i++)); do out+="${R_WALL[$1#$i]:-?} "; done
    printf '%s\n' "${out% }"
}

fmt_row() { # KEY LABEL
    local key=$1 label=$2
    if [[ -n ${R_ERR[$key]:-} || -z ${R_WALL[$key]:-} ]]; then
        printf '  %-50s %s\n' "$label" "${R_ERR[$key]:-not run}"
        return
    fi
    awk -v l="$label" -v w="${R_WALL[$key]}" -v b="${R_BYTES[$key]}" -v r="${R_RSS[$key]}" \
        -v fc="${R_WALL[fc]:-}" -v pb="${R_WALL[pgbr]:-}" -v runs="$(runs_list "$key")" 'BEGIN {
        sfc = (fc != "" && w > 0) ? sprintf("%.2fx", fc / w) : "-"
        spb = (pb != "" && pb > 0) ? sprintf("%.2f", w / pb) : "-"
        printf "  %-50s %8.2f %10s %13.1f %11s %13s   %s\n", l, w, (b > 0 ? sprintf("%.1f", b / 1e6) : "-"), r, sfc, spb, runs
    }'
}
fmt_part() { # KEY LABEL: a component of row a, wall only
    local key=$1 label=$2
    if [[ -n ${R_ERR[$key]:-} || -z ${R_WALL[$key]:-} ]]; then
        printf '    %-48s %s\n' "$label" "${R_ERR[$key]:-not run}"
        return
    fi
    printf '    %-48s %8.2f %10s %13s %11s %13s   %s\n' "$label" "${R_WALL[$key]}" "" "" "" "" "$(runs_list "$key")"
}

echo
echo "===================================================================================================================="
echo "results: PostgreSQL $("$PG_DUMP" --version | awk '{ print $3 }'), pgBackRest $("$PGBACKREST" version | awk '{ print $2 }'), s3rver $("$S3RVER" --version), curl $(curl --version | awk 'NR == 1 { print $2 }'), $(nproc) CPUs; median of $RUNS run(s)"
echo "dataset $DB: $(mb "$DB_BYTES") MiB (pg_database_size); the whole cluster, which pgBackRest backs up: $(mb "$CLUSTER_BYTES") MiB"
echo
printf '  %-50s %8s %10s %13s %11s %13s   %s\n' tool wall_s stored_MB peak_rss_MiB speed_vs_a time_vs_pgbr runs_s
fmt_row fc "a) pg_dump -Fc + curl PUT (http)"
fmt_part dump "pg_dump -Fc to a file"
fmt_part put "curl PUT to s3rver over http"
fmt_part puts "(reference: the same PUT over https)"
fmt_row pgbr "b) pgBackRest full (zst-3, process-max=2, https)"
[[ -z $PGBR_DETAIL ]] || printf '    %s\n' "$PGBR_DETAIL"
fmt_row ship "c) pgship backup --wait (coordinator + agent)"
if [[ $HAVE_PGSHIP -eq 1 ]]; then
    fmt_part srv "(created -> finished, as the coordinator saw it)"
    printf '    peak RSS (VmHWM): coordinator %s MiB, agent %s MiB (after %d run(s), %d stream at a time)\n' \
        "$COORD_HWM" "$AGENT_HWM" "$RUNS" "$STREAMS"
else
    printf '    skipped: %s\n' "$PGSHIP_WHY"
fi

echo
echo "goals (dataset $DB):"
goal() { printf '  %-4s  %-66s %s\n' "$2" "$1" "$3"; }
have() { local k; for k in "$@"; do [[ -n ${R_WALL[$k]:-} && -z ${R_ERR[$k]:-} ]] || return 1; done; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }

G1="pgship end to end >= ${GOAL_VS_DUMP}x faster than pg_dump -Fc + upload"
if have ship fc; then
    goal "$G1" "$(verdict "${R_WALL[fc]} / ${R_WALL[ship]} >= $GOAL_VS_DUMP")" \
        "$(awk -v a="${R_WALL[fc]}" -v b="${R_WALL[ship]}" 'BEGIN { printf "%.2fx (%.2f s vs %.2f s)", a / b, b, a }')"
else goal "$G1" SKIP "baseline $(have fc && echo "${R_WALL[fc]} s" || echo "missing"); pgship: no data"; fi
G2="pgship end to end <= ${GOAL_VS_PGBR}x pgBackRest's time"
if have ship pgbr; then
    goal "$G2" "$(verdict "${R_WALL[ship]} <= $GOAL_VS_PGBR * ${R_WALL[pgbr]}")" \
        "$(awk -v a="${R_WALL[ship]}" -v b="${R_WALL[pgbr]}" 'BEGIN { printf "%.2fx (%.2f s vs %.2f s)", a / b, a, b }')"
else goal "$G2" SKIP "baseline $(have pgbr && echo "${R_WALL[pgbr]} s" || echo "missing"); pgship: no data"; fi
RSS_LIMIT=$((GOAL_RSS_BASE + GOAL_RSS_STREAM * STREAMS))
G3="coordinator peak RSS <= $GOAL_RSS_BASE MiB + $GOAL_RSS_STREAM MiB x $STREAMS stream = $RSS_LIMIT MiB"
if [[ -n $COORD_HWM ]] && have ship; then
    goal "$G3" "$(verdict "$COORD_HWM <= $RSS_LIMIT")" "$COORD_HWM MiB (VmHWM)"
else goal "$G3" SKIP "no data"; fi
[[ $HAVE_PGSHIP -eq 1 ]] || echo "  pgship row skipped: $PGSHIP_WHY"

echo
echo "commands used:"
for c in "${COMMANDS[@]}"; do
    echo "  $c"
done
echo "  (every measured command ran as: $GNUTIME -f '%e %M' -o FILE CMD, rows interleaved run by run; the data set was first read once with: pg_dump -d CONNINFO -Fc -Z0 > /dev/null)"

if [[ $ERRORS -gt 0 ]]; then
    echo
    echo "$BENCH_NAME: $ERRORS measured command(s) failed; logs in $LOGS (use --keep to keep them)" >&2
    exit 1
fi
exit 0
