#include "dtserver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct stats stats;

static struct kv_entry **buckets; /* nbuckets heads (a power of two) */
static size_t nbuckets;
static long count;

static unsigned int hash_key(const char *s)
{
    unsigned int h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static int grow(void)
{
    size_t n = nbuckets ? nbuckets * 2 : 1024, i;
    struct kv_entry **nb = calloc(n, sizeof *nb);
    if (nb == NULL)
        return -1;
    for (i = 0; i < nbuckets; i++) {
        struct kv_entry *e = buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            e->next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
        }
    }
    free(buckets);
    buckets = nb;
    nbuckets = n;
    return 0;
}

/* Immutable entries: a SET builds a new entry and frees the one it replaces. */
int store_set(const char *key, const char *value)
{
    size_t klen = strlen(key), vlen = strlen(value);
    unsigned int h;
    struct kv_entry **pp, *e;
    if (klen >= KEY_LEN || vlen >= VAL_LEN)
        return -1;
    if ((size_t)count >= nbuckets && grow() != 0)
        return -2;
    h = hash_key(key);
    e = malloc(sizeof *e);
    if (e == NULL)
        return -2;
    e->hash = h;
    e->vlen = (unsigned int)vlen;
    memcpy(e->key, key, klen + 1);
    memcpy(e->value, value, vlen + 1);
    for (pp = &buckets[h & (nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next) {
        struct kv_entry *old = *pp;
        if (old->hash == h && strcmp(old->key, key) == 0) {
            e->next = old->next;
            *pp = e;
            free(old);
            return 0;
        }
    }
    e->next = buckets[h & (nbuckets - 1)];
    buckets[h & (nbuckets - 1)] = e;
    count++;
    return 0;
}

static struct kv_entry *find(const char *key)
{
    unsigned int h;
    struct kv_entry *e;
    if (nbuckets == 0)
        return NULL;
    h = hash_key(key);
    for (e = buckets[h & (nbuckets - 1)]; e != NULL; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

const char *store_get(const char *key)
{
    struct kv_entry *e = find(key);
    return e ? e->value : NULL;
}

int store_del(const char *key)
{
    unsigned int h;
    struct kv_entry **pp;
    if (nbuckets == 0)
        return -1;
    h = hash_key(key);
    for (pp = &buckets[h & (nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next) {
        struct kv_entry *e = *pp;
        if (e->hash == h && strcmp(e->key, key) == 0) {
            *pp = e->next;
            free(e);
            count--;
            return 0;
        }
    }
    return -1;
}

long store_count(void)
{
    return count;
}

int store_init(long preload)
{
    char key[KEY_LEN], value[VAL_LEN];
    long i;
    if (grow() != 0)
        return -1;
    for (i = 0; i < preload; i++) {
        snprintf(key, sizeof key, "p%07ld", i);
        snprintf(value, sizeof value, "value-%ld", i * 7919L);
        if (store_set(key, value) != 0)
            return -1;
    }
    return 0;
}

/* Copy the first space-separated word of s into word; return the rest (after one space). */
static const char *split_word(const char *s, char *word, size_t len)
{
    size_t n = 0;
    while (s[n] != '\0' && s[n] != ' ')
        n++;
    if (n >= len)
        n = len - 1;
    memcpy(word, s, n);
    word[n] = '\0';
    while (s[n] != '\0' && s[n] != ' ')
        n++;
    return s[n] == ' ' ? s + n + 1 : s + n;
}

void dispatch(const char *line, char *out, size_t out_len)
{
    char cmd[16], key[KEY_LEN + 1];
    const char *args = split_word(line, cmd, sizeof cmd);
    stats.requests++;
    if (strcmp(cmd, "PING") == 0) {
        snprintf(out, out_len, "PONG");
    } else if (strcmp(cmd, "SET") == 0) {
        const char *value = split_word(args, key, sizeof key);
        int rc;
        if (key[0] == '\0' || value[0] == '\0') {
            snprintf(out, out_len, "ERR usage: SET key value");
            return;
        }
        stats.sets++;
        rc = store_set(key, value);
        snprintf(out, out_len, rc == 0 ? "OK" : rc == -1 ? "ERR too long" : "ERR no memory");
    } else if (strcmp(cmd, "GET") == 0) {
        const char *v = store_get(args);
        snprintf(out, out_len, "%s", v ? v : "NOT_FOUND");
    } else if (strcmp(cmd, "DEL") == 0) {
        snprintf(out, out_len, store_del(args) == 0 ? "OK" : "NOT_FOUND");
    } else if (strcmp(cmd, "COUNT") == 0) {
        snprintf(out, out_len, "%ld", store_count());
    } else if (strcmp(cmd, "INFO") == 0) {
        snprintf(out, out_len, "conn_size=%zu entry_size=%zu entries=%ld conns=%d accepted=%lu closed=%lu requests=%lu sets=%lu",
                 sizeof(struct conn), sizeof(struct kv_entry), store_count(), live_connections(),
                 stats.accepted, stats.closed, stats.requests, stats.sets);
    } else {
        snprintf(out, out_len, "ERR unknown command");
    }
}
