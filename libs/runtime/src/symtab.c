/* symtab.c -- ELF function symbol ranges, used to map return addresses on
 * captured stacks to functions (activeness checks, STACKS).
 *
 * Tables are built by the control thread only (at start-up and at STAGE),
 * and published with a release store on the list head so lookups never see
 * a half-built table.  Tables are never freed: code they describe is never
 * unmapped either. */
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "internal.h"

static struct dsu__symtab *tables;   /* atomic head */

static int cmp_start(const void *a, const void *b) {
    const struct dsu__sym *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

struct byname { const char *name; uintptr_t start; };
static int cmp_name(const void *a, const void *b) {
    return strcmp(((const struct byname *)a)->name, ((const struct byname *)b)->name);
}

/* Compiler clones (foo.cold, foo.part.0, foo.isra.0, foo.constprop.0, ...)
 * belong to the function whose name precedes the first '.'. */
static size_t base_len(const char *name) {
    const char *dot = strchr(name, '.');
    return dot ? (size_t)(dot - name) : strlen(name);
}

int dsu__symtab_add(const char *label, const void *data, size_t size,
                    uintptr_t bias, const char **err) {
    const unsigned char *d = data;
    const Elf64_Ehdr *eh = data;
    if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
        eh->e_ident[EI_CLASS] != ELFCLASS64) { *err = "not a 64-bit ELF file"; return -1; }
    if (eh->e_shoff == 0 || eh->e_shentsize != sizeof(Elf64_Shdr) ||
        eh->e_shoff > size || (size - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum) {
        *err = "ELF section headers missing or truncated"; return -1;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(d + eh->e_shoff);
    /* Prefer .symtab (has local symbols and clones); fall back to .dynsym
     * for stripped binaries, which -rdynamic keeps useful. */
    const Elf64_Shdr *sym = NULL;
    for (int pass = 0; pass < 2 && !sym; pass++)
        for (unsigned i = 0; i < eh->e_shnum; i++)
            if (sh[i].sh_type == (pass ? SHT_DYNSYM : SHT_SYMTAB)) { sym = &sh[i]; break; }
    if (!sym) { *err = "no symbol table (.symtab/.dynsym)"; return -1; }
    if (sym->sh_link >= eh->e_shnum) { *err = "bad symbol table link"; return -1; }
    const Elf64_Shdr *str = &sh[sym->sh_link];
    if (sym->sh_offset > size || sym->sh_size > size - sym->sh_offset ||
        str->sh_offset > size || str->sh_size > size - str->sh_offset || str->sh_size == 0) {
        *err = "symbol table truncated"; return -1;
    }
    size_t nsym = sym->sh_size / sizeof(Elf64_Sym);
    const Elf64_Sym *s = (const Elf64_Sym *)(d + sym->sh_offset);

    struct dsu__symtab *t = calloc(1, sizeof *t);
    char *strings = malloc(str->sh_size + 1);
    struct dsu__sym *syms = calloc(nsym ? nsym : 1, sizeof *syms);
    struct byname *names = calloc(nsym ? nsym : 1, sizeof *names);
    char *lab = strdup(label);
    if (!t || !strings || !syms || !names || !lab) {
        free(t); free(strings); free(syms); free(names); free(lab);
        *err = "out of memory"; return -1;
    }
    memcpy(strings, d + str->sh_offset, str->sh_size);
    strings[str->sh_size] = 0;
    size_t n = 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (size_t i = 0; i < nsym; i++) {
        if (ELF64_ST_TYPE(s[i].st_info) != STT_FUNC || s[i].st_shndx == SHN_UNDEF ||
            s[i].st_size == 0 || s[i].st_name >= str->sh_size) continue;
        syms[n].start = bias + s[i].st_value;
        syms[n].end = syms[n].start + s[i].st_size;
        syms[n].name = strings + s[i].st_name;
        if (syms[n].start < lo) lo = syms[n].start;
        if (syms[n].end > hi) hi = syms[n].end;
        n++;
    }
    qsort(syms, n, sizeof *syms, cmp_start);
    /* Resolve each clone to its base function's start address. */
    size_t nn = 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr(syms[i].name, '.')) names[nn++] = (struct byname){ syms[i].name, syms[i].start };
    qsort(names, nn, sizeof *names, cmp_name);
    for (size_t i = 0; i < n; i++) {
        syms[i].base = syms[i].start;
        size_t bl = base_len(syms[i].name);
        if (syms[i].name[bl] != '.' || bl == 0 || bl > 1023) continue;
        char key[1024];
        memcpy(key, syms[i].name, bl); key[bl] = 0;
        struct byname k = { key, 0 };
        struct byname *f = bsearch(&k, names, nn, sizeof *names, cmp_name);
        if (f) syms[i].base = f->start;
    }
    free(names);
    t->label = lab; t->syms = syms; t->n = n; t->strings = strings;
    t->lo = lo; t->hi = hi;
    t->next = __atomic_load_n(&tables, __ATOMIC_RELAXED);
    __atomic_store_n(&tables, t, __ATOMIC_RELEASE);
    return 0;
}

int dsu__symtab_add_file(const char *label, const char *path, uintptr_t bias,
                         const char **err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { *err = "cannot open the program's ELF file"; return -1; }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size <= 0) { close(fd); *err = "cannot stat the ELF file"; return -1; }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) { *err = "cannot map the ELF file"; return -1; }
    int r = dsu__symtab_add(label, m, (size_t)st.st_size, bias, err);
    munmap(m, (size_t)st.st_size);
    return r;
}

const struct dsu__sym *dsu__symtab_lookup(uintptr_t pc) {
    for (struct dsu__symtab *t = __atomic_load_n(&tables, __ATOMIC_ACQUIRE); t; t = t->next) {
        if (pc < t->lo || pc >= t->hi) continue;
        size_t lo = 0, hi = t->n;
        while (lo < hi) {                 /* last sym with start <= pc */
            size_t mid = lo + (hi - lo) / 2;
            if (t->syms[mid].start <= pc) lo = mid + 1; else hi = mid;
        }
        /* Symbols may nest or alias; scan back a little for a container. */
        for (size_t i = lo, k = 0; i > 0 && k < 8; i--, k++)
            if (pc >= t->syms[i - 1].start && pc < t->syms[i - 1].end) return &t->syms[i - 1];
    }
    return NULL;
}
