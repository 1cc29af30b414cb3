# shellcheck shell=bash
# lib.sh - what the benchmark scripts share: the text-heavy data set, timing and peak-RSS
# measurement of one command, the median over runs, and small helpers.
#
# Source it from a benchmark (after tests/integration/lib/pgcluster.sh); it defines functions and
# the result arrays below and changes no shell options. The benchmarks are the only users, so it
# reads their globals instead of taking a dozen arguments:
#
#   BENCH_NAME  the script's name, for messages ("dump_bench")
#   die MSG     defined by the script: print "BENCH_NAME: MSG" and exit 1
#   GNUTIME     GNU time (/usr/bin/time)          LOGS  directory for logs
#   PORT        the cluster's port (psql_q)       SQL   tests/bench/textheavy.sql (gen_text)
#
# Functions:
#   is_uint S                   S is a positive decimal integer
#   apt_install PKG...          apt-get install, once more after apt-get update if needed
#   nap SECONDS                 sleep without forking (needs bench_nap_init first)
#   now / secs_since T          wall clock (date +%s.%N) / seconds since T, one decimal
#   show_cmd ARG...             the command shell-quoted for display
#   note_cmd TEXT               append TEXT to COMMANDS, the report's "commands used"
#   mb BYTES                    BYTES in MiB, rounded
#   psql_q DB [ARGS...]         psql on the benchmark cluster
#   db_bytes DB                 pg_database_size(DB)
#   text_vars MB / gen_text DB MB   the text-heavy data set of about MB MB (see below)
#   read_hwm PID                HWM_KB = VmHWM of PID in KiB (0 when gone)
#   alive PID                   PID exists and is not a zombie
#   measure KEY OUTPATH RSSFILE CMD...   run and measure CMD (see below)
#   aggregate KEY N             median wall, median CPU and largest RSS of KEY#1..KEY#N
#   cpu_busy                    busy CPU time of the whole machine so far (/proc/stat), in ticks

declare -A R_WALL R_BYTES R_RSS R_SELF R_ERR R_CMD R_CPU
ERRORS=0
COMMANDS=() # everything we ran, for the "commands used" section

is_uint() { [[ $1 =~ ^[0-9]+$ ]] && (( 10#$1 > 0 )); }

apt_install() {
    echo "$BENCH_NAME: installing $* with apt-get" >&2
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null || die "apt-get install $* failed"
    fi
}

# A file descriptor that never delivers data: `read -t` on it is a fork-free sleep, which matters
# in the 50 ms RSS sampling loop of a 2-core machine.
SLEEP_FD=
bench_nap_init() { exec {SLEEP_FD}<> <(:); }
nap() { read -r -t "$1" -u "$SLEEP_FD" _ || true; }

now() { date +%s.%N; }

# bench_workdir PREFIX: WORK becomes a new /tmp/PREFIX.XXXXXX (CREATED_WORK=1, removed at exit by
# the caller) or, when already set (--workdir), that directory made absolute; readable by the
# postgres user either way.
bench_workdir() {
    CREATED_WORK=0
    if [[ -z $WORK ]]; then
        WORK=$(mktemp -d "/tmp/$1.XXXXXX")
        CREATED_WORK=1
    else
        mkdir -p -- "$WORK"
        WORK=$(cd -- "$WORK" && pwd)
    fi
    chmod 755 -- "$WORK"
}
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# Shell-quote a command for display (readable: only quote when needed).
show_cmd() {
    local a out=""
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9_./:=,+@%-]+$ ]]; then
            out+="$a "
        else
            out+="'${a//\'/\'\\\'\'}' "
        fi
    done
    printf '%s\n' "${out% }"
}

note_cmd() { COMMANDS+=("$*"); }

mb() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }

psql_q() { pgc_psql "$PORT" "$@"; }
db_bytes() { psql_q postgres -Atc "SELECT pg_database_size('$1')"; }

# Text-heavy generation.  Row counts per MB of pg_database_size, calibrated
# on PostgreSQL 15 (customers ~300 B/row, comments ~245, events ~420,
# order_lines ~100, incl. primary keys); ~8 MB is an empty database.
text_vars() {
    local target=$(( $1 > 9 ? $1 - 8 : 1 ))
    printf -- '-v cu_rows=%d -v cm_rows=%d -v ev_rows=%d -v ol_rows=%d' \
        $(( target * 877 )) $(( target * 1380 )) $(( target * 700 )) $(( target * 1557 ))
}

# gen_text DB MB : setup, then two parallel sessions, then finish.
gen_text() {
    local db=$1 size=$2 vars p1 p2 rc=0
    # shellcheck disable=SC2207
    vars=($(text_vars "$size"))
    local -a args=(-q "${vars[@]}" -f "$SQL")
    note_cmd "$(show_cmd psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d "$db" -v step=STEP "${vars[@]}" -f "$SQL") # STEP = setup; then customers+events || comments+order_lines in parallel; then finish"
    psql_q "$db" -v step=setup "${args[@]}" >"$LOGS/gen_$db.setup.log" 2>&1 \
        || { cat "$LOGS/gen_$db.setup.log" >&2; return 1; }
    ( psql_q "$db" -v step=customers "${args[@]}" && psql_q "$db" -v step=events "${args[@]}" ) \
        >"$LOGS/gen_$db.a.log" 2>&1 &
    p1=$!
    ( psql_q "$db" -v step=comments "${args[@]}" && psql_q "$db" -v step=order_lines "${args[@]}" ) \
        >"$LOGS/gen_$db.b.log" 2>&1 &
    p2=$!
    wait "$p1" || { rc=1; cat "$LOGS/gen_$db.a.log" >&2; }
    wait "$p2" || { rc=1; cat "$LOGS/gen_$db.b.log" >&2; }
    [[ $rc -eq 0 ]] || return 1
    psql_q "$db" -v step=finish "${args[@]}" >"$LOGS/gen_$db.finish.log" 2>&1 \
        || { cat "$LOGS/gen_$db.finish.log" >&2; return 1; }
}

# Sets HWM_KB to VmHWM of pid $1 (0 when gone).
read_hwm() {
    HWM_KB=0
    local k v rest
    { while read -r k v rest; do
          if [[ $k == VmHWM: ]]; then HWM_KB=$v; break; fi
      done <"/proc/$1/status"; } 2>/dev/null || true
}
# Succeeds while pid $1 exists and is not a zombie.
alive() {
    local line
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    line=${line##*) }
    [[ ${line:0:1} != Z ]]
}

# measure KEY OUTPATH RSSFILE CMD... : runs CMD under GNU time; sets
# R_WALL[KEY] R_BYTES[KEY] R_RSS[KEY] R_SELF[KEY] R_ERR[KEY].
# OUTPATH is removed first and its size (du -sb) is R_BYTES afterwards; "-" when CMD writes no
# local output (R_BYTES is then 0 and the caller sets it).
# RSSFILE, if not "-", is a GNU time -f %M output (inner process) that
# replaces both RSS figures (used for zstd in the pipeline).
# A failed CMD sets R_ERR[KEY], counts in ERRORS and shows the end of its log; measure itself
# still returns 0 so that one failed row does not end the benchmark.
# The whole machine's busy time (user, nice, system, irq, softirq, steal of every CPU), in
# CLK_TCK ticks: measure's R_CPU, the CPU a command cost with everything it set in motion
# (PostgreSQL's backends, the daemons, s3rver), not only its own process tree.
cpu_busy() {
    local _ u n s i w q sq st
    read -r _ u n s i w q sq st _ </proc/stat
    echo $((u + n + s + q + sq + st))
}
CLK_TCK=$(getconf CLK_TCK)

measure() {
    local key=$1 outpath=$2 rssfile=$3; shift 3
    local tf=$LOGS/time.$key log=$LOGS/run.$key.log
    [[ $outpath == - ]] || rm -rf -- "$outpath"
    rm -f -- "$tf"
    [[ $rssfile == - ]] || rm -f -- "$rssfile"
    R_CMD[$key]=$(show_cmd "$@")
    echo "   running $key"
    # The measured process announces its pid (a shell that then execs CMD,
    # so the pid stays the same) for the VmHWM sampler.
    local pidf=$LOGS/pid.$key
    rm -f -- "$pidf"
    # shellcheck disable=SC2016  # $$ and $@ are for the inner shell
    local busy0 busy1
    busy0=$(cpu_busy)
    "$GNUTIME" -f '%e %M' -o "$tf" bash -c 'echo $$ >"$0"; exec "$@"' "$pidf" "$@" >"$log" 2>&1 &
    local tpid=$! cpid="" self=0 rc=0
    while alive "$tpid"; do
        if [[ -z $cpid ]]; then
            { read -r cpid <"$pidf"; } 2>/dev/null || true
            [[ ${cpid:-} =~ ^[0-9]+$ ]] || cpid=""
        fi
        if [[ -n $cpid ]]; then
            read_hwm "$cpid"
            if (( HWM_KB > self )); then self=$HWM_KB; fi
        fi
        nap 0.05
    done
    wait "$tpid" || rc=$?
    busy1=$(cpu_busy)
    R_CPU[$key]=$(awk -v a="$busy0" -v b="$busy1" -v t="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / t }')
    sync
    local wall rss
    read -r wall rss < <(grep -E '^[0-9.]+ [0-9]+$' "$tf" | tail -n 1) || true
    if [[ $rc -ne 0 || -z ${wall:-} ]]; then
        R_ERR[$key]="exit $rc"
        ERRORS=$((ERRORS + 1))
        echo "   ERROR: $key failed (exit $rc); last lines of $log:" >&2
        tail -n 20 -- "$log" >&2 || true
        return 0
    fi
    if [[ $rssfile != - ]]; then
        rss=$(grep -E '^[0-9]+$' "$rssfile" | tail -n 1 || true)
        [[ -n $rss ]] || rss=0
        self=$rss
    fi
    R_WALL[$key]=$wall
    R_RSS[$key]=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
    R_SELF[$key]=$(awk -v k="$self" 'BEGIN { printf "%.1f", k / 1024 }')
    if [[ $outpath == - ]]; then
        R_BYTES[$key]=0
    else
        R_BYTES[$key]=$(du -sb -- "$outpath" | cut -f1)
    fi
}

# aggregate KEY N: R_*[KEY] from runs KEY#1..KEY#N: median wall, largest RSS, last size.
aggregate() {
    local key=$1 n=$2 i walls=() cpus=() rss=0 self=0
    for ((i = 1; i <= n; i++)); do
        local k=$key#$i
        if [[ -n ${R_ERR[$k]:-} ]]; then R_ERR[$key]=${R_ERR[$k]}; return; fi
        walls+=("${R_WALL[$k]}")
        cpus+=("${R_CPU[$k]:-0}")
        rss=$(awk -v a="$rss" -v b="${R_RSS[$k]}" 'BEGIN { print (b > a ? b : a) }')
        self=$(awk -v a="$self" -v b="${R_SELF[$k]}" 'BEGIN { print (b > a ? b : a) }')
        R_BYTES[$key]=${R_BYTES[$k]}
        R_CMD[$key]=${R_CMD[$k]}
    done
    R_WALL[$key]=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    R_CPU[$key]=$(printf '%s\n' "${cpus[@]}" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    R_RSS[$key]=$rss
    R_SELF[$key]=$self
}
