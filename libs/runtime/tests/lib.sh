# lib.sh -- helpers shared by the t_*.sh drivers (sourced, POSIX sh).
# Each check prints "ok - ..." or "not ok - ..."; run.sh counts them.
T="$BUILD/tests"
DSUCTL="$BUILD/dsuctl"
RUN=$(mktemp -d /tmp/dsu-test.XXXXXX)
chmod 700 "$RUN"
export DSU_RUN_DIR="$RUN"
PIDS=""
# STAGE refuses group/world-writable patches (a umask of 002 would make them so)
chmod go-w "$T"/*.so 2>/dev/null
cleanup() {
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    # Sanitizer reports from any program (including forked children).
    if cat "$RUN"/*.err 2>/dev/null | grep -q 'Sanitizer'; then
        notok "no sanitizer reports"; cat "$RUN"/*.err | head -80 | sed 's/^/# /'
    else
        ok "no sanitizer reports"
    fi
    rm -rf "$RUN"
}
trap cleanup EXIT

ok()    { echo "ok - $*"; }
notok() { echo "not ok - $*"; }
check() { desc=$1; shift; if "$@"; then ok "$desc"; else notok "$desc"; fi; }

# start NAME OUT: runs $T/NAME in the background with stdout in OUT and
# waits for its control socket.  Sets PID.
start() {
    "$T/$1" >"$2" 2>"$2.err" &
    PID=$!
    PIDS="$PIDS $PID"
    if ! "$DSUCTL" -w 10 "$PID" HELLO >/dev/null; then
        notok "$1 started and serves its socket"; cat "$2.err" >&2
        return 1
    fi
}

# ctl PID REQUEST...: prints the reply (never fails the script)
ctl() { "$DSUCTL" "$@" || true; }

# has REPLY SUBSTRING...: true if every substring occurs in REPLY
has() {
    r=$1; shift
    for s in "$@"; do
        case "$r" in *"$s"*) ;; *) echo "# reply: $r" >&2; echo "#  missing: $s" >&2; return 1 ;; esac
    done
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# wait_for FILE PATTERN [SECONDS]: waits until a line matching PATTERN appears
wait_for() {
    n=$(( ${3:-10} * 20 ))
    while [ $n -gt 0 ]; do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05; n=$((n - 1))
    done
    echo "# timed out waiting for '$2' in $1" >&2
    return 1
}

# stop PID: SIGTERM, wait, true if it exited 0
# (on failure, says how it ended and shows the end of its stderr: a sanitizer
# report is there)
stop() {
    kill -TERM "$1" 2>/dev/null
    wait "$1"
    rc=$?
    PIDS=$(echo "$PIDS" | sed "s/ $1\b//")
    if [ $rc -ne 0 ]; then
        echo "# pid $1 exited with status $rc"
        for e in "$RUN"/*.err; do
            [ -s "$e" ] && tail -n 40 "$e" | sed "s|^|# $(basename "$e"): |"
        done
    fi
    return $rc
}

alive() { kill -0 "$1" 2>/dev/null; }

# wait_reply SECONDS PID REQUEST SUBSTRING...: repeats the request until the reply has every
# substring (threads start asynchronously); prints the last reply, true on success
wait_reply() {
    n=$(( $1 * 20 )); shift
    p=$1; req=$2; shift 2
    while :; do
        r=$(ctl "$p" $req)
        ok_all=1
        for s in "$@"; do case "$r" in *"$s"*) ;; *) ok_all=0 ;; esac; done
        [ $ok_all = 1 ] && return 0
        n=$((n - 1))
        if [ $n -le 0 ]; then echo "# reply: $r" >&2; echo "#  missing one of: $*" >&2; return 1; fi
        sleep 0.05
    done
}
