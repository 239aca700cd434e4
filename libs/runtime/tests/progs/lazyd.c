/* lazyd -- lazy transformation (ABI.md section 10), hand-instrumented like
 * dsu-cc output: a list of DATA_N (default 10000) tracked heap nodes, three
 * heap holders embedding a node, a global array of four nodes; THREADS
 * (default 4) worker threads.  Each worker walks the first 100 list nodes
 * every 5 ms (those are touched early), and on SIGUSR1 every thread walks
 * every instance at once (concurrent first touches of the same objects) and
 * prints "sum=<S> n=<instances> v=<version> x=<extra> w=<worker> us=<walk
 * time>" (bench/data-updates measures first touches and tag checks with it);
 * SIGUSR2 asks worker 0 to add one node (id 7777777, val 1) through `add`. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "instrumented.h"

DSU_PROGRAM("lazyd", "lazy-v1");

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
pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;   /* guards head (add) */

/* limit < 0: every instance; else the first `limit` list nodes */
DSU_FN(long long, walk, "walk", "tests/progs/lazyd.c", (long limit, long *n, long long *extra)) {
    long long s = 0; long c = 0;
    pthread_mutex_lock(&list_lock);
    struct node *p = head;
    pthread_mutex_unlock(&list_lock);
    for (; p && (limit < 0 || c < limit); p = p->next) { s += (long long)p->id * p->val; c++; }
    if (limit < 0) {
        for (int i = 0; i < 3; i++) { s += (long long)holders[i]->n.id * holders[i]->n.val; c++; }
        for (int i = 0; i < 4; i++) { s += (long long)gnodes[i].id * gnodes[i].val; c++; }
    }
    *n = c; *extra = 0;
    return s;
}
DSU_FN(void, add, "add", "tests/progs/lazyd.c", (int id, int val)) {
    struct node *p = dsu_tmalloc(0x913e2afe9a2817ccull, sizeof *p, sizeof *p);
    if (!p) abort();
    p->id = id; p->val = val;
    pthread_mutex_lock(&list_lock);
    p->next = head; head = p;
    pthread_mutex_unlock(&list_lock);
}
DSU_FN(const char *, version, "version", "tests/progs/lazyd.c", (void)) { return "v1"; }

/* read by every worker: atomics (lock-free), not just sig_atomic_t */
static int stop, full_gen, add_gen;
static void on_term(int s) { (void)s; __atomic_store_n(&stop, 1, __ATOMIC_RELAXED); }
static void on_usr1(int s) { (void)s; __atomic_add_fetch(&full_gen, 1, __ATOMIC_RELAXED); }
static void on_usr2(int s) { (void)s; __atomic_add_fetch(&add_gen, 1, __ATOMIC_RELAXED); }
#define GET(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    long w = (long)arg;
    int seen = 0, added = 0;
    while (!GET(stop)) {
        DSU_UPDATE_POINT("loop");
        long c; long long x;
        if (w == 0 && GET(add_gen) != added) { added = GET(add_gen); DSU_CALL(add)(7777777, 1); }
        if (GET(full_gen) != seen) {
            seen = GET(full_gen);
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            long long s = DSU_CALL(walk)(-1, &c, &x);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
            pthread_mutex_lock(&out_lock);
            printf("sum=%lld n=%ld v=%s x=%lld w=%ld us=%ld\n", s, c, DSU_CALL(version)(), x, w, us);
            fflush(stdout);
            pthread_mutex_unlock(&out_lock);
        } else {
            DSU_CALL(walk)(100, &c, &x);
        }
        dsu_usleep(5000);
    }
    return NULL;
}

int main(void) {
    signal(SIGTERM, on_term);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, on_usr2);
    uint64_t node_id = dsu_type_id("struct node"), holder_id = dsu_type_id("struct holder");
    if (node_id != te_node.id || holder_id != te_holder.id) { fprintf(stderr, "type id mismatch\n"); return 1; }
    long n = getenv("DATA_N") ? atol(getenv("DATA_N")) : 10000;
    int threads = getenv("THREADS") ? atoi(getenv("THREADS")) : 4;
    for (long i = 0; i < n; i++) {
        struct node *p = dsu_tmalloc(node_id, sizeof *p, sizeof *p);
        if (!p) return 1;
        p->id = (int)i; p->val = (int)(i % 1000) - 500; p->next = head; head = p;
    }
    for (int i = 0; i < 3; i++) {
        holders[i] = dsu_tmalloc(holder_id, sizeof(struct holder), sizeof(struct holder));
        holders[i]->tag = 100 + i; holders[i]->n.id = 1000000 + i; holders[i]->n.val = 3;
    }
    for (int i = 0; i < 4; i++) { gnodes[i].id = 2000000 + i; gnodes[i].val = -2; }
    printf("ready n=%ld\n", n + 7);
    fflush(stdout);
    pthread_t t[64];
    if (threads < 1 || threads > 64) threads = 1;
    for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (int i = 0; i < threads; i++) dsu_pthread_join(t[i], NULL);
    printf("exit ok\n");
    return 0;
}
