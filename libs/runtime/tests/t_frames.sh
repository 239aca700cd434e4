# Stack-frame mapping (ABI.md section 11): main and tick are active at every
# update point of `frames`.  A patch replacing them without a frame map is
# refused ("active"); with one, the thread unwinds after the commit and
# rebuilds both frames in the new code: the loop counter, the state and a
# pointer into main's frame (tick's `state`) carry over, a new local gets its
# initializer.  ROLLBACK rebuilds them in the old code.  The same again with
# the thread parked after a wrapped nanosleep, and blocked inside a long one
# (interrupted, unwound, and made again in the new code).
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
