# Single-threaded program with one update point: HELLO/STATUS, refused
# STAGEs (bad hash, missing file, wrong build id, unresolved symbol, no
# descriptor), disallowed update point, v1->v2 body change + REMOVED,
# v2->v3 with an ADDED function, ROLLBACK twice, clean exit.
. "$(dirname "$0")/lib.sh"
OUT=$RUN/loop.out
start loop "$OUT" || exit 1
wait_for "$OUT" '^i=3 '

r=$(ctl $PID HELLO)
check "HELLO reply" has "$r" '"ok":true' '"protocol":1' "\"pid\":$PID" '"program":"loop"' '"buildId":"loop-v1"'
r=$(ctl $PID STATUS)
check "STATUS lists thread, update point, no patches" has "$r" '"ok":true' '"threads":[{"tid":' '"updatePoints":["loop"]' '"patches":[]' '"staged":null' '"buildId":"loop-v1"'

V2=$T/loop_v2.so
r=$(ctl $PID STAGE "$V2" 0000000000000000000000000000000000000000000000000000000000000000 v2)
check "STAGE with wrong hash refused" has "$r" '"ok":false' 'sha256 mismatch' 'sha256sum'
r=$(ctl $PID STAGE "$RUN/missing.so" "$(sha "$V2")" v2)
check "STAGE of missing file refused" has "$r" '"ok":false' 'cannot open patch' 'No such file'
P=$T/loop_badbuild.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" bad)
check "STAGE with wrong build id refused" has "$r" '"ok":false' "applies to build 'loop-v0'" "runs build 'loop-v1'"
P=$T/loop_unresolved.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" unres)
check "STAGE with unresolved symbol refused" has "$r" '"ok":false' 'cannot load patch' 'dsu_test_no_such_symbol'
P=$T/loop_nodesc.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" nodesc)
check "STAGE without descriptor refused" has "$r" '"ok":false' "does not define the descriptor 'dsu_patch'"
r=$(ctl $PID COMMIT 100)
check "COMMIT with nothing staged refused" has "$r" '"ok":false' '"outcome":"refused"' 'nothing is staged'
check "program still runs v1 after refusals" sh -c "sleep 0.2; tail -n 1 '$OUT' | grep -q 'v=v1'"

P=$T/loop_points.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" pts)
check "STAGE of point-restricted patch" has "$r" '"ok":true' '"staged":"pts"'
r=$(ctl $PID COMMIT 300)
check "COMMIT at disallowed update point times out with reason" has "$r" '"ok":false' '"outcome":"timeout"' "which this patch does not allow"

r=$(ctl $PID STAGE "$V2" "$(sha "$V2")" v2)
check "STAGE v2" has "$r" '"ok":true' '"staged":"v2"' '"fromBuildId":"loop-v1"' '"toBuildId":"loop-v2"'
r=$(ctl $PID STATUS)
check "STATUS shows staged v2" has "$r" '"staged":"v2"'
r=$(ctl $PID COMMIT 3000)
check "COMMIT v2 applied" has "$r" '"ok":true' '"outcome":"applied"' '"pauseUs":' '"buildId":"loop-v2"'
echo "# v2 commit: $r"
check "new behaviour observed (v2)" wait_for "$OUT" 'v=v2' 5
check "same process after update" alive $PID

P=$T/loop_v3.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" v3)
check "STAGE v3 (chained, ADDED function)" has "$r" '"ok":true' '"fromBuildId":"loop-v2"'
r=$(ctl $PID COMMIT 3000)
check "COMMIT v3 applied" has "$r" '"outcome":"applied"' '"buildId":"loop-v3"'
check "v3 behaviour via ADDED function" wait_for "$OUT" 'v=v3' 5
r=$(ctl $PID STATUS)
check "STATUS lists both patches oldest first" has "$r" '"patches":[{"id":"v2","fromBuildId":"loop-v1","toBuildId":"loop-v2"' '{"id":"v3","fromBuildId":"loop-v2","toBuildId":"loop-v3"' '"buildId":"loop-v3"'
r=$(ctl $PID STAGE "$P" "$(sha "$P")" v3)
check "re-using an applied patch id refused" has "$r" '"ok":false' "already applied"

sleep 0.1
r=$(ctl $PID ROLLBACK 3000)
check "ROLLBACK of v3 applied" has "$r" '"ok":true' '"outcome":"applied"' '"patch":"v3"' '"buildId":"loop-v2"'
n=$(wc -l < "$OUT")
check "v2 behaviour back after rollback" sh -c "sleep 0.3; tail -n +$((n + 2)) '$OUT' | grep -q 'v=v2'"
r=$(ctl $PID ROLLBACK 3000)
check "second ROLLBACK restores v1" has "$r" '"outcome":"applied"' '"buildId":"loop-v1"'
n=$(wc -l < "$OUT")
check "v1 behaviour back" sh -c "sleep 0.3; tail -n +$((n + 2)) '$OUT' | grep -q 'v=v1'"
r=$(ctl $PID ROLLBACK 100)
check "ROLLBACK with nothing applied refused" has "$r" '"ok":false' 'nothing to roll back'
r=$(ctl $PID STACKS)
check "STACKS reply" has "$r" '"ok":true' '"threads":[{"tid":'

check "program exits cleanly" stop $PID
check "socket removed at exit" test ! -e "$RUN/$PID.sock"
# Every line must be correct for the version that printed it, and versions
# must appear in the order v1 v2 v3 v2 v1.
bad=$(awk '/^i=/ { split($1,a,"="); split($2,b,"="); split($3,c,"="); split($4,d,"=");
          i=a[2]; v=b[2]; r=c[2]; l=d[2];
          want = v=="v1" ? 2*i : v=="v2" ? 3*i : v=="v3" ? 3*i+1000 : -1;
          if (r != want || l != i+7) print }' "$OUT" | wc -l)
check "no wrong output lines ($(grep -c '^i=' "$OUT") lines)" test "$bad" -eq 0
seq=$(awk '/^i=/ { split($2,b,"="); if (b[2] != last) { printf "%s ", b[2]; last=b[2] } }' "$OUT")
check "version sequence v1 v2 v3 v2 v1 (got: $seq)" test "$seq" = "v1 v2 v3 v2 v1 "
check "exit ok printed" grep -q '^exit ok' "$OUT"
