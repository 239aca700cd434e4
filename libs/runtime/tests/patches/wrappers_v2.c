#include "instrumented.h"
int __dsu_impl_tick__v2(void) { return 2; }
static const struct dsu_patch_fn fns[] = {
    { "tick", DSU_CHANGE_BODY, (void *)&__dsu_impl_tick__v2, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "wrappers-v1", "wrappers-v2", "1", "2", 1, fns, 0, NULL
};
