/* data v1 -> v2 whose transformer fails on node 5000: the update must be
 * refused with the reason and no instance changed. */
#include <stdio.h>
#include "instrumented.h"

struct node_v1 { int id; int val; void *next; unsigned char room[44]; unsigned int tag; };
struct node { int id; long long val; void *next; unsigned char room[64 - 4 - 24]; unsigned int tag; };
_Static_assert(sizeof(struct node) == 64, "node capacity");

static int xf_node(void *new_obj, const void *old_obj, char *err, size_t errlen) {
    struct node *n = new_obj;
    const struct node_v1 *o = old_obj;
    if (o->id == 5000) { snprintf(err, errlen, "node 5000 refuses"); return -1; }
    n->id = o->id; n->val = -1; n->next = o->next;   /* would break the checksum */
    return 0;
}
const char *__dsu_impl_version__fail(void) { return "vfail"; }
static const struct dsu_patch_fn fns[] = {
    { "version", DSU_CHANGE_BODY, (void *)&__dsu_impl_version__fail, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "data-v1", "data-fail", "1", "f", 1, fns, 0, NULL
};
static const struct dsu_patch_type node_type = {
     "struct node", 0x913e2afe9a2817ccull, 64, 16, 24, sizeof(struct node), DSU_XFORM_EAGER, xf_node, 0, NULL, 0, NULL, NULL };
static const struct dsu_patch_type *const types[] = { &node_type };
const struct dsu_patch_data dsu_patch_data = { DSU_DATA_ABI_VERSION, 1, types, NULL };
