# Live data (ABI.md section 10): tracked heap list + embedded + global
# instances; a failing transformer and a type outgrowing its room are
# refused with nothing changed; v2 widens a field and adds one, every
# instance keeps its values (same checksum) and gets the new field's value;
# a data patch cannot be rolled back.  A second run churns the registry
# first and puts a block of three instances into the list.
. "$(dirname "$0")/lib.sh"
OUT=$RUN/data.out
start data "$OUT" || exit 1
wait_for "$OUT" '^sum=' || exit 1
check "registry counts live blocks (freed and realloc'd ones gone)" grep -q '^tracked blocks=10000 instances=10000$' "$OUT"
before=$(grep '^sum=' "$OUT" | tail -n 1 | sed 's/ v=.*//')
check "v1 checksum covers 10007 instances" has "$before" ' n=10007'

P=$T/data_big.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" big)
check "STAGE of a type outgrowing its room refused with sizes" has "$r" '"ok":false' "type 'struct node' does not fit its reserved room: old size 16, new size 216, capacity 64"

P=$T/data_fail.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" fail)
check "STAGE of the failing patch" has "$r" '"ok":true' '"types":1'
r=$(ctl $PID COMMIT 3000)
check "failing transformer refuses the update" has "$r" '"ok":false' '"outcome":"refused"' "transformer of 'struct node' failed" 'node 5000 refuses' 'nothing was changed'
sleep 0.1
after=$(grep '^sum=' "$OUT" | tail -n 1 | sed 's/ v=.*//')
check "data unchanged after the refusal" test "$before" = "$after"
check "still v1 after the refusal" sh -c "tail -n 1 '$OUT' | grep -q 'v=v1'"

P=$T/data_sfail.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" sfail)
r=$(ctl $PID COMMIT 3000)
check "refusing state transformer refuses the update" has "$r" '"ok":false' '"outcome":"refused"' 'state transformer says no'
sleep 0.1
after=$(grep '^sum=' "$OUT" | tail -n 1 | sed 's/ v=.*//')
check "every instance got its old image back" test "$before" = "$after"
check "still v1 after the state transformer refused" sh -c "tail -n 1 '$OUT' | grep -q 'v=v1 x=0 h=102'"

P=$T/data_v2.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" v2)
check "STAGE v2" has "$r" '"ok":true' '"types":1'
r=$(ctl $PID COMMIT 3000)
check "COMMIT v2 applied, every instance transformed" has "$r" '"ok":true' '"outcome":"applied"' '"instances":10007'
echo "# v2 commit: $r"
check "v2 running" wait_for "$OUT" 'v=v2' 5
v2=$(grep 'v=v2' "$OUT" | tail -n 1)
check "checksum kept across the layout change" has "$v2" "$before v=v2"
check "new field holds its value in every instance" has "$v2" ' x=70049 '
check "state transformer ran after the instances were transformed" has "$v2" ' h=202'
r=$(ctl $PID ROLLBACK 1000)
check "ROLLBACK of a data patch refused" has "$r" '"ok":false' 'cannot be rolled back'
check "alive" alive $PID
kill -TERM $PID
wait $PID 2>/dev/null
check "clean exit" grep -q '^exit ok' "$OUT"

# The registry under churn (scrambled frees, reallocs, blocks of several
# instances) and a block of three instances in the list: a refused update
# puts every image back, v2 transforms all of them.
OUT2=$RUN/data2.out
DATA_CHURN=1 DATA_N=6000 start data "$OUT2" || exit 1
wait_for "$OUT2" '^sum=' || exit 1
check "registry counts match the model under churn" grep -q '^churn ok blocks=0 instances=0$' "$OUT2"
check "registry counts the block of three" grep -q '^tracked blocks=6001 instances=6003$' "$OUT2"
before2=$(grep '^sum=' "$OUT2" | tail -n 1 | sed 's/ v=.*//')
check "v1 checksum covers 6010 instances" has "$before2" ' n=6010'
P=$T/data_fail.so
ctl $PID STAGE "$P" "$(sha "$P")" fail2 >/dev/null
r=$(ctl $PID COMMIT 3000)
check "failing transformer refuses (churned registry)" has "$r" '"outcome":"refused"' 'node 5000 refuses' '(5000 of 6003 instances prepared)'
sleep 0.1
check "data unchanged after the refusal (churned registry)" test "$before2" = "$(grep '^sum=' "$OUT2" | tail -n 1 | sed 's/ v=.*//')"
P=$T/data_v2.so
ctl $PID STAGE "$P" "$(sha "$P")" v2b >/dev/null
r=$(ctl $PID COMMIT 3000)
check "COMMIT v2 applied to 6010 instances" has "$r" '"outcome":"applied"' '"instances":6010'
check "v2 running (churned registry)" wait_for "$OUT2" 'v=v2' 5
v2=$(grep 'v=v2' "$OUT2" | tail -n 1)
check "every instance kept its values and got the new field" has "$v2" "$before2 v=v2 x=42070 "
