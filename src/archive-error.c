/* Translating libarchive failures (src/archive-error.h). */
#include "archive-error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

const char *chrun_archive_text(struct archive *a)
{
    const char *s = a != NULL ? archive_error_string(a) : NULL;
    return s != NULL && *s != '\0' ? s : "libarchive error";
}

int chrun_archive_error(struct chrun_err *err, struct archive *a, const char *fmt, ...)
{
    char what[CHRUN_ERR_MSG_MAX];
    int e = a != NULL ? archive_errno(a) : 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    /* libarchive (archive_private.h) reports damage in the stream itself as
     * EILSEQ (its ARCHIVE_ERRNO_FILE_FORMAT), misuse as EINVAL, anything else
     * as -1 (ARCHIVE_ERRNO_MISC); a positive value besides those is a real
     * errno from I/O */
    if (e > 0 && e != EILSEQ && e != EINVAL)
        return chrun_err_sys(err, e, "%s: %s", what, chrun_archive_text(a));
    return chrun_err_set(err, CHRUN_E_INPUT, "%s: %s", what, chrun_archive_text(a));
}
