# Multi-threaded program: threads blocked in accept, pthread_cond_wait and
# poll, a busy thread at update points, a thread churning short-lived
# threads, and a sleeper inside slow_op (a function the patch replaces).
# A short COMMIT must time out naming slow_op and the sleeper thread; a
# long one must apply once slow_op returns; all output stays correct.
. "$(dirname "$0")/lib.sh"
OUT=$RUN/mt.out
start mt "$OUT" || exit 1
wait_for "$OUT" '^busy v=v1' || exit 1
r=$(ctl $PID STATUS)
check "STATUS shows the blocked threads" has "$r" '"name":"acceptor","state":"blocked"' '"name":"condwaiter","state":"blocked"' '"name":"poller","state":"blocked"' '"name":"busy","state":"running"'
r=$(ctl $PID STACKS)
check "STACKS symbolizes slow_op on the sleeper" has "$r" '"function":"slow_op"' '"name":"sleeper"'

P=$T/mt_v2.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" mt-v2)
check "STAGE mt v2" has "$r" '"ok":true'
# Commit right after slow_op started: it sleeps 2.5 s inside, so a 400 ms
# timeout must fail with a reason naming the function and the thread.
# next_start VER: waits until slow_op (version VER) starts its next call.
next_start() {
    last=$(sed -n 's/^slow v[0-9] start \([0-9]*\)$/\1/p' "$OUT" | tail -n 1)
    wait_for "$OUT" "^slow $1 start $(( ${last:--1} + 1 ))\$" 10
}
next_start v1
r=$(ctl $PID COMMIT 400)
check "short COMMIT refused while slow_op is active" has "$r" '"ok":false' '"outcome":"timeout"' "function 'slow_op' (being replaced) is active on thread" "'sleeper'"
echo "# short commit: $r"
tail -n 1 "$OUT" | grep -q 'v1' ; check "still v1 after refusal" test $? -eq 0
r=$(ctl $PID COMMIT 8000)
check "long COMMIT applied once slow_op returned" has "$r" '"ok":true' '"outcome":"applied"' '"buildId":"mt-v2"'
echo "# long commit: $r"
pause=$(echo "$r" | sed -n 's/.*"pauseUs":\([0-9]*\).*/\1/p')
echo "# measured pause: ${pause} us"
# Sanitizers slow everything (thread start-up especially): looser bound.
limit=100000; [ -n "$SAN_KIND" ] && limit=1000000
check "pause reported and below $((limit / 1000)) ms" test -n "$pause" -a "${pause:-9999999}" -lt $limit
check "busy thread runs v2" wait_for "$OUT" '^busy v=v2' 5
check "slow_op runs v2" wait_for "$OUT" '^slow v2 end' 5
r=$(ctl $PID STATUS)
check "STATUS records the patch with pause and point" has "$r" '"patches":[{"id":"mt-v2","fromBuildId":"mt-v1","toBuildId":"mt-v2","appliedAtMs":' '"pauseUs":' '"updatePoint":"'
# Activeness of code that lives in a patch: v2's slow_op (symbols from the
# patch's memfd bytes) is active, so a short ROLLBACK must be refused.
next_start v2
r=$(ctl $PID ROLLBACK 400)
check "short ROLLBACK refused while the patch's slow_op is active" has "$r" '"ok":false' '"outcome":"timeout"' "function 'slow_op' (being replaced) is active on thread" "'sleeper'"
r=$(ctl $PID ROLLBACK 8000)
check "ROLLBACK in the multi-threaded program" has "$r" '"ok":true' '"outcome":"applied"' '"buildId":"mt-v1"'
check "busy thread back on v1" sh -c "sleep 0.5; tail -n 3 '$OUT' | grep -q '^busy v=v1'"
check "program exits cleanly" stop $PID
bad=$(awk '/^busy/ { split($2,b,"="); split($3,a,"="); split($4,c,"=");
          want = b[2]=="v1" ? a[2]+1 : a[2]+2; if (c[2] != want) print }' "$OUT" | wc -l)
check "no wrong busy lines ($(grep -c '^busy' "$OUT") lines)" test "$bad" -eq 0
# slow_op must never mix versions within one call
mixed=$(awk '/^slow/ { if ($3=="start") { v[$4]=$2 } else if (v[$4] != $2) print }' "$OUT" | wc -l)
check "slow_op start/end pairs never mix versions" test "$mixed" -eq 0
check "exit ok printed" grep -q '^exit ok' "$OUT"
