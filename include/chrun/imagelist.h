/* Image lists: the `-i FILE` input of chrun-pull and chrun-save. One image
 * reference per line; leading and trailing blanks are ignored, as are blank
 * lines and lines whose first non-blank character is '#'. */
#ifndef CHRUN_IMAGELIST_H
#define CHRUN_IMAGELIST_H

#include <stddef.h>

#include "chrun/err.h"

/* Longest line, and most lines, one list may hold. */
#define CHRUN_IMAGELIST_LINE_MAX 1024
#define CHRUN_IMAGELIST_MAX 10000

struct chrun_imagelist {
    char **items; /* N strings, in file order */
    size_t n;
    size_t cap; /* slots allocated in items */
};

/* Read the list in PATH ("-": standard input) into LIST (zeroed first).
 * Fails with CHRUN_E_INPUT naming PATH and the line for a line longer than
 * CHRUN_IMAGELIST_LINE_MAX, more than CHRUN_IMAGELIST_MAX
 * entries, or a list without any entry. Release with
 * chrun_imagelist_release, also after a failure. Returns 0 or -1. */
int chrun_imagelist_read(struct chrun_imagelist *list, const char *path, struct chrun_err *err);

void chrun_imagelist_release(struct chrun_imagelist *list);

#endif
