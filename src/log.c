#include "chrun/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chrun/io.h"
#include "util.h"

static const char *log_prog = "chrun";
static bool log_quiet;
static int log_debug = -1; /* -1: not yet read from CHRUN_DEBUG */
static chrun_log_sink_fn log_sink;
static void *log_sink_data;

void chrun_log_set_prog(const char *prog)
{
    log_prog = prog;
}

const char *chrun_log_prog(void)
{
    return log_prog;
}

void chrun_log_set_quiet(bool quiet)
{
    log_quiet = quiet;
}

bool chrun_log_quiet(void)
{
    return log_quiet;
}

void chrun_log_set_sink(chrun_log_sink_fn sink, void *data)
{
    log_sink = sink;
    log_sink_data = data;
}

static bool debug_enabled(void)
{
    if (log_debug < 0) {
        const char *v = getenv("CHRUN_DEBUG");
        log_debug = (v != NULL && *v != '\0' && !streq(v, "0"));
    }
    return log_debug;
}

static void emit(enum chrun_log_level level, const char *fmt, va_list ap)
{
    static const char *const labels[] = {"error: ", "warning: ", "", "debug: "};
    char body[2048];
    char line[2200];
    int n;

    vsnprintf(body, sizeof(body), fmt, ap);
    chrun_sanitize(body);
    n = snprintf(line, sizeof(line), "%s: %s%s\n", log_prog, labels[level], body);
    if (n < 0)
        return;
    if ((size_t) n >= sizeof(line)) {
        n = (int) sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    if (log_sink != NULL) {
        log_sink(level, line, log_sink_data);
        return;
    }
    (void) chrun_io_write_full(STDERR_FILENO, line, (size_t) n, NULL);
}

#define DEFINE_LOG_FN(name, level, enabled)                                                        \
    void name(const char *fmt, ...)                                                                \
    {                                                                                              \
        va_list ap;                                                                                \
        if (!(enabled))                                                                            \
            return;                                                                                \
        va_start(ap, fmt);                                                                         \
        emit(level, fmt, ap);                                                                      \
        va_end(ap);                                                                                \
    }

DEFINE_LOG_FN(chrun_log_error, CHRUN_LOG_ERROR, true)
DEFINE_LOG_FN(chrun_log_warn, CHRUN_LOG_WARN, true)
DEFINE_LOG_FN(chrun_log_info, CHRUN_LOG_INFO, !log_quiet)
DEFINE_LOG_FN(chrun_log_debug, CHRUN_LOG_DEBUG, debug_enabled())
