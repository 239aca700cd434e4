/* threads.c -- thread registry, update points, parking, the wake-up signal
 * and the runtime's constructor.
 *
 * Every program thread has a struct dsu__thread.  Its `state` is the
 * handshake with the coordinator (the control thread):
 *   RUNNING  executing program code: never quiescent;
 *   BLOCKED  inside a dsu_* blocking wrapper: quiescent once its stack has
 *            been captured by our signal handler for the current round;
 *   PARKED   waiting at an update point: quiescent, stack in park_stack.
 * The coordinator stores dsu__pending=1 then reads states; a thread leaving
 * a wrapper stores RUNNING then reads dsu__pending (both seq_cst: Dekker),
 * so a thread counted as BLOCKED cannot run program code before it parks. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <ucontext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "internal.h"

int dsu__pending;
extern int dsu__pending_h __attribute__((alias("dsu__pending"), visibility("hidden")));
pthread_mutex_t dsu__reg_lock = PTHREAD_MUTEX_INITIALIZER;
struct dsu__thread *dsu__threads;
pthread_mutex_t dsu__park_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t dsu__park_cond = PTHREAD_COND_INITIALIZER;
pthread_cond_t dsu__coord_cond = PTHREAD_COND_INITIALIZER;
unsigned dsu__epoch;
int dsu__signo;
pid_t dsu__control_tid;
__thread struct dsu__thread *dsu__self __attribute__((tls_model("local-exec")));

static pthread_mutex_t points_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dsu_point_site *points;
static pthread_key_t self_key;
static int (*real_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

/* Referenced by nothing: dsu-cc links with -Wl,-u,dsu__link_anchor so this
 * object (and its constructor) is linked even into a program that uses no
 * update point, wrapper or thread. */
int dsu__link_anchor;

uint64_t dsu__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t dsu__wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void dsu__thread_name(pid_t tid, char *out, size_t n) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t r = read(fd, out, n - 1);
    close(fd);
    if (r < 0) r = 0;
    out[r] = 0;
    char *nl = strchr(out, '\n');
    if (nl) *nl = 0;
}

/* ---- update points ---- */

void dsu__point_register(struct dsu_point_site *site) {
    pthread_mutex_lock(&points_lock);
    if (!__atomic_load_n(&site->seen, __ATOMIC_RELAXED)) {
        site->next = points;
        points = site;
        __atomic_store_n(&site->seen, 1, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&points_lock);
}

void dsu__points_foreach(void (*cb)(const char *name, void *ud), void *ud) {
    pthread_mutex_lock(&points_lock);
    for (struct dsu_point_site *s = points; s; s = s->next) cb(s->name, ud);
    pthread_mutex_unlock(&points_lock);
}

/* Parks the calling thread until the coordinator ends the current round
 * (bumps dsu__epoch).  Returns at once if no update is pending.  Captures
 * the stack first so the coordinator can check activeness. */
void dsu__park(struct dsu__thread *t, const char *point) {
    int saved = errno, oldcancel;
    int p = __atomic_load_n(&dsu__pending, __ATOMIC_SEQ_CST);
    if (!p) return;
    if (p == DSU__PENDING_UNWIND) {    /* applied; maybe this thread unwinds */
        dsu__frames_take(t, DSU_UNWIND_AFTER);
        errno = saved;
        return;
    }
    if (p == DSU__PENDING_CONTROL) {   /* first contact: start the control thread */
        dsu__control_wake();
        errno = saved;
        return;
    }
    if (!dsu__point_allowed(point)) {  /* go on to a point the patch allows */
        __atomic_store_n(&t->passed_point, point, __ATOMIC_RELAXED);
        errno = saved;
        return;
    }
    __atomic_store_n(&t->passed_point, NULL, __ATOMIC_RELAXED);
    /* pthread_cond_wait is a cancellation point: a thread cancelled while
     * parked would die holding park_lock.  The cancel is acted upon at the
     * program's next cancellation point instead. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &oldcancel);
    t->park_n = backtrace(t->park_stack, DSU__MAX_FRAMES);
    __atomic_store_n(&t->last_point, point, __ATOMIC_RELAXED);
    t->park_start_ns = dsu__now_ns();
    pthread_mutex_lock(&dsu__park_lock);
    if (__atomic_load_n(&dsu__pending, __ATOMIC_SEQ_CST)) {
        unsigned e = dsu__epoch;
        __atomic_store_n(&t->state, DSU__PARKED, __ATOMIC_SEQ_CST);
        pthread_cond_broadcast(&dsu__coord_cond);
        /* The coordinator sets us back to RUNNING when it bumps the epoch. */
        while (dsu__epoch == e) pthread_cond_wait(&dsu__park_cond, &dsu__park_lock);
    }
    pthread_mutex_unlock(&dsu__park_lock);
    pthread_setcancelstate(oldcancel, NULL);
    /* The update replaced a function active here: unwind (frames.c). */
    if (__atomic_load_n(&t->unwind, __ATOMIC_SEQ_CST)) dsu__frames_take(t, DSU_UNWIND_AFTER);
    errno = saved;
}

void dsu__update_point(const char *name) {
    struct dsu__thread *t = dsu__self;
    if (!t) return;
    if (__atomic_load_n(&t->txn, __ATOMIC_RELAXED) > 0 && !dsu__skip_txn) {
        /* no update inside a transaction, but the control thread may start */
        if (__atomic_load_n(&dsu__pending, __ATOMIC_SEQ_CST) == DSU__PENDING_CONTROL) dsu__control_wake();
        return;
    }
    dsu__park(t, name);
}

void dsu__txn_begin(const char *name) {
    (void)name;
    struct dsu__thread *t = dsu__self;
    if (t) __atomic_store_n(&t->txn, t->txn + 1, __ATOMIC_RELAXED);
}

void dsu__txn_end(const char *name) {
    (void)name;
    struct dsu__thread *t = dsu__self;
    if (t && t->txn > 0) __atomic_store_n(&t->txn, t->txn - 1, __ATOMIC_RELAXED);
}

/* ---- the wake-up signal ---- */

/* True when this signal makes the interrupted syscall fail with EINTR, as
 * opposed to being restarted by the kernel (SA_RESTART: read, recv,
 * accept...) or no syscall at all.  Only then may the wrapper treat its
 * EINTR as ours: a flag left set by a restarted call would swallow the
 * program's own EINTR later (a SIGTERM meant to end a blocking read).  On
 * x86-64 Linux the kernel has already stored -EINTR in rax when the
 * handler runs (a restarted call has its syscall number there instead). */
static int causes_eintr(void *ucv) {
#if defined(__x86_64__)
    const ucontext_t *uc = ucv;
    return uc && uc->uc_mcontext.gregs[REG_RAX] == -EINTR;
#else
    (void)ucv;
    return 1;
#endif
}

/* Makes a call that the kernel is about to restart (SA_RESTART: read,
 * recv, accept...) fail with EINTR instead, so the wrapper it sits in gets
 * control back; the wrapper retries it.  Only for a thread BLOCKED inside
 * one of our wrappers.  On x86-64 Linux a restart shows in the handler's
 * context as rip pointing at the `syscall` instruction (0f 05) with the
 * syscall number in rax: skip the instruction and return -EINTR.  Returns
 * 1 when done (or when the call fails with EINTR anyway). */
static int force_eintr(void *ucv) {
    if (causes_eintr(ucv)) return 1;
#if defined(__x86_64__)
    ucontext_t *uc = ucv;
    const unsigned char *ip = (const unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
    long long nr = uc->uc_mcontext.gregs[REG_RAX];
    if (ip && ip[0] == 0x0f && ip[1] == 0x05 && nr >= 0 && nr < 1024) {
        uc->uc_mcontext.gregs[REG_RIP] += 2;
        uc->uc_mcontext.gregs[REG_RAX] = -EINTR;
        return 1;
    }
#endif
    return 0;
}

/* Runs on a BLOCKED thread when the coordinator wants its stack: captures
 * it once per round and flags the EINTR it may cause as ours so the
 * wrapper retries.  backtrace() was warmed up by the control thread, so it
 * does not allocate or dlopen here. */
static void on_signal(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    int saved = errno;
    struct dsu__thread *t = dsu__self;
    if (si->si_code == POLL_IN && si->si_fd >= 0 &&
        si->si_fd == __atomic_load_n(&dsu__lazy_fd, __ATOMIC_ACQUIRE)) {
        /* A client connected and the control thread is not running.  It
         * is started from normal context (pthread_create is not
         * async-signal-safe): by the next update point or wrapped call, or
         * right away by the wrapped call this thread is blocked in, which
         * is made to return EINTR (ours: it starts the thread and retries). */
        int idle = 0;
        __atomic_compare_exchange_n(&dsu__pending, &idle, DSU__PENDING_CONTROL, 0,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
        if (t && __atomic_load_n(&t->state, __ATOMIC_SEQ_CST) == DSU__BLOCKED && force_eintr(uc))
            t->intr = 1;
    } else if (t && si->si_code == SI_TKILL && si->si_pid == getpid() &&
        __atomic_load_n(&t->state, __ATOMIC_SEQ_CST) == DSU__BLOCKED) {
        if (causes_eintr(uc)) t->intr = 1;
        /* After an update that maps its frames: the call must return so the
         * thread can unwind (it is made again in the new code). */
        else if (__atomic_load_n(&t->unwind, __ATOMIC_SEQ_CST) && force_eintr(uc)) t->intr = 1;
        unsigned want = __atomic_load_n(&t->sig_want, __ATOMIC_ACQUIRE);
        if (want != __atomic_load_n(&t->sig_have, __ATOMIC_RELAXED)) {
            t->sig_n = backtrace(t->sig_stack, DSU__MAX_FRAMES);
            __atomic_store_n(&t->sig_have, want, __ATOMIC_RELEASE);
        }
    }
    errno = saved;
}

static int parse_signal(const char *s) {
    if (!s || !*s) return SIGRTMIN + 5;
    char *end;
    if (strncmp(s, "SIGRTMIN+", 9) == 0) {
        long v = strtol(s + 9, &end, 10);
        if (*end == 0 && v >= 0 && SIGRTMIN + v <= SIGRTMAX) return SIGRTMIN + (int)v;
    } else {
        long v = strtol(s, &end, 10);
        if (*end == 0 && v >= SIGRTMIN && v <= SIGRTMAX) return (int)v;
    }
    fprintf(stderr, "dsu: ignoring DSU_SIGNAL=%s (want SIGRTMIN+N or a realtime "
                    "signal number %d..%d); using SIGRTMIN+5\n", s, SIGRTMIN, SIGRTMAX);
    return SIGRTMIN + 5;
}

/* ---- registry ---- */

static void unlink_locked(struct dsu__thread *t) {
    for (struct dsu__thread **p = &dsu__threads; *p; p = &(*p)->next)
        if (*p == t) { *p = t->next; return; }
}

/* TLS destructor: the thread is exiting (returned, pthread_exit, or
 * cancelled), so it stops being a program thread. */
#if defined(__SANITIZE_ADDRESS__)
void __asan_handle_no_return(void);
#endif
static void thread_gone(void *p) {
    struct dsu__thread *t = p;
#if defined(__SANITIZE_ADDRESS__)
    /* A thread cancelled inside program code unwound without running the
     * epilogues that unpoison its frames' redzones; this destructor runs
     * on that dead stack (below the trampoline, which loops and so is no
     * longer a tail call).  Unpoison it, as ASan does before a longjmp. */
    __asan_handle_no_return();
#endif
    sigset_t s, old;
    sigemptyset(&s);
    sigaddset(&s, dsu__signo);
    pthread_sigmask(SIG_BLOCK, &s, &old);  /* handler must not see a freed record */
    pthread_mutex_lock(&dsu__reg_lock);
    dsu__frames_abandon(t);
    unlink_locked(t);
    t->nomap = NULL;            /* this thread's TLS goes away with it */
    dsu__self = NULL;
    pthread_mutex_unlock(&dsu__reg_lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    dsu__frames_free(t->frames);
    free(t);
}

static struct dsu__thread *new_record(void) {
    struct dsu__thread *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    pthread_mutex_lock(&dsu__reg_lock);
    t->next = dsu__threads;
    dsu__threads = t;
    pthread_mutex_unlock(&dsu__reg_lock);
    return t;
}

static void resolve_real(void) {
    if (__atomic_load_n(&real_create, __ATOMIC_ACQUIRE)) return;
    /* A sanitizer runtime linked statically into the executable (clang)
     * defines its pthread_create interceptor in the executable itself,
     * where ours replaces it and RTLD_NEXT would skip it: call the
     * interceptor by its own name when there is one. */
    void *f = dlsym(RTLD_DEFAULT, "__interceptor_pthread_create");
    if (!f) f = dlsym(RTLD_DEFAULT, "___interceptor_pthread_create");
    if (!f) f = dlsym(RTLD_NEXT, "pthread_create");
    if (!f) {
        fprintf(stderr, "dsu: cannot find the real pthread_create (%s); "
                        "link the program with -ldl -pthread\n", dlerror());
        abort();
    }
    __atomic_store_n(&real_create, (int (*)(pthread_t *, const pthread_attr_t *,
                     void *(*)(void *), void *))f, __ATOMIC_RELEASE);
}

int dsu__real_pthread_create(pthread_t *th, const pthread_attr_t *a,
                             void *(*fn)(void *), void *arg) {
    resolve_real();
    return real_create(th, a, fn, arg);
}

struct start { void *(*fn)(void *); void *arg; struct dsu__thread *t; };

static void *trampoline(void *p) {
    struct start s = *(struct start *)p;
    free(p);
    s.t->pth = pthread_self();
    s.t->nomap = &dsu__nomap;   /* before the tid (release) publishes the thread */
    dsu__self = s.t;
    pthread_setspecific(self_key, s.t);
    __atomic_store_n(&s.t->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    /* s.fn is the start routine's stub (its slot): after an unwind for a
     * frame-mapping update it enters the new code in resume mode. */
    for (;;) {
        void *r = s.fn(s.arg);
        if (!dsu__unwinding) return r;
        dsu__frames_rebuild();
    }
}

uintptr_t dsu__thread_entry_addr(void) { return (uintptr_t)&trampoline; }

pid_t dsu__gettid(void) { return (pid_t)syscall(SYS_gettid); }

/* Interposes libc's pthread_create (the executable is linked -rdynamic,
 * so shared libraries bind to this one too).  The record is inserted by
 * the parent, before the thread exists, so the coordinator never sees a
 * live thread it does not know (tid 0 = starting, not quiescent). */
int pthread_create(pthread_t *th, const pthread_attr_t *attr,
                   void *(*fn)(void *), void *arg) {
    resolve_real();
    /* The process is about to be multi-threaded anyway: a lazily started
     * control thread costs nothing more from here on. */
    if (__atomic_load_n(&dsu__lazy_fd, __ATOMIC_ACQUIRE) >= 0) dsu__control_wake();
    struct dsu__thread *t = new_record();
    struct start *s = malloc(sizeof *s);
    if (!t || !s) {
        if (t) { pthread_mutex_lock(&dsu__reg_lock); unlink_locked(t); pthread_mutex_unlock(&dsu__reg_lock); free(t); }
        free(s);
        return EAGAIN;
    }
    *s = (struct start){ fn, arg, t };
    int r = real_create(th, attr, trampoline, s);
    if (r != 0) {
        pthread_mutex_lock(&dsu__reg_lock);
        unlink_locked(t);
        pthread_mutex_unlock(&dsu__reg_lock);
        free(t);
        free(s);
    }
    return r;
}

/* ---- fork ---- */

static void atfork_prepare(void) {
    pthread_mutex_lock(&points_lock);
    pthread_mutex_lock(&dsu__reg_lock);
    pthread_mutex_lock(&dsu__park_lock);
}

static void atfork_parent(void) {
    pthread_mutex_unlock(&dsu__park_lock);
    pthread_mutex_unlock(&dsu__reg_lock);
    pthread_mutex_unlock(&points_lock);
}

/* The child has only the forking thread: drop every other record, forget
 * any update in flight, and give the child its own control socket. */
static void atfork_child(void) {
    struct dsu__thread *t = dsu__threads, *next;
    for (; t; t = next) {
        next = t->next;
        if (t != dsu__self) free(t);
    }
    dsu__threads = dsu__self;
    if (dsu__self) {
        dsu__self->next = NULL;
        dsu__self->tid = (pid_t)syscall(SYS_gettid);
        dsu__self->state = DSU__RUNNING;
        dsu__self->nomap = &dsu__nomap;   /* the child's copy (same address) */
    }
    dsu__pending = 0;
    dsu__frames_atfork_child();
    dsu__epoch++;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    dsu__park_cond = c;
    dsu__coord_cond = c;
    pthread_mutex_unlock(&dsu__park_lock);
    pthread_mutex_unlock(&dsu__reg_lock);
    pthread_mutex_unlock(&points_lock);
    dsu__control_atfork_child();
}

int dsu__skip_activeness, dsu__skip_txn;

/* Parses DSU_UNSAFE_SKIP_CHECKS (see internal.h). */
static void parse_skip_checks(void) {
    const char *v = getenv("DSU_UNSAFE_SKIP_CHECKS");
    if (!v || !*v) return;
    dsu__skip_activeness = strstr(v, "activeness") != NULL;
    dsu__skip_txn = strstr(v, "transactions") != NULL;
    fprintf(stderr, "dsu: DSU_UNSAFE_SKIP_CHECKS=%s: the runtime will apply updates its safety checks "
                    "refuse (%s%s); for the safety evaluation only, never in production\n", v,
            dsu__skip_activeness ? "activeness " : "", dsu__skip_txn ? "transactions" : "");
}

void dsu__threads_init(void) {
    resolve_real();
    parse_skip_checks();
    dsu__signo = parse_signal(getenv("DSU_SIGNAL"));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(dsu__signo, &sa, NULL);
    pthread_key_create(&self_key, thread_gone);
    struct dsu__thread *t = new_record();
    if (t) {
        t->pth = pthread_self();
        t->nomap = &dsu__nomap;
        t->tid = (pid_t)syscall(SYS_gettid);
        dsu__self = t;
        pthread_setspecific(self_key, t);
    }
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

/* Runs before main: registers the main thread and starts the control
 * thread (unless DSU_DISABLE=1). */
__attribute__((constructor)) static void dsu__init(void) {
    dsu__threads_init();
    const char *d = getenv("DSU_DISABLE");
    if (d && strcmp(d, "1") == 0) return;
    dsu__control_start();
}
