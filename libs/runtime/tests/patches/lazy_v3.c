/* lazyd v2 -> v3, lazily: struct node gains `big` (= val * 1000).  A node
 * nobody touched since v1 goes through v1 -> v2 (the earlier patch's
 * transformer) -> v3 on its first touch.  walk reports in x the sum of
 * `extra` plus 1000000 for every node whose `big` is wrong.
 * -DEAGER: the same change eagerly (refused: the type is lazy already). */
#include <stdio.h>
#include <stdlib.h>
#include "instrumented.h"

#define NODE_ID 0x913e2afe9a2817ccull
struct node {                       /* new fields: 40 bytes, room to 64 */
    int id;
    long long val;
    struct node *next;
    int extra;
    long long big;
    unsigned char __dsu_room[64 - 4 - 40];
    unsigned int __dsu_tag;
};
struct holder { long tag; struct node n; unsigned char __dsu_room[36]; unsigned int __dsu_tag; };
_Static_assert(sizeof(struct node) == 64, "node capacity");
struct node_v2 { int id; long long val; struct node *next; int extra; unsigned char room[32]; unsigned int tag; };

extern struct node *head;
extern struct holder *holders[3];
extern struct node gnodes[4];
extern pthread_mutex_t list_lock;
unsigned int lazy_stamp_v3 = 0xffffffffu;

static int xf_node(void *new_obj, const void *old_obj, char *err, size_t errlen) {
    struct node *n = new_obj;
    const struct node_v2 *o = old_obj;
    (void)err; (void)errlen;
    n->id = o->id; n->val = o->val; n->next = o->next; n->extra = o->extra;
    n->big = o->val * 1000;
    return 0;
}

#define CHECK(p) DSU_LAZY_CHECK(p, NODE_ID, lazy_stamp_v3)
long long __dsu_impl_walk__v3(long limit, long *cnt, long long *extra) {
    long long s = 0, x = 0; long c = 0;
    pthread_mutex_lock(&list_lock);
    struct node *p = head;
    pthread_mutex_unlock(&list_lock);
    CHECK(p);
    for (; p && (limit < 0 || c < limit); p = p->next, ({ CHECK(p); })) {
        s += p->id * p->val; x += p->extra + (p->big == p->val * 1000 ? 0 : 1000000); c++;
    }
    if (limit < 0) {
        for (int i = 0; i < 3; i++) {
            struct node *q = &holders[i]->n;
            CHECK(q);
            s += q->id * q->val; x += q->extra + (q->big == q->val * 1000 ? 0 : 1000000); c++;
        }
        for (int i = 0; i < 4; i++) {
            s += gnodes[i].id * gnodes[i].val; x += gnodes[i].extra + (gnodes[i].big == gnodes[i].val * 1000 ? 0 : 1000000); c++;
        }
    }
    *cnt = c; *extra = x;
    return s;
}
void __dsu_impl_add__v3(int id, int val) {
    struct node *p = dsu_tmalloc(NODE_ID, sizeof *p, sizeof *p);
    if (!p) abort();
    CHECK(p);
    p->id = id; p->val = val; p->extra = 7; p->big = val * 1000LL;
    pthread_mutex_lock(&list_lock);
    p->next = head; head = p;
    pthread_mutex_unlock(&list_lock);
}
const char *__dsu_impl_version__v3(void) { return "v3"; }

static const struct dsu_patch_fn fns[] = {
    { "walk", DSU_CHANGE_BODY, (void *)&__dsu_impl_walk__v3, NULL },
    { "add", DSU_CHANGE_BODY, (void *)&__dsu_impl_add__v3, NULL },
    { "version", DSU_CHANGE_BODY, (void *)&__dsu_impl_version__v3, NULL },
};
const struct dsu_patch_desc dsu_patch = {
    DSU_ABI_VERSION, "lazy-v2", "lazy-v3", "2", "3", 3, fns, 0, NULL
};
static const struct dsu_patch_range ranges[] = { { "global gnodes", gnodes, 4 } };
static const struct dsu_patch_embed embeds[] = {
    { "struct holder", 0x8b55dbd8f57179beull, 112, __builtin_offsetof(struct holder, n), 1 },
};
#ifdef EAGER
#define MODE DSU_XFORM_EAGER
#else
#define MODE DSU_XFORM_LAZY
#endif
static const struct dsu_patch_type node_type = {
     "struct node", NODE_ID, 64, 28, __builtin_offsetof(struct node, __dsu_room),
      sizeof(struct node), MODE, xf_node, 1, ranges, 1, embeds, &lazy_stamp_v3 };
static const struct dsu_patch_type *const types[] = { &node_type };
const struct dsu_patch_data dsu_patch_data = { DSU_DATA_ABI_VERSION, 1, types, NULL };
