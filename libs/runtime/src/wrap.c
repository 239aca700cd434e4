/* wrap.c -- blocking-call wrappers (dsu-cc rewrites `poll(` to `dsu_poll(`).
 *
 * A thread inside a wrapper is BLOCKED, i.e. quiescent: an update can be
 * applied while it waits.  On the way out it stores RUNNING and then reads
 * dsu__pending (seq_cst, the other half of the coordinator's Dekker
 * handshake) and parks at an implicit update point named after the call.
 * The runtime's wake-up signal may interrupt the call; such EINTRs are
 * retried with the remaining timeout so the program never sees them.
 * Fast path cost: see block()/unblock(). */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "internal.h"

#define UNPAREN(...) __VA_ARGS__

/* The fast path (no update pending, the call did not fail) is, per call:
 * a TLS load, two relaxed stores and a release store (plain moves on x86),
 * one store per argument, the call, a second TLS load, a seq_cst store
 * (xchg) and one load of dsu__pending: about 24 instructions with the
 * call and return.  Retries after our own EINTR and parking are out of
 * line, so the fast path touches neither errno nor a callee-saved register
 * (objdump -d build/obj/wrap.o). */
static inline __attribute__((always_inline)) void block(struct dsu__thread *t, const char *name) {
    __atomic_store_n(&t->intr, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&t->block_name, name, __ATOMIC_RELAXED);
    __atomic_store_n(&t->state, DSU__BLOCKED, __ATOMIC_RELEASE);
}

static inline struct dsu__thread *enter(const char *name) {
    struct dsu__thread *t = dsu__self;
    if (t) block(t, name);
    return t;
}

/* Out of line: only taken when an update (or the control thread's start)
 * is pending, so the fast path does not save and restore errno.  Not
 * `cold`: gcc 12 then moves the wrappers' whole exit path to .text.unlikely. */
static __attribute__((noinline)) void leave_slow(struct dsu__thread *t) {
    int e = errno;
    /* The implicit update point is named after the call (block()). */
    if (__atomic_load_n(&t->txn, __ATOMIC_RELAXED) == 0 || dsu__skip_txn)
        dsu__park(t, __atomic_load_n(&t->block_name, __ATOMIC_RELAXED));
    else if (__atomic_load_n(&dsu__pending_h, __ATOMIC_SEQ_CST) == DSU__PENDING_CONTROL) dsu__control_wake();
    errno = e;
}

/* t != NULL.  RUNNING, then dsu__pending: the thread's half of the Dekker
 * handshake with the coordinator (see threads.c). */
static inline __attribute__((always_inline)) void unblock(struct dsu__thread *t) {
    __atomic_store_n(&t->state, DSU__RUNNING, __ATOMIC_SEQ_CST);
    if (__builtin_expect(__atomic_load_n(&dsu__pending_h, __ATOMIC_SEQ_CST), 0)) leave_slow(t);
}

static inline void leave(struct dsu__thread *t, const char *name) {
    (void)name;     /* == t->block_name */
    if (t) unblock(t);
}

/* True when the last call failed with EINTR raised by our own signal;
 * clears the flag so the retry starts clean. */
static inline int ours(struct dsu__thread *t, long r, int err_is_errno_value) {
    int e = err_is_errno_value ? (int)r : (r < 0 ? errno : 0);
    if (e != EINTR || !__atomic_load_n(&t->intr, __ATOMIC_RELAXED)) return 0;
    __atomic_store_n(&t->intr, 0, __ATOMIC_RELAXED);
    /* Interrupted so the thread unwinds (frame mapping): the call returns
     * EINTR to instrumented code, which unwinds and makes it again in the
     * new version; the program never sees this EINTR. */
    if (__atomic_load_n(&t->unwind, __ATOMIC_SEQ_CST)) {
        dsu__frames_take(t, DSU_UNWIND_AGAIN);
        return 0;
    }
    /* Interrupted because a client connected (lazy start, see control.c). */
    if (__atomic_load_n(&dsu__pending_h, __ATOMIC_SEQ_CST) == DSU__PENDING_CONTROL) dsu__control_wake();
    return 1;
}

static uint64_t deadline_ms(int timeout) {
    return timeout > 0 ? dsu__now_ns() + (uint64_t)timeout * 1000000u : 0;
}

/* Remaining milliseconds until dl (rounded up), 0 if passed. */
static int remaining_ms(uint64_t dl) {
    uint64_t now = dsu__now_ns();
    if (now >= dl) return 0;
    return (int)((dl - now + 999999u) / 1000000u);
}

static uint64_t ts_deadline(const struct timespec *ts) {
    return dsu__now_ns() + (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
}

/* Remaining time until dl; returns 0 if passed. */
static int ts_remaining(uint64_t dl, struct timespec *out) {
    uint64_t now = dsu__now_ns();
    if (now >= dl) { out->tv_sec = 0; out->tv_nsec = 0; return 0; }
    uint64_t d = dl - now;
    out->tv_sec = (time_t)(d / 1000000000u);
    out->tv_nsec = (long)(d % 1000000000u);
    return 1;
}

/* The hot wrappers keep no value in a callee-saved register across the
 * call: the thread record is read again from TLS afterwards (same thread,
 * same record), and the arguments a retry needs are copied to the stack
 * before the call (one store each; the empty asm makes the copy happen
 * there) and read back only by the cold retry path.  The copy is per call
 * frame, so a wrapped call made by a signal handler cannot clobber it.
 * `fields` declares the copy's members in parameter order; `again` lists
 * them as a.<param>. */
#define SAVED_ARGS(name, fields) struct name##_args fields;
/* A thread cancelled inside the call (a cancellation point) unwinds
 * without running the epilogue that would unpoison ASan's redzones around
 * the copy; the thread's TSD destructors (thread_gone) then run on that
 * stack and ASan reports them (t_mt's canceller under `make asan`).  The
 * wrapper frame itself needs no checks.  Also used by the wrappers below
 * that keep a timespec or fd_set of their own on the stack. */
#define NO_ASAN __attribute__((no_sanitize_address))

/* Millisecond-timeout calls (poll, epoll_wait, epoll_pwait).  The fast
 * wrapper handles timeouts <= 0 (infinite, or a non-blocking check), which
 * are retried as they are; a positive timeout takes the out-of-line path
 * (name_other) that reads the clock once up front to retry with the time
 * left.  name_other also makes the plain call for a thread without a
 * record (SLOW_IF_name lists the extra conditions that take it). */
#define MS_TIMEOUT(ret_t, name, params, args, fields, again)                  \
    SAVED_ARGS(name, fields)                                                  \
    static __attribute__((noinline)) ret_t name##_other(struct dsu__thread *t, \
                                                         UNPAREN params) {    \
        if (!t) return name args;                                             \
        block(t, #name);                                                      \
        uint64_t dl = deadline_ms(timeout);                                   \
        ret_t r;                                                              \
        while ((r = name args) < 0 && ours(t, r, 0)) {                        \
            if ((timeout = remaining_ms(dl)) == 0) { r = 0; break; }          \
        }                                                                     \
        unblock(t);                                                           \
        return r;                                                             \
    }                                                                         \
    RETRY_BODY(ret_t, name, params, args, again)

/* Calls that SA_RESTART restarts in the kernel; the loop only matters
 * when a socket timeout (SO_RCVTIMEO) turns our signal into EINTR, or
 * when the lazy control-thread start forces one (threads.c). */
#define RESTARTING(ret_t, name, params, args, fields, again)                  \
    SAVED_ARGS(name, fields)                                                  \
    static ret_t name##_other(struct dsu__thread *t, UNPAREN params) {        \
        (void)t;                                                              \
        return name args;                                                     \
    }                                                                         \
    RETRY_BODY(ret_t, name, params, args, again)

#define RETRY_BODY(ret_t, name, params, args, again)                          \
    static __attribute__((noinline, cold)) ret_t name##_again(                \
            ret_t r, const struct name##_args *saved) {                       \
        struct dsu__thread *t = dsu__self;                                    \
        struct name##_args a = *saved;                                        \
        while (r < 0 && ours(t, (long)r, 0)) r = name again;                  \
        return r;                                                             \
    }                                                                         \
    NO_ASAN ret_t dsu_##name params {                                         \
        struct dsu__thread *t = dsu__self;                                    \
        if (__builtin_expect(!t SLOW_IF_##name, 0))                          \
            return name##_other(t, UNPAREN args);                             \
        block(t, #name);                                                      \
        struct name##_args saved = { UNPAREN args };                          \
        __asm__("" : : "m"(saved)); /* stored before the call, read after */  \
        ret_t r = name args;                                                  \
        if (__builtin_expect(r < 0, 0)) r = name##_again(r, &saved);          \
        unblock(dsu__self);                                                   \
        return r;                                                             \
    }

/* Arguments that take the out-of-line path (NULL record: the plain call). */
#define SLOW_IF_poll        || timeout > 0
#define SLOW_IF_epoll_wait  || timeout > 0
#define SLOW_IF_epoll_pwait || timeout > 0
#define SLOW_IF_accept
#define SLOW_IF_accept4
#define SLOW_IF_read
#define SLOW_IF_recv
#define SLOW_IF_recvfrom
#define SLOW_IF_recvmsg
#define SLOW_IF_waitpid
#define SLOW_IF_sem_wait
#define SLOW_IF_sigwaitinfo
#define SLOW_IF_sigsuspend
#define SLOW_IF_wait
#define SLOW_IF_sem_timedwait

MS_TIMEOUT(int, poll, (struct pollfd *fds, nfds_t nfds, int timeout), (fds, nfds, timeout),
           { struct pollfd *fds; nfds_t nfds; int timeout; }, (a.fds, a.nfds, a.timeout))

NO_ASAN int dsu_ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo,
              const sigset_t *sigmask) {
    struct dsu__thread *t = enter("ppoll");
    uint64_t dl = t && tmo ? ts_deadline(tmo) : 0;
    struct timespec rem;
    int r;
    while ((r = ppoll(fds, nfds, tmo, sigmask)) < 0 && t && ours(t, r, 0)) {
        if (tmo) {
            if (!ts_remaining(dl, &rem)) { r = 0; break; }
            tmo = &rem;
        }
    }
    leave(t, "ppoll");
    return r;
}

NO_ASAN int dsu_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv) {
    struct dsu__thread *t = enter("select");
    fd_set r0, w0, e0;
    /* Linux leaves the sets alone on EINTR, but restoring them costs little
     * and keeps the retry correct whatever the kernel does. */
    if (t) { if (rd) r0 = *rd; if (wr) w0 = *wr; if (ex) e0 = *ex; }
    int r;
    while ((r = select(nfds, rd, wr, ex, tv)) < 0 && t && ours(t, r, 0)) {
        if (rd) *rd = r0;
        if (wr) *wr = w0;
        if (ex) *ex = e0;
        /* Linux select() already updated *tv to the time left. */
        if (tv && tv->tv_sec == 0 && tv->tv_usec == 0) {
            if (rd) FD_ZERO(rd);
            if (wr) FD_ZERO(wr);
            if (ex) FD_ZERO(ex);
            r = 0; break;
        }
    }
    leave(t, "select");
    return r;
}

NO_ASAN int dsu_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
                const struct timespec *ts, const sigset_t *sigmask) {
    struct dsu__thread *t = enter("pselect");
    fd_set r0, w0, e0;
    if (t) { if (rd) r0 = *rd; if (wr) w0 = *wr; if (ex) e0 = *ex; }
    uint64_t dl = t && ts ? ts_deadline(ts) : 0;
    struct timespec rem;
    int r;
    while ((r = pselect(nfds, rd, wr, ex, ts, sigmask)) < 0 && t && ours(t, r, 0)) {
        if (rd) *rd = r0;
        if (wr) *wr = w0;
        if (ex) *ex = e0;
        if (ts) {
            if (!ts_remaining(dl, &rem)) {
                if (rd) FD_ZERO(rd);
                if (wr) FD_ZERO(wr);
                if (ex) FD_ZERO(ex);
                r = 0; break;
            }
            ts = &rem;
        }
    }
    leave(t, "pselect");
    return r;
}

MS_TIMEOUT(int, epoll_wait, (int epfd, struct epoll_event *ev, int maxev, int timeout),
           (epfd, ev, maxev, timeout),
           { int epfd; struct epoll_event *ev; int maxev; int timeout; },
           (a.epfd, a.ev, a.maxev, a.timeout))
MS_TIMEOUT(int, epoll_pwait, (int epfd, struct epoll_event *ev, int maxev, int timeout,
                              const sigset_t *sigmask),
           (epfd, ev, maxev, timeout, sigmask),
           { int epfd; struct epoll_event *ev; int maxev; int timeout; const sigset_t *sigmask; },
           (a.epfd, a.ev, a.maxev, a.timeout, a.sigmask))

RESTARTING(int, accept, (int fd, struct sockaddr *sa, socklen_t *al), (fd, sa, al),
           { int fd; struct sockaddr *sa; socklen_t *al; }, (a.fd, a.sa, a.al))
RESTARTING(int, accept4, (int fd, struct sockaddr *sa, socklen_t *al, int flags),
           (fd, sa, al, flags), { int fd; struct sockaddr *sa; socklen_t *al; int flags; },
           (a.fd, a.sa, a.al, a.flags))
RESTARTING(ssize_t, read, (int fd, void *buf, size_t n), (fd, buf, n),
           { int fd; void *buf; size_t n; }, (a.fd, a.buf, a.n))
RESTARTING(ssize_t, recv, (int fd, void *buf, size_t n, int flags), (fd, buf, n, flags),
           { int fd; void *buf; size_t n; int flags; }, (a.fd, a.buf, a.n, a.flags))
RESTARTING(ssize_t, recvfrom, (int fd, void *buf, size_t n, int flags, struct sockaddr *src,
                               socklen_t *al), (fd, buf, n, flags, src, al),
           { int fd; void *buf; size_t n; int flags; struct sockaddr *src; socklen_t *al; },
           (a.fd, a.buf, a.n, a.flags, a.src, a.al))
RESTARTING(ssize_t, recvmsg, (int fd, struct msghdr *msg, int flags), (fd, msg, flags),
           { int fd; struct msghdr *msg; int flags; }, (a.fd, a.msg, a.flags))
RESTARTING(pid_t, waitpid, (pid_t pid, int *status, int options), (pid, status, options),
           { pid_t pid; int *status; int options; }, (a.pid, a.status, a.options))
RESTARTING(int, sem_wait, (sem_t *sem), (sem), { sem_t *sem; }, (a.sem))

NO_ASAN int dsu_nanosleep(const struct timespec *req, struct timespec *rem) {
    struct dsu__thread *t = enter("nanosleep");
    struct timespec cur, left;
    int r;
    if (!t) return nanosleep(req, rem);
    cur = *req;
    /* The kernel reports the time left on EINTR; sleep that long again. */
    while ((r = nanosleep(&cur, &left)) < 0 && ours(t, r, 0)) cur = left;
    if (r < 0 && errno == EINTR && rem) *rem = left;
    leave(t, "nanosleep");
    return r;
}

NO_ASAN int dsu_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
                        struct timespec *rem) {
    struct dsu__thread *t = enter("clock_nanosleep");
    struct timespec cur, left;
    int r;
    if (!t) return clock_nanosleep(clk, flags, req, rem);
    cur = *req;
    /* Returns the error number (errno is untouched).  Absolute sleeps are
     * simply repeated; relative ones continue with the time left. */
    while ((r = clock_nanosleep(clk, flags, &cur, &left)) != 0 && ours(t, r, 1))
        if (!(flags & TIMER_ABSTIME)) cur = left;
    if (r == EINTR && rem && !(flags & TIMER_ABSTIME)) *rem = left;
    leave(t, "clock_nanosleep");
    return r;
}

NO_ASAN unsigned int dsu_sleep(unsigned int seconds) {
    struct dsu__thread *t = enter("sleep");
    if (!t) return sleep(seconds);
    struct timespec cur = { (time_t)seconds, 0 }, left = { 0, 0 };
    int r;
    while ((r = nanosleep(&cur, &left)) < 0 && ours(t, r, 0)) cur = left;
    unsigned int res = 0;
    if (r < 0) res = (unsigned int)left.tv_sec + (left.tv_nsec > 0);
    leave(t, "sleep");
    return res;
}

NO_ASAN int dsu_usleep(useconds_t usec) {
    struct dsu__thread *t = enter("usleep");
    if (!t) return usleep(usec);
    struct timespec cur = { (time_t)(usec / 1000000u), (long)(usec % 1000000u) * 1000 }, left;
    int r;
    while ((r = nanosleep(&cur, &left)) < 0 && ours(t, r, 0)) cur = left;
    leave(t, "usleep");
    return r;
}

/* Condition waits return holding the program's mutex.  Parking while
 * holding it would stall every thread that needs it (they block in
 * pthread_mutex_lock, which is not quiescent), so when an update is
 * pending we drop the mutex while parked and retake it afterwards; to the
 * program this looks like a spurious wake-up, which POSIX allows. */
static void leave_cond(struct dsu__thread *t, pthread_mutex_t *m, const char *name) {
    if (!t) return;
    int e = errno;
    __atomic_store_n(&t->state, DSU__RUNNING, __ATOMIC_SEQ_CST);
    int p = __atomic_load_n(&dsu__pending, __ATOMIC_SEQ_CST);
    if (__builtin_expect(p == DSU__PENDING_CONTROL, 0)) {
        dsu__control_wake();    /* no need to drop the mutex for that */
    } else if (__builtin_expect(p, 0) && (__atomic_load_n(&t->txn, __ATOMIC_RELAXED) == 0 || dsu__skip_txn)) {
        pthread_mutex_unlock(m);
        dsu__park(t, name);
        pthread_mutex_lock(m);
    }
    errno = e;
}

int dsu_pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m) {
    struct dsu__thread *t = enter("pthread_cond_wait");
    int r = pthread_cond_wait(c, m);
    leave_cond(t, m, "pthread_cond_wait");
    return r;
}

int dsu_pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m,
                               const struct timespec *abstime) {
    struct dsu__thread *t = enter("pthread_cond_timedwait");
    int r = pthread_cond_timedwait(c, m, abstime);
    leave_cond(t, m, "pthread_cond_timedwait");
    return r;
}

int dsu_pthread_join(pthread_t th, void **ret) {
    struct dsu__thread *t = enter("pthread_join");
    int r = pthread_join(th, ret);
    leave(t, "pthread_join");
    return r;
}

/* Signal waits: a main thread parked in sigwait() while workers serve is the
 * usual shape of a daemon, so these count as blocking calls too.  sigwait()
 * returns an error number and glibc already retries it on EINTR. */
int dsu_sigwait(const sigset_t *set, int *sig) {
    struct dsu__thread *t = enter("sigwait");
    int r = sigwait(set, sig);
    leave(t, "sigwait");
    return r;
}
RESTARTING(int, sigwaitinfo, (const sigset_t *set, siginfo_t *info), (set, info),
           { const sigset_t *set; siginfo_t *info; }, (a.set, a.info))
NO_ASAN int dsu_sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *tmo) {
    struct dsu__thread *t = enter("sigtimedwait");
    uint64_t dl = (t && tmo) ? ts_deadline(tmo) : 0;
    struct timespec left;
    const struct timespec *cur = tmo;
    int r;
    while ((r = sigtimedwait(set, info, cur)) < 0 && t && ours(t, r, 0)) {
        if (tmo) {
            if (!ts_remaining(dl, &left)) { errno = EAGAIN; break; }
            cur = &left;
        }
    }
    leave(t, "sigtimedwait");
    return r;
}
/* No arguments: written out (the macro's parameter splice needs some). */
int dsu_pause(void) {
    struct dsu__thread *t = enter("pause");
    int r;
    while ((r = pause()) < 0 && t && ours(t, r, 0)) {}
    leave(t, "pause");
    return r;
}
RESTARTING(int, sigsuspend, (const sigset_t *mask), (mask), { const sigset_t *mask; }, (a.mask))
RESTARTING(pid_t, wait, (int *status), (status), { int *status; }, (a.status))
RESTARTING(int, sem_timedwait, (sem_t *sem, const struct timespec *abstime), (sem, abstime),
           { sem_t *sem; const struct timespec *abstime; }, (a.sem, a.abstime))
