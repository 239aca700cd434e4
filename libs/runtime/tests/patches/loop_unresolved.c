/* References a symbol nobody defines: dlopen(RTLD_NOW) must fail cleanly. */
#include "instrumented.h"
extern int dsu_test_no_such_symbol(int);
int __dsu_impl_compute__unres(int x) { return dsu_test_no_such_symbol(x); }
static const struct dsu_patch_fn fns[] = {
    { "compute", DSU_CHANGE_BODY, (void *)&__dsu_impl_compute__unres, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "loop-v1", "loop-unres", "1", "unres", 1, fns, 0, NULL
};
