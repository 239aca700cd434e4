# Lazy transformation (ABI.md section 10): a lazy patch transforms only the
# global instances at commit; heap and embedded instances are transformed on
# their first touch by the new code (4 threads touching the same objects at
# once: each instance exactly once), through the chain v1 -> v2 -> v3 for
# nodes nobody touched in v2; new allocations carry the current tag; a patch
# whose code does not check the tags of a lazily transformed type is
# refused; an eager patch of a lazily transformed type is refused; a lazy
# patch cannot be rolled back; a transformer failing on first touch aborts with the type,
# the address and the reason.
. "$(dirname "$0")/lib.sh"
OUT=$RUN/lazyd.out
# every worker prints one sum line per SIGUSR1; waits for the 4 of round $2
full_walk() {
    kill -USR1 $PID
    n=0
    while [ $n -lt 200 ]; do
        [ "$(grep -c "^sum=.* v=$1 " "$OUT")" -ge "$2" ] && return 0
        sleep 0.05; n=$((n + 1))
    done
    echo "# timed out waiting for $2 sum lines of $1" >&2; return 1
}
same_sums() {   # the last 4 lines of version $1 agree (sum n x)
    test "$(grep "^sum=.* v=$1 " "$OUT" | tail -n 4 | sed 's/ w=.*//' | sort -u | wc -l)" = 1
}
start lazyd "$OUT" || exit 1
wait_for "$OUT" '^ready' || exit 1
full_walk v1 4 || exit 1
before=$(grep '^sum=.* v=v1 ' "$OUT" | tail -n 1 | sed 's/ v=.*//')
check "v1 checksum over 10007 instances" has "$before" ' n=10007'
S=$(echo "$before" | sed 's/^sum=\([-0-9]*\) .*/\1/')

P=$T/lazy_v2.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" lv2)
check "STAGE lazy v2" has "$r" '"ok":true' '"types":1'
r=$(ctl $PID COMMIT 3000)
echo "# lazy v2 commit: $r"
check "COMMIT lazy v2 applied: only the 4 globals transformed at commit" has "$r" '"ok":true' '"outcome":"applied"' '"instances":4,' '"lazyTypes":1'
sleep 0.3
r=$(ctl $PID STATUS)
check "only the nodes the new code touched were transformed (101 of the first walk)" has "$r" '"lazyTypes":[{"type":"struct node","version":1,"touched":101}]'

P=$T/lazy_eager3.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" e3)
check "an eager patch of a lazily transformed type is refused" has "$r" '"ok":false' "type 'struct node' was transformed lazily by an earlier patch"

P=$T/lazy_code.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" code)
check "a patch whose code does not check node's tags is refused once node is lazy" has "$r" '"ok":false' "type 'struct node' was transformed lazily (version 1)" 'does not check their version tags'
P=$T/lazy_code_ok.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" codeok)
r=$(ctl $PID COMMIT 3000)
check "the same patch listing its checks of node is applied" has "$r" '"ok":true' '"outcome":"applied"'

P=$T/lazy_v3.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" lv3)
r=$(ctl $PID COMMIT 3000)
echo "# lazy v3 commit: $r"
check "second lazy patch in a row applied" has "$r" '"ok":true' '"outcome":"applied"' '"instances":4,'
kill -USR2 $PID
sleep 0.2
full_walk v3 4 || exit 1
check "4 threads touching every instance at once agree" same_sums v3
v3=$(grep '^sum=.* v=v3 ' "$OUT" | tail -n 1)
check "values kept through v1 -> v2 -> v3 (checksum + the added node), every field right" \
    has "$v3" "sum=$((S + 7777777)) n=10008 v=v3 x=$((7 * 10008)) "
r=$(ctl $PID STATUS)
check "each instance transformed exactly once per version; the new node was born current" \
    has "$r" '"lazyTypes":[{"type":"struct node","version":2,"touched":10104}]'
r=$(ctl $PID ROLLBACK 1000)
check "ROLLBACK of a lazy data patch refused" has "$r" '"ok":false' 'cannot be rolled back'
check "alive" alive $PID
kill -TERM $PID
wait $PID 2>/dev/null
check "clean exit" grep -q '^exit ok' "$OUT"

# A transformer that fails on first touch: the update is applied already,
# so the process stops with the reason instead of running on a bad image.
OUT=$RUN/lazyf.out
THREADS=1 start lazyd "$OUT" || exit 1
wait_for "$OUT" '^ready' || exit 1
P=$T/lazy_fail.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" lfail)
r=$(ctl $PID COMMIT 3000)
check "the failing lazy patch is applied (its globals transform fine)" has "$r" '"outcome":"applied"'
kill -USR1 $PID
wait $PID 2>/dev/null
rc=$?
PIDS=""
check "first touch of the refusing node aborts the process" test $rc -eq 134
check "the abort names the type, the step, the patch and the reason" \
    grep -q "dsu: lazy transformation of 'struct node' at 0x[0-9a-f]* from version 0 to 1 (patch 'lfail') failed on first touch: node 5000 refuses" "$OUT.err"
