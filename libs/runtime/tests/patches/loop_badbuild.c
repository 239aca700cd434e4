/* Generated against a build the program does not run: must be refused. */
#include "instrumented.h"
int __dsu_impl_compute__bad(int x) { return -x; }
static const struct dsu_patch_fn fns[] = {
    { "compute", DSU_CHANGE_BODY, (void *)&__dsu_impl_compute__bad, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "loop-v0", "loop-bad", "0", "bad", 1, fns, 0, NULL
};
