/* data -- live data: hand-instrumented the way dsu-cc lays out updatable
 * types (fields, room, 4-byte version tag at the end; ABI.md section 10).
 * A list of DATA_N (default 10000) heap nodes allocated through the tracked
 * entry points, three heap `struct holder`s each embedding a node, and a
 * global array of four nodes.  Prints "sum=<S> n=<instances> v=<version>
 * x=<extra>" every 10 ms; v1: S = sum(id * val) over every node instance,
 * x = 0.  The v2 patch widens val to long long, adds `extra` (7 in every
 * instance) and must keep S.
 * DATA_CHURN=1 first exercises the registry (tracked allocations, frees in
 * a scrambled order, reallocs, blocks of several instances; every count
 * checked against a model: "churn ok ..." or "churn FAILED ...") and links
 * a calloc'd block of three nodes into the list (n grows by 3). */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "instrumented.h"

DSU_PROGRAM("data", "data-v1");

struct node {                       /* fields: 16 bytes; capacity 64 */
    int id;
    int val;
    struct node *next;
    unsigned char __dsu_room[44];
    unsigned int __dsu_tag;
};
struct holder {                     /* fields: 72 bytes; capacity 112 */
    long tag;
    struct node n;
    unsigned char __dsu_room[36];
    unsigned int __dsu_tag;
};
_Static_assert(sizeof(struct node) == 64, "node capacity");
_Static_assert(sizeof(struct holder) == 112, "holder capacity");

static const struct dsu_type_entry __attribute__((used, section("dsu_type"), aligned(8)))
    te_node = { DSU_DATA_ABI_VERSION, 64, 0x913e2afe9a2817ccull, "struct node" };
static const struct dsu_type_entry __attribute__((used, section("dsu_type"), aligned(8)))
    te_holder = { DSU_DATA_ABI_VERSION, 112, 0x8b55dbd8f57179beull, "struct holder" };

struct node *head;
struct holder *holders[3];
struct node gnodes[4];

DSU_FN(long long, checksum, "checksum", "tests/progs/data.c", (long *n, long long *extra)) {
    long long s = 0; long c = 0;
    for (struct node *p = head; p; p = p->next) { s += (long long)p->id * p->val; c++; }
    for (int i = 0; i < 3; i++) { s += (long long)holders[i]->n.id * holders[i]->n.val; c++; }
    for (int i = 0; i < 4; i++) { s += (long long)gnodes[i].id * gnodes[i].val; c++; }
    *n = c; *extra = 0;
    return s;
}
DSU_FN(const char *, version, "version", "tests/progs/data.c", (void)) { return "v1"; }

/* The registry against a model: live blocks and instances of struct node
 * after tracked allocations, frees in a scrambled order and reallocs that
 * change how many instances a block holds.  0 = every count matched. */
static int churn(uint64_t node_id) {
    enum { M = 20000 };
    static struct node *blk[M];
    static size_t cnt[M];
    size_t base_b, base_i, live_b = 0, live_i = 0;
    base_b = dsu_tracked_count(node_id, &base_i);
    unsigned x = 12345;
#define RND() (x = x * 1103515245u + 12345u, (x >> 8) & 0xFFFFF)
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < M; i++) {
            if (blk[i]) continue;
            size_t k = 1 + (RND() % 7 == 0 ? RND() % 4 : 0);   /* some blocks hold several */
            blk[i] = k == 1 ? dsu_tmalloc(node_id, sizeof(struct node), sizeof(struct node))
                            : dsu_tcalloc(node_id, sizeof(struct node), k, sizeof(struct node));
            if (!blk[i]) return -1;
            cnt[i] = k; live_b++; live_i += k;
        }
        for (int j = 0; j < M; j++) {                /* scrambled frees and reallocs */
            int i = (int)(RND() % M);
            /* untracked memory comes and goes between them (the filter's
             * fast path, or the lock when its bucket is shared) */
            void *u = dsu_realloc(malloc(24), 48);
            dsu_free(u);
            if (!blk[i]) continue;
            if (RND() % 5 == 0) {
                size_t k = 1 + RND() % 3;
                struct node *q = dsu_realloc(blk[i], k * sizeof(struct node));
                if (!q) return -1;
                blk[i] = q; live_i += k - cnt[i]; cnt[i] = k;
            } else {
                dsu_free(blk[i]); blk[i] = NULL;
                live_b--; live_i -= cnt[i];
            }
        }
        size_t inst = 0, b = dsu_tracked_count(node_id, &inst);
        if (b != base_b + live_b || inst != base_i + live_i) {
            printf("churn FAILED round %d: blocks=%zu instances=%zu, expected %zu and %zu\n", round, b, inst, base_b + live_b, base_i + live_i);
            return -1;
        }
    }
    for (int i = 0; i < M; i++) if (blk[i]) { dsu_free(blk[i]); blk[i] = NULL; }
    size_t inst = 0, b = dsu_tracked_count(node_id, &inst);
    if (b != base_b || inst != base_i) { printf("churn FAILED at the end: blocks=%zu instances=%zu\n", b, inst); return -1; }
    printf("churn ok blocks=%zu instances=%zu\n", b, inst);
#undef RND
    return 0;
}

static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

int main(void) {
    signal(SIGTERM, on_term);
    /* the ids the tracked sites pass (dsu-cc computes them at build time) */
    uint64_t node_id = dsu_type_id("struct node"), holder_id = dsu_type_id("struct holder");
    if (node_id != te_node.id) { fprintf(stderr, "type id mismatch %llx\n", (unsigned long long)node_id); return 1; }
    long n = getenv("DATA_N") ? atol(getenv("DATA_N")) : 10000;
    int churned = getenv("DATA_CHURN") != NULL;
    if (churned && churn(node_id) < 0) return 1;
    for (long i = 0; i < n; i++) {
        struct node *p = dsu_tmalloc(node_id, sizeof *p, sizeof *p);
        if (!p) return 1;
        p->id = (int)i; p->val = (int)(i % 1000) - 500; p->next = head; head = p;
    }
    /* one freed and one reallocated block: the registry must follow */
    struct node *gone = dsu_tmalloc(node_id, sizeof *gone, sizeof *gone);
    dsu_free(gone);
    struct node *grow = dsu_tmalloc(node_id, sizeof *grow, sizeof *grow);
    grow = dsu_realloc(grow, 2 * sizeof *grow);
    dsu_free(grow);
    for (int i = 0; i < 3; i++) {
        holders[i] = dsu_tcalloc(holder_id, sizeof(struct holder), 1, sizeof(struct holder));
        holders[i]->tag = 100 + i; holders[i]->n.id = 1000000 + i; holders[i]->n.val = 3;
    }
    for (int i = 0; i < 4; i++) { gnodes[i].id = 2000000 + i; gnodes[i].val = -2; }
    if (churned) {
        /* one block of three instances, in the list like the others */
        struct node *arr = dsu_tcalloc(node_id, sizeof(struct node), 3, sizeof(struct node));
        if (!arr) return 1;
        for (int i = 0; i < 3; i++) { arr[i].id = 3000000 + i; arr[i].val = 5 - i; arr[i].next = head; head = &arr[i]; }
    }
    size_t inst = 0;
    size_t blocks = dsu_tracked_count(node_id, &inst);
    printf("tracked blocks=%zu instances=%zu\n", blocks, inst);
    while (!stop) {
        DSU_UPDATE_POINT("loop");
        long c; long long x;
        long long s = DSU_CALL(checksum)(&c, &x);
        printf("sum=%lld n=%ld v=%s x=%lld h=%ld\n", s, c, DSU_CALL(version)(), x, holders[2]->tag);
        fflush(stdout);
        dsu_usleep(10000);
    }
    printf("exit ok\n");
    return 0;
}
