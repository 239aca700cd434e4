/* update.c -- function table, STAGE, COMMIT/ROLLBACK (the update protocol)
 * and the STATUS/STACKS reports.
 *
 * All state in this file is owned by the control thread (the coordinator):
 * requests are served one at a time, so it needs no locks of its own.  It
 * touches program threads only through threads.c's registry. */
#define _GNU_SOURCE
#include <dirent.h>
#include <elf.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include "internal.h"

extern const char dsu_build_id[] __attribute__((weak));
extern const char dsu_program_name[] __attribute__((weak));
extern const struct dsu_fn_entry __start_dsu_fn[] __attribute__((weak));
extern const struct dsu_fn_entry __stop_dsu_fn[] __attribute__((weak));

#define RESIGNAL_NS     (10u * 1000000u)   /* re-send the wake-up signal */
#define RETRY_PAUSE_NS  (10u * 1000000u)   /* let threads run between attempts */

struct fn {                   /* one updatable function */
    const char *key;
    void **slot;
    const char *origin;       /* "exe" or the id of the patch that added it */
    int removed;              /* a later patch declared it REMOVED */
};
struct change { void **slot; void *old, *new_; };
struct applied {
    char id[128];
    const struct dsu_patch_desc *desc;
    const struct dsu_patch_data *data;  /* NULL = code only */
    size_t instances;                   /* transformed at commit */
    uint64_t at_ms, pause_us;
    char point[128];
    struct change *ch; size_t nch;
    void **active;  size_t nactive; /* code that must not be on a stack to roll back */
    size_t nfns_before;            /* fns[] length before ADDED entries */
    int *removed_idx; size_t nremoved;
    const struct dsu_patch_frames *frames;  /* its frame map: used backwards by a rollback */
};

static struct fn *fns; static size_t nfns, capfns;
static struct applied *hist; static size_t nhist, caphist;
static struct {
    int present;
    char id[128];
    const struct dsu_patch_desc *desc;
    const struct dsu_patch_data *data;
    const struct dsu_patch_lazy_checks *lazy_checks;
    int (*when)(void);          /* the patch's when-condition, or NULL */
    const char *when_text;
    const struct dsu_patch_frames *frames;  /* NULL: cannot rebuild frames */
} staged;
/* Rollback rebuilds frames in the code it restores, under the same names. */
static const struct dsu_patch_frames identity_frames = { DSU_FRAME_ABI_VERSION, 0, NULL, 0, NULL };
static const char *cur_build;   /* atomic; NULL = program's */
static unsigned round_gen;

const char *dsu__program_name(void) {
    const char *p = dsu_program_name;
    return p ? p : "unknown";
}
const char *dsu__program_build_id(void) {
    const char *p = dsu_build_id;
    return p ? p : "unknown";
}
const char *dsu_current_build_id(void) {
    const char *p = __atomic_load_n(&cur_build, __ATOMIC_ACQUIRE);
    return p ? p : dsu__program_build_id();
}

static struct fn *find_fn(const char *key) {
    for (size_t i = 0; i < nfns; i++)
        if (strcmp(fns[i].key, key) == 0) return &fns[i];
    return NULL;
}

static int add_fn(const char *key, void **slot, const char *origin) {
    if (nfns == capfns) {
        size_t cap = capfns ? capfns * 2 : 64;
        struct fn *n = realloc(fns, cap * sizeof *n);
        if (!n) return -1;
        fns = n; capfns = cap;
    }
    fns[nfns++] = (struct fn){ key, slot, origin, 0 };
    return 0;
}

void dsu__update_init(void) {
    static int done;
    if (done) return;
    done = 1;
    dsu__frames_init();
    const struct dsu_fn_entry *e = __start_dsu_fn, *end = __stop_dsu_fn;
    if (!e || !end) return;
    for (; e < end; e++) {
        if (e->abi != DSU_ABI_VERSION) {
            fprintf(stderr, "dsu: registry entry '%s' has ABI %u, runtime wants %u; "
                    "rebuild the program with a matching dsu-cc\n",
                    e->key ? e->key : "?", e->abi, DSU_ABI_VERSION);
            continue;
        }
        if (!e->key || !e->slot) continue;
        if (find_fn(e->key)) {
            fprintf(stderr, "dsu: duplicate registry key '%s' (units %s); the second "
                    "one cannot be updated\n", e->key, e->unit ? e->unit : "?");
            continue;
        }
        add_fn(e->key, e->slot, "exe");
    }
}

/* Key of the function whose code starts at `addr`, or NULL. */
const char *dsu__key_of_impl(uintptr_t addr) {
    for (size_t i = 0; i < nfns; i++)
        if ((uintptr_t)__atomic_load_n(fns[i].slot, __ATOMIC_RELAXED) == addr) return fns[i].key;
    for (size_t h = 0; h < nhist; h++) {
        const struct dsu_patch_desc *d = hist[h].desc;
        for (uint32_t k = 0; k < d->nfns; k++)
            if ((uintptr_t)d->fns[k].new_impl == addr) return d->fns[k].key;
    }
    for (const struct dsu_fn_entry *e = __start_dsu_fn; e && e < __stop_dsu_fn; e++)
        if ((uintptr_t)e->impl == addr) return e->key;
    return NULL;
}

/* ---- replies ---- */

/* The fields HELLO and STATUS share: who this process is. */
static void identity_fields(struct dsu__json *j) {
    dsu__json_key(j, "ok"); dsu__json_bool(j, 1);
    dsu__json_key(j, "protocol"); dsu__json_int(j, DSU_PROTOCOL_VERSION);
    dsu__json_key(j, "pid"); dsu__json_int(j, getpid());
    dsu__json_key(j, "program"); dsu__json_str(j, dsu__program_name());
    dsu__json_key(j, "buildId"); dsu__json_str(j, dsu_current_build_id());
}

void dsu__req_hello(struct dsu__json *j) {
    dsu__json_obj(j);
    identity_fields(j);
    dsu__json_obj_end(j);
}

static const char *state_name(int s) {
    return s == DSU__PARKED ? "parked" : s == DSU__BLOCKED ? "blocked" : "running";
}

struct uniq { const char *names[256]; int n; struct dsu__json *j; };
static void point_cb(const char *name, void *ud) {
    struct uniq *u = ud;
    for (int i = 0; i < u->n; i++) if (strcmp(u->names[i], name) == 0) return;
    if (u->n < 256) u->names[u->n++] = name;
    dsu__json_str(u->j, name);
}

void dsu__req_status(struct dsu__json *j) {
    dsu__json_obj(j);
    identity_fields(j);
    dsu__json_key(j, "threads"); dsu__json_arr(j);
    pthread_mutex_lock(&dsu__reg_lock);
    for (struct dsu__thread *t = dsu__threads; t; t = t->next) {
        pid_t tid = __atomic_load_n(&t->tid, __ATOMIC_ACQUIRE);
        char name[32];
        if (tid) dsu__thread_name(tid, name, sizeof name); else strcpy(name, "(starting)");
        dsu__json_obj(j);
        dsu__json_key(j, "tid"); dsu__json_int(j, tid);
        dsu__json_key(j, "name"); dsu__json_str(j, name);
        dsu__json_key(j, "state"); dsu__json_str(j, state_name(__atomic_load_n(&t->state, __ATOMIC_SEQ_CST)));
        dsu__json_key(j, "lastPoint"); dsu__json_str(j, __atomic_load_n(&t->last_point, __ATOMIC_RELAXED));
        dsu__json_obj_end(j);
    }
    pthread_mutex_unlock(&dsu__reg_lock);
    dsu__json_arr_end(j);
    dsu__json_key(j, "updatePoints"); dsu__json_arr(j);
    struct uniq u; u.n = 0; u.j = j;
    dsu__points_foreach(point_cb, &u);
    dsu__json_arr_end(j);
    dsu__json_key(j, "patches"); dsu__json_arr(j);
    for (size_t i = 0; i < nhist; i++) {
        dsu__json_obj(j);
        dsu__json_key(j, "id"); dsu__json_str(j, hist[i].id);
        dsu__json_key(j, "fromBuildId"); dsu__json_str(j, hist[i].desc->from_build_id);
        dsu__json_key(j, "toBuildId"); dsu__json_str(j, hist[i].desc->to_build_id);
        dsu__json_key(j, "appliedAtMs"); dsu__json_int(j, (long long)hist[i].at_ms);
        dsu__json_key(j, "pauseUs"); dsu__json_int(j, (long long)hist[i].pause_us);
        dsu__json_key(j, "updatePoint"); dsu__json_str(j, hist[i].point);
        dsu__json_obj_end(j);
    }
    dsu__json_arr_end(j);
    dsu__data_status(j);
    dsu__json_key(j, "staged");
    if (staged.present) dsu__json_str(j, staged.id); else dsu__json_null(j);
    dsu__json_obj_end(j);
}

/* ---- STAGE ---- */

static void stage_refused(struct dsu__json *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void stage_refused(struct dsu__json *j, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dsu__json_obj(j);
    dsu__json_key(j, "ok"); dsu__json_bool(j, 0);
    dsu__json_key(j, "outcome"); dsu__json_str(j, "refused");
    dsu__json_key(j, "error"); dsu__json_str(j, msg);
    dsu__json_obj_end(j);
}

static int write_all(int fd, const unsigned char *b, size_t n) {
    while (n > 0) {
        ssize_t r = write(fd, b, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        b += r; n -= (size_t)r;
    }
    return 0;
}

static struct applied *find_applied(const char *id) {
    for (size_t i = 0; i < nhist; i++) if (strcmp(hist[i].id, id) == 0) return &hist[i];
    return NULL;
}

/* Checks a descriptor against the current state.  Returns 0 if it can be
 * applied now, else -1 with the reason in err. */
static int check_desc(const struct dsu_patch_desc *d, char *err, size_t errn) {
    if (d->abi != DSU_ABI_VERSION) { snprintf(err, errn, "patch descriptor has ABI %u but this runtime speaks %u; regenerate the patch", d->abi, DSU_ABI_VERSION); return -1; }
    if (!d->from_build_id || !d->to_build_id) { snprintf(err, errn, "patch descriptor lacks from/to build ids"); return -1; }
    if (strcmp(d->from_build_id, dsu_current_build_id()) != 0) {
        snprintf(err, errn, "patch applies to build '%s' but the program runs build '%s'; generate the patch against the running build",
                 d->from_build_id, dsu_current_build_id());
        return -1;
    }
    if (d->nfns && !d->fns) { snprintf(err, errn, "patch descriptor has nfns=%u but no fns array", d->nfns); return -1; }
    if (d->npoints && !d->allowed_points) { snprintf(err, errn, "patch descriptor has npoints=%u but no allowed_points", d->npoints); return -1; }
    for (uint32_t i = 0; i < d->nfns; i++) {
        const struct dsu_patch_fn *f = &d->fns[i];
        if (!f->key) { snprintf(err, errn, "patch function #%u has no key", i); return -1; }
        for (uint32_t k = 0; k < i; k++)
            if (strcmp(d->fns[k].key, f->key) == 0) { snprintf(err, errn, "patch lists function '%s' twice", f->key); return -1; }
        struct fn *cur = find_fn(f->key);
        switch (f->change) {
        case DSU_CHANGE_BODY: case DSU_CHANGE_SIGNATURE:
            if (!cur) { snprintf(err, errn, "patch changes function '%s', which the running program does not have; generate the patch against the running build", f->key); return -1; }
            if (!f->new_impl) { snprintf(err, errn, "patch changes function '%s' but gives no new_impl", f->key); return -1; }
            break;
        case DSU_CHANGE_ADDED:
            if (cur) { snprintf(err, errn, "patch adds function '%s', which already exists", f->key); return -1; }
            if (!f->new_impl || !f->new_slot) { snprintf(err, errn, "patch adds function '%s' without new_impl and new_slot", f->key); return -1; }
            break;
        case DSU_CHANGE_REMOVED:
            if (!cur) { snprintf(err, errn, "patch removes function '%s', which the running program does not have", f->key); return -1; }
            break;
        default:
            snprintf(err, errn, "patch function '%s' has unknown change kind %u", f->key, f->change); return -1;
        }
    }
    return 0;
}

/* ---- descriptor pointers ----
 * A descriptor's pointers were written by the loader from the patch's own
 * relocations; the ELF check bounded where relocations may write, not what
 * they write.  Before the runtime follows a pointer (strcmp of a key, a
 * call through new_impl at commit), it must point into a mapped segment
 * with the right permissions: the patch's own, or (symbols bind to the
 * first definition loaded, e.g. an earlier patch's function of the same
 * name) another loaded object's.  A corrupted patch is refused, never
 * followed. */
struct seg { const struct dsu__elf_info *info; uintptr_t bias; };
struct seg_find { uintptr_t addr; uint32_t flags; size_t room; };

static int seg_find_cb(struct dl_phdr_info *di, size_t size, void *data) {
    struct seg_find *f = data;
    (void)size;
    for (int i = 0; i < di->dlpi_phnum; i++) {
        const ElfW(Phdr) *p = &di->dlpi_phdr[i];
        uintptr_t lo = di->dlpi_addr + p->p_vaddr, hi = lo + p->p_memsz;
        if (p->p_type == PT_LOAD && f->addr >= lo && f->addr < hi && (p->p_flags & f->flags) == f->flags) {
            f->room = hi - f->addr;
            return 1;
        }
    }
    return 0;
}

/* Bytes left in the segment holding p (with `flags` all set), or 0. */
static size_t seg_room(const struct seg *sg, const void *p, uint32_t flags) {
    uintptr_t a = (uintptr_t)p;
    for (unsigned i = 0; i < sg->info->nloads; i++) {
        const struct dsu__elf_load *l = &sg->info->load[i];
        uintptr_t lo = sg->bias + (uintptr_t)l->vaddr, hi = lo + (uintptr_t)l->memsz;
        if (a >= lo && a < hi && (l->flags & flags) == flags) return hi - a;
    }
    struct seg_find f = { a, flags, 0 };
    dl_iterate_phdr(seg_find_cb, &f);
    return f.room;
}
static int ptr_ok(const struct seg *sg, const void *p, size_t len, uint32_t flags) {
    return p && seg_room(sg, p, flags) >= (len ? len : 1);
}
/* NULL, or a NUL-terminated string inside the patch's readable segments. */
static int str_ok(const struct seg *sg, const char *s) {
    if (!s) return 1;
    size_t room = seg_room(sg, s, PF_R);
    return room && memchr(s, 0, room) != NULL;
}

static int desc_ptrs_ok(const struct seg *sg, const struct dsu_patch_desc *d, char *err, size_t errn) {
    const char *bad = NULL;
    if (!ptr_ok(sg, d, sizeof *d, PF_R)) bad = "the descriptor 'dsu_patch' itself";
    else if (!str_ok(sg, d->from_build_id) || !str_ok(sg, d->to_build_id) ||
             !str_ok(sg, d->from_version) || !str_ok(sg, d->to_version)) bad = "a build id or version string";
    else if (d->nfns && !ptr_ok(sg, d->fns, (size_t)d->nfns * sizeof *d->fns, PF_R)) bad = "the function list";
    else if (d->npoints && !ptr_ok(sg, d->allowed_points, (size_t)d->npoints * sizeof(char *), PF_R)) bad = "the update point list";
    for (uint32_t i = 0; !bad && i < d->nfns; i++) {
        const struct dsu_patch_fn *f = &d->fns[i];
        if (!str_ok(sg, f->key)) bad = "a function key";
        else if (f->new_impl && !ptr_ok(sg, f->new_impl, 1, PF_R | PF_X)) bad = "a new_impl (not code)";
        else if (f->new_slot && !ptr_ok(sg, f->new_slot, sizeof(void *), PF_R | PF_W)) bad = "a new_slot (not a variable)";
    }
    for (uint32_t i = 0; !bad && i < d->npoints; i++)
        if (!str_ok(sg, d->allowed_points[i])) bad = "an update point name";
    if (!bad) return 0;
    snprintf(err, errn, "patch descriptor is corrupt: %s points outside the loaded code and data; rebuild the patch", bad);
    return -1;
}

static int frames_ptrs_ok(const struct seg *sg, const struct dsu_patch_frames *f, char *err, size_t errn) {
    const char *bad = NULL;
    if (!f) return 0;
    if (!ptr_ok(sg, f, sizeof *f, PF_R)) bad = "'dsu_patch_frames' itself";
    else if (f->abi != DSU_FRAME_ABI_VERSION) bad = "the ABI version (rebuild the patch with this dsu)";
    else if (f->nfns && !ptr_ok(sg, f->fns, (size_t)f->nfns * sizeof *f->fns, PF_R)) bad = "the function list";
    else if (f->nmaps && !ptr_ok(sg, f->maps, (size_t)f->nmaps * sizeof *f->maps, PF_R)) bad = "the map list";
    for (uint32_t i = 0; !bad && i < f->nfns; i++) {
        const struct dsu_frame_fn *x = f->fns[i];
        if (!ptr_ok(sg, x, sizeof *x, PF_R) || !str_ok(sg, x->key) || x->abi != DSU_FRAME_ABI_VERSION) bad = "a function entry or its key";
        else if (!ptr_ok(sg, x->impl, 1, PF_R | PF_X)) bad = "a function's code";
        else if (x->nsites && !ptr_ok(sg, x->sites, (size_t)x->nsites * sizeof(char *), PF_R)) bad = "a site list";
        for (uint32_t k = 0; !bad && k < x->nsites; k++) if (!str_ok(sg, x->sites[k])) bad = "a site name";
    }
    for (uint32_t i = 0; !bad && i < f->nmaps; i++)
        if (!str_ok(sg, f->maps[i].key) || !str_ok(sg, f->maps[i].from) || !str_ok(sg, f->maps[i].to)) bad = "a map entry";
    if (!bad) return 0;
    snprintf(err, errn, "patch frame map is corrupt: %s; rebuild the patch", bad);
    return -1;
}

static int data_ptrs_ok(const struct seg *sg, const struct dsu_patch_data *d,
                        const struct dsu_patch_lazy_checks *lc, char *err, size_t errn) {
    const char *bad = NULL;
    if (d && !ptr_ok(sg, d, sizeof *d, PF_R)) bad = "'dsu_patch_data' itself";
    else if (d && d->ntypes && !ptr_ok(sg, d->types, (size_t)d->ntypes * sizeof *d->types, PF_R)) bad = "the type list";
    else if (d && d->state_transform && !ptr_ok(sg, (const void *)d->state_transform, 1, PF_R | PF_X)) bad = "the state transformer";
    for (uint32_t i = 0; !bad && d && i < d->ntypes; i++) {
        const struct dsu_patch_type *t = d->types[i];
        if (!ptr_ok(sg, t, sizeof *t, PF_R) || !str_ok(sg, t->key)) { bad = "a type entry or its key"; break; }
        if (t->transform && !ptr_ok(sg, (const void *)t->transform, 1, PF_R | PF_X)) bad = "a transformer";
        else if (t->nranges && !ptr_ok(sg, t->ranges, (size_t)t->nranges * sizeof *t->ranges, PF_R)) bad = "a range list";
        else if (t->nembeds && !ptr_ok(sg, t->embeds, (size_t)t->nembeds * sizeof *t->embeds, PF_R)) bad = "an embed list";
        else if (t->lazy_stamp && !ptr_ok(sg, t->lazy_stamp, sizeof *t->lazy_stamp, PF_R | PF_W)) bad = "a lazy stamp";
        for (uint32_t k = 0; !bad && k < t->nranges; k++) if (!str_ok(sg, t->ranges[k].what)) bad = "a range name";
        for (uint32_t k = 0; !bad && k < t->nembeds; k++) if (!str_ok(sg, t->embeds[k].container_key)) bad = "an embed's container key";
    }
    if (!bad && lc && !ptr_ok(sg, lc, sizeof *lc, PF_R)) bad = "'dsu_patch_lazy_checks' itself";
    else if (!bad && lc && lc->n && !ptr_ok(sg, lc->checks, (size_t)lc->n * sizeof *lc->checks, PF_R)) bad = "the lazy check list";
    for (uint32_t i = 0; !bad && lc && i < lc->n; i++)
        if (!str_ok(sg, lc->checks[i].key) || (lc->checks[i].stamp && !ptr_ok(sg, lc->checks[i].stamp, sizeof(uint32_t), PF_R | PF_W)))
            bad = "a lazy check entry";
    if (!bad) return 0;
    snprintf(err, errn, "patch data descriptor is corrupt: %s points outside the loaded code and data; rebuild the patch", bad);
    return -1;
}

/* Contract: see internal.h. */
int dsu__stage_precheck(struct dsu__json *j, const struct dsu__request *r) {
    if (!find_applied(r->id)) return 0;
    stage_refused(j, "patch id '%s' was already applied; give each patch a new id", r->id);
    return -1;
}

/* Contract: see internal.h. */
void dsu__stage_read(struct dsu__stage_job *job) {
    job->err[0] = 0;
    job->failed = dsu__patch_read(job->req.path, job->req.sha256, &job->bytes, &job->len,
                                  &job->info, job->err, sizeof job->err) < 0;
}

void dsu__req_stage(struct dsu__json *j, const struct dsu__request *r) {
    struct dsu__stage_job *job = calloc(1, sizeof *job);
    if (!job) { stage_refused(j, "out of memory; retry"); return; }
    job->req = *r;
    if (dsu__stage_precheck(j, r) == 0) {
        dsu__stage_read(job);
        dsu__stage_finish(j, job);
    }
    free(job);
}

/* Contract: see internal.h. */
void dsu__stage_finish(struct dsu__json *j, struct dsu__stage_job *job) {
    const struct dsu__request *r = &job->req;
    char err[1024];
    unsigned char *bytes = job->bytes;
    size_t len = job->len;
    job->bytes = NULL;
    if (job->failed) { stage_refused(j, "%s", job->err); return; }
    /* Checked again: another client's STAGE+COMMIT may have applied this
     * id while the file was being read. */
    if (dsu__stage_precheck(j, r) < 0) { free(bytes); return; }
    /* Load the verified bytes, not the path: the file may change after we
     * read it.  The memfd is sealed, so what dlopen maps is exactly what
     * was hashed and validated. */
    char name[160];
    snprintf(name, sizeof name, "dsu-patch-%s", r->id);
    int mfd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0 || write_all(mfd, bytes, len) < 0 ||
        fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        int e = errno;
        if (mfd >= 0) close(mfd);
        free(bytes);
        stage_refused(j, "cannot create a sealed in-memory copy of the patch: %s; retry", strerror(e));
        return;
    }
    char fdpath[64];
    snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", mfd);
    dlerror();
    void *h = dlopen(fdpath, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        const char *e = dlerror();
        close(mfd);
        free(bytes);
        stage_refused(j, "cannot load patch '%s': %s; the patch must only reference symbols the running program (linked -rdynamic) or earlier patches define",
                      r->path, e ? e : "unknown dlopen error");
        return;
    }
    /* From here on the object stays loaded forever (its constructors may
     * have run) and the memfd stays open: closing it would let a later
     * patch reuse the same /proc/self/fd/N name, which dlopen would take
     * for the already-loaded object. */
    const struct dsu_patch_desc *d = dlsym(h, "dsu_patch");
    if (!d) { free(bytes); stage_refused(j, "patch '%s' does not define the descriptor 'dsu_patch'; generate it with the patch generator", r->path); return; }
    struct link_map *lm = NULL;
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm) { free(bytes); stage_refused(j, "cannot find where patch '%s' was loaded", r->path); return; }
    struct seg sg = { &job->info, (uintptr_t)lm->l_addr };
    lm = NULL;
    if (desc_ptrs_ok(&sg, d, err, sizeof err) < 0 || check_desc(d, err, sizeof err) < 0) { free(bytes); stage_refused(j, "%s", err); return; }
    /* Optional data descriptor; only this object's own (dlsym on a handle
     * would also search the patch's dependencies). */
    const struct dsu_patch_data *data = dlsym(h, "dsu_patch_data");
    Dl_info di;
    if (data && (!dladdr(data, &di) || dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm ||
                 (uintptr_t)di.dli_fbase != (uintptr_t)lm->l_addr))
        data = NULL;
    lm = NULL;
    const struct dsu_patch_lazy_checks *lchecks = dlsym(h, "dsu_patch_lazy_checks");
    if (lchecks && (!dladdr(lchecks, &di) || dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm ||
                    (uintptr_t)di.dli_fbase != (uintptr_t)lm->l_addr))
        lchecks = NULL;
    lm = NULL;
    if (data_ptrs_ok(&sg, data, lchecks, err, sizeof err) < 0) { free(bytes); stage_refused(j, "%s", err); return; }
    /* Optional frame map (ABI.md section 11): this object's own. */
    const struct dsu_patch_frames *frames = dlsym(h, "dsu_patch_frames");
    if (frames && (!dladdr(frames, &di) || dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm ||
                   (uintptr_t)di.dli_fbase != (uintptr_t)lm->l_addr))
        frames = NULL;
    lm = NULL;
    if (frames_ptrs_ok(&sg, frames, err, sizeof err) < 0) { free(bytes); stage_refused(j, "%s", err); return; }
    /* Optional when-condition (ABI.md section 7): code of this object only. */
    int (*when)(void) = (int (*)(void))dlsym(h, "dsu_patch_when");
    const char *when_text = dlsym(h, "dsu_patch_when_text");
    if (when && !ptr_ok(&sg, (const void *)when, 1, PF_X)) { free(bytes); stage_refused(j, "the patch's when-condition 'dsu_patch_when' is not code of the patch"); return; }
    if (when_text && !str_ok(&sg, when_text)) when_text = NULL;
    if (dsu__data_check(data, err, sizeof err) < 0) { free(bytes); stage_refused(j, "%s", err); return; }
    if (dsu__lazy_checks_check(lchecks, data, err, sizeof err) < 0) { free(bytes); stage_refused(j, "%s", err); return; }
    if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm) {
        const char *se;
        if (dsu__symtab_add(r->id, bytes, len, (uintptr_t)lm->l_addr, &se) < 0)
            fprintf(stderr, "dsu: no symbols for patch %s (%s); activeness checks "
                    "cannot see its functions\n", r->id, se);
    }
    free(bytes);
    staged.present = 1;
    snprintf(staged.id, sizeof staged.id, "%s", r->id);
    staged.desc = d;
    staged.data = data;
    staged.lazy_checks = lchecks;
    staged.when = when;
    staged.when_text = when_text;
    staged.frames = frames;
    dsu__json_obj(j);
    dsu__json_key(j, "ok"); dsu__json_bool(j, 1);
    dsu__json_key(j, "staged"); dsu__json_str(j, r->id);
    dsu__json_key(j, "fromBuildId"); dsu__json_str(j, d->from_build_id);
    dsu__json_key(j, "toBuildId"); dsu__json_str(j, d->to_build_id);
    dsu__json_key(j, "functions"); dsu__json_int(j, d->nfns);
    dsu__json_key(j, "types"); dsu__json_int(j, data ? data->ntypes : 0);
    dsu__json_obj_end(j);
}

/* ---- the update protocol ---- */

struct plan {
    struct change *ch; size_t nch;
    void **active; const char **active_key; size_t nactive;
    const char *const *allowed; uint32_t nallowed;
    const struct dsu_patch_data *data;
    const struct dsu_patch_lazy_checks *lazy_checks;
    int (*when)(void);
    const char *when_text;
    const struct dsu_patch_frames *frames;  /* NULL: active functions refuse */
    int frames_backwards;                    /* a rollback: the map read from new names to old */
};
struct result {
    char reasons[8][512]; int nreasons;
    int unwinds;            /* threads asked to unwind (frame mapping) */
    uint64_t pause_us;
    char point[128];
    size_t instances; uint64_t transform_ns; uint32_t lazy_types;
};

static void add_reason(struct result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void add_reason(struct result *res, const char *fmt, ...) {
    if (res->nreasons >= 8) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->reasons[res->nreasons], sizeof res->reasons[0], fmt, ap);
    va_end(ap);
    for (int i = 0; i < res->nreasons; i++)
        if (strcmp(res->reasons[i], res->reasons[res->nreasons]) == 0) return;
    res->nreasons++;
}

static int registered_locked(pid_t tid) {
    for (struct dsu__thread *t = dsu__threads; t; t = t->next)
        if (__atomic_load_n(&t->tid, __ATOMIC_ACQUIRE) == tid) return 1;
    return 0;
}

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define DSU__SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define DSU__SANITIZER 1
#endif
#endif

/* Sanitizer runtimes run their own helper threads (TSan's background
 * thread), created behind pthread_create's back before the control thread
 * starts and never running program code.  Only in sanitizer builds, the
 * unregistered threads that exist when the control thread starts are
 * recorded here and not counted as unknown. */
static pid_t foreign[16];
static int nforeign;

static int registered_locked(pid_t tid);

void dsu__note_foreign_threads(void) {
#ifdef DSU__SANITIZER
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    if (!d) return;
    pthread_mutex_lock(&dsu__reg_lock);
    while ((e = readdir(d)) && n < 16) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid > 0 && !registered_locked(tid)) foreign[n++] = tid;
    }
    pthread_mutex_unlock(&dsu__reg_lock);
    closedir(d);
    /* Published for the control thread, which is already running. */
    __atomic_store_n(&nforeign, n, __ATOMIC_RELEASE);
#endif
}

static int is_foreign(pid_t tid) {
    int n = __atomic_load_n(&nforeign, __ATOMIC_ACQUIRE);
    for (int i = 0; i < n; i++) if (foreign[i] == tid) return 1;
    return 0;
}

/* Finds a live thread the registry does not know.  Returns its tid or 0. */
static pid_t unknown_thread(void) {
    DIR *d = opendir("/proc/self/task");
    pid_t found = 0;
    if (!d) return 0;
    struct dirent *e;
    pthread_mutex_lock(&dsu__reg_lock);
    while ((e = readdir(d))) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid <= 0 || tid == __atomic_load_n(&dsu__control_tid, __ATOMIC_ACQUIRE) ||
            tid == __atomic_load_n(&dsu__worker_tid, __ATOMIC_ACQUIRE) || is_foreign(tid)) continue;
        if (!registered_locked(tid)) { found = tid; break; }
    }
    pthread_mutex_unlock(&dsu__reg_lock);
    closedir(d);
    return found;
}

/* One scan of the registry for the current round.  Signals BLOCKED
 * threads whose stack we do not have yet.  Returns 1 when every thread is
 * quiescent; otherwise, if want_reasons, records why not in res (reading
 * thread names from /proc is too slow to do while threads are held). */
static int scan_quiescent(unsigned gen, struct result *res, int want_reasons) {
    int all = 1;
    uint64_t now = dsu__now_ns();
    res->nreasons = 0;
    pthread_mutex_lock(&dsu__reg_lock);
    for (struct dsu__thread *t = dsu__threads; t; t = t->next) {
        pid_t tid = __atomic_load_n(&t->tid, __ATOMIC_ACQUIRE);
        if (!tid) { all = 0; if (want_reasons) add_reason(res, "a thread was still starting"); continue; }
        int s = __atomic_load_n(&t->state, __ATOMIC_SEQ_CST);
        int txn = dsu__skip_txn ? 0 : __atomic_load_n(&t->txn, __ATOMIC_RELAXED);
        if (s == DSU__PARKED) continue;
        char name[32];
        if (s == DSU__BLOCKED && txn == 0 && !dsu__point_allowed(__atomic_load_n(&t->block_name, __ATOMIC_RELAXED))) {
            /* not an allowed point: wait for the thread to leave it and reach one */
            all = 0;
            if (!want_reasons) continue;
            dsu__thread_name(tid, name, sizeof name);
            add_reason(res, "thread %d '%s' is blocked in %s, which this patch does not allow as an update point",
                       (int)tid, name, __atomic_load_n(&t->block_name, __ATOMIC_RELAXED));
            continue;
        }
        if (s == DSU__BLOCKED && txn == 0) {
            if (__atomic_load_n(&t->sig_have, __ATOMIC_ACQUIRE) == gen) continue;
            if (t->sig_want != gen || now - t->sig_sent_ns >= RESIGNAL_NS) {
                __atomic_store_n(&t->sig_want, gen, __ATOMIC_RELEASE);
                t->sig_sent_ns = now;
                syscall(SYS_tgkill, getpid(), tid, dsu__signo);
            }
            all = 0;
            if (!want_reasons) continue;
            dsu__thread_name(tid, name, sizeof name);
            add_reason(res, "thread %d '%s' is blocked in %s but did not answer the stack-capture signal %d",
                       (int)tid, name, __atomic_load_n(&t->block_name, __ATOMIC_RELAXED), dsu__signo);
            continue;
        }
        all = 0;
        if (!want_reasons) continue;
        dsu__thread_name(tid, name, sizeof name);
        const char *passed = __atomic_load_n(&t->passed_point, __ATOMIC_RELAXED);
        if (txn > 0)
            add_reason(res, "thread %d '%s' is inside a transaction (DSU_TXN_BEGIN without DSU_TXN_END)", (int)tid, name);
        else if (passed)
            add_reason(res, "thread %d '%s' passed update point '%s', which this patch does not allow, and has not reached one it allows",
                       (int)tid, name, passed);
        else
            add_reason(res, "thread %d '%s' did not reach an update point or blocking call", (int)tid, name);
    }
    pthread_mutex_unlock(&dsu__reg_lock);
    return all;
}

/* Whether code the plan replaces is on this stack. */
static int active_on_stack(const struct plan *p, void *const *frames, int n) {
    for (int i = 0; i < n; i++) {
        const struct dsu__sym *sym = dsu__symtab_lookup((uintptr_t)frames[i] - 1);
        for (size_t a = 0; sym && a < p->nactive; a++)
            if (sym->base == (uintptr_t)p->active[a]) return 1;
    }
    return 0;
}

/* Whether the plan's new code for `old` (an implementation it replaces)
 * can rebuild a frame: resume code in the patch, or already registered. */
static int new_code_resumable(const struct plan *p, uintptr_t old) {
    for (size_t i = 0; i < p->nch; i++) {
        if ((uintptr_t)p->ch[i].old != old) continue;
        uintptr_t nw = (uintptr_t)p->ch[i].new_;
        if (dsu__frames_lookup(nw)) return 1;
        for (uint32_t k = 0; p->frames && k < p->frames->nfns; k++)
            if ((uintptr_t)p->frames->fns[k]->impl == nw) return 1;
        return 0;
    }
    return 1;   /* not replaced by this plan */
}

static int frames_rebuildable(const struct plan *p, void *const *frames, int n, char *why, size_t whyn) {
    if (!dsu__frames_mappable(frames, n, why, whyn)) return 0;
    for (int i = 0; i < n; i++) {
        const struct dsu__sym *sym = dsu__symtab_lookup((uintptr_t)frames[i] - 1);
        if (sym && !new_code_resumable(p, sym->base)) {
            const char *k = dsu__key_of_impl(sym->base);
            snprintf(why, whyn, "the patch's new '%s' has no resume code (it was built without frame mapping)", k ? k : sym->name);
            return 0;
        }
    }
    return 1;
}

/* With every thread quiescent (caller holds reg_lock): checks allowed
 * update points and activeness.  Returns 1 if the change is safe. */
static int check_safe_locked(const struct plan *p, struct result *res) {
    int safe = 1;
    res->nreasons = 0;
    for (struct dsu__thread *t = dsu__threads; t; t = t->next) {
        int s = __atomic_load_n(&t->state, __ATOMIC_SEQ_CST);
        const char *point = s == DSU__PARKED ? __atomic_load_n(&t->last_point, __ATOMIC_RELAXED)
                                             : __atomic_load_n(&t->block_name, __ATOMIC_RELAXED);
        char name[32];
        if (p->nallowed && point) {
            uint32_t k;
            for (k = 0; k < p->nallowed; k++)
                if (p->allowed[k] && strcmp(p->allowed[k], point) == 0) break;
            if (k == p->nallowed) {
                dsu__thread_name(__atomic_load_n(&t->tid, __ATOMIC_ACQUIRE), name, sizeof name);
                add_reason(res, "thread %d '%s' is at update point '%s', which this patch does not allow",
                           (int)__atomic_load_n(&t->tid, __ATOMIC_ACQUIRE), name, point);
                safe = 0;
            }
        }
        void **frames = s == DSU__PARKED ? t->park_stack : t->sig_stack;
        int n = s == DSU__PARKED ? t->park_n : t->sig_n;
        t->want_unwind = 0;
        if (!active_on_stack(p, frames, n)) continue;
        /* Replaced code is active here: the thread's frames are rebuilt in
         * the new code when the whole stack can be unwound and every
         * replaced function on it has resume code in the patch. */
        char why[256];
        /* Inside a no-resume region (dsu.h dsu__nomap; stable: the owner is
         * parked or blocked) the frames cannot be rebuilt: the round is
         * unsafe and retried until the thread stops outside the region. */
        int nomap = t->nomap ? __atomic_load_n(t->nomap, __ATOMIC_RELAXED) : 0;
        if (p->frames && nomap > 0)
            snprintf(why, sizeof why, "the thread is inside a call that cannot be resumed "
                     "(a call nested in an expression or condition; dsu check lists them)");
        else if (p->frames && frames_rebuildable(p, frames, n, why, sizeof why)) {
            t->want_unwind = 1;
            continue;
        }
        /* DSU_UNSAFE_SKIP_CHECKS=activeness (the safety evaluation): frames
         * that can be rebuilt are (as above); the others resume old code. */
        if (dsu__skip_activeness) continue;
        for (int i = 0; i < n; i++) {
            const struct dsu__sym *sym = dsu__symtab_lookup((uintptr_t)frames[i] - 1);
            if (!sym) continue;
            for (size_t a = 0; a < p->nactive; a++) {
                if (sym->base != (uintptr_t)p->active[a]) continue;
                dsu__thread_name(__atomic_load_n(&t->tid, __ATOMIC_ACQUIRE), name, sizeof name);
                if (p->frames)
                    add_reason(res, "function '%s' (being replaced) is active on thread %d '%s' and its frames cannot be rebuilt: %s",
                               p->active_key[a], (int)__atomic_load_n(&t->tid, __ATOMIC_ACQUIRE), name, why);
                else
                    add_reason(res, "function '%s' (being replaced) is active on thread %d '%s'",
                               p->active_key[a], (int)__atomic_load_n(&t->tid, __ATOMIC_ACQUIRE), name);
                safe = 0;
            }
        }
    }
    /* Every program thread is parked or blocked: the patch's condition may
     * read program state without racing with it. */
    if (safe && p->when && !p->when()) {
        add_reason(res, "the patch's when-condition (%s) is false", p->when_text ? p->when_text : "dsu_patch_when");
        safe = 0;
    }
    return safe;
}

/* Ends the round: parked threads go back to work.  Their state is set to
 * RUNNING here, not by the threads when they wake up: otherwise a next
 * round could count a thread that is about to run program code as still
 * PARKED (with a stale stack). */
static void release_round(int unwinding) {
    pthread_mutex_lock(&dsu__reg_lock);
    pthread_mutex_lock(&dsu__park_lock);
    /* With threads to unwind, points and wrappers keep taking their slow
     * path until the last one did (frames.c resets it). */
    __atomic_store_n(&dsu__pending, unwinding && dsu__frames_outstanding() ? DSU__PENDING_UNWIND : 0,
                     __ATOMIC_SEQ_CST);
    dsu__epoch++;
    for (struct dsu__thread *t = dsu__threads; t; t = t->next) {
        if (__atomic_load_n(&t->state, __ATOMIC_SEQ_CST) == DSU__PARKED)
            __atomic_store_n(&t->state, DSU__RUNNING, __ATOMIC_SEQ_CST);
        __atomic_store_n(&t->passed_point, NULL, __ATOMIC_RELAXED);  /* a reason of this round only */
    }
    pthread_cond_broadcast(&dsu__park_cond);
    pthread_mutex_unlock(&dsu__park_lock);
    pthread_mutex_unlock(&dsu__reg_lock);
}

/* Threads asked to unwind that wait in a wrapped call: interrupt the call
 * (the signal handler makes it return EINTR, which the instrumented code
 * turns into an unwind; the call is made again in the new code). */
static void interrupt_unwinding(void) {
    pthread_mutex_lock(&dsu__reg_lock);
    for (struct dsu__thread *t = dsu__threads; t; t = t->next)
        if (__atomic_load_n(&t->unwind, __ATOMIC_SEQ_CST) &&
            __atomic_load_n(&t->state, __ATOMIC_SEQ_CST) == DSU__BLOCKED)
            syscall(SYS_tgkill, getpid(), __atomic_load_n(&t->tid, __ATOMIC_ACQUIRE), dsu__signo);
    pthread_mutex_unlock(&dsu__reg_lock);
}

/* Wait for the coordinator: parkers broadcast coord_cond; BLOCKED threads'
 * signal handlers cannot, so poll every millisecond as well. */
static void coord_wait(uint64_t deadline, int iter) {
    struct timespec ts;
    /* Short waits first: stack-capture signals are usually answered within
     * tens of microseconds, and parked threads are waiting on us. */
    uint64_t now = dsu__now_ns(), until = now + (iter < 20 ? 100000u : 1000000u);
    if (until > deadline) until = deadline;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t d = until > now ? until - now : 0;
    ts.tv_nsec += (long)d;
    while (ts.tv_nsec >= 1000000000L) { ts.tv_nsec -= 1000000000L; ts.tv_sec++; }
    pthread_mutex_lock(&dsu__park_lock);
    pthread_cond_timedwait(&dsu__coord_cond, &dsu__park_lock, &ts);
    pthread_mutex_unlock(&dsu__park_lock);
}

enum outcome { APPLIED, REFUSED, TIMEOUT, FAILED };
static const char *outcome_name[] = { "applied", "refused", "timeout", "failed" };

/* Runs rounds until the change is applied or the deadline passes.  On
 * timeout the reasons are those of the last round that reached quiescence
 * but was unsafe (they name the active function or disallowed point), else
 * why the threads did not become quiescent. */
static const char *const *round_allowed;   /* atomic; NULL: any point */
static uint32_t round_nallowed;

int dsu__point_allowed(const char *point) {
    const char *const *a = __atomic_load_n(&round_allowed, __ATOMIC_ACQUIRE);
    if (!a || !point) return 1;
    uint32_t n = __atomic_load_n(&round_nallowed, __ATOMIC_RELAXED);
    for (uint32_t k = 0; k < n; k++)
        if (a[k] && strcmp(a[k], point) == 0) return 1;
    return 0;
}

static enum outcome run_rounds(const struct plan *p, long timeout_ms, struct result *res);

/* Publishes the plan's allowed points for the threads (before any round
 * raises dsu__pending) while the update runs. */
static enum outcome run_update(const struct plan *p, long timeout_ms, struct result *res) {
    __atomic_store_n(&round_nallowed, p->nallowed, __ATOMIC_RELAXED);
    __atomic_store_n(&round_allowed, p->nallowed ? p->allowed : NULL, __ATOMIC_RELEASE);
    enum outcome o = run_rounds(p, timeout_ms, res);
    __atomic_store_n(&round_allowed, NULL, __ATOMIC_RELEASE);
    return o;
}

static enum outcome run_rounds(const struct plan *p, long timeout_ms, struct result *res) {
    uint64_t deadline = dsu__now_ns() + (uint64_t)timeout_ms * 1000000u;
    static struct result unsafe;
    int had_unsafe = 0;
    for (;;) {
        unsigned gen = ++round_gen;
        pthread_mutex_lock(&dsu__park_lock);
        __atomic_store_n(&dsu__pending, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&dsu__park_lock);
        int quiet = 0;
        uint64_t unknown_since = 0;
        for (int iter = 0;; iter++) {
            int last = dsu__now_ns() >= deadline;
            if (scan_quiescent(gen, res, last)) {
                pid_t u = unknown_thread();
                if (!u) { quiet = 1; break; }
                /* A thread that just deregistered may linger in
                 * /proc/self/task for a moment: look again before refusing. */
                if (!unknown_since) unknown_since = dsu__now_ns();
                if (dsu__now_ns() - unknown_since > 50u * 1000000u || last) {
                    char name[32];
                    dsu__thread_name(u, name, sizeof name);
                    res->nreasons = 0;
                    add_reason(res, "thread %d '%s' is not known to the runtime (created before the runtime started or not via pthread_create); it cannot be made quiescent",
                               (int)u, name);
                    release_round(0);
                    return REFUSED;
                }
            }
            if (last) break;
            /* A round still waiting after ~2 ms waits for a thread that is
             * slow to get quiescent (maybe until the deadline): answer
             * HELLO/STATUS every ~16 ms meanwhile (tens of microseconds). */
            if (iter >= 20 && iter % 16 == 0) dsu__serve_quick();
            coord_wait(deadline, iter);
        }
        if (getenv("DSU_DEBUG"))
            fprintf(stderr, "dsu: round %u quiet=%d reasons=%d first=%s\n", gen, quiet,
                    res->nreasons, res->nreasons ? res->reasons[0] : "");
        if (quiet) {
            int safe;
            pthread_mutex_lock(&dsu__reg_lock);
            safe = check_safe_locked(p, res);
            if (safe && p->data) {
                /* Every program thread is parked or blocked: transform the
                 * data before any new code can run.  A failure changes
                 * nothing and refuses the update (no retry: it would fail
                 * the same way). */
                char err[1024];
                struct dsu__data_stats st;
                if (dsu__data_apply(p->data, staged.id, &st, err, sizeof err) < 0) {
                    pthread_mutex_unlock(&dsu__reg_lock);
                    release_round(0);
                    res->nreasons = 0;
                    add_reason(res, "%s", err);
                    return REFUSED;
                }
                res->instances = st.instances;
                res->transform_ns = st.ns;
                res->lazy_types = st.lazy_types;
            }
            /* the new code's tag checks compare against the current tags */
            if (safe) dsu__lazy_checks_set(p->lazy_checks);
            if (safe) {
                uint64_t now = dsu__now_ns(), longest = 0, latest = 0;
                const char *point = NULL;
                for (size_t i = 0; i < p->nch; i++)
                    __atomic_store_n(p->ch[i].slot, p->ch[i].new_, __ATOMIC_RELEASE);
                res->unwinds = 0;
                for (struct dsu__thread *t = dsu__threads; t; t = t->next)
                    if (t->want_unwind) {
                        if (!res->unwinds++) dsu__frames_commit(p->frames, p->frames_backwards);
                        dsu__frames_request(t);
                    }
                for (struct dsu__thread *t = dsu__threads; t; t = t->next) {
                    int s = __atomic_load_n(&t->state, __ATOMIC_SEQ_CST);
                    if (s == DSU__PARKED) {
                        if (now - t->park_start_ns > longest) longest = now - t->park_start_ns;
                        if (t->park_start_ns >= latest) { latest = t->park_start_ns; point = t->last_point; }
                    } else if (!point) point = __atomic_load_n(&t->block_name, __ATOMIC_RELAXED);
                }
                /* blocked threads are held too while the data is transformed */
                if (res->transform_ns > longest) longest = res->transform_ns;
                res->pause_us = longest / 1000u;
                snprintf(res->point, sizeof res->point, "%s", point ? point : "");
            }
            pthread_mutex_unlock(&dsu__reg_lock);
            release_round(safe && res->unwinds);
            if (safe && res->unwinds) interrupt_unwinding();
            if (safe) return APPLIED;
            unsafe = *res;
            had_unsafe = 1;
        } else {
            release_round(0);
        }
        uint64_t now = dsu__now_ns();
        if (now >= deadline) {
            if (had_unsafe) *res = unsafe;
            return TIMEOUT;
        }
        uint64_t nap = deadline - now < RETRY_PAUSE_NS ? deadline - now : RETRY_PAUSE_NS;
        dsu__serve_quick();             /* threads run now: answer HELLO/STATUS */
        uint64_t spent = dsu__now_ns() - now;
        struct timespec ts = { 0, (long)(spent < nap ? nap - spent : 0) };
        nanosleep(&ts, NULL);
    }
}

static void reply_outcome(struct dsu__json *j, enum outcome o, const struct result *res,
                          const char *id) {
    dsu__json_obj(j);
    dsu__json_key(j, "ok"); dsu__json_bool(j, o == APPLIED);
    dsu__json_key(j, "outcome"); dsu__json_str(j, outcome_name[o]);
    if (id) { dsu__json_key(j, "patch"); dsu__json_str(j, id); }
    dsu__json_key(j, "pauseUs"); dsu__json_int(j, o == APPLIED ? (long long)res->pause_us : 0);
    dsu__json_key(j, "updatePoint");
    if (o == APPLIED) dsu__json_str(j, res->point); else dsu__json_null(j);
    dsu__json_key(j, "buildId"); dsu__json_str(j, dsu_current_build_id());
    if (o == APPLIED && (res->instances || res->transform_ns)) {
        dsu__json_key(j, "instances"); dsu__json_int(j, (long long)res->instances);
        dsu__json_key(j, "transformUs"); dsu__json_int(j, (long long)(res->transform_ns / 1000u));
        /* lazily transformed types: their heap instances wait for their first touch */
        if (res->lazy_types) { dsu__json_key(j, "lazyTypes"); dsu__json_int(j, res->lazy_types); }
    }
    if (o == APPLIED && res->unwinds) {
        /* Wait (briefly) for the threads to rebuild their frames, so the
         * reply can say how long it took; a thread still inside a call
         * that ignores the signal is reported as not done. */
        uint64_t until = dsu__now_ns() + 1000u * 1000000u;
        while (dsu__frames_outstanding() && dsu__now_ns() < until) {
            struct timespec ts = { 0, 50000 };
            nanosleep(&ts, NULL);
        }
        dsu__json_key(j, "frames");
        dsu__frames_report(j);
    }
    dsu__json_key(j, "reasons"); dsu__json_arr(j);
    for (int i = 0; i < res->nreasons && o != APPLIED; i++) dsu__json_str(j, res->reasons[i]);
    dsu__json_arr_end(j);
    if (o != APPLIED) {
        char msg[1200];
        snprintf(msg, sizeof msg, "update %s: %s", outcome_name[o],
                 res->nreasons ? res->reasons[0] : "no reason recorded");
        dsu__json_key(j, "error"); dsu__json_str(j, msg);
    }
    dsu__json_obj_end(j);
}

static void refuse_now(struct dsu__json *j, const char *msg, const char *id) {
    struct result res;
    memset(&res, 0, sizeof res);
    snprintf(res.reasons[0], sizeof res.reasons[0], "%.500s", msg);
    res.nreasons = 1;
    reply_outcome(j, REFUSED, &res, id);
}

void dsu__req_commit(struct dsu__json *j, const struct dsu__request *r) {
    char err[1024];
    if (!staged.present) { refuse_now(j, "nothing is staged; send STAGE <patch.so> <sha256> <patch-id> first", NULL); return; }
    const struct dsu_patch_desc *d = staged.desc;
    /* The state may have changed since STAGE (e.g. a ROLLBACK). */
    if (check_desc(d, err, sizeof err) < 0) { refuse_now(j, err, staged.id); return; }
    if (dsu__data_check(staged.data, err, sizeof err) < 0) { refuse_now(j, err, staged.id); return; }
    if (dsu__lazy_checks_check(staged.lazy_checks, staged.data, err, sizeof err) < 0) { refuse_now(j, err, staged.id); return; }
    if (nhist == caphist) {
        size_t cap = caphist ? caphist * 2 : 8;
        struct applied *n = realloc(hist, cap * sizeof *n);
        if (!n) { refuse_now(j, "out of memory", staged.id); return; }
        hist = n; caphist = cap;
    }
    struct plan p;
    memset(&p, 0, sizeof p);
    p.ch = calloc(d->nfns + 1, sizeof *p.ch);
    p.active = calloc(d->nfns + 1, sizeof *p.active);
    p.active_key = calloc(d->nfns + 1, sizeof *p.active_key);
    void **undo_active = calloc(d->nfns + 1, sizeof *undo_active);
    int *removed = calloc(d->nfns + 1, sizeof *removed);
    size_t nundo = 0, nremoved = 0;
    if (!p.ch || !p.active || !p.active_key || !undo_active || !removed) {
        free(p.ch); free(p.active); free(p.active_key); free(undo_active); free(removed);
        refuse_now(j, "out of memory", staged.id);
        return;
    }
    for (uint32_t i = 0; i < d->nfns; i++) {
        const struct dsu_patch_fn *f = &d->fns[i];
        struct fn *cur = find_fn(f->key);
        if (f->change == DSU_CHANGE_BODY || f->change == DSU_CHANGE_SIGNATURE) {
            void *old = __atomic_load_n(cur->slot, __ATOMIC_ACQUIRE);
            p.ch[p.nch++] = (struct change){ cur->slot, old, f->new_impl };
            p.active[p.nactive] = old;          /* current code, maybe an earlier patch's */
            p.active_key[p.nactive++] = f->key;
            undo_active[nundo++] = f->new_impl;
        } else if (f->change == DSU_CHANGE_ADDED) {
            undo_active[nundo++] = f->new_impl;
        } else if (f->change == DSU_CHANGE_REMOVED) {
            removed[nremoved++] = (int)(cur - fns);
        }
    }
    p.allowed = d->allowed_points;
    p.nallowed = d->allowed_points ? d->npoints : 0;
    p.data = staged.data;
    p.lazy_checks = staged.lazy_checks;
    p.when = staged.when;
    p.when_text = staged.when_text;
    p.frames = staged.frames;
    struct result res;
    memset(&res, 0, sizeof res);
    dsu__data_reserve(p.data);          /* outside the pause */
    enum outcome o = run_update(&p, r->timeout_ms, &res);
    dsu__data_release();
    free(p.active); free(p.active_key);
    if (o != APPLIED) {
        free(p.ch); free(undo_active); free(removed);
        reply_outcome(j, o, &res, staged.id);
        return;
    }
    struct applied *a = &hist[nhist++];
    memset(a, 0, sizeof *a);
    snprintf(a->id, sizeof a->id, "%s", staged.id);
    a->desc = d;
    a->data = staged.data;
    a->instances = res.instances;
    a->at_ms = dsu__wall_ms();
    a->pause_us = res.pause_us;
    snprintf(a->point, sizeof a->point, "%s", res.point);
    a->ch = p.ch; a->nch = p.nch;
    a->frames = staged.frames;
    a->active = undo_active; a->nactive = nundo;
    a->nfns_before = nfns;
    a->removed_idx = removed; a->nremoved = nremoved;
    for (size_t i = 0; i < nremoved; i++) fns[removed[i]].removed = 1;
    for (uint32_t i = 0; i < d->nfns; i++)
        if (d->fns[i].change == DSU_CHANGE_ADDED)
            add_fn(d->fns[i].key, d->fns[i].new_slot, a->id);
    __atomic_store_n(&cur_build, d->to_build_id, __ATOMIC_RELEASE);
    staged.present = 0;
    reply_outcome(j, APPLIED, &res, a->id);
}

void dsu__req_rollback(struct dsu__json *j, const struct dsu__request *r) {
    if (nhist == 0) { refuse_now(j, "no patch has been applied; nothing to roll back", NULL); return; }
    struct applied *a = &hist[nhist - 1];
    if (a->data && a->data->ntypes) {
        char msg[512];
        snprintf(msg, sizeof msg, "patch '%s' transformed the layout of %u type(s) (e.g. '%s'); data transformations have no inverse, so it cannot be rolled back; apply a patch to the version you want instead",
                 a->id, a->data->ntypes, a->data->types[0] ? a->data->types[0]->key : "?");
        refuse_now(j, msg, a->id);
        return;
    }
    struct plan p;
    memset(&p, 0, sizeof p);
    p.ch = calloc(a->nch + 1, sizeof *p.ch);
    p.active_key = calloc(a->nactive + 1, sizeof *p.active_key);
    if (!p.ch || !p.active_key) { free(p.ch); free(p.active_key); refuse_now(j, "out of memory", a->id); return; }
    for (size_t i = 0; i < a->nch; i++)
        p.ch[p.nch++] = (struct change){ a->ch[i].slot, a->ch[i].new_, a->ch[i].old };
    p.active = a->active;
    p.nactive = a->nactive;
    for (size_t i = 0; i < a->nactive; i++) {
        const char *k = "?";
        for (uint32_t f = 0; f < a->desc->nfns; f++)
            if (a->desc->fns[f].new_impl == a->active[i]) k = a->desc->fns[f].key;
        p.active_key[i] = k;
    }
    /* Frames are rebuilt in the restored code: sites and locals the patch renamed get their old
     * names back (its map read backwards); the rest keep theirs. */
    p.frames = a->frames ? a->frames : &identity_frames;
    p.frames_backwards = 1;
    struct result res;
    memset(&res, 0, sizeof res);
    enum outcome o = run_update(&p, r->timeout_ms, &res);
    free(p.ch); free(p.active_key);
    if (o == APPLIED) {
        for (size_t i = 0; i < a->nremoved; i++) fns[a->removed_idx[i]].removed = 0;
        nfns = a->nfns_before;          /* forget the functions it added */
        __atomic_store_n(&cur_build, nhist > 1 ? hist[nhist - 2].desc->to_build_id : NULL,
                         __ATOMIC_RELEASE);
        char id[128];
        snprintf(id, sizeof id, "%s", a->id);
        free(a->ch); free(a->active); free(a->removed_idx);
        nhist--;
        reply_outcome(j, APPLIED, &res, id);
        return;
    }
    reply_outcome(j, o, &res, a->id);
}

/* ---- STACKS ---- */

static void json_frames(struct dsu__json *j, void **frames, int n) {
    dsu__json_arr(j);
    for (int i = 0; i < n; i++) {
        uintptr_t pc = (uintptr_t)frames[i];
        const struct dsu__sym *s = dsu__symtab_lookup(pc - 1);
        const char *key = s ? dsu__key_of_impl(s->base) : NULL;
        char addr[32];
        snprintf(addr, sizeof addr, "0x%lx", (unsigned long)pc);
        dsu__json_obj(j);
        dsu__json_key(j, "pc"); dsu__json_str(j, addr);
        dsu__json_key(j, "symbol"); dsu__json_str(j, s ? s->name : NULL);
        dsu__json_key(j, "function"); dsu__json_str(j, key);
        dsu__json_obj_end(j);
    }
    dsu__json_arr_end(j);
}

void dsu__req_stacks(struct dsu__json *j) {
    unsigned gen = ++round_gen;
    uint64_t deadline = dsu__now_ns() + 200u * 1000000u;
    /* Ask every BLOCKED thread for its stack, wait briefly for answers. */
    for (;;) {
        int missing = 0;
        pthread_mutex_lock(&dsu__reg_lock);
        for (struct dsu__thread *t = dsu__threads; t; t = t->next) {
            pid_t tid = __atomic_load_n(&t->tid, __ATOMIC_ACQUIRE);
            if (!tid || __atomic_load_n(&t->state, __ATOMIC_SEQ_CST) != DSU__BLOCKED) continue;
            if (__atomic_load_n(&t->sig_have, __ATOMIC_ACQUIRE) == gen) continue;
            if (t->sig_want != gen) {
                __atomic_store_n(&t->sig_want, gen, __ATOMIC_RELEASE);
                syscall(SYS_tgkill, getpid(), tid, dsu__signo);
            }
            missing++;
        }
        pthread_mutex_unlock(&dsu__reg_lock);
        if (!missing || dsu__now_ns() >= deadline) break;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    dsu__json_obj(j);
    dsu__json_key(j, "ok"); dsu__json_bool(j, 1);
    dsu__json_key(j, "threads"); dsu__json_arr(j);
    pthread_mutex_lock(&dsu__reg_lock);
    for (struct dsu__thread *t = dsu__threads; t; t = t->next) {
        pid_t tid = __atomic_load_n(&t->tid, __ATOMIC_ACQUIRE);
        int s = __atomic_load_n(&t->state, __ATOMIC_SEQ_CST);
        char name[32];
        if (tid) dsu__thread_name(tid, name, sizeof name); else strcpy(name, "(starting)");
        dsu__json_obj(j);
        dsu__json_key(j, "tid"); dsu__json_int(j, tid);
        dsu__json_key(j, "name"); dsu__json_str(j, name);
        dsu__json_key(j, "state"); dsu__json_str(j, state_name(s));
        dsu__json_key(j, "frames");
        if (s == DSU__BLOCKED && __atomic_load_n(&t->sig_have, __ATOMIC_ACQUIRE) == gen)
            json_frames(j, t->sig_stack, t->sig_n);
        else {
            dsu__json_null(j);
            dsu__json_key(j, "note");
            dsu__json_str(j, "running: stacks are captured only while a thread is in a dsu_* blocking call");
        }
        dsu__json_obj_end(j);
    }
    pthread_mutex_unlock(&dsu__reg_lock);
    dsu__json_arr_end(j);
    dsu__json_obj_end(j);
}
