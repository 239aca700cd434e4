/* mutate -- stages corrupted copies of a patch into a live program
 * (tests/t_stress.sh).
 *
 *   mutate <socket> <patch.so> <count> <seed> <workdir>
 *
 * Each round writes <workdir>/m.so as one of: the patch truncated (at the
 * start, middle and end of every PT_LOAD, then at random offsets); 1-3 bit
 * flips or 1-4 random bytes in the parts the loader reads (ELF header,
 * program and section headers, dynamic section, dynamic symbols, strings,
 * hash and version tables); or random bytes (half of them behind an ELF
 * header).  It stages it with its correct sha256 and checks the reply is
 * one JSON line; every 50 rounds it also checks STATUS.  Prints
 * "rounds=N staged=S refused=R bad=B" and exits 1 if any reply was bad. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "internal.h"

static const char *sock;
struct region { size_t off, len; };
static struct region regs[64];
static int nregs;

static int conn(void) {
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("connect"); exit(2); }
    return fd;
}

/* Sends a line and reads the one-line reply (30 s at most). */
static int ask(int *fd, const char *line, char *reply, size_t cap) {
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t n = strlen(line), off = 0;
        while (off < n) {
            ssize_t w = send(*fd, line + off, n - off, MSG_NOSIGNAL);
            if (w <= 0) break;
            off += (size_t)w;
        }
        size_t got = 0;
        while (off == n && got + 1 < cap) {
            struct pollfd p = { *fd, POLLIN, 0 };
            if (poll(&p, 1, 30000) <= 0) { fprintf(stderr, "no reply within 30 s to: %s", line); return -1; }
            ssize_t r = read(*fd, reply + got, 1);
            if (r <= 0) break;
            if (reply[got++] == '\n') { reply[got] = 0; return 0; }
        }
        close(*fd);              /* closed under us: reconnect once */
        *fd = conn();
    }
    reply[0] = 0;
    return -1;
}

static void add_region(size_t off, size_t len, size_t size) {
    if (nregs < 64 && off < size && len) regs[nregs++] = (struct region){ off, off + len > size ? size - off : len };
}

/* The parts of the file the loader and the validator read. */
static void find_regions(const unsigned char *b, size_t n) {
    const Elf64_Ehdr *e = (const Elf64_Ehdr *)b;
    add_region(0, sizeof *e, n);
    add_region(e->e_phoff, (size_t)e->e_phnum * sizeof(Elf64_Phdr), n);
    add_region(e->e_shoff, (size_t)e->e_shnum * sizeof(Elf64_Shdr), n);
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(b + e->e_phoff);
    for (int i = 0; i < e->e_phnum; i++)
        if (ph[i].p_type == PT_DYNAMIC) add_region(ph[i].p_offset, ph[i].p_filesz, n);
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(b + e->e_shoff);
    for (int i = 0; i < e->e_shnum; i++) {
        uint32_t t = sh[i].sh_type;
        if (t == SHT_DYNSYM || t == SHT_GNU_HASH || t == SHT_HASH || t == SHT_GNU_versym ||
            t == SHT_GNU_verneed || t == SHT_GNU_verdef || (t == SHT_STRTAB && (sh[i].sh_flags & SHF_ALLOC)))
            add_region(sh[i].sh_offset, sh[i].sh_size, n);
    }
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: mutate <socket> <patch.so> <count> <seed> <workdir>\n"); return 2; }
    signal(SIGPIPE, SIG_IGN);
    sock = argv[1];
    int count = atoi(argv[3]);
    srand((unsigned)atoi(argv[4]));
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 2; }
    static unsigned char orig[1 << 20], buf[1 << 20];
    size_t n = fread(orig, 1, sizeof orig, f);
    fclose(f);
    find_regions(orig, n);
    /* Truncation points: start, second byte, middle and last byte of every load. */
    size_t cuts[64]; int ncuts = 0;
    const Elf64_Ehdr *e = (const Elf64_Ehdr *)orig;
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(orig + e->e_phoff);
    for (int i = 0; i < e->e_phnum && ncuts < 60; i++) {
        if (ph[i].p_type != PT_LOAD || !ph[i].p_filesz) continue;
        size_t o = ph[i].p_offset, l = ph[i].p_filesz;
        cuts[ncuts++] = o; cuts[ncuts++] = o + 1; cuts[ncuts++] = o + l / 2; cuts[ncuts++] = o + l - 1;
    }
    char path[4096], line[8192], reply[65536], hex[65];
    snprintf(path, sizeof path, "%s/m.so", argv[5]);
    int fd = conn(), staged = 0, refused = 0, bad = 0, ntrunc = 0;
    for (int k = 0; k < count; k++) {
        size_t len = n;
        memcpy(buf, orig, n);
        switch (k % 4) {
        case 0:                                   /* truncated */
            len = ntrunc < ncuts ? cuts[ntrunc] : (size_t)rand() % n;
            ntrunc++;
            if (len == 0) len = 1;
            break;
        case 1: {                                 /* bit flips */
            for (int m = 1 + rand() % 3; m > 0; m--) {
                struct region *r = &regs[rand() % nregs];
                buf[r->off + (size_t)rand() % r->len] ^= (unsigned char)(1u << (rand() % 8));
            }
            break;
        }
        case 2: {                                 /* random bytes in place */
            for (int m = 1 + rand() % 4; m > 0; m--) {
                struct region *r = &regs[rand() % nregs];
                buf[r->off + (size_t)rand() % r->len] = (unsigned char)rand();
            }
            break;
        }
        default:                                  /* random file */
            len = 1 + (size_t)rand() % 8192;
            for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)rand();
            if (rand() % 2 && len >= sizeof(Elf64_Ehdr)) memcpy(buf, orig, sizeof(Elf64_Ehdr));
        }
        unlink(path);
        FILE *o = fopen(path, "wb");
        if (!o || fwrite(buf, 1, len, o) != len || fclose(o) != 0) { perror(path); return 2; }
        chmod(path, 0644);
        dsu__sha256_hex(buf, len, hex);
        snprintf(line, sizeof line, "STAGE %s %s m%d\n", path, hex, k);
        if (ask(&fd, line, reply, sizeof reply) < 0 || reply[0] != '{' || !strstr(reply, "\"ok\":")) {
            fprintf(stderr, "round %d (kind %d, %zu bytes): bad reply '%.200s'\n", k, k % 4, len, reply);
            bad++;
            if (bad > 5) break;
            continue;
        }
        if (strstr(reply, "\"ok\":true")) staged++; else refused++;
        if (k % 50 == 49 && (ask(&fd, "STATUS\n", reply, sizeof reply) < 0 || !strstr(reply, "\"ok\":true"))) {
            fprintf(stderr, "round %d: STATUS not answered: '%.200s'\n", k, reply);
            bad++;
        }
    }
    close(fd);
    printf("rounds=%d staged=%d refused=%d bad=%d\n", count, staged, refused, bad);
    return bad ? 1 : 0;
}
