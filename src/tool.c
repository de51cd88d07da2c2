#include "chrun/tool.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/fs.h"
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

int chrun_tool_common_option(int c, char **argv, int (*usage)(FILE *out, int status))
{
    switch (c) {
    case 'q': chrun_log_set_quiet(true); return -1;
    case 'h': return usage(stdout, 0);
    case CHRUN_OPT_VERSION: return chrun_tool_version();
    default: return chrun_tool_bad_option(argv);
    }
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

int chrun_tool_output_open(struct chrun_tool_output *o, const char *path, const char *prefix,
                           struct chrun_err *err)
{
    char dir_buf[PATH_MAX];
    const char *slash = strrchr(path, '/');

    o->dirfd = o->fd = -1;
    o->tmp[0] = '\0';
    o->path = path;
    o->base = slash ? slash + 1 : path;
    if (*o->base == '\0')
        return chrun_err_set(err, CHRUN_E_USAGE, "output '%s' names a directory", path);
    if (snprintf(dir_buf, sizeof(dir_buf), "%s", path) >= (int) sizeof(dir_buf))
        return chrun_err_sys(err, ENAMETOOLONG, "output '%s'", path);
    o->dirfd = open(slash ? dirname(dir_buf) : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (o->dirfd < 0)
        return chrun_err_sys(err, errno, "output '%s'", path);
    o->fd = chrun_fs_mkstemp_at(o->dirfd, prefix, o->tmp, sizeof(o->tmp), err);
    if (o->fd < 0) {
        o->tmp[0] = '\0';
        return chrun_err_prefix(err, "output '%s'", path);
    }
    return 0;
}

int chrun_tool_output_finish(struct chrun_tool_output *o, int rc, struct chrun_err *err)
{
    mode_t mask = umask(0);

    umask(mask);
    if (o->fd >= 0 && rc == 0 && fchmod(o->fd, 0666 & ~mask) < 0)
        rc = chrun_err_sys(err, errno, "write '%s'", o->path);
    if (o->fd >= 0 && rc == 0 && fsync(o->fd) < 0)
        rc = chrun_err_sys(err, errno, "write '%s'", o->path);
    if (o->fd >= 0) {
        int fd = o->fd;
        o->fd = -1;
        if (close(fd) < 0 && rc == 0)
            rc = chrun_err_sys(err, errno, "write '%s'", o->path);
    }
    if (rc == 0 && o->tmp[0] && renameat(o->dirfd, o->tmp, o->dirfd, o->base) < 0)
        rc = chrun_err_sys(err, errno, "write '%s'", o->path);
    else if (rc == 0 && o->tmp[0])
        o->tmp[0] = '\0';
    if (rc == 0 && chrun_fs_fsync_dir(o->dirfd, err) < 0)
        rc = chrun_err_prefix(err, "write '%s'", o->path);
    if (o->tmp[0] && o->dirfd >= 0)
        unlinkat(o->dirfd, o->tmp, 0);
    if (o->dirfd >= 0)
        close(o->dirfd);
    o->dirfd = -1;
    o->tmp[0] = '\0';
    return rc < 0 ? -1 : 0;
}
