/*
 * dsu-cc-client: the fast front door of dsu-cc during a `dsu build`.
 *
 * Starting node for every compile step costs more than clang's own work on a small unit, so
 * `dsu build` runs one compile server (libs/instrument/src/compile-server.ts) for the whole build
 * and points CC at this client. The client forwards its working directory, argv and environment
 * over the Unix socket named by $DSU_CC_SOCKET, relays the server's stdout/stderr frames and exits
 * with the compile step's exit code.
 *
 * When there is no server (DSU_CC_SOCKET unset, or nobody listening) or the step reads its
 * source from stdin, it runs the node implementation next to it (dsu-cc.js) instead, so the
 * client is always a correct drop-in compiler, only faster with a server.
 *
 * Wire format (version 1). Request: "DSUCC1\n", then NUL-terminated strings: cwd, argc, argv[i]...,
 * envc, env[i]...; then the client shuts down its write side. Reply: frames of one type byte
 * ('o' stdout, 'e' stderr, 'x' exit), a 4-byte little-endian length and the payload; the 'x'
 * payload is the exit code as 4-byte little-endian.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

/* Runs `node <dir of this executable>/dsu-cc.js argv...`; returns only on failure. */
static int run_node_fallback(char **argv) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(stderr, "dsu-cc: cannot find my own executable (/proc/self/exe): %s\n", strerror(errno));
        return 1;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (!slash) return 1;
    *slash = '\0';
    char script[PATH_MAX];
    if (snprintf(script, sizeof script, "%s/dsu-cc.js", self) >= (int)sizeof script) return 1;
    int argc = 0;
    while (argv[argc]) argc++;
    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (!args) return 1;
    args[0] = "node";
    args[1] = script;
    for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
    execvp("node", args);
    fprintf(stderr, "dsu-cc: cannot run node for %s: %s\n", script, strerror(errno));
    return 127;
}

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len > 0) {
        ssize_t r = read(fd, p, len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        len -= (size_t)r;
    }
    return 0;
}

static int send_str(int fd, const char *s) { return write_all(fd, s, strlen(s) + 1); }

static int send_count(int fd, int n) {
    char num[16];
    snprintf(num, sizeof num, "%d", n);
    return send_str(fd, num);
}

int main(int argc, char **argv) {
    const char *path = getenv("DSU_CC_SOCKET");
    int from_stdin = 0;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-") == 0) from_stdin = 1;
    if (!path || !*path || from_stdin || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return run_node_fallback(argv);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        if (fd >= 0) close(fd);
        return run_node_fallback(argv); /* the build's server is gone: slower, still correct */
    }

    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
        fprintf(stderr, "dsu-cc: cannot read the working directory: %s\n", strerror(errno));
        return 1;
    }
    int envc = 0;
    while (environ[envc]) envc++;
    int bad = write_all(fd, "DSUCC1\n", 7) || send_str(fd, cwd) || send_count(fd, argc - 1);
    for (int i = 1; i < argc && !bad; i++) bad = send_str(fd, argv[i]);
    bad = bad || send_count(fd, envc);
    for (int i = 0; i < envc && !bad; i++) bad = send_str(fd, environ[i]);
    if (bad || shutdown(fd, SHUT_WR) != 0) {
        fprintf(stderr, "dsu-cc: lost the compile server at %s while sending the request\n", path);
        return 1;
    }

    char *buf = NULL;
    size_t cap = 0;
    for (;;) {
        unsigned char head[5];
        if (read_all(fd, head, sizeof head) != 0) break;
        uint32_t len = (uint32_t)head[1] | (uint32_t)head[2] << 8 | (uint32_t)head[3] << 16 | (uint32_t)head[4] << 24;
        if (len > cap) {
            char *grown = realloc(buf, len);
            if (!grown) break;
            buf = grown;
            cap = len;
        }
        if (len && read_all(fd, buf, len) != 0) break;
        if (head[0] == 'x' && len == 4) {
            unsigned char *c = (unsigned char *)buf;
            return (int)((uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24);
        }
        if (head[0] == 'o' || head[0] == 'e') write_all(head[0] == 'o' ? 1 : 2, buf, len);
    }
    fprintf(stderr, "dsu-cc: the compile server at %s went away before the step finished; run the build again\n", path);
    return 1;
}
