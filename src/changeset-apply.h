/* The image-spec changeset rules, written once: how the entries of a layer
 * change the tree the lower layers made. Not installed.
 *
 * src/changeset.c goes the other way: it compares two rootfs snapshots and
 * writes the layer (a changeset) a build step made. This module reads one:
 * it interprets each tar entry of a layer (or of an ADD tarball) against a
 * back-end that holds the tree, through a small table of operations:
 *  - the disk back-end (src/layer.c) changes a rootfs directory: chrun-unpack,
 *    chrun-build (FROM layers and ADD);
 *  - the tree back-end (src/export-tree.c) changes an in-memory model of the
 *    merged tree: chrun-export's first pass.
 * So unpack and export cannot drift: both see one rule for each case.
 *
 * The rules (SPEC "Bad input" for the safety ones):
 *  - ".wh.NAME" removes NAME (and all below it) from lower layers; an entry
 *    the same layer gave stays (image-spec: a whiteout hides only lower
 *    layers). ".wh..wh..opq" empties its directory the same way. Other
 *    ".wh..wh.*" names are aufs bookkeeping and are skipped.
 *  - A whiteout (plain or opaque) whose directory is not a directory reached
 *    without symlinks (a file, a symlink, a device, absent) deletes nothing
 *    and follows nothing (umoci writes such whiteouts when a directory
 *    became a file).
 *  - A whiteout naming no entry ("", ".", "..") is refused.
 *  - In a tarball (chrun-build ADD) a ".wh." name is refused: no image layer
 *    could carry it as a file.
 *  - "" (the root) must be a directory and is never replaced.
 *  - The parent of an entry resolves in the root as the container sees it
 *    (bin -> usr/bin, then bin/sh is usr/bin/sh); missing parents are made
 *    as directories 0755 (implicit parents); a parent that exists but is not
 *    a directory inside the root (a file, a symlink leading out, a loop) is
 *    an error.
 *  - An entry replaces whatever is at its path (removed first, never written
 *    through), except a directory onto a directory, which merges (the newest
 *    entry's mode, owner and times win; extended attributes add up).
 *  - A hardlink target is reached without symlinks (a tar writer records
 *    real paths), exists, and is no directory; a hardlink onto the file it
 *    names already is nothing; a hardlink whose target lies inside the path
 *    it replaces is refused (removing the old entry would remove the target).
 *  - Symlinks need a target; other types than file, directory, symlink,
 *    hardlink, FIFO, character and block device are refused. */
#ifndef CHRUN_CHANGESET_APPLY_H
#define CHRUN_CHANGESET_APPLY_H

#include <stdbool.h>
#include <sys/types.h>

#include "chrun/err.h"
#include "chrun/fs.h"
#include "path-set.h"

#define CHANGESET_WHITEOUT_PREFIX ".wh."
#define CHANGESET_WHITEOUT_META_PREFIX ".wh..wh."
#define CHANGESET_WHITEOUT_OPAQUE ".wh..wh..opq"

struct archive;
struct archive_entry;

/* A directory of the tree as a back-end names it. */
struct changeset_dir {
    int fd;     /* disk: a directory fd, -1 when none */
    bool owned; /* disk: close_dir closes fd */
    void *node; /* tree: its directory node */
};

/* What a back-end does; BE is its state. PATH arguments are the entry's
 * normalized name, for messages. Every function returning int gives 0 or -1
 * with ERR set, unless it says otherwise. */
struct changeset_ops {
    /* Resolve directory DIR ("" = the root) as HOW says (CHRUN_FS_IN_ROOT or
     * CHRUN_FS_BENEATH_NO_SYMLINKS) into *RET. Returns 0; 1 when DIR does not
     * resolve to a directory, with *RET_ERRNO (ENOENT, ENOTDIR, ELOOP,
     * EXDEV, ENAMETOOLONG); -1 on any other failure, with ERR. */
    int (*open_dir)(void *be, const char *dir, enum chrun_fs_resolve how,
                    struct changeset_dir *ret, int *ret_errno, struct chrun_err *err);
    void (*close_dir)(void *be, struct changeset_dir *d);
    /* Make DIR and its missing parents (mode 0755), resolved in the root; an
     * existing non-directory is an error naming it. */
    int (*mkdir_p)(void *be, const char *dir, struct chrun_err *err);
    /* What is at D/NAME (never followed): 0 nothing, 1 a directory, 2
     * anything else; -1 with ERR. */
    int (*kind)(void *be, const struct changeset_dir *d, const char *name, struct chrun_err *err);
    /* True if D1/N1 and D2/N2 are one file (one inode). */
    bool (*same_file)(void *be, const struct changeset_dir *d1, const char *n1,
                      const struct changeset_dir *d2, const char *n2);
    /* Remove D/NAME and everything below it; nothing there is fine. */
    int (*remove)(void *be, const struct changeset_dir *d, const char *name, const char *path,
                  struct chrun_err *err);
    /* The names in D: a new array of new strings (chrun_fs_names_free). */
    int (*list)(void *be, const struct changeset_dir *d, char ***ret_names, size_t *ret_n,
                struct chrun_err *err);
    /* Directory entry E at D/NAME; EXISTS: a directory is there (merge). */
    int (*dir)(void *be, const struct changeset_dir *d, const char *name, const char *path,
               struct archive_entry *e, bool exists, struct chrun_err *err);
    /* File, symlink or device entry E at the free name D/NAME; a file's
     * data is read from TAR. */
    int (*inode)(void *be, const struct changeset_dir *d, const char *name, const char *path,
                 struct archive *tar, struct archive_entry *e, struct chrun_err *err);
    /* Hardlink the free name D/NAME to TD/TNAME (no directory). LINK is the
     * target as the entry gives it, for messages. */
    int (*hardlink)(void *be, const struct changeset_dir *td, const char *tname,
                    const struct changeset_dir *d, const char *name, const char *path,
                    const char *link, struct chrun_err *err);
    /* The entry for the root itself (a directory). */
    int (*root)(void *be, struct archive_entry *e, struct chrun_err *err);
};

/* The interpreter: a back-end and the state the rules carry. */
struct changeset_applier {
    const struct changeset_ops *ops;
    void *be;
    struct path_set layer_paths; /* names the current layer gave */
    bool tarball;                /* ADD: a ".wh." name is refused */
};

/* Fill A for back-end OPS with state BE. Nothing to fail. */
void changeset_applier_init(struct changeset_applier *a, const struct changeset_ops *ops,
                            void *be);

/* Start a new layer: whiteouts of the next entries hide what came before. */
void changeset_applier_begin_layer(struct changeset_applier *a);

/* Apply one entry: E read from TAR, PATH and TARGET (the hardlink name, or
 * NULL) as chrun_layer_read normalized them. Returns 0 or -1 with ERR. */
int changeset_apply_entry(struct changeset_applier *a, struct archive *tar,
                          struct archive_entry *e, const char *path, const char *target,
                          struct chrun_err *err);

/* Free what A holds (not the back-end). */
void changeset_applier_release(struct changeset_applier *a);

#endif
