/* data v1 -> v2 where struct node grows beyond its 64 reserved bytes:
 * STAGE must refuse, naming the type, old size, new size and capacity. */
#include "instrumented.h"

struct node { int id; int val; void *next; char name[200]; unsigned int tag; };
static int xf_node(void *n, const void *o, char *err, size_t errlen) { (void)n; (void)o; (void)err; (void)errlen; return 0; }
const char *__dsu_impl_version__big(void) { return "vbig"; }
static const struct dsu_patch_fn fns[] = {
    { "version", DSU_CHANGE_BODY, (void *)&__dsu_impl_version__big, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "data-v1", "data-big", "1", "b", 1, fns, 0, NULL
};
static const struct dsu_patch_type node_type = {
     "struct node", 0x913e2afe9a2817ccull, 64, 16, __builtin_offsetof(struct node, tag), sizeof(struct node), DSU_XFORM_EAGER, xf_node, 0, NULL, 0, NULL, NULL };
static const struct dsu_patch_type *const types[] = { &node_type };
const struct dsu_patch_data dsu_patch_data = { DSU_DATA_ABI_VERSION, 1, types, NULL };
