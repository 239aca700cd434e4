#!/bin/sh
# run.sh -- runs every tests/t_*.sh driver, counts "ok"/"not ok" lines and
# prints "<P> passed, <F> failed".  Exit status is non-zero on failure.
dir=$(dirname "$0")
: "${BUILD:?BUILD must point at the build directory}"
export BUILD
# TSan: a thread cancelled inside an intercepted blocking call runs its TLS
# destructors while TSan still considers it inside that interceptor, where
# it ignores mutex operations, and reports the registry update (done under
# dsu__reg_lock) as a race.  The cancellation part of t_mt is skipped.
if [ "$SAN_KIND" = tsan ]; then
    export MT_NO_CANCEL=1
    export TSAN_OPTIONS="die_after_fork=0 halt_on_error=1 exitcode=66 suppressions=$(cd "$dir" && pwd)/tsan.supp $TSAN_OPTIONS"
fi
# Every patch exports its own `dsu_patch` (RTLD_GLOBAL), which ASan reports
# as an ODR violation; dlsym(handle, ...) picks the right one, so that
# check is off.
if [ "$SAN_KIND" = asan ]; then
    export ASAN_OPTIONS="detect_leaks=0 detect_odr_violation=0 abort_on_error=0 exitcode=66 $ASAN_OPTIONS"
fi
pass=0; fail=0
for t in "$dir"/t_*.sh; do
    name=$(basename "$t" .sh)
    echo "== $name"
    out=$(sh "$t" 2>&1)
    rc=$?
    echo "$out" | sed 's/^/   /'
    p=$(echo "$out" | grep -c '^ok - ')
    f=$(echo "$out" | grep -c '^not ok - ')
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "   not ok - $name exited with status $rc"; fi
    pass=$((pass + p)); fail=$((fail + f))
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
