/* lazyd v1 -> v2, lazily: struct node's val widens int -> long long and
 * gains `extra` (7 in every instance).  The commit transforms only the
 * global array; list nodes and the nodes embedded in heap holders are
 * transformed on first touch: the new code checks the tag once per pointer
 * (DSU_LAZY_CHECK), as dsu patch --transform lazy generates it.
 * -DFAIL: the transformer refuses node 5000 (found only on first touch). */
#include <stdio.h>
#include <stdlib.h>
#include "instrumented.h"

#define NODE_ID 0x913e2afe9a2817ccull
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
extern pthread_mutex_t list_lock;
unsigned int lazy_stamp_v2 = 0xffffffffu;   /* set by the runtime at commit */

static int xf_node(void *new_obj, const void *old_obj, char *err, size_t errlen) {
    struct node *n = new_obj;
    const struct node_v1 *o = old_obj;
#ifdef FAIL
    if (o->id == 5000) { snprintf(err, errlen, "node 5000 refuses"); return -1; }
#else
    (void)err; (void)errlen;
#endif
    n->id = o->id;
    n->val = o->val;
    n->next = o->next;
    n->extra = 7;
    return 0;
}

long long __dsu_impl_walk__v2(long limit, long *cnt, long long *extra) {
    long long s = 0, x = 0; long c = 0;
    pthread_mutex_lock(&list_lock);
    struct node *p = head;
    pthread_mutex_unlock(&list_lock);
    DSU_LAZY_CHECK(p, NODE_ID, lazy_stamp_v2);
    for (; p && (limit < 0 || c < limit); p = p->next, ({ DSU_LAZY_CHECK(p, NODE_ID, lazy_stamp_v2); })) {
        s += p->id * p->val; x += p->extra; c++;
    }
    if (limit < 0) {
        for (int i = 0; i < 3; i++) {
            struct node *q = &holders[i]->n;
            DSU_LAZY_CHECK(q, NODE_ID, lazy_stamp_v2);
            s += q->id * q->val; x += q->extra; c++;
        }
        /* globals: transformed at commit */
        for (int i = 0; i < 4; i++) { s += gnodes[i].id * gnodes[i].val; x += gnodes[i].extra; c++; }
    }
    *cnt = c; *extra = x;
    return s;
}
void __dsu_impl_add__v2(int id, int val) {
    struct node *p = dsu_tmalloc(NODE_ID, sizeof *p, sizeof *p);   /* stamped: current layout */
    if (!p) abort();
    DSU_LAZY_CHECK(p, NODE_ID, lazy_stamp_v2);
    p->id = id; p->val = val; p->extra = 7;
    pthread_mutex_lock(&list_lock);
    p->next = head; head = p;
    pthread_mutex_unlock(&list_lock);
}
const char *__dsu_impl_version__v2(void) { return "v2"; }

static const struct dsu_patch_fn fns[] = {
    { "walk", DSU_CHANGE_BODY, (void *)&__dsu_impl_walk__v2, NULL },
    { "add", DSU_CHANGE_BODY, (void *)&__dsu_impl_add__v2, NULL },
    { "version", DSU_CHANGE_BODY, (void *)&__dsu_impl_version__v2, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "lazy-v1", "lazy-v2", "1", "2", 3, fns, 0, NULL
};
static const struct dsu_patch_range ranges[] = { { "global gnodes", gnodes, 4 } };
static const struct dsu_patch_embed embeds[] = {
    { "struct holder", 0x8b55dbd8f57179beull, 112, __builtin_offsetof(struct holder, n), 1 },
};
static const struct dsu_patch_type node_type = {
     "struct node", NODE_ID, 64, 16, __builtin_offsetof(struct node, __dsu_room),
      sizeof(struct node), DSU_XFORM_LAZY, xf_node, 1, ranges, 1, embeds, &lazy_stamp_v2 };
static const struct dsu_patch_type *const types[] = { &node_type };
const struct dsu_patch_data dsu_patch_data = { DSU_DATA_ABI_VERSION, 1, types, NULL };
