/* A set of strings (open addressing, FNV-1a): the paths one layer has named,
 * which the image-spec whiteout rules consult. Shared by the layer applier and
 * the exporter's model of it; not installed. */
#ifndef CHRUN_PATH_SET_H
#define CHRUN_PATH_SET_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/err.h"

struct path_set {
    char **slots;
    size_t cap, n;
};

/* Free every member; the set is empty and reusable afterwards. */
void path_set_clear(struct path_set *ps);
bool path_set_has(const struct path_set *ps, const char *s);
/* Add a copy of S (a no-op when present). Returns 0, or -1 (ENOMEM) with ERR. */
int path_set_add(struct path_set *ps, const char *s, struct chrun_err *err);

#endif
