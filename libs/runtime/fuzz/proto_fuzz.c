/* proto_fuzz -- libFuzzer target for the control protocol's pure parts:
 * the request parser and the JSON reply writer.  Every input is parsed
 * as one request line; the result (or the error) is formatted as JSON,
 * and the output is checked to be one line of balanced, printable JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

static void check_json(const struct dsu__json *j) {
    if (j->oom) return;
    if (!j->buf || j->len == 0 || j->buf[0] != '{' || j->buf[j->len - 1] != '}') abort();
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < j->len; i++) {
        unsigned char c = (unsigned char)j->buf[i];
        if (c < 0x20 || c >= 0x7f) abort();          /* one printable line */
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') in_str = 1;
        else if (c == '{' || c == '[') depth++;
        else if (c == '}' || c == ']') { if (--depth < 0) abort(); }
    }
    if (depth != 0 || in_str) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct dsu__request *r = malloc(sizeof *r);
    struct dsu__json j;
    if (!r) return 0;
    dsu__json_init(&j);
    if (dsu__proto_parse((const char *)data, size, r) == 0) {
        if (r->kind < DSU__REQ_HELLO || r->kind > DSU__REQ_STACKS) abort();
        if (r->kind == DSU__REQ_STAGE && (strlen(r->sha256) != 64 || !r->id[0] || !r->path[0])) abort();
        if ((r->kind == DSU__REQ_COMMIT || r->kind == DSU__REQ_ROLLBACK) &&
            (r->timeout_ms < 0 || r->timeout_ms > DSU__MAX_TIMEOUT_MS)) abort();
        dsu__json_request(&j, r);
    } else {
        if (!r->error) abort();
        dsu__json_error(&j, r->error);
    }
    check_json(&j);
    /* The writer must also escape arbitrary bytes (paths, names). */
    if (size < 4096) {
        char *s = malloc(size + 1);
        if (s) {
            memcpy(s, data, size); s[size] = 0;
            struct dsu__json k;
            dsu__json_init(&k);
            dsu__json_obj(&k); dsu__json_key(&k, s); dsu__json_str(&k, s); dsu__json_obj_end(&k);
            check_json(&k);
            dsu__json_free(&k);
            free(s);
        }
    }
    dsu__json_free(&j);
    free(r);
    return 0;
}
