/* data.c -- live data: the allocation registry of updatable types, the
 * program's type table (section "dsu_type") and the eager transformation of
 * every live instance during an update (ABI.md section 10).
 *
 * The registry is an open-addressing hash table keyed by block address,
 * guarded by one mutex.  Program threads touch it only inside the tracked
 * allocation entry points; the coordinator reads it while every program
 * thread is parked or blocked (so nobody allocates), still under the mutex
 * so that a thread the registry does not know (there are none at commit
 * time, but a library thread could free) cannot race it. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "internal.h"

extern const struct dsu_type_entry __start_dsu_type[] __attribute__((weak));
extern const struct dsu_type_entry __stop_dsu_type[] __attribute__((weak));

struct block { void *p; uint64_t id; size_t size; size_t type_size; };
#define TOMB ((void *)1)

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block *tab;           /* capacity ntab (power of two), or NULL */
static size_t ntab, nused, nlive;   /* nused counts tombstones too */

uint64_t dsu_type_id(const char *key) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *s = (const unsigned char *)key; *s; s++) { h ^= *s; h *= 1099511628211ull; }
    return h;
}

/* The slot follows the address (blocks are at least 16 bytes apart): a
 * scan of the table then visits the heap in address order, in a few
 * sequential streams, which is what makes collecting and transforming a
 * million instances cache-friendly.  Linear probing absorbs the blocks
 * that share a slot modulo the table size. */
static size_t slot_of(const void *p) {
    return (size_t)((uintptr_t)p >> 4) & (ntab - 1);
}

/* Grows (or rebuilds without tombstones) the table; 0 or -1 (no memory). */
static int rehash_locked(size_t want) {
    size_t n = 1024;
    while (n < want * 2) n *= 2;
    struct block *nt = calloc(n, sizeof *nt);
    if (!nt) return -1;
    struct block *old = tab; size_t nold = ntab;
    ntab = n; nused = 0; nlive = 0;
    __atomic_store_n(&tab, nt, __ATOMIC_RELEASE);
    for (size_t i = 0; i < nold; i++) {
        if (!old[i].p || old[i].p == TOMB) continue;
        size_t k = slot_of(old[i].p);
        while (tab[k].p) k = (k + 1) & (ntab - 1);
        tab[k] = old[i]; nused++; nlive++;
    }
    free(old);
    return 0;
}

static struct block *find_locked(const void *p) {
    if (!tab || !p) return NULL;
    for (size_t k = slot_of(p);; k = (k + 1) & (ntab - 1)) {
        if (!tab[k].p) return NULL;
        if (tab[k].p == p) return &tab[k];
    }
}

/* Records a block; a block that cannot be recorded (no memory for the
 * table) is reported once: its instances would be missed by updates. */
static void track(void *p, uint64_t id, size_t size, size_t type_size) {
    if (!p || !type_size) return;
    pthread_mutex_lock(&reg_lock);
    if ((nused + 1) * 4 >= ntab * 3 && rehash_locked(nlive + 1) < 0) {
        static int warned;
        if (!warned++) fprintf(stderr, "dsu: out of memory for the allocation registry; later updates of data types will be refused\n");
        pthread_mutex_unlock(&reg_lock);
        return;
    }
    struct block *b = find_locked(p);
    if (!b) {
        size_t k = slot_of(p);
        while (tab[k].p && tab[k].p != TOMB) k = (k + 1) & (ntab - 1);
        if (!tab[k].p) nused++;
        b = &tab[k];
        nlive++;
    }
    *b = (struct block){ p, id, size, type_size };
    pthread_mutex_unlock(&reg_lock);
}

/* Forgets a block; returns its record (p == NULL if it was not tracked). */
static struct block untrack(void *p) {
    struct block out = { 0, 0, 0, 0 };
    /* Fast path for programs that never allocated a tracked block: a pointer
     * can only be tracked by a thread that published the table first. */
    if (!p || !__atomic_load_n(&tab, __ATOMIC_ACQUIRE)) return out;
    pthread_mutex_lock(&reg_lock);
    struct block *b = find_locked(p);
    if (b) { out = *b; b->p = TOMB; nlive--; }
    pthread_mutex_unlock(&reg_lock);
    return out;
}

void *dsu_tmalloc(uint64_t type_id, size_t type_size, size_t size) {
    void *p = malloc(size);
    track(p, type_id, size, type_size);
    return p;
}

void *dsu_tcalloc(uint64_t type_id, size_t type_size, size_t n, size_t size) {
    void *p = calloc(n, size);
    if (p) track(p, type_id, n * size, type_size);   /* calloc checked n * size */
    return p;
}

void *dsu_trealloc(uint64_t type_id, size_t type_size, void *p, size_t size) {
    int e = errno;
    struct block old = untrack(p);
    errno = e;
    void *q = realloc(p, size);
    if (!q && size) { if (old.p) track(p, old.id, old.size, old.type_size); return NULL; }
    track(q, type_id, size, type_size);
    return q;
}

void *dsu_realloc(void *p, size_t size) {
    int e = errno;
    struct block old = untrack(p);
    errno = e;
    void *q = realloc(p, size);
    if (!q && size) { if (old.p) track(p, old.id, old.size, old.type_size); return NULL; }
    if (old.p) track(q, old.id, size, old.type_size);
    return q;
}

void dsu_free(void *p) {
    if (!p) return;
    int e = errno;
    untrack(p);
    errno = e;
    free(p);
}

size_t dsu_tracked_count(uint64_t type_id, size_t *instances) {
    size_t blocks = 0, inst = 0;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < ntab; i++) {
        if (!tab[i].p || tab[i].p == TOMB || tab[i].id != type_id) continue;
        blocks++; inst += tab[i].size / tab[i].type_size;
    }
    pthread_mutex_unlock(&reg_lock);
    if (instances) *instances = inst;
    return blocks;
}

/* Capacity of a type in the running program (section dsu_type), 0 = the
 * program has no such updatable type. */
static uint32_t program_capacity(uint64_t id) {
    if (!__start_dsu_type || !__stop_dsu_type) return 0;
    for (const struct dsu_type_entry *e = __start_dsu_type; e < __stop_dsu_type; e++)
        if (e->abi == DSU_DATA_ABI_VERSION && e->id == id) return e->capacity;
    return 0;
}

int dsu__data_check(const struct dsu_patch_data *d, char *err, size_t errn) {
    if (!d) return 0;
    if (d->abi != DSU_DATA_ABI_VERSION) { snprintf(err, errn, "patch data descriptor has ABI %u but this runtime speaks %u; regenerate the patch", d->abi, DSU_DATA_ABI_VERSION); return -1; }
    if (d->ntypes && !d->types) { snprintf(err, errn, "patch data descriptor has ntypes=%u but no types array", d->ntypes); return -1; }
    for (uint32_t i = 0; i < d->ntypes; i++) {
        const struct dsu_patch_type *t = d->types[i];
        if (!t || !t->key) { snprintf(err, errn, "patch type #%u is missing or has no key", i); return -1; }
        if (t->id != dsu_type_id(t->key)) { snprintf(err, errn, "patch type '%s' has id %llx, expected %llx; regenerate the patch", t->key, (unsigned long long)t->id, (unsigned long long)dsu_type_id(t->key)); return -1; }
        if (t->mode != DSU_XFORM_EAGER) { snprintf(err, errn, "patch type '%s' asks for transformation mode %u, which this runtime does not support (only eager)", t->key, t->mode); return -1; }
        if (!t->transform) { snprintf(err, errn, "patch type '%s' has no transformer", t->key); return -1; }
        if ((t->nranges && !t->ranges) || (t->nembeds && !t->embeds)) { snprintf(err, errn, "patch type '%s' lists instances without arrays", t->key); return -1; }
        uint32_t have = program_capacity(t->id);
        if (!have) { snprintf(err, errn, "type '%s' is not an updatable type of the running program (no reserved room); its layout cannot change", t->key); return -1; }
        if (have != t->capacity) {
            snprintf(err, errn, "type '%s' has %u bytes reserved in the running program but the patch was generated for %u; build the new version with `dsu build --layout-from <build of the running version>`", t->key, have, t->capacity);
            return -1;
        }
        if (t->new_sizeof != t->capacity || t->new_size + 4 > t->capacity) {
            snprintf(err, errn, "type '%s' does not fit its reserved room: old size %u, new size %u, capacity %u; give it more room (dsu build --slop '%s=N' or DSU_ROOM(N)) and restart once",
                     t->key, t->old_size, t->new_size, t->capacity, t->key);
            return -1;
        }
        for (uint32_t k = 0; k < t->nembeds; k++)
            if (!t->embeds[k].container_capacity) { snprintf(err, errn, "patch type '%s': container '%s' has capacity 0", t->key, t->embeds[k].container_key ? t->embeds[k].container_key : "?"); return -1; }
    }
    return 0;
}

struct inst { unsigned char *p; uint32_t type; };
struct vec { struct inst *v; size_t n, cap; };

static int push(struct vec *v, unsigned char *p, uint32_t type) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 1024;
        struct inst *n = realloc(v->v, cap * sizeof *n);
        if (!n) return -1;
        v->v = n; v->cap = cap;
    }
    v->v[v->n++] = (struct inst){ p, type };
    return 0;
}

static void swap_bytes(unsigned char *a, unsigned char *b, size_t n) {
    unsigned char tmp[256];
    while (n) {
        size_t k = n < sizeof tmp ? n : sizeof tmp;
        memcpy(tmp, a, k); memcpy(a, b, k); memcpy(b, tmp, k);
        a += k; b += k; n -= k;
    }
}

int dsu__data_apply(const struct dsu_patch_data *d, struct dsu__data_stats *st, char *err, size_t errn) {
    memset(st, 0, sizeof *st);
    if (!d || d->ntypes == 0) {
        if (d && d->state_transform && d->state_transform(err, errn) < 0) return -1;
        return 0;
    }
    uint64_t t0 = dsu__now_ns();
    struct vec v = { 0, 0, 0 };
    int rc = -1;
    unsigned char *stage = NULL;
    size_t stage_len = 0;
    size_t *off = NULL;
    int locked = 1;
    pthread_mutex_lock(&reg_lock);
    /* 1. every live instance of every changed type (the vector starts at
     * the number of live blocks: no regrowth for one instance per block) */
    v.cap = nlive + 1024;
    v.v = malloc(v.cap * sizeof *v.v);
    if (!v.v) { v.cap = 0; goto oom; }
    for (uint32_t ti = 0; ti < d->ntypes; ti++) {
        const struct dsu_patch_type *t = d->types[ti];
        for (uint32_t r = 0; r < t->nranges; r++)
            for (uint64_t k = 0; k < t->ranges[r].count; k++)
                if (push(&v, (unsigned char *)t->ranges[r].base + k * t->capacity, ti) < 0) goto oom;
        for (size_t i = 0; i < ntab; i++) {
            const struct block *b = &tab[i];
            if (!b->p || b->p == TOMB) continue;
            if (b->id == t->id) {
                for (size_t k = 0; k < b->size / t->capacity; k++)
                    if (push(&v, (unsigned char *)b->p + k * t->capacity, ti) < 0) goto oom;
            }
            for (uint32_t e = 0; e < t->nembeds; e++) {
                const struct dsu_patch_embed *em = &t->embeds[e];
                if (b->id != em->container_id) continue;
                for (size_t k = 0; k < b->size / em->container_capacity; k++)
                    for (uint64_t j = 0; j < em->count; j++)
                        if (push(&v, (unsigned char *)b->p + k * em->container_capacity + em->offset + j * t->capacity, ti) < 0) goto oom;
            }
        }
    }
    /* Every program thread is parked or blocked: nobody allocates from here
     * on, and the state transformer may allocate tracked blocks itself. */
    pthread_mutex_unlock(&reg_lock);
    locked = 0;
    /* 2. prepare: the new image of every instance, nothing written yet */
    off = malloc((v.n + 1) * sizeof *off);
    size_t total = 0;
    if (!off) goto oom;
    for (size_t i = 0; i < v.n; i++) { off[i] = total; total += d->types[v.v[i].type]->capacity; }
    /* Fresh zeroed pages, faulted in up front (one call instead of a fault
     * per page inside the timed loop). */
    stage_len = total ? total : 1;
    stage = mmap(NULL, stage_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (stage == MAP_FAILED) { stage = NULL; goto oom; }
    uint64_t t1 = dsu__now_ns();
    for (size_t i = 0; i < v.n; i++) {
        /* instances are visited in registry (hash) order: hide the misses */
        if (i + 8 < v.n) __builtin_prefetch(v.v[i + 8].p);
        const struct dsu_patch_type *t = d->types[v.v[i].type];
        unsigned char *n = stage + off[i];
        char msg[400] = "";
        if (t->transform(n, v.v[i].p, msg, sizeof msg) != 0) {
            snprintf(err, errn, "transformer of '%s' failed on the instance at %p (%zu of %zu instances prepared): %s; nothing was changed",
                     t->key, (void *)v.v[i].p, i, v.n, msg[0] ? msg : "no reason given");
            goto out;
        }
        /* the version tag stays with the instance */
        memcpy(n + t->capacity - 4, v.v[i].p + t->capacity - 4, 4);
    }
    uint64_t t2 = dsu__now_ns();
    /* 3. commit; with a state transformer the stage keeps the old images
     * until it agreed, so a refusal can put them back */
    if (d->state_transform) {
        for (size_t i = 0; i < v.n; i++) {
            if (i + 8 < v.n) __builtin_prefetch(v.v[i + 8].p, 1);
            swap_bytes(v.v[i].p, stage + off[i], d->types[v.v[i].type]->capacity);
        }
        if (d->state_transform(err, errn) < 0) {
            for (size_t i = 0; i < v.n; i++) swap_bytes(v.v[i].p, stage + off[i], d->types[v.v[i].type]->capacity);
            goto out;
        }
    } else {
        for (size_t i = 0; i < v.n; i++) {
            if (i + 8 < v.n) __builtin_prefetch(v.v[i + 8].p, 1);
            memcpy(v.v[i].p, stage + off[i], d->types[v.v[i].type]->capacity);
        }
    }
    st->instances = v.n;
    st->ns = dsu__now_ns() - t0;
    if (getenv("DSU_DEBUG"))
        fprintf(stderr, "dsu: data: %zu instances: collect %llu us, prepare %llu us, commit %llu us\n", v.n,
                (unsigned long long)((t1 - t0) / 1000), (unsigned long long)((t2 - t1) / 1000),
                (unsigned long long)((dsu__now_ns() - t2) / 1000));
    rc = 0;
    goto out;
oom:
    snprintf(err, errn, "out of memory while preparing the transformation of %zu instances; nothing was changed", v.n);
out:
    if (locked) pthread_mutex_unlock(&reg_lock);
    if (stage) munmap(stage, stage_len);
    free(off); free(v.v);
    return rc;
}
