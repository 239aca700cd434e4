/* chain.h -- a chain of resumable functions f0 (the loop, called by main)
 * -> f1 -> ... -> f9 (the update point), written as dsu-cc instruments them
 * (libs/runtime/ABI.md section 11).  VERSION selects the text printed, so
 * the same file builds the program (VERSION 1) and the patch (VERSION 2). */
#include <stdio.h>
#include <time.h>
#include "dsu.h"

/* One chain link: calls the next link through `next`, keeps two locals. */
#define LINK(K, NEXT_CALL)                                                        \
    static const char *const f##K##_sites[] = { "call:next#0" };                  \
    int IMPL(f##K)(int depth, int *acc) {                                         \
        int mine = depth * 10 + K;                                               \
        long spare = K;                                                           \
        if (__builtin_expect(dsu__resuming, 0))                                   \
            switch (dsu__frame_resume(#K, f##K##_sites, 1)) { case 0: goto r0; } \
        if (0) {                                                                  \
        r0:                                                                       \
            dsu__frame_load("depth", &depth, sizeof depth, DSU_LOCAL_INT);        \
            dsu__frame_load("acc", &acc, sizeof acc, DSU_LOCAL_PTR);              \
            dsu__frame_load("mine", &mine, sizeof mine, DSU_LOCAL_INT);           \
            dsu__frame_load("spare", &spare, sizeof spare, DSU_LOCAL_INT);        \
            dsu__frame_done();                                                    \
        }                                                                         \
        NEXT_CALL;                                                                \
        if (__builtin_expect(dsu__unwinding, 0)) {                                \
            dsu__frame_capture(#K, "call:next#0");                                \
            dsu__frame_save("depth", &depth, sizeof depth, DSU_LOCAL_INT);        \
            dsu__frame_save("acc", &acc, sizeof acc, DSU_LOCAL_PTR);              \
            dsu__frame_save("mine", &mine, sizeof mine, DSU_LOCAL_INT);           \
            dsu__frame_save("spare", &spare, sizeof spare, DSU_LOCAL_INT);        \
            return 0;                                                             \
        }                                                                         \
        *acc += mine + (int)spare;                                                \
        return 0;                                                                 \
    }                                                                             \
    FRAME_ENTRY(f##K, #K);

/* f8 .. f1, each calling the next link through its slot (CALL(K), defined
 * by the includer: the program and the patch reach the slots differently). */
#define LINKS_1_TO_8                                                              \
    LINK(8, CALL(9)(depth + 1, acc))                                              \
    LINK(7, CALL(8)(depth + 1, acc))                                              \
    LINK(6, CALL(7)(depth + 1, acc))                                              \
    LINK(5, CALL(6)(depth + 1, acc))                                              \
    LINK(4, CALL(5)(depth + 1, acc))                                              \
    LINK(3, CALL(4)(depth + 1, acc))                                              \
    LINK(2, CALL(3)(depth + 1, acc))                                              \
    LINK(1, CALL(2)(depth + 1, acc))
