/* frames v1 -> v2: main and tick replaced while both are active (ABI.md
 * section 11).  main's loop body changes and gains a local (bonus, set by
 * its initializer when rebuilt from a v1 frame); tick is unchanged in
 * behaviour.  NOFRAMES: the same code without dsu_patch_frames, which must
 * be refused because main and tick are active. */
#include <stdio.h>
#include <time.h>
#include "instrumented.h"

DSU_SLOT_DECL(tick);

static const char *const tick_sites[] = { "point:tick" };
int tick_v2(int *state, int i) {
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
DSU_FRAME_ENTRY(tick_frame_v2, "tick", tick_v2, tick_sites);

static const char *const main_sites[] = { "call:tick#0", "wait:nanosleep#0", "wait:nanosleep#0:again" };
#define MAIN_LOCALS(op)                                                \
    op("argc", &argc, sizeof argc, DSU_LOCAL_INT);                     \
    op("argv", &argv, sizeof argv, DSU_LOCAL_PTR);                     \
    op("i", &i, sizeof i, DSU_LOCAL_INT);                              \
    op("state", &state, sizeof state, DSU_LOCAL_INT);                  \
    op("sleepy", &sleepy, sizeof sleepy, DSU_LOCAL_INT);               \
    op("ts", &ts, sizeof ts, DSU_LOCAL_BYTES)
#define RESTORE()                                                      \
    do { MAIN_LOCALS(dsu__frame_load);                                 \
         if (!dsu__frame_load("bonus", &bonus, sizeof bonus, DSU_LOCAL_INT)) bonus = 100; \
         dsu__frame_done(); } while (0)
#define CAPTURE(site)                                                  \
    do { dsu__frame_capture("main", site); MAIN_LOCALS(dsu__frame_save); \
         dsu__frame_save("bonus", &bonus, sizeof bonus, DSU_LOCAL_INT); return 0; } while (0)
int main_v2(int argc, char **argv) {
    int i, state, sleepy = 0;
    long bonus = 100;   /* new in v2 */
    struct timespec ts = { 0, 2000000 };
    if (__builtin_expect(dsu__resuming, 0))
        switch (dsu__frame_resume("main", main_sites, 3)) {
        case 0: goto r0;
        case 1: goto r1;
        case 2: goto r2;
        }
    state = 0;
    for (i = 0;; i++) {
        if (0) { r0: RESTORE(); }
        DSU_CALL_T(tick, int (*)(int *, int))(&state, i);
        if (__builtin_expect(dsu__unwinding, 0)) CAPTURE("call:tick#0");
        printf("i=%d v=v2 state=%d bonus=%ld\n", i, state, bonus);
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
    return 0;
}
DSU_FRAME_ENTRY(main_frame_v2, "main", main_v2, main_sites);

static const struct dsu_patch_fn fns[] = {
    { "main", DSU_CHANGE_BODY, (void *)&main_v2, NULL },
    { "tick", DSU_CHANGE_BODY, (void *)&tick_v2, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "frames-v1", "frames-v2", "1", "2", 2, fns, 0, NULL
};
#ifndef NOFRAMES
static const struct dsu_frame_fn *const frame_fns[] = { &main_frame_v2, &tick_frame_v2 };
const struct dsu_patch_frames dsu_patch_frames = {
    DSU_FRAME_ABI_VERSION, 2, frame_fns, 0, NULL
};
#endif
