# The control socket under load (ABI.md section 6, limits): 300 clients at
# once all answered; a client trickling one byte every 300 ms delays no
# one and is dropped after the 5 s line deadline; a STAGE that reads,
# hashes and validates a large patch does not hold up STATUS; an
# oversized line is refused and its client dropped; 520 idle connections
# get the 513th and later a "busy" line, the others are still served.
. "$(dirname "$0")/lib.sh"
OUT=$RUN/loop.out
start loop "$OUT" || exit 1
S=$RUN/$PID.sock
C=$T/clients
tctl() { timeout 10 "$DSUCTL" "$@" || true; }
# "Promptly": 1 s (3 s under ASan/TSan, which slow everything down; on a
# loaded machine too).  Without the poll loop these take seconds or hang.
LIM=1000
[ -n "$SAN_KIND" ] && LIM=3000

r=$("$C" conc "$S" 300)
echo "# 300 clients: $r"
check "300 concurrent clients all answered" has "$r" 'answered=300/300'

"$C" slow "$S" 300 40 > "$RUN/slow.out" 2>&1 &
SLOW=$!
sleep 0.5
r=$("$C" status "$S" 20)
echo "# STATUS while a client trickles bytes: $r"
ms=${r#max_ms=}
check "STATUS answered within $LIM ms while a slow client trickles" test "${ms:-99999}" -lt $LIM
wait $SLOW
r=$(cat "$RUN/slow.out")
check "the slow client is dropped at the line deadline with a reason" has "$r" 'request line not completed within 5 s' 'closed'

P=$T/loop_v2.so
cp "$P" "$RUN/big.so"
# A valid patch padded to 64 MiB: reading and hashing it takes a while.
head -c $((64 << 20)) /dev/zero >> "$RUN/big.so"
chmod 644 "$RUN/big.so"
r=$("$C" race "$S" "STAGE $RUN/big.so $(sha "$RUN/big.so") big")
echo "# STAGE of 64 MiB vs STATUS: $r"
check "STATUS answered while a large STAGE is in progress" has "$r" 'status_first=1' 'status_before_stage_done=1' '"staged":"big"'
ms=$(echo "$r" | sed -n 's/.*status_ms=\([0-9]*\).*/\1/p')
check "... within $LIM ms" test "${ms:-99999}" -lt $LIM

r=$("$C" long "$S" 70000)
check "an oversized line is refused and its client dropped" has "$r" 'longer than 65536 bytes' 'closed'

# 520 idle connections: the first 512 are kept, the rest told "busy".
"$C" hold "$S" 520 1500 > "$RUN/busy.out" 2>&1 &
BUSY=$!
sleep 1.5
r=$(tctl $PID HELLO)
check "HELLO refused as busy while 512 clients are connected" has "$r" '"ok":false' 'busy'
wait $BUSY
r=$(cat "$RUN/busy.out")
check "connections past 512 told busy ($r)" has "$r" 'busy=8'
r=$(tctl $PID HELLO)
check "served again once they left" has "$r" '"ok":true'

r=$(tctl $PID COMMIT 3000)
check "the big patch still applies" has "$r" '"outcome":"applied"' '"buildId":"loop-v2"'
check "program exits cleanly" stop $PID

# A COMMIT that cannot succeed (a thread never gets quiescent) runs until
# its timeout; HELLO and STATUS are answered meanwhile, STAGE waits.
OUT=$RUN/spin.out
LOOP_SPIN=1 start loop "$OUT" || exit 1
ctl $PID STAGE "$P" "$(sha "$P")" v2 >/dev/null
"$DSUCTL" $PID COMMIT 6000 > "$RUN/commit.out" 2>&1 &
CM=$!
sleep 0.5
r=$("$C" status "$RUN/$PID.sock" 5)
echo "# STATUS during a 6 s COMMIT: $r"
ms=${r#max_ms=}
check "STATUS answered within $LIM ms during a long COMMIT" test "${ms:-99999}" -lt $LIM
wait $CM
r=$(cat "$RUN/commit.out")
check "the COMMIT still times out naming the thread" has "$r" '"outcome":"timeout"' "'spinner' did not reach"
# Pipelined on one connection: replies in request order, the HELLO after
# the COMMIT is not answered from inside it.
r=$("$C" lines "$RUN/$PID.sock" 3 "HELLO|COMMIT 300|HELLO|")
echo "# pipelined: $r"
check "pipelined requests answered in order" sh -c 'echo "$1" | sed -n 1p | grep -q "^1: .*\"protocol\"" &&
    echo "$1" | sed -n 2p | grep -q "^2: .*\"outcome\":\"timeout\"" && echo "$1" | sed -n 3p | grep -q "^3: .*\"protocol\""' _ "$r"
check "spin program exits cleanly" stop $PID
