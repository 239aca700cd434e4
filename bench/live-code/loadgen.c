/* loadgen: closed-loop line-protocol load generator for the fixture servers (127.0.0.1 only).
 *
 *   loadgen -p PORT [-c CONNS] [-n TOTAL] [-d MAX_MS] [-s SLEEP_US] [-m ps|wp|q] [-f STOPFILE]
 *
 * CONNS persistent connections, one request outstanding on each (closed loop), driven by one
 * thread with poll().  Stops after TOTAL requests (0 = no limit) or MAX_MS milliseconds (always
 * bounded; default 120 s), or when STOPFILE exists (checked every 10 ms).  SLEEP_US > 0 makes a
 * light load: each connection waits that long between a reply and its next request.
 *   -m ps : pollserver mix  PING / SET k v / GET k   (replies checked: PONG, OK, the value)
 *   -m wp : workerpool mix  PING / WORK 100          (replies checked: non-empty, not ERR)
 * Prints one JSON line: requests, errors, wrong, seconds, rps, p50/p99/p999/max latency (us).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAXC 64

struct conn {
    int fd;
    long sent, done;
    char in[4096];
    size_t in_len;
    char expect[128];
    double t_sent;
    double wake_at; /* light load: next send time */
    int waiting;    /* request outstanding */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double *lats; /* every request latency, us */
static size_t nlat, caplat;
static double lat_max;
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static void record_latency(double us) {
    if (nlat == caplat) {
        size_t nc = caplat ? caplat * 2 : 65536;
        double *n = realloc(lats, nc * sizeof *n);
        if (!n) return;
        lats = n;
        caplat = nc;
    }
    lats[nlat++] = us;
    if (us > lat_max) lat_max = us;
}

static int connect_to(int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int send_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_next(struct conn *c, int idx, char mode) {
    char line[160];
    long i = c->sent;
    if (mode == 'p') {
        switch (i % 3) {
        case 0: snprintf(line, sizeof line, "PING\n"); snprintf(c->expect, sizeof c->expect, "PONG"); break;
        case 1: snprintf(line, sizeof line, "SET k%d_%ld v%ld\n", idx, (i / 3) % 50, i);
                snprintf(c->expect, sizeof c->expect, "OK"); break;
        default: snprintf(line, sizeof line, "GET k%d_%ld\n", idx, (i / 3) % 50);
                 snprintf(c->expect, sizeof c->expect, "v%ld", i - 1); break;
        }
    } else if (mode == 'q') {   /* PING only, for servers with no other command in common */
        snprintf(line, sizeof line, "PING\n");
        snprintf(c->expect, sizeof c->expect, "PONG");
    } else {
        if (i % 2 == 0) snprintf(line, sizeof line, "PING\n");
        else snprintf(line, sizeof line, "WORK 100\n");
        c->expect[0] = '\0';
    }
    c->t_sent = now_s();
    c->sent++;
    c->waiting = 1;
    return send_all(c->fd, line, strlen(line));
}

int main(int argc, char **argv) {
    int port = 0, nconn = 8, opt;
    long total = 200000, sleep_us = 0;
    long max_ms = 120000;
    char mode = 'p';
    const char *stopfile = NULL;
    while ((opt = getopt(argc, argv, "p:c:n:d:s:m:f:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'c': nconn = atoi(optarg); break;
        case 'n': total = atol(optarg); break;
        case 'd': max_ms = atol(optarg); break;
        case 's': sleep_us = atol(optarg); break;
        case 'm': mode = optarg[0]; break;
        case 'f': stopfile = optarg; break;
        default: fprintf(stderr, "usage: loadgen -p PORT [-c N] [-n TOTAL] [-d MS] [-s US] [-m ps|wp] [-f STOP]\n"); return 2;
        }
    }
    if (port <= 0 || nconn < 1 || nconn > MAXC || max_ms <= 0 || max_ms > 3600000) {
        fprintf(stderr, "loadgen: bad arguments\n");
        return 2;
    }
    static struct conn cs[MAXC];
    struct pollfd pf[MAXC];
    long errors = 0, wrong = 0, done = 0, issued = 0;
    for (int i = 0; i < nconn; i++) {
        cs[i].fd = connect_to(port);
        if (cs[i].fd < 0) { perror("loadgen: connect"); return 1; }
    }
    double t0 = now_s(), deadline = t0 + (double)max_ms / 1000.0, last_stopcheck = t0;
    int stop = 0;
    for (int i = 0; i < nconn; i++) {
        if (total > 0 && issued >= total) break;
        if (send_next(&cs[i], i, mode) != 0) { errors++; cs[i].fd = -1; continue; }
        issued++;
    }
    for (;;) {
        double t = now_s();
        if (t >= deadline) break;
        if (stopfile && t - last_stopcheck >= 0.01) {
            struct stat st;
            last_stopcheck = t;
            if (stat(stopfile, &st) == 0) stop = 1;
        }
        int outstanding = 0, n = 0;
        int timeout_ms = 100;
        for (int i = 0; i < nconn; i++) {
            struct conn *c = &cs[i];
            if (c->fd < 0) continue;
            if (!c->waiting) {
                if (stop || (total > 0 && issued >= total)) continue;
                if (t >= c->wake_at) {
                    if (send_next(c, i, mode) != 0) { errors++; close(c->fd); c->fd = -1; continue; }
                    issued++;
                } else {
                    int ms = (int)((c->wake_at - t) * 1000.0);
                    if (ms < timeout_ms) timeout_ms = ms;
                    continue;
                }
            }
            outstanding++;
            pf[n].fd = c->fd;
            pf[n].events = POLLIN;
            pf[n].revents = 0;
            n++;
        }
        if (outstanding == 0) {
            if (stop || (total > 0 && issued >= total)) break;
            if (n == 0 && timeout_ms > 0) { struct timespec ts = {0, (long)timeout_ms * 1000000L}; nanosleep(&ts, NULL); continue; }
        }
        if (n == 0) {
            int alive = 0;
            for (int i = 0; i < nconn; i++) alive += cs[i].fd >= 0;
            if (!alive) break;
            continue;
        }
        int r = poll(pf, (nfds_t)n, timeout_ms < 1 ? 1 : timeout_ms);
        if (r < 0) {
            if (errno == EINTR) continue;
            perror("loadgen: poll");
            break;
        }
        if (r == 0) continue;
        for (int k = 0; k < n; k++) {
            if (!pf[k].revents) continue;
            struct conn *c = NULL;
            int idx = 0;
            for (int i = 0; i < nconn; i++) if (cs[i].fd == pf[k].fd) { c = &cs[i]; idx = i; break; }
            if (!c) continue;
            ssize_t got = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len - 1, 0);
            if (got <= 0) {
                if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
                errors++;
                close(c->fd);
                c->fd = -1;
                continue;
            }
            c->in_len += (size_t)got;
            char *nl;
            while (c->waiting && (nl = memchr(c->in, '\n', c->in_len)) != NULL) {
                size_t len = (size_t)(nl - c->in);
                *nl = '\0';
                double tr = now_s(), lat = (tr - c->t_sent) * 1e6;
                record_latency(lat);
                if (c->expect[0] ? strcmp(c->in, c->expect) != 0 : (len == 0 || strncmp(c->in, "ERR", 3) == 0)) {
                    if (wrong < 3) fprintf(stderr, "loadgen: conn %d got '%s' expected '%s'\n", idx, c->in, c->expect);
                    wrong++;
                }
                memmove(c->in, nl + 1, c->in_len - len - 1);
                c->in_len -= len + 1;
                c->waiting = 0;
                c->done++;
                done++;
                c->wake_at = sleep_us > 0 ? tr + (double)sleep_us / 1e6 : 0;
                if (sleep_us == 0 && !stop && !(total > 0 && issued >= total)) {
                    if (send_next(c, idx, mode) != 0) { errors++; close(c->fd); c->fd = -1; break; }
                    issued++;
                }
            }
        }
    }
    double secs = now_s() - t0;
    double p50 = 0, p99 = 0, p999 = 0;
    if (nlat > 0) {
        qsort(lats, nlat, sizeof *lats, cmp_double);
        p50 = lats[(nlat - 1) / 2];
        p99 = lats[(size_t)((double)(nlat - 1) * 0.99)];
        p999 = lats[(size_t)((double)(nlat - 1) * 0.999)];
    }
    int timed_out = total > 0 && done < total && !stop;
    for (int i = 0; i < nconn; i++) if (cs[i].fd >= 0) close(cs[i].fd);
    printf("{\"requests\":%ld,\"errors\":%ld,\"wrong\":%ld,\"seconds\":%.6f,\"rps\":%.1f,\"p50LatencyUs\":%.0f,\"p99LatencyUs\":%.0f,\"p999LatencyUs\":%.0f,\"maxLatencyUs\":%.0f,\"timedOut\":%s}\n",
           done, errors, wrong, secs, secs > 0 ? (double)done / secs : 0.0, p50, p99, p999, lat_max, timed_out ? "true" : "false");
    return (errors || wrong || timed_out) ? 1 : 0;
}
