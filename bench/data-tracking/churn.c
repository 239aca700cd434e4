/* churn: connection-churn load generator for bench/data-tracking (127.0.0.1 only).
 *
 *   churn -p PORT [-c PARALLEL] [-n CONNECTIONS] [-r REQUESTS_PER_CONN] [-k KEYS] [-d MAX_MS]
 *
 * PARALLEL slots, driven by one thread with poll().  Each slot repeatedly opens a new
 * connection, sends REQUESTS_PER_CONN requests one at a time (closed loop) alternating
 * `SET c<slot>_<j> v<seq>` and `GET c<slot>_<j>` (the value just set; j cycles over KEYS keys
 * per slot, so the store does not grow), and closes the connection with an RST (SO_LINGER 0:
 * no TIME_WAIT pile-up on the client over hundreds of thousands of connections).  On the
 * server every connection is an accept + malloc of its state + free on close, every SET a
 * malloc of a new entry + free of the old one.  Stops after CONNECTIONS connections or
 * MAX_MS milliseconds (always bounded; default 120 s).  Prints one JSON line: connections,
 * requests, errors, wrong, seconds, cps, rps, request latency p50/p99/max and connection
 * time (connect to last reply) p50/p99 in microseconds.
 * The steady-connection load is bench/live-code/loadgen.c; this only adds the churn. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 64

struct slot {
    int fd;
    int req;         /* requests answered on this connection */
    long seq;        /* SET counter of this slot */
    long key;        /* key index of the current SET/GET pair */
    char in[512];
    size_t in_len;
    char expect[64];
    double t_sent, t_conn;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct samples { double *v; size_t n, cap; };
static void add(struct samples *s, double x) {
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 65536;
        double *nv = realloc(s->v, nc * sizeof *nv);
        if (!nv) return;
        s->v = nv;
        s->cap = nc;
    }
    s->v[s->n++] = x;
}
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double pct(struct samples *s, double p) {
    if (!s->n) return 0;
    return s->v[(size_t)((double)(s->n - 1) * p)];
}

static int port, nreq = 2, nkeys = 64;

static int open_conn(struct slot *s) {
    struct sockaddr_in a;
    struct linger lg = {1, 0};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->t_conn = now_s();
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    s->fd = fd;
    s->req = 0;
    s->in_len = 0;
    return 0;
}

static int send_next(struct slot *s, int idx) {
    char line[128];
    if (s->req % 2 == 0) {
        s->seq++;
        s->key = s->seq % nkeys;
        snprintf(line, sizeof line, "SET c%d_%ld v%ld\n", idx, s->key, s->seq);
        snprintf(s->expect, sizeof s->expect, "OK");
    } else {
        snprintf(line, sizeof line, "GET c%d_%ld\n", idx, s->key);
        snprintf(s->expect, sizeof s->expect, "v%ld", s->seq);
    }
    s->t_sent = now_s();
    size_t n = strlen(line);
    const char *p = line;
    while (n > 0) {
        ssize_t w = send(s->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int main(int argc, char **argv) {
    int npar = 8, opt;
    long total = 20000, max_ms = 120000;
    while ((opt = getopt(argc, argv, "p:c:n:r:k:d:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': npar = atoi(optarg); break;
        case 'n': total = atol(optarg); break;
        case 'r': nreq = atoi(optarg); break;
        case 'k': nkeys = atoi(optarg); break;
        case 'd': max_ms = atol(optarg); break;
        default: fprintf(stderr, "usage: churn -p PORT [-c N] [-n CONNS] [-r REQS] [-k KEYS] [-d MS]\n"); return 2;
        }
    }
    if (port <= 0 || npar < 1 || npar > MAXC || total < 1 || nreq < 1 || nkeys < 1 || max_ms <= 0 || max_ms > 3600000) {
        fprintf(stderr, "churn: bad arguments\n");
        return 2;
    }
    static struct slot ss[MAXC];
    struct pollfd pf[MAXC];
    int pidx[MAXC];
    struct samples lat = {0}, conn = {0};
    long opened = 0, done = 0, requests = 0, errors = 0, wrong = 0;
    double lat_max = 0;
    double t0 = now_s(), deadline = t0 + (double)max_ms / 1000.0;
    for (int i = 0; i < npar; i++) ss[i].fd = -1;
    for (;;) {
        double t = now_s();
        if (t >= deadline || done >= total) break;
        int n = 0;
        for (int i = 0; i < npar; i++) {
            struct slot *s = &ss[i];
            if (s->fd < 0) {
                if (opened >= total) continue;
                if (open_conn(s) != 0 || send_next(s, i) != 0) {
                    errors++;
                    if (s->fd >= 0) { close(s->fd); s->fd = -1; }
                    if (errors > 100) goto out;
                    continue;
                }
                opened++;
            }
            pf[n].fd = s->fd;
            pf[n].events = POLLIN;
            pf[n].revents = 0;
            pidx[n++] = i;
        }
        if (n == 0) break;
        int r = poll(pf, (nfds_t)n, 100);
        if (r < 0) {
            if (errno == EINTR) continue;
            perror("churn: poll");
            break;
        }
        for (int k = 0; k < n; k++) {
            if (!pf[k].revents) continue;
            int i = pidx[k];
            struct slot *s = &ss[i];
            ssize_t got = recv(s->fd, s->in + s->in_len, sizeof s->in - s->in_len - 1, 0);
            if (got <= 0) {
                if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
                errors++;
                close(s->fd);
                s->fd = -1;
                done++;
                continue;
            }
            s->in_len += (size_t)got;
            char *nl = memchr(s->in, '\n', s->in_len);
            if (!nl) continue;
            *nl = '\0';
            double tr = now_s(), us = (tr - s->t_sent) * 1e6;
            add(&lat, us);
            if (us > lat_max) lat_max = us;
            requests++;
            if (strcmp(s->in, s->expect) != 0) {
                if (wrong < 3) fprintf(stderr, "churn: slot %d got '%s' expected '%s'\n", i, s->in, s->expect);
                wrong++;
            }
            s->in_len = 0; /* one request outstanding: nothing follows the reply */
            if (++s->req >= nreq) {
                add(&conn, (tr - s->t_conn) * 1e6);
                close(s->fd);
                s->fd = -1;
                done++;
            } else if (send_next(s, i) != 0) {
                errors++;
                close(s->fd);
                s->fd = -1;
                done++;
            }
        }
    }
out:;
    double secs = now_s() - t0;
    for (int i = 0; i < npar; i++) if (ss[i].fd >= 0) close(ss[i].fd);
    qsort(lat.v, lat.n, sizeof *lat.v, cmp_double);
    qsort(conn.v, conn.n, sizeof *conn.v, cmp_double);
    int timed_out = done < total;
    printf("{\"connections\":%ld,\"requests\":%ld,\"errors\":%ld,\"wrong\":%ld,\"seconds\":%.6f,\"cps\":%.1f,\"rps\":%.1f,"
           "\"p50LatencyUs\":%.0f,\"p99LatencyUs\":%.0f,\"maxLatencyUs\":%.0f,\"connP50Us\":%.0f,\"connP99Us\":%.0f,\"timedOut\":%s}\n",
           (long)conn.n, requests, errors, wrong, secs, secs > 0 ? (double)conn.n / secs : 0.0, secs > 0 ? (double)requests / secs : 0.0,
           pct(&lat, 0.5), pct(&lat, 0.99), lat_max, pct(&conn, 0.5), pct(&conn, 0.99), timed_out ? "true" : "false");
    return (errors || wrong || timed_out) ? 1 : 0;
}
