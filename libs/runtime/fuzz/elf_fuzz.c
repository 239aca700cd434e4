/* elf_fuzz -- libFuzzer target for the patch validator (src/elf_check.c).
 * Every input is validated as a patch file.  The validator must never read
 * outside the input (ASan), never hit undefined behaviour (UBSan), always
 * finish, and keep its contract: a refusal comes with a one-line printable
 * reason naming the file; an acceptance describes sorted, disjoint loads
 * inside 4 GiB, and every shorter prefix that cuts into a load's file bytes
 * is refused.  Seeds: the test suite's patches (make fuzz builds them). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <elf.h>
#include "internal.h"

static void check_reason(const char *err) {
    size_t n = strlen(err);
    if (n == 0 || n >= 2048 || !strstr(err, "patch file 'fuzz.so'")) abort();
    for (size_t i = 0; i < n; i++)
        if (err[i] == '\n') abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[2048];
    struct dsu__elf_info info;
    memset(err, 0x55, sizeof err);
    /* An exact-size heap copy: ASan sees any read past the end. */
    unsigned char *b = malloc(size ? size : 1);
    if (!b) return 0;
    memcpy(b, data, size);
    if (dsu__elf_check(b, size, "fuzz.so", &info, err, sizeof err) < 0) {
        err[sizeof err - 1] = 0;
        check_reason(err);
        free(b);
        return 0;
    }
    if (info.nloads == 0 || info.nloads > DSU__ELF_MAX_LOADS) abort();
    for (unsigned i = 0; i < info.nloads; i++) {
        if (info.load[i].vaddr + info.load[i].memsz > (1ull << 32)) abort();
        if (i && info.load[i].vaddr < info.load[i - 1].vaddr + info.load[i - 1].memsz) abort();
    }
    /* Accepted: cutting the file inside the last load's bytes must be
     * refused as truncated (the SIGBUS case). */
    const Elf64_Ehdr *e = (const Elf64_Ehdr *)b;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(b + e->e_phoff);
    for (unsigned i = 0; i < e->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || ph[i].p_filesz == 0) continue;
        size_t cut = (size_t)(ph[i].p_offset + ph[i].p_filesz - 1);
        if (dsu__elf_check(b, cut, "fuzz.so", NULL, err, sizeof err) == 0) abort();
        check_reason(err);
    }
    free(b);
    return 0;
}
