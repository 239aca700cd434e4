/* Only allowed at an update point the program does not have: COMMIT must
 * time out with a reason naming the point. */
#include "instrumented.h"
int __dsu_impl_compute__pts(int x) { return -x; }
static const char *const points[] = { "nowhere" };
static const struct dsu_patch_fn fns[] = {
    { "compute", DSU_CHANGE_BODY, (void *)&__dsu_impl_compute__pts, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "loop-v1", "loop-pts", "1", "pts", 1, fns, 1, points
};
