/* The benchmark patch: every link f1..f8 and the loop f0 replaced (new
 * code, same sites), so all ten program frames plus main are active and
 * rebuilt at each apply (bench/frame-mapping/run). */
#include "../../libs/runtime/tests/instrumented.h"
#define IMPL(f) f##_v2
#define FRAME_ENTRY(f, key) DSU_FRAME_ENTRY(f##_frame, key, f##_v2, f##_sites)
extern void *__dsu_slot_f1, *__dsu_slot_f2, *__dsu_slot_f3, *__dsu_slot_f4, *__dsu_slot_f5,
    *__dsu_slot_f6, *__dsu_slot_f7, *__dsu_slot_f8, *__dsu_slot_f9;
#define CALL(K) ((int (*)(int, int *))__atomic_load_n(&__dsu_slot_f##K, __ATOMIC_RELAXED))
#include "chain.h"
LINKS_1_TO_8

static const struct dsu_patch_fn fns[] = {
    { "1", DSU_CHANGE_BODY, (void *)&f1_v2, NULL }, { "2", DSU_CHANGE_BODY, (void *)&f2_v2, NULL },
    { "3", DSU_CHANGE_BODY, (void *)&f3_v2, NULL }, { "4", DSU_CHANGE_BODY, (void *)&f4_v2, NULL },
    { "5", DSU_CHANGE_BODY, (void *)&f5_v2, NULL }, { "6", DSU_CHANGE_BODY, (void *)&f6_v2, NULL },
    { "7", DSU_CHANGE_BODY, (void *)&f7_v2, NULL }, { "8", DSU_CHANGE_BODY, (void *)&f8_v2, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "chain-v1", "chain-v2", "1", "2", 8, fns, 0, NULL
};
static const struct dsu_frame_fn *const frame_fns[] = {
    &f1_frame, &f2_frame, &f3_frame, &f4_frame, &f5_frame, &f6_frame, &f7_frame, &f8_frame,
};
const struct dsu_patch_frames dsu_patch_frames = { DSU_FRAME_ABI_VERSION, 8, frame_fns, 0, NULL };
