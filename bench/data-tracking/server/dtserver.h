/* dtserver: single-threaded poll() key/value server for bench/data-tracking.
 *
 * Unlike test/fixtures/pollserver (static arrays), all of its state of updatable
 * types lives on the heap, so a dsu-cc build tracks it:
 *   - struct conn: malloc'd per accepted connection, freed when it closes;
 *   - struct kv_entry: the store's entries; entries are immutable, so every SET
 *     allocates a new entry and frees the one it replaces (DEL frees).
 * Listens on 127.0.0.1 only.  Usage: dtserver [port [preload]]; prints
 * "listening <port>".  `preload` entries p0000000.. are inserted at start. */
#ifndef DTSERVER_H
#define DTSERVER_H

#include <stddef.h>

#define MAX_CONNS 1024
#define LINE_MAX_LEN 1024
#define OUT_BUF_LEN 16384
#define KEY_LEN 32
#define VAL_LEN 64

/* Per-connection state (same buffers as the pollserver fixture's struct client). */
struct conn {
    int fd;
    int index;          /* position in the live-connection array */
    size_t in_len;
    size_t out_len;
    unsigned long requests;
    char in[LINE_MAX_LEN];
    char out[OUT_BUF_LEN];
};

/* One key/value pair; lives on the heap, chained in a hash bucket. */
struct kv_entry {
    struct kv_entry *next;
    unsigned int hash;
    unsigned int vlen;
    char key[KEY_LEN];
    char value[VAL_LEN];
};

/* Server-wide counters (one global instance). */
struct stats {
    unsigned long accepted;
    unsigned long closed;
    unsigned long requests;
    unsigned long sets;
};

extern struct stats stats;

/* server.c */
int make_listener(int port, int *bound_port);
int serve(int listen_fd, int stop_fd);
int live_connections(void);

/* store.c */
int store_init(long preload);
int store_set(const char *key, const char *value);
const char *store_get(const char *key);
int store_del(const char *key);
long store_count(void);
void dispatch(const char *line, char *out, size_t out_len);

#endif
