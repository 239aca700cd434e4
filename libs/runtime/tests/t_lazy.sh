# The control thread starts on first contact (DSU_CONTROL=lazy, the
# default): until then a single-threaded program stays single-threaded, so
# glibc keeps its single-threaded fast paths.
. "$(dirname "$0")/lib.sh"
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }
# TSan runs a background thread of its own, so the process is multi-threaded
# before main() and the runtime starts the control thread eagerly there:
# the thread counts are only checked without it (the replies always are).
count() { if [ "$SAN_KIND" = tsan ]; then true; else test "$(threads $1)" = "$2"; fi; }

# runs SINGLE_MODE=$1 (env $2 extra), checks 1 thread before and 2 after HELLO
lazy_case() {
    mode=$1
    OUT=$RUN/single-$mode.out
    SINGLE_MODE=$mode "$T/single" >"$OUT" 2>"$OUT.err" &
    PID=$!; PIDS="$PIDS $PID"
    wait_for "$OUT" '^ready' 5 >/dev/null
    n=0; while [ ! -S "$RUN/$PID.sock" ] && [ $n -lt 100 ]; do sleep 0.05; n=$((n + 1)); done
    check "$mode: socket served before the first contact" test -S "$RUN/$PID.sock"
    sleep 0.2
    check "$mode: still one thread before the first contact" count $PID 1
    r=$(ctl -w 5 $PID HELLO)
    check "$mode: HELLO answered on first contact" has "$r" '"ok":true' '"program":"single"'
    check "$mode: the control thread now runs" count $PID 2
    r=$(ctl $PID STATUS)
    check "$mode: STATUS answered" has "$r" '"ok":true' '"program":"single"'
    check "$mode: no wrapped call failed on the way" sh -c "! grep -q failed '$OUT'"
    check "$mode: exits cleanly" stop $PID
}
lazy_case poll
lazy_case read
lazy_case spin

# DSU_CONTROL=eager: the thread runs from the start, before any contact.
OUT=$RUN/single-eager.out
DSU_CONTROL=eager SINGLE_MODE=poll "$T/single" >"$OUT" 2>"$OUT.err" &
PID=$!; PIDS="$PIDS $PID"
wait_for "$OUT" '^ready' 5 >/dev/null
sleep 0.2
check "eager: the control thread runs before any contact" count $PID 2
r=$(ctl -w 5 $PID HELLO)
check "eager: HELLO answered" has "$r" '"ok":true'
check "eager: exits cleanly" stop $PID
