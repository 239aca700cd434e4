/* elf_check.c -- validates a patch's bytes as an ELF shared object before
 * anything of it is mapped or dlopen'ed.
 *
 * The dynamic loader trusts its input: a segment that lies past the end of
 * the file is mapped anyway and the first touch raises SIGBUS, a table
 * pointer off the mapping is dereferenced, a hash chain with a cycle spins
 * forever, a relocation writes wherever r_offset says.  This file checks,
 * over the bytes the runtime read (and hashed) once, everything the loader
 * will follow: the ELF header, every program header, the section headers
 * and their string tables, the dynamic section and every table it points
 * at (strings, symbols, both hash tables, relocations, version tables,
 * init/fini arrays).  It is pure (no I/O, no global state) so it can be
 * fuzzed on its own (fuzz/elf_fuzz.c).
 *
 * What it cannot tell is whether the code and data are meaningful: that is
 * what the sha256 in STAGE and the signed bundle are for. */
#include <elf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

#if defined(__x86_64__)
#define HOST_MACHINE  EM_X86_64
#define R_RELATIVE    R_X86_64_RELATIVE
#define R_IRELATIVE   R_X86_64_IRELATIVE
#define R_ABS64       R_X86_64_64
#define R_TLSDESC     R_X86_64_TLSDESC
#elif defined(__aarch64__)
#define HOST_MACHINE  EM_AARCH64
#define R_RELATIVE    R_AARCH64_RELATIVE
#define R_IRELATIVE   R_AARCH64_IRELATIVE
#define R_ABS64       R_AARCH64_ABS64
#define R_TLSDESC     R_AARCH64_TLSDESC
#else
#error "elf_check.c: add this machine's relocation types"
#endif

#define MAX_SPAN      (1ull << 32)  /* address space one patch may claim */
#define MAX_ARRAY     4096          /* init/fini array entries */

struct ck {
    const unsigned char *b; size_t n;
    const char *what;
    char *err; size_t errn;
    const Elf64_Phdr *ph; unsigned phnum;
    struct dsu__elf_info *info;
    const Elf64_Phdr *tls, *dyn;
    /* dynamic section values (0 = absent) */
    uint64_t strtab, strsz, symtab, syment, hash, gnu_hash, rela, relasz, relaent,
             jmprel, pltrelsz, pltrel, relr, relrsz, relrent, init, fini,
             init_array, init_arraysz, fini_array, fini_arraysz, versym, verneed,
             verdef, textrel;
    uint64_t nsyms;
    uint64_t relacount, pltgot;
    uint64_t has;                    /* bit t: tag t (< 64) present */
    const Elf64_Phdr *relro;
    uint64_t *funcs; size_t nfuncs;  /* STT_FUNC starts from .symtab, sorted */
    unsigned char *covered;        /* init/fini array slots a relocation sets */
    size_t ninit, nfini;
};

static int fail(struct ck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ck *c, const char *fmt, ...) {
    char d[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, sizeof d, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->errn, "patch file '%.300s' is not a loadable shared object: %s; "
             "rebuild it (cc -fPIC -shared) and stage the new file", c->what, d);
    return -1;
}

/* A range that runs past the end of the file: the usual symptom of a copy
 * cut short, which is worth saying in those words. */
static int truncated(struct ck *c, const char *thing, uint64_t end) {
    snprintf(c->err, c->errn, "patch file '%.300s' is truncated: %s ends at byte %llu but the "
             "file has %zu bytes; copy the complete file again", c->what, thing,
             (unsigned long long)end, c->n);
    return -1;
}

static int in_file(const struct ck *c, uint64_t off, uint64_t len) {
    return off <= c->n && len <= c->n - off;
}

static int is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

static uint32_t rd32(const struct ck *c, uint64_t off) {
    uint32_t v; memcpy(&v, c->b + off, 4); return v;
}

/* File offset of [vaddr, vaddr+len) when it lies inside one PT_LOAD's
 * file-backed part (what the loader reads through its mapping), else -1. */
static int64_t file_off(const struct ck *c, uint64_t vaddr, uint64_t len) {
    for (unsigned i = 0; i < c->phnum; i++) {
        const Elf64_Phdr *p = &c->ph[i];
        if (p->p_type != PT_LOAD || vaddr < p->p_vaddr) continue;
        uint64_t rel = vaddr - p->p_vaddr;
        if (rel <= p->p_filesz && len <= p->p_filesz - rel) return (int64_t)(p->p_offset + rel);
    }
    return -1;
}

/* Flags of the PT_LOAD whose memory [vaddr, vaddr+len) lies in, or -1. */
static int64_t load_flags(const struct ck *c, uint64_t vaddr, uint64_t len) {
    for (unsigned i = 0; i < c->phnum; i++) {
        const Elf64_Phdr *p = &c->ph[i];
        if (p->p_type != PT_LOAD || vaddr < p->p_vaddr) continue;
        uint64_t rel = vaddr - p->p_vaddr;
        if (rel <= p->p_memsz && len <= p->p_memsz - rel) return p->p_flags;
    }
    return -1;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Code the loader will call: inside an executable PT_LOAD and, when the
 * file has function symbols, the start of one (a corrupted pointer into
 * the middle of a function would run whatever bytes are there). */
static int is_code(const struct ck *c, uint64_t vaddr) {
    int64_t f = load_flags(c, vaddr, 1);
    if (f < 0 || !(f & PF_X)) return 0;
    return !c->nfuncs || bsearch(&vaddr, c->funcs, c->nfuncs, sizeof *c->funcs, cmp_u64) != NULL;
}

/* ---- ELF header and program headers ---- */

static int check_ehdr(struct ck *c) {
    const Elf64_Ehdr *e = (const Elf64_Ehdr *)c->b;
    if (c->n < 4 || memcmp(c->b, ELFMAG, SELFMAG) != 0) return fail(c, "no ELF magic at byte 0");
    if (c->n < sizeof *e) return truncated(c, "the ELF header", sizeof *e);
    if (e->e_ident[EI_CLASS] != ELFCLASS64) return fail(c, "ELF class %u, want 64-bit (2)", e->e_ident[EI_CLASS]);
    if (e->e_ident[EI_DATA] != ELFDATA2LSB) return fail(c, "ELF data encoding %u, want little-endian (1)", e->e_ident[EI_DATA]);
    if (e->e_ident[EI_VERSION] != EV_CURRENT || e->e_version != EV_CURRENT)
        return fail(c, "ELF version %u/%u, want 1", e->e_ident[EI_VERSION], e->e_version);
    if (e->e_type != ET_DYN) return fail(c, "ELF type %u, want a shared object (ET_DYN, 3)", e->e_type);
    if (e->e_machine != HOST_MACHINE) return fail(c, "built for machine %u, this process runs on machine %u", e->e_machine, HOST_MACHINE);
    if (e->e_ehsize != sizeof *e) return fail(c, "ELF header size %u, want %zu", e->e_ehsize, sizeof *e);
    if (e->e_phentsize != sizeof(Elf64_Phdr)) return fail(c, "program header size %u, want %zu", e->e_phentsize, sizeof(Elf64_Phdr));
    if (e->e_phnum == 0 || e->e_phnum >= PN_XNUM) return fail(c, "%u program headers", e->e_phnum);
    if (e->e_phoff % 8) return fail(c, "program header table at unaligned offset %llu", (unsigned long long)e->e_phoff);
    uint64_t len = (uint64_t)e->e_phnum * sizeof(Elf64_Phdr);
    if (!in_file(c, e->e_phoff, len)) {
        if (e->e_phoff > c->n) return truncated(c, "the program header table", e->e_phoff);
        return truncated(c, "the program header table", e->e_phoff + len);
    }
    c->ph = (const Elf64_Phdr *)(c->b + e->e_phoff);
    c->phnum = e->e_phnum;
    return 0;
}

static const char *ptype_name(uint32_t t) {
    switch (t) {
    case PT_LOAD: return "PT_LOAD"; case PT_DYNAMIC: return "PT_DYNAMIC";
    case PT_INTERP: return "PT_INTERP"; case PT_NOTE: return "PT_NOTE";
    case PT_TLS: return "PT_TLS"; case PT_PHDR: return "PT_PHDR";
    case PT_GNU_EH_FRAME: return "PT_GNU_EH_FRAME"; case PT_GNU_STACK: return "PT_GNU_STACK";
    case PT_GNU_RELRO: return "PT_GNU_RELRO"; case PT_GNU_PROPERTY: return "PT_GNU_PROPERTY";
    default: return "segment";
    }
}

/* One load: sane alignment, file part inside the file, no overflow, and in
 * ascending, non-overlapping order after the previous one. */
static int check_load(struct ck *c, unsigned i, const Elf64_Phdr *p, const Elf64_Phdr *prev) {
    char what[64];
    snprintf(what, sizeof what, "PT_LOAD #%u", i);
    /* The loader reads headers, notes and tables through the mapping. */
    if (!(p->p_flags & PF_R)) return fail(c, "%s is not readable (flags 0x%x)", what, p->p_flags);
    if (p->p_filesz > p->p_memsz) return fail(c, "%s has p_filesz %llu > p_memsz %llu", what, (unsigned long long)p->p_filesz, (unsigned long long)p->p_memsz);
    if (p->p_align > 1 && (!is_pow2(p->p_align) || p->p_align < 4096 || p->p_align > (1u << 30)))
        return fail(c, "%s has alignment %llu (want a power of two between 4096 and 1 GiB)", what, (unsigned long long)p->p_align);
    if ((p->p_vaddr - p->p_offset) % 4096)
        return fail(c, "%s: address 0x%llx and file offset 0x%llx differ modulo the page size", what, (unsigned long long)p->p_vaddr, (unsigned long long)p->p_offset);
    if (p->p_memsz > MAX_SPAN || p->p_vaddr > MAX_SPAN || p->p_vaddr + p->p_memsz > MAX_SPAN)
        return fail(c, "%s claims addresses 0x%llx+0x%llx (more than 4 GiB)", what, (unsigned long long)p->p_vaddr, (unsigned long long)p->p_memsz);
    if (p->p_offset > c->n || p->p_filesz > c->n - p->p_offset)
        return truncated(c, what, p->p_offset + p->p_filesz);  /* sums of values < 2^64/2: no wrap that matters for a message */
    if (prev && p->p_offset < prev->p_offset + prev->p_filesz)
        return fail(c, "%s maps file bytes from %llu, which the previous PT_LOAD (up to %llu) maps already",
                    what, (unsigned long long)p->p_offset, (unsigned long long)(prev->p_offset + prev->p_filesz));
    if (prev && p->p_vaddr < prev->p_vaddr + prev->p_memsz)
        return fail(c, "%s at 0x%llx overlaps or precedes the previous PT_LOAD (ending at 0x%llx); loads must be sorted and disjoint",
                    what, (unsigned long long)p->p_vaddr, (unsigned long long)(prev->p_vaddr + prev->p_memsz));
    if (c->info) {
        if (c->info->nloads >= DSU__ELF_MAX_LOADS) return fail(c, "more than %d PT_LOAD segments", DSU__ELF_MAX_LOADS);
        c->info->load[c->info->nloads].vaddr = p->p_vaddr;
        c->info->load[c->info->nloads].memsz = p->p_memsz;
        c->info->load[c->info->nloads].flags = p->p_flags;
        c->info->nloads++;
    }
    return 0;
}

static int check_phdrs(struct ck *c) {
    const Elf64_Phdr *prev = NULL, *dyn = NULL;
    unsigned nloads = 0;
    for (unsigned i = 0; i < c->phnum; i++) {
        const Elf64_Phdr *p = &c->ph[i];
        char what[64];
        snprintf(what, sizeof what, "%s #%u", ptype_name(p->p_type), i);
        if (p->p_type == PT_LOAD) {
            if (check_load(c, i, p, prev) < 0) return -1;
            prev = p; nloads++;
            continue;
        }
        if (p->p_type == PT_NULL) continue;
        /* Every other segment: its file bytes inside the file, no wrap. */
        if (p->p_filesz && (p->p_offset > c->n || p->p_filesz > c->n - p->p_offset))
            return truncated(c, what, p->p_offset + p->p_filesz);
        if (p->p_vaddr > MAX_SPAN || p->p_memsz > MAX_SPAN)
            return fail(c, "%s claims addresses 0x%llx+0x%llx", what, (unsigned long long)p->p_vaddr, (unsigned long long)p->p_memsz);
        if (p->p_align > 1 && !is_pow2(p->p_align)) return fail(c, "%s has alignment %llu (not a power of two)", what, (unsigned long long)p->p_align);
        if (p->p_type == PT_DYNAMIC) {
            if (dyn) return fail(c, "two PT_DYNAMIC segments");
            dyn = p;
        } else if (p->p_type == PT_TLS) {
            if (c->tls) return fail(c, "two PT_TLS segments");
            if (p->p_filesz > p->p_memsz) return fail(c, "%s has p_filesz > p_memsz", what);
            c->tls = p;
        } else if (p->p_type == PT_GNU_STACK && (p->p_flags & PF_X)) {
            return fail(c, "%s asks for an executable stack", what);
        } else if (p->p_type == PT_GNU_RELRO) {
            if (c->relro) return fail(c, "two PT_GNU_RELRO segments");
            c->relro = p;
        } else if (p->p_type == PT_INTERP && (p->p_filesz == 0 || c->b[p->p_offset + p->p_filesz - 1] != 0)) {
            return fail(c, "%s is not a NUL-terminated path", what);
        }
    }
    if (!nloads) return fail(c, "no PT_LOAD segment");
    if (!dyn) return fail(c, "no PT_DYNAMIC segment (not a shared object)");
    c->dyn = dyn;
    /* The loader adjusts the dynamic section in place (l_addr). */
    int64_t df = load_flags(c, dyn->p_vaddr, dyn->p_memsz);
    if (df < 0 || !(df & PF_W)) return fail(c, "PT_DYNAMIC is not inside a writable PT_LOAD");
    /* RELRO: the loader makes [down(start), down(end)) read-only after
     * relocating; those pages must hold file bytes of one writable load
     * (a larger range would make .data/.bss read-only under the patch). */
    if (c->relro) {
        const Elf64_Phdr *r = c->relro;
        uint64_t lo = r->p_vaddr & ~4095ull, hi = (r->p_vaddr + r->p_memsz) & ~4095ull;
        int ok = 0;
        for (unsigned i = 0; i < c->phnum; i++) {
            const Elf64_Phdr *p = &c->ph[i];
            if (p->p_type == PT_LOAD && (p->p_flags & PF_W) && r->p_vaddr >= p->p_vaddr &&
                r->p_vaddr + r->p_memsz <= p->p_vaddr + p->p_memsz && hi <= p->p_vaddr + p->p_filesz) ok = 1;
        }
        if (!ok && hi > lo) return fail(c, "PT_GNU_RELRO 0x%llx+0x%llx is not inside the file part of one writable PT_LOAD",
                                        (unsigned long long)r->p_vaddr, (unsigned long long)r->p_memsz);
    }
    /* Segments the loader reads through its mapping must be mapped from the
     * file: the dynamic section, notes, RELRO (mprotect'ed), TLS image. */
    for (unsigned i = 0; i < c->phnum; i++) {
        const Elf64_Phdr *p = &c->ph[i];
        if (p->p_type == PT_DYNAMIC || p->p_type == PT_GNU_EH_FRAME || p->p_type == PT_NOTE ||
            p->p_type == PT_GNU_PROPERTY) {
            if (file_off(c, p->p_vaddr, p->p_filesz) < 0)
                return fail(c, "%s #%u (0x%llx+0x%llx) is not inside the file part of a PT_LOAD", ptype_name(p->p_type), i,
                            (unsigned long long)p->p_vaddr, (unsigned long long)p->p_filesz);
        } else if (p->p_type == PT_GNU_RELRO || (p->p_type == PT_TLS && p->p_filesz)) {
            uint64_t len = p->p_type == PT_TLS ? p->p_filesz : p->p_memsz;
            if (load_flags(c, p->p_vaddr, len) < 0)
                return fail(c, "%s #%u (0x%llx+0x%llx) is not inside a PT_LOAD", ptype_name(p->p_type), i,
                            (unsigned long long)p->p_vaddr, (unsigned long long)len);
        }
    }
    return 0;
}

/* ---- section headers (not used by the loader, but by our symbol table
 * reader and by anyone who inspects the file) ---- */

static int check_shdrs(struct ck *c) {
    const Elf64_Ehdr *e = (const Elf64_Ehdr *)c->b;
    if (e->e_shoff == 0) {
        if (e->e_shnum) return fail(c, "%u section headers at offset 0", e->e_shnum);
        return 0;
    }
    if (e->e_shentsize != sizeof(Elf64_Shdr)) return fail(c, "section header size %u, want %zu", e->e_shentsize, sizeof(Elf64_Shdr));
    if (e->e_shnum == 0) return fail(c, "extended section numbering (e_shnum 0) is not supported");
    if (e->e_shoff % 8) return fail(c, "section header table at unaligned offset %llu", (unsigned long long)e->e_shoff);
    uint64_t len = (uint64_t)e->e_shnum * sizeof(Elf64_Shdr);
    if (!in_file(c, e->e_shoff, len)) return truncated(c, "the section header table", e->e_shoff + len);
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(c->b + e->e_shoff);
    unsigned shnum = e->e_shnum;
    const Elf64_Shdr *names = NULL;
    if (e->e_shstrndx != SHN_UNDEF) {
        if (e->e_shstrndx >= shnum) return fail(c, "section name table index %u >= %u sections", e->e_shstrndx, shnum);
        names = &sh[e->e_shstrndx];
        if (names->sh_type != SHT_STRTAB) return fail(c, "section name table #%u is not a string table", e->e_shstrndx);
    }
    for (unsigned i = 0; i < shnum; i++) {
        const Elf64_Shdr *s = &sh[i];
        char what[64];
        snprintf(what, sizeof what, "section #%u", i);
        if (s->sh_type != SHT_NOBITS && s->sh_type != SHT_NULL && !in_file(c, s->sh_offset, s->sh_size))
            return truncated(c, what, s->sh_offset + s->sh_size);
        if (s->sh_link >= shnum) return fail(c, "%s links to section %u of %u", what, s->sh_link, shnum);
        if (names && s->sh_name >= names->sh_size) return fail(c, "%s has its name at %u, past the name table", what, s->sh_name);
        /* Sections and segments must agree on where loaded bytes come from
         * (a corrupted p_offset would map other bytes as code). */
        if ((s->sh_flags & SHF_ALLOC) && s->sh_type != SHT_NOBITS && s->sh_size &&
            file_off(c, s->sh_addr, s->sh_size) != (int64_t)s->sh_offset)
            return fail(c, "%s (0x%llx+%llu at byte %llu) is not where the program headers map it", what,
                        (unsigned long long)s->sh_addr, (unsigned long long)s->sh_size, (unsigned long long)s->sh_offset);
        if (s->sh_type == SHT_STRTAB && s->sh_size && c->b[s->sh_offset + s->sh_size - 1] != 0)
            return fail(c, "string table %s is not NUL-terminated", what);
        if (s->sh_type == SHT_SYMTAB || s->sh_type == SHT_DYNSYM) {
            const Elf64_Shdr *str = &sh[s->sh_link];
            if (s->sh_entsize != sizeof(Elf64_Sym) || s->sh_size % sizeof(Elf64_Sym))
                return fail(c, "symbol table %s has entry size %llu and size %llu", what, (unsigned long long)s->sh_entsize, (unsigned long long)s->sh_size);
            if (str->sh_type != SHT_STRTAB) return fail(c, "symbol table %s links to section %u, not a string table", what, s->sh_link);
            size_t nsym = (size_t)(s->sh_size / sizeof(Elf64_Sym));
            uint64_t *f = realloc(c->funcs, (c->nfuncs + nsym + 1) * sizeof *f);
            if (!f) return fail(c, "out of memory");
            c->funcs = f;
            for (size_t k = 0; k < nsym; k++) {
                Elf64_Sym sym;
                memcpy(&sym, c->b + s->sh_offset + k * sizeof sym, sizeof sym);
                if (sym.st_name >= str->sh_size && sym.st_name)
                    return fail(c, "symbol %zu of %s has its name past its string table", k, what);
                /* .symtab only: .dynsym lacks local functions (_init, frame_dummy) */
                if (s->sh_type == SHT_SYMTAB && ELF64_ST_TYPE(sym.st_info) == STT_FUNC && sym.st_shndx != SHN_UNDEF)
                    c->funcs[c->nfuncs++] = sym.st_value;
            }
        }
    }
    return 0;
}

/* ---- the dynamic section ---- */

static int read_dynamic(struct ck *c) {
    const Elf64_Phdr *dyn = c->dyn;
    /* The loader walks from p_vaddr until DT_NULL, whatever p_filesz says. */
    int64_t off = file_off(c, dyn->p_vaddr, 0);
    if (off < 0 || dyn->p_vaddr % 8) return fail(c, "PT_DYNAMIC at 0x%llx is not inside a PT_LOAD's file part", (unsigned long long)dyn->p_vaddr);
    for (uint64_t k = 0;; k++) {
        Elf64_Dyn d;
        if (file_off(c, dyn->p_vaddr + k * sizeof d, sizeof d) < 0)
            return fail(c, "the dynamic section has no DT_NULL inside its PT_LOAD");
        memcpy(&d, c->b + off + k * sizeof d, sizeof d);
        uint64_t v = d.d_un.d_val;
        if (d.d_tag >= 0 && d.d_tag < 64) c->has |= 1ull << d.d_tag;
        /* Present means used: an address of 0 would make the loader read
         * (or call) the ELF header itself.  Below, 0 stands for absent. */
        switch (d.d_tag) {
        case DT_PLTGOT: case DT_HASH: case DT_STRTAB: case DT_SYMTAB: case DT_RELA: case DT_INIT:
        case DT_FINI: case DT_JMPREL: case DT_INIT_ARRAY: case DT_FINI_ARRAY: case DT_GNU_HASH:
        case DT_VERSYM: case DT_VERNEED: case DT_VERDEF: case DT_RELR:
            if (v == 0) return fail(c, "dynamic entry %llu (tag 0x%llx) has address 0", (unsigned long long)k, (unsigned long long)d.d_tag);
            break;
        default: break;
        }
        switch (d.d_tag) {
        case DT_NULL: return 0;
        case DT_STRTAB: c->strtab = v; break;       case DT_STRSZ: c->strsz = v; break;
        case DT_SYMTAB: c->symtab = v; break;       case DT_SYMENT: c->syment = v; break;
        case DT_HASH: c->hash = v; break;           case DT_GNU_HASH: c->gnu_hash = v; break;
        case DT_RELA: c->rela = v; break;           case DT_RELASZ: c->relasz = v; break;
        case DT_RELAENT: c->relaent = v; break;     case DT_JMPREL: c->jmprel = v; break;
        case DT_PLTRELSZ: c->pltrelsz = v; break;   case DT_PLTREL: c->pltrel = v; break;
        case DT_RELR: c->relr = v; break;           case DT_RELRSZ: c->relrsz = v; break;
        case DT_RELRENT: c->relrent = v; break;     case DT_INIT: c->init = v; break;
        case DT_FINI: c->fini = v; break;           case DT_INIT_ARRAY: c->init_array = v; break;
        case DT_INIT_ARRAYSZ: c->init_arraysz = v; break;
        case DT_FINI_ARRAY: c->fini_array = v; break;
        case DT_FINI_ARRAYSZ: c->fini_arraysz = v; break;
        case DT_VERSYM: c->versym = v; break;       case DT_VERNEED: c->verneed = v; break;
        case DT_VERDEF: c->verdef = v; break;       case DT_TEXTREL: c->textrel = 1; break;
        case DT_RELACOUNT: c->relacount = v; break; case DT_PLTGOT: c->pltgot = v; break;
        case DT_FLAGS: if (v & DF_TEXTREL) c->textrel = 1; break;
        case DT_REL: case DT_RELSZ: case DT_RELENT:
            return fail(c, "DT_REL relocations (this machine uses DT_RELA)");
        case DT_PREINIT_ARRAY: case DT_PREINIT_ARRAYSZ:
            return fail(c, "DT_PREINIT_ARRAY in a shared object");
        default: break;
        }
    }
}

/* Every string-valued entry (DT_NEEDED, DT_SONAME, ...) must start inside
 * the string table, which ends with a NUL. */
static int check_strings(struct ck *c) {
    if (!c->strtab || !c->strsz) return fail(c, "the dynamic section has no DT_STRTAB/DT_STRSZ");
    int64_t off = file_off(c, c->strtab, c->strsz);
    if (off < 0) return fail(c, "DT_STRTAB 0x%llx+%llu is not inside a PT_LOAD's file part", (unsigned long long)c->strtab, (unsigned long long)c->strsz);
    if (c->b[off + (int64_t)c->strsz - 1] != 0) return fail(c, "the dynamic string table is not NUL-terminated");
    const Elf64_Phdr *dyn = c->dyn;
    int64_t doff = file_off(c, dyn->p_vaddr, 0);
    for (uint64_t k = 0;; k++) {
        Elf64_Dyn d;
        memcpy(&d, c->b + doff + k * sizeof d, sizeof d);   /* read_dynamic found DT_NULL */
        if (d.d_tag == DT_NULL) return 0;
        const char *name = d.d_tag == DT_NEEDED ? "DT_NEEDED" : d.d_tag == DT_SONAME ? "DT_SONAME" :
                           d.d_tag == DT_RPATH ? "DT_RPATH" : d.d_tag == DT_RUNPATH ? "DT_RUNPATH" :
                           d.d_tag == DT_AUXILIARY ? "DT_AUXILIARY" : d.d_tag == DT_FILTER ? "DT_FILTER" : NULL;
        if (name && d.d_un.d_val >= c->strsz)
            return fail(c, "%s string at %llu is past the string table (%llu bytes)", name, (unsigned long long)d.d_un.d_val, (unsigned long long)c->strsz);
    }
}

/* DT_HASH: every chain stays inside the table and visits a symbol once
 * (the loader follows chains without a bound). */
static int check_sysv_hash(struct ck *c) {
    int64_t off = file_off(c, c->hash, 8);
    if (off < 0 || c->hash % 4) return fail(c, "DT_HASH 0x%llx is not inside a PT_LOAD's file part", (unsigned long long)c->hash);
    uint32_t nbucket = rd32(c, (uint64_t)off), nchain = rd32(c, (uint64_t)off + 4);
    if (nbucket == 0) return fail(c, "DT_HASH has no buckets");
    if (file_off(c, c->hash, 8 + 4 * ((uint64_t)nbucket + nchain)) < 0)
        return fail(c, "DT_HASH with %u buckets and %u chains runs past its PT_LOAD", nbucket, nchain);
    unsigned char *seen = calloc((size_t)nchain / 8 + 1, 1);
    if (!seen) return fail(c, "out of memory checking DT_HASH");
    uint64_t bk = (uint64_t)off + 8, ch = bk + 4ull * nbucket;
    for (uint32_t i = 0; i < nbucket; i++) {
        for (uint32_t s = rd32(c, bk + 4ull * i); s != STN_UNDEF; s = rd32(c, ch + 4ull * s)) {
            if (s >= nchain || (seen[s / 8] & (1u << (s % 8)))) {
                free(seen);
                return fail(c, "DT_HASH bucket %u leads to symbol %u (%s)", i, s, s >= nchain ? "out of range" : "a loop");
            }
            seen[s / 8] |= (unsigned char)(1u << (s % 8));
        }
    }
    free(seen);
    if (nchain > c->nsyms) c->nsyms = nchain;
    return 0;
}

/* DT_GNU_HASH: header, bloom filter, buckets, and every chain up to its
 * end marker inside the file; gives the number of dynamic symbols. */
static int check_gnu_hash(struct ck *c) {
    int64_t off = file_off(c, c->gnu_hash, 16);
    if (off < 0 || c->gnu_hash % 8) return fail(c, "DT_GNU_HASH 0x%llx is not inside a PT_LOAD's file part", (unsigned long long)c->gnu_hash);
    uint32_t nb = rd32(c, (uint64_t)off), symoff = rd32(c, (uint64_t)off + 4),
             bloom = rd32(c, (uint64_t)off + 8), shift = rd32(c, (uint64_t)off + 12);
    if (nb == 0 || !is_pow2(bloom) || shift >= 64)
        return fail(c, "DT_GNU_HASH header is invalid (%u buckets, bloom size %u, shift %u)", nb, bloom, shift);
    uint64_t buckets = c->gnu_hash + 16 + 8ull * bloom, chains = buckets + 4ull * nb;
    int64_t boff = file_off(c, buckets, 4ull * nb);
    if (boff < 0) return fail(c, "DT_GNU_HASH with %u buckets runs past its PT_LOAD", nb);
    uint64_t nsyms = symoff;
    /* Chains only move forward, so every walk ends; a chain entry already
     * walked from another bucket was checked to its end then (keeps this
     * linear on crafted tables whose buckets share one long chain). */
    size_t nseen = c->n / 4 + 1;
    unsigned char *seen = calloc(nseen / 8 + 1, 1);
    if (!seen) return fail(c, "out of memory checking DT_GNU_HASH");
    int r = 0;
    for (uint32_t i = 0; i < nb && r == 0; i++) {
        uint32_t s = rd32(c, (uint64_t)boff + 4ull * i);
        if (s == 0) continue;
        if (s < symoff) { r = fail(c, "DT_GNU_HASH bucket %u starts at symbol %u, below the first hashed symbol %u", i, s, symoff); break; }
        for (;; s++) {
            uint64_t k = (uint64_t)s - symoff;
            int64_t co = file_off(c, chains + 4 * k, 4);
            if (co < 0 || k >= nseen) { r = fail(c, "DT_GNU_HASH chain of bucket %u runs past its PT_LOAD", i); break; }
            if (seen[k / 8] & (1u << (k % 8))) break;
            seen[k / 8] |= (unsigned char)(1u << (k % 8));
            if (s + 1ull > nsyms) nsyms = s + 1ull;
            if (rd32(c, (uint64_t)co) & 1) break;
            if (s == UINT32_MAX) { r = fail(c, "DT_GNU_HASH chain of bucket %u never ends", i); break; }
        }
    }
    free(seen);
    if (nsyms > c->nsyms) c->nsyms = nsyms;
    return r;
}

/* The dynamic symbols: names in the string table, defined symbols inside a
 * PT_LOAD (or the TLS segment). */
static int check_dynsyms(struct ck *c) {
    if (!c->symtab) return fail(c, "the dynamic section has no DT_SYMTAB");
    if (c->syment && c->syment != sizeof(Elf64_Sym)) return fail(c, "DT_SYMENT %llu, want %zu", (unsigned long long)c->syment, sizeof(Elf64_Sym));
    if (!c->hash && !c->gnu_hash) return fail(c, "neither DT_HASH nor DT_GNU_HASH (the loader cannot look symbols up)");
    if (c->hash && check_sysv_hash(c) < 0) return -1;
    if (c->gnu_hash && check_gnu_hash(c) < 0) return -1;
    int64_t off = file_off(c, c->symtab, c->nsyms * sizeof(Elf64_Sym));
    if (off < 0 || c->symtab % 8 || c->nsyms > c->n / sizeof(Elf64_Sym))
        return fail(c, "DT_SYMTAB 0x%llx with %llu symbols is not inside a PT_LOAD's file part", (unsigned long long)c->symtab, (unsigned long long)c->nsyms);
    for (uint64_t k = 0; k < c->nsyms; k++) {
        Elf64_Sym s;
        memcpy(&s, c->b + off + k * sizeof s, sizeof s);
        if (s.st_name >= c->strsz) return fail(c, "dynamic symbol %llu has its name past the string table", (unsigned long long)k);
        /* A local or hidden/protected reference binds inside the object:
         * undefined, the loader resolves it to the load address itself. */
        if (s.st_shndx == SHN_UNDEF && k && (ELF64_ST_VISIBILITY(s.st_other) != STV_DEFAULT ||
                                             ELF64_ST_BIND(s.st_info) == STB_LOCAL))
            return fail(c, "undefined dynamic symbol %llu is local or not of default visibility", (unsigned long long)k);
        if (s.st_shndx == SHN_UNDEF || s.st_shndx == SHN_ABS) continue;
        if (ELF64_ST_TYPE(s.st_info) == STT_TLS) {
            if (!c->tls || s.st_value > c->tls->p_memsz || s.st_size > c->tls->p_memsz - s.st_value)
                return fail(c, "TLS symbol '%.80s' lies outside PT_TLS", (const char *)c->b + file_off(c, c->strtab, 0) + s.st_name);
        } else if (load_flags(c, s.st_value, s.st_size) < 0) {
            return fail(c, "symbol '%.80s' (0x%llx, %llu bytes) lies outside every PT_LOAD",
                        (const char *)c->b + file_off(c, c->strtab, 0) + s.st_name,
                        (unsigned long long)s.st_value, (unsigned long long)s.st_size);
        }
    }
    return 0;
}

/* Marks the init/fini array slot at `where` as set by a relocation whose
 * value `target` must be code. */
static int cover_slot(struct ck *c, uint64_t where, uint64_t target, const char *how) {
    size_t slot;
    if (c->ninit && where >= c->init_array && where < c->init_array + 8 * c->ninit)
        slot = (size_t)(where - c->init_array) / 8;
    else if (c->nfini && where >= c->fini_array && where < c->fini_array + 8 * c->nfini)
        slot = c->ninit + (size_t)(where - c->fini_array) / 8;
    else return 0;
    if (!is_code(c, target))
        return fail(c, "an init/fini array entry is set by %s to 0x%llx, which is not code", how, (unsigned long long)target);
    c->covered[slot] = 1;
    return 0;
}

/* One RELA table: entries inside the file, targets inside a writable
 * PT_LOAD (any PT_LOAD with DT_TEXTREL), symbol indexes in range. */
static int check_rela(struct ck *c, const char *name, uint64_t addr, uint64_t size) {
    if (!size) return 0;
    if (!addr) return fail(c, "%s size %llu without the table", name, (unsigned long long)size);
    if (size % sizeof(Elf64_Rela)) return fail(c, "%s size %llu is not a multiple of %zu", name, (unsigned long long)size, sizeof(Elf64_Rela));
    int64_t off = file_off(c, addr, size);
    if (off < 0 || addr % 8) return fail(c, "%s 0x%llx+%llu is not inside a PT_LOAD's file part", name, (unsigned long long)addr, (unsigned long long)size);
    for (uint64_t k = 0; k < size / sizeof(Elf64_Rela); k++) {
        Elf64_Rela r;
        memcpy(&r, c->b + off + k * sizeof r, sizeof r);
        uint32_t type = ELF64_R_TYPE(r.r_info), sym = ELF64_R_SYM(r.r_info);
        if (type == 0) continue;
        if (sym >= c->nsyms) return fail(c, "%s entry %llu names symbol %u of %llu", name, (unsigned long long)k, sym, (unsigned long long)c->nsyms);
        int64_t f = load_flags(c, r.r_offset, type == R_TLSDESC ? 16 : 8);
        if (f < 0 || (!(f & PF_W) && !c->textrel))
            return fail(c, "%s entry %llu writes to 0x%llx, outside every writable PT_LOAD", name, (unsigned long long)k, (unsigned long long)r.r_offset);
        if (type == R_RELATIVE || type == R_IRELATIVE) {
            if (load_flags(c, (uint64_t)r.r_addend, 0) < 0)
                return fail(c, "%s entry %llu points at 0x%llx, outside every PT_LOAD", name, (unsigned long long)k, (unsigned long long)r.r_addend);
            if (type == R_IRELATIVE && !is_code(c, (uint64_t)r.r_addend))
                return fail(c, "%s entry %llu calls a resolver at 0x%llx, which is not code", name, (unsigned long long)k, (unsigned long long)r.r_addend);
            if (cover_slot(c, r.r_offset, (uint64_t)r.r_addend, "a relative relocation") < 0) return -1;
        } else if (type == R_ABS64 && sym) {
            Elf64_Sym s;
            memcpy(&s, c->b + file_off(c, c->symtab, 0) + (uint64_t)sym * sizeof s, sizeof s);
            if (s.st_shndx != SHN_UNDEF && s.st_shndx != SHN_ABS &&
                cover_slot(c, r.r_offset, s.st_value + (uint64_t)r.r_addend, "a symbol relocation") < 0) return -1;
        }
    }
    return 0;
}

/* DT_RELR: packed relative relocations (an address, then bitmaps of the
 * words that follow it).  Every word it relocates must be writable. */
static int check_relr(struct ck *c) {
    if (!c->relrsz) return 0;
    if (c->relrent && c->relrent != 8) return fail(c, "DT_RELRENT %llu, want 8", (unsigned long long)c->relrent);
    int64_t off = file_off(c, c->relr, c->relrsz);
    if (off < 0 || c->relrsz % 8 || c->relr % 8) return fail(c, "DT_RELR 0x%llx+%llu is not inside a PT_LOAD's file part", (unsigned long long)c->relr, (unsigned long long)c->relrsz);
    uint64_t where = 0;
    int have = 0;
    for (uint64_t k = 0; k < c->relrsz / 8; k++) {
        uint64_t e;
        memcpy(&e, c->b + off + 8 * k, 8);
        uint64_t todo[64]; int nt = 0;
        if (!(e & 1)) { todo[nt++] = e; where = e + 8; have = 1; }
        else {
            if (!have) return fail(c, "DT_RELR starts with a bitmap");
            for (int bit = 1; bit < 64; bit++) if (e & (1ull << bit)) todo[nt++] = where + 8ull * (uint64_t)(bit - 1);
            where += 63 * 8;
        }
        for (int t = 0; t < nt; t++) {
            int64_t f = load_flags(c, todo[t], 8);
            if (f < 0 || (!(f & PF_W) && !c->textrel)) return fail(c, "DT_RELR relocates 0x%llx, outside every writable PT_LOAD", (unsigned long long)todo[t]);
            int64_t fo = file_off(c, todo[t], 8);
            uint64_t v = 0;
            if (fo >= 0) memcpy(&v, c->b + fo, 8);
            if (cover_slot(c, todo[t], v, "a DT_RELR relocation") < 0) return -1;
        }
    }
    return 0;
}

/* Init/fini functions: DT_INIT/DT_FINI are code, every array entry is set
 * by a relocation to code (the loader calls each entry as it is). */
static int check_init(struct ck *c) {
    if (c->init && !is_code(c, c->init)) return fail(c, "DT_INIT 0x%llx is not code", (unsigned long long)c->init);
    if (c->fini && !is_code(c, c->fini)) return fail(c, "DT_FINI 0x%llx is not code", (unsigned long long)c->fini);
    if (c->init_arraysz % 8 || c->fini_arraysz % 8 || c->init_arraysz / 8 > MAX_ARRAY || c->fini_arraysz / 8 > MAX_ARRAY)
        return fail(c, "init/fini array sizes %llu/%llu", (unsigned long long)c->init_arraysz, (unsigned long long)c->fini_arraysz);
    c->ninit = c->init_array ? (size_t)c->init_arraysz / 8 : 0;
    c->nfini = c->fini_array ? (size_t)c->fini_arraysz / 8 : 0;
    if ((c->init_arraysz && !c->init_array) || (c->fini_arraysz && !c->fini_array))
        return fail(c, "an init/fini array size without the array");
    int64_t fi = load_flags(c, c->init_array, c->init_arraysz), ff = load_flags(c, c->fini_array, c->fini_arraysz);
    if ((c->ninit && (fi < 0 || !(fi & PF_W))) || (c->nfini && (ff < 0 || !(ff & PF_W))))
        return fail(c, "DT_INIT_ARRAY/DT_FINI_ARRAY is not inside a writable PT_LOAD");
    return 0;
}

/* Version tables: need/def chains inside the file with names in the string
 * table, and every DT_VERSYM index one of the versions they define (the
 * loader indexes its version array with it unchecked). */
/* True when string `off` of the dynamic string table equals a DT_NEEDED
 * entry's (the loader asserts that every DT_VERNEED file is one). */
static int is_needed(const struct ck *c, uint64_t off) {
    const char *str = (const char *)c->b + file_off(c, c->strtab, 0);
    int64_t doff = file_off(c, c->dyn->p_vaddr, 0);
    for (uint64_t k = 0;; k++) {
        Elf64_Dyn d;
        memcpy(&d, c->b + doff + k * sizeof d, sizeof d);   /* read_dynamic found DT_NULL */
        if (d.d_tag == DT_NULL) return 0;
        if (d.d_tag == DT_NEEDED && strcmp(str + d.d_un.d_val, str + off) == 0) return 1;
    }
}

static int check_versions(struct ck *c) {
    uint64_t high = 0;
    /* The loader follows vn_next/vna_next/vd_next until 0 (ignoring the
     * counts); offsets only move forward, so these walks end. */
    for (uint64_t a = c->verneed; a;) {
        int64_t o = file_off(c, a, sizeof(Elf64_Verneed));
        if (o < 0 || a % 4) return fail(c, "DT_VERNEED entry at 0x%llx is not inside a PT_LOAD's file part", (unsigned long long)a);
        Elf64_Verneed v; memcpy(&v, c->b + o, sizeof v);
        if (v.vn_version != 1 || v.vn_file >= c->strsz) return fail(c, "DT_VERNEED entry at 0x%llx is invalid", (unsigned long long)a);
        if (!is_needed(c, v.vn_file)) return fail(c, "DT_VERNEED names a library that is not in DT_NEEDED");
        for (uint64_t x = a + v.vn_aux;;) {
            int64_t xo = file_off(c, x, sizeof(Elf64_Vernaux));
            if (xo < 0 || x % 4) return fail(c, "DT_VERNEED auxiliary entry at 0x%llx is not inside a PT_LOAD's file part", (unsigned long long)x);
            Elf64_Vernaux va; memcpy(&va, c->b + xo, sizeof va);
            if (va.vna_name >= c->strsz) return fail(c, "a DT_VERNEED version name is past the string table");
            if ((va.vna_other & 0x7fff) > high) high = va.vna_other & 0x7fff;
            if (!va.vna_next) break;
            x += va.vna_next;
        }
        if (!v.vn_next) break;
        a += v.vn_next;
    }
    for (uint64_t a = c->verdef; a;) {
        int64_t o = file_off(c, a, sizeof(Elf64_Verdef));
        if (o < 0 || a % 4) return fail(c, "DT_VERDEF entry at 0x%llx is not inside a PT_LOAD's file part", (unsigned long long)a);
        Elf64_Verdef v; memcpy(&v, c->b + o, sizeof v);
        if (v.vd_version != 1) return fail(c, "DT_VERDEF entry at 0x%llx has version %u", (unsigned long long)a, v.vd_version);
        if ((v.vd_ndx & 0x7fff) > high) high = v.vd_ndx & 0x7fff;
        int64_t xo = file_off(c, a + v.vd_aux, sizeof(Elf64_Verdaux));
        if (xo < 0) return fail(c, "DT_VERDEF auxiliary entry is not inside a PT_LOAD's file part");
        Elf64_Verdaux va; memcpy(&va, c->b + xo, sizeof va);
        if (va.vda_name >= c->strsz) return fail(c, "a DT_VERDEF version name is past the string table");
        if (!v.vd_next) break;
        a += v.vd_next;
    }
    if ((c->verneed || c->verdef) && !c->versym)
        return fail(c, "DT_VERNEED/DT_VERDEF without DT_VERSYM");
    if (!c->versym) return 0;
    /* The loader indexes its version array (high + 1 entries, none at all
     * when high is 0) with every DT_VERSYM entry, unchecked. */
    if (high == 0) return fail(c, "DT_VERSYM without any version in DT_VERNEED/DT_VERDEF");
    int64_t o = file_off(c, c->versym, 2 * c->nsyms);
    if (o < 0 || c->versym % 2) return fail(c, "DT_VERSYM 0x%llx is not inside a PT_LOAD's file part", (unsigned long long)c->versym);
    for (uint64_t k = 0; k < c->nsyms; k++) {
        uint16_t v; memcpy(&v, c->b + o + 2 * k, 2);
        if ((v & 0x7fff) > high) return fail(c, "dynamic symbol %llu has version index %u, but only %llu versions exist", (unsigned long long)k, v & 0x7fff, (unsigned long long)high);
    }
    return 0;
}

/* Tags the loader reads together: with one present and its partner
 * missing it dereferences NULL (or fails an assertion, which ends the
 * whole process). */
static int check_pairs(struct ck *c) {
    static const struct { int a, b; const char *an, *bn; } need[] = {
        { DT_INIT_ARRAY, DT_INIT_ARRAYSZ, "DT_INIT_ARRAY", "DT_INIT_ARRAYSZ" },
        { DT_FINI_ARRAY, DT_FINI_ARRAYSZ, "DT_FINI_ARRAY", "DT_FINI_ARRAYSZ" },
        { DT_RELA, DT_RELASZ, "DT_RELA", "DT_RELASZ" },
        { DT_RELA, DT_RELAENT, "DT_RELA", "DT_RELAENT" },
        { DT_JMPREL, DT_PLTRELSZ, "DT_JMPREL", "DT_PLTRELSZ" },
        { DT_JMPREL, DT_PLTREL, "DT_JMPREL", "DT_PLTREL" },
        { DT_RELR, DT_RELRSZ, "DT_RELR", "DT_RELRSZ" },
        { DT_RELR, DT_RELRENT, "DT_RELR", "DT_RELRENT" },
    };
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        if ((c->has >> need[i].a & 1) && !(c->has >> need[i].b & 1))
            return fail(c, "%s without %s", need[i].an, need[i].bn);
    if ((c->has >> DT_RELAENT & 1) && c->relaent != sizeof(Elf64_Rela)) return fail(c, "DT_RELAENT %llu, want %zu", (unsigned long long)c->relaent, sizeof(Elf64_Rela));
    if ((c->has >> DT_PLTREL & 1) && c->pltrel != DT_RELA) return fail(c, "DT_PLTREL %llu, want DT_RELA", (unsigned long long)c->pltrel);
    if ((c->has >> DT_RELRENT & 1) && c->relrent != 8) return fail(c, "DT_RELRENT %llu, want 8", (unsigned long long)c->relrent);
    return 0;
}

static int check_dynamic(struct ck *c) {
    if (read_dynamic(c) < 0 || check_pairs(c) < 0 || check_strings(c) < 0 || check_dynsyms(c) < 0 ||
        check_init(c) < 0 || check_versions(c) < 0) return -1;
    /* The loader applies the first DT_RELACOUNT entries as relative ones
     * without looking at their type. */
    uint64_t nrel = c->relasz / sizeof(Elf64_Rela), lead = 0;
    int64_t ro = c->rela ? file_off(c, c->rela, c->relasz) : -1;
    for (; ro >= 0 && lead < nrel && lead < c->relacount; lead++) {
        Elf64_Rela e; memcpy(&e, c->b + ro + lead * sizeof e, sizeof e);
        if (ELF64_R_TYPE(e.r_info) != R_RELATIVE) break;
    }
    if (c->relacount && lead < (c->relacount < nrel ? c->relacount : nrel))
        return fail(c, "DT_RELACOUNT %llu, but only the first %llu relocations are relative", (unsigned long long)c->relacount, (unsigned long long)lead);
    if (c->pltgot) {
        int64_t pf = load_flags(c, c->pltgot, 24);
        if (pf < 0 || !(pf & PF_W)) return fail(c, "DT_PLTGOT 0x%llx is not inside a writable PT_LOAD", (unsigned long long)c->pltgot);
    }
    c->covered = calloc(c->ninit + c->nfini + 1, 1);
    if (!c->covered) return fail(c, "out of memory");
    int r = check_rela(c, "DT_RELA", c->rela, c->relasz) < 0 || check_rela(c, "DT_JMPREL", c->jmprel, c->pltrelsz) < 0 ||
            check_relr(c) < 0 ? -1 : 0;
    for (size_t i = 0; r == 0 && i < c->ninit + c->nfini; i++)
        if (!c->covered[i]) r = fail(c, "%s entry %zu is not set by any relocation (it would be called as is)",
                                     i < c->ninit ? "DT_INIT_ARRAY" : "DT_FINI_ARRAY", i < c->ninit ? i : i - c->ninit);
    free(c->covered);
    c->covered = NULL;
    return r;
}

/* Contract: see internal.h. */
int dsu__elf_check(const void *data, size_t size, const char *what,
                   struct dsu__elf_info *info, char *err, size_t errn) {
    struct ck c;
    memset(&c, 0, sizeof c);
    c.b = data; c.n = size; c.what = what ? what : "?";
    c.err = err; c.errn = errn; c.info = info;
    if (info) memset(info, 0, sizeof *info);
    int r = check_ehdr(&c) < 0 || check_phdrs(&c) < 0 || check_shdrs(&c) < 0 ? -1 : 0;
    if (r == 0 && c.nfuncs) qsort(c.funcs, c.nfuncs, sizeof *c.funcs, cmp_u64);
    if (r == 0) r = check_dynamic(&c);
    free(c.funcs);
    return r;
}
