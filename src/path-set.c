#include "path-set.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

uint64_t path_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 1099511628211ULL;
    return h;
}

void path_split(const char *path, char *dir, const char **ret_base)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        dir[0] = '\0';
        *ret_base = path;
        return;
    }
    memcpy(dir, path, (size_t) (slash - path));
    dir[slash - path] = '\0';
    *ret_base = slash + 1;
}

bool path_join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s%s%s", dir, dir[0] ? "/" : "", name);
    return n >= 0 && n < PATH_MAX;
}

void path_set_clear(struct path_set *ps)
{
    for (size_t i = 0; i < ps->cap; i++)
        free(ps->slots[i]);
    free(ps->slots);
    ps->slots = NULL;
    ps->cap = ps->n = 0;
}

bool path_set_has(const struct path_set *ps, const char *s)
{
    if (ps->cap == 0)
        return false;
    for (size_t i = path_hash(s) & (ps->cap - 1);; i = (i + 1) & (ps->cap - 1)) {
        if (ps->slots[i] == NULL)
            return false;
        if (streq(ps->slots[i], s))
            return true;
    }
}

static void path_set_put_owned(struct path_set *ps, char *s)
{
    size_t i = path_hash(s) & (ps->cap - 1);
    while (ps->slots[i] != NULL)
        i = (i + 1) & (ps->cap - 1);
    ps->slots[i] = s;
    ps->n++;
}

int path_set_add(struct path_set *ps, const char *s, struct chrun_err *err)
{
    char *copy;
    if (path_set_has(ps, s))
        return 0;
    if ((ps->n + 1) * 10 >= ps->cap * 7) {
        struct path_set bigger = {NULL, ps->cap ? ps->cap * 2 : 1024, 0};
        bigger.slots = calloc(bigger.cap, sizeof(char *));
        if (bigger.slots == NULL)
            return chrun_err_sys(err, ENOMEM, "layer path set");
        for (size_t i = 0; i < ps->cap; i++)
            if (ps->slots[i] != NULL)
                path_set_put_owned(&bigger, ps->slots[i]);
        free(ps->slots);
        *ps = bigger;
    }
    copy = strdup(s);
    if (copy == NULL)
        return chrun_err_sys(err, ENOMEM, "layer path set");
    path_set_put_owned(ps, copy);
    return 0;
}
