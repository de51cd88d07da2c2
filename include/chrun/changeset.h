/* Change sets of a root filesystem: what one build step changed, as an image
 * layer.
 *
 * A snapshot records every entry below a root (path, type, mode, owner,
 * size, mtime, ctime, inode, symlink target, device number), walking it
 * without following any symlink, like umoci's mtree-based repack. Two
 * snapshots of the same root, taken before and after a step, give the
 * change set:
 *  - an entry only in AFTER is added; one in both is modified when its type,
 *    mode, owner, symlink target or device changed, or, for non-directories,
 *    its size, mtime, ctime or inode (ctime also catches xattr changes and
 *    rewrites that kept the mtime); a directory is modified when its mtime
 *    changed (its ctime moves with every entry added or removed inside it);
 *  - an entry only in BEFORE is deleted and becomes a ".wh.NAME" whiteout,
 *    unless an ancestor is itself deleted or no longer a directory (the
 *    ancestor's whiteout or replacement covers it). Directories replaced
 *    wholesale get one whiteout per lost entry, never ".wh..wh..opq": the
 *    layer then says exactly what went away.
 * The layer tar holds the added and modified entries and the whiteouts, plus
 * their parent directories (so an applier re-creates the path with the
 * right metadata), sorted by path, in pax restricted format, owners numeric,
 * no user or group names, no atime or ctime, mtimes clamped to a given
 * SOURCE_DATE_EPOCH, hardlinked files as one file and hardlinks. It is
 * gzip-compressed without a timestamp (libarchive's gzip filter) and
 * streamed into a store blob writer while the uncompressed stream is hashed
 * for the diff_id: nothing is held in memory. Extended attributes are not
 * recorded. chrun_changeset_write_upper writes the same layer format from an
 * overlayfs upper directory instead of two snapshots. */
#ifndef CHRUN_CHANGESET_H
#define CHRUN_CHANGESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/store.h"

struct chrun_snapshot;

/* Record every entry below ROOTFD (not followed, not closed). Returns a new
 * snapshot (free with chrun_snapshot_free), or NULL with ERR set. */
struct chrun_snapshot *chrun_snapshot_take(int rootfd, struct chrun_err *err);

void chrun_snapshot_free(struct chrun_snapshot *s);

enum chrun_change_kind {
    CHRUN_CHANGE_ADD = 'A',
    CHRUN_CHANGE_MODIFY = 'M',
    CHRUN_CHANGE_DELETE = 'D',
};

/* Call FN for each change from BEFORE to AFTER, in path order (deletions
 * already reduced to the topmost deleted entry). PATH is relative to the
 * root ("etc/passwd"). FN returns 0 to go on or -1 to stop with its ERR.
 * Returns 0 or -1. */
int chrun_changeset_diff(const struct chrun_snapshot *before, const struct chrun_snapshot *after,
                         int (*fn)(void *data, enum chrun_change_kind kind, const char *path,
                                   struct chrun_err *err),
                         void *data, struct chrun_err *err);

/* The layer written by chrun_changeset_write_layer. */
struct chrun_changeset_layer {
    bool empty;                /* no changes: nothing was written */
    struct chrun_digest digest;  /* of the gzip blob */
    struct chrun_digest diff_id; /* of the uncompressed tar */
    int64_t size;              /* of the gzip blob */
};

/* Write the changes from BEFORE to AFTER (both snapshots of ROOTFD) as a
 * gzip layer blob into ST. CLAMP_MTIME >= 0 caps every mtime at that many
 * seconds since the epoch (SOURCE_DATE_EPOCH); -1 keeps them. A file that
 * changed since AFTER was taken fails with CHRUN_E_INPUT. The blob appears
 * only once complete and verified. Returns 0 or -1. */
int chrun_changeset_write_layer(struct chrun_store *st, int rootfd,
                                const struct chrun_snapshot *before,
                                const struct chrun_snapshot *after, int64_t clamp_mtime,
                                struct chrun_changeset_layer *ret, struct chrun_err *err);

/* Flags of chrun_changeset_write_upper. */
enum chrun_changeset_upper_flags {
    /* the overlay was mounted with userxattr (an ordinary user's mount): its
     * markers are user.overlay.* instead of trusted.overlay.* */
    CHRUN_CHANGESET_USERXATTR = 1 << 0,
};

/* The third input of the changeset rules (after layer tars and snapshot
 * pairs): the upper directory UPPERFD (not closed) of an overlayfs that ran
 * one step over the lower tree LOWERFD (not closed; read only for the
 * bytes of metacopy files and moved directories, else probed, see 1 below)
 * and is unmounted now. The upper's entries are the step's changes:
 * each is written whole, as chrun_changeset_write_layer writes an added or
 * modified entry (an entry overlayfs copied up for a metadata change, or
 * that was only opened for writing, goes in whole, as Docker writes it); a
 * whiteout (character device 0/0) becomes ".wh.NAME"; a directory whose
 * overlay.opaque xattr is "y" gets ".wh..wh..opq" (entries of the same
 * layer survive it); a metacopy file (overlay.metacopy xattr, metacopy=on:
 * only its metadata was copied up) goes in whole with its metadata from the
 * upper and its bytes from the lower file overlayfs reads: NAME in its
 * parent's lower directory, or the path its overlay.redirect xattr names
 * (absolute from the lower root, or a name in that directory); a
 * redirected directory (a renamed lower directory, redirect_dir=on) goes in
 * as its whole moved tree: the upper's entries merged over the lower
 * directory the redirect names, its whiteouts honoured and not written.
 * Lower entries are opened below LOWERFD through real directories only; an
 * upper metacopy file's own bytes are never read. Only the upper is walked
 * (and the lower directories of moved ones), so it costs what changed, not
 * the size of the tree. FLAGS: enum chrun_changeset_upper_flags.
 * CLAMP_MTIME as chrun_changeset_write_layer.
 * Returns 0 with *RET set (empty: no changes, nothing written); 1 when the
 * upper alone does not say what the step would have done on one tree,
 * nothing written, *RET empty: a directory renamed onto a name the lower
 * has too, or also opaque, or whose redirect leads to no lower directory; a
 * metacopy file with several upper names; or a copied-up or removed name
 * of a lower file with more than one link (overlayfs broke the link, so the
 * other names kept the old file; a removal changes their link count); -1 with ERR set (CHRUN_E_INPUT for a redirect
 * overlayfs never writes, or a metacopy file whose lower file is missing,
 * not a regular file or not of its size). */
int chrun_changeset_write_upper(struct chrun_store *st, int upperfd, int lowerfd, unsigned flags,
                                int64_t clamp_mtime, struct chrun_changeset_layer *ret,
                                struct chrun_err *err);

#endif
