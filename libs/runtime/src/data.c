/* data.c -- live data: the allocation registry of updatable types, the
 * program's type table (section "dsu_type") and the eager transformation of
 * every live instance during an update (ABI.md section 10).
 *
 * The registry keeps, per type, a dense array of its live blocks, and an
 * open-addressing hash table keyed by block address for free and realloc,
 * all guarded by one mutex (a free of memory that cannot be tracked skips
 * it: see untrack).  Program threads touch it only inside the tracked
 * allocation entry points; the coordinator reads it while every program
 * thread is parked or blocked (so nobody allocates), still under the mutex
 * so that a thread the registry does not know (there are none at commit
 * time, but a library thread could free) cannot race it.
 *
 * Eager transformation (dsu__data_apply): the instances' addresses are
 * copied from the arrays, then each instance is transformed in place: its
 * old image is saved to an undo buffer (mapped and faulted in before the
 * pause by dsu__data_reserve), the instance is zeroed and the transformer
 * writes the new image into it from the saved copy.  A failing transformer
 * or state transformer puts every saved image back: nothing changed.
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
#include <time.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include "internal.h"

extern const struct dsu_type_entry __start_dsu_type[] __attribute__((weak));
extern const struct dsu_type_entry __stop_dsu_type[] __attribute__((weak));

struct block { void *p; uint64_t id; size_t size; size_t type_size; };
#define TOMB ((void *)1)

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static int any_tracked;               /* atomic: set once a block was tracked */
static int registry_lost;             /* atomic: a block could not be recorded (no memory) */
/* Counting filter of the tracked addresses: live tracked blocks per bucket
 * of the address hash, written under reg_lock, read without it.  A free of
 * a block whose bucket is 0 cannot be of a tracked block and skips the lock
 * (see untrack).  In .bss: pages nobody touched cost no memory. */
#define FILTER_BITS 16
static uint32_t filter[1u << FILTER_BITS];
static uint32_t *filter_at(const void *p) {
    return &filter[(uint32_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> (64 - FILTER_BITS))];
}

/* ---- lazy types ---- */
#define MAX_LAZY  128
#define MAX_STEPS 64
/* prev_*: the type's embed list before this step (restored if the step is
 * taken back). */
struct lazy_step { dsu_transform_fn fn; const char *patch; uint32_t prev_nembeds; const struct dsu_patch_embed *prev_embeds; };
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

/* ---- the registry ----
 * Per (type id, type size) a dense array of the live blocks (`struct
 * tlist`): collecting the instances of a type at an update is a straight
 * walk over its array, whatever else is tracked.  An open-addressing hash
 * table keyed by block address finds a block's array entry for free and
 * realloc; each array entry knows its hash slot, so removing one (swap with
 * the array's last entry) fixes the moved entry's slot without a probe.
 * The addresses are an array of their own: when every block holds one
 * instance, that array is the list of instances, copied in one go. */
struct tmeta { size_t size; size_t slot; };
struct tlist {
    uint64_t id; size_t type_size;
    void **p; struct tmeta *m;        /* n used of cap, in parallel */
    size_t n, cap;
    size_t ninst;                     /* sum of size / type_size: counting is O(1) */
    size_t nmulti;                    /* blocks with size != type_size */
};
struct hent { void *p; uint32_t list; uint32_t idx; };   /* p: NULL empty, TOMB removed */

static struct hent *tab;            /* capacity ntab (power of two), or NULL */
static size_t ntab, nused, nlive;   /* nused counts tombstones too */
static struct tlist *lists;         /* nlists used of caplists */
static uint32_t nlists, caplists;
static uint32_t *lmap;              /* open addressing: list index + 1, 0 = empty; nlmap slots */
static uint32_t nlmap;

uint64_t dsu_type_id(const char *key) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *s = (const unsigned char *)key; *s; s++) { h ^= *s; h *= 1099511628211ull; }
    return h;
}

/* The slot follows the address (blocks are at least 16 bytes apart), so
 * consecutive allocations and frees touch neighbouring slots.  Linear
 * probing absorbs the blocks that share a slot modulo the table size. */
static size_t slot_of(const void *p) {
    return (size_t)((uintptr_t)p >> 4) & (ntab - 1);
}

static uint32_t lmap_slot(uint64_t id, size_t type_size) {
    uint64_t h = (id ^ type_size) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32) & (nlmap - 1);
}

/* The list of (id, type_size), created if needed; NULL = no memory. */
static struct tlist *list_for_locked(uint64_t id, size_t type_size) {
    if (nlmap) for (uint32_t k = lmap_slot(id, type_size);; k = (k + 1) & (nlmap - 1)) {
        if (!lmap[k]) break;
        struct tlist *l = &lists[lmap[k] - 1];
        if (l->id == id && l->type_size == type_size) return l;
    }
    if (nlists == caplists) {
        uint32_t cap = caplists ? caplists * 2 : 16;
        struct tlist *nl = realloc(lists, cap * sizeof *nl);
        if (!nl) return NULL;
        lists = nl; caplists = cap;
    }
    if ((nlists + 1) * 2 > nlmap) {   /* keep the map at most half full */
        uint32_t n = nlmap ? nlmap * 2 : 64;
        uint32_t *nm = calloc(n, sizeof *nm);
        if (!nm) return NULL;
        free(lmap); lmap = nm; nlmap = n;
        for (uint32_t i = 0; i < nlists; i++) {
            uint32_t k = lmap_slot(lists[i].id, lists[i].type_size);
            while (lmap[k]) k = (k + 1) & (nlmap - 1);
            lmap[k] = i + 1;
        }
    }
    uint32_t k = lmap_slot(id, type_size);
    while (lmap[k]) k = (k + 1) & (nlmap - 1);
    lists[nlists] = (struct tlist){ id, type_size, NULL, NULL, 0, 0, 0, 0 };
    lmap[k] = ++nlists;
    return &lists[nlists - 1];
}

/* Rebuilds the table (at least twice `want` slots, no tombstones) from the
 * lists; 0 or -1 (no memory, the old table stays). */
static int rehash_locked(size_t want) {
    size_t n = 1024;
    while (n < want * 2) n *= 2;
    struct hent *nt = calloc(n, sizeof *nt);
    if (!nt) return -1;
    free(tab);
    tab = nt; ntab = n; nused = nlive;
    for (uint32_t li = 0; li < nlists; li++)
        for (size_t i = 0; i < lists[li].n; i++) {
            void *p = lists[li].p[i];
            size_t k = slot_of(p);
            while (tab[k].p) k = (k + 1) & (ntab - 1);
            tab[k] = (struct hent){ p, li, (uint32_t)i };
            lists[li].m[i].slot = k;
        }
    return 0;
}

static struct hent *find_locked(const void *p) {
    if (!tab || !p) return NULL;
    for (size_t k = slot_of(p);; k = (k + 1) & (ntab - 1)) {
        if (!tab[k].p) return NULL;
        if (tab[k].p == p) return &tab[k];
    }
}

/* Removes the block of hash entry h; returns its record. */
static struct block remove_locked(struct hent *h) {
    struct tlist *l = &lists[h->list];
    size_t i = h->idx, size = l->m[i].size;
    struct block out = { l->p[i], l->id, size, l->type_size };
    size_t last = --l->n;
    l->ninst -= size == l->type_size ? 1 : size / l->type_size;
    l->nmulti -= size != l->type_size;
    if (i != last) {
        l->p[i] = l->p[last];
        l->m[i] = l->m[last];
        tab[l->m[i].slot].idx = h->idx;
    }
    h->p = TOMB;
    nlive--;
    uint32_t *f = filter_at(out.p);
    __atomic_store_n(f, __atomic_load_n(f, __ATOMIC_RELAXED) - 1, __ATOMIC_RELAXED);
    return out;
}

/* Records a block; a block that cannot be recorded (no memory for the
 * registry) is reported once: its instances would be missed by updates. */
static void track(void *p, uint64_t id, size_t size, size_t type_size) {
    if (!p || !type_size) return;
    pthread_mutex_lock(&reg_lock);
    struct hent *h = find_locked(p);
    if (h) remove_locked(h);   /* the address was reused without a free we saw */
    struct tlist *l = list_for_locked(id, type_size);
    if (l && l->n == l->cap && l->n < UINT32_MAX) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        void **np = realloc(l->p, cap * sizeof *np);
        if (np) l->p = np;
        struct tmeta *nm = np ? realloc(l->m, cap * sizeof *nm) : NULL;
        if (nm) { l->m = nm; l->cap = cap; }   /* else p is just larger than needed */
    }
    if (!l || l->n == l->cap || ((nused + 1) * 4 >= ntab * 3 && rehash_locked(nlive + 1) < 0)) {
        if (!__atomic_exchange_n(&registry_lost, 1, __ATOMIC_RELAXED))
            fprintf(stderr, "dsu: out of memory for the allocation registry; later updates of data types will be refused\n");
        pthread_mutex_unlock(&reg_lock);
        return;
    }
    size_t k = slot_of(p);
    while (tab[k].p && tab[k].p != TOMB) k = (k + 1) & (ntab - 1);
    if (!tab[k].p) nused++;
    tab[k] = (struct hent){ p, (uint32_t)(l - lists), (uint32_t)l->n };
    l->p[l->n] = p;
    l->m[l->n++] = (struct tmeta){ size, k };
    l->ninst += size == type_size ? 1 : size / type_size;   /* no division in the common case */
    l->nmulti += size != type_size;
    nlive++;
    uint32_t *f = filter_at(p);
    __atomic_store_n(f, __atomic_load_n(f, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
    /* published for untrack's unlocked fast path (see there) */
    __atomic_store_n(&any_tracked, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&reg_lock);
}

/* Forgets a block; returns its record (p == NULL if it was not tracked). */
static struct block untrack(void *p) {
    struct block out = { 0, 0, 0, 0 };
    /* Fast paths without the lock.  A tracked p was tracked before the
     * allocation returned it, so the thread freeing it (which got p from the
     * allocating thread somehow: happens-before) sees the flag and p's count
     * in the filter, or later values; the filter's other changes are other
     * blocks coming and going (all under reg_lock), so p's bucket stays >= 1
     * until p itself is untracked.  A bucket of 0 means p is not tracked. */
    if (!p || !__atomic_load_n(&any_tracked, __ATOMIC_ACQUIRE)) return out;
    if (!__atomic_load_n(filter_at(p), __ATOMIC_RELAXED)) return out;
    int e = errno;              /* free/realloc callers see errno untouched */
    pthread_mutex_lock(&reg_lock);
    struct hent *h = find_locked(p);
    if (h) out = remove_locked(h);
    pthread_mutex_unlock(&reg_lock);
    errno = e;
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
    struct block old = untrack(p);
    void *q = realloc(p, size);
    if (!q && size) { if (old.p) track(p, old.id, old.size, old.type_size); return NULL; }
    track(q, type_id, size, type_size);
    if (q && size > old.size) stamp_new(q, type_id, old.p ? old.size : 0, size, type_size);
    return q;
}

void *dsu_realloc(void *p, size_t size) {
    struct block old = untrack(p);
    void *q = realloc(p, size);
    if (!q && size) { if (old.p) track(p, old.id, old.size, old.type_size); return NULL; }
    if (old.p) track(q, old.id, size, old.type_size);
    if (old.p && q && size > old.size) stamp_new(q, old.id, old.size, size, old.type_size);
    return q;
}

void dsu_free(void *p) {
    if (!p) return;
    untrack(p);
    free(p);
}

size_t dsu_tracked_count(uint64_t type_id, size_t *instances) {
    size_t blocks = 0, inst = 0;
    pthread_mutex_lock(&reg_lock);
    for (uint32_t li = 0; li < nlists; li++) {
        const struct tlist *l = &lists[li];
        if (l->id != type_id) continue;
        blocks += l->n;
        inst += l->ninst;
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
    /* An instance the registry missed would keep its old layout under new code. */
    if (d->ntypes && __atomic_load_n(&registry_lost, __ATOMIC_RELAXED)) {
        snprintf(err, errn, "the allocation registry lost a block (out of memory), so some instances cannot be found; restart the program before a data update");
        return -1;
    }
    uint32_t fresh_lazy = 0;          /* lazy types this patch registers */
    for (uint32_t i = 0; i < d->ntypes; i++) {
        const struct dsu_patch_type *t = d->types[i];
        if (!t || !t->key) { snprintf(err, errn, "patch type #%u is missing or has no key", i); return -1; }
        if (t->id != dsu_type_id(t->key)) { snprintf(err, errn, "patch type '%s' has id %llx, expected %llx; regenerate the patch", t->key, (unsigned long long)t->id, (unsigned long long)dsu_type_id(t->key)); return -1; }
        if (t->mode != DSU_XFORM_EAGER && t->mode != DSU_XFORM_LAZY) { snprintf(err, errn, "patch type '%s' asks for transformation mode %u, which this runtime does not support (eager 1, lazy 2)", t->key, t->mode); return -1; }
        struct lazy_type *lt = find_lazy(t->id);
        if (t->mode == DSU_XFORM_LAZY && !t->lazy_stamp) { snprintf(err, errn, "patch type '%s' is lazy but gives no stamp variable; regenerate the patch", t->key); return -1; }
        if (t->mode == DSU_XFORM_EAGER && lt && __atomic_load_n(&lt->version, __ATOMIC_ACQUIRE)) {
            snprintf(err, errn, "type '%s' was transformed lazily by an earlier patch, so some instances may still be in older layouts; transform it lazily in this patch too (dsu patch --transform lazy)", t->key);
            return -1;
        }
        if (t->mode == DSU_XFORM_LAZY && lt && __atomic_load_n(&lt->version, __ATOMIC_ACQUIRE) + 1 >= MAX_STEPS) { snprintf(err, errn, "type '%s' already went through %u lazy transformations (the limit is %u); use an eager patch after a restart", t->key, lt->version, MAX_STEPS - 1); return -1; }
        if (t->mode == DSU_XFORM_LAZY && !lt && __atomic_load_n(&nlazy, __ATOMIC_ACQUIRE) + ++fresh_lazy > MAX_LAZY) { snprintf(err, errn, "too many lazily transformed types (limit %u); transform '%s' eagerly", MAX_LAZY, t->key); return -1; }
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
            lt->nembeds = lt->steps[v].prev_nembeds; lt->embeds = lt->steps[v].prev_embeds;
            __atomic_store_n(&lt->version, v, __ATOMIC_RELEASE);
            continue;
        }
        if (!lt) {
            lt = &lazy_types[nlazy];
            memset(lt, 0, sizeof *lt);
            lt->id = t->id; lt->key = t->key; lt->capacity = t->capacity;
            __atomic_store_n(&nlazy, nlazy + 1, __ATOMIC_RELEASE);
        }
        uint32_t v = __atomic_load_n(&lt->version, __ATOMIC_RELAXED);
        lt->steps[v] = (struct lazy_step){ t->transform, patch_id, lt->nembeds, lt->embeds };
        /* where new containers must stamp embedded instances: the latest
         * patch's list (the embedding places of the running layout) */
        lt->nembeds = t->nembeds; lt->embeds = t->embeds;
        __atomic_store_n(&lt->version, v + 1, __ATOMIC_RELEASE);
        __atomic_store_n(t->lazy_stamp, stamp_of(t->id, v + 1), __ATOMIC_RELEASE);
    }
    /* Types this patch registered first are the last entries: drop them all
     * (in any order of the descriptor). */
    if (undo)
        while (nlazy && !__atomic_load_n(&lazy_types[nlazy - 1].version, __ATOMIC_RELAXED))
            __atomic_store_n(&nlazy, nlazy - 1, __ATOMIC_RELEASE);
    return n;
}

/* The instances of one type of the patch: ptrs[first, first + n) in the
 * address list, their old images from undo + undo_off on (capacity bytes
 * each). */
struct seg { size_t first, n, undo_off; };

/* Instances of type t to transform now: its ranges and, when eager, every
 * tracked block of it and every place it is embedded in a tracked block.
 * With `out` NULL only counts; else writes the addresses to out. */
static size_t collect_locked(const struct dsu_patch_type *t, unsigned char **out) {
    size_t n = 0;
    for (uint32_t r = 0; r < t->nranges; r++) {
        if (out) for (uint64_t k = 0; k < t->ranges[r].count; k++) out[n + k] = (unsigned char *)t->ranges[r].base + k * t->capacity;
        n += t->ranges[r].count;
    }
    /* lazy: heap instances and embedded ones wait for their first touch */
    if (t->mode == DSU_XFORM_LAZY) return n;
    for (uint32_t li = 0; li < nlists; li++) {
        const struct tlist *l = &lists[li];
        if (l->id == t->id) {
            if (l->type_size == t->capacity && !out) n += l->ninst;
            else if (l->type_size == t->capacity && !l->nmulti) {
                /* the common case: one instance per block, the addresses as they are */
                memcpy(out + n, l->p, l->n * sizeof *out);
                n += l->n;
            } else for (size_t i = 0; i < l->n; i++) {
                size_t m = l->m[i].size / t->capacity;
                if (out) for (size_t k = 0; k < m; k++) out[n + k] = (unsigned char *)l->p[i] + k * t->capacity;
                n += m;
            }
        }
        for (uint32_t e = 0; e < t->nembeds; e++) {
            const struct dsu_patch_embed *em = &t->embeds[e];
            if (l->id != em->container_id) continue;
            if (!out && l->type_size == em->container_capacity) { n += l->ninst * em->count; continue; }
            for (size_t i = 0; i < l->n; i++)
                for (size_t k = 0; k < l->m[i].size / em->container_capacity; k++)
                    for (uint64_t j = 0; j < em->count; j++, n++)
                        if (out) out[n] = (unsigned char *)l->p[i] + k * em->container_capacity + em->offset + j * t->capacity;
        }
    }
    return n;
}

/* Puts the saved old images of the first `done` instances of segment s back. */
static void restore(unsigned char *const *ptrs, const unsigned char *undo, const struct seg *s, uint32_t cap, size_t done) {
    for (size_t i = 0; i < done; i++) memcpy(ptrs[s->first + i], undo + s->undo_off + i * cap, cap);
}

/* How far ahead the transformation loop prefetches: instances of a
 * fragmented heap are anywhere, so each one is a miss; about a dozen in
 * flight hide most of the latency (two lines each: a 16-byte aligned
 * instance usually straddles a line boundary). */
#define AHEAD 12
/* Largest instance whose old image is staged on the stack (see below). */
#define SMALL_CAP 1024

/* Saves the old image of the instance at p (cap bytes, a multiple of 16)
 * to `old` (a stack buffer, stays in L1: the transformer reads it) and to
 * `u` (the undo buffer, 16-byte aligned), and zeroes the instance, in one
 * pass.  The undo copy is written with non-temporal stores: it is read only
 * if the update is refused, so it should neither be fetched before it is
 * written nor push the instances out of the cache. */
static void save_and_zero(unsigned char *p, unsigned char *old, unsigned char *u, uint32_t cap) {
#if defined(__SSE2__)
    const __m128i z = _mm_setzero_si128();
    for (uint32_t o = 0; o < cap; o += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + o));
        _mm_store_si128((__m128i *)(old + o), v);
        _mm_stream_si128((__m128i *)(u + o), v);
        _mm_storeu_si128((__m128i *)(p + o), z);
    }
#else
    memcpy(old, p, cap); memcpy(u, p, cap); memset(p, 0, cap);
#endif
}

/* Orders the streamed stores before later reads of the undo buffer. */
static void stream_fence(void) {
#if defined(__SSE2__)
    _mm_sfence();
#endif
}

/* Transforms the eager instances of segment s in place: each old image goes
 * to undo first, the instance is zeroed and the transformer writes the new
 * image into it from a saved copy; the version tag stays.  Returns how many
 * were done: s->n, or fewer when the transformer of the next one failed
 * (msg says why; that instance is back to its old image). */
static size_t transform_eager(const struct dsu_patch_type *t, unsigned char *const *ptrs, unsigned char *undo, const struct seg *s,
                              char *msg, size_t msgn) {
    const uint32_t cap = t->capacity;
    const dsu_transform_fn fn = t->transform;
    unsigned char *const *pp = ptrs + s->first;
    unsigned char *u = undo + s->undo_off;
    /* Small instances: the transformer reads the old image from a stack
     * copy that stays in L1, and the undo copy is streamed out. */
    _Alignas(16) unsigned char old[SMALL_CAP];
    const int stream = cap <= SMALL_CAP && cap % 16 == 0 && s->undo_off % 16 == 0;
    for (size_t i = 0; i < s->n; i++, u += cap) {
        if (i + AHEAD < s->n) {
            __builtin_prefetch(pp[i + AHEAD], 1);
            __builtin_prefetch(pp[i + AHEAD] + cap - 1, 1);
        }
        unsigned char *p = pp[i];
        const unsigned char *o = u;
        if (stream) { save_and_zero(p, old, u, cap); o = old; }
        else { memcpy(u, p, cap); memset(p, 0, cap); }
        msg[0] = 0;
        if (fn(p, o, msg, msgn) != 0) { memcpy(p, o, cap); stream_fence(); return i; }
        memcpy(p + cap - 4, o + cap - 4, 4);
    }
    stream_fence();
    return s->n;
}

/* Global instances of a lazy type: through the chain of earlier lazy steps
 * to the current version, then this patch's transformer; they get the new
 * version's tag.  As transform_eager; on failure *failed_step is the failing
 * chain step, or UINT32_MAX for this patch's transformer. */
static size_t transform_lazy_globals(const struct dsu_patch_type *t, unsigned char *const *ptrs, unsigned char *undo, const struct seg *s,
                                     unsigned char *chain, uint32_t maxcap, char *msg, size_t msgn, uint32_t *failed_step) {
    const uint32_t cap = t->capacity;
    struct lazy_type *lt = find_lazy(t->id);
    uint32_t cur = lt ? lt->version : 0;
    for (size_t i = 0; i < s->n; i++) {
        unsigned char *p = ptrs[s->first + i], *u = undo + s->undo_off + i * cap;
        unsigned char *a = chain, *b = chain + maxcap;
        uint32_t old_tag;
        memcpy(u, p, cap);
        memcpy(a, p, cap);
        memcpy(&old_tag, p + cap - 4, 4);
        msg[0] = 0;
        if (lt && run_chain(lt, &a, &b, version_of(t->id, old_tag, cur), cur, msg, msgn, failed_step) < 0) return i;
        memset(p, 0, cap);
        msg[0] = 0;
        if (t->transform(p, a, msg, msgn) != 0) { memcpy(p, u, cap); *failed_step = UINT32_MAX; return i; }
        uint32_t tag = stamp_of(t->id, cur + 1);
        memcpy(p + cap - 4, &tag, 4);
    }
    return s->n;
}

/* The address list and the undo buffer of the next update: reserved by
 * dsu__data_reserve while the program still runs (faulting in tens of
 * megabytes takes longer than transforming them), used by dsu__data_apply,
 * unmapped by dsu__data_release after the program runs again.  Control
 * thread only. */
static struct { void *ptrs, *undo; size_t ptrs_len, undo_len; } resv;

/* Fresh populated anonymous memory (NULL = none): the pages are faulted in
 * by one call instead of one fault per page in the transformation loop. */
static void *map_populated(size_t len) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Instances and undo bytes the descriptor's types need now. */
static void count_locked(const struct dsu_patch_data *d, size_t *total, size_t *undo_len) {
    *total = 0; *undo_len = 0;
    for (uint32_t ti = 0; ti < d->ntypes; ti++) {
        const struct dsu_patch_type *t = d->types[ti];
        if (t->capacity < 4) continue;   /* refused at STAGE (capacity = the program's) */
        size_t n = collect_locked(t, NULL);
        *total += n;
        *undo_len += n * t->capacity;
    }
}

void dsu__data_release(void) {
    if (resv.ptrs) munmap(resv.ptrs, resv.ptrs_len);
    if (resv.undo) munmap(resv.undo, resv.undo_len);
    memset(&resv, 0, sizeof resv);
}

void dsu__data_reserve(const struct dsu_patch_data *d) {
    dsu__data_release();
    if (!d || !d->ntypes) return;
    size_t total, undo_len;
    uint64_t t0 = dsu__now_ns();
    pthread_mutex_lock(&reg_lock);
    count_locked(d, &total, &undo_len);
    pthread_mutex_unlock(&reg_lock);
    /* room for the blocks the program allocates until the update point,
     * and for each type's 16-byte alignment in the undo buffer */
    size_t extra = total / 8 + 1024;
    uint32_t maxcap = 0;
    for (uint32_t ti = 0; ti < d->ntypes; ti++)
        if (d->types[ti]->capacity > maxcap) maxcap = d->types[ti]->capacity;
    total += extra;
    undo_len += extra * maxcap + 16 * (size_t)d->ntypes;
    resv.ptrs_len = total * sizeof(void *);
    resv.undo_len = undo_len;
    resv.ptrs = map_populated(resv.ptrs_len);
    resv.undo = map_populated(resv.undo_len);
    if (!resv.ptrs || !resv.undo) dsu__data_release();   /* dsu__data_apply maps its own */
    if (getenv("DSU_DEBUG"))
        fprintf(stderr, "dsu: data: reserved room for %zu instances (%zu KiB) in %llu us, before the pause\n", total,
                (resv.ptrs_len + resv.undo_len) / 1024, (unsigned long long)((dsu__now_ns() - t0) / 1000));
}

/* CPU time of the calling thread (DSU_DEBUG: the pause without the time
 * other processes had the CPU). */
static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int dsu__data_apply(const struct dsu_patch_data *d, const char *patch_id, struct dsu__data_stats *st, char *err, size_t errn) {
    memset(st, 0, sizeof *st);
    if (!d || d->ntypes == 0) {
        if (d && d->state_transform && d->state_transform(err, errn) < 0) return -1;
        return 0;
    }
    uint64_t t0 = dsu__now_ns(), cpu0 = thread_cpu_ns();
    int rc = -1;
    unsigned char **ptrs = NULL, *undo = NULL, *chain = NULL;
    size_t total = 0, undo_len = 0;
    uint32_t maxcap = 0;
    struct seg *segs = calloc(d->ntypes, sizeof *segs);
    for (uint32_t ti = 0; ti < d->ntypes; ti++)
        if (d->types[ti]->capacity > maxcap) maxcap = d->types[ti]->capacity;
    chain = malloc(2 * (size_t)maxcap + 1);
    if (!segs || !chain) { snprintf(err, errn, "out of memory while preparing the transformation; nothing was changed"); goto out; }
    /* 1. collect: the address of every instance to transform now, type by
     * type, under the registry lock (counted first: one allocation) */
    pthread_mutex_lock(&reg_lock);
    for (uint32_t ti = 0; ti < d->ntypes; ti++) {
        const struct dsu_patch_type *t = d->types[ti];
        if (t->capacity < 4) continue;   /* refused at STAGE (capacity = the program's) */
        segs[ti] = (struct seg){ total, collect_locked(t, NULL), undo_len };
        total += segs[ti].n;
        /* each type's images start 16-byte aligned (streamed stores) */
        undo_len += (segs[ti].n * t->capacity + 15) & ~(size_t)15;
    }
    /* the reserved buffers if they are large enough, else new ones (which
     * dsu__data_release unmaps too, after the program runs again) */
    if (!resv.ptrs || resv.ptrs_len < total * sizeof *ptrs || resv.undo_len < undo_len) {
        dsu__data_release();
        resv.ptrs_len = (total + 1) * sizeof *ptrs;
        resv.undo_len = undo_len + 16;
        resv.ptrs = map_populated(resv.ptrs_len);
        resv.undo = map_populated(resv.undo_len);
        if (!resv.ptrs || !resv.undo) {
            dsu__data_release();
            pthread_mutex_unlock(&reg_lock);
            snprintf(err, errn, "out of memory while preparing the transformation of %zu instances; nothing was changed", total);
            goto out;
        }
    }
    ptrs = resv.ptrs;
    undo = resv.undo;
    for (uint32_t ti = 0; ti < d->ntypes; ti++)
        if (d->types[ti]->capacity >= 4) collect_locked(d->types[ti], ptrs + segs[ti].first);
    /* Every program thread is parked or blocked: nobody allocates from here
     * on, and transformers and the state transformer may allocate tracked
     * blocks themselves. */
    pthread_mutex_unlock(&reg_lock);
    uint64_t t1 = dsu__now_ns();
    /* 2. transform in place, saving each old image first; a failure puts
     * back every image saved so far */
    for (uint32_t ti = 0; ti < d->ntypes; ti++) {
        const struct dsu_patch_type *t = d->types[ti];
        char msg[400];
        uint32_t failed = 0;
        size_t done = t->mode == DSU_XFORM_LAZY
            ? transform_lazy_globals(t, ptrs, undo, &segs[ti], chain, maxcap, msg, sizeof msg, &failed)
            : transform_eager(t, ptrs, undo, &segs[ti], msg, sizeof msg);
        if (done == segs[ti].n) continue;
        unsigned char *at = ptrs[segs[ti].first + done];
        struct lazy_type *lt = find_lazy(t->id);
        if (t->mode == DSU_XFORM_LAZY && failed != UINT32_MAX)
            snprintf(err, errn, "transformer of '%s' from version %u to %u (patch '%s') failed on the instance at %p: %s; nothing was changed",
                     t->key, failed, failed + 1, lt ? lt->steps[failed].patch : "?", (void *)at, msg[0] ? msg : "no reason given");
        else
            snprintf(err, errn, "transformer of '%s' failed on the instance at %p (%zu of %zu instances prepared): %s; nothing was changed",
                     t->key, (void *)at, segs[ti].first + done, total, msg[0] ? msg : "no reason given");
        restore(ptrs, undo, &segs[ti], t->capacity, done);
        for (uint32_t k = 0; k < ti; k++) restore(ptrs, undo, &segs[k], d->types[k]->capacity, segs[k].n);
        goto out;
    }
    uint64_t t2 = dsu__now_ns();
    /* 3. the state transformer sees the new layout; if it says no, every
     * instance gets its old image back */
    st->lazy_types = lazy_register(d, patch_id, 0);
    if (d->state_transform && d->state_transform(err, errn) < 0) {
        lazy_register(d, patch_id, 1);
        for (uint32_t k = 0; k < d->ntypes; k++) restore(ptrs, undo, &segs[k], d->types[k]->capacity, segs[k].n);
        goto out;
    }
    st->instances = total;
    st->ns = dsu__now_ns() - t0;
    if (getenv("DSU_DEBUG"))
        fprintf(stderr, "dsu: data: %zu instances: collect %llu us, prepare %llu us, commit %llu us (%u lazy types), on cpu %llu us\n", total,
                (unsigned long long)((t1 - t0) / 1000), (unsigned long long)((t2 - t1) / 1000),
                (unsigned long long)((dsu__now_ns() - t2) / 1000), st->lazy_types, (unsigned long long)((thread_cpu_ns() - cpu0) / 1000));
    rc = 0;
out:
    free(segs); free(chain);
    return rc;
}
