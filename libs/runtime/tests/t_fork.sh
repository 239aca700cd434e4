# fork(): the child gets its own control socket and registry; updating the
# child leaves the parent on the old version.
. "$(dirname "$0")/lib.sh"
OUT=$RUN/fork.out
start forker "$OUT" || exit 1
wait_for "$OUT" '^child started' || exit 1
CHILD=$(sed -n 's/^child started pid=\([0-9]*\).*/\1/p' "$OUT")
check "child has its own socket" sh -c "\"$DSUCTL\" -w 5 $CHILD HELLO >/dev/null"
r=$(ctl $CHILD HELLO)
check "child HELLO reports the child's pid" has "$r" "\"pid\":$CHILD" '"buildId":"fork-v1"'
r=$(ctl $CHILD STATUS)
check "child registry has only the forking thread" has "$r" "\"threads\":[{\"tid\":$CHILD," '"updatePoints":["loop"]'
P=$T/fork_v2.so
r=$(ctl $CHILD STAGE "$P" "$(sha "$P")" fork-v2)
check "STAGE in child" has "$r" '"ok":true'
r=$(ctl $CHILD COMMIT 3000)
check "COMMIT in child applied" has "$r" '"outcome":"applied"'
check "child runs v2" wait_for "$OUT" "^child pid=$CHILD v=v2" 5
sleep 0.2
check "parent still runs v1" sh -c "tail -n 6 '$OUT' | grep -q '^parent pid=$PID v=v1'"
r=$(ctl $PID HELLO)
check "parent socket still works" has "$r" "\"pid\":$PID" '"buildId":"fork-v1"'
check "parent (and child) exit cleanly" stop $PID
check "child socket removed" sh -c "sleep 0.3; test ! -e '$RUN/$CHILD.sock'"
bad=$(awk '/ pid=/ { split($3,b,"="); split($4,c,"="); split($5,a,"=");
          want = b[2]=="v1" ? 2*a[2] : 3*a[2]; if (c[2] != want) print }' "$OUT" | wc -l)
check "no wrong output lines" test "$bad" -eq 0
check "parent never ran v2" sh -c "! grep -q '^parent.*v=v2' '$OUT'"
