/* clients -- drives a control socket with many, slow or busy clients
 * (tests/t_control.sh).
 *
 *   clients conc <sock> <n>            n connections at once, each sends HELLO;
 *                                      prints "answered=<k>/<n> max_ms=<ms>"
 *   clients slow <sock> <ms> <n>       sends "STATUS" one byte every <ms> ms, n
 *                                      bytes, never the newline; prints what
 *                                      the runtime answered (or "closed")
 *   clients status <sock> <n>          n STATUS requests one after the other on
 *                                      new connections; prints "max_ms=<ms>"
 *   clients race <sock> <stage-line>   sends the STAGE line on one connection,
 *                                      then STATUS on another; prints
 *                                      "status_ms=.. stage_ms=.. status_first=0|1"
 *   clients hold <sock> <n> <ms>       n idle connections held for <ms> ms;
 *                                      prints "busy=<k>" (those told busy)
 *   clients lines <sock> <n> <text>    sends <text> ('|' = newline) at once, prints
 *                                      the first <n> reply lines in order
 *   clients long <sock> <bytes>        one line of <bytes> 'A's; prints the reply
 *                                      and whether the connection was closed
 * Exit status 0 unless the socket could not be used at all. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

static const char *path;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int conn(void) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    for (int tries = 0; tries < 500; tries++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) { perror("socket"); exit(2); }
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
        int e = errno;
        close(fd);
        if (e != EAGAIN) { fprintf(stderr, "connect: %s\n", strerror(e)); exit(2); }
        usleep(10000);                      /* backlog full: the runtime is behind */
    }
    fprintf(stderr, "connect: backlog stayed full for 5 s\n");
    exit(2);
}

static void send_str(int fd, const char *s) {
    size_t n = strlen(s);
    while (n) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w; n -= (size_t)w;
    }
}

/* Reads one line (with timeout); returns its length, 0 on EOF/timeout. */
static size_t read_line(int fd, char *buf, size_t cap, int timeout_ms) {
    size_t n = 0;
    double end = now_ms() + timeout_ms;
    while (n + 1 < cap) {
        struct pollfd p = { fd, POLLIN, 0 };
        int left = (int)(end - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        ssize_t r = read(fd, buf + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (buf[n++] == '\n') break;
    }
    buf[n] = 0;
    return n;
}

static int conc(int n) {
    int *fds = calloc((size_t)n, sizeof *fds);
    char (*got)[1] = calloc((size_t)n, 1);
    double t0 = now_ms(), worst = 0;
    for (int i = 0; i < n; i++) fds[i] = conn();
    for (int i = 0; i < n; i++) send_str(fds[i], "HELLO\n");
    int answered = 0;
    char buf[4096];
    for (int i = 0; i < n; i++) {
        size_t l = read_line(fds[i], buf, sizeof buf, 20000);
        if (l && strstr(buf, "\"ok\":true")) { answered++; got[i][0] = 1; }
        else if (answered < 3) fprintf(stderr, "client %d: '%s'\n", i, buf);
        double d = now_ms() - t0;
        if (d > worst) worst = d;
    }
    for (int i = 0; i < n; i++) close(fds[i]);
    printf("answered=%d/%d max_ms=%.0f\n", answered, n, worst);
    return 0;
}

static int slow(int ms, int n) {
    int fd = conn();
    const char *req = "STATUS";
    char buf[4096];
    for (int i = 0; i < n; i++) {
        char c = req[i % 6];
        if (send(fd, &c, 1, MSG_NOSIGNAL) != 1) break;
        usleep((useconds_t)ms * 1000);
    }
    size_t l = read_line(fd, buf, sizeof buf, 2000);
    if (l) {
        printf("reply: %s", buf);
        l = read_line(fd, buf, sizeof buf, 2000);
    }
    printf("%s\n", l == 0 ? "closed" : "open");
    close(fd);
    return 0;
}

static int status(int n) {
    double worst = 0;
    char buf[65536];
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        int fd = conn();
        send_str(fd, "STATUS\n");
        size_t l = read_line(fd, buf, sizeof buf, 20000);
        close(fd);
        double d = now_ms() - t0;
        if (!l || !strstr(buf, "\"ok\":true")) { printf("bad reply: '%s'\n", buf); return 1; }
        if (d > worst) worst = d;
        usleep(50000);
    }
    printf("max_ms=%.0f\n", worst);
    return 0;
}

static int race(const char *stage) {
    int a = conn(), b = conn();
    char line[8192], buf[65536];
    snprintf(line, sizeof line, "%s\n", stage);
    double t0 = now_ms();
    send_str(a, line);
    usleep(20000);
    double t1 = now_ms();
    send_str(b, "STATUS\n");
    read_line(b, buf, sizeof buf, 60000);
    double ts = now_ms();
    int staged_null = strstr(buf, "\"staged\":null") != NULL;
    read_line(a, buf, sizeof buf, 60000);
    double ta = now_ms();
    printf("status_ms=%.0f stage_ms=%.0f status_first=%d status_before_stage_done=%d stage_reply=%s",
           ts - t1, ta - t0, ts < ta, staged_null, buf);
    return 0;
}

static int hold(int n, int ms) {
    int *fds = calloc((size_t)n, sizeof *fds), busy = 0;
    for (int i = 0; i < n; i++) fds[i] = conn();
    usleep(1000000);
    for (int i = 0; i < n; i++) {
        char buf[4096];
        ssize_t r = recv(fds[i], buf, sizeof buf - 1, MSG_DONTWAIT);
        if (r > 0) { buf[r] = 0; if (strstr(buf, "busy")) busy++; }
    }
    printf("busy=%d\n", busy);
    fflush(stdout);
    usleep((useconds_t)ms * 1000);
    for (int i = 0; i < n; i++) close(fds[i]);
    return 0;
}

static int lines(int n, const char *text) {
    int fd = conn();
    char msg[8192], buf[65536];
    snprintf(msg, sizeof msg, "%s", text);
    for (char *p = msg; *p; p++) if (*p == '|') *p = '\n';
    send_str(fd, msg);
    for (int i = 0; i < n; i++) {
        if (!read_line(fd, buf, sizeof buf, 20000)) { printf("(no reply %d)\n", i + 1); break; }
        printf("%d: %s", i + 1, buf);
    }
    close(fd);
    return 0;
}

static int longline(long bytes) {
    int fd = conn();
    char *b = malloc((size_t)bytes + 2);
    memset(b, 'A', (size_t)bytes);
    b[bytes] = '\n'; b[bytes + 1] = 0;
    send_str(fd, b);
    char buf[4096];
    size_t l = read_line(fd, buf, sizeof buf, 5000);
    printf("reply: %s", l ? buf : "(none)\n");
    l = read_line(fd, buf, sizeof buf, 2000);
    printf("%s\n", l == 0 ? "closed" : "open");
    free(b);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc < 4) { fprintf(stderr, "usage: see clients.c\n"); return 2; }
    path = argv[2];
    if (!strcmp(argv[1], "conc")) return conc(atoi(argv[3]));
    if (!strcmp(argv[1], "slow") && argc == 5) return slow(atoi(argv[3]), atoi(argv[4]));
    if (!strcmp(argv[1], "status")) return status(atoi(argv[3]));
    if (!strcmp(argv[1], "race")) return race(argv[3]);
    if (!strcmp(argv[1], "hold") && argc == 5) return hold(atoi(argv[3]), atoi(argv[4]));
    if (!strcmp(argv[1], "lines") && argc == 5) return lines(atoi(argv[3]), argv[4]);
    if (!strcmp(argv[1], "long")) return longline(atol(argv[3]));
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
