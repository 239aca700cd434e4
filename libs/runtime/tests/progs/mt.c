#define _GNU_SOURCE
/* mt -- multi-threaded program: threads blocked in accept, cond_wait and
 * poll, a busy thread at update points, a sleeper inside slow_op (the
 * activeness case) and a thread that keeps creating/joining short-lived
 * threads, and one that keeps cancelling a thread parked/blocked in the
 * runtime (exit while parked or blocked must not deadlock).  Output lines:
 *   busy v=<tag> i=<n> r=<work(n)>      v1: r=n+1   v2: r=n+2
 *   slow <tag> start|end <n>            printed by slow_op itself */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "instrumented.h"

DSU_PROGRAM("mt", "mt-v1");

DSU_FN(int, work, "work", "tests/progs/mt.c", (int x)) { return x + 1; }
DSU_FN(const char *, tag, "tag", "tests/progs/mt.c", (void)) { return "v1"; }
DSU_FN(void, slow_op, "slow_op", "tests/progs/mt.c", (int n)) {
    printf("slow v1 start %d\n", n);
    fflush(stdout);
    struct timespec ts = { 2, 500000000 };
    dsu_nanosleep(&ts, NULL);
    printf("slow v1 end %d\n", n);
    fflush(stdout);
}

static volatile sig_atomic_t stop_sig;
static int stop;                           /* atomic */
static void on_term(int s) { (void)s; stop_sig = 1; }
static int stopping(void) { return __atomic_load_n(&stop, __ATOMIC_ACQUIRE); }

static int lfd;
static struct sockaddr_un addr;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t c = PTHREAD_COND_INITIALIZER;
static int pipefd[2];

static void *acceptor(void *a) {
    (void)a;
    while (!stopping()) {
        int fd = dsu_accept(lfd, NULL, NULL);
        if (fd >= 0) close(fd);
    }
    return NULL;
}

static void *condwaiter(void *a) {
    (void)a;
    pthread_mutex_lock(&m);
    while (!stopping()) dsu_pthread_cond_wait(&c, &m);
    pthread_mutex_unlock(&m);
    return NULL;
}

static void *poller(void *a) {
    (void)a;
    struct pollfd p = { pipefd[0], POLLIN, 0 };
    while (!stopping()) {
        int r = dsu_poll(&p, 1, -1);
        if (r < 0) { perror("poller: poll returned an error"); exit(3); }
    }
    return NULL;
}

static void *busy(void *a) {
    (void)a;
    for (int i = 0; !stopping(); i++) {
        DSU_UPDATE_POINT("busy");
        int r = DSU_CALL(work)(i);
        const char *t = DSU_CALL(tag)();
        if (i % 20000 == 0) { printf("busy v=%s i=%d r=%d\n", t, i, r); fflush(stdout); }
    }
    return NULL;
}

static void *sleeper(void *a) {
    (void)a;
    for (int n = 0; !stopping(); n++) {
        DSU_CALL(slow_op)(n);
        dsu_usleep(300000);
    }
    return NULL;
}

static void *shortlived(void *a) {
    (void)a;
    DSU_UPDATE_POINT("short");
    dsu_usleep(20000);
    return NULL;
}

static void *churn(void *a) {
    (void)a;
    while (!stopping()) {
        pthread_t t;
        if (pthread_create(&t, NULL, shortlived, NULL) == 0) dsu_pthread_join(t, NULL);
        dsu_usleep(5000);
    }
    return NULL;
}

static void *victim(void *a) {
    (void)a;
    for (;;) {
        DSU_UPDATE_POINT("victim");
        struct pollfd p = { pipefd[0], 0, 0 };    /* no events requested: never ready */
        dsu_poll(&p, 1, 3);
    }
    return NULL;
}

static void *canceller(void *a) {
    (void)a;
    int off = getenv("MT_NO_CANCEL") != NULL;
    while (off && !stopping()) dsu_usleep(20000);
    while (!stopping()) {
        pthread_t t;
        if (pthread_create(&t, NULL, victim, NULL) != 0) continue;
        dsu_usleep(7000);
        pthread_cancel(t);
        dsu_pthread_join(t, NULL);
    }
    return NULL;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path + 1, sizeof addr.sun_path - 1, "dsu-mt-test-%d", (int)getpid());
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 4) < 0) { perror("bind"); return 1; }
    if (pipe(pipefd) < 0) return 1;
    struct { void *(*fn)(void *); const char *name; } spec[] = {
        { acceptor, "acceptor" }, { condwaiter, "condwaiter" }, { poller, "poller" },
        { busy, "busy" }, { sleeper, "sleeper" }, { churn, "churn" }, { canceller, "canceller" },
    };
    pthread_t th[7];
    for (int i = 0; i < 7; i++) {
        if (pthread_create(&th[i], NULL, spec[i].fn, NULL) != 0) { perror("pthread_create"); return 1; }
        pthread_setname_np(th[i], spec[i].name);
    }
    while (!stop_sig) dsu_usleep(50000);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    /* Wake every blocked thread so it sees `stop`. */
    pthread_mutex_lock(&m); pthread_cond_broadcast(&c); pthread_mutex_unlock(&m);
    if (write(pipefd[1], "x", 1) != 1) return 1;
    int cfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(cfd, (struct sockaddr *)&addr, sizeof addr) < 0) perror("connect");
    for (int i = 0; i < 7; i++) pthread_join(th[i], NULL);
    close(cfd);
    printf("exit ok\n");
    return 0;
}
