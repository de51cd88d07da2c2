/* Running a helper program: credential helpers (docker-credential-*),
 * newuidmap/newgidmap. One way to spawn, feed and reap, for the whole
 * library:
 *  - the program gets INPUT on stdin (or /dev/null), its stdout is captured
 *    up to a cap (more is an error, or dropped when asked), its stderr goes
 *    to the capture, to /dev/null, or (for our own sibling programs) to our
 *    stderr: our own stdout, which carries results, is never written by a
 *    helper;
 *  - a deadline bounds the whole run: on expiry the program is killed
 *    (SIGKILL) and reaped, and the call fails;
 *  - a program that exits without reading its input gives EPIPE, never a
 *    SIGPIPE: the signal is blocked in the calling thread only while we
 *    write, and a pending one is consumed, so the process-wide disposition
 *    of a threaded caller is never touched;
 *  - the program starts with default signal dispositions and an empty
 *    signal mask, whatever the caller had. */
#ifndef CHRUN_PROCESS_H
#define CHRUN_PROCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/err.h"

enum chrun_process_flags {
    CHRUN_PROCESS_SEARCH_PATH = 1 << 0,   /* find ARGV[0] on $PATH (posix_spawnp) */
    CHRUN_PROCESS_STDERR_TOO = 1 << 1,    /* capture stderr with stdout */
    CHRUN_PROCESS_TRUNCATE = 1 << 2,      /* keep OUTPUT_MAX bytes, drop the rest */
    CHRUN_PROCESS_STDERR_INHERIT = 1 << 3, /* stderr is ours (a chrun-* sibling's messages) */
};

struct chrun_process_opts {
    const char *const *argv;  /* argv[0] is the program; NULL-terminated */
    const char *const *envp;  /* NULL: the caller's environment */
    const char *input;        /* fed to stdin, then closed; NULL: /dev/null */
    size_t input_len;
    size_t output_max;        /* cap on captured output */
    int timeout_ms;           /* > 0: the whole run, from spawn to exit */
    unsigned flags;           /* enum chrun_process_flags */
};

struct chrun_process_result {
    char *out;      /* captured output, NUL-terminated (free with _release) */
    size_t out_len;
    int status;     /* wait status (WIFEXITED, WEXITSTATUS, ...) */
};

/* Run the program of OPTS to its end. On success (the program ran and was
 * reaped, whatever its exit status) fills *RET (release it) and returns 0.
 * Fails with -1 and ERR: the program could not be started (errnum from
 * posix_spawn, "run 'PROG'"), did not finish within the deadline
 * (CHRUN_E_SYS, "did not finish within N s"), or wrote more than OUTPUT_MAX
 * bytes without CHRUN_PROCESS_TRUNCATE (CHRUN_E_INPUT). Thread-safe. */
int chrun_process_run(const struct chrun_process_opts *opts, struct chrun_process_result *ret,
                      struct chrun_err *err);

/* Free what *R holds (safe on a zeroed result). */
void chrun_process_result_release(struct chrun_process_result *r);

/* "exit status N" or "killed by signal N" for wait status STATUS, into BUF. */
const char *chrun_process_describe_status(int status, char *buf, size_t size);

#endif
