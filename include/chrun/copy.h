/* COPY and ADD of chrun-build: files from a build context into a rootfs.
 *
 * Sources resolve inside the context only (openat2 RESOLVE_BENEATH: a ".."
 * or a symlink leading out of it fails with CHRUN_E_INPUT); a leading '/' is
 * the context's root; a wildcard (*?[) is allowed in the last component.
 * Symlinks below a copied directory are copied as symlinks, never followed.
 * The destination resolves inside the rootfs as the container sees it
 * (RESOLVE_IN_ROOT: an image symlink "/evil -> /tmp/x" makes "COPY f /evil/"
 * land in ROOTFS/tmp/x, never on the host); missing directories are created
 * (0755, root). Copies keep mode and mtime and get owner 0:0 or --chown's.
 * ADD extracts a local tar (plain, gzip or zstd) into the destination
 * directory through the layer applier, with its safety rules (entries with
 * ".." or absolute names are refused); other files are copied. */
#ifndef CHRUN_COPY_H
#define CHRUN_COPY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "chrun/digest.h"
#include "chrun/err.h"

struct chrun_copy {
    int ctxfd;         /* build context directory */
    int rootfd;        /* rootfs directory */
    const char *dest;  /* absolute destination inside the rootfs */
    bool chown;        /* set owners to uid:gid (else 0:0) */
    uid_t uid;
    gid_t gid;
    bool extract;      /* ADD: unpack tar archives */
};

/* Copy SRCS (N context paths) as COPY/ADD do: into DEST when it ends with
 * '/', when there are several sources, or when DEST is a directory; else to
 * DEST itself. Returns 0 or -1 (the rootfs may be half-changed). */
int chrun_copy_run(const struct chrun_copy *c, char *const *srcs, size_t n,
                   struct chrun_err *err);

/* Digest of what SRCS name in the context: for every file below them its
 * relative name, type, permission bits, symlink target and bytes (not
 * mtimes or owners), for the step cache. Returns 0 or -1. */
int chrun_copy_hash(int ctxfd, char *const *srcs, size_t n, struct chrun_digest *ret,
                    struct chrun_err *err);

/* Create directory PATH (absolute in the rootfs ROOTFD) and its missing
 * parents (0755, root), resolving existing components in the root as the
 * container would (WORKDIR, COPY destinations). Returns 0 or -1. */
int chrun_copy_mkdir(int rootfd, const char *path, struct chrun_err *err);

#endif
