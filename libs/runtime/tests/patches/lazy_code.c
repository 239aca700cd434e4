/* lazyd, a code-only patch on top of lazy v2 (build id unchanged, so lazy
 * v3 still applies after it).  Without -DCHECKS it does not say that its
 * code checks struct node's tags: refused, since node has lazy history.
 * With -DCHECKS it lists node with its stamp variable: applied, and the
 * runtime sets the stamp to node's current tag. */
#include <stdio.h>
#include "instrumented.h"

const char *__dsu_impl_version__v2b(void) { return "v2"; }
static const struct dsu_patch_fn fns[] = {
    { "version", DSU_CHANGE_BODY, (void *)&__dsu_impl_version__v2b, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "lazy-v2", "lazy-v2", "2", "2b", 1, fns, 0, NULL
};
#ifdef CHECKS
unsigned int node_stamp_v2b;
static const struct dsu_patch_lazy_check checks[] = { { "struct node", 0x913e2afe9a2817ccull, &node_stamp_v2b } };
const struct dsu_patch_lazy_checks dsu_patch_lazy_checks = { DSU_DATA_ABI_VERSION, 1, checks };
#endif
