/* loop -- single-threaded program: one update point per iteration.
 * LOOP_TXN=1: every iteration runs inside DSU_TXN_BEGIN/END until SIGUSR1.
 * LOOP_ROGUE=1: also starts a thread behind the runtime's back (the real
 * pthread_create via dlsym), which must make updates refuse.
 * LOOP_LIB=<path.so>: dlopens it and calls its spawn(), which creates a
 * thread from inside a shared library (must be registered via -rdynamic).
 * LOOP_SPIN=1: also starts a thread that spins without ever reaching an
 * update point, so updates time out naming it.
 * Prints "i=<n> v=<version> r=<compute(n)> l=<legacy(n)>" every 10 ms.
 * v1: r=2n; v2: r=3n; v3: r=3n+1000 (via added function bonus); l=n+7
 * always (legacy is REMOVED in v2 but stays callable through fp). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "instrumented.h"

DSU_PROGRAM("loop", "loop-v1");

DSU_FN(int, compute, "compute", "tests/progs/loop.c", (int x)) { return x * 2; }
DSU_FN(const char *, version, "version", "tests/progs/loop.c", (void)) { return "v1"; }
DSU_FN_M(int, legacy, loop_c__legacy, "tests/progs/loop.c::legacy", "tests/progs/loop.c",
         (int x)) { return x + 7; }

static volatile sig_atomic_t stop, txn_off;
static void on_term(int s) { (void)s; stop = 1; }
static void on_usr1(int s) { (void)s; txn_off = 1; }

static int spin_stop;
static void *spinner(void *a) {
    (void)a;
    while (!__atomic_load_n(&spin_stop, __ATOMIC_RELAXED)) {}
    return NULL;
}

static void *rogue(void *a) {
    (void)a;
    for (;;) dsu_usleep(10000);
    return NULL;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    int txn = getenv("LOOP_TXN") != NULL;
    if (getenv("LOOP_ROGUE")) {
        /* Like the runtime: a statically linked sanitizer's interceptor
         * first (the thread must still be known to TSan), else libc's. */
        void *f = dlsym(RTLD_DEFAULT, "__interceptor_pthread_create");
        if (!f) f = dlsym(RTLD_NEXT, "pthread_create");
        int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
            (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))f;
        pthread_t t;
        if (!real || real(&t, NULL, rogue, NULL) != 0) return 1;
        pthread_setname_np(t, "rogue");
    }
    pthread_t spin;
    if (getenv("LOOP_SPIN")) {
        if (pthread_create(&spin, NULL, spinner, NULL) != 0) return 1;
        pthread_setname_np(spin, "spinner");
    }
    const char *lib = getenv("LOOP_LIB");
    if (lib) {
        void *h = dlopen(lib, RTLD_NOW);
        int (*spawn)(void) = h ? (int (*)(void))dlsym(h, "spawn") : NULL;
        if (!spawn || spawn() != 0) { fprintf(stderr, "LOOP_LIB: %s\n", dlerror()); return 1; }
    }
    int (*fp)(int) = legacy;    /* a stored pointer: goes through the stub */
    for (long i = 0; !stop; i++) {
        int in_txn = txn && !txn_off;
        if (in_txn) DSU_TXN_BEGIN("iteration");
        DSU_UPDATE_POINT("loop");
        printf("i=%ld v=%s r=%d l=%d\n", i, DSU_CALL(version)(),
               DSU_CALL(compute)((int)i), fp((int)i));
        fflush(stdout);
        dsu_usleep(10000);
        if (in_txn) DSU_TXN_END("iteration");
    }
    if (getenv("LOOP_SPIN")) {
        __atomic_store_n(&spin_stop, 1, __ATOMIC_RELAXED);
        pthread_join(spin, NULL);
    }
    printf("exit ok\n");
    return 0;
}
