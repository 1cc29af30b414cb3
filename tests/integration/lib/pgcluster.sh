# shellcheck shell=bash
# pgcluster.sh - throwaway PostgreSQL clusters for pgship integration tests.
#
# Source this file; it defines functions only and changes no shell options.
# Clusters run as the `postgres` OS user (PostgreSQL refuses to run as root).
#
#   pgc_free_port                      print a free TCP port on 127.0.0.1
#   pgc_start DIR PORT [name=value...] initdb (if needed) + start, extra -c settings
#   pgc_stop DIR                       fast stop (no error if not running)
#   pgc_destroy DIR                    stop + rm -rf DIR
#   pgc_psql PORT DB [psql args...]    psql -X -v ON_ERROR_STOP=1 as user postgres
#   pgc_conninfo PORT DB               print a libpq conninfo string
#
# Environment:
#   PGC_BINDIR   server binaries (default /usr/lib/postgresql/15/bin)
#   PGC_OSUSER   OS user owning the clusters (default postgres)

: "${PGC_BINDIR:=/usr/lib/postgresql/15/bin}"
: "${PGC_OSUSER:=postgres}"

# pgc_bin NAME : path of a client/server binary, PGC_BINDIR first, then PATH.
pgc_bin() {
    local name=$1
    if [[ -x "$PGC_BINDIR/$name" ]]; then
        printf '%s\n' "$PGC_BINDIR/$name"
    elif command -v -- "$name" >/dev/null 2>&1; then
        command -v -- "$name"
    else
        echo "pgcluster: cannot find '$name' in $PGC_BINDIR or PATH" >&2
        return 1
    fi
}

# Run a command as the cluster OS user, from a directory it can access, with
# a sanitised libpq/server environment.
_pgc_as_user() {
    local cwd=$1; shift
    (
        cd -- "$cwd" || exit 1
        exec env -u PGDATA -u PGPORT -u PGHOST -u PGUSER -u PGDATABASE \
                 -u PGOPTIONS -u PGSERVICE -u PGSERVICEFILE \
             runuser -u "$PGC_OSUSER" -- "$@"
    )
}

_pgc_abspath() {
    local d=$1
    case $d in
        /*) ;;
        *) d="$PWD/$d" ;;
    esac
    # collapse trailing slashes
    while [[ ${#d} -gt 1 && $d == */ ]]; do d=${d%/}; done
    printf '%s\n' "$d"
}

# Make every ancestor of DIR traversable by the cluster OS user.
_pgc_make_traversable() {
    local d=$1
    if _pgc_as_user / test -x "$d" 2>/dev/null; then
        return 0
    fi
    # Walk top-down so each test only fails because of that component.
    local p="" comp
    local -a comps
    IFS=/ read -r -a comps <<<"${d#/}"
    for comp in "${comps[@]}"; do
        [[ -n $comp ]] || continue
        p+="/$comp"
        if ! _pgc_as_user / test -x "$p" 2>/dev/null; then
            chmod o+x -- "$p" || return 1
        fi
    done
    return 0
}

pgc_free_port() {
    local i port
    for ((i = 0; i < 200; i++)); do
        port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 20000 ))
        # A successful connect means something listens there.
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            continue
        fi
        # Also skip ports whose unix socket lock might be in use in /tmp.
        if [[ -e "/tmp/.s.PGSQL.$port" ]]; then
            continue
        fi
        printf '%s\n' "$port"
        return 0
    done
    echo "pgc_free_port: no free port found" >&2
    return 1
}

_pgc_log_tail() {
    local log=$1
    if [[ -r $log ]]; then
        echo "---- last lines of $log ----" >&2
        tail -n 40 -- "$log" >&2 || true
        echo "---- end of $log ----" >&2
    else
        echo "(no server log at $log)" >&2
    fi
}

pgc_start() {
    if [[ $# -lt 2 ]]; then
        echo "usage: pgc_start DIR PORT [name=value ...]" >&2
        return 2
    fi
    local dir port
    dir=$(_pgc_abspath "$1"); port=$2; shift 2
    if [[ ! $port =~ ^[0-9]+$ ]]; then
        echo "pgc_start: bad port '$port'" >&2
        return 2
    fi
    local data="$dir/data" log="$dir/log/postgres.log"
    local initdb pg_ctl
    initdb=$(pgc_bin initdb) || return 1
    pg_ctl=$(pgc_bin pg_ctl) || return 1

    # Build the -o option string. pg_ctl hands it to /bin/sh, so every
    # setting is single-quoted (with ' escaped) and names are validated.
    local opts="" kv name
    local q="'" qq="'\\''"
    for kv in "listen_addresses=127.0.0.1" "port=$port" \
              "unix_socket_directories=$dir" "fsync=off" \
              "synchronous_commit=off" "full_page_writes=off" "$@"; do
        name=${kv%%=*}
        if [[ $kv != *=* || ! $name =~ ^[A-Za-z_][A-Za-z0-9_.]*$ ]]; then
            echo "pgc_start: bad setting '$kv' (expected name=value)" >&2
            return 2
        fi
        opts+=" -c '${kv//$q/$qq}'"
    done

    mkdir -p -- "$dir/log" || return 1
    chown "$PGC_OSUSER:" -- "$dir" "$dir/log" || return 1
    _pgc_make_traversable "$dir" || {
        echo "pgc_start: cannot make $dir reachable by $PGC_OSUSER" >&2
        return 1
    }

    if [[ ! -s "$data/PG_VERSION" ]]; then
        local initlog="$dir/log/initdb.log"
        if ! _pgc_as_user "$dir" "$initdb" -D "$data" -A trust -U postgres \
                --encoding=UTF8 --locale=C -N >"$initlog" 2>&1; then
            echo "pgc_start: initdb failed for $data" >&2
            _pgc_log_tail "$initlog"
            return 1
        fi
        cat >"$data/pg_hba.conf" <<'HBA'
# written by pgcluster.sh (tests only)
local   all             all                     trust
host    all             all     127.0.0.1/32    trust
local   replication     all                     trust
host    replication     all     127.0.0.1/32    trust
HBA
        chown "$PGC_OSUSER:" -- "$data/pg_hba.conf" || return 1
    fi

    # Already running on this data directory?
    if _pgc_as_user "$dir" "$pg_ctl" status -D "$data" >/dev/null 2>&1; then
        return 0
    fi

    touch -- "$log" && chown "$PGC_OSUSER:" -- "$log" || return 1
    if ! _pgc_as_user "$dir" "$pg_ctl" start -w -t 60 -D "$data" -l "$log" \
            -o "$opts" >"$dir/log/pg_ctl.log" 2>&1; then
        echo "pgc_start: failed to start cluster in $data on port $port" >&2
        cat -- "$dir/log/pg_ctl.log" >&2 || true
        _pgc_log_tail "$log"
        return 1
    fi
    return 0
}

pgc_stop() {
    if [[ $# -lt 1 ]]; then
        echo "usage: pgc_stop DIR" >&2
        return 2
    fi
    local dir data pg_ctl rc=0
    dir=$(_pgc_abspath "$1")
    data="$dir/data"
    [[ -s "$data/PG_VERSION" ]] || return 0
    pg_ctl=$(pgc_bin pg_ctl) || return 1
    _pgc_as_user "$dir" "$pg_ctl" status -D "$data" >/dev/null 2>&1 || return 0
    _pgc_as_user "$dir" "$pg_ctl" stop -w -t 60 -m fast -D "$data" >/dev/null 2>&1 || rc=$?
    if [[ $rc -ne 0 ]] && _pgc_as_user "$dir" "$pg_ctl" status -D "$data" >/dev/null 2>&1; then
        echo "pgc_stop: failed to stop cluster in $data" >&2
        _pgc_log_tail "$dir/log/postgres.log"
        return 1
    fi
    return 0
}

pgc_destroy() {
    if [[ $# -lt 1 || -z $1 ]]; then
        echo "usage: pgc_destroy DIR" >&2
        return 2
    fi
    local dir
    dir=$(_pgc_abspath "$1")
    if [[ $dir == / || $dir == /tmp || $dir == "${HOME:-/root}" ]]; then
        echo "pgc_destroy: refusing to remove '$dir'" >&2
        return 2
    fi
    pgc_stop "$dir" || return 1
    rm -rf -- "$dir"
}

pgc_psql() {
    if [[ $# -lt 2 ]]; then
        echo "usage: pgc_psql PORT DB [psql args...]" >&2
        return 2
    fi
    local port=$1 db=$2 psql
    shift 2
    psql=$(pgc_bin psql) || return 1
    "$psql" -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

pgc_conninfo() {
    if [[ $# -lt 2 ]]; then
        echo "usage: pgc_conninfo PORT DB" >&2
        return 2
    fi
    local db=$2
    if [[ ! $db =~ ^[A-Za-z0-9_.-]+$ ]]; then
        db=${db//\\/\\\\}
        db="'${db//\'/\\\'}'"
    fi
    printf 'host=127.0.0.1 port=%s user=postgres dbname=%s\n' "$1" "$db"
}
