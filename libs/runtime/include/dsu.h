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

/* ---- Misc ---------------------------------------------------------------- */

/* Returns the build id the process currently runs: the to_build_id of the
 * last applied patch, else the program's dsu_build_id, else "unknown".
 * Safe to call from any thread; the string stays valid forever. */
const char *dsu_current_build_id(void);

#ifdef __cplusplus
}
#endif
#endif /* DSU_H */
