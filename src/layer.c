#include "chrun/layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "chrun/fs.h"
#include "chrun/inflate.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "apply-pool.h"
#include "changeset-apply.h"
#include "archive-error.h"
#include "cleanup.h"
#include "path-set.h"
#include "util.h"

/* Buffers queued between the decompressing thread and the tar reader:
 * 8 x CHRUN_IO_BUFSZ = 1 MiB in flight per layer. */
#define STREAM_SLOTS 8

/* A regular file up to this size is copied out of the stream and created by
 * the file creation threads (apply-pool.h); a larger one is written by the
 * applier's thread straight from the stream, once the jobs it depends on
 * are done. With APPLY_POOL_BYTES_MAX this bounds the copies in memory. */
#define POOL_FILE_MAX ((la_int64_t) 1 << 20)
/* File descriptors kept free for everything but the pool's jobs, each of
 * which holds a directory and, while it runs, its file: the pool never makes
 * a file fail for want of descriptors where one thread would not. */
#define POOL_FDS_SPARE 64
#define POOL_JOBS_MIN 8


/* ---- the applier ---- */

struct deferred_dir {
    char *path;   /* below the root, symlinks resolved (else the entry name) */
    dev_t dev;    /* the directory the entry made or kept, as created */
    ino_t ino;
    mode_t mode;
    struct timespec times[2];
    unsigned depth;
    size_t seq;
    bool apply;   /* finish: still there, and the last entry for that directory */
};

struct chrun_layer_applier {
    int rootfd;
    char root_path[PATH_MAX]; /* the root's /proc/self/fd path, "" if unknown */
    bool is_root;
    uid_t euid;
    gid_t egid;
    /* Parent directory of the last entry, reused while entries stay in it;
     * any removal makes it stale, since it may have unlinked that directory. */
    char cache_path[PATH_MAX];
    int cache_fd;
    bool cache_valid;
    dev_t cache_dev, root_dev; /* keys of the jobs made in them (apply-pool.h) */
    ino_t cache_ino, root_ino;
    unsigned threads;            /* 1: no pool, every file made in line */
    const struct chrun_layer_source *src; /* of the layer being applied, or NULL */
    struct apply_pool *pool;     /* started with the first file it takes */
    struct changeset_applier cs; /* the changeset rules, over disk_ops */
    struct deferred_dir *dirs;
    size_t n_dirs, cap_dirs;
    /* set once, atomically: the pool's threads warn too */
    bool warned_owner, warned_dev, warned_xattr;
};

static const struct changeset_ops disk_ops;

/* OUT (PATH_MAX) = where FD is, as /proc/self/fd tells; "" if it cannot. */
static void proc_fd_path(int fd, char *out)
{
    char proc[64];
    ssize_t n;
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    n = readlink(proc, out, PATH_MAX - 1);
    out[n > 0 && out[0] == '/' ? n : 0] = '\0';
}

struct chrun_layer_applier *chrun_layer_applier_new(int rootfd, struct chrun_err *err)
{
    struct chrun_layer_applier *a = calloc(1, sizeof(*a));
    struct stat st;
    if (a == NULL) {
        chrun_err_sys(err, ENOMEM, "layer applier");
        return NULL;
    }
    a->rootfd = rootfd;
    changeset_applier_init(&a->cs, &disk_ops, a);
    proc_fd_path(rootfd, a->root_path);
    a->cache_fd = -1;
    a->euid = geteuid();
    a->egid = getegid();
    a->is_root = (a->euid == 0);
    a->threads = apply_pool_default_threads();
    if (fstat(rootfd, &st) < 0) {
        chrun_err_sys(err, errno, "stat the root");
        chrun_layer_applier_free(a);
        return NULL;
    }
    a->root_dev = st.st_dev;
    a->root_ino = st.st_ino;
    return a;
}

void chrun_layer_applier_set_threads(struct chrun_layer_applier *a, unsigned threads)
{
    a->threads = threads == 0                       ? apply_pool_default_threads()
                 : threads > APPLY_POOL_THREADS_MAX ? APPLY_POOL_THREADS_MAX
                                                    : threads;
}

void chrun_layer_applier_set_tarball(struct chrun_layer_applier *a, bool tarball)
{
    a->cs.tarball = tarball;
}

void chrun_layer_applier_free(struct chrun_layer_applier *a)
{
    if (a == NULL)
        return;
    apply_pool_free(a->pool);
    if (a->cache_fd >= 0)
        close(a->cache_fd);
    changeset_applier_release(&a->cs);
    for (size_t i = 0; i < a->n_dirs; i++)
        free(a->dirs[i].path);
    free(a->dirs);
    free(a);
}

/* chrun_fs_open_at, with errno set on failure. Returns fd or -1. */
static int open_resolved(int rootfd, const char *path, int flags, enum chrun_fs_resolve how)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    int fd = chrun_fs_open_at(rootfd, path, flags, 0, how, &ignored);
    if (fd < 0)
        errno = ignored.errnum ? ignored.errnum : EIO;
    return fd;
}

/* Normalize an entry or hardlink name the way tar does ("./a//b/" -> "a/b")
 * into OUT (PATH_MAX). SPEC "Bad input": absolute names and ".." components
 * are refused, never rewritten. "" names the root itself. */
static int normalize_name(const char *what, const char *name, char *out, struct chrun_err *err)
{
    size_t len = 0;
    const char *p = name;
    if (name[0] == '/')
        return chrun_err_set(err, CHRUN_E_INPUT, "%s '%s': absolute name", what, name);
    while (*p) {
        const char *comp = p;
        size_t clen;
        while (*p && *p != '/')
            p++;
        clen = (size_t) (p - comp);
        while (*p == '/')
            p++;
        if (clen == 0 || (clen == 1 && comp[0] == '.'))
            continue;
        if (clen == 2 && comp[0] == '.' && comp[1] == '.')
            return chrun_err_set(err, CHRUN_E_INPUT, "%s '%s': '..' component", what, name);
        if (len + clen + 2 > PATH_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT, "%s '%.64s...': name too long", what, name);
        if (len > 0)
            out[len++] = '/';
        memcpy(out + len, comp, clen);
        len += clen;
    }
    out[len] = '\0';
    return 0;
}

static unsigned path_depth(const char *path)
{
    unsigned d = (*path != '\0');
    for (; *path; path++)
        d += (*path == '/');
    return d;
}

static void entry_times(struct archive_entry *e, struct timespec times[2])
{
    times[1].tv_sec = archive_entry_mtime(e);
    times[1].tv_nsec = archive_entry_mtime_nsec(e);
    if (archive_entry_atime_is_set(e)) {
        times[0].tv_sec = archive_entry_atime(e);
        times[0].tv_nsec = archive_entry_atime_nsec(e);
    } else {
        times[0] = times[1];
    }
}

/* Change owner of PFD/BASE (FD if >= 0) as root; as an ordinary user, warn once. */
static int set_owner(struct chrun_layer_applier *a, int fd, int pfd, const char *base,
                     const char *path, struct archive_entry *e, struct chrun_err *err)
{
    uid_t uid = (uid_t) archive_entry_uid(e);
    gid_t gid = (gid_t) archive_entry_gid(e);
    int rc;
    if (!a->is_root) {
        if ((uid != a->euid || gid != a->egid) &&
            !__atomic_exchange_n(&a->warned_owner, true, __ATOMIC_RELAXED)) {
            chrun_log_warn("not running as root: files belong to uid %u, not to the owners "
                           "the image records (first: '%s' %u:%u)",
                           (unsigned) a->euid, path, (unsigned) uid, (unsigned) gid);
        }
        return 0;
    }
    if (uid == 0 && gid == 0)
        return 0; /* what root creates already has this owner */
    rc = fd >= 0 ? fchown(fd, uid, gid) : fchownat(pfd, base, uid, gid, AT_SYMLINK_NOFOLLOW);
    if (rc < 0 && errno == EINVAL)
        /* in a user namespace an id outside the mapping has no host id */
        return chrun_err_sys(err, errno,
                             "chown '%s' to %u:%u (outside this user namespace's ids; are the "
                             "subordinate ids too few?)",
                             path, (unsigned) uid, (unsigned) gid);
    if (rc < 0)
        return chrun_err_sys(err, errno, "chown '%s'", path);
    return 0;
}

/* Why xattr NAME of an image is not set, or NULL to set it. SPEC "Bad
 * input": overlayfs's own attributes (trusted.overlay.*, and user.overlay.*
 * of an ordinary user's userxattr mount) would steer an overlay mounted over
 * the tree (a redirect to other lower paths, a metacopy file whose bytes are
 * elsewhere, an opaque directory), and the rest of trusted.* belongs to the
 * host's privileged software: an image sets neither. */
static const char *xattr_refused(const struct chrun_layer_applier *a, const char *name)
{
    if (str_has_prefix(name, "trusted.overlay.") || str_has_prefix(name, "user.overlay."))
        return "overlayfs's own, never taken from an image";
    if (str_has_prefix(name, "trusted."))
        return a->is_root ? "the host's trusted namespace, never taken from an image"
                          : "needs root";
    return NULL;
}

static void set_xattrs(struct chrun_layer_applier *a, int fd, const char *path,
                       struct archive_entry *e)
{
    const char *name;
    const void *value;
    size_t size;
    if (archive_entry_xattr_reset(e) == 0)
        return;
    while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
        const char *why;
        if (name == NULL || *name == '\0')
            continue;
        why = xattr_refused(a, name);
        if (why == NULL && fsetxattr(fd, name, value, size, 0) < 0)
            why = strerror(errno);
        if (why != NULL && !__atomic_exchange_n(&a->warned_xattr, true, __ATOMIC_RELAXED)) {
            chrun_log_warn("extended attributes not kept (first: %s on '%s': %s)", name, path,
                           why);
        }
    }
}

/* OUT (PATH_MAX) = the path below the root of PFD/BASE with every symlink
 * resolved: an entry may name it through an in-root symlink (bin/sub with
 * bin -> usr/bin), which a later layer may change. PATH, the entry name, when
 * /proc cannot tell. */
static void real_path(struct chrun_layer_applier *a, int pfd, const char *base,
                      const char *path, char *out)
{
    char dir[PATH_MAX];
    size_t rlen = strlen(a->root_path);
    const char *rel;
    snprintf(out, PATH_MAX, "%s", path);
    if (pfd == a->rootfd || rlen == 0)
        return;
    proc_fd_path(pfd, dir);
    if (streq(a->root_path, "/"))
        rlen = 0;
    if (strncmp(dir, a->root_path, rlen) != 0 || dir[rlen] != '/')
        return;
    rel = dir + rlen + 1;
    if (!path_join(out, rel, base))
        snprintf(out, PATH_MAX, "%s", path);
}

static int defer_dir(struct chrun_layer_applier *a, const char *path, const struct stat *st,
                     struct archive_entry *e, struct chrun_err *err)
{
    struct deferred_dir *d;
    if (chrun_grow(&a->dirs, &a->cap_dirs, a->n_dirs + 1, sizeof(*a->dirs), err) < 0)
        return chrun_err_prefix(err, "directory list");
    d = &a->dirs[a->n_dirs];
    d->path = strdup(path);
    if (d->path == NULL)
        return chrun_err_sys(err, ENOMEM, "directory list");
    d->dev = st->st_dev;
    d->ino = st->st_ino;
    d->apply = false;
    d->mode = archive_entry_mode(e) & 07777;
    entry_times(e, d->times);
    d->depth = path_depth(path);
    d->seq = a->n_dirs;
    a->n_dirs++;
    return 0;
}

/* A directory entry at PFD/BASE; EXISTS: one is there already (merge). */
static int apply_dir(struct chrun_layer_applier *a, int pfd, const char *base, const char *path,
                     struct archive_entry *e, bool exists, struct chrun_err *err)
{
    struct stat st;
    char real[PATH_MAX];
    /* 0700 until chrun_layer_applier_finish: an image's read-only
     * directory must still take its contents. */
    if (!exists && mkdirat(pfd, base, 0700) < 0)
        return chrun_err_sys(err, errno, "create directory '%s'", path);
    if (set_owner(a, -1, pfd, base, path[0] ? path : "/", e, err) < 0)
        return -1;
    if (archive_entry_xattr_count(e) > 0) {
        cleanup_close int fd =
            openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return chrun_err_sys(err, errno, "open directory '%s'", path);
        set_xattrs(a, fd, path, e);
    }
    if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return chrun_err_sys(err, errno, "stat directory '%s'", path[0] ? path : "/");
    real_path(a, pfd, base, path, real);
    return defer_dir(a, real, &st, e, err);
}

static int write_data(struct archive *tar, int fd, const char *path, struct chrun_err *err)
{
    const void *buf;
    size_t size;
    la_int64_t offset;
    off_t pos = 0;
    for (;;) {
        int r = archive_read_data_block(tar, &buf, &size, &offset);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return chrun_archive_error(err, tar, "'%s'", path);
        if (size == 0)
            continue;
        if (offset != pos) {
            /* a hole of a sparse file */
            if (lseek(fd, (off_t) offset, SEEK_SET) < 0)
                return chrun_err_sys(err, errno, "seek in '%s'", path);
            pos = (off_t) offset;
        }
        if (chrun_io_write_full(fd, buf, size, err) < 0)
            return chrun_err_prefix(err, "write '%s'", path);
        pos += (off_t) size;
    }
}

/* Create the regular file PFD/BASE (a free name) for writing. Returns the fd
 * or -1 with ERR. */
static int create_file(int pfd, const char *base, const char *path, struct chrun_err *err)
{
    int fd = openat(pfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return chrun_err_sys(err, errno, "create '%s'", path);
    return fd;
}

/* The rest of regular file FD (PFD/BASE), its data written: size, owner,
 * mode, xattrs, times; then close it. */
static int finish_file(struct chrun_layer_applier *a, int fd, int pfd, const char *base,
                       const char *path, struct archive_entry *e, struct chrun_err *err)
{
    cleanup_close int owned = fd;
    struct timespec times[2];
    mode_t mode = archive_entry_mode(e) & 07777;
    la_int64_t size = archive_entry_size(e);

    if (size > 0 && lseek(fd, 0, SEEK_CUR) != (off_t) size && ftruncate(fd, (off_t) size) < 0)
        return chrun_err_sys(err, errno, "truncate '%s'", path);
    if (set_owner(a, fd, pfd, base, path, e, err) < 0)
        return -1;
    /* after chown, which clears setuid/setgid */
    if (mode != 0600 && fchmod(fd, mode) < 0)
        return chrun_err_sys(err, errno, "chmod '%s'", path);
    set_xattrs(a, fd, path, e); /* after chown, which drops security.capability */
    entry_times(e, times);
    if (futimens(fd, times) < 0)
        return chrun_err_sys(err, errno, "set times of '%s'", path);
    if (close(take_fd(owned)) < 0)
        return chrun_err_sys(err, errno, "close '%s'", path);
    return 0;
}

/* A regular file written from the stream by the applier's thread. */
static int apply_file(struct chrun_layer_applier *a, struct archive *tar, int pfd,
                      const char *base, const char *path, struct archive_entry *e,
                      struct chrun_err *err)
{
    int fd = create_file(pfd, base, path, err);
    if (fd < 0)
        return -1;
    if (write_data(tar, fd, path, err) < 0) {
        close(fd);
        return -1;
    }
    return finish_file(a, fd, pfd, base, path, e, err);
}

/* A regular file for the pool: everything it needs, copied out of the
 * stream and the entry, which move on. */
struct file_job {
    struct chrun_layer_applier *a;
    int dirfd;               /* the parent, as the rules resolved it */
    char *path;              /* the entry name, for messages */
    char *base;              /* the name in DIRFD */
    struct archive_entry *e; /* a clone: owner, mode, times, xattrs */
    char *data;
    size_t len;
};

static void file_job_free(void *data)
{
    struct file_job *j = data;
    if (j == NULL)
        return;
    if (j->dirfd >= 0)
        close(j->dirfd);
    if (j->e != NULL)
        archive_entry_free(j->e);
    free(j->path);
    free(j->base);
    free(j->data);
    free(j);
}

static void file_job_freep(struct file_job **j)
{
    file_job_free(*j);
}
#define cleanup_file_job __attribute__((cleanup(file_job_freep)))

static int file_job_run(void *data, struct chrun_err *err)
{
    struct file_job *j = data;
    int fd = create_file(j->dirfd, j->base, j->path, err);
    if (fd < 0)
        return -1;
    if (j->len > 0 && chrun_io_write_full(fd, j->data, j->len, err) < 0) {
        close(fd);
        return chrun_err_prefix(err, "write '%s'", j->path);
    }
    return finish_file(j->a, fd, j->dirfd, j->base, j->path, j->e, err);
}

/* Copy the data of regular file entry E (SIZE bytes, no holes) into J. */
static int read_file_data(struct archive *tar, struct file_job *j, size_t size, const char *path,
                          struct chrun_err *err)
{
    if (size > 0 && (j->data = malloc(size)) == NULL)
        return chrun_err_sys(err, ENOMEM, "'%s'", path);
    for (;;) {
        const void *buf;
        size_t n;
        la_int64_t offset;
        int r = archive_read_data_block(tar, &buf, &n, &offset);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return chrun_archive_error(err, tar, "'%s'", path);
        if (n == 0)
            continue;
        if (offset < (la_int64_t) j->len || (uint64_t) offset > size || n > size - (size_t) offset)
            return chrun_err_set(err, CHRUN_E_INPUT, "'%s': data beyond its declared size", path);
        memset(j->data + j->len, 0, (size_t) offset - j->len);
        memcpy(j->data + offset, buf, n);
        j->len = (size_t) offset + n;
    }
}

/* Key of the jobs made in directory D (apply-pool.h). */
static int dir_key(struct chrun_layer_applier *a, const struct changeset_dir *d, dev_t *ret_dev,
                   ino_t *ret_ino, struct chrun_err *err)
{
    struct stat st;
    if (d->fd == a->rootfd) {
        *ret_dev = a->root_dev;
        *ret_ino = a->root_ino;
        return 0;
    }
    if (a->cache_valid && d->fd == a->cache_fd) {
        *ret_dev = a->cache_dev;
        *ret_ino = a->cache_ino;
        return 0;
    }
    if (fstat(d->fd, &st) < 0)
        return chrun_err_sys(err, errno, "stat directory");
    *ret_dev = st.st_dev;
    *ret_ino = st.st_ino;
    return 0;
}

/* Wait until the file a job makes at D/NAME, if any, is complete. */
static int wait_name(struct chrun_layer_applier *a, const struct changeset_dir *d, const char *name,
                     struct chrun_err *err)
{
    dev_t dev;
    ino_t ino;
    if (a->pool == NULL || !apply_pool_busy(a->pool))
        return 0;
    if (dir_key(a, d, &dev, &ino, err) < 0)
        return -1;
    return apply_pool_wait(a->pool, dev, ino, name, err);
}

/* Wait until every job is done. */
static int drain(struct chrun_layer_applier *a, struct chrun_err *err)
{
    return a->pool == NULL ? 0 : apply_pool_drain(a->pool, err);
}

/* Start the pool, with as many jobs as the descriptor limit leaves room
 * for; none (A->threads = 1) when that is too few to matter. */
static int start_pool(struct chrun_layer_applier *a, struct chrun_err *err)
{
    struct rlimit nofile;
    size_t max_jobs = APPLY_POOL_JOBS_MAX;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY)
        max_jobs = nofile.rlim_cur < POOL_FDS_SPARE + 2 * POOL_JOBS_MIN
                       ? 0
                       : (size_t) (nofile.rlim_cur - POOL_FDS_SPARE) / 2;
    if (max_jobs < POOL_JOBS_MIN) {
        a->threads = 1;
        return 0;
    }
    a->pool = apply_pool_new(a->threads, max_jobs, err);
    return a->pool == NULL ? -1 : 0;
}

/* Regular file entry E at the free name D/NAME: to the pool when it is small
 * and has no holes, else written here. */
static int apply_regular(struct chrun_layer_applier *a, struct archive *tar,
                         const struct changeset_dir *d, const char *name, const char *path,
                         struct archive_entry *e, struct chrun_err *err)
{
    la_int64_t size = archive_entry_size(e);
    cleanup_file_job struct file_job *j = NULL;
    dev_t dev;
    ino_t ino;

    if (a->threads <= 1 || size < 0 || size > POOL_FILE_MAX || archive_entry_sparse_count(e) > 0 ||
        (a->src != NULL && a->src->behind != NULL && !a->src->behind(a->src->data)))
        return apply_file(a, tar, d->fd, name, path, e, err);
    if (a->pool == NULL && start_pool(a, err) < 0)
        return -1;
    if (a->pool == NULL)
        return apply_file(a, tar, d->fd, name, path, e, err);
    if (dir_key(a, d, &dev, &ino, err) < 0)
        return -1;
    if ((j = calloc(1, sizeof(*j))) == NULL)
        return chrun_err_sys(err, ENOMEM, "'%s'", path);
    j->a = a;
    j->dirfd = fcntl(d->fd, F_DUPFD_CLOEXEC, 0);
    if (j->dirfd < 0 && (errno == EMFILE || errno == ENFILE))
        return apply_file(a, tar, d->fd, name, path, e, err); /* out of fds: in line */
    if (j->dirfd < 0)
        return chrun_err_sys(err, errno, "'%s': duplicate directory fd", path);
    j->path = strdup(path);
    j->base = strdup(name);
    j->e = archive_entry_clone(e);
    if (j->path == NULL || j->base == NULL || j->e == NULL)
        return chrun_err_sys(err, ENOMEM, "'%s'", path);
    if (read_file_data(tar, j, (size_t) size, path, err) < 0)
        return -1;
    /* the pool owns the job from here, even when it fails */
    return apply_pool_submit(a->pool, dev, ino, name, (size_t) size + sizeof(*j) + strlen(path),
                             file_job_run, file_job_free, take_ptr(j), err);
}

static int apply_symlink(struct chrun_layer_applier *a, int pfd, const char *base,
                         const char *path, struct archive_entry *e, struct chrun_err *err)
{
    const char *target = archive_entry_symlink(e);
    struct timespec times[2];
    /* The target is stored as text and only ever resolved in root later. */
    if (symlinkat(target, pfd, base) < 0)
        return chrun_err_sys(err, errno, "create symlink '%s'", path);
    if (set_owner(a, -1, pfd, base, path, e, err) < 0)
        return -1;
    entry_times(e, times);
    if (utimensat(pfd, base, times, AT_SYMLINK_NOFOLLOW) < 0)
        return chrun_err_sys(err, errno, "set times of '%s'", path);
    return 0;
}

static int apply_node(struct chrun_layer_applier *a, int pfd, const char *base, const char *path,
                      struct archive_entry *e, struct chrun_err *err)
{
    mode_t type = archive_entry_filetype(e);
    mode_t mode = archive_entry_mode(e) & 07777;
    struct timespec times[2];
    if (mknodat(pfd, base, type | 0600, archive_entry_rdev(e)) < 0) {
        if ((errno == EPERM || errno == EACCES) && type != AE_IFIFO) {
            if (!a->warned_dev) {
                a->warned_dev = true;
                chrun_log_warn("device nodes need root: skipped (first: '%s')", path);
            }
            return 0;
        }
        return chrun_err_sys(err, errno, "create node '%s'", path);
    }
    if (set_owner(a, -1, pfd, base, path, e, err) < 0)
        return -1;
    /* BASE was just created by mknodat, so it is no symlink to follow. */
    if (fchmodat(pfd, base, mode, 0) < 0)
        return chrun_err_sys(err, errno, "chmod '%s'", path);
    entry_times(e, times);
    if (utimensat(pfd, base, times, AT_SYMLINK_NOFOLLOW) < 0)
        return chrun_err_sys(err, errno, "set times of '%s'", path);
    return 0;
}

/* ---- the disk back-end of the changeset rules (changeset-apply.h) ---- */

static int disk_open_dir(void *be, const char *dir, enum chrun_fs_resolve how,
                         struct changeset_dir *ret, int *ret_errno, struct chrun_err *err)
{
    struct chrun_layer_applier *a = be;
    bool cached = (how == CHRUN_FS_IN_ROOT), busy;
    int fd;
    *ret = (struct changeset_dir){.fd = a->rootfd, .owned = false};
    if (dir[0] == '\0' && cached)
        return 0;
    if (cached && a->cache_valid && streq(a->cache_path, dir)) {
        ret->fd = a->cache_fd;
        return 0;
    }
    /* asked before the look: a job that ends between a failed look and the
     * question would leave the failure standing, though its file is there */
    busy = a->pool != NULL && apply_pool_busy(a->pool);
    fd = open_resolved(a->rootfd, dir, O_PATH | O_DIRECTORY, how);
    if (fd < 0 && busy) {
        /* A file a job has yet to make may be on the way (a directory that
         * became a file): look again once every job is done. */
        if (drain(a, err) < 0)
            return -1;
        fd = open_resolved(a->rootfd, dir, O_PATH | O_DIRECTORY, how);
    }
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != EXDEV &&
            errno != ENAMETOOLONG)
            return chrun_err_sys(err, errno, "open directory '%s'", dir);
        *ret_errno = errno;
        return 1;
    }
    ret->fd = fd;
    ret->owned = !cached;
    if (cached) {
        /* Parent directory of the last entry, reused while entries stay in it. */
        if (a->cache_fd >= 0)
            close(a->cache_fd);
        struct stat st;
        if (fstat(fd, &st) < 0) {
            int errnum = errno;
            close(fd);
            return chrun_err_sys(err, errnum, "stat directory '%s'", dir);
        }
        snprintf(a->cache_path, sizeof(a->cache_path), "%s", dir);
        a->cache_fd = fd;
        a->cache_dev = st.st_dev;
        a->cache_ino = st.st_ino;
        a->cache_valid = true;
    }
    return 0;
}

static void disk_close_dir(void *be, struct changeset_dir *d)
{
    (void) be;
    if (d->owned && d->fd >= 0)
        close(d->fd);
    d->fd = -1;
}

static int disk_mkdir_p(void *be, const char *dir, struct chrun_err *err)
{
    struct chrun_layer_applier *a = be;
    if (drain(a, err) < 0)
        return -1;
    return chrun_fs_mkdir_p_in_root(a->rootfd, dir, 0755, 0, err);
}

static int disk_kind(void *be, const struct changeset_dir *d, const char *name,
                     struct chrun_err *err)
{
    struct stat st;
    if (wait_name(be, d, name, err) < 0)
        return -1;
    if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        return S_ISDIR(st.st_mode) ? 1 : 2;
    if (errno == ENOENT)
        return 0;
    return chrun_err_sys(err, errno, "stat '%s'", name);
}

static bool disk_same_file(void *be, const struct changeset_dir *d1, const char *n1,
                           const struct changeset_dir *d2, const char *n2)
{
    struct stat s1, s2;
    struct chrun_err ignored = CHRUN_ERR_INIT;
    /* a failed job fails the next step, which waits too */
    if (wait_name(be, d1, n1, &ignored) < 0 || wait_name(be, d2, n2, &ignored) < 0)
        return false;
    return fstatat(d1->fd, n1, &s1, AT_SYMLINK_NOFOLLOW) == 0 &&
           fstatat(d2->fd, n2, &s2, AT_SYMLINK_NOFOLLOW) == 0 && s1.st_dev == s2.st_dev &&
           s1.st_ino == s2.st_ino;
}

static int disk_remove(void *be, const struct changeset_dir *d, const char *name,
                       const char *path, struct chrun_err *err)
{
    struct chrun_layer_applier *a = be;
    struct stat st;
    if (wait_name(a, d, name, err) < 0)
        return -1;
    if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return chrun_err_sys(err, errno, "stat '%s'", path);
    }
    /* jobs may be making files anywhere below a directory that goes */
    if (S_ISDIR(st.st_mode) && drain(a, err) < 0)
        return -1;
    /* The cached parent may be what goes (or lie below it). */
    a->cache_valid = false;
    if (!S_ISDIR(st.st_mode)) {
        if (unlinkat(d->fd, name, 0) < 0 && errno != ENOENT)
            return chrun_err_sys(err, errno, "remove '%s'", path);
        return 0;
    }
    if (chrun_fs_rm_rf_at(d->fd, name, err) < 0)
        return chrun_err_prefix(err, "replace '%s'", path);
    return 0;
}

static int disk_list(void *be, const struct changeset_dir *d, char ***ret_names, size_t *ret_n,
                     struct chrun_err *err)
{
    /* an opaque whiteout: the names of files still being made count too */
    if (drain(be, err) < 0)
        return -1;
    return chrun_fs_list_at(d->fd, ret_names, ret_n, err);
}

static int disk_dir(void *be, const struct changeset_dir *d, const char *name, const char *path,
                    struct archive_entry *e, bool exists, struct chrun_err *err)
{
    return apply_dir(be, d->fd, name, path, e, exists, err);
}

static int disk_inode(void *be, const struct changeset_dir *d, const char *name,
                      const char *path, struct archive *tar, struct archive_entry *e,
                      struct chrun_err *err)
{
    if (archive_entry_filetype(e) == AE_IFREG)
        return apply_regular(be, tar, d, name, path, e, err);
    if (archive_entry_filetype(e) == AE_IFLNK)
        return apply_symlink(be, d->fd, name, path, e, err);
    return apply_node(be, d->fd, name, path, e, err);
}

static int disk_hardlink(void *be, const struct changeset_dir *td, const char *tname,
                         const struct changeset_dir *d, const char *name, const char *path,
                         const char *link, struct chrun_err *err)
{
    (void) be;
    if (linkat(td->fd, tname, d->fd, name, 0) < 0)
        return chrun_err_sys(err, errno, "hardlink '%s' -> '%s'", path, link);
    return 0;
}

static int disk_root(void *be, struct archive_entry *e, struct chrun_err *err)
{
    struct chrun_layer_applier *a = be;
    return apply_dir(a, a->rootfd, ".", "", e, true, err);
}

static const struct changeset_ops disk_ops = {
    .open_dir = disk_open_dir,
    .close_dir = disk_close_dir,
    .mkdir_p = disk_mkdir_p,
    .kind = disk_kind,
    .same_file = disk_same_file,
    .remove = disk_remove,
    .list = disk_list,
    .dir = disk_dir,
    .inode = disk_inode,
    .hardlink = disk_hardlink,
    .root = disk_root,
};

/* ---- the stream: blob -> hash -> inflate -> hash -> queue ---- */

struct stream {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *bufs[STREAM_SLOTS];
    size_t lens[STREAM_SLOTS];
    unsigned head, count; /* guarded by mu */
    bool held;            /* the consumer holds bufs[head] (consumer only) */
    bool eof, failed, stop;

    /* producer side */
    int blob_fd;
    const struct chrun_layer_source *src; /* read instead of blob_fd, or NULL */
    const struct chrun_descriptor *desc;
    const struct chrun_digest *diff_id;
    enum chrun_compression comp;
    struct chrun_digest_hasher zhash, thash;
    uint64_t zbytes;
    char *inbuf;
    size_t pending; /* bytes of inbuf read but not yet handed to the inflater */
    bool read_failed;
    bool cancelled; /* the producer gave up because the consumer asked it to */
    struct chrun_err err; /* the producer's error */
};

/* Read up to CAP bytes of the blob, hashing them; more than the descriptor's
 * size fails at once. Returns bytes read (0 at EOF) or -1. */
static ssize_t blob_read(struct stream *s, char *buf, size_t cap)
{
    ssize_t n = s->src != NULL ? s->src->read(s->src->data, buf, cap, &s->err)
                               : chrun_io_read_full(s->blob_fd, buf, cap, &s->err);
    if (n < 0)
        return -1;
    s->zbytes += (uint64_t) n;
    if (s->zbytes > (uint64_t) s->desc->size)
        return chrun_err_set(&s->err, CHRUN_E_DIGEST,
                             "blob %s: more than the %lld bytes its descriptor declares",
                             s->desc->digest.str, (long long) s->desc->size);
    if (chrun_digest_hasher_update(&s->zhash, buf, (size_t) n, &s->err) < 0)
        return -1;
    return n;
}

static int stopped(struct stream *s)
{
    s->cancelled = true;
    return chrun_err_set(&s->err, CHRUN_E_SYS, "layer stream stopped");
}

/* The inflater's source: the blob, hashed as it goes; the first chunk was
 * read (for the magic check) before the inflater started. Errors land in
 * s->err, which is the ERR the inflater passes along. */
static ssize_t blob_source(void *data, const void **ret_buf, struct chrun_err *err)
{
    struct stream *s = data;
    ssize_t n;
    (void) err;
    *ret_buf = s->inbuf;
    if (s->pending > 0) {
        n = (ssize_t) s->pending;
        s->pending = 0;
        return n;
    }
    if (__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        s->read_failed = true;
        return stopped(s);
    }
    n = blob_read(s, s->inbuf, CHRUN_IO_BUFSZ);
    if (n < 0)
        s->read_failed = true;
    return n;
}

/* Wait for a free slot; returns its index, or -1 when the consumer stopped. */
static int slot_wait_free(struct stream *s)
{
    int idx;
    pthread_mutex_lock(&s->mu);
    while (s->count == STREAM_SLOTS && !s->stop)
        pthread_cond_wait(&s->cv, &s->mu);
    idx = s->stop ? -1 : (int) ((s->head + s->count) % STREAM_SLOTS);
    pthread_mutex_unlock(&s->mu);
    return idx;
}

static void slot_publish(struct stream *s, size_t len)
{
    pthread_mutex_lock(&s->mu);
    s->lens[(s->head + s->count) % STREAM_SLOTS] = len;
    s->count++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Check the magic bytes of the first block against the media type. */
static int check_magic(struct stream *s, const unsigned char *p, size_t n)
{
    enum chrun_compression found = chrun_inflate_sniff(p, n);
    if (found == s->comp)
        return 0;
    return chrun_err_set(&s->err, CHRUN_E_INPUT,
                         "blob %s: media type '%s' says %s, but the data is %s",
                         s->desc->digest.str, s->desc->media_type, chrun_inflate_name(s->comp),
                         found == CHRUN_COMPRESSION_NONE ? "not compressed"
                                                         : chrun_inflate_name(found));
}

static int produce_plain(struct stream *s)
{
    bool first = true;
    for (;;) {
        int idx = slot_wait_free(s);
        ssize_t n;
        if (idx < 0)
            return stopped(s);
        n = blob_read(s, s->bufs[idx], CHRUN_IO_BUFSZ);
        if (n < 0)
            return -1;
        if (first && check_magic(s, (const unsigned char *) s->bufs[idx], (size_t) n) < 0)
            return -1;
        first = false;
        if (n == 0)
            return 0;
        slot_publish(s, (size_t) n);
    }
}

/* The blob's own size and digest. */
static int verify_blob(struct stream *s, struct chrun_digest *ret)
{
    if (s->zbytes != (uint64_t) s->desc->size)
        return chrun_err_set(&s->err, CHRUN_E_DIGEST,
                             "blob %s: %llu bytes, its descriptor declares %lld",
                             s->desc->digest.str, (unsigned long long) s->zbytes,
                             (long long) s->desc->size);
    if (chrun_digest_hasher_final(&s->zhash, ret, &s->err) < 0)
        return -1;
    if (!streq(ret->str, s->desc->digest.str))
        return chrun_err_set(&s->err, CHRUN_E_DIGEST, "blob %s: digest mismatch (got %s)",
                             s->desc->digest.str, ret->str);
    return 0;
}

/* The inflater refused the stream. A blob that does not match its digest
 * explains that better, so read the rest of it and say so if it does not. */
static int inflate_failed(struct stream *s)
{
    struct chrun_err why;
    struct chrun_digest ignored;
    ssize_t n;
    if (s->read_failed)
        return -1;
    chrun_err_prefix(&s->err, "layer %s", s->desc->digest.str);
    why = s->err;
    while ((n = blob_read(s, s->inbuf, CHRUN_IO_BUFSZ)) > 0)
        ;
    if (n == 0 && verify_blob(s, &ignored) == 0)
        s->err = why;
    return -1;
}

/* Inflate straight into the queue slots, hashing the plain stream. The
 * inflater reads the blob to its very end (SPEC "Bad input"). */
static int produce_compressed(struct stream *s)
{
    cleanup_inflate struct chrun_inflate *z = NULL;
    ssize_t n = blob_read(s, s->inbuf, CHRUN_IO_BUFSZ);
    if (n < 0)
        return -1;
    if (check_magic(s, (const unsigned char *) s->inbuf, (size_t) n) < 0)
        return -1;
    s->pending = (size_t) n;
    z = chrun_inflate_new(s->comp, blob_source, s, &s->err);
    if (z == NULL)
        return -1;
    for (;;) {
        int idx = slot_wait_free(s);
        if (idx < 0)
            return stopped(s);
        n = chrun_inflate_read(z, s->bufs[idx], CHRUN_IO_BUFSZ, &s->err);
        if (n < 0)
            return inflate_failed(s);
        if (n == 0)
            return 0;
        if (chrun_digest_hasher_update(&s->thash, s->bufs[idx], (size_t) n, &s->err) < 0)
            return -1;
        slot_publish(s, (size_t) n);
    }
}

static int verify(struct stream *s)
{
    struct chrun_digest zd, td;
    if (verify_blob(s, &zd) < 0)
        return -1;
    if (s->comp == CHRUN_COMPRESSION_NONE)
        td = zd;
    else if (chrun_digest_hasher_final(&s->thash, &td, &s->err) < 0)
        return -1;
    if (!streq(td.str, s->diff_id->str))
        return chrun_err_set(&s->err, CHRUN_E_DIGEST,
                             "layer %s: diff_id mismatch: config says %s, content is %s",
                             s->desc->digest.str, s->diff_id->str, td.str);
    return 0;
}

static void *producer_main(void *arg)
{
    struct stream *s = arg;
    int rc = s->comp == CHRUN_COMPRESSION_NONE ? produce_plain(s) : produce_compressed(s);
    if (rc == 0)
        rc = verify(s);
    pthread_mutex_lock(&s->mu);
    if (rc < 0)
        s->failed = true;
    else
        s->eof = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Consumer: hand the tar reader the next queued buffer. */
static ssize_t tar_read_cb(struct archive *ar, void *data, const void **ret_buf)
{
    struct stream *s = data;
    ssize_t n;
    pthread_mutex_lock(&s->mu);
    if (s->held) {
        s->held = false;
        s->head = (s->head + 1) % STREAM_SLOTS;
        s->count--;
        pthread_cond_broadcast(&s->cv);
    }
    while (s->count == 0 && !s->eof && !s->failed)
        pthread_cond_wait(&s->cv, &s->mu);
    if (s->failed) {
        pthread_mutex_unlock(&s->mu);
        archive_set_error(ar, EIO, "layer stream failed");
        return -1;
    }
    if (s->count == 0) {
        pthread_mutex_unlock(&s->mu);
        return 0;
    }
    s->held = true;
    *ret_buf = s->bufs[s->head];
    n = (ssize_t) s->lens[s->head];
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void stream_release(struct stream *s)
{
    for (int i = 0; i < STREAM_SLOTS; i++)
        free(s->bufs[i]);
    free(s->inbuf);
    chrun_digest_hasher_release(&s->zhash);
    chrun_digest_hasher_release(&s->thash);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

static int stream_init(struct stream *s, int blob_fd, const struct chrun_descriptor *desc,
                       const struct chrun_digest *diff_id, enum chrun_compression comp,
                       struct chrun_err *err)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->blob_fd = blob_fd;
    s->desc = desc;
    s->diff_id = diff_id;
    s->comp = comp;
    for (int i = 0; i < STREAM_SLOTS; i++)
        if ((s->bufs[i] = malloc(CHRUN_IO_BUFSZ)) == NULL)
            return chrun_err_sys(err, ENOMEM, "layer buffers");
    if ((s->inbuf = malloc(CHRUN_IO_BUFSZ)) == NULL)
        return chrun_err_sys(err, ENOMEM, "layer buffers");
    if (chrun_digest_hasher_init(&s->zhash, err) < 0 ||
        chrun_digest_hasher_init(&s->thash, err) < 0)
        return -1;
    return 0;
}

/* Name and hardlink target of entry E, normalized, to FN. */
static int dispatch_entry(struct archive *tar, struct archive_entry *e, chrun_layer_entry_fn *fn,
                          void *data, struct chrun_err *err)
{
    char path[PATH_MAX], target[PATH_MAX];
    const char *raw = archive_entry_pathname(e);
    const char *link = archive_entry_hardlink(e);

    if (raw == NULL)
        raw = archive_entry_pathname_utf8(e);
    if (raw == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "tar entry without a name");
    if (normalize_name("entry", raw, path, err) < 0)
        return -1;
    if (link != NULL && normalize_name("hardlink target", link, target, err) < 0)
        return chrun_err_prefix(err, "'%s'", path);
    return fn(tar, e, path, link != NULL ? target : NULL, data, err);
}

bool chrun_layer_tar_warning_benign(struct archive *tar)
{
    /* libarchive 3.6: "Pathname can't be converted from UTF-8 to current
     * locale." (EILSEQ); the entry keeps the name's raw bytes */
    return archive_errno(tar) == EILSEQ &&
           strstr(chrun_archive_text(tar), "can't be converted") != NULL;
}

/* SPEC "Bad input": a malformed PAX record (a length that runs past its
 * header, or is not a number) gets ARCHIVE_WARN, and libarchive hands out the
 * entry without the record: under its ustar name, size or owner. That is
 * damage, as a bad checksum is. */
static int entry_damaged(struct archive *tar, struct archive_entry *e, struct chrun_err *err)
{
    const char *name = archive_entry_pathname(e);
    if (name == NULL)
        name = archive_entry_pathname_utf8(e);
    return chrun_err_set(err, CHRUN_E_INPUT, "entry '%s': damaged tar header: %s",
                         name ? name : "", chrun_archive_text(tar));
}

/* Hand every entry of the tar stream to FN; then read the stream to its end
 * so the trailer and diff_id cover every byte. */
static int consume(struct stream *s, chrun_layer_entry_fn *fn, void *data,
                   struct chrun_err *err)
{
    cleanup_archive struct archive *tar = archive_read_new();
    struct archive_entry *e;
    const void *ignored;
    int r;

    if (tar == NULL)
        return chrun_err_sys(err, ENOMEM, "archive_read_new");
    archive_read_support_format_tar(tar);
    r = archive_read_open(tar, s, NULL, tar_read_cb, NULL);
    while (r == ARCHIVE_OK || r == ARCHIVE_WARN) {
        r = archive_read_next_header(tar, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r == ARCHIVE_WARN && !chrun_layer_tar_warning_benign(tar))
            return entry_damaged(tar, e, err);
        if (r == ARCHIVE_WARN)
            chrun_log_debug("layer %s: %s", s->desc->digest.str, chrun_archive_text(tar));
        else if (r != ARCHIVE_OK)
            break; /* ARCHIVE_RETRY (a damaged header), _FAILED, _FATAL */
        if (dispatch_entry(tar, e, fn, data, err) < 0)
            return -1;
    }
    if (r != ARCHIVE_EOF)
        return chrun_archive_error(err, tar, "corrupt tar stream");
    /* SPEC "Bad input": libarchive stops at the end-of-archive blocks. */
    while ((r = (int) tar_read_cb(tar, s, &ignored)) > 0)
        ;
    if (r < 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "layer stream failed");
    return 0;
}

/* chrun_layer_read from BLOB_FD, or from SRC when it is not NULL. */
static int read_layer(int blob_fd, const struct chrun_layer_source *src,
                      const struct chrun_descriptor *desc, const struct chrun_digest *diff_id,
                      chrun_layer_entry_fn *fn, void *data, struct chrun_err *err)
{
    struct stream s;
    enum chrun_compression comp;
    pthread_t thread;
    int rc, prc;

    if (chrun_manifest_layer_compression(desc->media_type, &comp, err) < 0)
        return chrun_err_prefix(err, "layer %s", desc->digest.str);
    if (stream_init(&s, blob_fd, desc, diff_id, comp, err) < 0) {
        stream_release(&s);
        return -1;
    }
    s.src = src;
    prc = pthread_create(&thread, NULL, producer_main, &s);
    if (prc != 0) {
        stream_release(&s);
        return chrun_err_sys(err, prc, "start layer thread");
    }
    rc = consume(&s, fn, data, err);
    pthread_mutex_lock(&s.mu);
    s.stop = (rc < 0);
    pthread_cond_broadcast(&s.cv);
    pthread_mutex_unlock(&s.mu);
    pthread_join(thread, NULL);
    /* The producer's failure (digest, corrupt stream) is the cause of what
     * the tar reader saw; a stop the consumer asked for is not. */
    if (s.failed && !s.cancelled) {
        *err = s.err;
        rc = -1;
    } else if (rc < 0) {
        chrun_err_prefix(err, "layer %s", desc->digest.str);
    }
    stream_release(&s);
    return rc;
}

int chrun_layer_read(int blob_fd, const struct chrun_descriptor *desc,
                     const struct chrun_digest *diff_id, chrun_layer_entry_fn *fn, void *data,
                     struct chrun_err *err)
{
    return read_layer(blob_fd, NULL, desc, diff_id, fn, data, err);
}

static int apply_entry_cb(struct archive *tar, struct archive_entry *e, const char *path,
                          const char *target, void *data, struct chrun_err *err)
{
    struct chrun_layer_applier *a = data;
    struct chrun_err first = CHRUN_ERR_INIT;
    int rc;
    /* A job that failed stops the layer at the next entry. */
    if (a->pool != NULL && apply_pool_failed(a->pool))
        return drain(a, err);
    rc = changeset_apply_entry(&a->cs, tar, e, path, target, err);
    /* The error of an earlier entry still being written is the one the
     * applier would have met first without the pool. */
    if (rc < 0 && drain(a, &first) < 0)
        *err = first;
    return rc;
}

static int apply_layer(struct chrun_layer_applier *a, int blob_fd,
                       const struct chrun_layer_source *src, const struct chrun_descriptor *desc,
                       const struct chrun_digest *diff_id, struct chrun_err *err)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    int rc;
    changeset_applier_begin_layer(&a->cs);
    a->src = src;
    rc = read_layer(blob_fd, src, desc, diff_id, apply_entry_cb, a, err);
    a->src = NULL;
    /* The end of the layer: every file is complete, the first failure (in
     * entry order) is the layer's error. */
    if (rc == 0 && drain(a, err) < 0)
        rc = chrun_err_prefix(err, "layer %s", desc->digest.str);
    else if (rc < 0)
        drain(a, &ignored);
    if (a->pool != NULL)
        apply_pool_clear_error(a->pool);
    changeset_applier_begin_layer(&a->cs);
    return rc;
}

int chrun_layer_apply(struct chrun_layer_applier *a, int blob_fd,
                      const struct chrun_descriptor *desc, const struct chrun_digest *diff_id,
                      struct chrun_err *err)
{
    return apply_layer(a, blob_fd, NULL, desc, diff_id, err);
}

int chrun_layer_apply_source(struct chrun_layer_applier *a, const struct chrun_layer_source *src,
                             const struct chrun_descriptor *desc,
                             const struct chrun_digest *diff_id, struct chrun_err *err)
{
    return apply_layer(a, -1, src, desc, diff_id, err);
}

/* Deepest first, so that a directory is done before its parent loses search
 * permission; among equals, in entry order. */
static int cmp_dirs(const void *x, const void *y)
{
    const struct deferred_dir *a = x, *b = y;
    if (a->depth != b->depth)
        return a->depth > b->depth ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* By directory, the latest entry first. */
static int cmp_dirs_by_inode(const void *x, const void *y)
{
    const struct deferred_dir *a = x, *b = y;
    if (a->dev != b->dev)
        return a->dev < b->dev ? -1 : 1;
    if (a->ino != b->ino)
        return a->ino < b->ino ? -1 : 1;
    return a->seq > b->seq ? -1 : a->seq < b->seq;
}

/* Open the directory deferred entry D made or kept, only if it is still at
 * D's path: a later layer may have removed or replaced it. The path has no
 * symlinks, unless /proc could not resolve them: then they resolve in the
 * root. Returns an fd, or -1 when it is gone. */
static int open_deferred(struct chrun_layer_applier *a, const struct deferred_dir *d)
{
    static const enum chrun_fs_resolve how[] = {CHRUN_FS_BENEATH_NO_SYMLINKS, CHRUN_FS_IN_ROOT};
    for (size_t i = 0; i < ARRAY_SIZE(how); i++) {
        cleanup_close int fd = open_resolved(a->rootfd, d->path, O_RDONLY | O_DIRECTORY, how[i]);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == d->dev && st.st_ino == d->ino)
            return take_fd(fd);
    }
    return -1;
}

int chrun_layer_applier_finish(struct chrun_layer_applier *a, struct chrun_err *err)
{
    if (drain(a, err) < 0)
        return -1;
    /* Several entries (several layers, or names through symlinks) may make
     * or keep one directory: the last one still leading to it wins. */
    for (size_t i = 0; i < a->n_dirs; i++) {
        cleanup_close int fd = open_deferred(a, &a->dirs[i]);
        a->dirs[i].apply = (fd >= 0);
    }
    if (a->n_dirs > 1)
        qsort(a->dirs, a->n_dirs, sizeof(*a->dirs), cmp_dirs_by_inode);
    for (size_t i = 0, last = SIZE_MAX; i < a->n_dirs; i++) {
        struct deferred_dir *d = &a->dirs[i];
        if (!d->apply)
            continue;
        if (last != SIZE_MAX && a->dirs[last].dev == d->dev && a->dirs[last].ino == d->ino)
            d->apply = false;
        else
            last = i;
    }
    if (a->n_dirs > 1)
        qsort(a->dirs, a->n_dirs, sizeof(*a->dirs), cmp_dirs);
    for (size_t i = 0; i < a->n_dirs; i++) {
        struct deferred_dir *d = &a->dirs[i];
        cleanup_close int fd = d->apply ? open_deferred(a, d) : -1;
        if (fd < 0)
            continue; /* removed or replaced by a later layer */
        if (fchmod(fd, d->mode) < 0)
            return chrun_err_sys(err, errno, "chmod '%s'", d->path[0] ? d->path : "/");
        if (futimens(fd, d->times) < 0)
            return chrun_err_sys(err, errno, "set times of '%s'", d->path[0] ? d->path : "/");
    }
    return 0;
}
