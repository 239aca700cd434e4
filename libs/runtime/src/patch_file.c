/* patch_file.c -- reads a patch file for STAGE: once, safely, completely
 * checked before anything of it is mapped.
 *
 * The path comes from a control client, and the file may be anything: a
 * FIFO or a device (an open or read that never returns would stall the
 * runtime), a symlink swapped under us, a file someone else can rewrite, a
 * copy cut short by a full disk (mapping it kills the program with SIGBUS),
 * a file still being written.  So: one open with O_NOFOLLOW|O_NONBLOCK
 * (never blocks, whatever the file is), every other check on that fd with
 * fstat (no path-based check that could race with the open), one read of
 * exactly st_size bytes, and then the sha256 and the ELF validation run over
 * those bytes, which are what the runtime later loads (update.c copies them
 * into a sealed memfd). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "internal.h"

static uint64_t max_bytes = DSU__DEFAULT_MAX_PATCH_BYTES;

/* Contract: see internal.h. */
void dsu__patch_limit_init(void) {
    const char *v = getenv("DSU_MAX_PATCH_BYTES");
    if (!v || !*v) return;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    uint64_t mul = 1;
    if (*end == 'k' || *end == 'K') { mul = 1u << 10; end++; }
    else if (*end == 'm' || *end == 'M') { mul = 1u << 20; end++; }
    else if (*end == 'g' || *end == 'G') { mul = 1u << 30; end++; }
    if (errno || end == v || *end || n == 0 || n > (1ull << 40) / mul) {
        fprintf(stderr, "dsu: ignoring DSU_MAX_PATCH_BYTES=%s (want a byte count such as 268435456 or 256M, "
                        "at most 1T); using %llu\n", v, (unsigned long long)max_bytes);
        return;
    }
    max_bytes = n * mul;
}

uint64_t dsu__patch_limit(void) { return max_bytes; }

/* Opens `path` without following a final symlink and without blocking,
 * and checks what it is on the fd.  Returns the fd and *size, or -1. */
static int open_checked(const char *path, uint64_t *size, char *err, size_t errn) {
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            snprintf(err, errn, "patch path '%.400s' is a symbolic link; pass the path of the patch file itself", path);
        else
            snprintf(err, errn, "cannot open patch '%.400s': %s; check the path exists and is readable by pid %d",
                     path, strerror(errno), (int)getpid());
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        snprintf(err, errn, "cannot stat patch '%.400s': %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(err, errn, "patch '%.400s' is not a regular file (it is a %s); pass the path of the built patch.so",
                 path, S_ISFIFO(st.st_mode) ? "FIFO" : S_ISDIR(st.st_mode) ? "directory" :
                       S_ISCHR(st.st_mode) ? "character device" : S_ISBLK(st.st_mode) ? "block device" :
                       S_ISSOCK(st.st_mode) ? "socket" : "special file");
    } else if (st.st_uid != geteuid() && st.st_uid != 0) {
        snprintf(err, errn, "patch '%.400s' is owned by uid %u, but only files owned by uid %u (the program's) or root "
                 "are loaded; chown it or copy it as that user", path, (unsigned)st.st_uid, (unsigned)geteuid());
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, errn, "patch '%.400s' is writable by %s (mode %03o), so someone else could have changed it; "
                 "chmod go-w it", path, (st.st_mode & S_IWOTH) ? "everyone" : "its group", (unsigned)(st.st_mode & 0777));
    } else if (st.st_size <= 0) {
        snprintf(err, errn, "patch '%.400s' is empty; copy the complete file again", path);
    } else if ((uint64_t)st.st_size > max_bytes) {
        snprintf(err, errn, "patch '%.400s' has %llu bytes, more than the limit of %llu; raise DSU_MAX_PATCH_BYTES "
                 "in the program's environment if it is really that large", path,
                 (unsigned long long)st.st_size, (unsigned long long)max_bytes);
    } else {
        *size = (uint64_t)st.st_size;
        return fd;
    }
    close(fd);
    return -1;
}

/* Contract: see internal.h. */
int dsu__patch_read(const char *path, const char *sha256, unsigned char **out, size_t *len,
                    struct dsu__elf_info *info, char *err, size_t errn) {
    uint64_t size;
    int fd = open_checked(path, &size, err, errn);
    if (fd < 0) return -1;
    unsigned char *b = malloc((size_t)size + 1);
    if (!b) { close(fd); snprintf(err, errn, "out of memory reading patch '%.400s' (%llu bytes)", path, (unsigned long long)size); return -1; }
    size_t got = 0;
    int rerr = 0;
    /* One byte more than st_size: a file that is still being written is
     * refused instead of loaded half-way. */
    while (got <= (size_t)size) {
        ssize_t r = read(fd, b + got, (size_t)size + 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(err, errn, "error reading patch '%.400s': %s", path, strerror(errno));
            rerr = 1;
            break;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != (size_t)size) {
        if (!rerr)
            snprintf(err, errn, "patch '%.400s' %s while it was read (%llu bytes at open, %zu read); "
                     "stage it once it is completely written", path, got > (size_t)size ? "grew" : "shrank",
                     (unsigned long long)size, got);
        free(b);
        return -1;
    }
    /* The structure first: for a copy cut short, "truncated at byte N"
     * says more than a hash mismatch would. */
    if (dsu__elf_check(b, got, path, info, err, errn) < 0) { free(b); return -1; }
    char hex[65];
    dsu__sha256_hex(b, got, hex);
    if (strcmp(hex, sha256) != 0) {
        snprintf(err, errn, "sha256 mismatch for '%.400s': file is %s, request says %s; recompute it with sha256sum "
                 "and make sure the file was not modified", path, hex, sha256);
        free(b);
        return -1;
    }
    *out = b; *len = got;
    return 0;
}
