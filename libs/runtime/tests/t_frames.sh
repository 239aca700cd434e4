# Stack-frame mapping (ABI.md section 11): main and tick are active at every
# update point of `frames`.  A patch replacing them without a frame map is
# refused ("active"); with one, the thread unwinds after the commit and
# rebuilds both frames in the new code: the loop counter, the state and a
# pointer into main's frame (tick's `state`) carry over, a new local gets its
# initializer.  ROLLBACK rebuilds them in the old code.  The same again with
# the thread parked after a wrapped nanosleep, and blocked inside a long one
# (interrupted, unwound, and made again in the new code).
# Last, no-resume regions: with main's call of tick always inside one the
# commit is not applied (the thread cannot be unwound there) and v1 runs on;
# with it inside one on odd iterations only, commits wait for an even one.
. "$(dirname "$0")/lib.sh"

# the invariant every line keeps: state = i*(i+1)/2, i consecutive
lines_ok() {
    awk '/^i=/ { split($1,a,"="); split($3,s,"="); i=a[2]+0;
                 if (s[2] != i*(i+1)/2) { print "bad state: " $0; bad=1 }
                 if (seen && i != last+1) { print "gap: " last " -> " i; bad=1 }
                 last=i; seen=1 }
         END { exit bad }' "$1"
}

for mode in point sleep block; do
    OUT=$RUN/frames-$mode.out
    case $mode in sleep) FRAMES_SLEEP=2; export FRAMES_SLEEP ;; block) FRAMES_SLEEP=150 ;; esac
    start frames "$OUT" || exit 1
    wait_for "$OUT" '^i=3 '

    P=$T/frames_noframes.so
    r=$(ctl $PID STAGE "$P" "$(sha "$P")" nf-$mode)
    check "[$mode] STAGE of a patch without frame map" has "$r" '"ok":true'
    r=$(ctl $PID COMMIT 300)
    check "[$mode] COMMIT without frame map refused: main is active" has "$r" '"ok":false' "function 'main' (being replaced) is active"

    P=$T/frames_v2.so
    r=$(ctl $PID STAGE "$P" "$(sha "$P")" v2-$mode)
    check "[$mode] STAGE v2 with frame map" has "$r" '"ok":true'
    r=$(ctl $PID COMMIT 3000)
    echo "# commit: $r"
    check "[$mode] COMMIT v2 applied, frames rebuilt" has "$r" '"outcome":"applied"' '"frames":[{"tid":' '"done":true' '"unwindUs":' '"rebuildUs":'
    case $mode in
    point) check "[$mode] both frames mapped, main outermost" has "$r" '"frames":["main@call:tick#0","tick@point:tick"]' ;;
    sleep) check "[$mode] main mapped at its call or after its sleep" has "$r" '"frames":["main@' ;;
    block) check "[$mode] main mapped inside its sleep, made again" has "$r" '"frames":["main@wait:nanosleep#0:again"]' ;;
    esac
    check "[$mode] v2 runs with the new local initialised" wait_for "$OUT" 'v=v2 .* bonus=100$' 5
    check "[$mode] same process" alive $PID

    r=$(ctl $PID ROLLBACK 3000)
    check "[$mode] ROLLBACK rebuilds the frames in v1" has "$r" '"outcome":"applied"' '"frames":[{"tid":' '"done":true'
    n=$(wc -l < "$OUT")
    check "[$mode] v1 runs again" sh -c "sleep 0.5; tail -n +$((n + 1)) '$OUT' | grep -q 'v=v1'"
    check "[$mode] program exits cleanly (v1 main sees SIGTERM)" stop $PID
    check "[$mode] every line keeps state = i(i+1)/2, no i skipped or repeated ($(grep -c '^i=' "$OUT") lines)" lines_ok "$OUT"
    seq=$(awk '/^i=/ { split($2,b,"="); if (b[2] != last) { printf "%s ", b[2]; last=b[2] } }' "$OUT")
    check "[$mode] version sequence v1 v2 v1 (got: $seq)" test "$seq" = "v1 v2 v1 "
done

# No-resume regions (dsu.h dsu__nomap): main's call of tick made inside one
# (as dsu-cc wraps a call nested in a condition) cannot be resumed, so the
# thread must not be unwound while tick's update point is reached from it.
unset FRAMES_SLEEP
# lacks REPLY SUBSTRING: true if SUBSTRING does not occur in REPLY
lacks() { case "$1" in *"$2"*) echo "# reply: $1" >&2; return 1 ;; esac; }
# wait_new FILE LINE PATTERN: a line after line LINE of FILE matches PATTERN
wait_new() {
    wn_left=100
    while [ $wn_left -gt 0 ]; do
        tail -n +$(($2 + 1)) "$1" | grep -q -- "$3" && return 0
        sleep 0.05; wn_left=$((wn_left - 1))
    done
    echo "# timed out waiting for '$3' after line $2 of $1" >&2
    return 1
}
P=$T/frames_v2.so
NOMAP_WHY='the thread is inside a call that cannot be resumed (a call nested in an expression or condition; dsu check lists them)'

# Always inside the region: the commit is retried until its deadline, then
# fails with the reason; v1 runs on undisturbed.
OUT=$RUN/frames-nomap.out
FRAMES_NOMAP=1; export FRAMES_NOMAP
start frames "$OUT" || exit 1
wait_for "$OUT" '^i=3 '
r=$(ctl $PID STAGE "$P" "$(sha "$P")" v2-nomap)
check "[nomap] STAGE v2 with frame map" has "$r" '"ok":true'
r=$(ctl $PID COMMIT 500)
echo "# commit: $r"
check "[nomap] COMMIT not applied: the thread is inside a call that cannot be resumed" \
    has "$r" '"ok":false' "(being replaced) is active on thread" "its frames cannot be rebuilt: $NOMAP_WHY"
check "[nomap] no thread was asked to unwind" lacks "$r" '"frames":'
n=$(wc -l < "$OUT")
check "[nomap] v1 runs on" wait_new "$OUT" "$n" '^i=.* v=v1 '
check "[nomap] same process" alive $PID
check "[nomap] program exits cleanly" stop $PID
check "[nomap] every line keeps state = i(i+1)/2, no i skipped or repeated ($(grep -c '^i=' "$OUT") lines)" lines_ok "$OUT"
seq=$(awk '/^i=/ { split($2,b,"="); if (b[2] != last) { printf "%s ", b[2]; last=b[2] } }' "$OUT")
check "[nomap] v1 only (got: $seq)" test "$seq" = "v1 "

# Inside the region on odd iterations only: each commit is retried until the
# thread parks on an even iteration, where its frames are rebuilt.
OUT=$RUN/frames-alternate.out
FRAMES_NOMAP=alternate
start frames "$OUT" || exit 1
wait_for "$OUT" '^i=3 '
for k in 1 2 3; do
    r=$(ctl $PID STAGE "$P" "$(sha "$P")" v2-alt$k)
    check "[alternate $k] STAGE v2 with frame map" has "$r" '"ok":true'
    n=$(wc -l < "$OUT")
    r=$(ctl $PID COMMIT 3000)
    echo "# commit: $r"
    check "[alternate $k] COMMIT v2 applied, both frames rebuilt" has "$r" '"outcome":"applied"' '"done":true' \
        '"frames":["main@call:tick#0","tick@point:tick"]'
    check "[alternate $k] v2 runs with the new local initialised" wait_new "$OUT" "$n" 'v=v2 .* bonus=100$'
    i=$(tail -n +$((n + 1)) "$OUT" | grep -m1 'v=v2' | sed 's/^i=\([0-9]*\) .*/\1/')
    check "[alternate $k] unwound on an even iteration, outside the region (first v2 line i=$i)" \
        sh -c "case '$i' in *[02468]) ;; *) exit 1 ;; esac"
    n=$(wc -l < "$OUT")
    r=$(ctl $PID ROLLBACK 3000)
    check "[alternate $k] ROLLBACK rebuilds the frames in v1" has "$r" '"outcome":"applied"' '"done":true'
    check "[alternate $k] v1 runs again" wait_new "$OUT" "$n" 'v=v1 '
done
check "[alternate] same process" alive $PID
check "[alternate] program exits cleanly" stop $PID
check "[alternate] every line keeps state = i(i+1)/2, no i skipped or repeated ($(grep -c '^i=' "$OUT") lines)" lines_ok "$OUT"
seq=$(awk '/^i=/ { split($2,b,"="); if (b[2] != last) { printf "%s ", b[2]; last=b[2] } }' "$OUT")
check "[alternate] version sequence v1 v2 v1 v2 v1 v2 v1 (got: $seq)" test "$seq" = "v1 v2 v1 v2 v1 v2 v1 "
unset FRAMES_NOMAP
