#include "instrumented.h"
int __dsu_impl_compute__v2(int x) { return x * 3; }
const char *__dsu_impl_version__v2(void) { return "v2"; }
static const struct dsu_patch_fn fns[] = {
    { "compute", DSU_CHANGE_BODY, (void *)&__dsu_impl_compute__v2, NULL },
    { "version", DSU_CHANGE_BODY, (void *)&__dsu_impl_version__v2, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "fork-v1", "fork-v2", "1", "2", 2, fns, 0, NULL
};
