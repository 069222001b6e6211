/* fuzz_util.h - what the libFuzzer targets share: inputs as files (the
 * readers map paths) without touching the disk, and a scratch directory. */
#ifndef TRLC_FUZZ_UTIL_H
#define TRLC_FUZZ_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, nftw; the build defines it too (include order) */
#endif
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The bytes as a file: a memfd, reachable as /proc/self/fd/N. Returns the fd (close it after). */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t cap) {
    int fd = memfd_create("fuzz", 0);
    if (fd < 0) abort();
    size_t at = 0;
    while (at < size) {
        ssize_t k = write(fd, data + at, size - at);
        if (k <= 0) abort();
        at += (size_t)k;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

static char fuzz_scratch_dir[256];

static inline int fuzz_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}
static inline void fuzz_scratch_remove(void) {
    if (fuzz_scratch_dir[0]) nftw(fuzz_scratch_dir, fuzz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* A directory of this process on a RAM file system when there is one (fsync
 * is free there), removed at exit. */
static inline const char *fuzz_scratch(void) {
    if (!fuzz_scratch_dir[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_scratch_dir, sizeof fuzz_scratch_dir, "%s/trlc-fuzz-%d-XXXXXX", base, (int)getpid());
        if (!mkdtemp(fuzz_scratch_dir)) abort();
        atexit(fuzz_scratch_remove);
    }
    return fuzz_scratch_dir;
}

#endif
