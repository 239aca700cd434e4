/* serve.c -- the control thread's event loop: every client of the control
 * socket served at once, none able to stall the others.
 *
 * One poll() over the listening socket, a wake-up pipe and up to
 * MAX_CLIENTS non-blocking client sockets.  Nothing here ever blocks on a
 * client: input is read as it comes into a per-client buffer (a line
 * longer than DSU__MAX_LINE is answered with an error and the client
 * dropped), a request line must be complete LINE_DEADLINE_MS after its
 * first byte (a client trickling bytes is dropped), a reply must be taken
 * by the client within WRITE_DEADLINE_MS, a silent client is dropped after
 * IDLE_CLIENT_MS, and one client past MAX_CLIENTS gets a one-line "busy"
 * error and is closed.  Replies go out in request order per client.
 *
 * HELLO, STATUS and STACKS are answered on the spot.  STAGE's slow half
 * (reading, hashing and validating the file) runs on the worker thread
 * (stage_worker.c), one STAGE at a time in arrival order; its client waits
 * while every other client is served.  COMMIT and ROLLBACK run the update
 * rounds here, as before (they are the coordinator and own its state); the
 * loop resumes when they return, at the latest after their timeout. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "internal.h"

#define MAX_CLIENTS       512
#define LINE_DEADLINE_MS  5000
#define WRITE_DEADLINE_MS 10000
#define IDLE_CLIENT_MS    30000
#define MAX_OUT           (1u << 20)   /* unread replies before we stop reading */
#define MAX_OUT_HARD      (64u << 20)  /* a client this far behind is dropped */
#define MS                1000000ull

struct client {
    int fd;
    char *in; size_t in_len, in_cap;
    char *out; size_t out_len, out_off;
    uint64_t line_ns;     /* first byte of the pending partial line, 0 = none */
    uint64_t active_ns;   /* last request or reply */
    uint64_t write_ns;    /* when the unsent reply bytes started waiting */
    struct dsu__stage_job *stage;   /* its STAGE, queued or at the worker */
    uint64_t stage_seq;
    int closing;          /* drop once `out` is sent */
    int eof;              /* the client sent all it will send */
    int held;             /* a request waits for the COMMIT/ROLLBACK to end */
    int dead;
};

static struct client *clients[MAX_CLIENTS];
static int nclients;
static int wake[2] = { -1, -1 };
static struct client *stage_client;   /* whose STAGE the worker has */
static struct client *current;        /* whose request is being handled */
static int quick;                     /* inside COMMIT/ROLLBACK: see dsu__serve_quick */
static int serving_fd = -1;
static uint64_t stage_seq;

static const char busy_msg[] =
    "{\"ok\":false,\"error\":\"busy: 512 clients are connected to this program's control socket; retry later\"}\n";
static const char denied_msg[] =
    "{\"ok\":false,\"error\":\"permission denied: connect as the program's user or root\"}\n";

static void append(struct client *c, const char *b, size_t n) {
    if (c->out_len - c->out_off + n > MAX_OUT_HARD) { c->dead = 1; return; }
    if (c->out_off && c->out_off == c->out_len) c->out_off = c->out_len = 0;
    char *o = realloc(c->out, c->out_len + n);
    if (!o) { c->dead = 1; return; }       /* cannot answer: drop rather than lie */
    memcpy(o + c->out_len, b, n);
    c->out = o;
    if (c->out_off == c->out_len) c->write_ns = dsu__now_ns();
    c->out_len += n;
    c->active_ns = dsu__now_ns();
}

static void append_json(struct client *c, struct dsu__json *j) {
    if (j->oom) {
        static const char m[] = "{\"ok\":false,\"error\":\"out of memory building the reply; retry\"}\n";
        append(c, m, sizeof m - 1);
        return;
    }
    append(c, j->buf ? j->buf : "", j->len);
    append(c, "\n", 1);
}

static void append_error(struct client *c, const char *msg) {
    struct dsu__json j;
    dsu__json_init(&j);
    dsu__json_error(&j, msg);
    append_json(c, &j);
    dsu__json_free(&j);
}

/* One request line.  Returns 1 when the client must wait (its STAGE was
 * queued for the worker), else 0 with the reply appended. */
static int handle_line(struct client *c, const char *line, size_t len) {
    struct dsu__request *req = malloc(sizeof *req);
    struct dsu__json j;
    int wait = 0;
    dsu__json_init(&j);
    if (!req) { dsu__json_error(&j, "out of memory; retry"); append_json(c, &j); dsu__json_free(&j); return 0; }
    if (dsu__proto_parse(line, len, req) < 0) {
        dsu__json_error(&j, req->error);
    } else switch (req->kind) {
        case DSU__REQ_HELLO:    dsu__req_hello(&j); break;
        case DSU__REQ_STATUS:   dsu__req_status(&j); break;
        case DSU__REQ_COMMIT:   dsu__req_commit(&j, req); break;
        case DSU__REQ_ROLLBACK: dsu__req_rollback(&j, req); break;
        case DSU__REQ_STACKS:   dsu__req_stacks(&j); break;
        case DSU__REQ_STAGE:
            if (dsu__stage_precheck(&j, req) < 0) break;
            c->stage = calloc(1, sizeof *c->stage);
            if (!c->stage) { dsu__json_error(&j, "out of memory; retry"); break; }
            c->stage->req = *req;
            c->stage_seq = ++stage_seq;
            wait = 1;
            break;
        default: dsu__json_error(&j, dsu__proto_valid_requests);
    }
    if (!wait) append_json(c, &j);
    dsu__json_free(&j);
    free(req);
    return wait;
}

/* Answers the complete lines in c's buffer, in order, until one has to
 * wait (STAGE) or too many replies are unread. */
/* During a COMMIT/ROLLBACK only requests that read nothing the update
 * changes halfway are answered: HELLO, STATUS and malformed lines. */
static int quick_ok(const char *line, size_t len) {
    struct dsu__request *r = malloc(sizeof *r);
    if (!r) return 0;
    int ok = dsu__proto_parse(line, len, r) < 0 || r->kind == DSU__REQ_HELLO || r->kind == DSU__REQ_STATUS;
    free(r);
    return ok;
}

static void process(struct client *c) {
    if (c == current) return;            /* re-entered from its own COMMIT */
    while (!c->dead && !c->closing && !c->stage && c->out_len - c->out_off < MAX_OUT) {
        char *nl = c->in_len ? memchr(c->in, '\n', c->in_len) : NULL;
        if (!nl) {
            if (c->in_len > DSU__MAX_LINE) {
                append_error(c, "request line longer than 65536 bytes; closing the connection");
                c->closing = 1;
            } else if (c->in_len && !c->line_ns) c->line_ns = dsu__now_ns();
            return;
        }
        size_t len = (size_t)(nl - c->in);
        if (quick && !quick_ok(c->in, len)) { c->held = 1; return; }
        c->active_ns = dsu__now_ns();
        struct client *outer = current;  /* set when a COMMIT answers HELLO/STATUS */
        current = c;
        handle_line(c, c->in, len);
        current = outer;
        c->in_len -= len + 1;
        memmove(c->in, nl + 1, c->in_len);
        c->line_ns = c->in_len ? dsu__now_ns() : 0;
    }
}

static void on_readable(struct client *c) {
    if (c->in_cap - c->in_len < 4096 && c->in_cap < DSU__MAX_LINE + 2) {
        size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
        if (cap > DSU__MAX_LINE + 2) cap = DSU__MAX_LINE + 2;
        char *b = realloc(c->in, cap);
        if (!b) { c->dead = 1; return; }
        c->in = b; c->in_cap = cap;
    }
    if (c->in_len == c->in_cap) return;   /* full: process() decides */
    ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n < 0) { c->dead = 1; return; }   /* reset; a running STAGE still completes */
    if (n == 0) { c->eof = 1; return; }   /* its requests are still answered */
    c->in_len += (size_t)n;
    process(c);
}

static void on_writable(struct client *c) {
    while (c->out_off < c->out_len) {
        /* MSG_NOSIGNAL: a client that went away must not SIGPIPE the program. */
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) { c->dead = 1; return; }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    c->write_ns = 0;
    if (c->closing) { c->dead = 1; return; }
    process(c);                           /* lines held back by unread replies */
}

/* Best effort, for a connection we are about to close anyway. */
static void say_and_close(int fd, const char *m, size_t n) {
    (void)!send(fd, m, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(fd);
}

static int peer_allowed(int fd) {
    struct ucred cr;
    socklen_t l = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0) return 0;
    return cr.uid == geteuid() || cr.uid == 0;
}

/* Accepts what is waiting (at most 64 per turn, so clients already
 * connected are served in between).  Returns -1 when out of descriptors. */
static int accept_some(int lfd) {
    for (int k = 0; k < 64; k++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) return -1;
            return 0;                       /* EAGAIN, or nothing we can act on */
        }
        if (!peer_allowed(fd)) { say_and_close(fd, denied_msg, sizeof denied_msg - 1); continue; }
        struct client *c = nclients < MAX_CLIENTS ? calloc(1, sizeof *c) : NULL;
        if (!c) { say_and_close(fd, busy_msg, sizeof busy_msg - 1); continue; }
        c->fd = fd;
        c->active_ns = dsu__now_ns();
        clients[nclients++] = c;
    }
    return 0;
}

static void drop(struct client *c) {
    if (stage_client == c) stage_client = NULL;   /* its STAGE completes, unanswered */
    else if (c->stage) free(c->stage);
    int fd = c->fd;
    __atomic_store_n(&c->fd, -1, __ATOMIC_RELAXED);  /* never closed twice (fork) */
    close(fd);
    free(c->in); free(c->out); free(c);
}

/* The worker finished: complete the STAGE here and answer its client. */
static void stage_done(void) {
    struct dsu__stage_job *job = dsu__worker_take();
    if (!job) return;
    struct dsu__json j;
    dsu__json_init(&j);
    dsu__stage_finish(&j, job);
    struct client *c = stage_client;
    stage_client = NULL;
    if (c) {
        c->stage = NULL;
        append_json(c, &j);
        process(c);
    }
    dsu__json_free(&j);
    free(job);
}

/* Hands the oldest queued STAGE to the worker (or, if no thread can be
 * started, does it right here). */
static void stage_next(void) {
    if (dsu__worker_busy() || stage_client) return;
    struct client *best = NULL;
    for (int i = 0; i < nclients; i++) {
        struct client *c = clients[i];
        if (c->stage && !c->dead && (!best || c->stage_seq < best->stage_seq)) best = c;
    }
    if (!best) return;
    stage_client = best;
    if (dsu__worker_start(best->stage, wake[1]) == 0) return;
    dsu__stage_read(best->stage);
    struct dsu__json j;
    dsu__json_init(&j);
    dsu__stage_finish(&j, best->stage);
    free(best->stage);
    best->stage = NULL;
    stage_client = NULL;
    append_json(best, &j);
    dsu__json_free(&j);
    process(best);
}

/* Deadlines; returns ms until the next one is due (at most 1000). */
static int expire(uint64_t now) {
    uint64_t next = now + 1000 * MS;
    for (int i = 0; i < nclients; i++) {
        struct client *c = clients[i];
        if (c->dead) continue;
        if (c->write_ns) {
            if (now - c->write_ns > WRITE_DEADLINE_MS * MS) { c->dead = 1; continue; }
            if (c->write_ns + WRITE_DEADLINE_MS * MS < next) next = c->write_ns + WRITE_DEADLINE_MS * MS;
        }
        if (c->line_ns && !c->closing && !c->stage) {
            if (now - c->line_ns > LINE_DEADLINE_MS * MS) {
                append_error(c, "request line not completed within 5 s; send each request as one line "
                                "ending in \\n; closing the connection");
                c->closing = 1;
                c->in_len = 0;
                c->line_ns = 0;
                on_writable(c);
                continue;
            }
            if (c->line_ns + LINE_DEADLINE_MS * MS < next) next = c->line_ns + LINE_DEADLINE_MS * MS;
        }
        if (!c->stage && !c->in_len && c->out_off == c->out_len) {
            if (now - c->active_ns > IDLE_CLIENT_MS * MS) { c->dead = 1; continue; }
            if (c->active_ns + IDLE_CLIENT_MS * MS < next) next = c->active_ns + IDLE_CLIENT_MS * MS;
        }
    }
    return next <= now ? 0 : (int)((next - now + MS - 1) / MS);
}

/* Contract: see internal.h. */
void dsu__serve(int lfd) {
    static struct pollfd pf[MAX_CLIENTS + 2];
    int fl = fcntl(lfd, F_GETFL);
    if (fl >= 0) fcntl(lfd, F_SETFL, fl | O_NONBLOCK);
    if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        fprintf(stderr, "dsu: cannot create the control thread's wake-up pipe: %s; updates disabled\n", strerror(errno));
        return;
    }
    uint64_t accept_after = 0;
    serving_fd = lfd;
    for (;;) {
        uint64_t now = dsu__now_ns();
        int timeout = expire(now);
        pf[0] = (struct pollfd){ now >= accept_after ? lfd : -1, POLLIN, 0 };
        pf[1] = (struct pollfd){ wake[0], POLLIN, 0 };
        int n0 = nclients;
        for (int i = 0; i < n0; i++) {
            struct client *c = clients[i];
            short ev = 0;
            if (c->out_off < c->out_len) ev |= POLLOUT;
            if (!c->closing && !c->eof && !c->stage && c->out_len - c->out_off < MAX_OUT) ev |= POLLIN;
            pf[i + 2] = (struct pollfd){ c->dead ? -1 : c->fd, ev, 0 };
        }
        if (accept_after > now && (int)((accept_after - now) / MS) + 1 < timeout) timeout = (int)((accept_after - now) / MS) + 1;
        int r = poll(pf, (nfds_t)n0 + 2, timeout);
        if (r < 0 && errno != EINTR) {
            fprintf(stderr, "dsu: control socket poll failed: %s; updates disabled\n", strerror(errno));
            return;
        }
        if (r > 0 && (pf[1].revents & POLLIN)) {
            char b[64];
            while (read(wake[0], b, sizeof b) > 0) {}
        }
        stage_done();
        for (int i = 0; r > 0 && i < n0; i++) {
            struct client *c = clients[i];
            short re = pf[i + 2].revents;
            if (c->dead || !re) continue;
            if (re & POLLOUT) on_writable(c);
            if (!c->dead && (re & (POLLIN | POLLHUP | POLLERR))) {
                if (re & POLLIN) on_readable(c);
                else c->eof = 1;                     /* hung up */
            }
        }
        if (r > 0 && (pf[0].revents & POLLIN) && accept_some(lfd) < 0)
            accept_after = dsu__now_ns() + 100 * MS;   /* out of fds: let some close */
        stage_next();
        for (int i = 0; i < nclients; i++)
            if (clients[i]->held) { clients[i]->held = 0; process(clients[i]); }
        for (int i = 0; i < nclients; i++) {
            if (clients[i]->out_off < clients[i]->out_len && !clients[i]->dead) on_writable(clients[i]);
        }
        int k = 0;
        for (int i = 0; i < nclients; i++) {
            struct client *c = clients[i];
            if (c->eof && !c->stage && c->out_off == c->out_len) c->dead = 1;  /* all answered */
            if (c->dead) drop(c);
            else clients[k++] = clients[i];
        }
        nclients = k;
    }
}

/* Contract: see internal.h.  Called from inside a request (the main loop
 * is mid-iteration), so it adds clients only at the end of the array,
 * never removes one (drops are marked and done by the main loop), uses a
 * poll array of its own and starts or finishes no STAGE. */
void dsu__serve_quick(void) {
    static struct pollfd qp[MAX_CLIENTS + 1];
    if (serving_fd < 0 || quick) return;
    quick = 1;
    int n0 = nclients;
    qp[0] = (struct pollfd){ serving_fd, POLLIN, 0 };
    for (int i = 0; i < n0; i++) {
        struct client *c = clients[i];
        short ev = c->out_off < c->out_len ? POLLOUT : 0;
        if (!c->closing && !c->eof && !c->stage && !c->held && c != current) ev |= POLLIN;
        qp[i + 1] = (struct pollfd){ c->dead ? -1 : c->fd, ev, 0 };
    }
    if (poll(qp, (nfds_t)n0 + 1, 0) > 0) {
        for (int i = 0; i < n0; i++) {
            struct client *c = clients[i];
            short re = qp[i + 1].revents;
            if (c->dead || !re) continue;
            if (re & POLLOUT) on_writable(c);
            if (!c->dead && (re & POLLIN)) on_readable(c);
        }
        if (qp[0].revents & POLLIN) accept_some(serving_fd);
    }
    quick = 0;
}

/* In a forked child: the parent's clients and pipe are not ours. */
void dsu__serve_atfork_child(void) {
    for (int i = 0; i < nclients; i++) {
        int fd = __atomic_load_n(&clients[i]->fd, __ATOMIC_RELAXED);
        if (fd >= 0) close(fd);
    }
    nclients = 0;
    if (wake[0] >= 0) close(wake[0]);
    if (wake[1] >= 0) close(wake[1]);
    wake[0] = wake[1] = -1;
    stage_client = NULL;
    current = NULL;
    quick = 0;
    serving_fd = -1;
    dsu__worker_atfork_child();
}
