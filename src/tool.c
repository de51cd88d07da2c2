#include "chrun/tool.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chrun/io.h"
#include "chrun/log.h"
#include "util.h"

void chrun_tool_init(const char *prog)
{
    chrun_log_set_prog(prog);
    opterr = 0;
}

int chrun_tool_version(void)
{
    printf("%s %s\n", chrun_log_prog(), CHRUN_VERSION);
    return chrun_tool_finish_stdout();
}

static int try_help(void)
{
    fprintf(stderr, "Try '%s --help'.\n", chrun_log_prog());
    return 2;
}

int chrun_tool_bad_option(char **argv)
{
    const char *arg = argv[optind - 1];
    if (optopt != 0 && optopt < CHRUN_OPT_VERSION && arg != NULL && arg[0] == '-' && arg[1] != '-')
        chrun_log_error("unknown or incomplete option '-%c'", optopt);
    else
        chrun_log_error("unknown or incomplete option '%s'", arg ? arg : "?");
    return try_help();
}

int chrun_tool_usage_error(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    chrun_log_error("%s", msg);
    return try_help();
}

int chrun_tool_fail(const struct chrun_err *err)
{
    char line[CHRUN_ERR_MSG_MAX + 256];
    chrun_log_error("%s", chrun_err_format(err, line, sizeof(line)));
    return 1;
}

int chrun_tool_finish_stdout(void)
{
    int failed = fflush(stdout) != 0 || ferror(stdout);
    int e = errno;
    if (fclose(stdout) != 0 && !failed) {
        failed = 1;
        e = errno;
    }
    if (failed) {
        chrun_log_error("write to stdout: %s", strerror(e));
        return 1;
    }
    return 0;
}

int chrun_tool_image_operand(const char *arg, char *buf, size_t size, struct chrun_err *err)
{
    size_t len = 0;
    if (arg != NULL && !streq(arg, "-")) {
        if (snprintf(buf, size, "%s", arg) >= (int) size)
            return chrun_err_set(err, CHRUN_E_USAGE, "IMAGE operand too long");
        return 0;
    }
    /* Read byte by byte: the rest of stdin may belong to the command we run. */
    while (len + 1 < size) {
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return chrun_err_sys(err, errno, "read IMAGE from stdin");
        if (n == 0 || c == '\n')
            break;
        buf[len++] = c;
    }
    while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    buf[len] = '\0';
    if (len == 0)
        return chrun_err_set(err, CHRUN_E_USAGE, "no IMAGE given and none on stdin");
    return 0;
}
