/* wrappers -- one thread per blocking-call wrapper, each looping on a call
 * whose correct result is known (a timeout, or data a helper thread
 * provides every 100 ms).  The driver meanwhile floods the process with
 * stack-capture signals (STACKS) and applies/rolls back a patch.  Any
 * wrong result, stray EINTR, or timeout cut short prints "FAIL ...".
 * On SIGTERM prints "count <wrapper> <n>" per wrapper and "exit ok". */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include "instrumented.h"

DSU_PROGRAM("wrappers", "wrappers-v1");
DSU_FN(int, tick, "tick", "tests/progs/wrappers.c", (void)) { return 1; }

enum { W_POLL, W_PPOLL, W_SELECT, W_PSELECT, W_EPOLL, W_EPOLLP, W_NANOSLEEP, W_CLOCKREL,
       W_CLOCKABS, W_USLEEP, W_SLEEP, W_CONDTIMED, W_CONDWAIT, W_READ, W_RECV, W_RECVFROM,
       W_RECVMSG, W_ACCEPT, W_ACCEPT4, W_SEM, W_WAITPID, W_JOIN, W_N };
static const char *names[W_N] = { "poll", "ppoll", "select", "pselect", "epoll_wait",
    "epoll_pwait", "nanosleep", "clock_nanosleep_rel", "clock_nanosleep_abs", "usleep",
    "sleep", "pthread_cond_timedwait", "pthread_cond_wait", "read", "recv", "recvfrom",
    "recvmsg", "accept", "accept4", "sem_wait", "waitpid", "pthread_join" };
static long counts[W_N];
static int stop;                               /* atomic: workers stop */
static int workers_gone;                       /* atomic: every worker joined; provider stops */
static volatile sig_atomic_t stop_sig;
static int quiet_fd;                           /* never readable */
static int epfd;
static int pipefd[2], sp[4][2];                /* data providers */
static sem_t sem;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cv_gen;
static struct sockaddr_un acc_addr;
static int acc_fd;

#define MS 1000000L
static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}
static int stopping(void) { return __atomic_load_n(&stop, __ATOMIC_ACQUIRE); }

static void fail(int w, const char *what, long v, int err) {
    printf("FAIL %s: %s (value %ld, errno %d %s)\n", names[w], what, v, err, strerror(err));
    fflush(stdout);
}

/* A timeout of `ms` must not come back early. */
static void check_elapsed(int w, long t0, long ms) {
    long el = now_ns() - t0;
    if (el < (ms - 2) * MS) fail(w, "returned before its timeout", el / MS, 0);
}

static void *one(void *arg) {
    int w = (int)(long)arg;
    while (!stopping()) {
        long t0 = now_ns(), r = 0;
        errno = 0;
        switch (w) {
        case W_POLL: { struct pollfd p = { quiet_fd, POLLIN, 0 };
            if ((r = dsu_poll(&p, 1, 120)) != 0) fail(w, "expected timeout", r, errno); else check_elapsed(w, t0, 120);
            break; }
        case W_PPOLL: { struct pollfd p = { quiet_fd, POLLIN, 0 }; struct timespec ts = { 0, 120 * MS };
            if ((r = dsu_ppoll(&p, 1, &ts, NULL)) != 0) fail(w, "expected timeout", r, errno); else check_elapsed(w, t0, 120);
            break; }
        case W_SELECT: { fd_set s; FD_ZERO(&s); FD_SET(quiet_fd, &s); struct timeval tv = { 0, 120000 };
            if ((r = dsu_select(quiet_fd + 1, &s, NULL, NULL, &tv)) != 0) fail(w, "expected timeout", r, errno);
            else { check_elapsed(w, t0, 120); if (FD_ISSET(quiet_fd, &s)) fail(w, "fd left set on timeout", 0, 0); } break; }
        case W_PSELECT: { fd_set s; FD_ZERO(&s); FD_SET(quiet_fd, &s); struct timespec ts = { 0, 120 * MS };
            if ((r = dsu_pselect(quiet_fd + 1, &s, NULL, NULL, &ts, NULL)) != 0) fail(w, "expected timeout", r, errno);
            else { check_elapsed(w, t0, 120); if (FD_ISSET(quiet_fd, &s)) fail(w, "fd left set on timeout", 0, 0); } break; }
        case W_EPOLL: { struct epoll_event ev;
            if ((r = dsu_epoll_wait(epfd, &ev, 1, 120)) != 0) fail(w, "expected timeout", r, errno); else check_elapsed(w, t0, 120);
            break; }
        case W_EPOLLP: { struct epoll_event ev;
            if ((r = dsu_epoll_pwait(epfd, &ev, 1, 120, NULL)) != 0) fail(w, "expected timeout", r, errno); else check_elapsed(w, t0, 120);
            break; }
        case W_NANOSLEEP: { struct timespec ts = { 0, 120 * MS }, rem;
            if ((r = dsu_nanosleep(&ts, &rem)) != 0) fail(w, "expected 0", r, errno); else check_elapsed(w, t0, 120);
            break; }
        case W_CLOCKREL: { struct timespec ts = { 0, 120 * MS };
            if ((r = dsu_clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL)) != 0) fail(w, "expected 0", r, (int)r); else check_elapsed(w, t0, 120);
            break; }
        case W_CLOCKABS: { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_nsec += 120 * MS; if (ts.tv_nsec >= 1000000000L) { ts.tv_nsec -= 1000000000L; ts.tv_sec++; }
            if ((r = dsu_clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) != 0) fail(w, "expected 0", r, (int)r); else check_elapsed(w, t0, 120);
            break; }
        case W_USLEEP:
            if ((r = dsu_usleep(120000)) != 0) fail(w, "expected 0", r, errno); else check_elapsed(w, t0, 120);
            break;
        case W_SLEEP:
            if ((r = dsu_sleep(1)) != 0) fail(w, "expected 0 seconds left", r, errno); else check_elapsed(w, t0, 1000);
            break;
        case W_CONDTIMED: { struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 120 * MS; if (ts.tv_nsec >= 1000000000L) { ts.tv_nsec -= 1000000000L; ts.tv_sec++; }
            pthread_mutex_lock(&m);
            /* loop: spurious wake-ups (e.g. while an update is applied) are allowed */
            do r = dsu_pthread_cond_timedwait(&cv, &m, &ts); while (r == 0);
            if (pthread_mutex_trylock(&m) != EBUSY) fail(w, "mutex not held on return", 0, 0);
            pthread_mutex_unlock(&m);
            if (r != ETIMEDOUT) fail(w, "expected ETIMEDOUT", r, (int)r); else check_elapsed(w, t0, 118);
            break; }
        case W_CONDWAIT: { pthread_mutex_lock(&m); int g = cv_gen;
            while (g == cv_gen && !stopping()) dsu_pthread_cond_wait(&cv, &m);
            pthread_mutex_unlock(&m); break; }
        case W_READ: { char c;
            if ((r = dsu_read(pipefd[0], &c, 1)) != 1) fail(w, "expected 1 byte", r, errno);
            break; }
        case W_RECV: { char c;
            if ((r = dsu_recv(sp[0][0], &c, 1, 0)) != 1) fail(w, "expected 1 byte", r, errno);
            break; }
        case W_RECVFROM: { char c;
            if ((r = dsu_recvfrom(sp[1][0], &c, 1, 0, NULL, NULL)) != 1) fail(w, "expected 1 byte", r, errno);
            break; }
        case W_RECVMSG: { char c; struct iovec iov = { &c, 1 }; struct msghdr mh; memset(&mh, 0, sizeof mh);
            mh.msg_iov = &iov; mh.msg_iovlen = 1;
            if ((r = dsu_recvmsg(sp[2][0], &mh, 0)) != 1) fail(w, "expected 1 byte", r, errno);
            break; }
        case W_ACCEPT: case W_ACCEPT4: {
            int fd = w == W_ACCEPT ? dsu_accept(acc_fd, NULL, NULL) : dsu_accept4(acc_fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) fail(w, "accept failed", fd, errno); else close(fd);
            break; }
        case W_SEM:
            if ((r = dsu_sem_wait(&sem)) != 0) fail(w, "expected 0", r, errno);
            break;
        case W_WAITPID: { pid_t c = fork();
            if (c == 0) { struct timespec ts = { 0, 80 * MS }; nanosleep(&ts, NULL); _exit(7); }
            int st = 0;
            if ((r = dsu_waitpid(c, &st, 0)) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 7) fail(w, "expected the child's exit", r, errno);
            break; }
        case W_JOIN: { pthread_t t; void *ret = NULL;
            extern void *joinee(void *);
            pthread_create(&t, NULL, joinee, NULL);
            if ((r = dsu_pthread_join(t, &ret)) != 0 || ret != (void *)42) fail(w, "expected 42 from joinee", r, (int)r);
            break; }
        }
        if (DSU_CALL(tick)() < 1) fail(w, "tick", 0, 0);
        __atomic_add_fetch(&counts[w], 1, __ATOMIC_RELAXED);
        DSU_UPDATE_POINT("wrappers");
    }
    return NULL;
}

void *joinee(void *a) { (void)a; dsu_usleep(50000); return (void *)42; }

/* Provides data every 100 ms to the read/recv/accept/sem/cond threads,
 * until every worker is out (a worker blocked in read() when `stop` is set
 * needs one more byte to see it). */
static void *provider(void *a) {
    (void)a;
    while (!__atomic_load_n(&workers_gone, __ATOMIC_ACQUIRE)) {
        dsu_usleep(100000);
        if (write(pipefd[1], "x", 1) != 1) fail(W_READ, "write", 0, errno);
        for (int i = 0; i < 3; i++) if (send(sp[i][1], "x", 1, 0) != 1) fail(W_RECV, "send", 0, errno);
        for (int i = 0; i < 2; i++) {
            int c = socket(AF_UNIX, SOCK_STREAM, 0);
            if (connect(c, (struct sockaddr *)&acc_addr, sizeof acc_addr) < 0) fail(W_ACCEPT, "connect", 0, errno);
            close(c);
        }
        sem_post(&sem);
        pthread_mutex_lock(&m); cv_gen++; pthread_cond_broadcast(&cv); pthread_mutex_unlock(&m);
    }
    return NULL;
}

static void on_term(int s) { (void)s; stop_sig = 1; }

int main(void) {
    /* Line-buffered: what was printed survives an abnormal exit (a
     * sanitizer report ends the process with _exit). */
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    int q[2];
    if (pipe(q) < 0 || pipe(pipefd) < 0) return 1;
    quiet_fd = q[0];
    epfd = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN };
    ev.data.fd = quiet_fd;
    epoll_ctl(epfd, EPOLL_CTL_ADD, quiet_fd, &ev);
    for (int i = 0; i < 4; i++) if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp[i]) < 0) return 1;
    sem_init(&sem, 0, 0);
    acc_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&acc_addr, 0, sizeof acc_addr);
    acc_addr.sun_family = AF_UNIX;
    snprintf(acc_addr.sun_path + 1, sizeof acc_addr.sun_path - 1, "dsu-wrappers-%d", (int)getpid());
    if (bind(acc_fd, (struct sockaddr *)&acc_addr, sizeof acc_addr) < 0 || listen(acc_fd, 64) < 0) return 1;
    pthread_t th[W_N + 1];
    for (int i = 0; i < W_N; i++) {
        pthread_create(&th[i], NULL, one, (void *)(long)i);
        char nm[16];
        snprintf(nm, sizeof nm, "w-%.13s", names[i]);
        pthread_setname_np(th[i], nm);
    }
    pthread_create(&th[W_N], NULL, provider, NULL);
    pthread_setname_np(th[W_N], "provider");
    printf("started\n");
    fflush(stdout);
    while (!stop_sig) dsu_usleep(20000);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    /* The provider keeps feeding blocked readers until everyone is out. */
    for (int i = 0; i < W_N; i++) {
        if (i == W_SEM) for (int k = 0; k < 4; k++) sem_post(&sem);
        pthread_join(th[i], NULL);
    }
    __atomic_store_n(&workers_gone, 1, __ATOMIC_RELEASE);
    pthread_join(th[W_N], NULL);
    for (int i = 0; i < W_N; i++) printf("count %s %ld\n", names[i], counts[i]);
    printf("exit ok\n");
    return 0;
}
