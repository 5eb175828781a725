#!/usr/bin/env bash
# Start and stop the PC/SC test environment: pcscd (with Debian's vsmartcard-vpcd reader driver)
# and the project's virtual secure element (python -m lwm2m.vse) on the vpcd port.
#
# Usage: scripts/pcsc-env.sh COMMAND [--port N] [--state FILE] [--name NAME]
#   start         start-pcscd, then start-vse
#   stop          stop-vse (every VSE this script started), then stop-pcscd
#   start-pcscd   start pcscd unless one is already running; wait until vpcd listens
#   stop-pcscd    stop the pcscd this script started (SIGTERM, SIGKILL after $STOP_TIMEOUT s)
#   start-vse     start a VSE on --port (35963 = "Virtual PCD 00 00", 35964 = "... 00 01");
#                 wait until pcscd has read its ATR
#   stop-vse      stop the VSE --name (default: the one on --port)
#   status        print what runs
#
# Environment: PCSC_ENV_DIR (pid/log/ready files; default /tmp/lwm2m-pcsc), PYTHON (default
# .venv/bin/python, else python3), START_TIMEOUT (default 15 s), STOP_TIMEOUT (default 6 s).
#
# Robustness (see the dependency notes): pcscd refuses to start while /run/pcscd/pcscd.pid
# names a dead process, and that file holds NUL bytes; a killed but unreaped pcscd (a zombie)
# still answers `kill -0`; pcscd takes seconds to exit on SIGTERM; readiness is polled with a
# deadline, never slept for. Only processes this script started are ever stopped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${PCSC_ENV_DIR:-/tmp/lwm2m-pcsc}"
RUN_DIR=/run/pcscd
START_TIMEOUT="${START_TIMEOUT:-15}"
STOP_TIMEOUT="${STOP_TIMEOUT:-6}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

cmd="${1:-}"
[ $# -gt 0 ] && shift
PORT=35963
STATE=""
NAME=""
while [ $# -gt 0 ]; do
    case "$1" in
        --port) PORT="$2"; shift 2 ;;
        --state) STATE="$2"; shift 2 ;;
        --name) NAME="$2"; shift 2 ;;
        *) echo "pcsc-env: unknown option $1" >&2; exit 2 ;;
    esac
done
NAME="${NAME:-vse-$PORT}"
STATE="${STATE:-$DIR/$NAME.json}"
mkdir -p "$DIR"

log() { echo "pcsc-env: $*" >&2; }

# A pid from a file, with the NUL bytes pcscd writes stripped; empty when none.
read_pid() { [ -f "$1" ] && tr -cd '0-9' < "$1" || true; }

# Alive = exists and is not a zombie.
alive() {
    local pid="$1" state
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    state="$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null || echo X)"
    [ "$state" != "Z" ] && [ "$state" != "X" ]
}

# Is a TCP port listening on this host? (Reads /proc: connecting would look like a card to vpcd.)
listening() {
    local hex
    hex="$(printf '%04X' "$1")"
    awk -v p=":$hex" 'NR > 1 && substr($2, length($2) - 4) == p && $4 == "0A" { found = 1 }
                      END { exit !found }' /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# Wait until "$@" succeeds, at most $1 seconds (polling every 50 ms).
wait_for() {
    local timeout="$1"; shift
    local deadline=$(( $(date +%s%N) + timeout * 1000000000 ))
    until "$@"; do
        [ "$(date +%s%N)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# SIGTERM, wait, SIGKILL; then wait for the kernel to drop it.
terminate() {
    local pid="$1" what="$2"
    alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for "$STOP_TIMEOUT" bash -c "! [ -r /proc/$pid/stat ] || grep -q ') Z' /proc/$pid/stat"; then
        log "$what (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_for 5 bash -c "! [ -r /proc/$pid/stat ] || grep -q ') Z' /proc/$pid/stat" || true
    fi
}

system_pcscd_pid() { read_pid "$RUN_DIR/pcscd.pid"; }

start_pcscd() {
    command -v pcscd >/dev/null || { log "pcscd is not installed (apt-get install pcscd vsmartcard-vpcd)"; exit 3; }
    [ -f /etc/reader.conf.d/vpcd ] || { log "vsmartcard-vpcd is not installed"; exit 3; }
    local pid
    pid="$(system_pcscd_pid)"
    if alive "$pid"; then
        if wait_for "$START_TIMEOUT" listening 35963; then
            log "pcscd already running (pid $pid)"
            return 0
        fi
        log "pcscd (pid $pid) runs without the vpcd reader"; exit 4
    fi
    if [ -e "$RUN_DIR/pcscd.pid" ] || [ -e "$RUN_DIR/pcscd.comm" ]; then
        log "removing stale $RUN_DIR/pcscd.pid and pcscd.comm (pid '${pid}' is not running)"
        rm -f "$RUN_DIR/pcscd.pid" "$RUN_DIR/pcscd.comm"
    fi
    mkdir -p "$RUN_DIR"
    pcscd --foreground >"$DIR/pcscd.log" 2>&1 &
    echo $! > "$DIR/pcscd.pid"
    if ! wait_for "$START_TIMEOUT" listening 35963; then
        log "pcscd did not open the vpcd port 35963 within ${START_TIMEOUT}s:"
        tail -n 20 "$DIR/pcscd.log" >&2 || true
        stop_pcscd
        exit 4
    fi
    log "pcscd started (pid $(read_pid "$DIR/pcscd.pid"))"
}

stop_pcscd() {
    local pid
    pid="$(read_pid "$DIR/pcscd.pid")"
    [ -n "$pid" ] || return 0
    terminate "$pid" pcscd
    rm -f "$DIR/pcscd.pid"
    if ! alive "$(system_pcscd_pid)"; then
        rm -f "$RUN_DIR/pcscd.pid" "$RUN_DIR/pcscd.comm"
    fi
}

start_vse() {
    local pidfile="$DIR/$NAME.pid" ready="$DIR/$NAME.ready" pid
    pid="$(read_pid "$pidfile")"
    if alive "$pid"; then log "$NAME already running (pid $pid)"; return 0; fi
    listening "$PORT" || { log "nothing listens on vpcd port $PORT: start pcscd first"; exit 4; }
    rm -f "$ready"
    (cd "$ROOT" && PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" -m lwm2m.vse \
        --port "$PORT" --state "$STATE" --ready-file "$ready") >"$DIR/$NAME.log" 2>&1 &
    pid=$!
    echo "$pid" > "$pidfile"
    if ! wait_for "$START_TIMEOUT" bash -c "[ -e '$ready' ] || ! kill -0 $pid 2>/dev/null"; then
        log "$NAME: pcscd did not read the card within ${START_TIMEOUT}s"
    fi
    if [ ! -e "$ready" ]; then
        tail -n 20 "$DIR/$NAME.log" >&2 || true
        terminate "$pid" "$NAME"
        rm -f "$pidfile"
        exit 5
    fi
    log "$NAME started on port $PORT (pid $pid, state $STATE)"
}

stop_vse() {
    local pidfile="$DIR/$NAME.pid"
    terminate "$(read_pid "$pidfile")" "$NAME"
    rm -f "$pidfile" "$DIR/$NAME.ready"
}

stop_all_vse() {
    local f
    for f in "$DIR"/vse-*.pid; do
        [ -e "$f" ] || continue
        NAME="$(basename "$f" .pid)"
        stop_vse
    done
}

# Sourced (by the tests): define the functions only.
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then return 0; fi

case "$cmd" in
    start) start_pcscd; start_vse ;;
    stop) stop_all_vse; stop_pcscd ;;
    start-pcscd) start_pcscd ;;
    stop-pcscd) stop_pcscd ;;
    start-vse) start_vse ;;
    stop-vse) stop_vse ;;
    status)
        echo "pcscd: $(alive "$(system_pcscd_pid)" && echo "running (pid $(system_pcscd_pid))" || echo stopped)"
        for f in "$DIR"/vse-*.pid; do
            [ -e "$f" ] || continue
            echo "$(basename "$f" .pid): $(alive "$(read_pid "$f")" && echo running || echo stopped)"
        done ;;
    *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
