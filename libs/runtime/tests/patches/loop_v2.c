/* loop v1 -> v2: compute triples, version says v2, legacy is REMOVED
 * (the program still calls it through a stored pointer). */
#include "instrumented.h"

int __dsu_impl_compute__v2(int x) { return x * 3; }
const char *__dsu_impl_version__v2(void) { return "v2"; }

static const struct dsu_patch_fn fns[] = {
    { "compute", DSU_CHANGE_BODY, (void *)&__dsu_impl_compute__v2, NULL },
    { "version", DSU_CHANGE_BODY, (void *)&__dsu_impl_version__v2, NULL },
    { "tests/progs/loop.c::legacy", DSU_CHANGE_REMOVED, NULL, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "loop-v1", "loop-v2", "1", "2", 3, fns, 0, NULL
};
