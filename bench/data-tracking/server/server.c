#include "dtserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static struct conn *conns[MAX_CONNS]; /* live connections, dense */
static int nconns;
static struct pollfd pfds[MAX_CONNS + 2];

int make_listener(int port, int *bound_port)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 512) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    *bound_port = ntohs(addr.sin_port);
    return fd;
}

int live_connections(void)
{
    return nconns;
}

static void close_conn(struct conn *c)
{
    int i = c->index;
    close(c->fd);
    conns[i] = conns[--nconns];
    conns[i]->index = i;
    conns[nconns] = NULL;
    stats.closed++;
    free(c);
}

static void accept_conns(int listen_fd)
{
    int i, fd;
    for (i = 0; i < 64; i++) { /* bounded: at most 64 accepts per wakeup */
        struct conn *c;
        fd = accept(listen_fd, NULL, NULL);
        if (fd < 0)
            return;
        if (nconns == MAX_CONNS || (c = malloc(sizeof *c)) == NULL) {
            close(fd);
            continue;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        c->fd = fd;
        c->index = nconns;
        c->in_len = 0;
        c->out_len = 0;
        c->requests = 0;
        conns[nconns++] = c;
        stats.accepted++;
    }
}

static int queue_reply(struct conn *c, const char *reply)
{
    size_t n = strlen(reply);
    if (c->out_len + n + 1 > OUT_BUF_LEN)
        return -1;
    memcpy(c->out + c->out_len, reply, n);
    c->out[c->out_len + n] = '\n';
    c->out_len += n + 1;
    return 0;
}

static int flush_conn(struct conn *c)
{
    while (c->out_len > 0) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == EINTR)
                continue;
            return -1;
        }
        memmove(c->out, c->out + n, c->out_len - (size_t)n);
        c->out_len -= (size_t)n;
    }
    return 0;
}

/* Process every complete line in the input buffer. Returns -1 to drop the connection. */
static int handle_input(struct conn *c)
{
    char reply[KEY_LEN + VAL_LEN + 256];
    size_t start = 0, i;
    for (i = 0; i < c->in_len; i++) {
        if (c->in[i] != '\n')
            continue;
        c->in[i] = '\0';
        if (i > start && c->in[i - 1] == '\r')
            c->in[i - 1] = '\0';
        dispatch(c->in + start, reply, sizeof reply);
        c->requests++;
        if (queue_reply(c, reply) != 0)
            return -1;
        start = i + 1;
    }
    if (start > 0) {
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
    } else if (c->in_len == LINE_MAX_LEN) {
        queue_reply(c, "ERR line too long");
        flush_conn(c);
        return -1;
    }
    return 0;
}

static int read_conn(struct conn *c)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, LINE_MAX_LEN - c->in_len, 0);
    if (n == 0)
        return -1;
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    c->in_len += (size_t)n;
    return handle_input(c);
}

int serve(int listen_fd, int stop_fd)
{
    static struct conn *polled[MAX_CONNS];
    for (;;) {
        int n = 0, i, np, ready;
        pfds[n].fd = stop_fd;
        pfds[n++].events = POLLIN;
        pfds[n].fd = listen_fd;
        pfds[n++].events = POLLIN;
        for (i = 0; i < nconns; i++) {
            polled[i] = conns[i];
            pfds[n].fd = conns[i]->fd;
            pfds[n++].events = conns[i]->out_len > 0 ? (POLLIN | POLLOUT) : POLLIN;
        }
        np = nconns;
        ready = poll(pfds, (nfds_t)n, -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (pfds[0].revents & POLLIN)
            break;
        for (i = 0; i < np; i++) {
            struct conn *c = polled[i];
            short re = pfds[i + 2].revents;
            if (re == 0)
                continue;
            if ((re & (POLLIN | POLLHUP | POLLERR)) && read_conn(c) != 0) {
                close_conn(c);
                continue;
            }
            if (c->out_len > 0 && flush_conn(c) != 0)
                close_conn(c);
        }
        if (pfds[1].revents & POLLIN)
            accept_conns(listen_fd);
    }
    while (nconns > 0)
        close_conn(conns[nconns - 1]);
    return 0;
}
