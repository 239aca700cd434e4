/* libspawn -- a shared library that creates a thread: with the program
 * linked -rdynamic, its pthread_create call binds to the runtime's. */
#define _GNU_SOURCE
#include <pthread.h>
#include "dsu.h"

static void *run(void *a) {
    (void)a;
    for (;;) dsu_usleep(10000);    /* resolved against the executable */
    return NULL;
}

int spawn(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, run, NULL) != 0) return -1;
    pthread_setname_np(t, "libthread");
    return pthread_detach(t);
}
