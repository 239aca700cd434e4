/* loop v2 -> v3: compute calls the ADDED function bonus through its slot. */
#include "instrumented.h"

int __dsu_impl_bonus__v3(int x) { return x * 3 + 1000; }
void *__dsu_slot_bonus = (void *)&__dsu_impl_bonus__v3;   /* ADDED: the patch owns the slot */

int __dsu_impl_compute__v3(int x) { return DSU_CALL_T(bonus, int (*)(int))(x); }
const char *__dsu_impl_version__v3(void) { return "v3"; }

static const struct dsu_patch_fn fns[] = {
    { "bonus", DSU_CHANGE_ADDED, (void *)&__dsu_impl_bonus__v3, &__dsu_slot_bonus },
    { "compute", DSU_CHANGE_BODY, (void *)&__dsu_impl_compute__v3, NULL },
    { "version", DSU_CHANGE_BODY, (void *)&__dsu_impl_version__v3, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "loop-v2", "loop-v3", "2", "3", 3, fns, 0, NULL
};
