# shellcheck shell=bash
# fleet.sh - a throwaway pgship fleet (one coordinator, any number of agents) on loopback, for
# integration tests and benchmarks.
#
# Source this file; it defines functions and the FLEET_* variables below and changes no shell
# options. Run as a user who can read what the daemons read (tests run as root). Files it writes
# follow docs/configuration.md: absolute paths, secret files mode 0600, one key per line. Every
# function returns 0 on success and 1 (with a message on stderr) on failure; 2 on bad usage.
#
#   fleet_certs DIR [CLIENT...]
#       a CA and the coordinator's certificate (names localhost and 127.0.0.1) in DIR, and a client
#       certificate per CLIENT, with deploy/make-certs.sh: DIR/ca.crt, DIR/coordinator.{crt,key},
#       DIR/CLIENT.{crt,key}. Run again with new CLIENTs to add them to the same CA.
#   fleet_identity DIR NAME
#       an agent identity (pgship keygen --identity): DIR/NAME.key (the agent's identity_key) and
#       DIR/NAME.pub (its line goes into the coordinator's [agent NAME] public_key).
#   fleet_recipient DIR NAME
#       a recipient key pair (pgship keygen): DIR/NAME.pub (agents seal to it), DIR/NAME.key.
#   fleet_coordinator_conf CONF CERTDIR STATEDIR [OPTION...]
#       writes the coordinator's config CONF: listen on tls+tcp://127.0.0.1:<free port> with
#       CERTDIR/coordinator.{crt,key}, the API on http://127.0.0.1:<free port> with a new token in
#       STATEDIR/api-token, the catalog STATEDIR/catalog.db, fs storage in STATEDIR/archive.
#       Sets FLEET_LISTEN, FLEET_API_URL and FLEET_TOKEN_FILE (the values written). Options:
#         --agent NAME PUBFILE        allow agent NAME with the identity PUBFILE (repeatable)
#         --storage-fs DIR            fs storage in DIR (created)
#         --storage-s3 ENDPOINT BUCKET   s3 storage, path style, region us-east-1, access key
#                                     S3RVER and secret STATEDIR/s3-secret (s3rver's account)
#         --client-ca                 require agents' client certificates (tls_ca = CERTDIR/ca.crt)
#         --insecure                  listen on tcp:// instead, with allow_insecure_transport
#         --set KEY=VALUE             a [coordinator] key: replaces the default, or is added;
#                                     KEY= (empty) removes the key (repeatable)
#         --storage-set KEY=VALUE     the same for [storage]
#   fleet_agent_conf CONF NAME CERTDIR IDENTITY_KEY [OPTION...]
#       writes agent NAME's config CONF, dialing FLEET_LISTEN (tls_server_name localhost, CA
#       CERTDIR/ca.crt), with identity IDENTITY_KEY and spool_dir <dir of CONF>/spool-NAME.
#       A coordinator URL that is not tls+tcp:// leaves out the tls_* keys and sets
#       allow_insecure_transport. Options:
#         --db NAME ENVIRONMENT CONNINFO   a [database NAME] section (repeatable)
#         --recipient PUBFILE         add to the agent's recipients (repeatable; at least one)
#         --coordinator URL           dial URL instead of FLEET_LISTEN
#         --client-cert               present CERTDIR/NAME.{crt,key} (see fleet_certs CLIENT)
#         --spool DIR                 spool_dir (created, mode 0700)
#         --set KEY=VALUE             an [agent] key, as for the coordinator (repeatable)
#   fleet_start_coordinator CONF LOG
#       starts `pgship-coordinator -c CONF` in the background (output to LOG) and waits until its
#       listen and api_listen ports listen. Sets FLEET_COORD_PID.
#   fleet_start_agent CONF LOG
#       starts `pgship-agent -c CONF` in the background (output to LOG). Sets
#       FLEET_AGENT_PID[NAME] (NAME from CONF) and FLEET_LAST_PID.
#   fleet_wait_agent NAME [TIMEOUT_S]
#       polls `pgship agents --json` until agent NAME is connected (default 30 s); fails early,
#       with the end of its log, when the agent process has exited.
#   fleet_client ARG...
#       runs `pgship ARG...` against this fleet's API (PGSHIP_URL, PGSHIP_TOKEN set for it only).
#   fleet_hwm_kb PID
#       prints VmHWM (peak resident set) of PID in KiB; 0 when it is gone.
#   fleet_stop_all
#       SIGTERM to every daemon started here, agents first, then the coordinator; SIGKILL after
#       FLEET_STOP_TIMEOUT seconds. Returns 1 when one had to be killed (it did not stop cleanly).
#
# Environment:
#   FLEET_BIN_DIR        where the binaries are (default build/bin of this checkout)
#   PGSHIP_COORDINATOR, PGSHIP_AGENT, PGSHIP_CLI   the binaries themselves (override FLEET_BIN_DIR)
#   FLEET_START_TIMEOUT  seconds to wait for a coordinator's ports (default 30)
#   FLEET_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (default 10)

_FLEET_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
: "${FLEET_BIN_DIR:=$_FLEET_ROOT/build/bin}"
: "${FLEET_COORDINATOR:=${PGSHIP_COORDINATOR:-$FLEET_BIN_DIR/pgship-coordinator}}"
: "${FLEET_AGENT:=${PGSHIP_AGENT:-$FLEET_BIN_DIR/pgship-agent}}"
: "${FLEET_CLI:=${PGSHIP_CLI:-$FLEET_BIN_DIR/pgship}}"
: "${FLEET_START_TIMEOUT:=30}"
: "${FLEET_STOP_TIMEOUT:=10}"

FLEET_LISTEN=${FLEET_LISTEN:-}
FLEET_API_URL=${FLEET_API_URL:-}
FLEET_TOKEN_FILE=${FLEET_TOKEN_FILE:-}
FLEET_COORD_PID=${FLEET_COORD_PID:-}
FLEET_COORD_LOG=${FLEET_COORD_LOG:-}
FLEET_LAST_PID=${FLEET_LAST_PID:-}
declare -gA FLEET_AGENT_PID FLEET_AGENT_LOG
declare -ga FLEET_PIDS

_fleet_err() { echo "fleet: $*" >&2; }

_fleet_abspath() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$PWD/$1" ;;
    esac
}

fleet_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# _fleet_log_tail LOG: the end of a daemon's log, for failure messages.
_fleet_log_tail() {
    if [[ -r $1 ]]; then
        echo "---- last lines of $1 ----" >&2
        tail -n 30 -- "$1" >&2 || true
        echo "---- end of $1 ----" >&2
    fi
}

# _fleet_alive PID: PID exists and is not a zombie.
_fleet_alive() {
    local line
    { read -r line <"/proc/$1/stat"; } 2>/dev/null || return 1
    line=${line##*) }
    [[ ${line:0:1} != Z ]]
}

# _fleet_listening PORT: something listens on TCP PORT (read from /proc: no connection is made,
# so the daemon's log shows no aborted handshake).
_fleet_listening() {
    local hex
    printf -v hex '%04X' "$1"
    awk -v h=":$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == h { f = 1 }
                      END { exit !f }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# _fleet_conf_get CONF SECTION KEY: the value of KEY in [SECTION] ("agent", "coordinator").
_fleet_conf_get() {
    awk -v sec="[$2]" -v key="$3" '
        /^[ \t]*\[/ { s = $0; gsub(/[ \t]/, "", s); in_sec = (s == sec); next }
        in_sec && /^[ \t]*[a-z_]+[ \t]*=/ {
            k = $0; sub(/[ \t]*=.*/, "", k); gsub(/[ \t]/, "", k)
            if (k == key) { v = $0; sub(/^[^=]*=[ \t]*/, "", v); sub(/[ \t]+$/, "", v); print v; exit }
        }' "$1"
}

# _fleet_url_port URL: the port of scheme://host:port ("" for ipc://).
_fleet_url_port() {
    local u=$1
    [[ $u != ipc://* ]] || return 0
    u=${u##*:}
    [[ ! $u =~ ^[0-9]+$ ]] || printf '%s\n' "$u"
}

# _fleet_kv_apply ARRAY_NAME MAP_NAME KEY=VALUE: set (or, with an empty VALUE, remove) KEY in an
# ordered key list and its value map.
# shellcheck disable=SC2034,SC2178  # _keys and _map are namerefs to the caller's arrays
_fleet_kv_apply() {
    local -n _keys=$1 _map=$2
    local kv=$3 k v i
    if [[ $kv != *=* ]]; then
        _fleet_err "expected KEY=VALUE, got '$kv'"
        return 2
    fi
    k=${kv%%=*} v=${kv#*=}
    if [[ ! $k =~ ^[a-z_]+$ ]]; then
        _fleet_err "bad key '$k'"
        return 2
    fi
    if [[ $v == *$'\n'* ]]; then
        _fleet_err "value of $k has a newline"
        return 2
    fi
    if [[ -z $v ]]; then
        for i in "${!_keys[@]}"; do
            [[ ${_keys[$i]} == "$k" ]] && unset '_keys[i]'
        done
        _keys=("${_keys[@]}")
        unset '_map[$k]'
        return 0
    fi
    [[ -n ${_map[$k]+x} ]] || _keys+=("$k")
    _map["$k"]=$v
}

# _fleet_kv_print ARRAY_NAME MAP_NAME: the section's "key = value" lines in order.
# shellcheck disable=SC2178  # namerefs, as above
_fleet_kv_print() {
    local -n _keys=$1 _map=$2
    local k
    for k in "${_keys[@]}"; do
        printf '%s = %s\n' "$k" "${_map[$k]}"
    done
}

# _fleet_secret_file FILE CONTENT: FILE with CONTENT, mode 0600, unless it exists.
_fleet_secret_file() {
    [[ -e $1 ]] && return 0
    (umask 077 && printf '%s\n' "$2" >"$1") || { _fleet_err "cannot write $1"; return 1; }
}

fleet_certs() {
    if [[ $# -lt 1 ]]; then
        echo "usage: fleet_certs DIR [CLIENT...]" >&2
        return 2
    fi
    local dir c out
    dir=$(_fleet_abspath "$1"); shift
    local -a args=("$dir")
    for c in "$@"; do
        # make-certs never overwrites, so a client that exists already is left as it is.
        [[ -e $dir/$c.crt ]] || args+=(--client "$c")
    done
    if ! out=$("$_FLEET_ROOT/deploy/make-certs.sh" "${args[@]}" 2>&1); then
        _fleet_err "deploy/make-certs.sh failed:"
        printf '%s\n' "$out" >&2
        return 1
    fi
}

# _fleet_keygen DIR NAME ARGS...: pgship keygen ARGS DIR/NAME, quiet unless it fails.
_fleet_keygen() {
    local dir=$1 name=$2 out
    shift 2
    if [[ ! -x $FLEET_CLI ]]; then
        _fleet_err "$FLEET_CLI is not built"
        return 1
    fi
    mkdir -p -- "$dir" || return 1
    if ! out=$("$FLEET_CLI" keygen "$@" "$dir/$name" 2>&1); then
        _fleet_err "pgship keygen $* $dir/$name failed:"
        printf '%s\n' "$out" >&2
        return 1
    fi
}

fleet_identity() {
    if [[ $# -ne 2 ]]; then
        echo "usage: fleet_identity DIR NAME" >&2
        return 2
    fi
    _fleet_keygen "$(_fleet_abspath "$1")" "$2" --identity
}

fleet_recipient() {
    if [[ $# -ne 2 ]]; then
        echo "usage: fleet_recipient DIR NAME" >&2
        return 2
    fi
    _fleet_keygen "$(_fleet_abspath "$1")" "$2"
}

fleet_coordinator_conf() {
    if [[ $# -lt 3 ]]; then
        echo "usage: fleet_coordinator_conf CONF CERTDIR STATEDIR [--agent NAME PUBFILE]... [--storage-fs DIR | --storage-s3 ENDPOINT BUCKET] [--client-ca] [--insecure] [--set KEY=VALUE]... [--storage-set KEY=VALUE]..." >&2
        return 2
    fi
    local conf certs state
    conf=$(_fleet_abspath "$1") certs=$(_fleet_abspath "$2") state=$(_fleet_abspath "$3")
    shift 3
    # shellcheck disable=SC2034  # ckeys/skeys are used through _fleet_kv_apply's namerefs
    local -a ckeys=() skeys=() agents=() sets=() ssets=()
    local -A cmap=() smap=()
    local storage=fs fs_dir=$state/archive s3_endpoint="" s3_bucket="" client_ca=0 insecure=0
    while [[ $# -gt 0 ]]; do
        case $1 in
            --agent) [[ $# -ge 3 ]] || { _fleet_err "--agent needs NAME PUBFILE"; return 2; }
                agents+=("$2" "$3"); shift 3 ;;
            --storage-fs) [[ $# -ge 2 ]] || { _fleet_err "--storage-fs needs DIR"; return 2; }
                storage=fs fs_dir=$(_fleet_abspath "$2"); shift 2 ;;
            --storage-s3) [[ $# -ge 3 ]] || { _fleet_err "--storage-s3 needs ENDPOINT BUCKET"; return 2; }
                storage=s3 s3_endpoint=$2 s3_bucket=$3; shift 3 ;;
            --client-ca) client_ca=1; shift ;;
            --insecure) insecure=1; shift ;;
            --set) [[ $# -ge 2 ]] || { _fleet_err "--set needs KEY=VALUE"; return 2; }
                sets+=("$2"); shift 2 ;;
            --storage-set) [[ $# -ge 2 ]] || { _fleet_err "--storage-set needs KEY=VALUE"; return 2; }
                ssets+=("$2"); shift 2 ;;
            *) _fleet_err "fleet_coordinator_conf: unknown option $1"; return 2 ;;
        esac
    done
    mkdir -p -- "$state" "$(dirname -- "$conf")" || return 1

    local port api_port kv
    if ! port=$(fleet_free_port) || ! api_port=$(fleet_free_port); then
        _fleet_err "no free port"
        return 1
    fi
    if [[ $insecure -eq 1 ]]; then
        _fleet_kv_apply ckeys cmap "listen=tcp://127.0.0.1:$port"
        _fleet_kv_apply ckeys cmap "allow_insecure_transport=true"
    else
        _fleet_kv_apply ckeys cmap "listen=tls+tcp://127.0.0.1:$port"
        _fleet_kv_apply ckeys cmap "tls_cert=$certs/coordinator.crt"
        _fleet_kv_apply ckeys cmap "tls_key=$certs/coordinator.key"
        [[ $client_ca -eq 0 ]] || _fleet_kv_apply ckeys cmap "tls_ca=$certs/ca.crt"
    fi
    _fleet_kv_apply ckeys cmap "api_listen=http://127.0.0.1:$api_port"
    _fleet_kv_apply ckeys cmap "api_token_file=$state/api-token"
    _fleet_kv_apply ckeys cmap "catalog=$state/catalog.db"
    _fleet_kv_apply ckeys cmap "log_level=info"
    for kv in "${sets[@]}"; do _fleet_kv_apply ckeys cmap "$kv" || return 2; done

    if [[ $storage == fs ]]; then
        _fleet_kv_apply skeys smap "type=fs"
        _fleet_kv_apply skeys smap "path=$fs_dir"
    else
        _fleet_kv_apply skeys smap "type=s3"
        _fleet_kv_apply skeys smap "endpoint=$s3_endpoint"
        _fleet_kv_apply skeys smap "region=us-east-1"
        _fleet_kv_apply skeys smap "bucket=$s3_bucket"
        _fleet_kv_apply skeys smap "path_style=true"
        _fleet_kv_apply skeys smap "access_key_id=S3RVER"
        _fleet_kv_apply skeys smap "secret_access_key_file=$state/s3-secret"
    fi
    for kv in "${ssets[@]}"; do _fleet_kv_apply skeys smap "$kv" || return 2; done

    # The files the config names, made only when it still names the default.
    if [[ ${cmap[api_token_file]:-} == "$state/api-token" ]]; then
        _fleet_secret_file "$state/api-token" "$(openssl rand -hex 32)" || return 1
    fi
    if [[ ${smap[secret_access_key_file]:-} == "$state/s3-secret" ]]; then
        _fleet_secret_file "$state/s3-secret" S3RVER || return 1
    fi
    [[ -z ${smap[path]:-} ]] || mkdir -p -- "${smap[path]}" || return 1

    local i name pub line
    {
        echo "# written by tests/integration/lib/fleet.sh"
        echo "[coordinator]"
        _fleet_kv_print ckeys cmap
        echo
        echo "[storage]"
        _fleet_kv_print skeys smap
        for ((i = 0; i < ${#agents[@]}; i += 2)); do
            name=${agents[i]} pub=${agents[i + 1]}
            line=$(grep -m1 '^pgship-identity-public-v1 ' -- "$pub") || {
                _fleet_err "$pub holds no pgship-identity-public-v1 line"
                return 1
            }
            echo
            echo "[agent $name]"
            echo "public_key = $line"
        done
    } >"$conf" || return 1

    FLEET_LISTEN=${cmap[listen]:-}
    FLEET_API_URL=${cmap[api_listen]:-}
    FLEET_TOKEN_FILE=${cmap[api_token_file]:-}
}

fleet_agent_conf() {
    if [[ $# -lt 4 ]]; then
        echo "usage: fleet_agent_conf CONF NAME CERTDIR IDENTITY_KEY [--db NAME ENVIRONMENT CONNINFO]... [--recipient PUBFILE]... [--coordinator URL] [--client-cert] [--spool DIR] [--set KEY=VALUE]..." >&2
        return 2
    fi
    local conf name certs identity
    conf=$(_fleet_abspath "$1") name=$2 certs=$(_fleet_abspath "$3") identity=$(_fleet_abspath "$4")
    shift 4
    # shellcheck disable=SC2034  # akeys/amap are used through _fleet_kv_apply's namerefs
    local -a akeys=() dbs=() recipients=() sets=()
    # shellcheck disable=SC2034
    local -A amap=()
    local url=$FLEET_LISTEN client_cert=0 spool
    spool=$(dirname -- "$conf")/spool-$name
    while [[ $# -gt 0 ]]; do
        case $1 in
            --db) [[ $# -ge 4 ]] || { _fleet_err "--db needs NAME ENVIRONMENT CONNINFO"; return 2; }
                if [[ $4 == *$'\n'* ]]; then _fleet_err "conninfo has a newline"; return 2; fi
                dbs+=("$2" "$3" "$4"); shift 4 ;;
            --recipient) [[ $# -ge 2 ]] || { _fleet_err "--recipient needs PUBFILE"; return 2; }
                recipients+=("$(_fleet_abspath "$2")"); shift 2 ;;
            --coordinator) [[ $# -ge 2 ]] || { _fleet_err "--coordinator needs URL"; return 2; }
                url=$2; shift 2 ;;
            --client-cert) client_cert=1; shift ;;
            --spool) [[ $# -ge 2 ]] || { _fleet_err "--spool needs DIR"; return 2; }
                spool=$(_fleet_abspath "$2"); shift 2 ;;
            --set) [[ $# -ge 2 ]] || { _fleet_err "--set needs KEY=VALUE"; return 2; }
                sets+=("$2"); shift 2 ;;
            *) _fleet_err "fleet_agent_conf: unknown option $1"; return 2 ;;
        esac
    done
    if [[ -z $url ]]; then
        _fleet_err "no coordinator URL: run fleet_coordinator_conf first or pass --coordinator"
        return 2
    fi
    mkdir -p -- "$(dirname -- "$conf")" || return 1
    (umask 077 && mkdir -p -- "$spool") || return 1

    local r list="" kv
    for r in "${recipients[@]}"; do list+="${list:+, }$r"; done
    _fleet_kv_apply akeys amap "name=$name"
    _fleet_kv_apply akeys amap "coordinator=$url"
    if [[ $url == tls+tcp://* ]]; then
        _fleet_kv_apply akeys amap "tls_ca=$certs/ca.crt"
        # make-certs.sh's certificate names localhost; nng's mbedTLS matches DNS names only.
        _fleet_kv_apply akeys amap "tls_server_name=localhost"
        if [[ $client_cert -eq 1 ]]; then
            _fleet_kv_apply akeys amap "tls_cert=$certs/$name.crt"
            _fleet_kv_apply akeys amap "tls_key=$certs/$name.key"
        fi
    else
        _fleet_kv_apply akeys amap "allow_insecure_transport=true"
    fi
    _fleet_kv_apply akeys amap "identity_key=$identity"
    _fleet_kv_apply akeys amap "spool_dir=$spool"
    [[ -z $list ]] || _fleet_kv_apply akeys amap "recipients=$list"
    _fleet_kv_apply akeys amap "log_level=info"
    for kv in "${sets[@]}"; do _fleet_kv_apply akeys amap "$kv" || return 2; done

    local i
    {
        echo "# written by tests/integration/lib/fleet.sh"
        echo "[agent]"
        _fleet_kv_print akeys amap
        for ((i = 0; i < ${#dbs[@]}; i += 3)); do
            echo
            echo "[database ${dbs[i]}]"
            echo "conninfo = ${dbs[i + 2]}"
            echo "environment = ${dbs[i + 1]}"
        done
    } >"$conf" || return 1
    # conninfo is a secret in the loader's eyes: keep the file private like a real one.
    chmod 600 -- "$conf"
}

fleet_start_coordinator() {
    if [[ $# -ne 2 ]]; then
        echo "usage: fleet_start_coordinator CONF LOG" >&2
        return 2
    fi
    local conf log listen api port api_port pid
    conf=$(_fleet_abspath "$1") log=$(_fleet_abspath "$2")
    if [[ ! -x $FLEET_COORDINATOR ]]; then
        _fleet_err "$FLEET_COORDINATOR is not built"
        return 1
    fi
    listen=$(_fleet_conf_get "$conf" coordinator listen)
    api=$(_fleet_conf_get "$conf" coordinator api_listen)
    port=$(_fleet_url_port "${listen:-tls+tcp://0.0.0.0:7433}")
    api_port=""
    [[ $api == off ]] || api_port=$(_fleet_url_port "${api:-http://127.0.0.1:7434}")

    "$FLEET_COORDINATOR" -c "$conf" >"$log" 2>&1 &
    pid=$!
    FLEET_COORD_PID=$pid FLEET_COORD_LOG=$log FLEET_LAST_PID=$pid
    FLEET_PIDS+=("$pid")

    local deadline=$((SECONDS + FLEET_START_TIMEOUT)) ready
    while :; do
        ready=1
        if [[ -n $port ]]; then
            _fleet_listening "$port" || ready=0
        elif [[ $listen == ipc://* ]]; then
            [[ -S ${listen#ipc://} ]] || ready=0
        fi
        [[ -z $api_port ]] || _fleet_listening "$api_port" || ready=0
        [[ $ready -eq 0 ]] || return 0
        if ! _fleet_alive "$pid"; then
            _fleet_err "pgship-coordinator exited at start"
            _fleet_log_tail "$log"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            _fleet_err "pgship-coordinator not listening on ${listen:-its default} / ${api:-its API} after ${FLEET_START_TIMEOUT}s"
            _fleet_log_tail "$log"
            return 1
        fi
        sleep 0.1
    done
}

fleet_start_agent() {
    if [[ $# -ne 2 ]]; then
        echo "usage: fleet_start_agent CONF LOG" >&2
        return 2
    fi
    local conf log name pid
    conf=$(_fleet_abspath "$1") log=$(_fleet_abspath "$2")
    if [[ ! -x $FLEET_AGENT ]]; then
        _fleet_err "$FLEET_AGENT is not built"
        return 1
    fi
    name=$(_fleet_conf_get "$conf" agent name)
    [[ -n $name ]] || { _fleet_err "$conf has no [agent] name"; return 1; }
    "$FLEET_AGENT" -c "$conf" >"$log" 2>&1 &
    pid=$!
    FLEET_AGENT_PID[$name]=$pid FLEET_AGENT_LOG[$name]=$log FLEET_LAST_PID=$pid
    FLEET_PIDS+=("$pid")
    # A bad config ends it at once: say so here rather than as a timeout later.
    sleep 0.2
    if ! _fleet_alive "$pid"; then
        _fleet_err "pgship-agent $name exited at start"
        _fleet_log_tail "$log"
        return 1
    fi
}

fleet_client() {
    if [[ -z $FLEET_API_URL || -z $FLEET_TOKEN_FILE ]]; then
        _fleet_err "fleet_client: no API (run fleet_coordinator_conf first)"
        return 2
    fi
    local token
    token=$(<"$FLEET_TOKEN_FILE") || return 1
    PGSHIP_URL=$FLEET_API_URL PGSHIP_TOKEN=$token "$FLEET_CLI" "$@"
}

fleet_wait_agent() {
    if [[ $# -lt 1 || $# -gt 2 ]]; then
        echo "usage: fleet_wait_agent NAME [TIMEOUT_S]" >&2
        return 2
    fi
    local name=$1 timeout=${2:-30} out pid
    local deadline=$((SECONDS + timeout))
    pid=${FLEET_AGENT_PID[$name]:-}
    while :; do
        # `pgship agents --json` lists the connected agents: an array, or {"agents": [...]}.
        if out=$(fleet_client agents --json 2>/dev/null) &&
            jq -e --arg n "$name" \
                '[(if type == "array" then .[] else (.agents // [])[] end)
                  | select(.name == $n and (if has("connected") then .connected else true end))] | length > 0' \
                <<<"$out" >/dev/null 2>&1; then
            return 0
        fi
        if [[ -n $pid ]] && ! _fleet_alive "$pid"; then
            _fleet_err "pgship-agent $name has exited"
            _fleet_log_tail "${FLEET_AGENT_LOG[$name]}"
            return 1
        fi
        if [[ -n $FLEET_COORD_PID ]] && ! _fleet_alive "$FLEET_COORD_PID"; then
            _fleet_err "pgship-coordinator has exited"
            _fleet_log_tail "$FLEET_COORD_LOG"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            _fleet_err "agent $name not connected after ${timeout}s; last answer: ${out:-(none)}"
            [[ -z $pid ]] || _fleet_log_tail "${FLEET_AGENT_LOG[$name]}"
            _fleet_log_tail "$FLEET_COORD_LOG"
            return 1
        fi
        sleep 0.2
    done
}

fleet_hwm_kb() {
    local k v rest hwm=0
    { while read -r k v rest; do
          if [[ $k == VmHWM: ]]; then hwm=$v; break; fi
      done <"/proc/$1/status"; } 2>/dev/null || true
    printf '%s\n' "$hwm"
}

# _fleet_stop PID: SIGTERM, then SIGKILL after FLEET_STOP_TIMEOUT; 1 when it had to be killed.
_fleet_stop() {
    local pid=$1 i
    _fleet_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < FLEET_STOP_TIMEOUT * 10; i++)); do
        _fleet_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
        sleep 0.1
    done
    _fleet_err "pid $pid did not stop within ${FLEET_STOP_TIMEOUT}s of SIGTERM: killed"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 1
}

fleet_stop_all() {
    local rc=0 name pid
    for name in "${!FLEET_AGENT_PID[@]}"; do
        _fleet_stop "${FLEET_AGENT_PID[$name]}" || rc=1
    done
    for pid in "${FLEET_PIDS[@]}"; do
        [[ $pid == "$FLEET_COORD_PID" ]] && continue
        _fleet_stop "$pid" || rc=1 # agents no longer in the map, already stopped or not
    done
    [[ -z $FLEET_COORD_PID ]] || _fleet_stop "$FLEET_COORD_PID" || rc=1
    FLEET_PIDS=()
    FLEET_AGENT_PID=()
    FLEET_COORD_PID=""
    return "$rc"
}
