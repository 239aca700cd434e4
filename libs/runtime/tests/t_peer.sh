# The control socket answers only the program's own user and root.  Two
# layers: the socket is 0600 in a 0700 directory, and the control thread
# checks the peer's uid (SO_PEERCRED) before reading a request.  The second
# layer is reached here by a client that is another user but may bypass file
# permissions (CAP_DAC_OVERRIDE); needs root and setpriv, else skipped.
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
    ok "peer check skipped (needs root and setpriv)"
    exit 0
fi
OUT=$RUN/peer.out
start loop "$OUT" || exit 1
as_daemon() {
    setpriv --reuid=daemon --regid=daemon --clear-groups \
        --inh-caps=+dac_override --ambient-caps=+dac_override -- "$DSUCTL" "$@" 2>&1 || true
}
as_daemon_plain() {
    setpriv --reuid=daemon --regid=daemon --clear-groups -- "$DSUCTL" "$@" 2>&1 || true
}
r=$(as_daemon_plain "$RUN/$PID.sock" HELLO)
check "another user without privileges cannot even connect" has "$r" 'cannot connect' 'Permission denied'
r=$(as_daemon "$RUN/$PID.sock" HELLO)
check "another user past the file permissions is refused by the peer check" has "$r" '"ok":false' "permission denied: connect as the program's user or root"
# The refusal is sent and the connection closed without reading the request;
# the client may not even get to send it (SIGPIPE), but it must never succeed.
r=$(as_daemon "$RUN/$PID.sock" STAGE /etc/passwd 0000000000000000000000000000000000000000000000000000000000000000 x)
check "a refused peer's request is never executed" sh -c 'case "$1" in *"\"ok\":true"*) exit 1 ;; esac' _ "$r"
r=$(ctl $PID STATUS)
check "nothing was staged by the refused peer" sh -c 'case "$1" in *passwd*) exit 1 ;; esac' _ "$r"
r=$(ctl $PID HELLO)
check "the owner is still served afterwards" has "$r" '"ok":true'
check "program exits cleanly" stop $PID
