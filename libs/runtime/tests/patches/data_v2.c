/* data v1 -> v2: struct node's val widens int -> long long and gains
 * `extra` (7 in every instance); checksum and version change with it.
 * Instances: the heap list (tracked), the node embedded in each heap
 * holder (unchanged container), the global array gnodes[4].
 * -DSTATE_FAIL (data_sfail.so): the state transformer refuses instead. */
#include <stdio.h>
#include <string.h>
#include "instrumented.h"

struct node {                       /* new fields: 32 bytes, room to 64 */
    int id;
    long long val;
    struct node *next;
    int extra;
    unsigned char __dsu_room[64 - 4 - 28];
    unsigned int __dsu_tag;
};
struct holder { long tag; struct node n; unsigned char __dsu_room[36]; unsigned int __dsu_tag; };
_Static_assert(sizeof(struct node) == 64, "node capacity");
struct node_v1 { int id; int val; struct node *next; unsigned char room[44]; unsigned int tag; };

extern struct node *head;
extern struct holder *holders[3];
extern struct node gnodes[4];

static int xf_node(void *new_obj, const void *old_obj, char *err, size_t errlen) {
    struct node *n = new_obj;
    const struct node_v1 *o = old_obj;
    (void)err; (void)errlen;
    n->id = o->id;
    n->val = o->val;
    n->next = o->next;
    n->extra = 7;
    return 0;
}

long long __dsu_impl_checksum__v2(long *cnt, long long *extra) {
    long long s = 0, x = 0; long c = 0;
    for (struct node *p = head; p; p = p->next) { s += p->id * p->val; x += p->extra; c++; }
    for (int i = 0; i < 3; i++) { s += holders[i]->n.id * holders[i]->n.val; x += holders[i]->n.extra; c++; }
    for (int i = 0; i < 4; i++) { s += gnodes[i].id * gnodes[i].val; x += gnodes[i].extra; c++; }
    *cnt = c; *extra = x;
    return s;
}
const char *__dsu_impl_version__v2(void) { return "v2"; }

static const struct dsu_patch_fn fns[] = {
    { "checksum", DSU_CHANGE_BODY, (void *)&__dsu_impl_checksum__v2, NULL },
    { "version", DSU_CHANGE_BODY, (void *)&__dsu_impl_version__v2, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "data-v1", "data-v2", "1", "2", 2, fns, 0, NULL
};
static const struct dsu_patch_range ranges[] = { { "global gnodes", gnodes, 4 } };
static const struct dsu_patch_embed embeds[] = {
    { "struct holder", 0x8b55dbd8f57179beull, 112, __builtin_offsetof(struct holder, n), 1 },
};
static const struct dsu_patch_type node_type = {
     "struct node", 0x913e2afe9a2817ccull, 64, 16, __builtin_offsetof(struct node, __dsu_room),
      sizeof(struct node), DSU_XFORM_EAGER, xf_node, 1, ranges, 1, embeds, NULL };
static const struct dsu_patch_type *const types[] = { &node_type };
/* runs after every instance is transformed: sees the new layout */
static int state(char *err, size_t errlen) {
    if (gnodes[0].extra != 7) { snprintf(err, errlen, "instances not transformed yet"); return -1; }
#ifdef STATE_FAIL
    snprintf(err, errlen, "state transformer says no");
    return -1;
#else
    holders[2]->tag = 202;
    return 0;
#endif
}
const struct dsu_patch_data dsu_patch_data = { DSU_DATA_ABI_VERSION, 1, types, state };
