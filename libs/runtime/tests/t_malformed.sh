# 500 malformed / random request lines (random bytes, mutated requests,
# overlong lines, blank lines) get error replies; the program keeps
# running correctly and still answers HELLO.
. "$(dirname "$0")/lib.sh"
OUT=$RUN/loop.out
start loop "$OUT" || exit 1
check "500 malformed requests answered" "$T/malformed" "$RUN/$PID.sock" 500 ${SEED:-42}
check "program alive" alive $PID
r=$(ctl $PID HELLO)
check "HELLO still answered" has "$r" '"ok":true' '"buildId":"loop-v1"'
check "program exits cleanly" stop $PID
bad=$(awk '/^i=/ { split($1,a,"="); split($3,c,"="); if (c[2] != 2*a[2]) print }' "$OUT" | wc -l)
check "no wrong output lines" test "$bad" -eq 0
