/* -v HOST:CTR[:ro|rw] bind-mount specs of chrun-exec and `chrun run`. */
#ifndef CHRUN_VOLUME_H
#define CHRUN_VOLUME_H

#include <stdbool.h>

#include "chrun/err.h"

/* One -v HOST:CTR[:ro] bind mount. Strings are owned by the struct. */
struct chrun_volume {
    char *host; /* host path, as given */
    char *ctr;  /* absolute path inside the container */
    bool ro;
    /* PINNED: FD (O_PATH, still the caller's) is the source as the caller
     * resolved it, and HOST its path. The runtime mounts that file and
     * refuses to start if HOST names another by then. Without it, the
     * runtime opens HOST itself (and still refuses if HOST changes between
     * that open and the mount). */
    bool pinned;
    int fd;
};

/* Parse -v SPEC "HOST:CTR[:ro|:rw]" into RET (strings newly allocated; free
 * with chrun_volume_release). CTR must be absolute; HOST must be non-empty.
 * Returns 0, or -1 with ERR (CHRUN_E_USAGE) set. */
int chrun_volume_parse(struct chrun_volume *ret, const char *spec, struct chrun_err *err);

/* Free the strings of V; safe on a zeroed struct. */
void chrun_volume_release(struct chrun_volume *v);

#endif
