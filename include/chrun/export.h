/* Export: an image's or a bundle's root filesystem as one flattened tar
 * stream, like `docker export`.
 *
 * An image is exported straight from its layer blobs, never unpacked to
 * disk: owners, modes, device numbers and xattrs come from the layer tar
 * headers, so the tar is the same whether root or an ordinary user runs it,
 * and file data streams from the layer to the output in fixed buffers.
 * Two passes read every layer (each checked against its digest and
 * diff_id): the first replays the image-spec changeset rules as
 * chrun_layer_apply does (whiteouts, opaque directories, replacement,
 * directory merge, hardlinks, parents resolved in the root through
 * symlinks) on an in-memory tree of paths; the second writes each surviving
 * entry at the point of the layer stream that carries it. Memory grows with
 * the number of paths, never with file sizes.
 *
 * The tar is POSIX pax: names relative to the root without "./" and without
 * an entry for the root itself, every path once, no whiteouts; regular
 * files that share an inode become one file and hardlinks to it. */
#ifndef CHRUN_EXPORT_H
#define CHRUN_EXPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/manifest.h"
#include "chrun/store.h"

/* Export layers N (bottom first) read from BLOB_FDS (seekable, rewound by
 * this function; not closed), described by DESCS and checked against
 * DIFF_IDS, as one tar written to OUT_FD. Fails with CHRUN_E_DIGEST or
 * CHRUN_E_INPUT (naming the layer digest and the entry) when a layer is bad:
 * every layer is read and checked once before the first byte is written, so
 * a bad image writes nothing. A write error is CHRUN_E_SYS. Returns 0 or -1. */
int chrun_export_layers(const int *blob_fds, const struct chrun_descriptor *descs,
                        const struct chrun_digest *diff_ids, size_t n, int out_fd,
                        struct chrun_err *err);

/* Export the stored image IMAGE (anything chrun_store_resolve takes; for an
 * index the entry of PLATFORM, NULL = host) to OUT_FD. Returns 0 or -1. */
int chrun_export_image(struct chrun_store *st, const char *image, const char *platform,
                       int out_fd, struct chrun_err *err);

/* Export BUNDLE/rootfs (a directory, e.g. made by chrun-unpack) to OUT_FD:
 * symlinks are never followed, mount points below rootfs are not crossed,
 * hardlinks stay hardlinks, owners and xattrs are read from the files.
 * Returns 0 or -1. */
int chrun_export_bundle(const char *bundle, int out_fd, struct chrun_err *err);

/* True if OPERAND names an existing directory, i.e. a bundle rather than an
 * image reference. */
bool chrun_export_operand_is_bundle(const char *operand);

#endif
