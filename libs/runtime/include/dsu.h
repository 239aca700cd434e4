/* dsu.h -- public interface of libdsu, the dynamic software updating runtime.
 *
 * A program compiled by dsu-cc and linked with libdsu.a (plus -rdynamic -ldl
 * -pthread) can be moved to a new version of its code while it runs.  This
 * header is included by instrumented program units and by generated patches;
 * ABI.md documents the exact shapes dsu-cc must emit. */
#ifndef DSU_H
#define DSU_H

#include <stdint.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <pthread.h>
#include <semaphore.h>
#include <sys/types.h>
#include <unistd.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/epoll.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a layout below changes; the runtime refuses entries and
 * patches built against another version. */
#define DSU_ABI_VERSION 1u
/* Version of the line protocol spoken on the control socket. */
#define DSU_PROTOCOL_VERSION 1

/* ---- 1. Function indirection registry (section "dsu_fn") ---------------- */

/* One per program function.  key is "F" for external functions and
 * "<unit>::F" for static ones; slot points at the function's slot (which
 * initially holds impl); unit is the source path of the defining unit. */
struct dsu_fn_entry {
    uint32_t abi;           /* DSU_ABI_VERSION */
    const char *key;
    void **slot;
    void *impl;
    const char *unit;
};

/* ---- 7. Patch descriptor (exported by patch.so as `dsu_patch`) ---------- */

#define DSU_CHANGE_BODY      1u /* new body, same signature: swap the slot */
#define DSU_CHANGE_ADDED     2u /* new function; new_slot is defined by the patch */
#define DSU_CHANGE_REMOVED   3u /* no longer called by new code; slot untouched */
#define DSU_CHANGE_SIGNATURE 4u /* new signature; all callers are in the patch too */

struct dsu_patch_fn {
    const char *key;
    uint32_t change;        /* DSU_CHANGE_* */
    void *new_impl;         /* BODY/SIGNATURE/ADDED: the new code; REMOVED: NULL */
    void **new_slot;        /* ADDED: the slot the patch defines; else NULL */
};

struct dsu_patch_desc {
    uint32_t abi;           /* DSU_ABI_VERSION */
    const char *from_build_id, *to_build_id, *from_version, *to_version;
    uint32_t nfns;
    const struct dsu_patch_fn *fns;
    uint32_t npoints;
    const char *const *allowed_points; /* NULL/0 = any update point */
};

/* ---- 3. Update points and transactions ---------------------------------- */

/* Non-zero while an update (or rollback) is being applied.  Read with a
 * relaxed load on the fast path; written only by the runtime. */
extern int dsu__pending;

/* Per-site record behind DSU_UPDATE_POINT; `seen` is set once the site has
 * been registered so STATUS can list it. */
struct dsu_point_site {
    const char *name;
    int seen;
    struct dsu_point_site *next;
};

/* Slow paths, never called directly by program code. */
void dsu__point_register(struct dsu_point_site *site);
void dsu__update_point(const char *name);
void dsu__txn_begin(const char *name);
void dsu__txn_end(const char *name);

/* Marks a place where the calling thread holds no state that an update
 * could invalidate.  Cost when no update is pending: two relaxed loads.
 * When an update is pending, the thread parks here until it is applied or
 * abandoned.  `name` must be a string literal. */
#define DSU_UPDATE_POINT(name) do {                                          \
    static struct dsu_point_site dsu__site_ = { (name), 0, 0 };             \
    if (__builtin_expect(!__atomic_load_n(&dsu__site_.seen,                 \
                                          __ATOMIC_RELAXED), 0))            \
        dsu__point_register(&dsu__site_);                                   \
    if (__builtin_expect(__atomic_load_n(&dsu__pending,                     \
                                         __ATOMIC_RELAXED), 0))             \
        dsu__update_point(name);                                            \
} while (0)

/* Brackets code that must not be interrupted by an update: while a thread's
 * transaction count is > 0 it does not park and is not quiescent.  Calls
 * nest; every BEGIN needs a matching END on the same thread. */
#define DSU_TXN_BEGIN(name) dsu__txn_begin(name)
#define DSU_TXN_END(name)   dsu__txn_end(name)

/* ---- 4. Blocking-call wrappers ------------------------------------------ */
/* Same contract as the libc function of the same name without the prefix.
 * While inside, the calling thread counts as quiescent; on return it parks
 * at an implicit update point named after the call (e.g. "poll") if an
 * update is pending.  EINTRs caused by the runtime's own signal are retried
 * with the remaining timeout; errno is preserved. */
int dsu_poll(struct pollfd *fds, nfds_t nfds, int timeout);
int dsu_ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo,
              const sigset_t *sigmask);
int dsu_select(int nfds, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv);
int dsu_pselect(int nfds, fd_set *r, fd_set *w, fd_set *e,
                const struct timespec *ts, const sigset_t *sigmask);
int dsu_epoll_wait(int epfd, struct epoll_event *events, int maxevents,
                   int timeout);
int dsu_epoll_pwait(int epfd, struct epoll_event *events, int maxevents,
                    int timeout, const sigset_t *sigmask);
int dsu_accept(int fd, struct sockaddr *addr, socklen_t *addrlen);
int dsu_accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
ssize_t dsu_read(int fd, void *buf, size_t count);
ssize_t dsu_recv(int fd, void *buf, size_t len, int flags);
ssize_t dsu_recvfrom(int fd, void *buf, size_t len, int flags,
                     struct sockaddr *src, socklen_t *addrlen);
ssize_t dsu_recvmsg(int fd, struct msghdr *msg, int flags);
int dsu_nanosleep(const struct timespec *req, struct timespec *rem);
int dsu_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                        struct timespec *rem);
unsigned int dsu_sleep(unsigned int seconds);
int dsu_usleep(__useconds_t usec); /* useconds_t; glibc type so strict -std=c11 works */
int dsu_pthread_cond_wait(pthread_cond_t *cond, pthread_mutex_t *mutex);
int dsu_pthread_cond_timedwait(pthread_cond_t *cond, pthread_mutex_t *mutex,
                               const struct timespec *abstime);
int dsu_pthread_join(pthread_t thread, void **retval);
pid_t dsu_waitpid(pid_t pid, int *status, int options);
int dsu_sem_wait(sem_t *sem);
int dsu_sem_timedwait(sem_t *sem, const struct timespec *abstime);
int dsu_sigwait(const sigset_t *set, int *sig);
int dsu_sigwaitinfo(const sigset_t *set, siginfo_t *info);
int dsu_sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *tmo);
int dsu_pause(void);
int dsu_sigsuspend(const sigset_t *mask);
pid_t dsu_wait(int *status);

/* ---- Live data (struct layouts, globals): libs/runtime/ABI.md section 10 -- */

#define DSU_DATA_ABI_VERSION 1u

/* Type id of a type key ("struct conn"): 64-bit FNV-1a of the key's bytes.
 * dsu-cc and the patch generator compute the same number at build time. */
uint64_t dsu_type_id(const char *key);

/* One updatable type of the program, emitted by dsu-cc in section
 * "dsu_type" by every unit that defines the type (duplicates agree). */
struct dsu_type_entry {
    uint32_t abi;           /* DSU_DATA_ABI_VERSION */
    uint32_t capacity;      /* sizeof the instrumented type: fields + room + tag */
    uint64_t id;            /* dsu_type_id(key) */
    const char *key;
};

/* Allocation tracking.  dsu-cc rewrites allocation sites of updatable types
 * (malloc/calloc/realloc whose result is a `T *` or whose size is
 * `sizeof(T)`-based) to the typed entry points, and every reference to
 * free/realloc in program code to dsu_free/dsu_realloc, so the runtime can
 * find every live heap instance of T.  Each behaves exactly like the libc
 * function; the instance count of a block is its size / type_size. */
void *dsu_tmalloc(uint64_t type_id, size_t type_size, size_t size);
void *dsu_tcalloc(uint64_t type_id, size_t type_size, size_t n, size_t size);
void *dsu_trealloc(uint64_t type_id, size_t type_size, void *p, size_t size);
void *dsu_realloc(void *p, size_t size);
void dsu_free(void *p);
/* Live tracked blocks of a type and their total instance count (tests, STATUS). */
size_t dsu_tracked_count(uint64_t type_id, size_t *instances);

/* Source annotations (kept by the preprocessor for dsu-cc):
 *   struct DSU_ROOM(128) conn { ... };   reserve 128 bytes of slop
 *   struct DSU_NO_ROOM wire { ... };     keep the C layout (not updatable) */
#define DSU_ROOM(n) __attribute__((annotate("dsu_room=" #n)))
#define DSU_NO_ROOM __attribute__((annotate("dsu_no_room")))

/* Transformer: writes the new image of one instance into new_obj (zeroed
 * `capacity` bytes) from old_obj (a copy of the old image).  Returns 0, or
 * -1 with a message in err (the whole update is then refused). */
typedef int (*dsu_transform_fn)(void *new_obj, const void *old_obj, char *err, size_t errlen);

#define DSU_XFORM_EAGER 1u  /* every instance at the update point */
#define DSU_XFORM_LAZY  2u  /* on first touch by the patch's code (version tag) */

/* `count` consecutive instances starting at `base` (a global, an array
 * global, or a member of a global), `capacity` bytes apart. */
struct dsu_patch_range {
    const char *what;       /* for messages: "global conns" */
    void *base;
    uint64_t count;
};
/* Instances embedded in heap blocks of another (unchanged) tracked type:
 * for every tracked block of container_id, for every container instance k
 * in it, `count` instances at k * container_capacity + offset. */
struct dsu_patch_embed {
    const char *container_key;
    uint64_t container_id;
    uint32_t container_capacity;
    uint64_t offset;
    uint64_t count;
};
struct dsu_patch_type {
    const char *key;        /* "struct conn" */
    uint64_t id;            /* dsu_type_id(key) */
    uint32_t capacity;      /* reserved size in the running program */
    uint32_t old_size;      /* bytes the old fields use */
    uint32_t new_size;      /* bytes the new fields use */
    uint32_t new_sizeof;    /* sizeof the new layout; must equal capacity */
    uint32_t mode;          /* DSU_XFORM_EAGER or DSU_XFORM_LAZY */
    dsu_transform_fn transform;
    uint32_t nranges;
    const struct dsu_patch_range *ranges;
    uint32_t nembeds;
    const struct dsu_patch_embed *embeds;
    /* LAZY only (not read for EAGER, so older eager patches stay valid): a
     * variable of the patch the runtime sets at commit to the version tag
     * that instances in the new layout carry; the patch's code compares an
     * instance's tag with it before the first concrete use (DSU_LAZY_CHECK). */
    uint32_t *lazy_stamp;
};
/* Exported by a patch as `dsu_patch_data` (optional; absent = code only). */
struct dsu_patch_data {
    uint32_t abi;           /* DSU_DATA_ABI_VERSION */
    uint32_t ntypes;
    /* pointers, so each entry can live in the patch unit that knows the
     * new layout (sizeof/offsetof are constants there) */
    const struct dsu_patch_type *const *types;
    /* Run once after every instance is transformed, before the code swap;
     * -1 refuses the update (data is restored). NULL = none. */
    int (*state_transform)(char *err, size_t errlen);
};

/* Lazy transformation (ABI.md section 10).  Brings the instance at `obj` of
 * a lazily transformed type to the current layout: runs the chain of
 * transformers from the version its tag names (v1 -> v2 -> v3 ...) into a
 * temporary image, copies it back and stores the current tag last (release).
 * Thread-safe: concurrent touches of one object serialize on a striped lock
 * and the second finds the tag current.  A transformer that fails here
 * cannot refuse the update any more: the process aborts with the type, the
 * address and the transformer's message. */
void dsu_lazy_touch(void *obj, uint64_t type_id);
/* The check the patch's code makes before the first concrete use of a
 * pointer: one acquire load of the tag, one compare with the patch's stamp.
 * A stamp of 0 means the type has no lazy history: no check. */
#define DSU_LAZY_CHECK(p, type_id, stamp) do {                                  \
    uint32_t dsu__s_ = __atomic_load_n(&(stamp), __ATOMIC_RELAXED);             \
    if ((p) && dsu__s_ && __builtin_expect(                                     \
            __atomic_load_n(&(p)->__dsu_tag, __ATOMIC_ACQUIRE) != dsu__s_, 0))  \
        dsu_lazy_touch((void *)(p), (type_id));                              \
} while (0)
/* Exported by a patch as `dsu_patch_lazy_checks` (optional): the types its
 * code checks the tag of (DSU_LAZY_CHECK) before using them concretely, each
 * with the stamp variable its checks compare against.  At commit the
 * runtime sets each stamp to the type's current tag, or 0 when the type has
 * no lazy history.  Once a type was transformed lazily, a later patch that
 * does not list it (or change it lazily itself) is refused: its code could
 * read an instance that was never touched in an older layout. */
struct dsu_patch_lazy_check {
    const char *key;
    uint64_t id;
    uint32_t *stamp;
};
struct dsu_patch_lazy_checks {
    uint32_t abi;           /* DSU_DATA_ABI_VERSION */
    uint32_t n;
    const struct dsu_patch_lazy_check *checks;
};
/* memset/memcpy/memmove into instances of a lazily transformed type (the
 * patch generator routes the patch's own calls here): the whole instances
 * written get the current tag. */
void *dsu_lazy_memset(uint64_t type_id, void *d, int c, size_t n);
void *dsu_lazy_memcpy(uint64_t type_id, void *d, const void *s, size_t n);
void *dsu_lazy_memmove(uint64_t type_id, void *d, const void *s, size_t n);
/* The tag instances of the type carry in its current layout (0 = the type
 * was never transformed lazily) and the number of first-touch
 * transformations done so far (tests, STATUS). */
uint32_t dsu_lazy_current_tag(uint64_t type_id);
uint64_t dsu_lazy_touched(uint64_t type_id);

/* ---- Stack-frame mapping: libs/runtime/ABI.md section 11 --------------- */

#define DSU_FRAME_ABI_VERSION 1u

/* Set on a thread by the runtime after an update that replaced a function
 * active on its stack: the thread's frames are captured and popped up to its
 * entry (main, or a pthread start routine), then the entry is called again
 * with dsu__resuming set and every frame is rebuilt in the new code.
 * DSU_UNWIND_AFTER: the thread stopped after its update point or after a
 * wrapped blocking call that completed (its result is kept);
 * DSU_UNWIND_AGAIN: the thread was inside a wrapped blocking call, which
 * returned -1/EINTR for the update and must be issued again. */
#define DSU_UNWIND_AFTER 1
#define DSU_UNWIND_AGAIN 2
extern __thread int dsu__unwinding __attribute__((tls_model("initial-exec")));
extern __thread int dsu__resuming __attribute__((tls_model("initial-exec")));
/* No-resume region depth: dsu-cc wraps each call on a path to an update
 * point that cannot be resumed after an unwind (a call nested in an
 * expression or condition, e.g. `if (read_client(c) != 0)`) as
 *   ({ dsu__nomap++; __auto_type __dsu_v = read_client(c); dsu__nomap--; __dsu_v; })
 * While it is > 0 the runtime does not unwind the thread: a commit that
 * would have to rebuild its frames waits (rounds retried until the deadline)
 * for the thread to stop outside every such call. */
extern __thread int dsu__nomap __attribute__((tls_model("initial-exec")));

/* A function with capture and resume code (dsu-cc emits one per resumable
 * function in section "dsu_frame"; a patch lists those of its units in
 * dsu_patch_frames).  sites: the places the function can be stopped at,
 * "point:<name>" (after an update point), "call:<callee>#<k>" (the k-th
 * call of a program function: re-made in resume mode),
 * "wait:<call>#<k>" (after the k-th wrapped blocking call, its result kept)
 * and "wait:<call>#<k>:again" (that call made again). */
struct dsu_frame_fn {
    uint32_t abi;           /* DSU_FRAME_ABI_VERSION */
    uint32_t nsites;
    const char *key;
    void *impl;
    const char *const *sites;
};

/* Frame map entries of a patch (libs/frame-map): in function `key`, a frame
 * stopped at old site `from` resumes at new site `to` (a site renamed or
 * moved), or new local `to` takes the value of old local `from` (a renamed
 * local); kind says which. */
#define DSU_FRAME_MAP_SITE  1u
#define DSU_FRAME_MAP_LOCAL 2u
struct dsu_frame_map {
    uint32_t kind;
    const char *key, *from, *to;
};
/* Exported by a patch as `dsu_patch_frames` (optional; absent = the patch
 * cannot rebuild frames, so a replaced function active at the update point
 * refuses the update as before). */
struct dsu_patch_frames {
    uint32_t abi;           /* DSU_FRAME_ABI_VERSION */
    uint32_t nfns;
    const struct dsu_frame_fn *const *fns;
    uint32_t nmaps;
    const struct dsu_frame_map *maps;
};

/* Kinds of saved locals: bytes are copied; pointers into a captured frame
 * are relocated to the rebuilt frame; integers are converted (checked) when
 * their size changed. */
#define DSU_LOCAL_BYTES 0u
#define DSU_LOCAL_PTR   1u
#define DSU_LOCAL_INT   2u
#define DSU_LOCAL_UINT  3u

/* Capture (old code, dsu__unwinding set): one record per frame, innermost
 * first; then the function returns to its caller with any value. */
void dsu__frame_capture(const char *key, const char *site);
void dsu__frame_save(const char *name, const void *p, size_t size, unsigned kind);
/* Resume (new code, dsu__resuming set, at the function's entry): the index
 * in sites[] to continue at.  The process aborts with a message if the
 * record does not belong to `key` or names no site of it (dsu patch
 * refuses such maps, so this means a corrupt stack). */
int dsu__frame_resume(const char *key, const char *const *sites, unsigned nsites);
/* Restores local `name` (1), or 0 if the old frame has no such local (or a
 * value that does not fit): the caller then runs the local's initializer. */
int dsu__frame_load(const char *name, void *p, size_t size, unsigned kind);
/* End of a frame's restore: after the innermost one, the thread runs on. */
void dsu__frame_done(void);
/* The entry of a program with resumable main: calls main through its slot
 * again after each unwind. */
int dsu__run_main(void **slot, int argc, char **argv, char **envp);

/* ---- Misc ---------------------------------------------------------------- */

/* Returns the build id the process currently runs: the to_build_id of the
 * last applied patch, else the program's dsu_build_id, else "unknown".
 * Safe to call from any thread; the string stays valid forever. */
const char *dsu_current_build_id(void);

#ifdef __cplusplus
}
#endif
#endif /* DSU_H */
