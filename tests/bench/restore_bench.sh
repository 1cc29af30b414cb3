#!/usr/bin/env bash
# restore_bench.sh - benchmark a whole restore: pgship end to end (object in S3 -> restored
# database) beside bare pg_restore -j2 from a local dump.
#
# Starts a throwaway PostgreSQL 15 cluster with the text-heavy data set (tests/bench/textheavy.sql,
# made by tests/bench/lib.sh's gen_text, as in ship_bench.sh), then measures, interleaved, --runs
# times:
#   a) pg_restore -j2 into a fresh, empty database from a local pg_dump -Fc -Z0 file (made once,
#      not timed): the floor, what a DBA with the dump already on the host would do
#   b) pgship restore ID --to AGENT/DB --wait through a real coordinator and agent (TLS between
#      them, S3 storage on s3rver): the backup made once with pgship backup, then each run fetches
#      the object from the bucket through the coordinator, decrypts and streams the schema and
#      data into a temporary database while it arrives, builds indexes and constraints with -j2,
#      analyzes it and swaps it for the target. Skipped, with the reason, when the daemons or
#      the client cannot do it.
# and prints the median wall times side by side with the goal: b within 1.3x of a. It is a
# benchmark, not a test: the exit status is 0 unless something errored.
#
# Run as root (the cluster runs as the `postgres` OS user). See --help.

# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
    cat <<'EOF'
usage: tests/bench/restore_bench.sh [OPTIONS]

Time a restore of the text-heavy data set two ways: bare pg_restore -j2 from a
local pg_dump -Fc -Z0 file, and pgship restore --wait (object in s3rver ->
coordinator -> agent -> restored database), on a throwaway PostgreSQL 15 cluster.

  --scale F           size of the data set as a fraction of the default ~300 MB
                      (e.g. 0.1 for ~30 MB, for a quick try; default 1)
  --runs N            run every row N times, interleaved, and report the median
                      wall time and the largest RSS (default 3)
  --jobs N            pg_restore's -j in both rows (default 2)
  --baseline-only     measure row a only (no fleet is started)
  --keep              keep the work directory (cluster data dir, dump, bucket,
                      logs); every process is stopped on exit all the same
  --workdir DIR       work directory (default: a new mktemp dir under /tmp)
  -h, --help          this help

Environment:
  PGSHIP_COORDINATOR, PGSHIP_AGENT, PGSHIP_CLI   the pgship binaries (default
                      build/bin/pgship-coordinator, pgship-agent, pgship)
  PGSHIP_PGCLUSTER_LIB  cluster helper library
                      (default tests/integration/lib/pgcluster.sh)

Row (b) runs only when the binaries are built, pgship-coordinator and
pgship-agent accept their configurations (--check-config; the agent's has
restore_keys) and `pgship restore --help` works; otherwise it says why it was
skipped. A restore that runs but fails is an error of row (b), shown with the
restore's step and error.

Columns: wall_s = median wall-clock seconds (runs_s lists every run); cpu_s =
median busy CPU seconds of the whole machine while the row ran (every core,
every process: PostgreSQL's backends, the daemons, s3rver; from /proc/stat);
size_MB = what the row restores from / 1e6 (a: the local dump file; b: the
archive object in the bucket, compressed and encrypted); peak_rss_MiB = GNU
time %M, the largest process of the command's tree (a: pg_restore; b: the
pgship client; the daemons' VmHWM are printed below the table). Both rows
restore into the same cluster (pgcluster.sh: fsync=off, synchronous_commit=off,
full_page_writes=off), a CHECKPOINT before each measured command. Row b does
more than row a: it fetches, decrypts and decompresses the object, runs
ANALYZE and counts every table's rows, and swaps the databases; its agent's
steps are listed below the table (median ms per step).
EOF
}

BENCH_NAME=restore_bench
die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PG_DUMP=$PGBIN/pg_dump
PG_RESTORE=$PGBIN/pg_restore
PGC_LIB=${PGSHIP_PGCLUSTER_LIB:-$ROOT/tests/integration/lib/pgcluster.sh}
SQL=$ROOT/tests/bench/textheavy.sql
GNUTIME=/usr/bin/time
# shellcheck source=lib.sh
source "$ROOT/tests/bench/lib.sh"

SCALE=1
RUNS=3
JOBS=2
BASELINE_ONLY=0
KEEP=0
WORK=
BUCKET=bench
AGENT_NAME=bench-agent
DB=texty                 # the source: generated, backed up once
DB_A=texty_a             # row a restores into this, created empty before each run
DB_B=texty_restored      # row b's target: pgship replaces it each run
ENV_SRC=bench            # environments: neither is prod, so no profile and no --overwrite-prod
ENV_DST=bench-restore
GOAL_VS_PGR=1.3          # pgship end to end at most this many times bare pg_restore's time

while [[ $# -gt 0 ]]; do
    case $1 in
        --scale) [[ $# -ge 2 ]] || die "$1 needs a value"; SCALE=$2; shift 2 ;;
        --scale=*) SCALE=${1#*=}; shift ;;
        --runs) [[ $# -ge 2 ]] || die "$1 needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --jobs) [[ $# -ge 2 ]] || die "$1 needs a value"; JOBS=$2; shift 2 ;;
        --jobs=*) JOBS=${1#*=}; shift ;;
        --baseline-only) BASELINE_ONLY=1; shift ;;
        --keep) KEEP=1; shift ;;
        --workdir) [[ $# -ge 2 ]] || die "$1 needs a value"; WORK=$2; shift 2 ;;
        --workdir=*) WORK=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
is_uint "$RUNS" || die "--runs must be a positive integer"
{ is_uint "$JOBS" && (( JOBS <= 64 )); } || die "--jobs must be 1..64"
if [[ ! $SCALE =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] ||
    ! awk -v s="$SCALE" 'BEGIN { exit !(s > 0 && s <= 100) }'; then
    die "--scale must be a number above 0 (and at most 100)"
fi
# ~8 MB of an empty database is fixed cost; gen_text needs at least that.
TEXT_MB=$(awk -v s="$SCALE" 'BEGIN { m = int(300 * s + 0.5); print (m < 10 ? 10 : m) }')

[[ $(id -u) -eq 0 ]] || die "run as root (the cluster runs as the postgres OS user via runuser)"
[[ -x $PG_DUMP && -x $PG_RESTORE ]] || die "missing $PG_DUMP or $PG_RESTORE (postgresql-15)"
[[ -r $SQL ]] || die "missing $SQL"
[[ -r $PGC_LIB ]] || die "missing $PGC_LIB"
[[ -x $GNUTIME ]] || apt_install time
command -v jq >/dev/null 2>&1 || apt_install jq

# shellcheck source=../integration/lib/pgcluster.sh
source "$PGC_LIB"
# shellcheck source=../integration/lib/s3rver.sh
source "$ROOT/tests/integration/lib/s3rver.sh"
# shellcheck source=../integration/lib/fleet.sh
source "$ROOT/tests/integration/lib/fleet.sh"

# ---------------------------------------------------------------------------
# work directory and cleanup
bench_workdir pgship-restorebench
PGDIR=$WORK/pg
OUT=$WORK/out
LOGS=$WORK/logs
CERTS=$WORK/certs
S3DIR=$WORK/s3      # s3rver data: row b's archive
FLEET=$WORK/fleet
mkdir -p -- "$OUT" "$LOGS" "$FLEET"

# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local rc=$?
    set +e
    fleet_stop_all >/dev/null 2>&1
    s3rver_stop "$S3DIR"
    pgc_stop "$PGDIR" >/dev/null 2>&1
    if [[ $KEEP -eq 1 ]]; then
        echo "$BENCH_NAME: kept work directory $WORK (every process stopped)" >&2
    elif [[ $CREATED_WORK -eq 1 ]]; then
        rm -rf -- "$WORK"
    else
        rm -rf -- "$PGDIR" "$OUT" "$LOGS" "$CERTS" "$S3DIR" "$FLEET" "$S3DIR.log"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_nap_init

# s3_bytes PREFIX: bytes of the objects whose keys start with PREFIX in the bucket (s3rver keeps
# each object's bytes in a file KEY._S3rver_object, metadata beside it).
s3_bytes() {
    local b=$S3DIR/$BUCKET
    [[ -d $b ]] || { echo 0; return; }
    find "$b" -type f -path "$b/$1*" -name '*._S3rver_object' -printf '%s\n' |
        awk '{ s += $1 } END { printf "%d\n", s }'
}

# ---------------------------------------------------------------------------
# cluster and data
PORT=$(pgc_free_port)
echo "== starting cluster in $PGDIR on port $PORT"
pgc_start "$PGDIR" "$PORT" shared_buffers=512MB max_wal_size=4GB wal_level=minimal max_wal_senders=0
note_cmd "pgc_start $PGDIR $PORT shared_buffers=512MB max_wal_size=4GB wal_level=minimal max_wal_senders=0  (pgcluster.sh also sets fsync=off synchronous_commit=off full_page_writes=off)"
psql_q postgres -q -c "CREATE DATABASE $DB" -c "CREATE DATABASE $DB_B"
echo "== generating data: $DB ~${TEXT_MB} MB"
t=$(now)
gen_text "$DB" "$TEXT_MB" || die "generating $DB failed (logs above)"
psql_q postgres -q -c CHECKPOINT
echo "   $DB done in $(secs_since "$t") s"
DB_BYTES=$(db_bytes "$DB")
echo "   db $DB: $(mb "$DB_BYTES") MiB (pg_database_size)"
CONN=$(pgc_conninfo "$PORT" "$DB")
CONN_B=$(pgc_conninfo "$PORT" "$DB_B")

# row a's dump, once
DUMP_FILE=$OUT/$DB.Z0.dump
echo "== pg_dump -Fc -Z0 (row a's input, made once)"
t=$(now)
"$PG_DUMP" -d "$CONN" -Fc -Z0 -f "$DUMP_FILE" 2>"$LOGS/pg_dump.log" \
    || { cat "$LOGS/pg_dump.log" >&2; die "pg_dump failed"; }
DUMP_S=$(secs_since "$t")
DUMP_BYTES=$(stat -c %s -- "$DUMP_FILE")
echo "   $(mb "$DUMP_BYTES") MiB in $DUMP_S s"
note_cmd "$(show_cmd "$PG_DUMP" -d "$CONN" -Fc -Z0 -f "$DUMP_FILE")   (once, $DUMP_S s)"

# ---------------------------------------------------------------------------
# pgship fleet (row b)
HAVE_PGSHIP=1
PGSHIP_WHY=
COORD_CONF=$FLEET/coordinator.conf
AGENT_CONF=$FLEET/agent.conf
if [[ $BASELINE_ONLY -eq 1 ]]; then
    HAVE_PGSHIP=0; PGSHIP_WHY="--baseline-only"
elif [[ ! -x $FLEET_COORDINATOR ]]; then
    HAVE_PGSHIP=0; PGSHIP_WHY="pgship-coordinator not built ($FLEET_COORDINATOR missing)"
elif [[ ! -x $FLEET_AGENT ]]; then
    HAVE_PGSHIP=0; PGSHIP_WHY="pgship-agent not built ($FLEET_AGENT missing)"
elif [[ ! -x $FLEET_CLI ]]; then
    HAVE_PGSHIP=0; PGSHIP_WHY="pgship not built ($FLEET_CLI missing)"
elif ! S3RVER=$(s3rver_bin 2>/dev/null); then
    HAVE_PGSHIP=0; PGSHIP_WHY="s3rver is missing: run deploy/setup.sh"
fi
if [[ $HAVE_PGSHIP -eq 1 ]]; then
    echo "== certificates, s3rver, pgship fleet: coordinator (S3 storage) + agent $AGENT_NAME"
    fleet_certs "$CERTS" || die "fleet_certs failed"
    S3_PORT=$(s3rver_free_port)
    s3rver_start "$S3DIR" "$S3_PORT" "$BUCKET" || die "s3rver did not start"
    note_cmd "$(show_cmd "$S3RVER" --directory DIR --port PORT --address 127.0.0.1 --silent --service-endpoint localhost --configure-bucket "$BUCKET")   (s3rver $("$S3RVER" --version))"
    fleet_identity "$FLEET/keys" "$AGENT_NAME" || die "fleet_identity failed"
    # One key pair: backups are sealed to its public half, the agent restores with its secret.
    fleet_recipient "$FLEET/keys" bench-restore || die "fleet_recipient failed"
    fleet_coordinator_conf "$COORD_CONF" "$CERTS" "$FLEET/state" \
        --agent "$AGENT_NAME" "$FLEET/keys/$AGENT_NAME.pub" \
        --storage-s3 "http://127.0.0.1:$S3_PORT" "$BUCKET" --storage-set prefix=pgship \
        || die "fleet_coordinator_conf failed"
    fleet_agent_conf "$AGENT_CONF" "$AGENT_NAME" "$CERTS" "$FLEET/keys/$AGENT_NAME.key" \
        --db "$DB" "$ENV_SRC" "$CONN" --db "$DB_B" "$ENV_DST" "$CONN_B" \
        --recipient "$FLEET/keys/bench-restore.pub" --set "restore_keys=$FLEET/keys/bench-restore.key" \
        || die "fleet_agent_conf failed"
    if ! "$FLEET_COORDINATOR" -c "$COORD_CONF" --check-config >"$LOGS/coord-check.log" 2>&1; then
        HAVE_PGSHIP=0; PGSHIP_WHY="pgship-coordinator -c FILE --check-config failed (see $LOGS/coord-check.log): $(tail -n 1 "$LOGS/coord-check.log")"
    elif ! "$FLEET_AGENT" -c "$AGENT_CONF" --check-config >"$LOGS/agent-check.log" 2>&1; then
        HAVE_PGSHIP=0; PGSHIP_WHY="pgship-agent -c FILE --check-config failed (restore_keys?) (see $LOGS/agent-check.log): $(tail -n 1 "$LOGS/agent-check.log")"
    elif ! "$FLEET_CLI" restore --help >"$LOGS/cli-restore-help.log" 2>&1; then
        HAVE_PGSHIP=0; PGSHIP_WHY="the client has no 'pgship restore' yet ($(grep -m 1 error "$LOGS/cli-restore-help.log" || tail -n 1 "$LOGS/cli-restore-help.log"))"
    fi
fi
SHIP_ID=
ARCHIVE_BYTES=0
if [[ $HAVE_PGSHIP -eq 1 ]]; then
    fleet_start_coordinator "$COORD_CONF" "$LOGS/coordinator.log" || die "the coordinator did not start"
    fleet_start_agent "$AGENT_CONF" "$LOGS/agent.log" || die "the agent did not start"
    fleet_wait_agent "$AGENT_NAME" 60 || die "the agent did not connect"
    COORD_PID=$FLEET_COORD_PID
    AGENT_PID=${FLEET_AGENT_PID[$AGENT_NAME]}
    note_cmd "$(show_cmd "$FLEET_COORDINATOR" -c "$COORD_CONF") &   (config written by fleet_coordinator_conf)"
    note_cmd "$(show_cmd "$FLEET_AGENT" -c "$AGENT_CONF") &   (config written by fleet_agent_conf, with restore_keys)"
    echo "== pgship backup $AGENT_NAME/$DB --wait (row b's source, made once)"
    t=$(now)
    if fleet_client backup "$AGENT_NAME/$DB" --label restore-bench --wait --json \
            >"$LOGS/backup.json" 2>"$LOGS/backup.err" &&
        [[ $(jq -r '.state // empty' "$LOGS/backup.json" 2>/dev/null) == complete ]]; then
        SHIP_ID=$(jq -r '.id' "$LOGS/backup.json")
        ARCHIVE_BYTES=$(jq -r '.size_bytes // 0' "$LOGS/backup.json")
        [[ $ARCHIVE_BYTES =~ ^[0-9]+$ && $ARCHIVE_BYTES -gt 0 ]] || ARCHIVE_BYTES=$(s3_bytes pgship/)
        echo "   backup $SHIP_ID: $(mb "$ARCHIVE_BYTES") MiB in the bucket, in $(secs_since "$t") s"
        note_cmd "pgship backup $AGENT_NAME/$DB --label restore-bench --wait --json   (once: $SHIP_ID)"
    else
        HAVE_PGSHIP=0
        PGSHIP_WHY="pgship backup failed: $(jq -r '.error // empty' "$LOGS/backup.json" 2>/dev/null || true) $(tail -n 2 "$LOGS/backup.err" | tr '\n' ' ')"
        ERRORS=$((ERRORS + 1))
    fi
fi
[[ $HAVE_PGSHIP -eq 1 ]] || echo "== SKIPPING the pgship row: $PGSHIP_WHY"

# ---------------------------------------------------------------------------
# measurement (from the work directory: runuser keeps the current directory)
cd -- "$WORK"
PG_RESTORE_CMD=("$PG_RESTORE" -h 127.0.0.1 -p "$PORT" -U postgres -j "$JOBS" -d "$DB_A" "$DUMP_FILE")
ANALYZE_CMD=("$(pgc_bin psql)" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d "$DB_A" -c ANALYZE)
PGSHIP_RESTORE=("$FLEET_CLI" restore "$SHIP_ID" --to "$AGENT_NAME/$DB_B" --jobs "$JOBS" --wait --json)

# restore_json RUN: the newest restore's JSON (this run's) into $LOGS/restore#RUN.json; sets
# RST_STATE, RST_STEP, RST_ERROR and RST_SECS = finished_at - created_at, as the coordinator
# timed it; appends "NAME MS" per step to $LOGS/steps (coordinator steps as coordinator:NAME).
restore_json() {
    local f=$LOGS/restore#$1.json created finished
    RST_STATE="" RST_STEP="" RST_ERROR="" RST_SECS=""
    fleet_client restores --limit 1 --json 2>/dev/null |
        jq 'if type == "array" then .[0] else .restores[0] end // empty' >"$f" 2>/dev/null || true
    jq -e 'type == "object"' "$f" >/dev/null 2>&1 || return 0
    RST_STATE=$(jq -r '.state // empty' "$f")
    RST_STEP=$(jq -r '.step // empty' "$f")
    RST_ERROR=$(jq -r '.error // empty' "$f")
    jq -r '(.report.coordinator_steps // [])[] | "coordinator:\(.name) \(.ms)"' "$f" >>"$LOGS/steps" 2>/dev/null || true
    jq -r '(.report.steps // [])[] | "\(.name) \(.ms)"' "$f" >>"$LOGS/steps" 2>/dev/null || true
    created=$(jq -r '.created_at // empty' "$f")
    finished=$(jq -r '.finished_at // empty' "$f")
    [[ -n $created && -n $finished ]] || return 0
    created=$(date -d "$created" +%s.%N 2>/dev/null) || return 0
    finished=$(date -d "$finished" +%s.%N 2>/dev/null) || return 0
    RST_SECS=$(awk -v a="$created" -v b="$finished" 'BEGIN { printf "%.2f", b - a }')
}

rm -f -- "$LOGS/steps"
for ((run = 1; run <= RUNS; run++)); do
    echo "== run $run of $RUNS"
    # a) bare pg_restore -j2 into a fresh database
    psql_q postgres -q -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB_A" \
        -c "CREATE DATABASE $DB_A" -c CHECKPOINT
    measure "pgr#$run" - - "${PG_RESTORE_CMD[@]}"
    # for reference, not part of row a: the ANALYZE that row b's agent runs after its pg_restore
    if [[ -z ${R_ERR[pgr#$run]:-} ]]; then
        measure "an#$run" - - "${ANALYZE_CMD[@]}"
    else
        R_ERR[an#$run]=${R_ERR[pgr#$run]}
    fi

    # b) pgship end to end
    if [[ $HAVE_PGSHIP -eq 1 ]]; then
        psql_q postgres -q -c CHECKPOINT
        PGSHIP_URL=$FLEET_API_URL PGSHIP_TOKEN=$(<"$FLEET_TOKEN_FILE")
        export PGSHIP_URL PGSHIP_TOKEN
        measure "rst#$run" - - timeout 3600 "${PGSHIP_RESTORE[@]}"
        unset PGSHIP_URL PGSHIP_TOKEN
        R_BYTES[rst#$run]=$ARCHIVE_BYTES
        restore_json "$run"
        if [[ -z ${R_ERR[rst#$run]:-} && -n $RST_STATE && $RST_STATE != complete ]]; then
            R_ERR[rst#$run]="exit 0 but state $RST_STATE"
            ERRORS=$((ERRORS + 1))
        fi
        if [[ -n ${R_ERR[rst#$run]:-} && -n $RST_STATE ]]; then
            R_ERR[rst#$run]+=": $RST_STATE in ${RST_STEP:-?}: ${RST_ERROR:0:200}"
        fi
        if [[ -n $RST_SECS ]]; then
            R_WALL[srv#$run]=$RST_SECS R_RSS[srv#$run]=0 R_SELF[srv#$run]=0 R_BYTES[srv#$run]=0
            R_CMD[srv#$run]="finished_at - created_at"
        else
            R_ERR[srv#$run]="no created_at/finished_at in the restore's JSON"
        fi
    else
        R_ERR[rst#$run]=skipped
    fi
done
for ((run = 1; run <= RUNS; run++)); do R_BYTES[pgr#$run]=$DUMP_BYTES; done

for r in pgr an rst srv; do
    [[ ${R_ERR[$r#1]:-} == skipped || ($r == srv && $HAVE_PGSHIP -ne 1) ]] && { R_ERR[$r]=skipped; continue; }
    aggregate "$r" "$RUNS"
done
note_cmd "psql -c 'DROP DATABASE IF EXISTS $DB_A' -c 'CREATE DATABASE $DB_A' -c CHECKPOINT; $(show_cmd "${PG_RESTORE_CMD[@]}")"
note_cmd "$(show_cmd "${ANALYZE_CMD[@]}")   (reference only)"
[[ $HAVE_PGSHIP -ne 1 ]] || note_cmd "psql -c CHECKPOINT; PGSHIP_URL=$FLEET_API_URL PGSHIP_TOKEN=\$(cat $FLEET_TOKEN_FILE) $(show_cmd timeout 3600 "${PGSHIP_RESTORE[@]}")"

# Both copies hold what the source holds (row counts of every table).
counts() { psql_q "$1" -Atc "SELECT string_agg(format('%s=%s', c, (xpath('//n/text()', query_to_xml(format('SELECT count(*) AS n FROM %s', c), false, false, '')))[1]), ' ' ORDER BY c)
                              FROM (SELECT oid::regclass::text AS c FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace) AS t"; }
SRC_COUNTS=$(counts "$DB")
VERIFY_A="not checked" VERIFY_B="not checked"
if [[ -z ${R_ERR[pgr]:-} ]]; then
    if [[ $(counts "$DB_A") == "$SRC_COUNTS" ]]; then VERIFY_A="row counts equal the source's"
    else VERIFY_A="ROW COUNTS DIFFER from the source's"; ERRORS=$((ERRORS + 1)); fi
fi
if [[ $HAVE_PGSHIP -eq 1 && -z ${R_ERR[rst]:-} ]]; then
    if [[ $(counts "$DB_B") == "$SRC_COUNTS" ]]; then VERIFY_B="row counts equal the source's"
    else VERIFY_B="ROW COUNTS DIFFER from the source's"; ERRORS=$((ERRORS + 1)); fi
fi

COORD_HWM="" AGENT_HWM=""
if [[ $HAVE_PGSHIP -eq 1 ]]; then
    # VmHWM is the peak since the process started: read now, after every run, before stopping.
    COORD_HWM=$(awk -v k="$(fleet_hwm_kb "$COORD_PID")" 'BEGIN { printf "%.1f", k / 1024 }')
    AGENT_HWM=$(awk -v k="$(fleet_hwm_kb "$AGENT_PID")" 'BEGIN { printf "%.1f", k / 1024 }')
    fleet_stop_all || echo "$BENCH_NAME: a pgship daemon did not stop on SIGTERM (see $LOGS)" >&2
fi

# ---------------------------------------------------------------------------
# report
runs_list() {
    local i out=""
    for ((i = 1; i <= RUNS; i++)); do out+="${R_WALL[$1#$i]:-?} "; done
    printf '%s\n' "${out% }"
}
fmt_row() { # KEY LABEL
    local key=$1 label=$2
    if [[ -n ${R_ERR[$key]:-} || -z ${R_WALL[$key]:-} ]]; then
        printf '  %-52s %s\n' "$label" "${R_ERR[$key]:-not run}"
        return
    fi
    awk -v l="$label" -v w="${R_WALL[$key]}" -v b="${R_BYTES[$key]}" -v r="${R_RSS[$key]}" \
        -v a="${R_WALL[pgr]:-}" -v runs="$(runs_list "$key")" -v c="${R_CPU[$key]:-0}" 'BEGIN {
        va = (a != "" && a > 0) ? sprintf("%.2fx", w / a) : "-"
        printf "  %-52s %8.2f %7.2f %9s %13.1f %8s   %s\n", l, w, c, (b > 0 ? sprintf("%.1f", b / 1e6) : "-"), r, va, runs
    }'
}
fmt_part() { # KEY LABEL: wall only
    local key=$1 label=$2
    if [[ -n ${R_ERR[$key]:-} || -z ${R_WALL[$key]:-} ]]; then
        printf '    %-50s %s\n' "$label" "${R_ERR[$key]:-not run}"
        return
    fi
    awk -v l="$label" -v w="${R_WALL[$key]}" -v a="${R_WALL[pgr]:-}" -v runs="$(runs_list "$key")" 'BEGIN {
        va = (a != "" && a > 0) ? sprintf("%.2fx", w / a) : "-"
        printf "    %-50s %8.2f %7s %9s %13s %8s   %s\n", l, w, "", "", "", va, runs
    }'
}

echo
echo "===================================================================================================================="
echo "results: PostgreSQL $("$PG_RESTORE" --version | awk '{ print $3 }'), $(nproc) CPUs, pg_restore -j $JOBS in both rows; median of $RUNS run(s)"
echo "dataset $DB: $(mb "$DB_BYTES") MiB (pg_database_size); pg_dump -Fc -Z0: $(mb "$DUMP_BYTES") MiB in $DUMP_S s$([[ $ARCHIVE_BYTES -gt 0 ]] && echo "; pgship archive: $(mb "$ARCHIVE_BYTES") MiB")"
echo
printf '  %-52s %8s %7s %9s %13s %8s   %s\n' tool wall_s cpu_s size_MB peak_rss_MiB vs_a runs_s
fmt_row pgr "a) pg_restore -j$JOBS from a local pg_dump -Fc -Z0 file"
fmt_part an "(reference, not in a: ANALYZE afterwards, as b does)"
echo "    restored: $VERIFY_A"
fmt_row rst "b) pgship restore ID --to AGENT/DB --wait (S3 -> db)"
if [[ $HAVE_PGSHIP -eq 1 ]]; then
    fmt_part srv "(created -> finished, as the coordinator saw it)"
    echo "    restored: $VERIFY_B"
    if [[ -s $LOGS/steps ]]; then
        # median ms per step over the runs, in the order the steps first appear
        awk '{ if (!($1 in n)) order[++k] = $1; v[$1, ++n[$1]] = $2 }
             END { line = ""
                   for (i = 1; i <= k; i++) { s = order[i]; m = n[s]
                       for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++)
                           if (v[s, b] + 0 < v[s, a] + 0) { t = v[s, a]; v[s, a] = v[s, b]; v[s, b] = t }
                       line = line sprintf("%s%s %d", (line == "" ? "" : ", "), s, v[s, int((m + 1) / 2)]) }
                   print "    steps (median ms): " line }' "$LOGS/steps" | fold -s -w 116 | sed '2,$s/^/      /'
    fi
    printf '    peak RSS (VmHWM): coordinator %s MiB, agent %s MiB (after %d run(s))\n' "$COORD_HWM" "$AGENT_HWM" "$RUNS"
else
    printf '    skipped: %s\n' "$PGSHIP_WHY"
fi

echo
echo "goals (dataset $DB):"
goal() { printf '  %-4s  %-66s %s\n' "$2" "$1" "$3"; }
have() { local k; for k in "$@"; do [[ -n ${R_WALL[$k]:-} && -z ${R_ERR[$k]:-} ]] || return 1; done; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else echo FAIL; fi; }
G1="pgship restore end to end <= ${GOAL_VS_PGR}x bare pg_restore -j$JOBS"
if have rst pgr; then
    goal "$G1" "$(verdict "${R_WALL[rst]} <= $GOAL_VS_PGR * ${R_WALL[pgr]}")" \
        "$(awk -v a="${R_WALL[rst]}" -v b="${R_WALL[pgr]}" 'BEGIN { printf "%.2fx (%.2f s vs %.2f s)", a / b, a, b }')"
else
    goal "$G1" SKIP "baseline $(have pgr && echo "${R_WALL[pgr]} s" || echo "missing"); pgship: no data"
fi

echo
echo "commands used:"
for c in "${COMMANDS[@]}"; do
    echo "  $c"
done
echo "  (every measured command ran as: $GNUTIME -f '%e %M' -o FILE CMD, rows interleaved run by run)"

if [[ $ERRORS -gt 0 ]]; then
    echo
    echo "$BENCH_NAME: $ERRORS error(s); logs in $LOGS (use --keep to keep them)" >&2
    exit 1
fi
exit 0
