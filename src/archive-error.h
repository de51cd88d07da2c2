/* The libarchive boundary: one translation of a libarchive failure into a
 * struct chrun_err, used by every module that reads or writes tar streams.
 * Internal to libchrun. */
#ifndef CHRUN_ARCHIVE_ERROR_H
#define CHRUN_ARCHIVE_ERROR_H

#include <archive.h>

#include "chrun/err.h"

/* libarchive's text for A's last error, never NULL ("libarchive error"
 * when it has none). Valid until the next call on A: copy it before freeing
 * the handle. */
const char *chrun_archive_text(struct archive *a);

/* Fill ERR from A's last error, "<FMT...>: <libarchive text>". A damaged or
 * malformed stream (archive_errno EILSEQ, -1 or none) is CHRUN_E_INPUT; a real errno (EIO, ENOSPC, ENOMEM...) is
 * CHRUN_E_SYS with that errno. The text is copied. Returns -1. */
int chrun_archive_error(struct chrun_err *err, struct archive *a, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
