/* Steady-state cost of the lazy tag check (DSU_LAZY_CHECK, what dsu patch --transform lazy puts
 * before the first concrete use of a pointer): NODES instances whose tags are current, visited
 * ROUNDS times in a cache-resident loop, with and without the check. Prints ns per check. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "dsu.h"

struct node { int id; long long val; struct node *next; int extra; unsigned char __dsu_room[28]; unsigned int __dsu_tag; };
unsigned int stamp = 0x12348001u;   /* what the runtime writes at commit */
#define NODES 1024
#define ROUNDS 20000

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }

__attribute__((noinline)) static long long walk(struct node **v, int check) {
    long long s = 0;
    for (int r = 0; r < ROUNDS; r++)
        for (int i = 0; i < NODES; i++) {
            struct node *p = v[i];
            if (check) DSU_LAZY_CHECK(p, 0x913e2afe9a2817ccull, stamp);
            s += p->val;
        }
    return s;
}

int main(void) {
    static struct node nodes[NODES];
    struct node *v[NODES];
    for (int i = 0; i < NODES; i++) { nodes[i].val = i; nodes[i].__dsu_tag = stamp; v[i] = &nodes[(i * 397) % NODES]; }
    double best[2] = { 1e30, 1e30 };
    long long sink = 0;
    for (int k = 0; k < 7; k++)
        for (int c = 0; c < 2; c++) {
            double t0 = now();
            sink += walk(v, c);
            double t = now() - t0;
            if (t < best[c]) best[c] = t;
        }
    printf("{\"plainNsPerVisit\":%.3f,\"checkedNsPerVisit\":%.3f,\"checkNs\":%.3f,\"sink\":%lld}\n",
           best[0] / ((double)NODES * ROUNDS), best[1] / ((double)NODES * ROUNDS),
           (best[1] - best[0]) / ((double)NODES * ROUNDS), sink);
    return 0;
}
