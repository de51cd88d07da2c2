/* Diagnostics to stderr: one write(2) per line, program-name prefixed. */
#ifndef CHRUN_LOG_H
#define CHRUN_LOG_H

#include <stdbool.h>

enum chrun_log_level {
    CHRUN_LOG_ERROR = 0,
    CHRUN_LOG_WARN = 1,
    CHRUN_LOG_INFO = 2,
    CHRUN_LOG_DEBUG = 3,
};

/* A sink receives complete lines ("prog: warning: text\n"), already sanitized. */
typedef void (*chrun_log_sink_fn)(enum chrun_log_level level, const char *line, void *data);

/* Set the program name used as line prefix (main calls this once). */
void chrun_log_set_prog(const char *prog);
const char *chrun_log_prog(void);

/* -q: silence info lines. Errors and warnings always print. */
void chrun_log_set_quiet(bool quiet);
bool chrun_log_quiet(void);

/* Install a sink (NULL restores stderr). Not thread-safe; call before starting threads. */
void chrun_log_set_sink(chrun_log_sink_fn sink, void *data);

/* Emit a line at the given level. Thread-safe: one write per line. */
void chrun_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void chrun_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void chrun_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void chrun_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
