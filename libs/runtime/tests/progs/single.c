/* single -- a single-threaded program for the lazily started control
 * thread.  SINGLE_MODE picks where the only thread waits:
 *   poll : dsu_poll on a pipe nobody writes (poll-like: EINTR, retried)
 *   read : dsu_read on that pipe (restarted by the kernel after a handler)
 *   spin : computes, passing an update point every iteration
 *   none : pause() without a wrapper: the runtime cannot reach it
 * Prints "ready" once waiting; exits on SIGTERM. */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "instrumented.h"

DSU_PROGRAM("single", "single-v1");

static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;    /* no SA_RESTART: SIGTERM ends the waits */
    sigaction(SIGTERM, &sa, NULL);
    const char *mode = getenv("SINGLE_MODE");
    if (!mode) mode = "poll";
    int p[2];
    if (pipe(p) < 0) return 1;
    printf("ready\n");
    fflush(stdout);
    volatile unsigned long n = 0;
    while (!stop) {
        if (strcmp(mode, "poll") == 0) {
            struct pollfd f = { p[0], POLLIN, 0 };
            if (dsu_poll(&f, 1, -1) < 0 && !stop) { printf("poll failed\n"); fflush(stdout); }
        } else if (strcmp(mode, "read") == 0) {
            char c;
            if (dsu_read(p[0], &c, 1) < 0 && !stop) { printf("read failed\n"); fflush(stdout); }
        } else if (strcmp(mode, "spin") == 0) {
            DSU_UPDATE_POINT("spin");
            for (int i = 0; i < 1000; i++) n++;
        } else {
            pause();
        }
    }
    return 0;
}
