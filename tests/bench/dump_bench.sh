#!/usr/bin/env bash
# dump_bench.sh - benchmark pgship-agent dump against pg_dump (+ zstd).
#
# Starts a throwaway PostgreSQL 15 cluster, builds a pgbench data set and two
# text-heavy data sets (tests/bench/textheavy.sql), then measures wall time,
# output size and peak RSS of:
#   pg_dump -Fc                       (default gzip compression)
#   pg_dump -Fc -Z0 | zstd -3 -T2
#   pg_dump -Fd -j2 -Z0               (directory; size = du -sb)
#   pgship-agent dump --format custom (default settings)
#   pgship-agent dump --format directory --jobs 2
# and prints a table per data set plus PASS/FAIL "goals" for pgship on the
# text-heavy set.  It is a benchmark, not a test: the exit status is 0 unless
# something errored (a failed command, a failed setup), whatever the goals say.
#
# Run as root (the cluster runs as the `postgres` OS user).  See --help.

# shellcheck source-path=SCRIPTDIR
set -euo pipefail

usage() {
    cat <<'EOF'
usage: tests/bench/dump_bench.sh [OPTIONS]

Benchmark pgship-agent dump against pg_dump -Fc, pg_dump -Fc -Z0 | zstd -3 -T2
and pg_dump -Fd -j2 on a throwaway PostgreSQL 15 cluster.

  --pgbench-scale N   pgbench -i scale of data set "pgbench" (default 50)
  --text-mb N         approximate size in MB of text-heavy data set "texty"
                      (default 300)
  --text-mb2 N        size in MB of the second text-heavy data set "texty2",
                      used only to check that pgship-agent's peak RSS does not
                      grow with the database (default: half of --text-mb)
  --runs N            measure every command N times, rows interleaved, and report
                      the median wall time and the largest RSS (default 3): this
                      machine's timings vary from run to run
  --keep              keep the work directory (cluster data dir, dumps, logs);
                      the cluster itself is always stopped on exit
  --workdir DIR       work directory (default: a new mktemp dir under /tmp)
  -h, --help          this help

Environment:
  PGSHIP_AGENT        pgship-agent binary (default build/bin/pgship-agent)
  PGSHIP_CLI          pgship binary, for keygen (default build/bin/pgship)
  PGSHIP_PGCLUSTER_LIB  cluster helper library
                      (default tests/integration/lib/pgcluster.sh)

The pgship rows are skipped, with a message, when the binaries are not built.
Columns: wall_s = wall-clock seconds; out_MB = output bytes / 1e6 (du -sb);
peak_rss_MiB = GNU time %M of the measured command (for a process that forks,
e.g. pg_dump -j2 or pgship-agent running pg_dump, this is the largest of the
process and its children; for the zstd pipeline it is zstd's);
self_rss_MiB = VmHWM of the measured process alone (sampled every 50 ms).
EOF
}

BENCH_NAME=dump_bench
die() { echo "$BENCH_NAME: $*" >&2; exit 1; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PG_DUMP=$PGBIN/pg_dump
PGBENCH=$PGBIN/pgbench
AGENT=${PGSHIP_AGENT:-$ROOT/build/bin/pgship-agent}
CLI=${PGSHIP_CLI:-$ROOT/build/bin/pgship}
PGC_LIB=${PGSHIP_PGCLUSTER_LIB:-$ROOT/tests/integration/lib/pgcluster.sh}
SQL=$ROOT/tests/bench/textheavy.sql
GNUTIME=/usr/bin/time
# shellcheck source=lib.sh
source "$ROOT/tests/bench/lib.sh"

SCALE=50
RUNS=3
TEXT_MB=300
TEXT_MB2=
KEEP=0
WORK=

while [[ $# -gt 0 ]]; do
    case $1 in
        --pgbench-scale) [[ $# -ge 2 ]] || die "$1 needs a value"; SCALE=$2; shift 2 ;;
        --pgbench-scale=*) SCALE=${1#*=}; shift ;;
        --text-mb) [[ $# -ge 2 ]] || die "$1 needs a value"; TEXT_MB=$2; shift 2 ;;
        --text-mb=*) TEXT_MB=${1#*=}; shift ;;
        --text-mb2) [[ $# -ge 2 ]] || die "$1 needs a value"; TEXT_MB2=$2; shift 2 ;;
        --text-mb2=*) TEXT_MB2=${1#*=}; shift ;;
        --runs) [[ $# -ge 2 ]] || die "$1 needs a value"; RUNS=$2; shift 2 ;;
        --runs=*) RUNS=${1#*=}; shift ;;
        --keep) KEEP=1; shift ;;
        --workdir) [[ $# -ge 2 ]] || die "$1 needs a value"; WORK=$2; shift 2 ;;
        --workdir=*) WORK=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
is_uint "$SCALE" || die "--pgbench-scale must be a positive integer"
is_uint "$RUNS" || die "--runs must be a positive integer"
is_uint "$TEXT_MB" || die "--text-mb must be a positive integer"
[[ -n $TEXT_MB2 ]] || TEXT_MB2=$(( (TEXT_MB + 1) / 2 ))
is_uint "$TEXT_MB2" || die "--text-mb2 must be a positive integer"

[[ $(id -u) -eq 0 ]] || die "run as root (the cluster runs as the postgres OS user via runuser)"
[[ -x $PG_DUMP ]] || die "missing $PG_DUMP (postgresql-15)"
[[ -x $PGBENCH ]] || die "missing $PGBENCH (postgresql-contrib / postgresql-15)"
[[ -r $SQL ]] || die "missing $SQL"
[[ -r $PGC_LIB ]] || die "missing $PGC_LIB"

[[ -x $GNUTIME ]] || apt_install time
command -v zstd >/dev/null 2>&1 || apt_install zstd
ZSTD=$(command -v zstd)

# shellcheck source=../integration/lib/pgcluster.sh
source "$PGC_LIB"

HAVE_PGSHIP=1
if [[ ! -x $AGENT ]]; then
    HAVE_PGSHIP=0; PGSHIP_WHY="pgship-agent not built ($AGENT missing)"
elif [[ ! -x $CLI ]]; then
    HAVE_PGSHIP=0; PGSHIP_WHY="pgship not built ($CLI missing; needed for keygen)"
fi

# ---------------------------------------------------------------------------
# work directory and cleanup
bench_workdir pgship-bench
PGDIR=$WORK/pg
OUT=$WORK/out
LOGS=$WORK/logs
KEYS=$WORK/keys
SPOOL=$WORK/spool
mkdir -p -- "$OUT" "$LOGS" "$KEYS" "$SPOOL"

BG_PIDS=()
SLEEP_FD=
# shellcheck disable=SC2317  # invoked by trap
cleanup() {
    local rc=$?
    set +e
    local p
    for p in "${BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    pgc_stop "$PGDIR" >/dev/null 2>&1
    if [[ $KEEP -eq 1 ]]; then
        echo "dump_bench: kept work directory $WORK (cluster stopped; restart with pgc_start $PGDIR PORT)" >&2
    elif [[ $CREATED_WORK -eq 1 ]]; then
        rm -rf -- "$WORK"
    else
        rm -rf -- "$PGDIR" "$OUT" "$LOGS" "$KEYS" "$SPOOL"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_nap_init

# ---------------------------------------------------------------------------
# cluster
PORT=$(pgc_free_port)
echo "== starting cluster in $PGDIR on port $PORT"
pgc_start "$PGDIR" "$PORT" shared_buffers=512MB max_wal_size=4GB \
    wal_level=minimal max_wal_senders=0
note_cmd "pgc_start $PGDIR $PORT shared_buffers=512MB max_wal_size=4GB wal_level=minimal max_wal_senders=0  (pgcluster.sh also sets fsync=off synchronous_commit=off full_page_writes=off)"

for db in pgbench texty texty2; do
    psql_q postgres -q -c "CREATE DATABASE $db"
done

echo "== generating data: pgbench scale $SCALE, texty ~${TEXT_MB} MB, texty2 ~${TEXT_MB2} MB"
T_GEN=$(now)
PGBENCH_CMD=("$PGBENCH" -i -q -s "$SCALE" -h 127.0.0.1 -p "$PORT" -U postgres pgbench)
note_cmd "$(show_cmd "${PGBENCH_CMD[@]}")"
(
    t=$(now)
    "${PGBENCH_CMD[@]}" >"$LOGS/gen_pgbench.log" 2>&1 || exit 1
    echo "   pgbench -i -s $SCALE done in $(secs_since "$t") s"
) &
PGB_PID=$!
BG_PIDS+=("$PGB_PID")

t=$(now)
gen_text texty "$TEXT_MB" || die "generating texty failed (logs above)"
echo "   texty done in $(secs_since "$t") s"
t=$(now)
gen_text texty2 "$TEXT_MB2" || die "generating texty2 failed (logs above)"
echo "   texty2 done in $(secs_since "$t") s"
if ! wait "$PGB_PID"; then
    cat "$LOGS/gen_pgbench.log" >&2
    die "pgbench -i failed"
fi
BG_PIDS=()
psql_q postgres -q -c CHECKPOINT
echo "   all data generated in $(secs_since "$T_GEN") s (pgbench init ran concurrently with the text sets)"

declare -A DBSIZE
for db in pgbench texty texty2; do
    DBSIZE[$db]=$(db_bytes "$db")
    echo "   db $db: $(mb "${DBSIZE[$db]}") MB (pg_database_size)"
done

if [[ $HAVE_PGSHIP -eq 1 ]]; then
    ( cd "$KEYS" && "$CLI" keygen bench >"$LOGS/keygen.log" 2>&1 ) \
        || { cat "$LOGS/keygen.log" >&2; die "pgship keygen failed"; }
    [[ -r $KEYS/bench.pub ]] || die "pgship keygen did not write $KEYS/bench.pub"
    note_cmd "cd $KEYS && $(show_cmd "$CLI" keygen bench)"
else
    echo "== SKIPPING pgship rows: $PGSHIP_WHY"
fi

# ---------------------------------------------------------------------------
# measurement (measure and aggregate are in lib.sh)
ROWS=(fc zstd fd pgc pgd)
declare -A LABEL=(
    [fc]="pg_dump -Fc"
    [zstd]="pg_dump -Fc -Z0 | zstd -3 -T2"
    [fd]="pg_dump -Fd -j2 -Z0"
    [pgc]="pgship-agent --format custom"
    [pgd]="pgship-agent --format directory -j2"
)

bench_db() {
    local db=$1; shift
    local rows=("$@") r key out conn run
    conn=$(pgc_conninfo "$PORT" "$db")
    echo "== dataset $db ($(mb "${DBSIZE[$db]}") MB)"
    echo "   warm-up: pg_dump -Fc -Z0 > /dev/null"
    "$PG_DUMP" -d "$conn" -Fc -Z0 >/dev/null 2>"$LOGS/warmup.$db.log" \
        || { cat "$LOGS/warmup.$db.log" >&2; die "warm-up pg_dump of $db failed"; }
    for ((run = 1; run <= RUNS; run++)); do
    for r in "${rows[@]}"; do
        key=$db.$r#$run
        case $r in
            fc)
                out=$OUT/$db.fc.dump
                measure "$key" "$out" - "$PG_DUMP" -d "$conn" -Fc -f "$out" ;;
            zstd)
                out=$OUT/$db.fc-z0.dump.zst
                local rf=$LOGS/rss.$key
                local pipe
                pipe="set -o pipefail; $(show_cmd "$PG_DUMP" -d "$conn" -Fc -Z0) | $(show_cmd "$GNUTIME" -f %M -o "$rf" "$ZSTD" -3 -T2 -q -o "$out")"
                measure "$key" "$out" "$rf" bash -c "$pipe"
                R_CMD[$key]="$(show_cmd "$PG_DUMP" -d "$conn" -Fc -Z0) | $(show_cmd "$ZSTD" -3 -T2 -q -o "$out")" ;;
            fd)
                out=$OUT/$db.fd
                measure "$key" "$out" - "$PG_DUMP" -d "$conn" -Fd -j2 -Z0 -f "$out" ;;
            pgc|pgd)
                if [[ $HAVE_PGSHIP -ne 1 ]]; then
                    R_ERR[$key]="skipped"
                    continue
                fi
                if [[ $r == pgc ]]; then
                    out=$OUT/$db.pgship-custom
                    measure "$key" "$out" - "$AGENT" dump --dbname "$conn" \
                        --recipient "$KEYS/bench.pub" -o "$out" --format custom
                else
                    out=$OUT/$db.pgship-directory
                    measure "$key" "$out" - "$AGENT" dump --dbname "$conn" \
                        --recipient "$KEYS/bench.pub" -o "$out" --format directory --jobs 2 \
                        --spool-dir "$SPOOL"
                fi ;;
        esac
    done
    done
    for r in "${rows[@]}"; do
        key=$db.$r
        [[ ${R_ERR[$key#1]:-} == skipped ]] && { R_ERR[$key]=skipped; continue; }
        aggregate "$key" "$RUNS"
        [[ -z ${R_CMD[$key]:-} ]] || note_cmd "${R_CMD[$key]}"
    done
}

bench_db pgbench "${ROWS[@]}"
bench_db texty "${ROWS[@]}"
bench_db texty2 pgc

# ---------------------------------------------------------------------------
# report
fmt_row() {   # KEY LABEL BASEKEY
    local key=$1 label=$2 base=$3
    if [[ -n ${R_ERR[$key]:-} || -z ${R_WALL[$key]:-} ]]; then
        printf '  %-36s %s\n' "$label" "${R_ERR[$key]:-not run}"
        return
    fi
    awk -v l="$label" -v w="${R_WALL[$key]}" -v b="${R_BYTES[$key]}" \
        -v r="${R_RSS[$key]}" -v s="${R_SELF[$key]}" \
        -v bw="${R_WALL[$base]:-}" -v bb="${R_BYTES[$base]:-}" 'BEGIN {
        sp = (bw != "" && w > 0) ? sprintf("%.2fx", bw / w) : "-"
        sz = (bb != "" && bb > 0) ? sprintf("%.2f", b / bb) : "-"
        printf "  %-36s %8.2f %9.1f %13.1f %13.1f %12s %9s\n", l, w, b / 1e6, r, s, sp, sz
    }'
}

echo
echo "================================================================================================"
echo "results (PostgreSQL $("$PG_DUMP" --version | awk '{print $3}'), $(nproc) CPUs, $(zstd --version | grep -o 'v[0-9.]*' | head -n1) zstd)"
for db in pgbench texty texty2; do
    echo
    echo "dataset $db (db $(mb "${DBSIZE[$db]}") MB)"
    printf '  %-36s %8s %9s %13s %13s %12s %9s\n' tool wall_s out_MB peak_rss_MiB self_rss_MiB "speed_vs_Fc" "size_vs_Fc"
    if [[ $db == texty2 ]]; then
        fmt_row "$db.pgc" "${LABEL[pgc]}" "$db.fc"
    else
        for r in "${ROWS[@]}"; do fmt_row "$db.$r" "${LABEL[$r]}" "$db.fc"; done
    fi
done

echo
echo "goals (dataset texty; pgship-agent = --format custom unless noted):"
goal() {  # name verdict detail
    printf '  %-4s  %-58s %s\n' "$2" "$1" "$3"
}
have() { local k; for k in "$@"; do [[ -n ${R_WALL[$k]:-} && -z ${R_ERR[$k]:-} ]] || return 1; done; }
fcmp() { awk "BEGIN { exit !($1) }"; }
verdict() { if fcmp "$1"; then echo PASS; else echo FAIL; fi; }

T=texty
if have $T.pgc $T.fc; then
    goal "at least 3x faster than pg_dump -Fc" "$(verdict "${R_WALL[$T.fc]} / ${R_WALL[$T.pgc]} >= 3")" \
        "$(awk -v a="${R_WALL[$T.fc]}" -v b="${R_WALL[$T.pgc]}" 'BEGIN{printf "%.2fx (%.2f s vs %.2f s)", a/b, b, a}')"
else goal "at least 3x faster than pg_dump -Fc" SKIP "no data"; fi
if have $T.pgc $T.zstd; then
    goal "wall within 1.2x of pg_dump -Fc -Z0 | zstd -3 -T2" "$(verdict "${R_WALL[$T.pgc]} <= 1.2 * ${R_WALL[$T.zstd]}")" \
        "$(awk -v a="${R_WALL[$T.pgc]}" -v b="${R_WALL[$T.zstd]}" 'BEGIN{printf "%.2fx (%.2f s vs %.2f s)", a/b, a, b}')"
else goal "wall within 1.2x of pg_dump -Fc -Z0 | zstd -3 -T2" SKIP "no data"; fi
if have $T.pgc $T.fc; then
    goal "output no larger than pg_dump -Fc" "$(verdict "${R_BYTES[$T.pgc]} <= ${R_BYTES[$T.fc]}")" \
        "$(awk -v a="${R_BYTES[$T.pgc]}" -v b="${R_BYTES[$T.fc]}" 'BEGIN{printf "%.1f MB vs %.1f MB (%.3f)", a/1e6, b/1e6, a/b}')"
else goal "output no larger than pg_dump -Fc" SKIP "no data"; fi
for r in pgc pgd; do
    name="peak RSS under 64 MiB (${LABEL[$r]#pgship-agent })"
    if have $T.$r; then
        goal "$name" "$(verdict "${R_SELF[$T.$r]} < 64")" \
            "pgship-agent itself ${R_SELF[$T.$r]} MiB (with pg_dump children: ${R_RSS[$T.$r]} MiB)"
    else goal "$name" SKIP "no data"; fi
done
if have texty.pgc texty2.pgc && fcmp "${R_SELF[texty.pgc]} > 0 && ${R_SELF[texty2.pgc]} > 0"; then
    goal "peak RSS flat: texty vs texty2 differ by < 25%" \
        "$(verdict "(${R_SELF[texty.pgc]} > ${R_SELF[texty2.pgc]} ? ${R_SELF[texty.pgc]} / ${R_SELF[texty2.pgc]} : ${R_SELF[texty2.pgc]} / ${R_SELF[texty.pgc]}) < 1.25")" \
        "$(awk -v a="${R_SELF[texty.pgc]}" -v b="${R_SELF[texty2.pgc]}" -v sa="$(mb "${DBSIZE[texty]}")" -v sb="$(mb "${DBSIZE[texty2]}")" \
            'BEGIN{hi=(a>b)?a:b; lo=(a>b)?b:a; d=(lo>0)?(hi/lo-1)*100:0; printf "%.1f MiB (%s MB db) vs %.1f MiB (%s MB db): +%.0f%%", a, sa, b, sb, d}')"
else goal "peak RSS flat: texty vs texty2 differ by < 25%" SKIP "no data"; fi
echo "  (RSS goals use pgship-agent's own VmHWM; pg_dump's memory is the same in every row)"
[[ $HAVE_PGSHIP -eq 1 ]] || echo "  pgship rows skipped: $PGSHIP_WHY"

echo
echo "commands used:"
for c in "${COMMANDS[@]}"; do
    echo "  $c"
done
echo "  (every measured command ran as: $GNUTIME -f '%e %M' -o FILE CMD; each data set was first read once with: pg_dump -d CONNINFO -Fc -Z0 > /dev/null)"

if [[ $ERRORS -gt 0 ]]; then
    echo
    echo "dump_bench: $ERRORS measured command(s) failed; logs in $LOGS (use --keep to keep them)" >&2
    exit 1
fi
exit 0
