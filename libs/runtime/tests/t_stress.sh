# Thousands of corrupted patches (truncated at the start, middle and end of
# every PT_LOAD and at random offsets; bit flips and random bytes in the
# headers, dynamic section, symbol, string, hash and version tables; random
# files) staged into a live program with their correct sha256: each gets a
# reply, the program keeps serving and computing, and the real patch still
# applies at the end.  2000 rounds (400 under ASan/TSan, STRESS_ROUNDS).
. "$(dirname "$0")/lib.sh"
OUT=$RUN/loop.out
start loop "$OUT" || exit 1
n=${STRESS_ROUNDS:-2000}
[ -n "$SAN_KIND" ] && n=${STRESS_ROUNDS:-400}
mkdir -p "$RUN/m"
r=$("$T/mutate" "$RUN/$PID.sock" "$T/stress_v2.so" "$n" "${SEED:-7}" "$RUN/m")
echo "# $r"
check "$n corrupted patches each answered" has "$r" "rounds=$n" 'bad=0'
check "program alive" alive $PID
lines=$(grep -c '^i=' "$OUT")
sleep 0.3
check "program still computing" test "$(grep -c '^i=' "$OUT")" -gt "$lines"
r=$(ctl $PID STATUS)
check "STATUS answered" has "$r" '"ok":true' '"buildId":"loop-v1"'
P=$T/loop_v2.so
r=$(ctl $PID STAGE "$P" "$(sha "$P")" good)
check "the good patch stages" has "$r" '"ok":true' '"staged":"good"'
r=$(ctl $PID COMMIT 5000)
check "and applies" has "$r" '"outcome":"applied"' '"buildId":"loop-v2"'
check "v2 runs" wait_for "$OUT" 'v=v2' 5
check "program exits cleanly" stop $PID
bad=$(awk '/^i=/ { split($1,a,"="); split($2,b,"="); split($3,c,"=");
          want = b[2]=="v1" ? 2*a[2] : 3*a[2]; if (c[2] != want) print }' "$OUT" | wc -l)
check "no wrong output lines" test "$bad" -eq 0
