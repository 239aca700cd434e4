/* frames -- a main loop that is never left, for stack-frame mapping (ABI.md
 * section 11), written as dsu-cc instruments it: main calls tick(&state, i)
 * every iteration; tick has the update point.  Both are resumable: a frame
 * saves its locals and returns when dsu__unwinding is set after its site,
 * and restores them when entered with dsu__resuming set.  Prints
 * "i=<n> v=v1 state=<s>" every 2 ms; state is always n*(n+1)/2 (tick adds
 * n), so a line shows whether the frames were carried over intact.
 * FRAMES_SLEEP=<ms>: the loop sleeps that long in a wrapped nanosleep (a
 * wait site) instead, so a commit finds the thread parked after it or, for
 * long sleeps, blocked inside it.
 * FRAMES_NOMAP=1: main's call of tick is made in a no-resume region, as
 * dsu-cc wraps a call it cannot resume (one nested in a condition), so the
 * update point in tick is reached with dsu__nomap == 1 and a commit that
 * replaces main or tick cannot unwind the thread; FRAMES_NOMAP=alternate:
 * only on odd iterations (a commit waits for an even one). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "instrumented.h"

DSU_PROGRAM("frames", "frames-v1");
extern char **environ;

static volatile sig_atomic_t stop;
static int nomap_mode;          /* FRAMES_NOMAP: 0 off, 1 always, 2 odd iterations */
static void on_term(int s) { (void)s; stop = 1; }

static const char *const tick_sites[] = { "point:tick" };
DSU_FN(int, tick, "tick", "tests/progs/frames.c", (int *state, int i)) {
    int before;
    if (__builtin_expect(dsu__resuming, 0))
        switch (dsu__frame_resume("tick", tick_sites, 1)) { case 0: goto r0; }
    before = *state;
    *state = before + i;
    DSU_UPDATE_POINT("tick");
    if (__builtin_expect(dsu__unwinding, 0)) {
        dsu__frame_capture("tick", "point:tick");
        dsu__frame_save("state", &state, sizeof state, DSU_LOCAL_PTR);
        dsu__frame_save("i", &i, sizeof i, DSU_LOCAL_INT);
        dsu__frame_save("before", &before, sizeof before, DSU_LOCAL_INT);
        return 0;
    }
    if (0) {
    r0:
        dsu__frame_load("state", &state, sizeof state, DSU_LOCAL_PTR);
        dsu__frame_load("i", &i, sizeof i, DSU_LOCAL_INT);
        if (!dsu__frame_load("before", &before, sizeof before, DSU_LOCAL_INT)) before = 0;
        dsu__frame_done();
    }
    return before;
}
DSU_FRAME_ENTRY(tick_frame, "tick", __dsu_impl_tick, tick_sites);

static const char *const main_sites[] = { "call:tick#0", "wait:nanosleep#0", "wait:nanosleep#0:again" };
/* What dsu-cc writes out at each site, once per local in scope. */
#define MAIN_LOCALS(op)                                                \
    op("argc", &argc, sizeof argc, DSU_LOCAL_INT);                     \
    op("argv", &argv, sizeof argv, DSU_LOCAL_PTR);                     \
    op("i", &i, sizeof i, DSU_LOCAL_INT);                              \
    op("state", &state, sizeof state, DSU_LOCAL_INT);                  \
    op("sleepy", &sleepy, sizeof sleepy, DSU_LOCAL_INT);               \
    op("ts", &ts, sizeof ts, DSU_LOCAL_BYTES)
#define RESTORE() do { MAIN_LOCALS(dsu__frame_load); dsu__frame_done(); } while (0)
#define CAPTURE(site) do { dsu__frame_capture("main", site); MAIN_LOCALS(dsu__frame_save); return 0; } while (0)
DSU_FN_NOSTUB(int, main, "main", "tests/progs/frames.c", (int argc, char **argv)) {
    int i, state, sleepy;
    struct timespec ts = { 0, 2000000 };
    if (__builtin_expect(dsu__resuming, 0))
        switch (dsu__frame_resume("main", main_sites, 3)) {
        case 0: goto r0;
        case 1: goto r1;
        case 2: goto r2;
        }
    signal(SIGTERM, on_term);
    setvbuf(stdout, NULL, _IOLBF, 0);
    sleepy = getenv("FRAMES_SLEEP") != NULL;
    if (sleepy) ts.tv_nsec = atoi(getenv("FRAMES_SLEEP")) * 1000000L;
    if (getenv("FRAMES_NOMAP")) nomap_mode = strcmp(getenv("FRAMES_NOMAP"), "alternate") == 0 ? 2 : 1;
    state = 0;
    for (i = 0; !stop; i++) {
        if (nomap_mode == 1 || (nomap_mode == 2 && i % 2)) {
            /* A call dsu-cc cannot resume (nested in a condition): no site,
             * no capture, wrapped in a no-resume region instead. */
            if (({ dsu__nomap++; __auto_type __dsu_v = DSU_CALL(tick)(&state, i); dsu__nomap--; __dsu_v; }) < 0)
                abort();
        } else {
            if (0) { r0: RESTORE(); }
            DSU_CALL(tick)(&state, i);
            if (__builtin_expect(dsu__unwinding, 0)) CAPTURE("call:tick#0");
        }
        printf("i=%d v=v1 state=%d\n", i, state);
        if (sleepy) {
            if (0) { r2: RESTORE(); }
            dsu_nanosleep(&ts, NULL);
            if (__builtin_expect(dsu__unwinding, 0))
                CAPTURE(dsu__unwinding == DSU_UNWIND_AGAIN ? "wait:nanosleep#0:again" : "wait:nanosleep#0");
            if (0) { r1: RESTORE(); }
        } else {
            struct timespec t2 = { 0, 2000000 };
            nanosleep(&t2, NULL);
        }
    }
    printf("exit ok\n");
    return 0;
}
DSU_FRAME_ENTRY(main_frame, "main", __dsu_impl_main, main_sites);

int main(int argc, char **argv) { return dsu__run_main(&__dsu_slot_main, argc, argv, environ); }
