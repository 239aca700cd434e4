/* internal.h -- shared declarations between libdsu's source files.
 * Nothing here is part of the ABI; everything is prefixed dsu__. */
#ifndef DSU_INTERNAL_H
#define DSU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sys/types.h>
#include "dsu.h"

#define DSU__MAX_FRAMES 64
#define DSU__MAX_LINE   65536   /* longest accepted request line */

/* ---- sha256.c ---- */
struct dsu__sha256 { uint32_t h[8]; uint64_t len; uint8_t buf[64]; size_t nbuf; };
void dsu__sha256_init(struct dsu__sha256 *c);
void dsu__sha256_update(struct dsu__sha256 *c, const void *data, size_t n);
void dsu__sha256_final(struct dsu__sha256 *c, uint8_t out[32]);
/* Hex digest (65 bytes incl. NUL) of a buffer. */
void dsu__sha256_hex(const void *data, size_t n, char out[65]);

/* ---- proto.c: pure request parser + JSON writer ---- */
enum dsu__req_kind {
    DSU__REQ_HELLO = 1, DSU__REQ_STATUS, DSU__REQ_STAGE, DSU__REQ_COMMIT,
    DSU__REQ_ROLLBACK, DSU__REQ_STACKS
};
struct dsu__request {
    enum dsu__req_kind kind;
    char path[4096];
    char sha256[65];        /* lower-case hex */
    char id[128];
    long timeout_ms;        /* COMMIT/ROLLBACK; default applied by parser */
    const char *error;      /* static message when parsing fails */
};
#define DSU__DEFAULT_TIMEOUT_MS 5000
#define DSU__MAX_TIMEOUT_MS     3600000L
int dsu__proto_parse(const char *buf, size_t len, struct dsu__request *out);
extern const char dsu__proto_valid_requests[];

/* Growable JSON writer; on allocation failure `oom` is set and writes
 * become no-ops, so callers check once at the end. */
struct dsu__json {
    char *buf; size_t len, cap; int oom;
    int depth; unsigned char need_comma[32];
};
void dsu__json_init(struct dsu__json *j);
void dsu__json_free(struct dsu__json *j);
void dsu__json_obj(struct dsu__json *j);          /* { */
void dsu__json_obj_end(struct dsu__json *j);      /* } */
void dsu__json_arr(struct dsu__json *j);          /* [ */
void dsu__json_arr_end(struct dsu__json *j);      /* ] */
void dsu__json_key(struct dsu__json *j, const char *k);
void dsu__json_str(struct dsu__json *j, const char *s); /* NULL -> null */
void dsu__json_int(struct dsu__json *j, long long v);
void dsu__json_bool(struct dsu__json *j, int v);
void dsu__json_null(struct dsu__json *j);
/* {"ok":false,"error":msg} */
void dsu__json_error(struct dsu__json *j, const char *msg);
/* Echo of a parsed request (used by the fuzzer and for debugging). */
void dsu__json_request(struct dsu__json *j, const struct dsu__request *r);

/* ---- symtab.c: ELF symbol ranges ---- */
struct dsu__sym { uintptr_t start, end, base; const char *name; };
struct dsu__symtab {
    struct dsu__symtab *next;
    char *label;             /* "exe" or the patch id */
    uintptr_t lo, hi;        /* covered address range */
    struct dsu__sym *syms; size_t n;  /* sorted by start */
    char *strings;           /* owned copy of the string table */
};
/* Parses the ELF image in [data, data+size) and registers its function
 * symbols relocated by `bias`.  Returns 0 or -1 with *err set. */
int dsu__symtab_add(const char *label, const void *data, size_t size,
                    uintptr_t bias, const char **err);
int dsu__symtab_add_file(const char *label, const char *path, uintptr_t bias,
                         const char **err);
/* Symbol containing pc, or NULL. */
const struct dsu__sym *dsu__symtab_lookup(uintptr_t pc);

/* ---- elf_check.c: patch validation before dlopen ----
 * dsu__elf_check(data, size, what, info, err, errn) checks that the bytes
 * [data, data+size) are an ELF shared object for this machine that the
 * dynamic loader can map, relocate and initialize without reading, mapping
 * or writing anything outside the file or its own segments: ELF header;
 * every program header's file range inside the file, PT_LOADs sorted,
 * disjoint, page-congruent, p_filesz <= p_memsz, within 4 GiB; section
 * headers and string tables (inside the file, sh_link valid, NUL-
 * terminated); the dynamic section (DT_NULL-terminated inside a PT_LOAD)
 * and every table it names (string table, symbols, DT_HASH/DT_GNU_HASH
 * chains, RELA/JMPREL/RELR targets, version tables, DT_INIT/DT_FINI and
 * init/fini array entries) inside a PT_LOAD's file-backed part.  Pure: no
 * I/O, no globals, bounded time (linear in size).  Returns 0 and, when
 * info is not NULL, fills it with the PT_LOAD segments; or -1 with a
 * one-line reason naming `what` in err ("patch file 'p.so' is truncated:
 * PT_LOAD #3 ends at byte 12296 but the file has 8192 bytes; ..."). */
#define DSU__ELF_MAX_LOADS 16
struct dsu__elf_load { uint64_t vaddr, memsz; uint32_t flags; };
struct dsu__elf_info { unsigned nloads; struct dsu__elf_load load[DSU__ELF_MAX_LOADS]; };
int dsu__elf_check(const void *data, size_t size, const char *what,
                   struct dsu__elf_info *info, char *err, size_t errn);

/* ---- patch_file.c: reading a patch for STAGE ---- */
#define DSU__DEFAULT_MAX_PATCH_BYTES (256ull << 20)
/* Reads DSU_MAX_PATCH_BYTES (bytes, or with a K/M/G suffix) once; an
 * invalid value is reported on stderr and the default kept. */
void dsu__patch_limit_init(void);
uint64_t dsu__patch_limit(void);
/* Opens `path` (O_NOFOLLOW|O_NONBLOCK, so a FIFO or device cannot block),
 * checks on the fd that it is a regular file owned by our euid or root, not
 * group/world-writable, 1..limit bytes; reads it once (refusing a file that
 * grows or shrinks meanwhile), validates the bytes with dsu__elf_check and
 * compares their sha256 with `sha256` (lower-case hex).  Returns 0 with the
 * malloc'ed bytes in *out and *len and the loads in *info, or -1 with the
 * reason in err.  Touches no runtime state: safe on any thread. */
int dsu__patch_read(const char *path, const char *sha256, unsigned char **out, size_t *len,
                    struct dsu__elf_info *info, char *err, size_t errn);

/* ---- threads.c: registry, parking, signals ---- */
enum { DSU__RUNNING = 0, DSU__BLOCKED = 1, DSU__PARKED = 2 };
struct dsu__thread {
    struct dsu__thread *next;
    pid_t tid;               /* 0 while the thread is still starting */
    int state;               /* DSU__*, atomic */
    int txn;                 /* transaction depth, atomic (owner writes) */
    const char *last_point;  /* atomic */
    const char *block_name;  /* wrapper currently blocking in, atomic */
    const char *passed_point; /* last point passed without parking (not allowed), atomic */
    int intr;                /* our signal made the current call fail with EINTR (owner + its handler) */
    /* park_stack: written by the owner before it becomes PARKED. */
    void *park_stack[DSU__MAX_FRAMES]; int park_n;
    uint64_t park_start_ns;
    /* sig_stack: written by the signal handler once per sig_want gen. */
    void *sig_stack[DSU__MAX_FRAMES]; int sig_n;
    unsigned sig_want, sig_have;       /* atomic */
    uint64_t sig_sent_ns;              /* coordinator only */
    pthread_t pth;
    /* Frame mapping (frames.c): 1 = the coordinator asked this thread to
     * unwind (atomic; the owner takes it); its records and statistics. */
    int unwind;
    int want_unwind;         /* coordinator only: this round's decision */
    /* The owner's dsu__nomap (dsu.h): set by the owner before it publishes
     * its tid, NULL once it exits; the coordinator reads the value only
     * while the owner is parked or blocked (then it cannot change). */
    int *nomap;
    struct dsu__frame_state *frames;
};
extern pthread_mutex_t dsu__reg_lock;   /* protects the list */
extern struct dsu__thread *dsu__threads;
extern pthread_mutex_t dsu__park_lock;
extern pthread_cond_t dsu__park_cond;   /* parked threads wait for epoch change */
extern pthread_cond_t dsu__coord_cond;  /* coordinator waits for parkers */
extern unsigned dsu__epoch;
extern int dsu__signo;
/* DSU_UNSAFE_SKIP_CHECKS=activeness,transactions: the safety evaluation
 * forces updates where the checks would refuse them, to observe what goes
 * wrong.  Never set in production; the runtime says so on stderr. */
extern int dsu__skip_activeness, dsu__skip_txn;
/* The update points the pending patch may be applied at (set by the
 * coordinator before it raises dsu__pending, cleared after the update):
 * a thread does not park at any other point, so it goes on to an allowed
 * one instead of being released by a refused round just before it. */
int dsu__point_allowed(const char *point);
extern pid_t dsu__control_tid;
/* local-exec: libdsu is only ever linked into executables (ABI.md section
 * 0), so every wrapper reaches its thread record with a single %fs-relative
 * load (no TLS call, no GOT load of the offset). */
extern __thread struct dsu__thread *dsu__self __attribute__((tls_model("local-exec")));
/* dsu__pending (dsu.h) under a hidden alias (threads.c): libdsu is compiled
 * -fPIC, and the wrappers' fast path reads it rip-relative, not via the GOT. */
extern int dsu__pending_h __attribute__((visibility("hidden")));
void dsu__park(struct dsu__thread *t, const char *point);
void dsu__threads_init(void);
void dsu__threads_atfork_child(void);
int dsu__real_pthread_create(pthread_t *t, const pthread_attr_t *a,
                             void *(*fn)(void *), void *arg);
void dsu__points_foreach(void (*cb)(const char *name, void *ud), void *ud);
uint64_t dsu__now_ns(void);     /* CLOCK_MONOTONIC */
uint64_t dsu__wall_ms(void);    /* CLOCK_REALTIME in ms */
void dsu__thread_name(pid_t tid, char *out, size_t n);

/* ---- frames.c: stack-frame mapping (ABI.md section 11) ---- */
#define DSU__MAX_FRAME_RECS 64
#define DSU__MAX_RELOCS 512
struct dsu__frame_local { const char *name; uint32_t size, kind; uintptr_t addr; size_t off; };
struct dsu__frame_rec {
    const char *key, *site;
    struct dsu__frame_local *locals; uint32_t nlocals, caplocals;
    unsigned char *bytes; size_t used, cap;
};
struct dsu__frame_reloc { uintptr_t old, new_; size_t size; };
struct dsu__frame_state {
    struct dsu__frame_rec recs[DSU__MAX_FRAME_RECS]; uint32_t nrecs, nmapped;
    int cur;                 /* record being rebuilt, counting down */
    struct dsu__frame_reloc reloc[DSU__MAX_RELOCS]; uint32_t nreloc;
    int done;                /* atomic: rebuilt (statistics readable) */
    uint64_t requested_ns, unwind_ns, unwound_ns, done_ns;
};
void dsu__frames_init(void);
/* The resumable function whose code starts at impl, or NULL. */
const struct dsu_frame_fn *dsu__frames_lookup(uintptr_t impl);
const struct dsu_frame_fn *dsu__frames_in_patch(const struct dsu_patch_frames *pf, const char *key);
/* 1 if every frame from the innermost program frame of `stack` to the
 * thread's entry has capture code; else 0 with the reason in why. */
int dsu__frames_mappable(void *const *stack, int n, char *why, size_t whyn);
/* At commit (reg_lock held, threads held): registers the patch's
 * resumable functions and its map; asks thread t to unwind. */
/* backwards: a rollback of the patch whose map pf is (names mapped from its new ones to its old). */
void dsu__frames_commit(const struct dsu_patch_frames *pf, int backwards);
void dsu__frames_request(struct dsu__thread *t);
int dsu__frames_outstanding(void);
void dsu__frames_atfork_child(void);
/* Owner: takes its unwind request (mode DSU_UNWIND_AFTER/AGAIN). */
void dsu__frames_take(struct dsu__thread *t, int mode);
/* Entries: the entry function returned because of an unwind. */
void dsu__frames_rebuild(void);
/* A thread that exits with a request not taken (thread_gone). */
void dsu__frames_abandon(struct dsu__thread *t);
void dsu__frames_report(struct dsu__json *j);
void dsu__frames_free(struct dsu__frame_state *st);
uintptr_t dsu__thread_entry_addr(void);
pid_t dsu__gettid(void);

/* ---- update.c ---- */
/* Key of the program function whose code starts at addr, or NULL. */
const char *dsu__key_of_impl(uintptr_t addr);
/* ---- data.c: allocation registry and eager transformation ---- */
struct dsu__data_stats { size_t instances; uint64_t ns; uint32_t lazy_types; };
/* STATUS: "lazyTypes":[{type, version, touched}] */
void dsu__data_status(struct dsu__json *j);
/* A patch may run only if its code checks every type with lazy history
 * (listed in `lc`, or changed lazily by `d` itself).  0, or -1 + reason. */
int dsu__lazy_checks_check(const struct dsu_patch_lazy_checks *lc, const struct dsu_patch_data *d, char *err, size_t errn);
/* At commit, after dsu__data_apply: each listed stamp = the type's current tag (0 = none). */
void dsu__lazy_checks_set(const struct dsu_patch_lazy_checks *lc);
/* Static checks of a patch's data descriptor against the running program
 * (ids, capacities, fit).  0, or -1 with the reason in err. */
int dsu__data_check(const struct dsu_patch_data *d, char *err, size_t errn);
/* Transforms every live instance of the descriptor's types (prepare all,
 * then commit) and runs its state transformer.  Call only while every
 * program thread is parked or blocked.  0, or -1 with the reason in err
 * and no instance changed. */
int dsu__data_apply(const struct dsu_patch_data *d, const char *patch_id, struct dsu__data_stats *st, char *err, size_t errn);
/* Before the update's rounds, while the program runs: maps and faults in
 * the buffers dsu__data_apply will need for the instances live now (plus
 * slack), so the pause does not pay for it.  Best effort (apply maps its
 * own if these are missing or too small).  Control thread only. */
void dsu__data_reserve(const struct dsu_patch_data *d);
/* After the rounds, when the program runs again: unmaps those buffers. */
void dsu__data_release(void);

void dsu__update_init(void);           /* walks the dsu_fn registry */
void dsu__note_foreign_threads(void);  /* sanitizer builds only, see update.c */
void dsu__req_status(struct dsu__json *j);
void dsu__req_hello(struct dsu__json *j);
/* STAGE in three steps, so the slow part can run off the control thread:
 * dsu__stage_precheck (control thread: 0, or -1 with the refusal in j),
 * dsu__stage_read (any thread; touches only the job: opens, reads, hashes
 * and validates the file, see patch_file.c), dsu__stage_finish (control
 * thread: sealed memfd, dlopen, descriptor checks, the reply in j; frees
 * the job's bytes).  dsu__req_stage runs all three in a row. */
struct dsu__stage_job {
    struct dsu__request req;
    unsigned char *bytes; size_t len;
    struct dsu__elf_info info;
    int failed; char err[1536];
};
int dsu__stage_precheck(struct dsu__json *j, const struct dsu__request *r);
void dsu__stage_read(struct dsu__stage_job *job);
void dsu__stage_finish(struct dsu__json *j, struct dsu__stage_job *job);
void dsu__req_stage(struct dsu__json *j, const struct dsu__request *r);
void dsu__req_commit(struct dsu__json *j, const struct dsu__request *r);
void dsu__req_rollback(struct dsu__json *j, const struct dsu__request *r);
void dsu__req_stacks(struct dsu__json *j);
const char *dsu__program_name(void);
const char *dsu__program_build_id(void);

/* ---- stage_worker.c: STAGE's file work off the control thread ---- */
extern pid_t dsu__worker_tid;   /* atomic; the worker is not a program thread */
/* Control thread: starts dsu__stage_read(job) on a new unregistered thread
 * that writes a byte to wake_fd when done.  0, or -1 (a job is running,
 * or no thread could be created: then do the work yourself). */
int dsu__worker_start(struct dsu__stage_job *job, int wake_fd);
int dsu__worker_busy(void);
/* Control thread: the finished job (worker joined), or NULL if none is. */
struct dsu__stage_job *dsu__worker_take(void);
void dsu__worker_atfork_child(void);

/* ---- serve.c: the control thread's event loop ---- */
/* Serves the listening socket `lfd` forever (poll loop, non-blocking
 * clients, limits and deadlines: see serve.c and ABI.md section 6);
 * returns only when serving became impossible, after saying why. */
void dsu__serve(int lfd);
/* From inside a COMMIT/ROLLBACK on the control thread (between rounds,
 * and every ~16 ms of a round that waits for a thread to get quiescent):
 * answers, without waiting, the HELLO and STATUS requests (and malformed
 * lines) that have arrived, accepts new clients and sends pending replies;
 * every other request waits for the update to end. */
void dsu__serve_quick(void);
void dsu__serve_atfork_child(void);

/* ---- control.c ---- */
void dsu__control_start(void);
/* Starts the control thread if it is not running yet (lazy start, see
 * control.c).  From normal context only, never from a signal handler. */
void dsu__control_wake(void);
/* dsu__pending values: 1 = an update is pending (coordinator), this one =
 * a client connected and the control thread should start. */
#define DSU__PENDING_CONTROL 2
/* ... and this one: the update is applied, threads asked to unwind have not
 * all done so yet (frames.c); nothing parks, the unwinding threads take
 * their request on the slow path of points and wrappers. */
#define DSU__PENDING_UNWIND 3
extern int dsu__lazy_fd;
void dsu__control_atfork_child(void);

#endif
