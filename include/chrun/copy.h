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

/* Which context entries COPY/ADD and the cache hashing leave out (the
 * .dockerignore seam). IGNORED gets the path relative to the source root
 * ("dir/file", no leading "./" or "/") and whether it is a directory; an
 * ignored directory is skipped with everything below it. A source named
 * explicitly that is ignored is "not found"; wildcard matches that are
 * ignored are skipped. */
struct chrun_copy_filter {
    bool (*ignored)(void *data, const char *relpath, bool is_dir);
    void *data;
};

struct chrun_copy {
    int ctxfd;         /* source root: the build context, or a stage's rootfs */
    bool src_in_root;  /* sources resolve in CTXFD as in a container (a stage or
                        * image: absolute symlinks are fine), else beneath it */
    int rootfd;        /* rootfs directory */
    const char *dest;  /* absolute destination inside the rootfs */
    bool chown;        /* set owners to uid:gid (else 0:0) */
    uid_t uid;
    gid_t gid;
    bool chmod;        /* COPY/ADD --chmod: MODE on every file and directory */
    mode_t mode;
    bool extract;      /* ADD: unpack tar archives */
    int tmpfd;         /* a scratch directory (ADD --chown/--chmod of an archive
                        * extracts there first), or -1 */
    const struct chrun_copy_filter *filter; /* NULL: nothing ignored */
};

/* Copy SRCS (N context paths) as COPY/ADD do: into DEST when it ends with
 * '/', when there are several sources, or when DEST is a directory; else to
 * DEST itself. Returns 0 or -1 (the rootfs may be half-changed). */
int chrun_copy_run(const struct chrun_copy *c, char *const *srcs, size_t n,
                   struct chrun_err *err);

/* Digest of what SRCS name in the context: for every file below them its
 * relative name, type, permission bits, symlink target and bytes (not
 * mtimes or owners), for the step cache. Returns 0 or -1. */
int chrun_copy_hash(int ctxfd, char *const *srcs, size_t n,
                    const struct chrun_copy_filter *filter, struct chrun_digest *ret,
                    struct chrun_err *err);

/* If the file at FD is a tar (plain, gzip or zstd), set *RET_IS_TAR and
 * unpack it into directory DESTFD with the layer applier's safety rules
 * (".." and absolute names refused); else leave DESTFD alone. Returns 0 or
 * -1. */
int chrun_copy_extract(int fd, int destfd, bool *ret_is_tar, struct chrun_err *err);

/* Create directory PATH (absolute in the rootfs ROOTFD) and its missing
 * parents (0755, root), resolving existing components in the root as the
 * container would (WORKDIR, COPY destinations). Returns 0 or -1. */
int chrun_copy_mkdir(int rootfd, const char *path, struct chrun_err *err);

#endif
