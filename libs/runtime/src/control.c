/* control.c -- the control thread: serves the line protocol on
 * $DSU_RUN_DIR/<pid>.sock and acts as the update coordinator.
 *
 * It is deliberately not a program thread: it is created with the real
 * pthread_create (so it is not registered), blocks every signal, and is
 * excluded from quiescence.  Work that would otherwise land on the
 * program's critical path (backtrace warm-up, symbol tables) happens here
 * before the socket is opened. */
#define _GNU_SOURCE
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/single_threaded.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include "internal.h"


static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static pid_t sock_pid;          /* process that owns sock_path */
static int listen_fd = -1;
static int prepared;            /* symbol tables and registry walked */

static void unlink_at_exit(void) {
    /* sock_pid is published (release) after sock_path is complete. */
    if (__atomic_load_n(&sock_pid, __ATOMIC_ACQUIRE) == getpid()) unlink(sock_path);
}

static int exe_bias_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    *(uintptr_t *)data = (uintptr_t)info->dlpi_addr;
    return 1;                   /* the first object is the executable */
}

static void prepare(void) {
    if (prepared) return;
    prepared = 1;
    void *frames[4];
    backtrace(frames, 4);       /* first use dlopens libgcc_s: do it now */
    dsu__update_init();
    dsu__patch_limit_init();
    uintptr_t bias = 0;
    dl_iterate_phdr(exe_bias_cb, &bias);
    const char *err;
    if (dsu__symtab_add_file("exe", "/proc/self/exe", bias, &err) < 0)
        fprintf(stderr, "dsu: cannot read the program's symbols (%s); activeness "
                        "checks will not see program functions\n", err);
}

/* Creates the run directory and binds the socket.  Returns the listening
 * fd or -1 after printing what went wrong. */
static int open_socket(void) {
    const char *dir = getenv("DSU_RUN_DIR");
    char defdir[64];
    if (!dir || !*dir) {
        snprintf(defdir, sizeof defdir, "/tmp/dsu-%u", (unsigned)geteuid());
        dir = defdir;
    }
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "dsu: cannot create run directory %s: %s; set DSU_RUN_DIR to a writable directory\n", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 022)) {
        fprintf(stderr, "dsu: run directory %s must be a directory owned by uid %u and not "
                        "group/world-writable; fix it or set DSU_RUN_DIR\n", dir, (unsigned)geteuid());
        return -1;
    }
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%d.sock", dir, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
        fprintf(stderr, "dsu: socket path under %s is too long; use a shorter DSU_RUN_DIR\n", dir);
        return -1;
    }
    /* Bound and listening under a temporary name, then renamed: the socket
     * appears under <pid>.sock only once it accepts, so a client that sees
     * the file never gets ECONNREFUSED from the window before listen(). */
    struct sockaddr_un tmp = sa;
    n = snprintf(tmp.sun_path, sizeof tmp.sun_path, "%s/%d.sock.new", dir, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp.sun_path) {
        fprintf(stderr, "dsu: socket path under %s is too long; use a shorter DSU_RUN_DIR\n", dir);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { fprintf(stderr, "dsu: socket: %s\n", strerror(errno)); return -1; }
    unlink(tmp.sun_path);       /* stale socket of an earlier process with our pid */
    mode_t old = umask(077);
    int r = bind(fd, (struct sockaddr *)&tmp, sizeof tmp);
    umask(old);
    if (r < 0 || chmod(tmp.sun_path, 0600) < 0 || listen(fd, SOMAXCONN) < 0 ||
        rename(tmp.sun_path, sa.sun_path) < 0) {
        fprintf(stderr, "dsu: cannot serve %s: %s\n", sa.sun_path, strerror(errno));
        unlink(tmp.sun_path);
        close(fd);
        return -1;
    }
    memcpy(sock_path, sa.sun_path, sizeof sock_path);
    __atomic_store_n(&sock_pid, getpid(), __ATOMIC_RELEASE);
    return fd;
}

static void *control_main(void *arg) {
    (void)arg;
    __atomic_store_n(&dsu__control_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    pthread_setname_np(pthread_self(), "dsu-control");
    prepare();
    if (listen_fd < 0) listen_fd = open_socket();   /* eager start: not opened yet */
    if (listen_fd < 0) return NULL;
    dsu__serve(listen_fd);        /* returns only if serving became impossible */
    return NULL;
}

static void start_thread(void) {
    pthread_attr_t a;
    pthread_t th;
    sigset_t all, old;
    sigfillset(&all);
    /* The control thread inherits this mask: process-directed signals
     * must go to the program's own threads, not to us. */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int r = dsu__real_pthread_create(&th, &a, control_main, NULL);
    pthread_attr_destroy(&a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) fprintf(stderr, "dsu: cannot start the control thread: %s; updates disabled\n", strerror(r));
}

/* ---- lazy start ----
 *
 * A second thread costs a single-threaded program more than our wrappers do:
 * glibc switches every syscall wrapper (cancellation), malloc and stdio to
 * their multi-threaded paths once a thread exists, for good.  So by default
 * the socket is opened before main() but the control thread is only started
 * on first contact: the listening socket raises dsu__signo (F_SETSIG) on
 * the main thread when a client connects; the handler sets dsu__pending to
 * DSU__PENDING_CONTROL (no coordinator exists yet, so nobody else writes
 * it), and the next update point or wrapped call starts the thread from
 * normal context (a wrapped call the thread is blocked in is made to return
 * EINTR for it, then retried; see on_signal in threads.c).  A program
 * that creates threads of its own is multi-threaded anyway: the thread
 * starts then.  DSU_CONTROL=eager starts it before main() instead. */

static int started;             /* the control thread was created */
int dsu__lazy_fd = -1;          /* listening fd armed for the signal, or -1 */

static int lazy_wanted(void) {
    /* Already multi-threaded before main() (a sanitizer's threads, a
     * preloaded library's): nothing to save, and the signal could land on
     * a thread we do not control. */
    if (!__libc_single_threaded) return 0;
#if defined(__SANITIZE_THREAD__)
    return 0;                   /* TSan defers and re-dispatches signals itself */
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    return 0;
#endif
#endif
    const char *m = getenv("DSU_CONTROL");
    if (m && strcmp(m, "eager") == 0) return 0;
    if (m && *m && strcmp(m, "lazy") != 0)
        fprintf(stderr, "dsu: ignoring DSU_CONTROL=%s (want lazy or eager); using lazy\n", m);
    return 1;
}

/* Opens the socket and asks for dsu__signo on the calling (main) thread
 * when a client connects.  Returns 0, or -1 to start eagerly instead. */
static int arm_lazy(void) {
    listen_fd = open_socket();
    if (listen_fd < 0) return -1;
    struct f_owner_ex owner = { F_OWNER_TID, (pid_t)syscall(SYS_gettid) };
    int fl = fcntl(listen_fd, F_GETFL);
    if (fcntl(listen_fd, F_SETSIG, dsu__signo) < 0 || fcntl(listen_fd, F_SETOWN_EX, &owner) < 0 ||
        fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_ASYNC) < 0)
        return -1;              /* the socket stays open; the thread will use it */
    __atomic_store_n(&dsu__lazy_fd, listen_fd, __ATOMIC_RELEASE);
    /* A client that connected between listen() and O_ASYNC raised no
     * signal: serve it now (we are in normal context here). */
    struct pollfd pf = { listen_fd, POLLIN, 0 };
    if (poll(&pf, 1, 0) > 0) dsu__control_wake();
    return 0;
}

void dsu__control_wake(void) {
    if (__atomic_exchange_n(&started, 1, __ATOMIC_ACQ_REL)) return;
    int fd = __atomic_exchange_n(&dsu__lazy_fd, -1, __ATOMIC_ACQ_REL);
    if (fd >= 0) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_ASYNC);
    }
    int expect = DSU__PENDING_CONTROL;
    __atomic_compare_exchange_n(&dsu__pending, &expect, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    start_thread();
}

void dsu__control_start(void) {
    atexit(unlink_at_exit);
    if (!lazy_wanted() || arm_lazy() < 0) dsu__control_wake();
    /* Still before main(): any unregistered thread now is a sanitizer's. */
    dsu__note_foreign_threads();
}

/* In a forked child: the parent's control thread does not exist here and
 * its socket belongs to the parent.  Start over with our own. */
void dsu__control_atfork_child(void) {
    if (listen_fd >= 0) close(listen_fd);
    listen_fd = -1;
    dsu__serve_atfork_child();
    __atomic_store_n(&dsu__lazy_fd, -1, __ATOMIC_RELEASE);
    __atomic_store_n(&started, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&sock_pid, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&dsu__control_tid, 0, __ATOMIC_RELEASE);
    const char *d = getenv("DSU_DISABLE");
    if (d && strcmp(d, "1") == 0) return;
    if (!lazy_wanted() || arm_lazy() < 0) dsu__control_wake();
}
