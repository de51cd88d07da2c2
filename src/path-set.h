/* Paths of layer entries, shared by the layer applier and the exporter's
 * model of it; not installed: a set of strings (open addressing, FNV-1a),
 * the paths one layer has named, which the image-spec whiteout rules
 * consult; and splitting and joining of normalized paths. */
#ifndef CHRUN_PATH_SET_H
#define CHRUN_PATH_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* FNV-1a of the string S. */
uint64_t path_hash(const char *s);

/* Split normalized PATH at its last slash: DIR (PATH_MAX) gets the directory
 * part ("" at the top), *RET_BASE points at the last component inside PATH. */
void path_split(const char *path, char *dir, const char **ret_base);

/* OUT (PATH_MAX) = DIR/NAME, or NAME when DIR is ""; false if it does not fit. */
bool path_join(char *out, const char *dir, const char *name);

#endif
