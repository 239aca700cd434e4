/* malformed -- sends N malformed / random request lines to a control
 * socket and checks every line gets a one-line JSON reply with "ok":false
 * (or true for the few valid read-only requests), reconnecting when the
 * runtime closes the connection after an overlong line.
 *   malformed <socket-path> <count> <seed> */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

static const char *path;
static int conn(void) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("connect"); exit(2); }
    return fd;
}

static int send_all(int fd, const char *b, size_t n) {
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        b += w; n -= (size_t)w;
    }
    return 0;
}

/* Reads one reply line; returns its length, 0 on EOF. */
static size_t read_line(int fd, char *buf, size_t cap) {
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (buf[n++] == '\n') break;
    }
    buf[n] = 0;
    return n;
}

static const char *seeds[] = {
    "STAGE", "STAGE /nonexistent/p.so", "COMMIT", "COMMIT abc", "ROLLBACK -5", "HELLO extra",
    "STATUS", "STACKS", "STAGE /etc/passwd 0000000000000000000000000000000000000000000000000000000000000000 x",
    "STAGE /dev/zero 0000000000000000000000000000000000000000000000000000000000000000 y",
    "\xff\xfe", "{\"json\":1}", "COMMIT 3600001", "ROLLBACK 0 0", "STAGE a b c d e",
};

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: malformed <socket> <count> <seed>\n"); return 2; }
    path = argv[1];
    int count = atoi(argv[2]);
    srand((unsigned)atoi(argv[3]));
    int fd = conn(), bad = 0;
    static char line[80000], reply[70000];
    for (int k = 0; k < count; k++) {
        size_t n;
        int kind = rand() % 10;
        if (kind < 4) {                    /* random bytes, no newline */
            n = (size_t)(rand() % 300);
            for (size_t i = 0; i < n; i++) { do line[i] = (char)(rand() % 256); while (line[i] == '\n'); }
        } else if (kind < 8) {             /* mutated known request */
            const char *s = seeds[rand() % (sizeof seeds / sizeof *seeds)];
            n = strlen(s);
            memcpy(line, s, n);
            for (int m = rand() % 4; m > 0 && n > 0; m--) {
                char ch = (char)(rand() % 256);
                line[rand() % n] = ch == '\n' ? ' ' : ch;
            }
        } else if (kind < 9) {             /* overlong line */
            n = 65537 + (size_t)(rand() % 5000);
            memset(line, 'S', n);
        } else {                           /* empty / whitespace */
            n = (size_t)(rand() % 3);
            memset(line, ' ', n);
        }
        line[n++] = '\n';
        if (send_all(fd, line, n) < 0) { close(fd); fd = conn(); k--; continue; }
        size_t rl = read_line(fd, reply, sizeof reply);
        if (rl == 0 || reply[rl - 1] != '\n' || reply[0] != '{' || !strstr(reply, "\"ok\":")) {
            fprintf(stderr, "request %d: bad reply '%.200s'\n", k, reply);
            bad++;
        }
        if (n > 65536) { close(fd); fd = conn(); }   /* runtime closes after overlong */
    }
    close(fd);
    printf("%d requests, %d bad replies\n", count, bad);
    return bad ? 1 : 0;
}
