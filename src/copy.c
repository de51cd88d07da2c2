/* COPY and ADD: build context -> rootfs (see include/chrun/copy.h). */
#include "chrun/copy.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>

#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/layer.h"
#include "chrun/manifest.h"
#include "cleanup.h"
#include "util.h"

/* ---- sources ------------------------------------------------------------- */

/* Open PATH (a context path) beneath CTXFD as O_PATH, following symlinks
 * only while they stay inside. */
static int open_beneath(int ctxfd, const char *path, struct chrun_err *err)
{
    struct chrun_err open_err = CHRUN_ERR_INIT;
    int fd = chrun_fs_open_at(ctxfd, path, O_PATH, 0, CHRUN_FS_BENEATH, &open_err);
    if (fd < 0 && open_err.errnum == EXDEV)
        return chrun_err_set(err, CHRUN_E_INPUT, "source '%s' is outside the build context",
                             path);
    if (fd < 0)
        return chrun_err_sys(err, open_err.errnum, "source '%s'", path);
    return fd;
}

/* Where sources come from: the context (beneath it) or a stage's rootfs
 * (resolved in it), minus what FILTER ignores. */
struct src_root {
    int fd;
    bool in_root;
    const struct chrun_copy_filter *filter;
};

static int open_source(const struct src_root *sr, const char *path, struct chrun_err *err)
{
    if (sr->in_root)
        return chrun_fs_open_in_root(sr->fd, *path ? path : ".", O_PATH, 0, err);
    return open_beneath(sr->fd, path, err);
}

/* Is REL (a path below the source root) left out by the filter? */
static bool filtered(const struct chrun_copy_filter *f, const char *rel, bool is_dir)
{
    return f != NULL && f->ignored != NULL && *rel != '\0' && f->ignored(f->data, rel, is_dir);
}

/* Is entry NAME of directory DFD a directory (not followed)? */
static bool entry_is_dir(int dfd, const char *name)
{
    struct stat st;
    return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

/* PARENT/NAME, or NAME when PARENT is empty: a new string (free), or NULL. */
static char *rel_join(const char *parent, const char *name)
{
    char *out = NULL;
    if (asprintf(&out, "%s%s%s", parent, *parent ? "/" : "", name) < 0)
        return NULL;
    return out;
}

/* With a filter, the context path PATHFD (from source SRC) really names,
 * its symlinks resolved, into REL: refused when it or a directory on the
 * way is left out, so a link in the context never shows an ignored file or
 * the inside of an ignored directory. Without one, SRC itself. */
static int source_rel(const struct src_root *sr, int pathfd, const char *src, char *rel,
                      size_t size, struct chrun_err *err)
{
    char proc[64], root[PATH_MAX], path[PATH_MAX];
    ssize_t rn, pn;
    size_t skip;
    struct stat st;
    if (sr->filter == NULL || sr->in_root)
        return snprintf(rel, size, "%s", src) < (int) size
                   ? 0 : chrun_err_sys(err, ENAMETOOLONG, "source '%s'", src);
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", sr->fd);
    rn = readlink(proc, root, sizeof(root) - 1);
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pathfd);
    pn = readlink(proc, path, sizeof(path) - 1);
    if (rn < 0 || pn < 0 || fstat(pathfd, &st) < 0)
        return chrun_err_sys(err, errno, "source '%s'", src);
    root[rn] = path[pn] = '\0';
    skip = streq(root, "/") ? 0 : (size_t) rn;
    if (strncmp(path, root, skip) != 0 || (path[skip] != '\0' && path[skip] != '/'))
        return chrun_err_set(err, CHRUN_E_INPUT, "source '%s' is outside the build context", src);
    if (snprintf(rel, size, "%s", path + skip + (path[skip] == '/')) >= (int) size)
        return chrun_err_sys(err, ENAMETOOLONG, "source '%s'", src);
    for (char *p = rel; *rel != '\0'; p++) {
        char *end = strchrnul(p, '/'), c = *end;
        bool out;
        *end = '\0';
        out = filtered(sr->filter, rel, c == '\0' ? S_ISDIR(st.st_mode) : true);
        *end = c;
        if (out)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "source '%s' is excluded from the context (.dockerignore)", src);
        if (c == '\0')
            break;
        p = end;
    }
    return 0;
}

/* FN gets the source (O_PATH), its last component and its path below the
 * source root. */
typedef int (*source_fn)(void *data, int pathfd, const char *name, const char *rel,
                         struct chrun_err *err);

/* The entry names of directory FD (not . and ..), sorted (chrun_fs_names_free).
 * A directory that cannot be read to its end is not copied in part. */
static int list_dir(int fd, char ***ret, size_t *ret_n, struct chrun_err *err)
{
    if (chrun_fs_list_at(fd, ret, ret_n, err) < 0)
        return -1;
    chrun_sort_strings(*ret, *ret_n);
    return 0;
}

typedef int (*kept_fn)(void *data, int fd, const char *name, const char *ctxrel,
                       struct chrun_err *err);

/* Call FN, in name order, for each entry of directory DIRFD (CTXREL in the
 * context) that FILTER keeps, with an O_PATH fd of it and its context path. */
static int each_kept(const struct chrun_copy_filter *filter, int dirfd, const char *ctxrel,
                     kept_fn fn, void *data, struct chrun_err *err)
{
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    if (list_dir(dirfd, &names, &n, err) < 0)
        return chrun_err_prefix(err, "'%s'", *ctxrel ? ctxrel : ".");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        cleanup_free char *sub = rel_join(ctxrel, names[i]);
        cleanup_close int fd = -1;
        if (sub == NULL) {
            rc = chrun_err_sys(err, ENOMEM, "'%s'", names[i]);
            break;
        }
        if (filtered(filter, sub, entry_is_dir(dirfd, names[i])))
            continue;
        fd = openat(dirfd, names[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
        rc = fd < 0 ? chrun_err_sys(err, errno, "open source '%s'", sub)
                    : fn(data, fd, names[i], sub, err);
    }
    chrun_fs_names_free(names, n);
    return rc;
}

/* Sources whose last component is a pattern: every match in its directory. */
static int each_match(const struct src_root *sr, const char *dir, const char *pattern,
                      source_fn fn, void *data, struct chrun_err *err)
{
    cleanup_close int dfd = open_source(sr, dir, err);
    char **names = NULL;
    size_t n = 0, hits = 0;
    int rc = 0;
    if (dfd < 0 || list_dir(dfd, &names, &n, err) < 0)
        return -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char path[PATH_MAX], rel[PATH_MAX];
        cleanup_close int fd = -1;
        if (fnmatch(pattern, names[i], FNM_PERIOD) != 0)
            continue;
        if (snprintf(path, sizeof(path), "%s%s%s", dir, *dir ? "/" : "", names[i]) >=
            (int) sizeof(path)) {
            rc = chrun_err_sys(err, ENAMETOOLONG, "source '%s'", names[i]);
            break;
        }
        if (filtered(sr->filter, path, entry_is_dir(dfd, names[i])))
            continue;
        hits++;
        fd = open_source(sr, path, err);
        rc = fd < 0 || source_rel(sr, fd, path, rel, sizeof(rel), err) < 0
                 ? -1 : fn(data, fd, names[i], rel, err);
    }
    chrun_fs_names_free(names, n);
    if (rc == 0 && hits == 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "source '%s%s%s' matches no file", dir,
                             *dir ? "/" : "", pattern);
    return rc;
}

/* Call FN for every file SRC names in the context. */
static int each_source(const struct src_root *sr, const char *src, source_fn fn, void *data,
                       struct chrun_err *err)
{
    char path[PATH_MAX], rel[PATH_MAX], *slash, *last;
    cleanup_close int fd = -1;
    size_t len;
    while (*src == '/')
        src++;
    if (snprintf(path, sizeof(path), "%s", src) >= (int) sizeof(path))
        return chrun_err_set(err, CHRUN_E_INPUT, "source path too long");
    len = strlen(path);
    while (len > 0 && path[len - 1] == '/')
        path[--len] = '\0';
    slash = strrchr(path, '/');
    last = slash ? slash + 1 : path;
    if (strpbrk(last, "*?[") != NULL) {
        if (slash != NULL)
            *slash = '\0';
        if (strpbrk(slash ? path : "", "*?[") != NULL)
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "source '%s': wildcards only in the last component", src);
        return each_match(sr, slash ? path : "", last, fn, data, err);
    }
    fd = open_source(sr, path, err);
    if (fd < 0 || source_rel(sr, fd, path, rel, sizeof(rel), err) < 0)
        return -1;
    return fn(data, fd, *last ? last : ".", rel, err);
}

/* ---- hashing the sources ------------------------------------------------ */

struct hash_ctx {
    struct chrun_digest_hasher h;
    char *buf;
    const struct chrun_copy_filter *filter;
};

static int hash_node(struct hash_ctx *hc, int pathfd, const char *rel, const char *ctxrel,
                     struct chrun_err *err);

struct hash_dir_args {
    struct hash_ctx *hc;
    const char *rel;
};

static int hash_entry(void *data, int fd, const char *name, const char *ctxrel,
                      struct chrun_err *err)
{
    struct hash_dir_args *a = data;
    cleanup_free char *sub = NULL;
    if (asprintf(&sub, "%s/%s", a->rel, name) < 0) {
        sub = NULL;
        return chrun_err_sys(err, ENOMEM, "hash sources");
    }
    return hash_node(a->hc, fd, sub, ctxrel, err);
}

static int hash_dir(struct hash_ctx *hc, int pathfd, const char *rel, const char *ctxrel,
                    struct chrun_err *err)
{
    struct hash_dir_args a = {hc, rel};
    return each_kept(hc->filter, pathfd, ctxrel, hash_entry, &a, err);
}

static int hash_node(struct hash_ctx *hc, int pathfd, const char *rel, const char *ctxrel,
                     struct chrun_err *err)
{
    struct chrun_digest_hasher *h = &hc->h;
    char *buf = hc->buf;
    struct stat st;
    char head[PATH_MAX + 64];
    int len;
    if (fstat(pathfd, &st) < 0)
        return chrun_err_sys(err, errno, "stat '%s'", rel);
    len = snprintf(head, sizeof(head), "%s%c%o%c%lld%c", rel, 0, (unsigned) st.st_mode, 0,
                   S_ISREG(st.st_mode) ? (long long) st.st_size : 0LL, 0);
    if (len >= (int) sizeof(head) || chrun_digest_hasher_update(h, head, (size_t) len, err) < 0)
        return len >= (int) sizeof(head) ? chrun_err_set(err, CHRUN_E_INPUT, "name too long")
                                         : -1;
    if (S_ISDIR(st.st_mode))
        return hash_dir(hc, pathfd, rel, ctxrel, err);
    if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlinkat(pathfd, "", buf, CHRUN_IO_BUFSZ);
        if (n < 0)
            return chrun_err_sys(err, errno, "read link '%s'", rel);
        return chrun_digest_hasher_update(h, buf, (size_t) n, err);
    }
    if (S_ISREG(st.st_mode)) {
        cleanup_close int fd = chrun_fs_reopen_regular(pathfd, O_RDONLY, err);
        ssize_t n;
        if (fd < 0)
            return chrun_err_prefix(err, "'%s'", rel);
        while ((n = chrun_io_read_full(fd, buf, CHRUN_IO_BUFSZ, err)) > 0)
            if (chrun_digest_hasher_update(h, buf, (size_t) n, err) < 0)
                return -1;
        return n < 0 ? chrun_err_prefix(err, "'%s'", rel) : 0;
    }
    return 0;
}

static int hash_source(void *data, int pathfd, const char *name, const char *rel,
                       struct chrun_err *err)
{
    return hash_node(data, pathfd, name, rel, err);
}

int chrun_copy_hash(int ctxfd, char *const *srcs, size_t n,
                    const struct chrun_copy_filter *filter, struct chrun_digest *ret,
                    struct chrun_err *err)
{
    struct hash_ctx hc = {.buf = malloc(CHRUN_IO_BUFSZ), .filter = filter};
    struct src_root sr = {.fd = ctxfd, .filter = filter};
    int rc = 0;
    if (hc.buf == NULL)
        return chrun_err_sys(err, ENOMEM, "hash sources");
    rc = chrun_digest_hasher_init(&hc.h, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = each_source(&sr, srcs[i], hash_source, &hc, err);
    if (rc == 0)
        rc = chrun_digest_hasher_final(&hc.h, ret, err);
    chrun_digest_hasher_release(&hc.h);
    free(hc.buf);
    return rc;
}

/* ---- destination ---------------------------------------------------------- */

int chrun_copy_mkdir(int rootfd, const char *path, struct chrun_err *err)
{
    /* docker's FollowSymlinkInScope: a destination through an image symlink
     * to a missing path creates that path inside the rootfs */
    return chrun_fs_mkdir_p_in_root(rootfd, path, 0755, CHRUN_FS_MKDIR_THROUGH_DANGLING, err);
}

/* The destination and the parents it lacks, made as buildah and BuildKit
 * make them: with --chown, each directory created gets that owner. */
static int dest_mkdir(const struct chrun_copy *c, const char *path, struct chrun_err *err)
{
    if (!c->chown)
        return chrun_copy_mkdir(c->rootfd, path, err);
    return chrun_fs_mkdir_p_in_root_owned(c->rootfd, path, 0755, CHRUN_FS_MKDIR_THROUGH_DANGLING,
                                          c->uid, c->gid, err);
}

struct copy_ctx {
    const struct chrun_copy *c;
    bool into_dir;
    char *buf;
    const struct chrun_copy_filter *filter; /* NULL when copying an unpacked archive */
};

static int set_meta(const struct copy_ctx *cc, int fd, const struct stat *st, const char *name,
                    struct chrun_err *err)
{
    struct timespec times[2] = {st->st_mtim, st->st_mtim};
    uid_t uid = cc->c->chown ? cc->c->uid : 0;
    gid_t gid = cc->c->chown ? cc->c->gid : 0;
    /* run by an ordinary user, files are that user's, which is root in the
     * single-id namespace RUN steps see; --chown to others cannot be done */
    bool owner_is_caller = geteuid() != 0 && !cc->c->chown;
    mode_t mode = cc->c->chmod ? cc->c->mode : st->st_mode & 07777;
    if ((!owner_is_caller && fchown(fd, uid, gid) < 0) || fchmod(fd, mode) < 0 ||
        futimens(fd, times) < 0)
        return chrun_err_sys(err, errno, "set owner, mode and time of '%s'", name);
    return 0;
}

/* Make room for a new entry NAME in DIRFD: a non-directory there goes. */
static int clear_target(int dirfd, const char *name, bool keep_dir, struct chrun_err *err)
{
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : chrun_err_sys(err, errno, "stat '%s'", name);
    if (S_ISDIR(st.st_mode) && keep_dir)
        return 0;
    return chrun_fs_rm_rf_at(dirfd, name, err);
}

static int copy_node(const struct copy_ctx *cc, int srcfd, int dirfd, const char *name,
                     const char *rel, struct chrun_err *err);

static int copy_file(const struct copy_ctx *cc, int srcfd, const struct stat *st, int dirfd,
                     const char *name, struct chrun_err *err)
{
    cleanup_close int in = chrun_fs_reopen_regular(srcfd, O_RDONLY, err);
    cleanup_close int out = -1;
    ssize_t n;
    if (in < 0)
        return chrun_err_prefix(err, "'%s'", name);
    if (clear_target(dirfd, name, false, err) < 0)
        return -1;
    out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
        return chrun_err_sys(err, errno, "create '%s'", name);
    while ((n = chrun_io_read_full(in, cc->buf, CHRUN_IO_BUFSZ, err)) > 0)
        if (chrun_io_write_full(out, cc->buf, (size_t) n, err) < 0)
            return chrun_err_prefix(err, "'%s'", name);
    if (n < 0)
        return chrun_err_prefix(err, "'%s'", name);
    return set_meta(cc, out, st, name, err);
}

static int copy_symlink(const struct copy_ctx *cc, int srcfd, const struct stat *st, int dirfd,
                        const char *name, struct chrun_err *err)
{
    struct timespec times[2] = {st->st_mtim, st->st_mtim};
    ssize_t n = readlinkat(srcfd, "", cc->buf, CHRUN_IO_BUFSZ - 1);
    if (n < 0)
        return chrun_err_sys(err, errno, "read link '%s'", name);
    cc->buf[n] = '\0';
    if (clear_target(dirfd, name, false, err) < 0)
        return -1;
    if (symlinkat(cc->buf, dirfd, name) < 0)
        return chrun_err_sys(err, errno, "create symlink '%s'", name);
    if (fchownat(dirfd, name, cc->c->chown ? cc->c->uid : 0, cc->c->chown ? cc->c->gid : 0,
                 AT_SYMLINK_NOFOLLOW) < 0 ||
        utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW) < 0)
        return chrun_err_sys(err, errno, "set owner and time of '%s'", name);
    return 0;
}

struct copy_dir_args {
    const struct copy_ctx *cc;
    int dstfd;
};

static int copy_entry(void *data, int fd, const char *name, const char *rel,
                      struct chrun_err *err)
{
    struct copy_dir_args *a = data;
    return copy_node(a->cc, fd, a->dstfd, name, rel, err);
}

/* Copy the entries of directory SRCFD (REL below the source root) into
 * directory DSTFD. */
static int copy_contents(const struct copy_ctx *cc, int srcfd, int dstfd, const char *rel,
                         struct chrun_err *err)
{
    struct copy_dir_args a = {cc, dstfd};
    return each_kept(cc->filter, srcfd, rel, copy_entry, &a, err);
}

static int copy_dir(const struct copy_ctx *cc, int srcfd, const struct stat *st, int dirfd,
                    const char *name, const char *rel, struct chrun_err *err)
{
    cleanup_close int dst = -1;
    if (clear_target(dirfd, name, true, err) < 0)
        return -1;
    if (mkdirat(dirfd, name, 0700) < 0 && errno != EEXIST)
        return chrun_err_sys(err, errno, "create directory '%s'", name);
    dst = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dst < 0)
        return chrun_err_sys(err, errno, "open directory '%s'", name);
    if (copy_contents(cc, srcfd, dst, rel, err) < 0)
        return chrun_err_prefix(err, "'%s'", name);
    return set_meta(cc, dst, st, name, err);
}

static int copy_node(const struct copy_ctx *cc, int srcfd, int dirfd, const char *name,
                     const char *rel, struct chrun_err *err)
{
    struct stat st;
    if (fstat(srcfd, &st) < 0)
        return chrun_err_sys(err, errno, "stat source '%s'", name);
    if (S_ISREG(st.st_mode))
        return copy_file(cc, srcfd, &st, dirfd, name, err);
    if (S_ISDIR(st.st_mode))
        return copy_dir(cc, srcfd, &st, dirfd, name, rel, err);
    if (S_ISLNK(st.st_mode))
        return copy_symlink(cc, srcfd, &st, dirfd, name, err);
    return chrun_err_set(err, CHRUN_E_INPUT, "source '%s' is not a file, directory or symlink",
                         name);
}

/* ---- ADD of archives ------------------------------------------------------ */

/* Is the file at FD a tar (plain, gzip or zstd)? On yes, fill DESC (media
 * type, digest, size) and DIFF_ID for the layer applier. */
static int probe_archive(int fd, char *buf, struct chrun_descriptor *desc,
                         struct chrun_digest *diff_id, bool *ret_is, struct chrun_err *err)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    struct chrun_digest_hasher h = {0};
    size_t got = 0, fill = 0;
    bool checked = false, ustar = false;
    la_ssize_t n;
    int rc = 0;
    *ret_is = false;
    if (a == NULL)
        return chrun_err_sys(err, ENOMEM, "ADD");
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_zstd(a);
    archive_read_support_format_raw(a);
    if (lseek(fd, 0, SEEK_SET) < 0 || archive_read_open_fd(a, fd, CHRUN_IO_BUFSZ) != ARCHIVE_OK ||
        archive_read_next_header(a, &e) != ARCHIVE_OK || chrun_digest_hasher_init(&h, err) < 0) {
        archive_read_free(a);
        chrun_digest_hasher_release(&h);
        return 0; /* not readable as a stream: an ordinary file */
    }
    /* the first 512 bytes stay together in BUF for the tar magic check */
    while (rc == 0 && (n = archive_read_data(a, buf + fill, CHRUN_IO_BUFSZ - fill)) > 0) {
        rc = chrun_digest_hasher_update(&h, buf + fill, (size_t) n, err);
        got += (size_t) n;
        fill = got < 512 ? got : 0;
        if (got >= 512 && !checked) {
            /* BUF is reused for the rest of the stream: decide now */
            checked = true;
            ustar = memcmp(buf + 257, "ustar", 5) == 0;
            if (!ustar)
                break;
        }
    }
    if (rc == 0 && checked && n < 0)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "corrupt archive: %s", archive_error_string(a));
    if (rc == 0 && ustar && n == 0) {
        int code = archive_filter_code(a, 0);
        *ret_is = true;
        snprintf(desc->media_type, sizeof(desc->media_type), "%s",
                 code == ARCHIVE_FILTER_GZIP   ? CHRUN_MT_OCI_LAYER_GZIP
                 : code == ARCHIVE_FILTER_ZSTD ? CHRUN_MT_OCI_LAYER_ZSTD
                                               : CHRUN_MT_OCI_LAYER);
        rc = chrun_digest_hasher_final(&h, diff_id, err);
    }
    archive_read_free(a);
    chrun_digest_hasher_release(&h);
    if (rc == 0 && *ret_is) {
        struct chrun_digest_hasher fh = {0};
        rc = chrun_digest_hasher_init(&fh, err);
        if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
            rc = chrun_err_sys(err, errno, "ADD archive");
        while (rc == 0 && (n = chrun_io_read_full(fd, buf, CHRUN_IO_BUFSZ, err)) > 0)
            rc = chrun_digest_hasher_update(&fh, buf, (size_t) n, err);
        if (rc == 0 && n < 0)
            rc = -1;
        desc->size = (int64_t) fh.size_bytes;
        if (rc == 0)
            rc = chrun_digest_hasher_final(&fh, &desc->digest, err);
        chrun_digest_hasher_release(&fh);
    }
    return rc;
}

/* Unpack the tar at FD into directory DESTFD with the layer applier. */
static int extract(int fd, int destfd, const struct chrun_descriptor *desc,
                   const struct chrun_digest *diff_id, struct chrun_err *err)
{
    struct chrun_layer_applier *a = chrun_layer_applier_new(destfd, err);
    int rc;
    if (a == NULL)
        return -1;
    /* an ADD archive is a tarball, not a layer: its .wh. names delete nothing */
    chrun_layer_applier_set_tarball(a, true);
    rc = lseek(fd, 0, SEEK_SET) < 0 ? chrun_err_sys(err, errno, "ADD archive")
                                    : chrun_layer_apply(a, fd, desc, diff_id, err);
    if (rc == 0)
        rc = chrun_layer_applier_finish(a, err);
    chrun_layer_applier_free(a);
    return rc;
}

/* ---- one source -> destination ------------------------------------------- */

static int open_dest_dir(const struct chrun_copy *c, struct chrun_err *err)
{
    if (dest_mkdir(c, c->dest, err) < 0)
        return -1;
    return chrun_fs_open_in_root(c->rootfd, c->dest, O_RDONLY | O_DIRECTORY, 0, err);
}

/* ADD --chown/--chmod of an archive: unpack it in a scratch directory, then
 * copy from there with the new owners and modes, which the applier would
 * take from the archive. */
static int extract_via_scratch(const struct copy_ctx *cc, int fd,
                               const struct chrun_descriptor *desc,
                               const struct chrun_digest *diff_id, struct chrun_err *err)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    struct copy_ctx sub = {.c = cc->c, .into_dir = true, .buf = cc->buf};
    char name[NAME_MAX + 1];
    cleanup_close int scratch = -1, dst = -1;
    int rc;
    if (chrun_fs_mkdtemp_at(cc->c->tmpfd, "add-", name, sizeof(name), err) < 0)
        return -1;
    scratch = openat(cc->c->tmpfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    rc = scratch < 0 ? chrun_err_sys(err, errno, "open '%s'", name)
                     : extract(fd, scratch, desc, diff_id, err);
    if (rc == 0) {
        dst = open_dest_dir(cc->c, err);
        rc = dst < 0 ? -1 : copy_contents(&sub, scratch, dst, "", err);
    }
    chrun_fs_rm_rf_at(cc->c->tmpfd, name, &ignored);
    return rc;
}

int chrun_copy_extract(int fd, int destfd, bool *ret_is_tar, struct chrun_err *err)
{
    struct chrun_descriptor desc = {0};
    struct chrun_digest diff_id;
    cleanup_free char *buf = malloc(CHRUN_IO_BUFSZ);
    if (buf == NULL)
        return chrun_err_sys(err, ENOMEM, "extract");
    if (probe_archive(fd, buf, &desc, &diff_id, ret_is_tar, err) < 0)
        return -1;
    return *ret_is_tar ? extract(fd, destfd, &desc, &diff_id, err) : 0;
}

static int copy_source(void *data, int pathfd, const char *name, const char *rel,
                       struct chrun_err *err)
{
    const struct copy_ctx *cc = data;
    const struct chrun_copy *c = cc->c;
    struct stat st;
    cleanup_close int dirfd = -1;
    const char *base = name;
    if (fstat(pathfd, &st) < 0)
        return chrun_err_sys(err, errno, "stat source '%s'", name);
    if (c->extract && S_ISREG(st.st_mode)) {
        struct chrun_descriptor desc = {0};
        struct chrun_digest diff_id;
        bool is_tar = false;
        cleanup_close int fd = chrun_fs_reopen_regular(pathfd, O_RDONLY, err);
        if (fd < 0 || probe_archive(fd, cc->buf, &desc, &diff_id, &is_tar, err) < 0)
            return chrun_err_prefix(err, "ADD '%s'", name);
        if (is_tar && (c->chown || c->chmod) && c->tmpfd >= 0) {
            if (extract_via_scratch(cc, fd, &desc, &diff_id, err) < 0)
                return chrun_err_prefix(err, "ADD '%s'", name);
            return 0;
        }
        if (is_tar) {
            dirfd = open_dest_dir(c, err);
            if (dirfd < 0 || extract(fd, dirfd, &desc, &diff_id, err) < 0)
                return chrun_err_prefix(err, "ADD '%s'", name);
            return 0;
        }
    }
    if (S_ISDIR(st.st_mode)) {
        cleanup_close int dst = open_dest_dir(c, err);
        return dst < 0 ? -1 : copy_contents(cc, pathfd, dst, rel, err);
    }
    if (cc->into_dir) {
        dirfd = open_dest_dir(c, err);
    } else {
        char parent[PATH_MAX];
        const char *slash = strrchr(c->dest, '/');
        snprintf(parent, sizeof(parent), "%.*s", (int) (slash ? slash - c->dest : 0), c->dest);
        if (*parent != '\0' && dest_mkdir(c, parent, err) < 0)
            return -1;
        dirfd = chrun_fs_open_parent_in_root(c->rootfd, c->dest, &base, err);
    }
    if (dirfd < 0)
        return -1;
    return copy_node(cc, pathfd, dirfd, base, rel, err);
}

/* DEST names a directory: it ends with '/', or it is one in the rootfs. */
static bool dest_is_dir(const struct chrun_copy *c)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    struct stat st;
    int fd;
    size_t len = strlen(c->dest);
    if (len > 0 && c->dest[len - 1] == '/')
        return true;
    fd = chrun_fs_open_in_root(c->rootfd, c->dest, O_PATH, 0, &ignored);
    if (fd < 0)
        return false;
    bool dir = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
    close(fd);
    return dir;
}

int chrun_copy_run(const struct chrun_copy *c, char *const *srcs, size_t n,
                   struct chrun_err *err)
{
    struct copy_ctx cc = {.c = c, .buf = malloc(CHRUN_IO_BUFSZ), .filter = c->filter};
    struct src_root sr = {.fd = c->ctxfd, .in_root = c->src_in_root, .filter = c->filter};
    int rc = 0;
    if (cc.buf == NULL)
        return chrun_err_sys(err, ENOMEM, "copy");
    cc.into_dir = n > 1 || dest_is_dir(c) || strpbrk(srcs[0], "*?[") != NULL;
    if (n > 1 && c->dest[strlen(c->dest) - 1] != '/' && !dest_is_dir(c))
        rc = chrun_err_set(err, CHRUN_E_INPUT,
                           "destination '%s' must be a directory (end it with '/') for several "
                           "sources",
                           c->dest);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = each_source(&sr, srcs[i], copy_source, &cc, err);
    free(cc.buf);
    return rc;
}
