# Transactions, unknown threads, DSU_DISABLE and DSU_SIGNAL.
. "$(dirname "$0")/lib.sh"
P=$T/loop_v2.so
H=$(sha "$P")

# A thread inside a transaction is never quiescent, even in a wrapper.
OUT=$RUN/txn.out
LOOP_TXN=1 start loop "$OUT" || exit 1
ctl $PID STAGE "$P" "$H" v2 >/dev/null
r=$(ctl $PID COMMIT 300)
check "COMMIT refused while the thread is inside a transaction" has "$r" '"ok":false' '"outcome":"timeout"' 'inside a transaction'
kill -USR1 $PID
r=$(ctl $PID COMMIT 3000)
check "COMMIT applies once the transaction ended" has "$r" '"outcome":"applied"'
check "txn: new behaviour after the update" wait_for "$OUT" 'v=v2' 5
check "txn program exits cleanly" stop $PID

# A thread that never reaches an update point: timeout naming it.
OUT=$RUN/spin.out
LOOP_SPIN=1 start loop "$OUT" || exit 1
ctl $PID STAGE "$P" "$H" v2 >/dev/null
r=$(ctl $PID COMMIT 300)
check "COMMIT times out naming the thread that never got quiescent" has "$r" '"ok":false' '"outcome":"timeout"' "'spinner' did not reach an update point or blocking call"
check "spin: still v1 and running" sh -c "sleep 0.1; tail -n 1 '$OUT' | grep -q 'v=v1'"
check "spin program exits cleanly" stop $PID

# A thread created inside a shared library is registered (the executable's
# pthread_create interposes) and does not block updates.
OUT=$RUN/lib.out
LOOP_LIB=$T/libspawn.so start loop "$OUT" || exit 1
check "thread created by a shared library is registered" wait_reply 5 $PID STATUS '"name":"libthread","state":"blocked"'
ctl $PID STAGE "$P" "$H" v2 >/dev/null
r=$(ctl $PID COMMIT 3000)
check "COMMIT with a library-created thread" has "$r" '"outcome":"applied"'
check "lib program exits cleanly" stop $PID

# A thread the runtime does not know makes updates refuse.
OUT=$RUN/rogue.out
LOOP_ROGUE=1 start loop "$OUT" || exit 1
ctl $PID STAGE "$P" "$H" v2 >/dev/null
r=$(ctl $PID COMMIT 2000)
check "COMMIT refused with an unknown thread" has "$r" '"ok":false' '"outcome":"refused"' "'rogue' is not known to the runtime"
check "rogue: still v1" sh -c "tail -n 1 '$OUT' | grep -q 'v=v1'"
kill -KILL $PID; wait $PID 2>/dev/null; PIDS=""

# DSU_DISABLE=1: no socket, program runs normally.
OUT=$RUN/disabled.out
DSU_DISABLE=1 "$T/loop" > "$OUT" 2>"$OUT.err" &
D=$!
sleep 0.5
check "DSU_DISABLE=1 serves no socket" test ! -e "$RUN/$D.sock"
check "DSU_DISABLE=1 program runs" grep -q '^i=5 ' "$OUT"
kill -TERM $D; wait $D
check "DSU_DISABLE=1 program exits cleanly" test $? -eq 0

# DSU_SIGNAL picks another wake-up signal.
OUT=$RUN/sig.out
DSU_SIGNAL=SIGRTMIN+7 start loop "$OUT" || exit 1
ctl $PID STAGE "$P" "$H" v2 >/dev/null
r=$(ctl $PID COMMIT 3000)
check "COMMIT with DSU_SIGNAL=SIGRTMIN+7" has "$r" '"outcome":"applied"'
check "DSU_SIGNAL program exits cleanly" stop $PID
