/* data.c -- live data: the allocation registry of updatable types, the
 * program's type table (section "dsu_type") and the eager transformation of
 * every live instance during an update (ABI.md section 10).
 *
 * The registry is an open-addressing hash table keyed by block address,
 * guarded by one mutex.  Program threads touch it only inside the tracked
 * allocation entry points; the coordinator reads it while every program
 * thread is parked or blocked (so nobody allocates), still under the mutex
 * so that a thread the registry does not know (there are none at commit
 * time, but a library thread could free) cannot race it.
 *
 * Lazy transformation: per lazily transformed type a chain of transformers
 * (step k carries version k to k+1) and the current version.  An instance's
 * version is in its 4-byte tag: stamp(id, k) for k >= 1, anything else is
 * version 0 (the layout the type had when its first lazy patch came).  The
 * commit only appends a step (and transforms the few global instances); the
 * patch's code checks the tag before using a pointer and calls
 * dsu_lazy_touch, which runs the chain under a striped lock. */
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

/* ---- lazy types ---- */
#define MAX_LAZY  128
#define MAX_STEPS 64
struct lazy_step { dsu_transform_fn fn; const char *patch; };
struct lazy_type {
    uint64_t id;
    const char *key;
    uint32_t capacity;
    uint32_t version;                 /* atomic (release after the step is written) */
    struct lazy_step steps[MAX_STEPS];
    uint32_t nembeds;                 /* where it sits inside other tracked types */
    const struct dsu_patch_embed *embeds;
    uint64_t touched;                 /* atomic: first-touch transformations */
};
static struct lazy_type lazy_types[MAX_LAZY];
static uint32_t nlazy;                /* atomic; entries below it are published */
static pthread_mutex_t lazy_locks[256] = { [0 ... 255] = PTHREAD_MUTEX_INITIALIZER };

/* Tag of version v >= 1: the type's hash in the upper 16 bits, a marker bit
 * and v below (versions are < 0x8000), so the tags of one type are distinct
 * and a zeroed or random tag is very unlikely to name a version. */
static uint32_t stamp_of(uint64_t id, uint32_t v) {
    if (!v) return 0;
    uint32_t h = (uint32_t)(id ^ (id >> 32));
    h *= 0x9E3779B1u;
    return (h & 0xFFFF0000u) | 0x8000u | (v & 0x7FFFu);
}
static uint32_t version_of(uint64_t id, uint32_t tag, uint32_t cur) {
    uint32_t v = tag & 0x7FFFu;
    if (v == 0 || v > cur || tag != stamp_of(id, v)) return 0;
    return v;
}

static struct lazy_type *find_lazy(uint64_t id) {
    uint32_t n = __atomic_load_n(&nlazy, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) if (lazy_types[i].id == id) return &lazy_types[i];
    return NULL;
}

static unsigned char *tag_at(void *obj, uint32_t capacity) { return (unsigned char *)obj + capacity - 4; }

/* Runs steps from..to-1 on the image in *a (capacity bytes), using *b as the
 * second buffer; the result ends up in *a.  0, or -1 with msg and *failed. */
static int run_chain(const struct lazy_type *lt, unsigned char **a, unsigned char **b, uint32_t from, uint32_t to,
                     char *msg, size_t msgn, uint32_t *failed) {
    for (uint32_t k = from; k < to; k++) {
        memset(*b, 0, lt->capacity);
        msg[0] = 0;
        if (lt->steps[k].fn(*b, *a, msg, msgn) != 0) { *failed = k; return -1; }
        unsigned char *t = *a; *a = *b; *b = t;
    }
    return 0;
}

static void stamp_range(void *p, size_t bytes, size_t type_size, uint32_t tag) {
    for (size_t off = 0; off + type_size <= bytes; off += type_size)
        __atomic_store_n((uint32_t *)tag_at((unsigned char *)p + off, (uint32_t)type_size), tag, __ATOMIC_RELEASE);
}

/* New heap instances (and lazy instances embedded in them) carry the
 * current tag: their memory is in the current layout from the start. */
static void stamp_new(void *p, uint64_t id, size_t from, size_t size, size_t type_size) {
    uint32_t n = __atomic_load_n(&nlazy, __ATOMIC_ACQUIRE);
    if (!n || !p || !type_size) return;
    for (uint32_t i = 0; i < n; i++) {
        struct lazy_type *lt = &lazy_types[i];
        uint32_t tag = stamp_of(lt->id, __atomic_load_n(&lt->version, __ATOMIC_ACQUIRE));
        if (lt->id == id && lt->capacity == type_size) {
            stamp_range((unsigned char *)p + from, size - from, type_size, tag);
            continue;
        }
        for (uint32_t e = 0; e < lt->nembeds; e++) {
            const struct dsu_patch_embed *em = &lt->embeds[e];
            if (em->container_id != id || em->container_capacity != type_size) continue;
            for (size_t k = from / type_size; (k + 1) * type_size <= size; k++)
                for (uint64_t j = 0; j < em->count; j++)
                    __atomic_store_n((uint32_t *)tag_at((unsigned char *)p + k * type_size + em->offset + j * lt->capacity, lt->capacity),
                                     tag, __ATOMIC_RELEASE);
        }
    }
}

void dsu_lazy_touch(void *obj, uint64_t type_id) {
    struct lazy_type *lt = obj ? find_lazy(type_id) : NULL;
    if (!lt) return;
    uint32_t cap = lt->capacity;
    uint32_t *tagp = (uint32_t *)tag_at(obj, cap);
    pthread_mutex_t *l = &lazy_locks[((uintptr_t)obj >> 4) & 255];
    pthread_mutex_lock(l);
    uint32_t cur = __atomic_load_n(&lt->version, __ATOMIC_ACQUIRE);
    uint32_t tag = __atomic_load_n(tagp, __ATOMIC_RELAXED);
    if (tag == stamp_of(type_id, cur)) { pthread_mutex_unlock(l); return; }
    uint32_t from = version_of(type_id, tag, cur);
    unsigned char sa[1024], sb[1024];
    unsigned char *a = sa, *b = sb, *heap = NULL;
    if (cap > sizeof sa) {
        heap = malloc(2 * (size_t)cap);
        if (!heap) { fprintf(stderr, "dsu: out of memory transforming the instance of '%s' at %p on first touch; aborting\n", lt->key, obj); abort(); }
        a = heap; b = heap + cap;
    }
    memcpy(a, obj, cap);
    char msg[400];
    uint32_t failed = 0;
    if (run_chain(lt, &a, &b, from, cur, msg, sizeof msg, &failed) < 0) {
        fprintf(stderr, "dsu: lazy transformation of '%s' at %p from version %u to %u (patch '%s') failed on first touch: %s; "
                "the patch is applied and its code cannot use this instance, aborting (eager transformation refuses the update instead)\n",
                lt->key, obj, failed, failed + 1, lt->steps[failed].patch ? lt->steps[failed].patch : "?", msg[0] ? msg : "no reason given");
        abort();
    }
    memcpy(obj, a, cap - 4);
    __atomic_store_n(tagp, stamp_of(type_id, cur), __ATOMIC_RELEASE);
    __atomic_add_fetch(&lt->touched, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(l);
    free(heap);
}

static void *lazy_after_write(uint64_t id, void *d, size_t n) {
    struct lazy_type *lt = find_lazy(id);
    if (lt) stamp_range(d, n, lt->capacity, stamp_of(id, __atomic_load_n(&lt->version, __ATOMIC_ACQUIRE)));
    return d;
}
void *dsu_lazy_memset(uint64_t id, void *d, int c, size_t n) { return lazy_after_write(id, memset(d, c, n), n); }
void *dsu_lazy_memcpy(uint64_t id, void *d, const void *s, size_t n) { return lazy_after_write(id, memcpy(d, s, n), n); }
void *dsu_lazy_memmove(uint64_t id, void *d, const void *s, size_t n) { return lazy_after_write(id, memmove(d, s, n), n); }

uint32_t dsu_lazy_current_tag(uint64_t id) {
    struct lazy_type *lt = find_lazy(id);
    return lt ? stamp_of(id, __atomic_load_n(&lt->version, __ATOMIC_ACQUIRE)) : 0;
}
uint64_t dsu_lazy_touched(uint64_t id) {
    struct lazy_type *lt = find_lazy(id);
    return lt ? __atomic_load_n(&lt->touched, __ATOMIC_RELAXED) : 0;
}

int dsu__lazy_checks_check(const struct dsu_patch_lazy_checks *lc, const struct dsu_patch_data *d, char *err, size_t errn) {
    if (lc && (lc->abi != DSU_DATA_ABI_VERSION || (lc->n && !lc->checks))) {
        snprintf(err, errn, "patch lazy-check list has ABI %u (runtime %u) or no array; regenerate the patch", lc->abi, DSU_DATA_ABI_VERSION);
        return -1;
    }
    if (lc) for (uint32_t i = 0; i < lc->n; i++)
        if (!lc->checks[i].stamp || !lc->checks[i].key) { snprintf(err, errn, "patch lazy-check #%u has no key or stamp variable", i); return -1; }
    uint32_t n = __atomic_load_n(&nlazy, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        const struct lazy_type *lt = &lazy_types[i];
        if (!__atomic_load_n(&lt->version, __ATOMIC_ACQUIRE)) continue;
        int covered = 0;
        for (uint32_t k = 0; lc && k < lc->n && !covered; k++) covered = lc->checks[k].id == lt->id;
        for (uint32_t k = 0; d && d->types && k < d->ntypes && !covered; k++)
            covered = d->types[k] && d->types[k]->id == lt->id && d->types[k]->mode == DSU_XFORM_LAZY;
        if (!covered) {
            snprintf(err, errn, "type '%s' was transformed lazily (version %u) and some instances may still be in older layouts, but this patch's code does not check their version tags; generate it with a dsu patch that supports lazy transformation",
                     lt->key, lt->version);
            return -1;
        }
    }
    return 0;
}

void dsu__lazy_checks_set(const struct dsu_patch_lazy_checks *lc) {
    for (uint32_t i = 0; lc && i < lc->n; i++)
        __atomic_store_n(lc->checks[i].stamp, dsu_lazy_current_tag(lc->checks[i].id), __ATOMIC_RELEASE);
}

void dsu__data_status(struct dsu__json *j) {
    dsu__json_key(j, "lazyTypes"); dsu__json_arr(j);
    uint32_t n = __atomic_load_n(&nlazy, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        const struct lazy_type *lt = &lazy_types[i];
        dsu__json_obj(j);
        dsu__json_key(j, "type"); dsu__json_str(j, lt->key);
        dsu__json_key(j, "version"); dsu__json_int(j, __atomic_load_n(&lt->version, __ATOMIC_ACQUIRE));
        dsu__json_key(j, "touched"); dsu__json_int(j, (long long)__atomic_load_n(&lt->touched, __ATOMIC_RELAXED));
        dsu__json_obj_end(j);
    }
    dsu__json_arr_end(j);
}
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
    if (p) stamp_new(p, type_id, 0, size, type_size);
    return p;
}

void *dsu_tcalloc(uint64_t type_id, size_t type_size, size_t n, size_t size) {
    void *p = calloc(n, size);
    if (p) track(p, type_id, n * size, type_size);   /* calloc checked n * size */
    if (p) stamp_new(p, type_id, 0, n * size, type_size);
    return p;
}

void *dsu_trealloc(uint64_t type_id, size_t type_size, void *p, size_t size) {
    int e = errno;
    struct block old = untrack(p);
    errno = e;
    void *q = realloc(p, size);
    if (!q && size) { if (old.p) track(p, old.id, old.size, old.type_size); return NULL; }
    track(q, type_id, size, type_size);
    if (q && size > old.size) stamp_new(q, type_id, old.p ? old.size : 0, size, type_size);
    return q;
}

void *dsu_realloc(void *p, size_t size) {
    int e = errno;
    struct block old = untrack(p);
    errno = e;
    void *q = realloc(p, size);
    if (!q && size) { if (old.p) track(p, old.id, old.size, old.type_size); return NULL; }
    if (old.p) track(q, old.id, size, old.type_size);
    if (old.p && q && size > old.size) stamp_new(q, old.id, old.size, size, old.type_size);
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
        if (t->mode != DSU_XFORM_EAGER && t->mode != DSU_XFORM_LAZY) { snprintf(err, errn, "patch type '%s' asks for transformation mode %u, which this runtime does not support (eager 1, lazy 2)", t->key, t->mode); return -1; }
        struct lazy_type *lt = find_lazy(t->id);
        if (t->mode == DSU_XFORM_LAZY && !t->lazy_stamp) { snprintf(err, errn, "patch type '%s' is lazy but gives no stamp variable; regenerate the patch", t->key); return -1; }
        if (t->mode == DSU_XFORM_EAGER && lt) {
            snprintf(err, errn, "type '%s' was transformed lazily by an earlier patch, so some instances may still be in older layouts; transform it lazily in this patch too (dsu patch --transform lazy)", t->key);
            return -1;
        }
        if (t->mode == DSU_XFORM_LAZY && lt && __atomic_load_n(&lt->version, __ATOMIC_ACQUIRE) + 1 >= MAX_STEPS) { snprintf(err, errn, "type '%s' already went through %u lazy transformations (the limit is %u); use an eager patch after a restart", t->key, lt->version, MAX_STEPS - 1); return -1; }
        if (t->mode == DSU_XFORM_LAZY && !lt && __atomic_load_n(&nlazy, __ATOMIC_ACQUIRE) >= MAX_LAZY) { snprintf(err, errn, "too many lazily transformed types (limit %u); transform '%s' eagerly", MAX_LAZY, t->key); return -1; }
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

/* Lazy types of the patch get their step and their new current version;
 * returns how many.  `undo` takes them back (the state transformer said no). */
static uint32_t lazy_register(const struct dsu_patch_data *d, const char *patch_id, int undo) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < d->ntypes; i++) {
        const struct dsu_patch_type *t = d->types[i];
        if (t->mode != DSU_XFORM_LAZY) continue;
        n++;
        struct lazy_type *lt = find_lazy(t->id);
        if (undo) {
            if (!lt) continue;
            uint32_t v = __atomic_load_n(&lt->version, __ATOMIC_RELAXED) - 1;
            __atomic_store_n(&lt->version, v, __ATOMIC_RELEASE);
            if (v == 0 && lt == &lazy_types[nlazy - 1]) __atomic_store_n(&nlazy, nlazy - 1, __ATOMIC_RELEASE);
            continue;
        }
        if (!lt) {
            lt = &lazy_types[nlazy];
            memset(lt, 0, sizeof *lt);
            lt->id = t->id; lt->key = t->key; lt->capacity = t->capacity;
            __atomic_store_n(&nlazy, nlazy + 1, __ATOMIC_RELEASE);
        }
        uint32_t v = __atomic_load_n(&lt->version, __ATOMIC_RELAXED);
        lt->steps[v] = (struct lazy_step){ t->transform, patch_id };
        /* where new containers must stamp embedded instances: the latest
         * patch's list (the embedding places of the running layout) */
        lt->nembeds = t->nembeds; lt->embeds = t->embeds;
        __atomic_store_n(&lt->version, v + 1, __ATOMIC_RELEASE);
        __atomic_store_n(t->lazy_stamp, stamp_of(t->id, v + 1), __ATOMIC_RELEASE);
    }
    return n;
}

int dsu__data_apply(const struct dsu_patch_data *d, const char *patch_id, struct dsu__data_stats *st, char *err, size_t errn) {
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
    unsigned char *chain = NULL;
    int any_eager = 0;
    uint32_t maxcap = 0;
    for (uint32_t ti = 0; ti < d->ntypes; ti++) {
        if (d->types[ti]->mode != DSU_XFORM_LAZY) any_eager = 1;
        if (d->types[ti]->capacity > maxcap) maxcap = d->types[ti]->capacity;
    }
    chain = malloc(2 * (size_t)maxcap + 1);
    if (!chain) { snprintf(err, errn, "out of memory while preparing the transformation; nothing was changed"); return -1; }
    pthread_mutex_lock(&reg_lock);
    /* 1. every live instance of every eagerly changed type, and the global
     * instances of lazily changed ones (the vector starts at the number of
     * live blocks: no regrowth for one instance per block) */
    v.cap = (any_eager ? nlive : 0) + 1024;
    v.v = malloc(v.cap * sizeof *v.v);
    if (!v.v) { v.cap = 0; goto oom; }
    for (uint32_t ti = 0; ti < d->ntypes; ti++) {
        const struct dsu_patch_type *t = d->types[ti];
        if (t->capacity < 4) continue;   /* refused at STAGE (capacity = the program's) */
        for (uint32_t r = 0; r < t->nranges; r++)
            for (uint64_t k = 0; k < t->ranges[r].count; k++)
                if (push(&v, (unsigned char *)t->ranges[r].base + k * t->capacity, ti) < 0) goto oom;
        /* lazy: heap instances and embedded ones wait for their first touch */
        if (t->mode == DSU_XFORM_LAZY) continue;
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
        if (t->mode == DSU_XFORM_LAZY) {
            /* a global instance: through the chain of earlier lazy steps to
             * the current version, then this patch's transformer; it gets
             * the new version's tag */
            struct lazy_type *lt = find_lazy(t->id);
            uint32_t cur = lt ? lt->version : 0, failed = 0;
            unsigned char *a = chain, *b = chain + maxcap;
            uint32_t old_tag;
            memcpy(a, v.v[i].p, t->capacity);
            memcpy(&old_tag, v.v[i].p + t->capacity - 4, 4);
            if (lt && run_chain(lt, &a, &b, version_of(t->id, old_tag, cur), cur, msg, sizeof msg, &failed) < 0) {
                snprintf(err, errn, "transformer of '%s' from version %u to %u (patch '%s') failed on the instance at %p: %s; nothing was changed",
                         t->key, failed, failed + 1, lt->steps[failed].patch, (void *)v.v[i].p, msg[0] ? msg : "no reason given");
                goto out;
            }
            if (t->transform(n, a, msg, sizeof msg) != 0) {
                snprintf(err, errn, "transformer of '%s' failed on the instance at %p (%zu of %zu instances prepared): %s; nothing was changed",
                         t->key, (void *)v.v[i].p, i, v.n, msg[0] ? msg : "no reason given");
                goto out;
            }
            uint32_t tag = stamp_of(t->id, cur + 1);
            memcpy(n + t->capacity - 4, &tag, 4);
            continue;
        }
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
        st->lazy_types = lazy_register(d, patch_id, 0);
        if (d->state_transform(err, errn) < 0) {
            lazy_register(d, patch_id, 1);
            for (size_t i = 0; i < v.n; i++) swap_bytes(v.v[i].p, stage + off[i], d->types[v.v[i].type]->capacity);
            goto out;
        }
    } else {
        for (size_t i = 0; i < v.n; i++) {
            if (i + 8 < v.n) __builtin_prefetch(v.v[i + 8].p, 1);
            memcpy(v.v[i].p, stage + off[i], d->types[v.v[i].type]->capacity);
        }
        st->lazy_types = lazy_register(d, patch_id, 0);
    }
    st->instances = v.n;
    st->ns = dsu__now_ns() - t0;
    if (getenv("DSU_DEBUG"))
        fprintf(stderr, "dsu: data: %zu instances: collect %llu us, prepare %llu us, commit %llu us (%u lazy types)\n", v.n,
                (unsigned long long)((t1 - t0) / 1000), (unsigned long long)((t2 - t1) / 1000),
                (unsigned long long)((dsu__now_ns() - t2) / 1000), st->lazy_types);
    rc = 0;
    goto out;
oom:
    snprintf(err, errn, "out of memory while preparing the transformation of %zu instances; nothing was changed", v.n);
out:
    if (locked) pthread_mutex_unlock(&reg_lock);
    if (stage) munmap(stage, stage_len);
    free(off); free(v.v); free(chain);
    return rc;
}
