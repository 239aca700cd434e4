/* wrap.c -- blocking-call wrappers (dsu-cc rewrites `poll(` to `dsu_poll(`).
 *
 * A thread inside a wrapper is BLOCKED, i.e. quiescent: an update can be
 * applied while it waits.  On the way out it stores RUNNING and then reads
 * dsu__pending (seq_cst, the other half of the coordinator's Dekker
 * handshake) and parks at an implicit update point named after the call.
 * The runtime's wake-up signal may interrupt the call; such EINTRs are
 * retried with the remaining timeout so the program never sees them.
 * Fast path cost: one release store, one seq_cst store, one load. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "internal.h"

static inline struct dsu__thread *enter(const char *name) {
    struct dsu__thread *t = dsu__self;
    if (t) {
        __atomic_store_n(&t->intr, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&t->block_name, name, __ATOMIC_RELAXED);
        __atomic_store_n(&t->state, DSU__BLOCKED, __ATOMIC_RELEASE);
    }
    return t;
}

/* Out of line: only taken when an update (or the control thread's start)
 * is pending, so the fast path does not save and restore errno. */
static __attribute__((noinline, cold)) void leave_slow(struct dsu__thread *t, const char *name) {
    int e = errno;
    if (__atomic_load_n(&t->txn, __ATOMIC_RELAXED) == 0) dsu__park(t, name);
    else if (__atomic_load_n(&dsu__pending, __ATOMIC_SEQ_CST) == DSU__PENDING_CONTROL) dsu__control_wake();
    errno = e;
}

static inline void leave(struct dsu__thread *t, const char *name) {
    if (!t) return;
    __atomic_store_n(&t->state, DSU__RUNNING, __ATOMIC_SEQ_CST);
    if (__builtin_expect(__atomic_load_n(&dsu__pending, __ATOMIC_SEQ_CST), 0)) leave_slow(t, name);
}

/* True when the last call failed with EINTR raised by our own signal;
 * clears the flag so the retry starts clean. */
static inline int ours(struct dsu__thread *t, long r, int err_is_errno_value) {
    int e = err_is_errno_value ? (int)r : (r < 0 ? errno : 0);
    if (e != EINTR || !__atomic_load_n(&t->intr, __ATOMIC_RELAXED)) return 0;
    __atomic_store_n(&t->intr, 0, __ATOMIC_RELAXED);
    /* Interrupted because a client connected (lazy start, see control.c). */
    if (__atomic_load_n(&dsu__pending, __ATOMIC_SEQ_CST) == DSU__PENDING_CONTROL) dsu__control_wake();
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

int dsu_poll(struct pollfd *fds, nfds_t nfds, int timeout) {
    struct dsu__thread *t = enter("poll");
    uint64_t dl = t ? deadline_ms(timeout) : 0;
    int r;
    while ((r = poll(fds, nfds, timeout)) < 0 && t && ours(t, r, 0)) {
        if (timeout > 0 && (timeout = remaining_ms(dl)) == 0) { r = 0; break; }
    }
    leave(t, "poll");
    return r;
}

int dsu_ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *tmo,
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

int dsu_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv) {
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

int dsu_pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
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

int dsu_epoll_wait(int epfd, struct epoll_event *ev, int maxev, int timeout) {
    struct dsu__thread *t = enter("epoll_wait");
    uint64_t dl = t ? deadline_ms(timeout) : 0;
    int r;
    while ((r = epoll_wait(epfd, ev, maxev, timeout)) < 0 && t && ours(t, r, 0)) {
        if (timeout > 0 && (timeout = remaining_ms(dl)) == 0) { r = 0; break; }
    }
    leave(t, "epoll_wait");
    return r;
}

int dsu_epoll_pwait(int epfd, struct epoll_event *ev, int maxev, int timeout,
                    const sigset_t *sigmask) {
    struct dsu__thread *t = enter("epoll_pwait");
    uint64_t dl = t ? deadline_ms(timeout) : 0;
    int r;
    while ((r = epoll_pwait(epfd, ev, maxev, timeout, sigmask)) < 0 && t && ours(t, r, 0)) {
        if (timeout > 0 && (timeout = remaining_ms(dl)) == 0) { r = 0; break; }
    }
    leave(t, "epoll_pwait");
    return r;
}

/* Calls that SA_RESTART restarts in the kernel; the loop only matters
 * when a socket timeout (SO_RCVTIMEO) turns our signal into EINTR. */
#define RESTARTING(ret_t, name, call)                 \
    struct dsu__thread *t = enter(name);               \
    ret_t r;                                           \
    while ((r = (call)) < 0 && t && ours(t, (long)r, 0)) {} \
    leave(t, name);                                    \
    return r;

int dsu_accept(int fd, struct sockaddr *a, socklen_t *al) {
    RESTARTING(int, "accept", accept(fd, a, al))
}
int dsu_accept4(int fd, struct sockaddr *a, socklen_t *al, int flags) {
    RESTARTING(int, "accept4", accept4(fd, a, al, flags))
}
ssize_t dsu_read(int fd, void *buf, size_t n) {
    RESTARTING(ssize_t, "read", read(fd, buf, n))
}
ssize_t dsu_recv(int fd, void *buf, size_t n, int flags) {
    RESTARTING(ssize_t, "recv", recv(fd, buf, n, flags))
}
ssize_t dsu_recvfrom(int fd, void *buf, size_t n, int flags,
                     struct sockaddr *src, socklen_t *al) {
    RESTARTING(ssize_t, "recvfrom", recvfrom(fd, buf, n, flags, src, al))
}
ssize_t dsu_recvmsg(int fd, struct msghdr *msg, int flags) {
    RESTARTING(ssize_t, "recvmsg", recvmsg(fd, msg, flags))
}
pid_t dsu_waitpid(pid_t pid, int *status, int options) {
    RESTARTING(pid_t, "waitpid", waitpid(pid, status, options))
}
int dsu_sem_wait(sem_t *sem) {
    RESTARTING(int, "sem_wait", sem_wait(sem))
}

int dsu_nanosleep(const struct timespec *req, struct timespec *rem) {
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

int dsu_clock_nanosleep(clockid_t clk, int flags, const struct timespec *req,
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

unsigned int dsu_sleep(unsigned int seconds) {
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

int dsu_usleep(useconds_t usec) {
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
    } else if (__builtin_expect(p, 0) && __atomic_load_n(&t->txn, __ATOMIC_RELAXED) == 0) {
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
int dsu_sigwaitinfo(const sigset_t *set, siginfo_t *info) {
    RESTARTING(int, "sigwaitinfo", sigwaitinfo(set, info))
}
int dsu_sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *tmo) {
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
int dsu_pause(void) {
    RESTARTING(int, "pause", pause())
}
int dsu_sigsuspend(const sigset_t *mask) {
    RESTARTING(int, "sigsuspend", sigsuspend(mask))
}
pid_t dsu_wait(int *status) {
    RESTARTING(pid_t, "wait", wait(status))
}
int dsu_sem_timedwait(sem_t *sem, const struct timespec *abstime) {
    RESTARTING(int, "sem_timedwait", sem_timedwait(sem, abstime))
}
