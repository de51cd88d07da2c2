/* Raw I/O that loops over short counts and EINTR, and bounded in-memory reads. */
#ifndef CHRUN_IO_H
#define CHRUN_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "chrun/err.h"

/* The one streaming buffer size: allocate once per stream, never on the stack. */
#define CHRUN_IO_BUFSZ (128 * 1024)

/* Caps for documents that live in memory; hitting one fails with EFBIG. */
#define CHRUN_MANIFEST_MAX (4 * 1024 * 1024)
#define CHRUN_CONFIG_MAX (8 * 1024 * 1024)
#define CHRUN_INDEX_MAX (64 * 1024 * 1024)

/* Read up to LEN bytes, stopping early only at EOF. Returns bytes read, or -1. */
ssize_t chrun_io_read_full(int fd, void *buf, size_t len, struct chrun_err *err);

/* Write all LEN bytes. A zero-byte write is reported as ENOSPC. Returns 0 or -1. */
int chrun_io_write_full(int fd, const void *buf, size_t len, struct chrun_err *err);

/* Read FD to EOF into a new NUL-terminated buffer (*ret_buf, caller frees) of
 * *ret_len bytes. More than MAX bytes fails with EFBIG. Returns 0 or -1. */
int chrun_io_read_bounded(int fd, size_t max, char **ret_buf, size_t *ret_len,
                          struct chrun_err *err);

/* Same as chrun_io_read_bounded for NAME relative to DIRFD, never following a
 * final symlink. */
int chrun_io_read_file_at(int dirfd, const char *name, size_t max, char **ret_buf,
                          size_t *ret_len, struct chrun_err *err);

#endif
