#include "chrun/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

int chrun_err_set(struct chrun_err *err, int code, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL)
        return -1;
    err->code = code;
    err->errnum = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

int chrun_err_sys(struct chrun_err *err, int errnum, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL)
        return -1;
    err->code = CHRUN_E_SYS;
    err->errnum = errnum;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -1;
}

int chrun_err_prefix(struct chrun_err *err, const char *fmt, ...)
{
    char prefix[CHRUN_ERR_MSG_MAX];
    char joined[CHRUN_ERR_MSG_MAX];
    va_list ap;
    if (err == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    /* Truncation only shortens the message, which is acceptable for a diagnostic. */
    if (snprintf(joined, sizeof(joined), "%s: %s", prefix, err->msg) < 0)
        return -1;
    memcpy(err->msg, joined, sizeof(err->msg));
    return -1;
}

void chrun_err_clear(struct chrun_err *err)
{
    err->code = CHRUN_E_OK;
    err->errnum = 0;
    err->msg[0] = '\0';
}

char *chrun_err_format(const struct chrun_err *err, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    if (err->errnum != 0)
        snprintf(buf, size, "%s: %s", err->msg[0] ? err->msg : "error", strerror(err->errnum));
    else
        snprintf(buf, size, "%s", err->msg[0] ? err->msg : "unknown error");
    chrun_sanitize(buf);
    return buf;
}
