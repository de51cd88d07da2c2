/* The layer applier: one image layer stream onto a root filesystem directory.
 *
 * A layer streams blob fd -> SHA-256 of the compressed bytes (checked against
 * the descriptor's digest and size) -> gzip/zstd decompression (chosen by the
 * media type, checked against the magic bytes) -> SHA-256 of the tar stream
 * (checked against config.rootfs.diff_ids[i]) -> tar reader -> disk, in one
 * pass over fixed buffers. Decompression and hashing run on a second thread,
 * so two cores share the work; small regular files are created, written and
 * given their metadata by a few more (chrun_layer_applier_set_threads), each
 * with a copy of its data, at most 16 MiB in all; memory does not grow with
 * the layer.
 *
 * The image-spec changeset rules apply, as src/changeset-apply.h writes them
 * once for chrun-unpack, chrun-build and chrun-export: ".wh.NAME" removes
 * NAME of lower layers, ".wh..wh..opq" empties its directory of lower-layer
 * entries, a whiteout whose directory is not a directory reached without
 * symlinks deletes nothing, an entry replaces whatever was at its path
 * (removed first, never written through), directories merge. Safety rules
 * (SPEC "Bad input"):
 *  - entry and hardlink names that are absolute or hold a ".." component are
 *    refused (CHRUN_E_INPUT);
 *  - the parent directory of an entry resolves inside the root as the
 *    container would see it (CHRUN_FS_IN_ROOT: "bin -> usr/bin" then "bin/sh"
 *    lands in usr/bin/sh); missing parents are made 0755; a parent that does
 *    not exist inside the root (a symlink naming a host path) is an error,
 *    never created through the link;
 *  - hardlink targets resolve without any symlink (a tar writer records real
 *    paths), else CHRUN_E_INPUT;
 *  - the last component is never followed.
 * Directory modes and mtimes are applied by chrun_layer_applier_finish, after
 * all contents exist (so read-only directories of an image can still be
 * filled by an unprivileged user). Run as root, owners, device nodes and
 * trusted.* xattrs are kept; run as an ordinary user, files belong to that
 * user and device nodes are skipped, each with one warning per applier. */
#ifndef CHRUN_LAYER_H
#define CHRUN_LAYER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/manifest.h"

struct archive;
struct archive_entry;

/* Called by chrun_layer_read for every tar entry, whiteouts included, in
 * stream order. PATH is the entry name normalized ("./a//b/" -> "a/b", ""
 * for the root); TARGET the normalized hardlink name, or NULL for anything
 * but a hardlink. FN may read the entry's data from TAR
 * (archive_read_data_block) and must not keep E or TAR past the call.
 * Returns 0, or -1 with ERR to stop reading. */
typedef int chrun_layer_entry_fn(struct archive *tar, struct archive_entry *e, const char *path,
                                 const char *target, void *data, struct chrun_err *err);

/* Read one layer from BLOB_FD (positioned at its start; not closed), checked
 * as chrun_layer_apply checks it, and call FN(..., DATA, ERR) for each entry.
 * Names that are absolute or hold a ".." component fail with CHRUN_E_INPUT
 * before FN sees them. The digests are known to match only when this returns
 * 0: entries handed to FN before a mismatch came from unverified bytes.
 * Errors carry "layer <digest>: " in front. Returns 0 or -1. */
int chrun_layer_read(int blob_fd, const struct chrun_descriptor *desc,
                     const struct chrun_digest *diff_id, chrun_layer_entry_fn *fn, void *data,
                     struct chrun_err *err);

/* After archive_read_next_header returned ARCHIVE_WARN on the tar reader
 * TAR: true when the warning only says that a name could not be converted to
 * the locale's character set (the entry keeps the name's raw bytes); false
 * for every other warning, such as a malformed PAX record, which readers of
 * layers and archives treat as damage. */
bool chrun_layer_tar_warning_benign(struct archive *tar);

/* Opaque state carried across the layers of one rootfs: deferred directory
 * metadata and the warnings already given. Not thread-safe. */
struct chrun_layer_applier;

/* Start applying layers to the directory ROOTFD (kept open by the caller
 * until chrun_layer_applier_free). Returns a new applier, or NULL with ERR. */
struct chrun_layer_applier *chrun_layer_applier_new(int rootfd, struct chrun_err *err);

/* Apply one layer read from BLOB_FD (positioned at its start; not closed).
 * DESC gives the media type (compression), digest and size the bytes must
 * match; DIFF_ID the digest of the uncompressed tar stream. Mismatches fail
 * with CHRUN_E_DIGEST, corrupt or truncated streams and hostile entries with
 * CHRUN_E_INPUT, unsupported media types with CHRUN_E_UNSUPPORTED. On failure
 * the rootfs is left half-applied: the caller discards it. Returns 0 or -1. */
int chrun_layer_apply(struct chrun_layer_applier *a, int blob_fd,
                      const struct chrun_descriptor *desc, const struct chrun_digest *diff_id,
                      struct chrun_err *err);

/* Where a layer's bytes come from when no descriptor holds them all yet
 * (a blob still downloading, see chrun-pull --tree): READ(DATA, BUF, CAP,
 * ERR) waits for and copies up to CAP bytes of the blob into BUF, in order,
 * and returns how many: fewer than CAP only at the blob's end (0 there), or
 * -1 with ERR set. It is called from the layer's producer thread. */
struct chrun_layer_source {
    ssize_t (*read)(void *data, void *buf, size_t cap, struct chrun_err *err);
    /* Optional (NULL: always true), asked from the applier's thread while
     * READ may run: whether the source holds more bytes than the applier
     * has taken, i.e. the applier, not the source, sets the pace. Only
     * then are files made on the pool's threads; while the applier waits
     * for bytes (a slow link) it makes them itself, and the pool's extra
     * kernel time does not slow the download beside it. */
    bool (*behind)(void *data);
    void *data;
};

/* chrun_layer_apply with the blob's bytes read from SRC. The same checks
 * apply: the digest and size of what SRC gave, the diff_id, every entry. */
int chrun_layer_apply_source(struct chrun_layer_applier *a, const struct chrun_layer_source *src,
                             const struct chrun_descriptor *desc,
                             const struct chrun_digest *diff_id, struct chrun_err *err);

/* Set the modes, owners and mtimes of directories, deepest first, once every
 * layer is applied. Returns 0 or -1. */
int chrun_layer_applier_finish(struct chrun_layer_applier *a, struct chrun_err *err);

/* With TARBALL, the stream is a plain tarball (chrun-build's ADD), not a
 * layer: an entry named ".wh.*" is refused (CHRUN_E_INPUT) rather than
 * deleting anything, since no image layer could carry such a file. */
void chrun_layer_applier_set_tarball(struct chrun_layer_applier *a, bool tarball);

/* Create regular files on THREADS threads (1: all on the caller's thread;
 * 0: the default, CHRUN_APPLY_THREADS or 2 to 4 by the CPU count) while the
 * stream is read. The changeset rules hold as with one thread: a name is
 * looked at or changed only once the file a thread makes there is complete,
 * a whiteout or a replaced directory waits for every file below it, and a
 * layer ends only when all its files are complete, failing with the error
 * of the first entry that failed. */
void chrun_layer_applier_set_threads(struct chrun_layer_applier *a, unsigned threads);

/* Free the applier (NULL is fine). Does not close ROOTFD. */
void chrun_layer_applier_free(struct chrun_layer_applier *a);

#endif
