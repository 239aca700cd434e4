/* forker -- forks once at start; parent and child both loop at an update
 * point printing "<role> pid=<pid> v=<version> r=<compute(n)> i=<n>".
 * v1: r=2n, v2: r=3n. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include "instrumented.h"

DSU_PROGRAM("forker", "fork-v1");

DSU_FN(int, compute, "compute", "tests/progs/forker.c", (int x)) { return x * 2; }
DSU_FN(const char *, version, "version", "tests/progs/forker.c", (void)) { return "v1"; }

static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    dsu_usleep(100000);               /* let the parent's control thread start */
    pid_t child = fork();
    if (child < 0) { perror("fork"); return 1; }
    const char *role = child ? "parent" : "child";
    if (!child) { printf("child started pid=%d\n", (int)getpid()); fflush(stdout); }
    for (long i = 0; !stop; i++) {
        DSU_UPDATE_POINT("loop");
        printf("%s pid=%d v=%s r=%d i=%ld\n", role, (int)getpid(), DSU_CALL(version)(),
               DSU_CALL(compute)((int)i), i);
        fflush(stdout);
        dsu_usleep(10000);
    }
    if (child) { kill(child, SIGTERM); dsu_waitpid(child, NULL, 0); }
    printf("%s exit ok\n", role);
    return 0;
}
