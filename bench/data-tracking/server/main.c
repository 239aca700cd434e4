#include "dtserver.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    if (write(stop_pipe[1], &c, 1) < 0) {
        /* nothing to do: the pipe is full, a stop is already pending */
    }
    errno = saved;
}

static int install_signals(void)
{
    struct sigaction sa;
    if (pipe(stop_pipe) != 0)
        return -1;
    fcntl(stop_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(stop_pipe[1], F_SETFD, FD_CLOEXEC);
    fcntl(stop_pipe[1], F_SETFL, O_NONBLOCK);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    int port = 0, bound = 0, fd, rc;
    long preload = 0;
    if (argc > 1) {
        char *end;
        long p = strtol(argv[1], &end, 10);
        if (*end != '\0' || p < 0 || p > 65535) {
            fprintf(stderr, "usage: %s [port [preload]]\n", argv[0]);
            return 2;
        }
        port = (int)p;
    }
    if (argc > 2) {
        char *end;
        preload = strtol(argv[2], &end, 10);
        if (*end != '\0' || preload < 0 || preload > 50000000L) {
            fprintf(stderr, "usage: %s [port [preload]]\n", argv[0]);
            return 2;
        }
    }
    if (store_init(preload) != 0) {
        fprintf(stderr, "store: out of memory\n");
        return 1;
    }
    if (install_signals() != 0) {
        perror("signals");
        return 1;
    }
    fd = make_listener(port, &bound);
    if (fd < 0) {
        perror("listen");
        return 1;
    }
    printf("listening %d\n", bound);
    fflush(stdout);
    rc = serve(fd, stop_pipe[0]);
    close(fd);
    return rc == 0 ? 0 : 1;
}
