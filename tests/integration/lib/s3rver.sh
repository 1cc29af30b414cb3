# shellcheck shell=bash
# s3rver.sh - a throwaway s3rver (npm) on loopback for pgship integration tests.
#
# Source this file; it defines functions only and changes no shell options.
#
#   s3rver_bin                         print the s3rver executable (S3RVER_BIN, else the copy
#                                      deploy/setup.sh installs under deploy/.npm)
#   s3rver_free_port                   print a free TCP port on 127.0.0.1
#   s3rver_start DIR PORT BUCKET       start on 127.0.0.1:PORT with data in DIR, bucket made;
#                                      waits until it answers; the pid goes to DIR.pid
#   s3rver_start_tls DIR PORT BUCKET CERT KEY CA
#                                      the same over HTTPS: CERT/KEY (PEM) must name localhost
#                                      (deploy/make-certs.sh's coordinator.crt does); CA checks it
#                                      while waiting. Clients use https://localhost:PORT
#   s3rver_stop DIR                    stop the one started on DIR (no error if not running)
#
# s3rver accepts any SigV4 signature (only the access key id must be S3RVER) and treats
# "<bucket>.s3.localhost" as virtual-host style (it is started with --service-endpoint localhost).

_S3RVER_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

s3rver_bin() {
    local b=${S3RVER_BIN:-$_S3RVER_ROOT/deploy/.npm/node_modules/.bin/s3rver}
    if [[ ! -x $b ]]; then
        echo "s3rver: $b is missing; run deploy/setup.sh (it installs s3rver with npm)" >&2
        return 1
    fi
    printf '%s\n' "$b"
}

s3rver_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

s3rver_start() {
    _s3rver_start "$1" "$2" "$3" "http://127.0.0.1:$2/"
}

s3rver_start_tls() {
    if [[ $# -ne 6 ]]; then
        echo "usage: s3rver_start_tls DIR PORT BUCKET CERT KEY CA" >&2
        return 2
    fi
    _s3rver_start "$1" "$2" "$3" "https://localhost:$2/" --cacert "$6" -- --cert "$4" --key "$5"
}

# _s3rver_start DIR PORT BUCKET PROBE_URL [CURL_ARGS... -- S3RVER_ARGS...]
_s3rver_start() {
    local dir=$1 port=$2 bucket=$3 probe=$4 bin
    shift 4
    local -a curl_args=() srv_args=()
    while [[ $# -gt 0 && $1 != -- ]]; do curl_args+=("$1"); shift; done
    [[ $# -eq 0 ]] || { shift; srv_args=("$@"); }
    bin=$(s3rver_bin) || return 1
    mkdir -p "$dir"
    "$bin" --directory "$dir" --port "$port" --address 127.0.0.1 --silent \
        --service-endpoint localhost --configure-bucket "$bucket" "${srv_args[@]}" >"$dir.log" 2>&1 &
    echo $! >"$dir.pid"
    local i
    for i in $(seq 1 100); do
        if curl -s -o /dev/null "${curl_args[@]}" "$probe"; then
            return 0
        fi
        if ! kill -0 "$(cat "$dir.pid")" 2>/dev/null; then
            echo "s3rver: exited at start:" >&2
            cat "$dir.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "s3rver: not answering on port $port after 10 s" >&2
    return 1
}

s3rver_stop() {
    local dir=$1 pid
    [[ -f $dir.pid ]] || return 0
    pid=$(cat "$dir.pid")
    rm -f "$dir.pid"
    kill "$pid" 2>/dev/null || return 0
    local i
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
}
