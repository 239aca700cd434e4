# What STAGE accepts (ABI.md section 6, "What STAGE accepts"): a FIFO, a
# directory, a device, a symlink, a group/world-writable file, a file of
# another user, a file over DSU_MAX_PATCH_BYTES, and a patch cut short at
# byte N are each refused with a reason, without blocking the control
# thread and without touching the program; then the real patch applies.
. "$(dirname "$0")/lib.sh"
OUT=$RUN/loop.out
DSU_MAX_PATCH_BYTES=1M start loop "$OUT" || exit 1
P=$T/loop_v2.so
Z=0000000000000000000000000000000000000000000000000000000000000000
# tctl: like ctl, but a reply that does not come within 5 s is a failure
# (the control thread blocked), not a hang of the suite.
tctl() { timeout 5 "$DSUCTL" "$@" || true; }

mkfifo "$RUN/fifo.so"
r=$(tctl $PID STAGE "$RUN/fifo.so" $Z f)
check "STAGE of a FIFO refused at once" has "$r" '"ok":false' 'not a regular file' 'FIFO'
r=$(tctl $PID STATUS)
check "STATUS answered after the FIFO" has "$r" '"ok":true' '"staged":null'
r=$(tctl $PID STAGE "$RUN" $Z d)
check "STAGE of a directory refused" has "$r" '"ok":false' 'not a regular file' 'directory'
r=$(tctl $PID STAGE /dev/zero $Z z)
check "STAGE of a device refused" has "$r" '"ok":false' 'character device'
ln -s "$P" "$RUN/link.so"
r=$(tctl $PID STAGE "$RUN/link.so" "$(sha "$P")" l)
check "STAGE through a symlink refused" has "$r" '"ok":false' 'symbolic link'
cp "$P" "$RUN/gw.so"; chmod 664 "$RUN/gw.so"
r=$(tctl $PID STAGE "$RUN/gw.so" "$(sha "$P")" gw)
check "STAGE of a group-writable file refused" has "$r" '"ok":false' 'writable by its group' 'chmod go-w'
chmod 646 "$RUN/gw.so"
r=$(tctl $PID STAGE "$RUN/gw.so" "$(sha "$P")" gw)
check "STAGE of a world-writable file refused" has "$r" '"ok":false' 'writable by everyone'
if [ "$(id -u)" = 0 ]; then
    cp "$P" "$RUN/other.so"; chmod 644 "$RUN/other.so"; chown daemon "$RUN/other.so"
    r=$(tctl $PID STAGE "$RUN/other.so" "$(sha "$P")" o)
    check "STAGE of another user's file refused" has "$r" '"ok":false' 'owned by uid' 'or root'
else
    ok "other owner check skipped (needs root to chown)"
fi
head -c 2000000 /dev/zero > "$RUN/big.so"
r=$(tctl $PID STAGE "$RUN/big.so" "$(sha "$RUN/big.so")" big)
check "STAGE over DSU_MAX_PATCH_BYTES refused" has "$r" '"ok":false' 'more than the limit of 1048576' 'DSU_MAX_PATCH_BYTES'
: > "$RUN/empty.so"
r=$(tctl $PID STAGE "$RUN/empty.so" "$(sha "$RUN/empty.so")" e)
check "STAGE of an empty file refused" has "$r" '"ok":false' 'is empty'

# A copy cut short inside its last PT_LOAD: mapping it would SIGBUS.
last=$(readelf -lW "$P" | awk '$1 == "LOAD" { off = $2; sz = $5 } END { printf "%d %d", off, sz }')
off=${last% *}; sz=${last#* }
cut=$(( off + sz / 2 ))
head -c $cut "$P" > "$RUN/short.so"; chmod 644 "$RUN/short.so"
r=$(tctl $PID STAGE "$RUN/short.so" "$(sha "$RUN/short.so")" short)
check "STAGE of a truncated patch refused naming the segment" has "$r" '"ok":false' 'is truncated: PT_LOAD #3 ends at byte' "but the file has $cut bytes"
check "program alive after the truncated patch" alive $PID
# Cut short at the section headers (after every segment).
head -c $(( $(stat -c %s "$P") - 100 )) "$P" > "$RUN/short2.so"; chmod 644 "$RUN/short2.so"
r=$(tctl $PID STAGE "$RUN/short2.so" "$(sha "$RUN/short2.so")" short2)
check "STAGE of a patch cut in its section headers refused" has "$r" '"ok":false' 'is truncated: the section header table ends at byte'
# Not an ELF file at all.
printf 'hello\n' > "$RUN/text.so"; chmod 644 "$RUN/text.so"
r=$(tctl $PID STAGE "$RUN/text.so" "$(sha "$RUN/text.so")" t)
check "STAGE of a non-ELF file refused" has "$r" '"ok":false' 'not a loadable shared object: no ELF magic'

r=$(tctl $PID STATUS)
check "nothing staged, still v1" has "$r" '"staged":null' '"buildId":"loop-v1"'
check "program still runs v1" sh -c "sleep 0.1; tail -n 1 '$OUT' | grep -q 'v=v1'"
r=$(tctl $PID STAGE "$P" "$(sha "$P")" v2)
check "the real patch stages" has "$r" '"ok":true' '"staged":"v2"'
r=$(tctl $PID COMMIT 3000)
check "and applies" has "$r" '"outcome":"applied"' '"buildId":"loop-v2"'
check "v2 runs" wait_for "$OUT" 'v=v2' 5
check "program exits cleanly" stop $PID
bad=$(awk '/^i=/ { split($1,a,"="); split($2,b,"="); split($3,c,"=");
          want = b[2]=="v1" ? 2*a[2] : 3*a[2]; if (c[2] != want) print }' "$OUT" | wc -l)
check "no wrong output lines" test "$bad" -eq 0
