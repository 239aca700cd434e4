/* unit -- pure-function tests: SHA-256 known-answer vectors, the request
 * parser and the JSON writer.  Prints "ok - ..." / "not ok - ..." lines. */
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

/* A function and compiler-style clones of it (plus an orphan clone), to
 * check that clones map to their base function. */
__asm__(".text\n"
        ".globl dsu_t_fn\n.type dsu_t_fn,@function\ndsu_t_fn:\n\tnop\n\tret\n.size dsu_t_fn,2\n"
        ".type dsu_t_fn.part.0,@function\ndsu_t_fn.part.0:\n\tnop\n\tnop\n\tret\n.size dsu_t_fn.part.0,3\n"
        ".type dsu_t_fn.cold,@function\ndsu_t_fn.cold:\n\tnop\n\tnop\n\tret\n.size dsu_t_fn.cold,3\n"
        ".type dsu_t_orphan.isra.0,@function\ndsu_t_orphan.isra.0:\n\tnop\n\tret\n.size dsu_t_orphan.isra.0,2\n");
extern char dsu_t_fn[], dsu_t_fn_part[] __asm__("dsu_t_fn.part.0"),
            dsu_t_fn_cold[] __asm__("dsu_t_fn.cold"), dsu_t_orphan[] __asm__("dsu_t_orphan.isra.0");

static int bias_cb(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    *(uintptr_t *)data = (uintptr_t)info->dlpi_addr;
    return 1;
}

static int fails;
static void check(int cond, const char *what) {
    printf("%s - %s\n", cond ? "ok" : "not ok", what);
    if (!cond) fails++;
}

static void sha(const char *in, size_t n, const char *want, const char *what) {
    char hex[65];
    dsu__sha256_hex(in, n, hex);
    check(strcmp(hex, want) == 0, what);
}

static int parses(const char *s, struct dsu__request *r) {
    return dsu__proto_parse(s, strlen(s), r) == 0;
}

int main(void) {
    /* FIPS 180-2 / NIST vectors */
    sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sha256 empty");
    sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256 abc");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha(m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", "sha256 448-bit message");
    char *mil = malloc(1000000);
    memset(mil, 'a', 1000000);
    sha(mil, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "sha256 one million 'a'");
    /* incremental updates in odd chunk sizes give the same digest */
    struct dsu__sha256 c; uint8_t d[32]; char hex[65];
    dsu__sha256_init(&c);
    for (size_t off = 0, k = 1; off < 1000000; off += k, k = k * 7 % 1000 + 1)
        dsu__sha256_update(&c, mil + off, off + k > 1000000 ? 1000000 - off : k);
    dsu__sha256_final(&c, d);
    for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", d[i]);
    check(strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0") == 0, "sha256 incremental");
    free(mil);

    struct dsu__request r;
    check(parses("HELLO", &r) && r.kind == DSU__REQ_HELLO, "parse HELLO");
    check(parses("STATUS\r", &r) && r.kind == DSU__REQ_STATUS, "parse STATUS with CR");
    check(parses("  STACKS  ", &r) && r.kind == DSU__REQ_STACKS, "parse STACKS with spaces");
    check(!parses("HELLO x", &r) && r.error, "HELLO with argument rejected");
    check(!parses("", &r) && strstr(r.error, "valid requests"), "empty request lists valid requests");
    check(!parses("hello", &r) && strstr(r.error, "valid requests"), "lower-case verb rejected with list");
    check(parses("STAGE /tmp/p.so 0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef v2", &r) &&
          r.kind == DSU__REQ_STAGE && strcmp(r.path, "/tmp/p.so") == 0 &&
          strcmp(r.sha256, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") == 0 &&
          strcmp(r.id, "v2") == 0, "parse STAGE, hash lower-cased");
    check(!parses("STAGE /tmp/p.so 0123 v2", &r), "short hash rejected");
    check(!parses("STAGE /tmp/p.so 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg v2", &r), "non-hex hash rejected");
    check(!parses("STAGE /tmp/p.so 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef v/2", &r), "bad patch id rejected");
    check(!parses("STAGE /tmp/p.so", &r), "STAGE missing args rejected");
    check(parses("COMMIT", &r) && r.kind == DSU__REQ_COMMIT && r.timeout_ms == DSU__DEFAULT_TIMEOUT_MS, "COMMIT default timeout");
    check(parses("COMMIT 250", &r) && r.timeout_ms == 250, "COMMIT 250");
    check(!parses("COMMIT -1", &r) && !parses("COMMIT 99999999999", &r) && !parses("COMMIT 1x", &r), "bad timeouts rejected");
    check(parses("ROLLBACK 3000", &r) && r.kind == DSU__REQ_ROLLBACK && r.timeout_ms == 3000, "ROLLBACK 3000");
    check(!parses("COMMIT 1 2", &r), "COMMIT extra arg rejected");
    char nul[] = "HEL\0LO";
    check(dsu__proto_parse(nul, 6, &r) < 0, "NUL byte rejected");
    char *big = malloc(70000);
    memset(big, 'A', 70000);
    check(dsu__proto_parse(big, 70000, &r) < 0 && strstr(r.error, "65536"), "overlong line rejected");
    free(big);

    uintptr_t bias = 0;
    const char *err = NULL;
    dl_iterate_phdr(bias_cb, &bias);
    check(dsu__symtab_add_file("exe", "/proc/self/exe", bias, &err) == 0, "symtab of /proc/self/exe");
    const struct dsu__sym *sym = dsu__symtab_lookup((uintptr_t)dsu_t_fn + 1);
    check(sym && sym->base == (uintptr_t)dsu_t_fn && strcmp(sym->name, "dsu_t_fn") == 0, "symtab: pc inside a function");
    sym = dsu__symtab_lookup((uintptr_t)dsu_t_fn_part + 1);
    check(sym && sym->base == (uintptr_t)dsu_t_fn && strcmp(sym->name, "dsu_t_fn.part.0") == 0, "symtab: .part clone maps to its base function");
    sym = dsu__symtab_lookup((uintptr_t)dsu_t_fn_cold + 2);
    check(sym && sym->base == (uintptr_t)dsu_t_fn, "symtab: .cold clone maps to its base function");
    sym = dsu__symtab_lookup((uintptr_t)dsu_t_orphan);
    check(sym && sym->base == (uintptr_t)dsu_t_orphan, "symtab: clone without a base maps to itself");
    check(dsu__symtab_lookup(0x10) == NULL, "symtab: unmapped address has no symbol");
    check(dsu__symtab_add("x", "not an elf file", 15, 0, &err) < 0 && err, "symtab: garbage refused");

    struct dsu__json j;
    dsu__json_init(&j);
    dsu__json_obj(&j);
    dsu__json_key(&j, "ok"); dsu__json_bool(&j, 1);
    dsu__json_key(&j, "s"); dsu__json_str(&j, "a\"b\\c\n\x01\xff");
    dsu__json_key(&j, "a"); dsu__json_arr(&j);
    dsu__json_int(&j, -5); dsu__json_null(&j);
    dsu__json_obj(&j); dsu__json_key(&j, "k"); dsu__json_str(&j, NULL); dsu__json_obj_end(&j);
    dsu__json_arr_end(&j);
    dsu__json_obj_end(&j);
    check(strcmp(j.buf, "{\"ok\":true,\"s\":\"a\\\"b\\\\c\\n\\u0001\\u00ff\",\"a\":[-5,null,{\"k\":null}]}") == 0,
          "JSON writer output and escaping");
    dsu__json_free(&j);
    dsu__json_init(&j);
    dsu__json_error(&j, "bad");
    check(strcmp(j.buf, "{\"ok\":false,\"error\":\"bad\"}") == 0, "JSON error reply");
    dsu__json_free(&j);
    return fails ? 1 : 0;
}
