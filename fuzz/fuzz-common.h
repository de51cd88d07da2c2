/* Shared bits of the libFuzzer harnesses (fuzz/fuzz-*.c). Each harness is a
 * thin call into one libchrun parser of outside input; `make fuzz` builds
 * them with -fsanitize=fuzzer,address,undefined and runs each over its seed
 * corpus in testdata/fuzz/<harness>/. */
#ifndef CHRUN_FUZZ_COMMON_H
#define CHRUN_FUZZ_COMMON_H

#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/err.h"
#include "chrun/log.h"

/* A NUL-terminated copy of the input (parsers of C strings), or NULL. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static void fuzz_log_drop(enum chrun_log_level level, const char *line, void *data)
{
    (void) level;
    (void) line;
    (void) data;
}

/* Library warnings would flood the fuzzer's output: drop them. */
static inline void fuzz_quiet(void)
{
    chrun_log_set_prog("fuzz");
    chrun_log_set_sink(fuzz_log_drop, NULL);
}

/* Every failure must leave a message (STYLE: "fill it at the failure site").
 * With FUZZ_VERBOSE set, each message is printed (to see what a seed does). */
static inline void fuzz_check_err(int rc, const struct chrun_err *err)
{
    if (rc < 0 && err->msg[0] == '\0')
        abort();
    if (getenv("FUZZ_VERBOSE") != NULL)
        fprintf(stderr, "fuzz: %s\n", rc < 0 ? err->msg : "ok");
}

static int fuzz_rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void) sb;
    (void) ftw;
    if (type == FTW_DP || type == FTW_D || type == FTW_DNR)
        return rmdir(path) < 0 ? -1 : 0;
    return unlink(path) < 0 ? -1 : 0;
}

static int fuzz_open_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void) ftw;
    if (type == FTW_D && (sb->st_mode & 0700) != 0700)
        (void) chmod(path, (sb->st_mode & 07777) | 0700);
    return 0;
}

/* Remove the tree PATH (a scratch directory), never following a symlink;
 * directories an image made read-only are opened up first. Aborts when
 * something stays behind: the next run would start from a dirty state. */
static inline void fuzz_rm_rf(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) < 0)
        return;
    (void) nftw(path, fuzz_open_entry, 16, FTW_PHYS);
    if (nftw(path, fuzz_rm_entry, 16, FTW_PHYS | FTW_DEPTH) < 0 || lstat(path, &sb) == 0) {
        fprintf(stderr, "fuzz: cannot remove scratch tree %s\n", path);
        abort();
    }
}

/* A scratch directory for one harness: under /dev/shm when it exists (no disk
 * I/O per run), else $TMPDIR or /tmp. Aborts on failure. */
static inline void fuzz_scratch_dir(const char *tag, char *buf, size_t size)
{
    const char *base = getenv("TMPDIR");
    struct stat sb;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
        base = "/dev/shm";
    else if (base == NULL || base[0] == '\0')
        base = "/tmp";
    if ((size_t) snprintf(buf, size, "%s/chrun-fuzz-%s-XXXXXX", base, tag) >= size ||
        mkdtemp(buf) == NULL) {
        perror("fuzz: scratch directory");
        abort();
    }
}

/* An fd holding DATA, positioned at its start (a blob as the store gives it). */
static inline int fuzz_memfd(const void *data, size_t size)
{
    int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
    if (fd < 0 || (size > 0 && write(fd, data, size) != (ssize_t) size) ||
        lseek(fd, 0, SEEK_SET) < 0)
        abort();
    return fd;
}

#endif
