/* Image trees: an image unpacked once into a read-only tree that throwaway
 * runs (`chrun run --rm`) mount overlayfs over, instead of copying it.
 *
 * Layout under $CHRUN_ROOT:
 *   trees/<manifest hex>/rootfs     the image's root filesystem, made by
 *                                   chrun_bundle_unpack; never written after
 *   trees/<manifest hex>/tree.json  that bundle's config.json, renamed so the
 *                                   tree is no bundle: chrun-exec of a tree
 *                                   path is refused and cannot write it
 *   trees/.<hex>.tmp-<random>/      a tree being made; renamed into place
 *                                   when complete, so a tree exists only
 *                                   whole (kill -9 leaves this; gc removes it)
 *   runs/<hex>.<random>/            one use of tree <hex>: the bundle a run
 *                                   executes (config.json, a hard link of
 *                                   tree.json; rootfs, the mount point;
 *                                   upper and work, the overlay's), and
 *                                   "lock", held (flock) while it is in use
 *   runs/.<hex>.<random>/           a use being set up (renamed when locked)
 *
 * A use is alive while its lock is held. The lock's descriptor is inherited
 * by the command (see chrun_tree_use_begin), so it lasts while any process
 * of the run lives, even after a SIGKILL of `chrun run`. The overlay itself
 * lives only in the run's private mount namespace and dies with it; what a
 * killed run leaves is its runs/ directory, which the next use or gc
 * removes once its lock is free. Trees hold no lock: they are only created
 * and used under the store's shared gc lock, and gc (exclusive) keeps a tree
 * while a named image has its manifest or a live use names it. */
#ifndef CHRUN_TREE_H
#define CHRUN_TREE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "chrun/err.h"
#include "chrun/runtime.h"
#include "chrun/store.h"

/* One use of a tree. */
struct chrun_tree_use {
    char bundle[PATH_MAX]; /* runs/<name>: the bundle to run, absolute */
    char lower[PATH_MAX];  /* trees/<hex>/rootfs */
    char upper[PATH_MAX];  /* runs/<name>/upper */
    char work[PATH_MAX];   /* runs/<name>/work */
    struct chrun_exec_overlay overlay; /* points at the three paths above */
    char name[NAME_MAX + 1];           /* <hex>.<random> */
    int runs_fd;                       /* runs/, or -1 */
    int lock_fd;                       /* runs/<name>/lock, flock held, or -1 */
};

/* A tree being made: trees/.<hex>.tmp-<random>/, flock held while it lives,
 * with the bundle to fill at BUNDLE (that directory's "b"). */
struct chrun_tree_staging {
    struct chrun_digest md;    /* the image manifest the tree is of */
    int trees_fd;              /* trees/, or -1 */
    int dir_fd;                /* the staging directory (lock held), or -1 */
    char name[NAME_MAX + 1];   /* its name under trees/, "" once gone */
    char bundle[PATH_MAX];     /* absolute path of its "b", not yet made */
};

/* Make a staging directory for the tree of manifest MD in TS (stale ones
 * whose lock is free are removed first). The caller fills TS->bundle as a
 * bundle (rootfs/ and config.json), then publishes. Returns 0 or -1 with
 * ERR set; either way end with chrun_tree_staging_release. */
int chrun_tree_staging_begin(struct chrun_store *st, const struct chrun_digest *md,
                             struct chrun_tree_staging *ts, struct chrun_err *err);

/* Rename the filled bundle into place as trees/<hex> (a tree a concurrent
 * maker published first is kept). Returns 0 or -1 with ERR set. */
int chrun_tree_staging_publish(struct chrun_tree_staging *ts, struct chrun_err *err);

/* Remove what is left of the staging directory and close TS's fds. Safe
 * after a failed begin. */
void chrun_tree_staging_release(struct chrun_tree_staging *ts);

/* Whether the store has a (complete) tree of manifest MD. */
bool chrun_tree_exists(struct chrun_store *st, const struct chrun_digest *md);

/* Begin a use of IMAGE's tree (IMAGE as chrun_store_resolve takes it;
 * PLATFORM picks from an index, NULL = host), unpacking the tree first when
 * the store has none for its manifest. Stale uses (lock free) are removed
 * first. USE->lock_fd is deliberately not close-on-exec: a command run from
 * USE->bundle inherits it, and the use stays alive while it runs. The store
 * may be closed afterwards. Returns 0 (end with chrun_tree_use_end) or -1
 * with ERR set and nothing to end. */
int chrun_tree_use_begin(struct chrun_store *st, const char *image, const char *platform,
                         struct chrun_tree_use *use, struct chrun_err *err);

/* End USE: close its lock and remove its directory, unless a process of the
 * run still holds the lock (then the next use or gc removes it). Safe on a
 * zeroed struct with runs_fd and lock_fd -1. Returns 0 or -1 with ERR set
 * (the removal failed). */
int chrun_tree_use_end(struct chrun_tree_use *use, struct chrun_err *err);

/* An ordinary user's overlay mount leaves directories of mode 0 in its work
 * directory WORKDIR (relative to DIRFD): give them 0700 so that their owner
 * can remove WORKDIR. Nothing to do for root; best effort (the removal that
 * follows reports what stays). */
void chrun_tree_overlay_work_release(int dirfd, const char *workdir);

/* For chrun-gc, under the store's exclusive lock: remove the uses whose lock
 * is free, the unfinished ones, unfinished trees, and every tree for which
 * NAMED(hex, DATA) is false and that no live use names. DRY_RUN removes
 * nothing. *RET_REMOVED counts the trees removed (or that would be).
 * Returns 0 or -1 with ERR set. */
int chrun_tree_gc(struct chrun_store *st, bool (*named)(const char *hex, void *data), void *data,
                  bool dry_run, uint64_t *ret_removed, struct chrun_err *err);

#endif
