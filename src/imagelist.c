/* chrun_imagelist: the `-i FILE` image list format (chrun/imagelist.h). */
#include "chrun/imagelist.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "util.h"

void chrun_imagelist_release(struct chrun_imagelist *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->n = 0;
    list->cap = 0;
}

static int add_item(struct chrun_imagelist *list, const char *s, size_t len,
                    struct chrun_err *err)
{
    if (chrun_grow(&list->items, &list->cap, list->n + 1, sizeof(*list->items), err) < 0)
        return chrun_err_prefix(err, "image list");
    list->items[list->n] = strndup(s, len);
    if (list->items[list->n] == NULL)
        return chrun_err_sys(err, ENOMEM, "image list");
    list->n++;
    return 0;
}

/* One LINE (LEN bytes, no newline) of the list. */
static int parse_line(struct chrun_imagelist *list, const char *line, size_t len,
                      struct chrun_err *err)
{
    while (len > 0 && isspace((unsigned char) *line)) {
        line++;
        len--;
    }
    while (len > 0 && isspace((unsigned char) line[len - 1]))
        len--;
    if (len == 0 || line[0] == '#')
        return 0;
    if (list->n >= CHRUN_IMAGELIST_MAX)
        return chrun_err_set(err, CHRUN_E_INPUT, "more than %d images", CHRUN_IMAGELIST_MAX);
    return add_item(list, line, len, err);
}

int chrun_imagelist_read(struct chrun_imagelist *list, const char *path, struct chrun_err *err)
{
    bool is_stdin = streq(path, "-");
    cleanup_fclose FILE *f = NULL;
    char line[CHRUN_IMAGELIST_LINE_MAX + 2];
    size_t lineno = 0;

    memset(list, 0, sizeof(*list));
    if (is_stdin) {
        int fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        if (fd < 0 || (f = fdopen(fd, "r")) == NULL) {
            int e = errno;
            if (fd >= 0)
                close(fd);
            return chrun_err_sys(err, e, "read image list from stdin");
        }
        path = "stdin";
    } else {
        f = fopen(path, "re");
        if (f == NULL)
            return chrun_err_sys(err, errno, "open image list '%s'", path);
    }
    errno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > CHRUN_IMAGELIST_LINE_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "image list '%s' line %zu: longer than %d bytes", path, lineno,
                                 CHRUN_IMAGELIST_LINE_MAX);
        if (parse_line(list, line, len, err) < 0)
            return chrun_err_prefix(err, "image list '%s' line %zu", path, lineno);
        errno = 0;
    }
    if (ferror(f))
        return chrun_err_sys(err, errno ? errno : EIO, "read image list '%s'", path);
    if (list->n == 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "image list '%s' names no image", path);
    return 0;
}
