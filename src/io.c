#include "chrun/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

ssize_t chrun_io_read_full(int fd, void *buf, size_t len, struct chrun_err *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, (char *) buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return chrun_err_sys(err, errno, "read");
        if (n == 0)
            break;
        done += (size_t) n;
    }
    return (ssize_t) done;
}

int chrun_io_write_full(int fd, const void *buf, size_t len, struct chrun_err *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, (const char *) buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return chrun_err_sys(err, errno, "write");
        if (n == 0)
            return chrun_err_sys(err, ENOSPC, "write");
        done += (size_t) n;
    }
    return 0;
}

int chrun_io_read_bounded(int fd, size_t max, char **ret_buf, size_t *ret_len,
                          struct chrun_err *err)
{
    cleanup_free char *buf = NULL;
    size_t alloc = 0, room = 0, len = 0; /* room: bytes read into buf, at most max + 1 */

    for (;;) {
        ssize_t n;
        if (len == room) {
            if (room > max)
                return chrun_err_sys(err, EFBIG, "document larger than %zu bytes", max);
            room = len ? len * 2 : 16384;
            if (room > max + 1 || room < len)
                room = max + 1;
            if (chrun_grow(&buf, &alloc, room + 1, 1, err) < 0) /* + 1: the final '\0' */
                return chrun_err_prefix(err, "read");
        }
        n = chrun_io_read_full(fd, buf + len, room - len, err);
        if (n < 0)
            return -1;
        len += (size_t) n;
        if (len > max)
            return chrun_err_sys(err, EFBIG, "document larger than %zu bytes", max);
        if (len < room)
            break;
    }
    buf[len] = '\0';
    *ret_buf = take_ptr(buf);
    *ret_len = len;
    return 0;
}

int chrun_io_read_file_at(int dirfd, const char *name, size_t max, char **ret_buf,
                          size_t *ret_len, struct chrun_err *err)
{
    cleanup_close int fd = TEMP_FAILURE_RETRY_INT(
        openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (fd < 0)
        return chrun_err_sys(err, errno, "open '%s'", name);
    if (chrun_io_read_bounded(fd, max, ret_buf, ret_len, err) < 0)
        return chrun_err_prefix(err, "'%s'", name);
    return 0;
}
