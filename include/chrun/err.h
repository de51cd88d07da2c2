/* Error reporting for libchrun: one struct carried from the failure site to main. */
#ifndef CHRUN_ERR_H
#define CHRUN_ERR_H

#include <stddef.h>

/* Stable error classes; values are only ever appended. */
enum chrun_errcode {
    CHRUN_E_OK = 0,
    CHRUN_E_SYS = 1,         /* a system call failed; errnum holds errno */
    CHRUN_E_INPUT = 2,       /* malformed or hostile input (archive, JSON, tar entry) */
    CHRUN_E_NOTFOUND = 3,    /* image, blob or reference not known */
    CHRUN_E_DIGEST = 4,      /* bytes do not match their digest or declared size */
    CHRUN_E_AMBIGUOUS = 5,   /* a short digest names more than one image */
    CHRUN_E_UNSUPPORTED = 6, /* valid but not supported (media type, schema1) */
    CHRUN_E_NETWORK = 7,     /* connection, timeout, HTTP failure */
    CHRUN_E_AUTH = 8,        /* credentials missing or refused */
    CHRUN_E_EXISTS = 9,      /* target exists and differs */
    CHRUN_E_USAGE = 10,      /* bad operand syntax found by a library parser */
};

#define CHRUN_ERR_MSG_MAX 1024

struct chrun_err {
    int code;   /* enum chrun_errcode */
    int errnum; /* errno for CHRUN_E_SYS, else 0 */
    char msg[CHRUN_ERR_MSG_MAX];
};

#define CHRUN_ERR_INIT {0, 0, {0}}

/* Fill ERR with CODE and a formatted message. Always returns -1. */
int chrun_err_set(struct chrun_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill ERR from a failed system call: ERRNUM is saved errno. Always returns -1.
 * The printed form is "<msg>: <strerror(errnum)>". */
int chrun_err_sys(struct chrun_err *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "<prefix>: " to ERR's message, keeping code and errnum. Returns -1. */
int chrun_err_prefix(struct chrun_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reset ERR to the no-error state. */
void chrun_err_clear(struct chrun_err *err);

/* Format ERR as one line ("msg" or "msg: strerror") into BUF of SIZE bytes.
 * Control characters are replaced by '?'. Returns BUF. */
char *chrun_err_format(const struct chrun_err *err, char *buf, size_t size);

#endif
