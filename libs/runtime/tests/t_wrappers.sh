# Every blocking-call wrapper, each on its own thread with a known correct
# result, while the driver floods the process with stack-capture signals
# (STACKS) and applies and rolls back a patch: no wrong result, no stray
# EINTR, no timeout cut short, every wrapper keeps making progress.
. "$(dirname "$0")/lib.sh"
OUT=$RUN/wrappers.out
start wrappers "$OUT" || exit 1
wait_for "$OUT" '^started' || exit 1
P=$T/wrappers_v2.so
n=0
while [ $n -lt 40 ]; do
    r=$(ctl $PID STACKS)
    case "$r" in *'"ok":true'*) ;; *) notok "STACKS during wrapper load: $r" ;; esac
    if [ $n -eq 10 ]; then
        r=$(ctl $PID STAGE "$P" "$(sha "$P")" w2)
        r=$(ctl $PID COMMIT 5000)
        check "COMMIT with threads in every wrapper" has "$r" '"outcome":"applied"'
        echo "# commit: $r"
    fi
    if [ $n -eq 25 ]; then
        r=$(ctl $PID ROLLBACK 5000)
        check "ROLLBACK with threads in every wrapper" has "$r" '"outcome":"applied"'
        echo "# rollback: $r"
    fi
    sleep 0.05
    n=$((n + 1))
done
check "program exits cleanly" stop $PID
check "no wrapper misbehaved" sh -c "! grep '^FAIL' '$OUT' | head -5 | sed 's/^/# /' | grep -q ."
grep '^FAIL' "$OUT" | head -5 | sed 's/^/# /'
for w in poll ppoll select pselect epoll_wait epoll_pwait nanosleep clock_nanosleep_rel \
         clock_nanosleep_abs usleep sleep pthread_cond_timedwait pthread_cond_wait read recv \
         recvfrom recvmsg accept accept4 sem_wait waitpid pthread_join; do
    c=$(sed -n "s/^count $w \([0-9]*\)/\1/p" "$OUT")
    check "$w made progress (${c:-0} calls)" test "${c:-0}" -gt 1
done
