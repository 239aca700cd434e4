/* dsuctl -- minimal client for a libdsu control socket.
 *
 *   dsuctl [-w SECONDS] <pid | socket-path> REQUEST [ARGS...]
 *
 * Sends one request line (the arguments joined by spaces), prints the
 * one-line JSON reply.  A numeric target is looked up as
 * $DSU_RUN_DIR/<pid>.sock (default /tmp/dsu-<uid>/<pid>.sock).  -w waits up
 * to SECONDS for the socket to appear (handy right after starting a
 * program).  Exit status: 0 reply has "ok":true, 1 "ok":false, 2 could not
 * talk to the program. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

static int connect_to(const char *path) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) { errno = ENAMETOOLONG; return -1; }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { int e = errno; close(fd); errno = e; return -1; }
    return fd;
}

int main(int argc, char **argv) {
    double wait_s = 0;
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-w") == 0) { wait_s = atof(argv[i + 1]); i += 2; }
    if (argc - i < 2) {
        fprintf(stderr, "usage: dsuctl [-w SECONDS] <pid|socket-path> REQUEST [ARGS...]\n"
                        "requests: HELLO | STATUS | STAGE <patch.so> <sha256> <id> | COMMIT [ms] | ROLLBACK [ms] | STACKS\n");
        return 2;
    }
    char path[256];
    const char *target = argv[i++];
    if (strspn(target, "0123456789") == strlen(target)) {
        const char *dir = getenv("DSU_RUN_DIR");
        char def[64];
        if (!dir || !*dir) { snprintf(def, sizeof def, "/tmp/dsu-%u", (unsigned)geteuid()); dir = def; }
        snprintf(path, sizeof path, "%s/%s.sock", dir, target);
    } else snprintf(path, sizeof path, "%s", target);

    size_t len = 0;
    for (int k = i; k < argc; k++) len += strlen(argv[k]) + 1;
    char *line = malloc(len + 1);
    if (!line) return 2;
    line[0] = 0;
    for (int k = i; k < argc; k++) { strcat(line, argv[k]); strcat(line, k + 1 < argc ? " " : "\n"); }

    int fd = -1;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        fd = connect_to(path);
        if (fd >= 0) break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) + (now.tv_nsec - t0.tv_nsec) / 1e9 >= wait_s) {
            fprintf(stderr, "dsuctl: cannot connect to %s: %s (is the program running with libdsu and DSU_DISABLE unset?)\n",
                    path, strerror(errno));
            free(line);
            return 2;
        }
        usleep(20000);
    }
    signal(SIGPIPE, SIG_IGN);
    /* A reply that never comes fails the test instead of hanging it. */
    struct timeval rcv = { 30, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
    size_t off = 0, n = strlen(line);
    while (off < n) {
        ssize_t w = write(fd, line + off, n - off);
        /* A peer that refuses us replies and closes without reading: the
         * write may fail (EPIPE), the reply is still there to read. */
        if (w <= 0) { fprintf(stderr, "dsuctl: write failed: %s\n", strerror(errno)); break; }
        off += (size_t)w;
    }
    free(line);
    char buf[65536];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { fprintf(stderr, "dsuctl: no reply within 30 s\n"); break; }
        if (r <= 0) break;
        have += (size_t)r;
        if (memchr(buf, '\n', have) || have == sizeof buf - 1) break;
    }
    close(fd);
    buf[have] = 0;
    if (have == 0) { fprintf(stderr, "dsuctl: connection closed without a reply\n"); return 2; }
    fputs(buf, stdout);
    if (buf[have - 1] != '\n') putchar('\n');
    return strstr(buf, "\"ok\":true") ? 0 : 1;
}
