/* Own inflate: gzip (ISA-L igzip) and zstd (libzstd) streams, checked to
 * their last byte.
 *
 * An inflater pulls compressed bytes from a source callback and hands out the
 * plain stream. Every gzip member's CRC32 and ISIZE are checked against its
 * data, members may follow each other (multi-member gzip, as pigz and
 * concatenated files make), and a zstd frame's content checksum is checked
 * when the frame carries one. The stream must end exactly at the source's end:
 * a truncated member or frame, a wrong CRC32 or ISIZE, a bad checksum, and
 * any byte after the last member or frame that does not start a new one fail
 * with CHRUN_E_INPUT ("corrupt gzip stream: ..."; "truncated ..."), so a
 * caller that hashes what it reads covers every byte (SPEC "Bad input").
 * Memory is fixed per inflater: igzip's state, or one zstd window capped at
 * 2^CHRUN_INFLATE_ZSTD_WINDOW_LOG_MAX bytes (zstd's own default limit). */
#ifndef CHRUN_INFLATE_H
#define CHRUN_INFLATE_H

#include <stddef.h>
#include <sys/types.h>

#include "chrun/err.h"
#include "chrun/manifest.h"

/* Largest zstd window accepted (128 MiB); a frame asking for more is refused. */
#define CHRUN_INFLATE_ZSTD_WINDOW_LOG_MAX 27

/* Hand out the next chunk of compressed bytes: point *RET_BUF at them (owned
 * by the source, valid until its next call) and return their count, 0 at the
 * end of the input, or -1 with ERR filled. */
typedef ssize_t chrun_inflate_source_fn(void *data, const void **ret_buf, struct chrun_err *err);

/* The compression the first LEN bytes of BUF announce by their magic bytes:
 * gzip (1f 8b), zstd (28 b5 2f fd), else CHRUN_COMPRESSION_NONE. */
enum chrun_compression chrun_inflate_sniff(const void *buf, size_t len);

/* "gzip", "zstd" or "tar" (for NONE), for messages. Static string. */
const char *chrun_inflate_name(enum chrun_compression comp);

struct chrun_inflate;

/* A new inflater for COMP (gzip or zstd) reading from SRC(DATA, ...).
 * Returns it (chrun_inflate_free), or NULL with ERR: CHRUN_E_UNSUPPORTED for
 * NONE, ENOMEM. */
struct chrun_inflate *chrun_inflate_new(enum chrun_compression comp, chrun_inflate_source_fn *src,
                                        void *data, struct chrun_err *err);

/* Inflate up to CAP bytes into BUF; returns fewer only at the end. Returns the
 * count, 0 once the stream ended cleanly at the end of the source (every
 * member's trailer checked, nothing after it), or -1 with ERR: the source's
 * own error untouched, or CHRUN_E_INPUT for a corrupt or truncated stream.
 * After -1 the inflater can only be freed. Not thread-safe. */
ssize_t chrun_inflate_read(struct chrun_inflate *z, void *buf, size_t cap, struct chrun_err *err);

/* Free Z (NULL is fine). */
void chrun_inflate_free(struct chrun_inflate *z);

#endif
