/* proto.c -- the control protocol's request parser and JSON reply writer.
 *
 * Both are pure (no I/O, no global state) so they can be fuzzed in
 * isolation: a malformed request must never be able to hurt the program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

const char dsu__proto_valid_requests[] =
    "valid requests: HELLO | STATUS | STAGE <patch.so> <sha256-hex> <patch-id> | "
    "COMMIT [timeout-ms] | ROLLBACK [timeout-ms] | STACKS";

/* Splits on spaces/tabs.  Returns the number of tokens (at most max+1 so
 * callers can detect extras). */
static int tokenize(const char *s, size_t len, const char **tok, size_t *tlen,
                    int max) {
    int n = 0; size_t i = 0;
    while (i < len) {
        while (i < len && (s[i] == ' ' || s[i] == '\t')) i++;
        if (i >= len) break;
        size_t st = i;
        while (i < len && s[i] != ' ' && s[i] != '\t') i++;
        if (n <= max) { tok[n] = s + st; tlen[n] = i - st; }
        n++;
        if (n > max) return n;
    }
    return n;
}

static int tok_is(const char *t, size_t n, const char *word) {
    return strlen(word) == n && memcmp(t, word, n) == 0;
}

static int parse_timeout(const char *t, size_t n, long *out) {
    long v = 0;
    if (n == 0 || n > 9) return -1;
    for (size_t i = 0; i < n; i++) {
        if (t[i] < '0' || t[i] > '9') return -1;
        v = v * 10 + (t[i] - '0');
    }
    if (v > DSU__MAX_TIMEOUT_MS) return -1;
    *out = v;
    return 0;
}

/* Parses one request line (without its '\n'; a trailing '\r' is ignored).
 * Returns 0 and fills *out, or -1 with out->error pointing at a static
 * message saying what is wrong and what to send instead. */
int dsu__proto_parse(const char *buf, size_t len, struct dsu__request *out) {
    const char *tok[5]; size_t tl[5];
    memset(out, 0, sizeof *out);
    out->timeout_ms = DSU__DEFAULT_TIMEOUT_MS;
    if (len > 0 && buf[len - 1] == '\r') len--;
    if (len > DSU__MAX_LINE) { out->error = "request line longer than 65536 bytes; send one short request per line"; return -1; }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c < 0x20 && c != '\t') { out->error = "request contains control characters; send printable text, one request per line"; return -1; }
    }
    int n = tokenize(buf, len, tok, tl, 4);
    if (n == 0) { out->error = "empty request; valid requests: HELLO | STATUS | STAGE <patch.so> <sha256-hex> <patch-id> | COMMIT [timeout-ms] | ROLLBACK [timeout-ms] | STACKS"; return -1; }
    if (tok_is(tok[0], tl[0], "HELLO") || tok_is(tok[0], tl[0], "STATUS") ||
        tok_is(tok[0], tl[0], "STACKS")) {
        if (n != 1) { out->error = "HELLO, STATUS and STACKS take no arguments"; return -1; }
        out->kind = tl[0] == 5 ? DSU__REQ_HELLO :
                    tok[0][4] == 'U' ? DSU__REQ_STATUS : DSU__REQ_STACKS;
        return 0;
    }
    if (tok_is(tok[0], tl[0], "STAGE")) {
        if (n != 4) { out->error = "usage: STAGE <path-to-patch.so> <sha256-hex-of-patch.so> <patch-id> (paths must not contain spaces)"; return -1; }
        if (tl[1] >= sizeof out->path) { out->error = "patch path too long (max 4095 bytes)"; return -1; }
        if (tl[2] != 64) { out->error = "sha256 must be exactly 64 hex digits (run sha256sum on the patch)"; return -1; }
        for (size_t i = 0; i < 64; i++) {
            char c = tok[2][i];
            if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) { out->error = "sha256 must be exactly 64 hex digits (run sha256sum on the patch)"; return -1; }
            out->sha256[i] = c;
        }
        if (tl[3] == 0 || tl[3] >= sizeof out->id) { out->error = "patch id must be 1-127 characters of [A-Za-z0-9._:+-]"; return -1; }
        for (size_t i = 0; i < tl[3]; i++) {
            char c = tok[3][i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '.' || c == '_' || c == ':' || c == '-' || c == '+')) {
                out->error = "patch id must be 1-127 characters of [A-Za-z0-9._:+-]"; return -1;
            }
        }
        memcpy(out->path, tok[1], tl[1]);
        memcpy(out->id, tok[3], tl[3]);
        out->kind = DSU__REQ_STAGE;
        return 0;
    }
    if (tok_is(tok[0], tl[0], "COMMIT") || tok_is(tok[0], tl[0], "ROLLBACK")) {
        int commit = tl[0] == 6;
        if (n > 2) { out->error = commit ? "usage: COMMIT [timeout-ms]" : "usage: ROLLBACK [timeout-ms]"; return -1; }
        if (n == 2 && parse_timeout(tok[1], tl[1], &out->timeout_ms) < 0) { out->error = "timeout must be a decimal number of milliseconds between 0 and 3600000"; return -1; }
        out->kind = commit ? DSU__REQ_COMMIT : DSU__REQ_ROLLBACK;
        return 0;
    }
    out->error = "unknown request; valid requests: HELLO | STATUS | STAGE <patch.so> <sha256-hex> <patch-id> | COMMIT [timeout-ms] | ROLLBACK [timeout-ms] | STACKS";
    return -1;
}

/* ---- JSON writer ---- */

void dsu__json_init(struct dsu__json *j) { memset(j, 0, sizeof *j); }
void dsu__json_free(struct dsu__json *j) { free(j->buf); memset(j, 0, sizeof *j); }

static void put(struct dsu__json *j, const char *s, size_t n) {
    if (j->oom) return;
    if (j->len + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 256;
        while (cap < j->len + n + 1) cap *= 2;
        char *b = realloc(j->buf, cap);
        if (!b) { j->oom = 1; return; }
        j->buf = b; j->cap = cap;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = 0;
}
static void puts_(struct dsu__json *j, const char *s) { put(j, s, strlen(s)); }

/* need_comma[depth]: 0 = nothing written yet at this level, 1 = a value was
 * written (next one needs ","), 2 = a key was just written (its value
 * follows directly). */
static void value_start(struct dsu__json *j) {
    if (j->depth <= 0 || j->depth >= 32) return;
    unsigned char *st = &j->need_comma[j->depth];
    if (*st == 1) put(j, ",", 1);
    *st = 1;
}
static void open_(struct dsu__json *j, const char *c) {
    value_start(j); puts_(j, c);
    j->depth++;
    if (j->depth < 32) j->need_comma[j->depth] = 0;
}
static void close_(struct dsu__json *j, const char *c) { if (j->depth > 0) j->depth--; puts_(j, c); }
void dsu__json_obj(struct dsu__json *j) { open_(j, "{"); }
void dsu__json_obj_end(struct dsu__json *j) { close_(j, "}"); }
void dsu__json_arr(struct dsu__json *j) { open_(j, "["); }
void dsu__json_arr_end(struct dsu__json *j) { close_(j, "]"); }

static void raw_str(struct dsu__json *j, const char *s) {
    static const char hex[] = "0123456789abcdef";
    put(j, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        /* Bytes >= 0x80 are escaped as latin-1 code points: the output is
         * always valid JSON whatever bytes a path or name contains. */
        if (*p == '"' || *p == '\\') { char e[2] = { '\\', (char)*p }; put(j, e, 2); }
        else if (*p == '\n') put(j, "\\n", 2);
        else if (*p < 0x20 || *p >= 0x7f) {
            char e[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };
            put(j, e, 6);
        } else put(j, (const char *)p, 1);
    }
    put(j, "\"", 1);
}

void dsu__json_key(struct dsu__json *j, const char *k) {
    value_start(j);
    raw_str(j, k);
    put(j, ":", 1);
    if (j->depth > 0 && j->depth < 32) j->need_comma[j->depth] = 2;
}

void dsu__json_str(struct dsu__json *j, const char *s) {
    value_start(j);
    if (!s) puts_(j, "null"); else raw_str(j, s);
}
void dsu__json_int(struct dsu__json *j, long long v) {
    char b[32]; value_start(j);
    snprintf(b, sizeof b, "%lld", v); puts_(j, b);
}
void dsu__json_bool(struct dsu__json *j, int v) { value_start(j); puts_(j, v ? "true" : "false"); }
void dsu__json_null(struct dsu__json *j) { value_start(j); puts_(j, "null"); }

void dsu__json_error(struct dsu__json *j, const char *msg) {
    dsu__json_obj(j);
    dsu__json_key(j, "ok"); dsu__json_bool(j, 0);
    dsu__json_key(j, "error"); dsu__json_str(j, msg);
    dsu__json_obj_end(j);
}

void dsu__json_request(struct dsu__json *j, const struct dsu__request *r) {
    static const char *names[] = { "?", "HELLO", "STATUS", "STAGE", "COMMIT", "ROLLBACK", "STACKS" };
    dsu__json_obj(j);
    dsu__json_key(j, "kind");
    dsu__json_str(j, r->kind >= 1 && r->kind <= 6 ? names[r->kind] : "?");
    if (r->kind == DSU__REQ_STAGE) {
        dsu__json_key(j, "path"); dsu__json_str(j, r->path);
        dsu__json_key(j, "sha256"); dsu__json_str(j, r->sha256);
        dsu__json_key(j, "id"); dsu__json_str(j, r->id);
    }
    if (r->kind == DSU__REQ_COMMIT || r->kind == DSU__REQ_ROLLBACK) {
        dsu__json_key(j, "timeoutMs"); dsu__json_int(j, r->timeout_ms);
    }
    dsu__json_obj_end(j);
}
