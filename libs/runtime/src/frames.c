/* frames.c -- stack-frame mapping (ABI.md section 11).
 *
 * An update may replace a function that is active on a thread's stack (a
 * main loop, a worker loop) when every frame between the thread's update
 * point and its entry has capture and resume code (dsu-cc emits it for
 * functions that can be on a stack at an update point).  After the commit
 * the thread unwinds: each frame saves its locals in a record and returns;
 * the entry (dsu__run_main, or the thread trampoline) calls the entry
 * function again in resume mode, and each frame, now in the new code,
 * restores its locals (through the patch's frame map) and continues at its
 * site.  Records live on the heap of the thread that owns them; only the
 * owner touches them, except the statistics the control thread reads once
 * the thread is done (outstanding count, acquire/release). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

__thread int dsu__unwinding __attribute__((tls_model("initial-exec")));
__thread int dsu__resuming __attribute__((tls_model("initial-exec")));
/* Written by the owner only (plain ++/-- emitted by dsu-cc); the
 * coordinator reads it through dsu__thread.nomap while the owner is parked
 * or blocked, after the owner's state store (seq_cst) published it. */
__thread int dsu__nomap __attribute__((tls_model("initial-exec")));

extern const struct dsu_frame_fn __start_dsu_frame[] __attribute__((weak));
extern const struct dsu_frame_fn __stop_dsu_frame[] __attribute__((weak));

/* ---- registry of resumable implementations (control thread writes under
 * reg_lock while every program thread is held; threads only read) ---- */
static const struct dsu_frame_fn **resumable;
static size_t nresumable, capresumable;
/* The frame map of the last committed patch (never unloaded). */
static const struct dsu_patch_frames *active_map;
static int map_backwards;   /* active_map is read from `to` to `from` (a rollback) */
static int outstanding;     /* threads still unwinding or rebuilding, atomic */

static int add_resumable(const struct dsu_frame_fn *f) {
    if (!f || f->abi != DSU_FRAME_ABI_VERSION || !f->key || !f->impl) return 0;
    if (nresumable == capresumable) {
        size_t cap = capresumable ? capresumable * 2 : 64;
        const struct dsu_frame_fn **n = realloc(resumable, cap * sizeof *n);
        if (!n) return -1;
        resumable = n;
        capresumable = cap;
    }
    resumable[nresumable++] = f;
    return 0;
}

void dsu__frames_init(void) {
    for (const struct dsu_frame_fn *f = __start_dsu_frame; f && f < __stop_dsu_frame; f++)
        if (add_resumable(f) < 0) break;
}

const struct dsu_frame_fn *dsu__frames_lookup(uintptr_t impl) {
    for (size_t i = 0; i < nresumable; i++)
        if ((uintptr_t)resumable[i]->impl == impl) return resumable[i];
    return NULL;
}

const struct dsu_frame_fn *dsu__frames_in_patch(const struct dsu_patch_frames *pf, const char *key) {
    for (uint32_t i = 0; pf && i < pf->nfns; i++)
        if (pf->fns[i] && pf->fns[i]->key && strcmp(pf->fns[i]->key, key) == 0) return pf->fns[i];
    return NULL;
}

/* ---- pre-commit: can this stack be unwound and rebuilt? ---- */

static int is_entry(uintptr_t base) {
    return base == (uintptr_t)&dsu__run_main || base == dsu__thread_entry_addr();
}

int dsu__frames_mappable(void *const *stack, int n, char *why, size_t whyn) {
    int seen = 0;
    for (int i = 0; i < n; i++) {
        const struct dsu__sym *s = dsu__symtab_lookup((uintptr_t)stack[i] - 1);
        if (s && is_entry(s->base)) {
            if (seen) return 1;
            snprintf(why, whyn, "the thread's update point is in no function with capture code");
            return 0;
        }
        if (s && dsu__frames_lookup(s->base)) { seen++; continue; }
        /* Above the first resumable frame: the runtime's own frames, the
         * signal frame, the blocking libc call. */
        if (!seen) continue;
        if (s && s->name && dsu__key_of_impl(s->base))
            snprintf(why, whyn, "function '%s' is on the stack without capture code (it cannot be unwound)",
                     dsu__key_of_impl(s->base));
        else
            snprintf(why, whyn, "a frame of '%s' (not program code: a library calling back into the program?) "
                     "lies between the update point and the thread's entry", s && s->name ? s->name : "?");
        return 0;
    }
    snprintf(why, whyn, seen ? "the thread's entry (main or a thread start routine) was not found within %d frames"
                             : "the thread's update point is in no function with capture code", n);
    return 0;
}

/* ---- commit: requests ---- */

void dsu__frames_commit(const struct dsu_patch_frames *pf, int backwards) {
    for (uint32_t i = 0; pf && !backwards && i < pf->nfns; i++)
        if (pf->fns[i] && !dsu__frames_lookup((uintptr_t)pf->fns[i]->impl)) add_resumable(pf->fns[i]);
    if (!pf) return;
    /* Written while every thread is held; read by the rebuilding threads after. */
    __atomic_store_n(&map_backwards, backwards, __ATOMIC_RELAXED);
    __atomic_store_n(&active_map, pf, __ATOMIC_RELEASE);
}

void dsu__frames_request(struct dsu__thread *t) {
    struct dsu__frame_state *st = t->frames;
    if (!st) st = t->frames = calloc(1, sizeof *st);
    if (!st) return;  /* cannot happen in practice; the thread then runs old code */
    st->nrecs = 0;
    st->done = 0;
    st->unwind_ns = st->unwound_ns = st->done_ns = 0;
    st->requested_ns = dsu__now_ns();
    __atomic_add_fetch(&outstanding, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&t->unwind, 1, __ATOMIC_SEQ_CST);
}

/* In a forked child only the forking thread exists: no request of another
 * thread can be taken any more. */
void dsu__frames_atfork_child(void) {
    struct dsu__thread *t = dsu__self;
    int mine = t && t->frames && t->frames->requested_ns && !t->frames->done;
    __atomic_store_n(&outstanding, mine, __ATOMIC_SEQ_CST);
}

int dsu__frames_outstanding(void) { return __atomic_load_n(&outstanding, __ATOMIC_ACQUIRE); }

/* The owner takes its request at an update point or on the way out of a
 * wrapped call: from here its instrumented code unwinds. */
void dsu__frames_take(struct dsu__thread *t, int mode) {
    if (!__atomic_exchange_n(&t->unwind, 0, __ATOMIC_SEQ_CST)) return;
    dsu__unwinding = mode;
    t->frames->unwind_ns = dsu__now_ns();
}

static void finished(struct dsu__frame_state *st) {
    st->done_ns = dsu__now_ns();
    __atomic_store_n(&st->done, 1, __ATOMIC_RELEASE);
    if (__atomic_sub_fetch(&outstanding, 1, __ATOMIC_SEQ_CST) == 0) {
        int u = DSU__PENDING_UNWIND;
        __atomic_compare_exchange_n(&dsu__pending, &u, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    }
}

/* ---- capture (old code) ---- */

static void fatal(const char *what, const char *key) __attribute__((noreturn));
static void fatal(const char *what, const char *key) {
    fprintf(stderr, "dsu: cannot rebuild the stack of thread %d: %s ('%s'); aborting\n",
            (int)dsu__gettid(), what, key ? key : "?");
    abort();
}

static struct dsu__frame_state *state(void) {
    struct dsu__thread *t = dsu__self;
    if (!t || !t->frames) fatal("no frame state (frame code called outside an update)", NULL);
    return t->frames;
}

void dsu__frame_capture(const char *key, const char *site) {
    struct dsu__frame_state *st = state();
    if (st->nrecs == DSU__MAX_FRAME_RECS) fatal("more than 64 frames to unwind", key);
    struct dsu__frame_rec *r = &st->recs[st->nrecs++];
    r->key = key;
    r->site = site;
    r->nlocals = 0;
    r->used = 0;
}

void dsu__frame_save(const char *name, const void *p, size_t size, unsigned kind) {
    struct dsu__frame_state *st = state();
    struct dsu__frame_rec *r = &st->recs[st->nrecs - 1];
    if (r->nlocals == r->caplocals) {
        uint32_t cap = r->caplocals ? r->caplocals * 2 : 16;
        struct dsu__frame_local *n = realloc(r->locals, cap * sizeof *n);
        if (!n) fatal("out of memory saving a local", r->key);
        r->locals = n;
        r->caplocals = cap;
    }
    if (r->used + size > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->used + size) cap *= 2;
        unsigned char *n = realloc(r->bytes, cap);
        if (!n) fatal("out of memory saving a local", r->key);
        r->bytes = n;
        r->cap = cap;
    }
    struct dsu__frame_local *l = &r->locals[r->nlocals++];
    l->name = name;
    l->size = (uint32_t)size;
    l->kind = kind;
    l->addr = (uintptr_t)p;
    l->off = r->used;
    memcpy(r->bytes + r->used, p, size);
    r->used += size;
}

/* ---- the entries: unwound to here, rebuild ---- */

/* Called by an entry when its function returned because of an unwind:
 * the records are complete; re-enter in resume mode. */
void dsu__frames_rebuild(void) {
    struct dsu__frame_state *st = state();
    dsu__unwinding = 0;
    st->unwound_ns = dsu__now_ns();
    st->nreloc = 0;
    st->cur = (int)st->nrecs - 1;
    st->nmapped = st->nrecs;
    if (st->cur < 0) { finished(st); return; }
    dsu__resuming = 1;
}

int dsu__run_main(void **slot, int argc, char **argv, char **envp) {
    for (;;) {
        int (*m)(int, char **, char **) = (int (*)(int, char **, char **))
            __atomic_load_n(slot, __ATOMIC_ACQUIRE);
        int r = m(argc, argv, envp);
        if (!dsu__unwinding) return r;
        dsu__frames_rebuild();
    }
}

/* ---- resume (new code) ---- */

static const char *mapped(uint32_t kind, const char *key, const char *name, int to_from) {
    const struct dsu_patch_frames *pf = __atomic_load_n(&active_map, __ATOMIC_ACQUIRE);
    int backwards = __atomic_load_n(&map_backwards, __ATOMIC_RELAXED);
    if (backwards) to_from = !to_from;
    for (uint32_t i = 0; pf && i < pf->nmaps; i++) {
        const struct dsu_frame_map *m = &pf->maps[i];
        if (m->kind != kind || strcmp(m->key, key) != 0) continue;
        if (backwards && !m->from[0]) continue;  /* "not carried": no name to map back to */
        if (to_from ? strcmp(m->to, name) == 0 : strcmp(m->from, name) == 0)
            return to_from ? m->from : m->to;
    }
    return name;
}

int dsu__frame_resume(const char *key, const char *const *sites, unsigned nsites) {
    struct dsu__frame_state *st = state();
    if (st->cur < 0) fatal("a function was entered in resume mode with no frame left", key);
    struct dsu__frame_rec *r = &st->recs[st->cur];
    if (strcmp(r->key, key) != 0) fatal("the frame to rebuild belongs to another function", r->key);
    const char *site = mapped(DSU_FRAME_MAP_SITE, key, r->site, 0);
    /* Backwards (a rollback) the restored code's own site of that name comes first: several
     * old sites may have been mapped to one new site. */
    if (__atomic_load_n(&map_backwards, __ATOMIC_RELAXED))
        for (unsigned i = 0; i < nsites; i++)
            if (strcmp(sites[i], r->site) == 0) return (int)i;
    for (unsigned i = 0; i < nsites; i++)
        if (strcmp(sites[i], site) == 0) return (int)i;
    fatal("the new code has no counterpart of the site the frame stopped at", site);
}

/* Old frame storage -> new frame storage, for pointers into the stack. */
static uintptr_t relocate(struct dsu__frame_state *st, uintptr_t v) {
    for (uint32_t i = 0; i < st->nreloc; i++)
        if (v >= st->reloc[i].old && v < st->reloc[i].old + st->reloc[i].size)
            return st->reloc[i].new_ + (v - st->reloc[i].old);
    return v;
}

static int load_int(void *p, size_t size, unsigned kind, const unsigned char *src, size_t ssize, unsigned skind) {
    if (size > 8 || ssize > 8) return 0;
    int64_t sv = 0;
    uint64_t uv = 0;
    if (skind == DSU_LOCAL_INT) {
        switch (ssize) {
        case 1: { int8_t x; memcpy(&x, src, 1); sv = x; break; }
        case 2: { int16_t x; memcpy(&x, src, 2); sv = x; break; }
        case 4: { int32_t x; memcpy(&x, src, 4); sv = x; break; }
        case 8: { memcpy(&sv, src, 8); break; }
        default: return 0;
        }
        if (kind == DSU_LOCAL_UINT && sv < 0) return 0;
        uv = (uint64_t)sv;
    } else {
        memcpy(&uv, src, ssize);  /* little-endian: zero-extended */
        sv = (int64_t)uv;
        if (kind == DSU_LOCAL_INT && uv > (uint64_t)INT64_MAX) return 0;
    }
    if (size < 8) {
        if (kind == DSU_LOCAL_INT) {
            int64_t lim = (int64_t)1 << (size * 8 - 1);
            if (sv < -lim || sv >= lim) return 0;
        } else if (uv >> (size * 8)) return 0;
    }
    memcpy(p, &uv, size);  /* little-endian: the low bytes */
    return 1;
}

int dsu__frame_load(const char *name, void *p, size_t size, unsigned kind) {
    struct dsu__frame_state *st = state();
    struct dsu__frame_rec *r = &st->recs[st->cur];
    const char *old = mapped(DSU_FRAME_MAP_LOCAL, r->key, name, 1);
    for (uint32_t i = 0; i < r->nlocals; i++) {
        struct dsu__frame_local *l = &r->locals[i];
        if (strcmp(l->name, old) != 0) continue;
        const unsigned char *src = r->bytes + l->off;
        int ok;
        if (l->size == size && (l->kind == kind || kind == DSU_LOCAL_BYTES || l->kind == DSU_LOCAL_BYTES)) {
            memcpy(p, src, size);
            ok = 1;
        } else if ((kind == DSU_LOCAL_INT || kind == DSU_LOCAL_UINT) &&
                   (l->kind == DSU_LOCAL_INT || l->kind == DSU_LOCAL_UINT)) {
            ok = load_int(p, size, kind, src, l->size, l->kind);
        } else {
            ok = 0;
        }
        if (!ok) {
            fprintf(stderr, "dsu: local '%s' of '%s' (%u bytes) does not fit its new type (%zu bytes); "
                    "its initializer runs instead\n", old, r->key, l->size, size);
            return 0;
        }
        if (kind == DSU_LOCAL_PTR && size == sizeof(uintptr_t)) {
            uintptr_t v;
            memcpy(&v, p, sizeof v);
            v = relocate(st, v);
            memcpy(p, &v, sizeof v);
        }
        if (st->nreloc < DSU__MAX_RELOCS)
            st->reloc[st->nreloc++] = (struct dsu__frame_reloc){ l->addr, (uintptr_t)p, l->size < size ? l->size : size };
        return 1;
    }
    return 0;
}

void dsu__frame_done(void) {
    struct dsu__frame_state *st = state();
    if (--st->cur < 0) {
        dsu__resuming = 0;
        finished(st);
    }
}

/* ---- reporting: COMMIT's "frames" ---- */

void dsu__frames_report(struct dsu__json *j) {
    dsu__json_arr(j);
    pthread_mutex_lock(&dsu__reg_lock);
    for (struct dsu__thread *t = dsu__threads; t; t = t->next) {
        struct dsu__frame_state *st = t->frames;
        if (!st || !st->requested_ns) continue;
        dsu__json_obj(j);
        dsu__json_key(j, "tid");
        dsu__json_int(j, __atomic_load_n(&t->tid, __ATOMIC_ACQUIRE));
        int done = __atomic_load_n(&st->done, __ATOMIC_ACQUIRE);
        dsu__json_key(j, "done");
        dsu__json_bool(j, done);
        if (done) {
            dsu__json_key(j, "frames");
            dsu__json_arr(j);
            for (uint32_t i = st->nmapped; i-- > 0;) {
                char s[256];
                snprintf(s, sizeof s, "%s@%s", st->recs[i].key, st->recs[i].site);
                dsu__json_str(j, s);
            }
            dsu__json_arr_end(j);
            dsu__json_key(j, "waitUs");
            dsu__json_int(j, (long long)((st->unwind_ns - st->requested_ns) / 1000u));
            dsu__json_key(j, "unwindUs");
            dsu__json_int(j, (long long)((st->unwound_ns - st->unwind_ns) / 1000u));
            dsu__json_key(j, "rebuildUs");
            dsu__json_int(j, (long long)((st->done_ns - st->unwound_ns) / 1000u));
            st->requested_ns = 0;   /* reported once */
        }
        dsu__json_obj_end(j);
    }
    pthread_mutex_unlock(&dsu__reg_lock);
    dsu__json_arr_end(j);
}

void dsu__frames_free(struct dsu__frame_state *st) {
    if (!st) return;
    for (uint32_t i = 0; i < DSU__MAX_FRAME_RECS; i++) {
        free(st->recs[i].locals);
        free(st->recs[i].bytes);
    }
    free(st);
}

void dsu__frames_abandon(struct dsu__thread *t) {
    int untaken = __atomic_exchange_n(&t->unwind, 0, __ATOMIC_SEQ_CST);
    struct dsu__frame_state *st = t->frames;
    if (st && st->requested_ns && (untaken || (st->unwind_ns && !st->done))) finished(st);
}
