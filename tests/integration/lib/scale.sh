# shellcheck shell=bash
# scale.sh - what the fleet scale test (tests/integration/fleet_scale.sh) measures and listens
# with: a process's cost read from /proc, a sampler of its peaks while it works, and a webhook
# receiver. Source it after fleet.sh; it defines functions only and changes no shell options.
#
#   scale_snap PID
#       one line "rss_kb hwm_kb fds threads cpu_ticks child_ticks live_cpu_ns" for PID, from
#       /proc/PID/status (VmRSS, VmHWM, Threads), /proc/PID/fd, /proc/PID/stat (utime + stime,
#       and cutime + cstime: the CPU of children it has waited for, such as an agent's pg_dump;
#       clock ticks) and /proc/PID/task/*/schedstat (CPU nanoseconds of the threads alive now:
#       precise where ticks are too coarse, as for an idle daemon, but blind to threads that
#       have ended).
#   scale_sampler_start PID OUT / scale_sampler_stop
#       samples PID every 20 ms in the background until stopped; OUT then holds one line
#       "peak_rss_kb peak_fds peak_threads samples". Reading /proc in one long-lived Python
#       process costs far less than a fork per sample on a machine the test already loads.
#   scale_hook_start DIR PORT / scale_hook_stop DIR
#       an HTTP receiver on 127.0.0.1:PORT answering 200 to every POST and appending each body,
#       one line, to DIR/hook.bodies (the headers X-Pgship-Event and X-Pgship-Delivery go into
#       DIR/hook.headers, one "EVENT DELIVERY" line per request).
#   scale_field LINE N
#       the Nth (1-based) space-separated field of LINE.

SCALE_SAMPLER_PID=${SCALE_SAMPLER_PID:-}
SCALE_SAMPLER_STOP=${SCALE_SAMPLER_STOP:-}

scale_snap() {
    local pid=$1 k v rest rss=0 hwm=0 thr=0 fds stat ns=0 t
    { while read -r k v rest; do
          case $k in
              VmRSS:) rss=$v ;;
              VmHWM:) hwm=$v ;;
              Threads:) thr=$v ;;
          esac
      done <"/proc/$pid/status"; } 2>/dev/null || true
    fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || stat=""
    # Fields after the command name (which may hold spaces): state is 3, utime 14, stime 15,
    # cutime 16, cstime 17; the array starts at state.
    stat=${stat##*) }
    local -a f
    read -r -a f <<<"$stat"
    for t in "/proc/$pid/task"/*/schedstat; do
        read -r v rest 2>/dev/null <"$t" && ns=$((ns + v))
    done
    printf '%s %s %s %s %s %s %s\n' "$rss" "$hwm" "$fds" "$thr" "$((${f[11]:-0} + ${f[12]:-0}))" \
        "$((${f[13]:-0} + ${f[14]:-0}))" "$ns"
}

scale_field() {
    local -a f
    read -r -a f <<<"$1"
    printf '%s\n' "${f[$2 - 1]}"
}

scale_sampler_start() {
    local pid=$1 out=$2
    SCALE_SAMPLER_STOP=$out.stop
    rm -f -- "$SCALE_SAMPLER_STOP"
    python3 - "$pid" "$out" "$SCALE_SAMPLER_STOP" <<'PY' &
import os, sys, time
pid, out, stop = sys.argv[1], sys.argv[2], sys.argv[3]
rss = fds = thr = n = 0
while not os.path.exists(stop):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k == "VmRSS":
                    rss = max(rss, int(v.split()[0]))
                elif k == "Threads":
                    thr = max(thr, int(v))
        fds = max(fds, len(os.listdir(f"/proc/{pid}/fd")))
        n += 1
    except (OSError, ValueError):
        pass
    time.sleep(0.02)
with open(out, "w") as f:
    f.write(f"{rss} {fds} {thr} {n}\n")
PY
    SCALE_SAMPLER_PID=$!
}

scale_sampler_stop() {
    [[ -n $SCALE_SAMPLER_PID ]] || return 0
    touch -- "$SCALE_SAMPLER_STOP"
    wait "$SCALE_SAMPLER_PID" 2>/dev/null || true
    SCALE_SAMPLER_PID=""
}

scale_hook_start() {
    local dir=$1 port=$2 i
    mkdir -p -- "$dir"
    : >"$dir/hook.bodies"
    : >"$dir/hook.headers"
    python3 - "$dir" "$port" >"$dir/hook.log" 2>&1 <<'PY' &
import http.server, sys
d, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        with open(f"{d}/hook.bodies", "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        with open(f"{d}/hook.headers", "a") as f:
            f.write(f"{self.headers.get('X-Pgship-Event')} {self.headers.get('X-Pgship-Delivery')}\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, fmt, *args):
        sys.stderr.write(fmt % args + "\n")
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
    echo $! >"$dir/hook.pid"
    for ((i = 0; i < 100; i++)); do
        _fleet_listening "$port" && return 0
        sleep 0.05
    done
    echo "scale: the webhook receiver does not listen on $port" >&2
    return 1
}

scale_hook_stop() {
    local pid
    pid=$(cat "$1/hook.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f -- "$1/hook.pid"
}
