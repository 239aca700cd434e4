/* The benchmark program: main -> f0 (loop) -> f1 ... -> f9 (update point):
 * ten resumable frames on the main thread at every update point, each
 * called through its slot (bench/frame-mapping/run). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include "../../libs/runtime/tests/instrumented.h"

DSU_PROGRAM("chain", "chain-v1");
extern char **environ;
#define IMPL(f) __dsu_impl_##f
#define FRAME_ENTRY(f, key) DSU_FRAME_ENTRY(f##_frame, key, __dsu_impl_##f, f##_sites)

/* Slots for f0..f9 (keys "0".."9"); no stubs: only called through slots. */
#define SLOT(K) int __dsu_impl_f##K(int, int *); void *__dsu_slot_f##K = (void *)&__dsu_impl_f##K; \
    static const struct dsu_fn_entry __attribute__((used, section("dsu_fn"), aligned(8))) \
    __dsu_entry_f##K = { DSU_ABI_VERSION, #K, &__dsu_slot_f##K, (void *)&__dsu_impl_f##K, "chain.c" };
SLOT(0) SLOT(1) SLOT(2) SLOT(3) SLOT(4) SLOT(5) SLOT(6) SLOT(7) SLOT(8) SLOT(9)
#define CALL(K) ((int (*)(int, int *))__atomic_load_n(&__dsu_slot_f##K, __ATOMIC_RELAXED))

static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

#include "chain.h"
static const char *const f9_sites[] = { "point:bench" };
int __dsu_impl_f9(int depth, int *acc) {
    if (__builtin_expect(dsu__resuming, 0))
        switch (dsu__frame_resume("9", f9_sites, 1)) { case 0: goto r0; }
    DSU_UPDATE_POINT("bench");
    if (__builtin_expect(dsu__unwinding, 0)) {
        dsu__frame_capture("9", "point:bench");
        dsu__frame_save("depth", &depth, sizeof depth, DSU_LOCAL_INT);
        dsu__frame_save("acc", &acc, sizeof acc, DSU_LOCAL_PTR);
        return 0;
    }
    if (0) {
    r0:
        dsu__frame_load("depth", &depth, sizeof depth, DSU_LOCAL_INT);
        dsu__frame_load("acc", &acc, sizeof acc, DSU_LOCAL_PTR);
        dsu__frame_done();
    }
    *acc += depth;
    return 0;
}
FRAME_ENTRY(f9, "9");
LINKS_1_TO_8

static const char *const f0_sites[] = { "call:f1#0" };
int __dsu_impl_f0(int depth, int *acc) {
    int n = 0;
    if (__builtin_expect(dsu__resuming, 0))
        switch (dsu__frame_resume("0", f0_sites, 1)) { case 0: goto r0; }
    for (; !stop; n++) {
        if (0) {
        r0:
            dsu__frame_load("depth", &depth, sizeof depth, DSU_LOCAL_INT);
            dsu__frame_load("acc", &acc, sizeof acc, DSU_LOCAL_PTR);
            dsu__frame_load("n", &n, sizeof n, DSU_LOCAL_INT);
            dsu__frame_done();
        }
        CALL(1)(depth + 1, acc);
        if (__builtin_expect(dsu__unwinding, 0)) {
            dsu__frame_capture("0", "call:f1#0");
            dsu__frame_save("depth", &depth, sizeof depth, DSU_LOCAL_INT);
            dsu__frame_save("acc", &acc, sizeof acc, DSU_LOCAL_PTR);
            dsu__frame_save("n", &n, sizeof n, DSU_LOCAL_INT);
            return 0;
        }
        if (n % 64 == 0) { struct timespec ts = { 0, 200000 }; nanosleep(&ts, NULL); }
    }
    return n;
}
FRAME_ENTRY(f0, "0");

static const char *const main_sites[] = { "call:f0#0" };
DSU_FN_NOSTUB(int, main, "main", "chain.c", (int argc, char **argv)) {
    int acc = 0;
    (void)argc; (void)argv;
    if (__builtin_expect(dsu__resuming, 0))
        switch (dsu__frame_resume("main", main_sites, 1)) { case 0: goto r0; }
    signal(SIGTERM, on_term);
    if (0) {
    r0:
        dsu__frame_load("acc", &acc, sizeof acc, DSU_LOCAL_INT);
        dsu__frame_done();
    }
    CALL(0)(0, &acc);
    if (__builtin_expect(dsu__unwinding, 0)) {
        dsu__frame_capture("main", "call:f0#0");
        dsu__frame_save("acc", &acc, sizeof acc, DSU_LOCAL_INT);
        return 0;
    }
    printf("acc=%d\n", acc);
    return 0;
}
DSU_FRAME_ENTRY(main_frame, "main", __dsu_impl_main, main_sites);
int main(int argc, char **argv) { return dsu__run_main(&__dsu_slot_main, argc, argv, environ); }
