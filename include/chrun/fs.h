/* Directory-fd relative file operations that never follow what an image controls. */
#ifndef CHRUN_FS_H
#define CHRUN_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "chrun/err.h"

/* Symlink hops allowed while resolving one path inside a root: the kernel's
 * own limit (MAXSYMLINKS, which openat2 applies), so that the fallback walk
 * and the exporter's model open exactly what openat2 opens. */
#define CHRUN_FS_MAX_HOPS 40

/* How a path below a directory fd resolves (the openat2 RESOLVE_* modes that
 * chrun uses; magic links such as /proc/self/fd/N are never followed):
 *  IN_ROOT: as the container would see it: absolute symlinks and ".." resolve
 *    against the directory, never the host (a rootfs: bin -> /usr/bin).
 *  BENEATH: symlinks are followed while they stay below the directory; an
 *    absolute path or symlink, or ".." past the directory, fails with EXDEV
 *    (a build context, an archive directory).
 *  BENEATH_NO_SYMLINKS: BENEATH, and any symlink on the way fails with ELOOP
 *    (a final symlink opens only with O_PATH|O_NOFOLLOW, as open(2) does):
 *    paths a tar writer or a snapshot recorded, which never cross a link. */
enum chrun_fs_resolve {
    CHRUN_FS_IN_ROOT = 0,
    CHRUN_FS_BENEATH,
    CHRUN_FS_BENEATH_NO_SYMLINKS,
};

/* Open PATH below DIRFD resolved as HOW says: openat2, or on kernels without
 * it (ENOSYS, or EPERM from a seccomp filter) chrun_fs_walk_at, which gives
 * the same result. FLAGS are open(2) flags; O_CLOEXEC is always added; MODE
 * is used with O_CREAT. "" names DIRFD itself. Returns a new fd (close it),
 * or -1 with ERR set: CHRUN_E_SYS and errnum as openat2 gives it (ENOENT,
 * ENOTDIR, ELOOP for a loop, more than CHRUN_FS_MAX_HOPS links or a link
 * NO_SYMLINKS refuses, EXDEV for an escape), the message naming PATH. */
int chrun_fs_open_at(int dirfd, const char *path, int flags, mode_t mode,
                     enum chrun_fs_resolve how, struct chrun_err *err);

/* chrun_fs_open_at(ROOTFD, PATH, FLAGS, MODE, CHRUN_FS_IN_ROOT, ERR). */
int chrun_fs_open_in_root(int rootfd, const char *path, int flags, mode_t mode,
                          struct chrun_err *err);

/* The fallback of chrun_fs_open_at, exposed for tests: one component at a
 * time with O_PATH|O_NOFOLLOW, symlinks expanded as HOW says, at most
 * CHRUN_FS_MAX_HOPS hops (then ELOOP); the fd opened is checked to lie under
 * DIRFD (EXDEV if not). Same returns as chrun_fs_open_at. */
int chrun_fs_walk_at(int dirfd, const char *path, int flags, mode_t mode,
                     enum chrun_fs_resolve how, struct chrun_err *err);

/* With ON, chrun_fs_open_at (and so everything built on it) always walks, as
 * on a kernel without openat2. For unit tests only; process-wide, so set it
 * while no other thread resolves paths. */
void chrun_fs_force_walk(bool on);

/* Flags of chrun_fs_mkdir_p_in_root. */
enum chrun_fs_mkdir_flags {
    /* A symlink to a missing path: create that path, resolved in the root
     * (docker's COPY to a destination through an image symlink). Without it,
     * such a symlink is an existing non-directory. */
    CHRUN_FS_MKDIR_THROUGH_DANGLING = 1 << 0,
};

/* mkdir -p of PATH inside ROOTFD, each component resolved in the root
 * (CHRUN_FS_IN_ROOT). The one rule: an existing directory (or a symlink
 * resolving to one inside the root) is fine; an existing non-directory is an
 * error naming that path: a file or a symlink to one ENOTDIR ("create
 * directory 'a/b' in root: Not a directory"), a symlink to nothing inside
 * the root CHRUN_E_INPUT ("'a/b' exists but is not a directory inside the
 * root"), a loop ELOOP. Directories made get exactly MODE (no umask).
 * Returns 0 or -1 with ERR set. */
int chrun_fs_mkdir_p_in_root(int rootfd, const char *path, mode_t mode, unsigned flags,
                             struct chrun_err *err);

/* The same, and each directory it creates gets owner UID:GID (directories
 * that exist keep theirs): the parents a `COPY --chown` creates. */
int chrun_fs_mkdir_p_in_root_owned(int rootfd, const char *path, mode_t mode, unsigned flags,
                                   uid_t uid, gid_t gid, struct chrun_err *err);

/* Open the parent directory of PATH inside ROOTFD (resolving in root) and
 * return its fd; *ret_base points into PATH at the last component, which is
 * never "." or "..". Trailing slashes are ignored. Returns fd or -1. */
int chrun_fs_open_parent_in_root(int rootfd, const char *path, const char **ret_base,
                                 struct chrun_err *err);

/* Create directory PATH (and missing parents) relative to DIRFD with MODE,
 * without following symlinks. Existing directories are fine. Returns 0 or -1. */
int chrun_fs_mkdir_p_at(int dirfd, const char *path, mode_t mode, struct chrun_err *err);

/* Open directory NAME relative to DIRFD (O_DIRECTORY|O_NOFOLLOW|O_CLOEXEC). */
int chrun_fs_open_dir_at(int dirfd, const char *name, struct chrun_err *err);

/* Called by chrun_fs_each_at for entry NAME of the directory DFD (valid
 * during the call only). Returns 0 to go on, -1 with ERR filled to stop. */
typedef int (*chrun_fs_entry_fn)(int dfd, const char *name, void *data, struct chrun_err *err);

/* Call FN(dfd, name, DATA, ERR) for each entry of directory DIRFD (any fd of
 * it, O_PATH too), "." and ".." left out, in readdir order, streaming: a
 * directory of any size costs no memory. FN may remove the entry it is given
 * (gc's sweep does); an entry created meanwhile may or may not be seen, so a
 * caller that must see a fixed set lists first (chrun_fs_list_at).
 * Returns 0, or -1 with ERR filled by FN or with "open directory" /
 * "read directory" (a directory that cannot be read to its end fails). */
int chrun_fs_each_at(int dirfd, chrun_fs_entry_fn fn, void *data, struct chrun_err *err);

/* The entry names of directory DIRFD (any fd of it, O_PATH too), "." and
 * ".." left out, in readdir order: a new array *RET_NAMES of *RET_N new
 * strings (free with chrun_fs_names_free). Listing first lets the caller
 * remove entries without skipping any. Returns 0 or -1 with ERR. */
int chrun_fs_list_at(int dirfd, char ***ret_names, size_t *ret_n, struct chrun_err *err);

/* Free N names and the array from chrun_fs_list_at (NULL is fine). */
void chrun_fs_names_free(char **names, size_t n);

/* Remove NAME relative to DIRFD and everything below it, never following
 * symlinks. A missing NAME is success. Returns 0 or -1. */
int chrun_fs_rm_rf_at(int dirfd, const char *name, struct chrun_err *err);

/* fsync a directory fd (after a rename into it). Returns 0 or -1. */
int chrun_fs_fsync_dir(int dirfd, struct chrun_err *err);

/* Replace NAME (a plain file name) in DIRFD with LEN bytes of DATA
 * atomically: write TMPDIRFD/atomic-NAME (same filesystem), fsync, rename over
 * NAME, fsync DIRFD. A crash leaves either the old or the new file, and at
 * most one temporary, which the next write reuses. Callers serialize writes
 * of one NAME (the store holds locks/index). Returns 0 or -1. */
int chrun_fs_write_atomic_at(int tmpdirfd, int dirfd, const char *name, const void *data,
                             size_t len, mode_t mode, struct chrun_err *err);

/* The same for writers that hold no lock: each write has its own temporary
 * (mkstemp), so concurrent writers of NAME never share one and the last
 * rename wins whole. A crash may leave a temporary; chrun-gc removes it. */
int chrun_fs_write_atomic_unlocked_at(int tmpdirfd, int dirfd, const char *name,
                                      const void *data, size_t len, mode_t mode,
                                      struct chrun_err *err);

/* Create a uniquely named file (O_EXCL) or directory in DIRFD from PREFIX;
 * the name is written to RET_NAME (size SIZE). chrun_fs_mkstemp_at returns
 * an O_RDWR fd; chrun_fs_mkdtemp_at returns 0. -1 on error. */
int chrun_fs_mkstemp_at(int dirfd, const char *prefix, char *ret_name, size_t size,
                        struct chrun_err *err);
int chrun_fs_mkdtemp_at(int dirfd, const char *prefix, char *ret_name, size_t size,
                        struct chrun_err *err);

/* A temporary directory that is never seen unlocked: made in DIRFD as
 * HIDDEN_PREFIX<random> (a name no sweeper looks at), locked with
 * flock(LOCK_EX), and only then renamed to SWEPT_PREFIX<random>, the name a
 * sweeper of stale temporaries (which removes only what it can lock) looks
 * for. The final name is written to RET_NAME (SIZE bytes). Returns the
 * directory's descriptor (O_RDONLY, close-on-exec, lock held: close it to
 * release), or -1 with ERR and nothing left. A crash between mkdir and
 * rename leaves a HIDDEN_PREFIX name, for chrun-gc. */
int chrun_fs_mkdtemp_locked_at(int dirfd, const char *hidden_prefix, const char *swept_prefix,
                               char *ret_name, size_t size, struct chrun_err *err);

/* Open the file that the O_PATH fd PATHFD refers to with FLAGS (open(2)
 * flags; O_CLOEXEC and O_NOCTTY are added), through /proc/self/fd, only if it
 * is a regular file: a device node or FIFO an image or archive placed is
 * never opened for real, so its open can neither block nor have side
 * effects. Callers name the file with chrun_err_prefix. Returns a new fd
 * (close it), or -1 with ERR set (CHRUN_E_INPUT when not a regular file). */
int chrun_fs_reopen_regular(int pathfd, int flags, struct chrun_err *err);

/* True if NAME exists relative to DIRFD (lstat semantics). */
bool chrun_fs_exists_at(int dirfd, const char *name);

/* Read PATH, resolved in DIRFD as chrun_fs_open_in_root does (symlinks
 * never leave DIRFD), into a new NUL-terminated buffer *RET_BUF (free it) of
 * *RET_LEN bytes, at most MAX (EFBIG beyond), only if it is a regular file:
 * a FIFO or device put there is never opened for reading ("not a regular
 * file", CHRUN_E_INPUT). A missing file gives 0 with *RET_BUF NULL. Errors
 * after the open are prefixed with 'PATH'. Returns 0 or -1. */
int chrun_fs_read_regular_at(int dirfd, const char *path, size_t max, char **ret_buf,
                             size_t *ret_len, struct chrun_err *err);

/* chrun_fs_read_regular_at for a file of an image's rootfs ROOTFD (account
 * files): errors after the open say 'PATH' of the image. */
int chrun_fs_read_regular_in_root(int rootfd, const char *path, size_t max, char **ret_buf,
                                  struct chrun_err *err);

#endif
