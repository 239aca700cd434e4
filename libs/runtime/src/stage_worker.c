/* stage_worker.c -- runs the slow half of a STAGE (open, read, hash and
 * validate the patch file: dsu__stage_read) on a thread of its own, so the
 * control thread keeps answering HELLO and STATUS meanwhile.
 *
 * One job at a time.  Like the control thread, the worker is not a
 * program thread: created with the real pthread_create from the control
 * thread (so it inherits its fully blocked signal mask), never registered,
 * excluded from quiescence by its tid (dsu__worker_tid).  It touches only
 * its job; when done it writes one byte to the control thread's wake-up
 * pipe, and the control thread joins it and finishes the STAGE
 * (dsu__stage_finish: dlopen and the descriptor checks stay on the
 * coordinator, which owns that state). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include "internal.h"

pid_t dsu__worker_tid;                /* atomic; 0 = no worker thread */
static struct dsu__stage_job *job;    /* control thread only */
static int job_done;                  /* atomic: worker -> control thread */
static pthread_t worker;
static int notify_fd = -1;

static void *worker_main(void *arg) {
    struct dsu__stage_job *j = arg;
    __atomic_store_n(&dsu__worker_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    pthread_setname_np(pthread_self(), "dsu-stage");
    dsu__stage_read(j);
    __atomic_store_n(&job_done, 1, __ATOMIC_RELEASE);
    char c = 1;
    while (write(notify_fd, &c, 1) < 0 && errno == EINTR) {}
    return NULL;
}

/* Contract: see internal.h. */
int dsu__worker_start(struct dsu__stage_job *j, int wake_fd) {
    if (job) return -1;
    notify_fd = wake_fd;
    __atomic_store_n(&job_done, 0, __ATOMIC_RELAXED);
    /* The worker publishes its tid first thing; a COMMIT that scans
     * /proc/self/task in that instant looks again before refusing
     * (update.c: an unknown thread must stay unknown for 50 ms). */
    int r = dsu__real_pthread_create(&worker, NULL, worker_main, j);
    if (r != 0) {
        fprintf(stderr, "dsu: cannot start the STAGE worker thread: %s; reading the patch on the control thread\n", strerror(r));
        return -1;
    }
    job = j;
    return 0;
}

int dsu__worker_busy(void) { return job != NULL; }

/* Contract: see internal.h. */
struct dsu__stage_job *dsu__worker_take(void) {
    if (!job || !__atomic_load_n(&job_done, __ATOMIC_ACQUIRE)) return NULL;
    pthread_join(worker, NULL);
    __atomic_store_n(&dsu__worker_tid, 0, __ATOMIC_RELEASE);
    struct dsu__stage_job *j = job;
    job = NULL;
    return j;
}

/* In a forked child: the worker does not exist there. */
void dsu__worker_atfork_child(void) {
    job = NULL;
    notify_fd = -1;
    __atomic_store_n(&job_done, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&dsu__worker_tid, 0, __ATOMIC_RELAXED);
}
