/* loop v1 -> v2 like loop_v2.c, under names of its own: t_stress.sh stages
 * thousands of corrupted copies of this patch, and the ones the loader
 * accepts stay loaded (RTLD_GLOBAL), so they must not define the symbols
 * of the good patch applied at the end (loop_v2.so). */
#include "instrumented.h"

int __dsu_impl_compute__s2(int x) { return x * 3; }
const char *__dsu_impl_version__s2(void) { return "v2"; }

static const struct dsu_patch_fn fns[] = {
    { "compute", DSU_CHANGE_BODY, (void *)&__dsu_impl_compute__s2, NULL },
    { "version", DSU_CHANGE_BODY, (void *)&__dsu_impl_version__s2, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "loop-v1", "loop-v2", "1", "2", 2, fns, 0, NULL
};
