/* Root filesystem snapshots, their differences, and the layer tar of a
 * difference (see include/chrun/changeset.h). */
#include "chrun/changeset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "archive-error.h"
#include "cleanup.h"
#include "util.h"

#define WHITEOUT_PREFIX ".wh."

struct snap_entry {
    char *path; /* relative to the root, no leading "./" */
    struct stat st;
    char *link;     /* symlink target, else NULL */
    char *data;     /* bytes in an overlay's lower (a metacopy file, an entry of a moved
                     * directory): that path, else NULL */
    ino_t data_ino; /* the lower file DATA named when the upper was walked */
};

struct chrun_snapshot {
    struct snap_entry *e;
    size_t n, cap;
};

/* Where the bytes of an entry of an overlay upper are in the lower. */
struct lower_data {
    char *path; /* NULL: in the upper */
    ino_t ino;
};

void chrun_snapshot_free(struct chrun_snapshot *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->e[i].path);
        free(s->e[i].link);
        free(s->e[i].data);
    }
    free(s->e);
    free(s);
}

/* Add an entry; PATH, LINK and DATA->path are taken (freed on failure). */
static int snap_add(struct chrun_snapshot *s, char *path, const struct stat *st, char *link,
                    struct lower_data *data, struct chrun_err *err)
{
    if (chrun_grow(&s->e, &s->cap, s->n + 1, sizeof(*s->e), err) < 0) {
        free(path);
        free(link);
        free(data->path);
        return chrun_err_prefix(err, "snapshot");
    }
    s->e[s->n++] = (struct snap_entry){
        .path = path, .st = *st, .link = link, .data = data->path, .data_ino = data->ino};
    data->path = NULL;
    return 0;
}

static char *read_link_at(int dfd, const char *name, const struct stat *st, struct chrun_err *err)
{
    size_t size = (size_t) st->st_size + 1;
    char *buf = malloc(size > PATH_MAX ? size : PATH_MAX);
    ssize_t n;
    if (buf == NULL) {
        chrun_err_sys(err, ENOMEM, "snapshot");
        return NULL;
    }
    n = readlinkat(dfd, name, buf, PATH_MAX - 1);
    if (n < 0) {
        chrun_err_sys(err, errno, "read link '%s'", name);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* What a walk fills: a snapshot, and for an overlay upper directory also
 * the whiteouts its whiteout devices and opaque directories stand for. */
struct walker {
    struct chrun_snapshot *s;
    struct plan *upper;   /* NULL: a plain tree */
    int lowerfd;          /* the upper's lower tree */
    const char *xattr_ns; /* the overlay's xattrs: "trusted." or "user." */
    bool needs_lower;     /* the upper alone says too little (see chrun_changeset_write_upper) */
};

static int plan_add_whiteout(struct plan *p, const char *dir, size_t dir_len, const char *name,
                             struct chrun_err *err);

static int walk_dir(struct walker *w, int dfd, const char *prefix, const char *lower,
                    struct chrun_err *err);

/* Whether the overlay xattr W->xattr_ns + "overlay." + NAME of FD (or of
 * PROC_PATH when FD < 0) exists; with VALUE, whether it holds that value.
 * Returns 1, 0, or -1 with ERR. */
static int overlay_xattr(const struct walker *w, int fd, const char *proc_path, const char *name,
                         const char *value, const char *what, struct chrun_err *err)
{
    char key[64], buf[8];
    ssize_t n;
    snprintf(key, sizeof(key), "%soverlay.%s", w->xattr_ns, name);
    n = fd >= 0 ? fgetxattr(fd, key, buf, sizeof(buf))
                : lgetxattr(proc_path, key, buf, sizeof(buf));
    if (n < 0 && (errno == ENODATA || errno == ENOTSUP))
        return 0;
    if (n < 0 && errno != ERANGE)
        return chrun_err_sys(err, errno, "read %s of '%s'", key, what);
    if (value == NULL)
        return 1;
    return n == (ssize_t) strlen(value) && memcmp(buf, value, (size_t) n) == 0;
}

/* Cap on an overlay redirect xattr (the kernel's redirect_max is 256 by
 * default, at most PATH_MAX). */
#define REDIRECT_MAX PATH_MAX

/* Read the overlay redirect xattr of FD (or of PROC when FD < 0; WHAT names
 * the entry) into BUF (REDIRECT_MAX bytes). Returns 1 when there is one,
 * 0 when not, -1 with ERR. */
static int read_redirect(const struct walker *w, int fd, const char *proc, const char *what,
                         char *buf, struct chrun_err *err)
{
    char key[64];
    ssize_t n;
    snprintf(key, sizeof(key), "%soverlay.redirect", w->xattr_ns);
    n = fd >= 0 ? fgetxattr(fd, key, buf, REDIRECT_MAX - 1)
                : lgetxattr(proc, key, buf, REDIRECT_MAX - 1);
    if (n < 0 && (errno == ENODATA || errno == ENOTSUP))
        return 0;
    if (n < 0)
        return chrun_err_sys(err, errno, "read %s of '%s'", key, what);
    buf[n] = '\0';
    if (strlen(buf) != (size_t) n)
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s': invalid %s", what, key);
    return 1;
}

/* The lower path (into OUT, SIZE bytes) that overlayfs reads for entry NAME
 * of an upper directory whose lower directory is LOWER ("a/b/", "" for the
 * root; NULL: it has none), when the entry's own redirect xattr is REDIRECT
 * (NULL: none). As overlayfs looks it up (fs/overlayfs/namei.c): no redirect
 * is NAME in LOWER; an absolute one is a path from the lower root; a
 * relative one is a name in LOWER. Returns 0; 1 when there is no lower path
 * (LOWER is NULL and the redirect is not absolute); -1 for a redirect the
 * kernel never writes (an empty, ".", ".." or, when relative,
 * multi-component name). */
static int redirect_path(const char *lower, const char *name, const char *redirect, char *out,
                         size_t size)
{
    const char *p;
    int n;
    if (redirect != NULL && redirect[0] != '/' && strchr(redirect, '/') != NULL)
        return -1;
    if (redirect != NULL && redirect[0] == '/')
        n = snprintf(out, size, "%s", redirect + 1);
    else if (lower == NULL)
        return 1;
    else
        n = snprintf(out, size, "%s%s", lower, redirect ? redirect : name);
    if (n < 0 || (size_t) n >= size)
        return -1;
    for (p = out;; p += strcspn(p, "/") + 1) {
        size_t len = strcspn(p, "/");
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return -1;
        if (p[len] == '\0')
            return 0;
    }
}

/* Entry NAME (PATH) of an upper directory whose lower directory is LOWER
 * (see redirect_path), seen through PROC, is a metacopy file (metadata
 * copied up, bytes left in the lower): find its bytes. The lower file is
 * opened below W->lowerfd through real directories only (what the image
 * controls is never followed), and must be a regular file of the upper's
 * size. SAME: the lower entry NAME of LOWER, when the caller found one (no
 * second lookup of it), or NULL. Sets W->needs_lower when the upper alone
 * cannot say it: several upper names of one metacopy inode (each may come
 * from elsewhere), lower bytes shared by several names (overlayfs broke the
 * link, as in upper_entry), or no lower directory to look in. Returns 0
 * (RET->path set, or needs_lower), or -1 with ERR. */
static int metacopy_data(struct walker *w, const char *proc, const char *lower, const char *name,
                         const char *path, const struct stat *st, const struct stat *same,
                         struct lower_data *ret, struct chrun_err *err)
{
    cleanup_free char *redirect = NULL, *from = NULL;
    cleanup_close int fd = -1;
    struct stat lst;
    int rc;
    if (st->st_nlink > 1) {
        w->needs_lower = true;
        return 0;
    }
    redirect = malloc(REDIRECT_MAX);
    from = malloc(PATH_MAX);
    if (redirect == NULL || from == NULL)
        return chrun_err_sys(err, ENOMEM, "snapshot");
    rc = read_redirect(w, -1, proc, path, redirect, err);
    if (rc < 0)
        return -1;
    switch (redirect_path(lower, name, rc > 0 ? redirect : NULL, from, PATH_MAX)) {
    case 0: break;
    case 1: w->needs_lower = true; return 0;
    default: return chrun_err_set(err, CHRUN_E_INPUT, "'%s': invalid overlay redirect", path);
    }
    if (rc == 0 && same != NULL) {
        lst = *same;
    } else {
        fd = chrun_fs_open_at(w->lowerfd, from, O_PATH | O_NOFOLLOW, 0,
                              CHRUN_FS_BENEATH_NO_SYMLINKS, err);
        if (fd < 0)
            return chrun_err_prefix(err, "metacopy file '%s': its lower file", path);
        if (fstat(fd, &lst) < 0)
            return chrun_err_sys(err, errno, "stat lower '%s'", from);
    }
    if (!S_ISREG(lst.st_mode) || lst.st_size != st->st_size)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "metacopy file '%s': lower '%s' is not a file of its size", path,
                             from);
    if (lst.st_nlink > 1) {
        w->needs_lower = true;
        return 0;
    }
    ret->path = strdup(from);
    if (ret->path == NULL)
        return chrun_err_sys(err, ENOMEM, "snapshot");
    ret->ino = lst.st_ino;
    return 0;
}

/* Stat PATH ("a/b", "" for the root) of the lower, reached without
 * symlinks. Returns true when it is there. */
static bool lower_stat(const struct walker *w, const char *path, struct stat *ret)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    cleanup_close int fd = chrun_fs_open_at(w->lowerfd, path, O_PATH | O_NOFOLLOW, 0,
                                            CHRUN_FS_BENEATH_NO_SYMLINKS, &ignored);
    return fd >= 0 && fstat(fd, ret) == 0;
}

/* Whether the upper directory PREFIX, whose lower directory is LOWER, was
 * moved (a renamed lower directory, or inside one): its lower contents sit
 * under another name, and the layer must carry them. */
static bool dir_moved(const char *prefix, const char *lower)
{
    return lower != NULL && !streq(prefix, lower);
}

/* The overlay-upper parts of entry NAME (PATH) of directory DFD (PREFIX,
 * its lower directory LOWER): returns 1 when the entry is a whiteout
 * (recorded, not to be kept as an entry), 0 to record it (with RET set for
 * a metacopy file), -1 with ERR. */
static int upper_entry(struct walker *w, int dfd, const char *prefix, const char *lower,
                       const char *name, const char *path, const struct stat *st,
                       struct lower_data *ret, struct chrun_err *err)
{
    char proc[PATH_MAX], below[PATH_MAX];
    struct stat lst;
    bool in_lower = false;
    int rc;
    /* overlayfs: a character device 0/0 in the upper hides NAME of the
     * lower; in a moved directory it hides a name of the old place, which
     * the layer's tree never had (chrun_changeset_write_upper takes the
     * whole moved tree only where the lower has nothing) */
    bool whiteout = S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
    if (snprintf(below, sizeof(below), "%s%s", lower ? lower : prefix, name) >=
        (int) sizeof(below))
        return chrun_err_sys(err, ENAMETOOLONG, "'%s'", path);
    if (!S_ISDIR(st->st_mode)) {
        /* copying up one name of a hardlinked lower file breaks the link:
         * the step saw the other names unchanged, where on one tree it
         * would have changed them all; removing one changes the others'
         * link count (and ctime), which the full walk records */
        in_lower = lower_stat(w, below, &lst);
        if (in_lower && S_ISREG(lst.st_mode) && lst.st_nlink > 1) {
            w->needs_lower = true;
            return 0;
        }
    }
    if (whiteout && dir_moved(prefix, lower))
        return 1;
    if (whiteout)
        return plan_add_whiteout(w->upper, prefix, strlen(prefix), name, err) < 0 ? -1 : 1;
    if (!S_ISREG(st->st_mode))
        return 0;
    /* a metacopy upper file holds no data (never read it): its bytes are
     * in the lower */
    if (snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dfd, name) >= (int) sizeof(proc))
        return chrun_err_sys(err, ENAMETOOLONG, "'%s'", path);
    rc = overlay_xattr(w, -1, proc, "metacopy", NULL, path, err);
    if (rc <= 0)
        return rc;
    return metacopy_data(w, proc, lower, name, path, st, in_lower && lower ? &lst : NULL, ret,
                         err);
}

/* Whether the lower has a directory at DIR_PATH ("a/b/"), reached without
 * symlinks: only then has an opaque directory of the upper something to
 * hide (overlayfs also marks a directory made where a file was). */
static bool lower_is_dir(const struct walker *w, const char *dir_path)
{
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof(path), "%.*s", (int) strlen(dir_path) - 1, dir_path);
    return lower_stat(w, path, &st) && S_ISDIR(st.st_mode);
}

/* The overlay-upper parts of directory FD (PATH, entry NAME of a directory
 * whose lower directory is LOWER): *RET_LOWER becomes its own lower
 * directory ("a/b/", malloc'd) or NULL. An opaque one hides the lower
 * directory's whole contents; a redirected one (a renamed lower directory,
 * redirect_dir=on) takes them from the lower directory its redirect names.
 * Sets W->needs_lower for a redirect the upper alone cannot settle: the
 * lower has something at PATH too (the layer would need whiteouts for what
 * the step saw vanish there), the directory is also opaque, or the redirect
 * leads to no lower directory. Returns 0 or -1 with ERR. */
static int upper_dir(struct walker *w, int fd, const char *path, const char *name,
                     const char *lower, char **ret_lower, struct chrun_err *err)
{
    cleanup_free char *redirect = malloc(REDIRECT_MAX), *from = malloc(PATH_MAX);
    char here[PATH_MAX];
    struct stat st;
    int rc, opaque;
    *ret_lower = NULL;
    if (redirect == NULL || from == NULL)
        return chrun_err_sys(err, ENOMEM, "snapshot");
    rc = read_redirect(w, fd, NULL, path, redirect, err);
    opaque = rc < 0 ? -1 : overlay_xattr(w, fd, NULL, "opaque", "y", path, err);
    if (opaque < 0)
        return -1;
    if (rc > 0) {
        snprintf(here, sizeof(here), "%.*s", (int) strlen(path) - 1, path);
        switch (redirect_path(lower, name, redirect, from, PATH_MAX)) {
        case 0: break;
        case 1: w->needs_lower = true; return 0;
        default: return chrun_err_set(err, CHRUN_E_INPUT, "'%s': invalid overlay redirect", path);
        }
        if (opaque > 0 || lower_stat(w, here, &st) || !lower_stat(w, from, &st) ||
            !S_ISDIR(st.st_mode)) {
            w->needs_lower = true;
            return 0;
        }
        return asprintf(ret_lower, "%s/", from) < 0 ? chrun_err_sys(err, ENOMEM, "snapshot") : 0;
    }
    if (opaque > 0) {
        if (lower_is_dir(w, path))
            return plan_add_whiteout(w->upper, path, strlen(path), WHITEOUT_PREFIX ".opq", err);
        return 0;
    }
    if (lower != NULL && asprintf(ret_lower, "%s%s/", lower, name) < 0)
        return chrun_err_sys(err, ENOMEM, "snapshot");
    return 0;
}

/* PREFIX + NAME as a new string in *RET, or -1 with ERR for a name no layer
 * can keep. */
static int entry_path(const char *prefix, const char *name, char **ret, struct chrun_err *err)
{
    if (asprintf(ret, "%s%s", prefix, name) < 0) {
        *ret = NULL;
        return chrun_err_sys(err, ENOMEM, "snapshot");
    }
    /* a layer entry named ".wh.*" is a whiteout to every reader */
    if (strncmp(name, ".wh.", 4) == 0)
        chrun_err_set(err, CHRUN_E_INPUT, "'%s': a '.wh.' name cannot be kept in an image layer",
                      *ret);
    /* the layer writer and its diff work on PATH_MAX names: a longer one
     * would drop out of the layer unnoticed, so the step fails instead */
    else if (strlen(*ret) >= PATH_MAX - 1)
        chrun_err_sys(err, ENAMETOOLONG, "snapshot '%.64s...'", *ret);
    else
        return 0;
    free(*ret);
    *ret = NULL;
    return -1;
}

static int lower_tree(struct walker *w, int ldfd, int udfd, const char *prefix,
                      const char *lower, struct chrun_err *err);

/* Record entry NAME of the lower directory LDFD (LOWER) as entry NAME of
 * the moved upper directory PREFIX, its bytes from the lower, and its whole
 * subtree with it. */
static int lower_entry(struct walker *w, int ldfd, const char *prefix, const char *lower,
                       const char *name, struct chrun_err *err)
{
    struct stat st;
    struct lower_data data = {NULL, 0};
    char *path = NULL, *link = NULL;
    if (fstatat(ldfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return chrun_err_sys(err, errno, "stat '%s%s' of the lower", lower, name);
    if (entry_path(prefix, name, &path, err) < 0)
        return -1;
    if (S_ISREG(st.st_mode) && asprintf(&data.path, "%s%s", lower, name) < 0) {
        free(path);
        return chrun_err_sys(err, ENOMEM, "snapshot");
    }
    data.ino = st.st_ino;
    if (S_ISLNK(st.st_mode) && (link = read_link_at(ldfd, name, &st, err)) == NULL) {
        free(path);
        return -1;
    }
    if (snap_add(w->s, path, &st, link, &data, err) < 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        cleanup_free char *sub = NULL, *lsub = NULL;
        int fd = openat(ldfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return chrun_err_sys(err, errno, "open '%s%s' of the lower", lower, name);
        if (asprintf(&sub, "%s%s/", prefix, name) < 0 ||
            asprintf(&lsub, "%s%s/", lower, name) < 0) {
            close(fd);
            return chrun_err_sys(err, ENOMEM, "snapshot");
        }
        return lower_tree(w, fd, -1, sub, lsub, err);
    }
    return 0;
}

/* Record the entries of the lower directory LDFD (LOWER; taken: closed
 * here) as entries of the moved upper directory PREFIX, except the names
 * the upper directory UDFD (-1: none) has: its own entries, whiteouts and
 * opaque directories, walked already. */
static int lower_tree(struct walker *w, int ldfd, int udfd, const char *prefix,
                      const char *lower, struct chrun_err *err)
{
    cleanup_closedir DIR *d = fdopendir(ldfd);
    struct dirent *de;
    if (d == NULL) {
        int e = errno;
        close(ldfd);
        return chrun_err_sys(err, e, "read directory '%s' of the lower", lower);
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        struct stat st;
        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
            continue;
        if (udfd >= 0 && fstatat(udfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            continue;
        if (udfd >= 0 && errno != ENOENT)
            return chrun_err_sys(err, errno, "stat '%s%s'", prefix, de->d_name);
        if (lower_entry(w, dirfd(d), prefix, lower, de->d_name, err) < 0)
            return -1;
    }
    if (errno != 0)
        return chrun_err_sys(err, errno, "read directory '%s' of the lower", lower);
    return 0;
}

/* The moved upper directory UDFD (PREFIX) shows its lower directory LOWER
 * beneath it: record what the upper does not replace or hide. */
static int merge_lower(struct walker *w, int udfd, const char *prefix, const char *lower,
                       struct chrun_err *err)
{
    struct chrun_err probe = CHRUN_ERR_INIT;
    char path[PATH_MAX];
    int fd;
    snprintf(path, sizeof(path), "%.*s", (int) strlen(lower) - 1, lower);
    fd = chrun_fs_open_at(w->lowerfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0,
                          CHRUN_FS_BENEATH_NO_SYMLINKS, &probe);
    if (fd < 0 && (probe.errnum == ENOENT || probe.errnum == ENOTDIR))
        return 0; /* an upper directory made in the moved one: nothing beneath */
    if (fd < 0) {
        *err = probe;
        return -1;
    }
    return lower_tree(w, fd, udfd, prefix, lower, err);
}

/* Record entry NAME of directory DFD (path PREFIX/NAME, lower directory
 * LOWER when an overlay upper) and descend. */
static int walk_entry(struct walker *w, int dfd, const char *prefix, const char *lower,
                      const char *name, struct chrun_err *err)
{
    struct stat st;
    struct lower_data data = {NULL, 0};
    char *path = NULL, *link = NULL;
    int rc;
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return chrun_err_sys(err, errno, "stat '%s%s'", prefix, name);
    if (entry_path(prefix, name, &path, err) < 0)
        return -1;
    rc = w->upper ? upper_entry(w, dfd, prefix, lower, name, path, &st, &data, err) : 0;
    if (rc != 0 || w->needs_lower) {
        free(path);
        free(data.path);
        return rc < 0 ? -1 : 0;
    }
    if (S_ISLNK(st.st_mode) && (link = read_link_at(dfd, name, &st, err)) == NULL) {
        free(path);
        return -1;
    }
    if (snap_add(w->s, path, &st, link, &data, err) < 0)
        return -1;
    if (S_ISDIR(st.st_mode)) {
        cleanup_free char *sub = NULL, *sublower = NULL;
        cleanup_close int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return chrun_err_sys(err, errno, "open '%s%s'", prefix, name);
        if (asprintf(&sub, "%s%s/", prefix, name) < 0)
            return chrun_err_sys(err, ENOMEM, "snapshot");
        if (w->upper && upper_dir(w, fd, sub, name, lower, &sublower, err) < 0)
            return -1;
        if (w->needs_lower)
            return 0;
        return walk_dir(w, take_fd(fd), sub, sublower, err);
    }
    return 0;
}

/* Walk the directory DFD (taken: closed here) whose path is PREFIX; for an
 * overlay upper, LOWER is its lower directory ("a/b/", "" for the root, NULL
 * for none), and a moved directory gets what its lower directory holds. */
static int walk_dir(struct walker *w, int dfd, const char *prefix, const char *lower,
                    struct chrun_err *err)
{
    cleanup_closedir DIR *d = fdopendir(dfd);
    struct dirent *de;
    if (d == NULL) {
        int e = errno;
        close(dfd);
        return chrun_err_sys(err, e, "read directory '%s'", prefix);
    }
    while (!w->needs_lower && (errno = 0, de = readdir(d)) != NULL) {
        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
            continue;
        if (walk_entry(w, dirfd(d), prefix, lower, de->d_name, err) < 0)
            return -1;
    }
    if (!w->needs_lower && errno != 0)
        return chrun_err_sys(err, errno, "read directory '%s'", prefix);
    if (w->upper && !w->needs_lower && dir_moved(prefix, lower))
        return merge_lower(w, dirfd(d), prefix, lower, err);
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct snap_entry *) a)->path, ((const struct snap_entry *) b)->path);
}

struct chrun_snapshot *chrun_snapshot_take(int rootfd, struct chrun_err *err)
{
    struct chrun_snapshot *s = calloc(1, sizeof(*s));
    int fd;
    if (s == NULL) {
        chrun_err_sys(err, ENOMEM, "snapshot");
        return NULL;
    }
    fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || walk_dir(&(struct walker){.s = s}, fd, "", NULL, err) < 0) {
        if (fd < 0)
            chrun_err_sys(err, errno, "open rootfs");
        chrun_snapshot_free(s);
        return NULL;
    }
    /* strcmp order puts every directory before its contents */
    if (s->n > 0)
        qsort(s->e, s->n, sizeof(*s->e), entry_cmp);
    return s;
}

static const struct snap_entry *snap_find(const struct chrun_snapshot *s, const char *path)
{
    struct snap_entry key = {.path = (char *) path};
    if (s->n == 0)
        return NULL;
    return bsearch(&key, s->e, s->n, sizeof(*s->e), entry_cmp);
}

static bool ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool entry_changed(const struct snap_entry *a, const struct snap_entry *b)
{
    if (a->st.st_mode != b->st.st_mode || a->st.st_uid != b->st.st_uid ||
        a->st.st_gid != b->st.st_gid || a->st.st_rdev != b->st.st_rdev ||
        !ts_eq(a->st.st_mtim, b->st.st_mtim))
        return true;
    if (S_ISDIR(a->st.st_mode))
        return false;
    if (a->st.st_size != b->st.st_size || a->st.st_ino != b->st.st_ino ||
        !ts_eq(a->st.st_ctim, b->st.st_ctim))
        return true;
    return (a->link || b->link) && (!a->link || !b->link || !streq(a->link, b->link));
}

/* A deletion is covered when an ancestor is gone from AFTER or is no longer
 * a directory there: that ancestor's whiteout or replacement removes it. */
static bool deletion_covered(const struct chrun_snapshot *after, const char *path)
{
    char buf[PATH_MAX];
    char *slash;
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int) sizeof(buf))
        return false;
    while ((slash = strrchr(buf, '/')) != NULL) {
        const struct snap_entry *e;
        *slash = '\0';
        e = snap_find(after, buf);
        if (e == NULL || !S_ISDIR(e->st.st_mode))
            return true;
    }
    return false;
}

int chrun_changeset_diff(const struct chrun_snapshot *before, const struct chrun_snapshot *after,
                         int (*fn)(void *data, enum chrun_change_kind kind, const char *path,
                                   struct chrun_err *err),
                         void *data, struct chrun_err *err)
{
    size_t i = 0, j = 0;
    while (i < before->n || j < after->n) {
        int c = i == before->n  ? 1
                : j == after->n ? -1
                                : strcmp(before->e[i].path, after->e[j].path);
        int rc = 0;
        if (c < 0) {
            if (!deletion_covered(after, before->e[i].path))
                rc = fn(data, CHRUN_CHANGE_DELETE, before->e[i].path, err);
            i++;
        } else if (c > 0) {
            rc = fn(data, CHRUN_CHANGE_ADD, after->e[j].path, err);
            j++;
        } else {
            if (entry_changed(&before->e[i], &after->e[j]))
                rc = fn(data, CHRUN_CHANGE_MODIFY, after->e[j].path, err);
            i++;
            j++;
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- the layer tar ------------------------------------------------------- */

/* What goes into the layer: entries of AFTER (marked) and whiteout names. */
struct plan {
    const struct chrun_snapshot *after;
    bool *marked;           /* per AFTER entry */
    char **whiteouts;       /* "dir/.wh.name", sorted at the end */
    size_t n_whiteouts, cap_whiteouts;
};

static void plan_release(struct plan *p)
{
    for (size_t i = 0; i < p->n_whiteouts; i++)
        free(p->whiteouts[i]);
    free(p->whiteouts);
    free(p->marked);
}

/* Mark PATH's entry in AFTER (when SELF) and every ancestor directory. */
static void mark_with_parents(struct plan *p, const char *path, bool self)
{
    char buf[PATH_MAX];
    char *slash;
    const struct snap_entry *e;
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int) sizeof(buf))
        return;
    if (self && (e = snap_find(p->after, buf)) != NULL)
        p->marked[e - p->after->e] = true;
    while ((slash = strrchr(buf, '/')) != NULL) {
        *slash = '\0';
        e = snap_find(p->after, buf);
        if (e != NULL)
            p->marked[e - p->after->e] = true;
    }
}

/* Add the whiteout DIR (its first DIR_LEN bytes, ending in '/' or empty)
 * + ".wh." + NAME to P. */
static int plan_add_whiteout(struct plan *p, const char *dir, size_t dir_len, const char *name,
                             struct chrun_err *err)
{
    char *wh = NULL;
    if (asprintf(&wh, "%.*s" WHITEOUT_PREFIX "%s", (int) dir_len, dir, name) < 0)
        return chrun_err_sys(err, ENOMEM, "layer plan");
    if (chrun_grow(&p->whiteouts, &p->cap_whiteouts, p->n_whiteouts + 1, sizeof(*p->whiteouts),
                   err) < 0) {
        free(wh);
        return chrun_err_prefix(err, "layer plan");
    }
    p->whiteouts[p->n_whiteouts++] = wh;
    return 0;
}

static int plan_change(void *data, enum chrun_change_kind kind, const char *path,
                       struct chrun_err *err)
{
    struct plan *p = data;
    const char *base = strrchr(path, '/');
    if (kind != CHRUN_CHANGE_DELETE) {
        mark_with_parents(p, path, true);
        return 0;
    }
    base = base ? base + 1 : path;
    if (plan_add_whiteout(p, path, (size_t) (base - path), base, err) < 0)
        return -1;
    mark_with_parents(p, path, false);
    return 0;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The writer state: tar -> (hash for diff_id) -> raw+gzip -> store writer. */
struct layer_out {
    struct archive *tar;
    struct archive *gz;
    struct chrun_store_writer *w;
    struct chrun_digest_hasher diff;
    struct chrun_err cb_err; /* failure inside a libarchive callback */
    bool cb_failed;
    char *buf;               /* CHRUN_IO_BUFSZ, for file contents */
    int64_t clamp;
    time_t now;
    int lowerfd;             /* an overlay's lower: bytes of metacopy files, or -1 */
    /* hardlinked files already written: inode -> path */
    struct {
        dev_t dev;
        ino_t ino;
        const char *path;
    } *links;
    size_t n_links, cap_links;
};

static la_ssize_t gz_write_cb(struct archive *a, void *data, const void *buf, size_t len)
{
    struct layer_out *o = data;
    (void) a;
    if (chrun_store_writer_write(o->w, buf, len, &o->cb_err) < 0) {
        o->cb_failed = true;
        return -1;
    }
    return (la_ssize_t) len;
}

static la_ssize_t tar_write_cb(struct archive *a, void *data, const void *buf, size_t len)
{
    struct layer_out *o = data;
    (void) a;
    if (chrun_digest_hasher_update(&o->diff, buf, len, &o->cb_err) < 0) {
        o->cb_failed = true;
        return -1;
    }
    if (archive_write_data(o->gz, buf, len) != (la_ssize_t) len) {
        if (!o->cb_failed)
            chrun_err_set(&o->cb_err, CHRUN_E_SYS, "gzip: %s", chrun_archive_text(o->gz));
        o->cb_failed = true;
        return -1;
    }
    return (la_ssize_t) len;
}

/* A libarchive failure on A, or the callback's own error behind it. */
static int ar_fail(struct layer_out *o, struct archive *a, const char *what,
                   struct chrun_err *err)
{
    if (o->cb_failed) {
        *err = o->cb_err;
        return chrun_err_prefix(err, "%s", what);
    }
    return chrun_err_set(err, CHRUN_E_SYS, "%s: %s", what, chrun_archive_text(a));
}

static int out_open(struct layer_out *o, struct chrun_store *st, struct chrun_err *err)
{
    struct archive_entry *e;
    int rc;
    o->buf = malloc(CHRUN_IO_BUFSZ);
    o->tar = archive_write_new();
    o->gz = archive_write_new();
    if (o->buf == NULL || o->tar == NULL || o->gz == NULL)
        return chrun_err_sys(err, ENOMEM, "layer writer");
    if (chrun_digest_hasher_init(&o->diff, err) < 0)
        return -1;
    o->w = chrun_store_writer_begin(st, NULL, -1, 0, err);
    if (o->w == NULL)
        return -1;
    /* no timestamp in the gzip header: the same tar gives the same blob */
    if (archive_write_set_format_raw(o->gz) != ARCHIVE_OK ||
        archive_write_add_filter_gzip(o->gz) != ARCHIVE_OK ||
        archive_write_set_options(o->gz, "gzip:!timestamp") != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(o->gz, 0) != ARCHIVE_OK ||
        archive_write_open2(o->gz, o, NULL, gz_write_cb, NULL, NULL) != ARCHIVE_OK)
        return ar_fail(o, o->gz, "gzip writer", err);
    e = archive_entry_new();
    if (e == NULL)
        return chrun_err_sys(err, ENOMEM, "layer writer");
    archive_entry_set_pathname(e, "layer.tar");
    archive_entry_set_filetype(e, AE_IFREG);
    rc = archive_write_header(o->gz, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK)
        return ar_fail(o, o->gz, "gzip writer", err);
    if (archive_write_set_format_pax_restricted(o->tar) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(o->tar, 1) != ARCHIVE_OK ||
        archive_write_open2(o->tar, o, NULL, tar_write_cb, NULL, NULL) != ARCHIVE_OK)
        return ar_fail(o, o->tar, "tar writer", err);
    return 0;
}

static void out_release(struct layer_out *o)
{
    if (o->tar)
        archive_write_free(o->tar);
    if (o->gz)
        archive_write_free(o->gz);
    chrun_store_writer_free(o->w);
    chrun_digest_hasher_release(&o->diff);
    free(o->buf);
    free(o->links);
}

static time_t clamp_time(const struct layer_out *o, time_t t)
{
    return (o->clamp >= 0 && t > (time_t) o->clamp) ? (time_t) o->clamp : t;
}

/* Open PATH below ROOTFD through real directories only (the snapshot walked
 * no symlink to reach it). */
static int open_beneath(int rootfd, const char *path, struct chrun_err *err)
{
    return chrun_fs_open_at(rootfd, path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK, 0,
                            CHRUN_FS_BENEATH_NO_SYMLINKS, err);
}

/* The bytes of SE: its file below ROOTFD, or its lower file (SE->data: a
 * metacopy file, whose upper file holds none, or an entry of a moved
 * directory). */
static int write_content(struct layer_out *o, int rootfd, const struct snap_entry *se,
                         struct chrun_err *err)
{
    cleanup_close int fd = se->data ? open_beneath(o->lowerfd, se->data, err)
                                    : open_beneath(rootfd, se->path, err);
    struct stat st;
    int64_t left = se->st.st_size;
    if (fd < 0)
        return se->data ? chrun_err_prefix(err, "metacopy file '%s'", se->path) : -1;
    if (fstat(fd, &st) < 0)
        return chrun_err_sys(err, errno, "stat '%s'", se->path);
    if (!S_ISREG(st.st_mode) || st.st_ino != (se->data ? se->data_ino : se->st.st_ino) ||
        st.st_size != se->st.st_size)
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' changed while its layer was written",
                             se->path);
    while (left > 0) {
        size_t want = left > CHRUN_IO_BUFSZ ? CHRUN_IO_BUFSZ : (size_t) left;
        ssize_t n = chrun_io_read_full(fd, o->buf, want, err);
        if (n < 0)
            return chrun_err_prefix(err, "'%s'", se->path);
        if ((size_t) n != want)
            return chrun_err_set(err, CHRUN_E_INPUT, "'%s' shrank while its layer was written",
                                 se->path);
        if (archive_write_data(o->tar, o->buf, (size_t) n) != n)
            return ar_fail(o, o->tar, se->path, err);
        left -= n;
    }
    return 0;
}

/* For the second and later names of a hardlinked file: the first name. */
static const char *hardlink_target(struct layer_out *o, const struct snap_entry *se,
                                   struct chrun_err *err, int *ret_rc)
{
    *ret_rc = 0;
    if (!S_ISREG(se->st.st_mode) || se->st.st_nlink < 2)
        return NULL;
    for (size_t i = 0; i < o->n_links; i++)
        if (o->links[i].dev == se->st.st_dev && o->links[i].ino == se->st.st_ino)
            return o->links[i].path;
    if (chrun_grow(&o->links, &o->cap_links, o->n_links + 1, sizeof(*o->links), err) < 0) {
        *ret_rc = chrun_err_prefix(err, "layer writer");
        return NULL;
    }
    o->links[o->n_links].dev = se->st.st_dev;
    o->links[o->n_links].ino = se->st.st_ino;
    o->links[o->n_links++].path = se->path;
    return NULL;
}

static int write_entry(struct layer_out *o, int rootfd, const struct snap_entry *se,
                       struct chrun_err *err)
{
    struct archive_entry *e = archive_entry_new();
    cleanup_free char *name = NULL;
    const char *link;
    int rc = 0;
    if (e == NULL)
        return chrun_err_sys(err, ENOMEM, "layer writer");
    if (asprintf(&name, "%s%s", se->path, S_ISDIR(se->st.st_mode) ? "/" : "") < 0) {
        archive_entry_free(e);
        return chrun_err_sys(err, ENOMEM, "layer writer");
    }
    archive_entry_set_pathname(e, name);
    archive_entry_set_mode(e, se->st.st_mode);
    archive_entry_set_uid(e, se->st.st_uid);
    archive_entry_set_gid(e, se->st.st_gid);
    archive_entry_set_mtime(e, clamp_time(o, se->st.st_mtim.tv_sec),
                            o->clamp >= 0 && se->st.st_mtim.tv_sec >= o->clamp
                                ? 0
                                : se->st.st_mtim.tv_nsec);
    if (S_ISLNK(se->st.st_mode))
        archive_entry_set_symlink(e, se->link);
    if (S_ISCHR(se->st.st_mode) || S_ISBLK(se->st.st_mode))
        archive_entry_set_rdev(e, se->st.st_rdev);
    link = hardlink_target(o, se, err, &rc);
    if (link != NULL) {
        archive_entry_set_hardlink(e, link);
        archive_entry_set_size(e, 0);
    } else if (S_ISREG(se->st.st_mode)) {
        archive_entry_set_size(e, se->st.st_size);
    }
    if (rc == 0 && archive_write_header(o->tar, e) != ARCHIVE_OK)
        rc = ar_fail(o, o->tar, se->path, err);
    archive_entry_free(e);
    if (rc == 0 && link == NULL && S_ISREG(se->st.st_mode))
        rc = write_content(o, rootfd, se, err);
    return rc;
}

static int write_whiteout(struct layer_out *o, const char *name, struct chrun_err *err)
{
    struct archive_entry *e = archive_entry_new();
    int rc = 0;
    if (e == NULL)
        return chrun_err_sys(err, ENOMEM, "layer writer");
    archive_entry_set_pathname(e, name);
    archive_entry_set_mode(e, AE_IFREG | 0644);
    archive_entry_set_size(e, 0);
    archive_entry_set_mtime(e, o->clamp >= 0 ? (time_t) o->clamp : o->now, 0);
    if (archive_write_header(o->tar, e) != ARCHIVE_OK)
        rc = ar_fail(o, o->tar, name, err);
    archive_entry_free(e);
    return rc;
}

/* Write marked entries and whiteouts merged in path order. */
static int write_plan(struct layer_out *o, int rootfd, const struct plan *p, struct chrun_err *err)
{
    size_t i = 0, j = 0;
    const struct chrun_snapshot *after = p->after;
    while (i < after->n || j < p->n_whiteouts) {
        bool entry_first;
        int rc;
        if (i < after->n && !p->marked[i]) {
            i++;
            continue;
        }
        entry_first = j == p->n_whiteouts ||
                      (i < after->n && strcmp(after->e[i].path, p->whiteouts[j]) < 0);
        if (entry_first) { /* sockets cannot be in a tar; their servers recreate them */
            rc = S_ISSOCK(after->e[i].st.st_mode) ? 0 : write_entry(o, rootfd, &after->e[i], err);
            i++;
        } else
            rc = write_whiteout(o, p->whiteouts[j++], err);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int out_finish(struct layer_out *o, struct chrun_changeset_layer *ret,
                      struct chrun_err *err)
{
    if (archive_write_close(o->tar) != ARCHIVE_OK)
        return ar_fail(o, o->tar, "finish layer tar", err);
    if (archive_write_finish_entry(o->gz) != ARCHIVE_OK || archive_write_close(o->gz) != ARCHIVE_OK)
        return ar_fail(o, o->gz, "finish layer gzip", err);
    if (chrun_digest_hasher_final(&o->diff, &ret->diff_id, err) < 0)
        return -1;
    ret->size = (int64_t) chrun_store_writer_offset(o->w);
    return chrun_store_writer_commit(o->w, &ret->digest, err);
}

/* Write the layer P plans for ROOTFD (entries of P->after that are marked,
 * and the whiteouts) into ST, the bytes of metacopy entries from LOWERFD;
 * *RET stays empty when P plans nothing. */
static int write_planned(struct chrun_store *st, int rootfd, int lowerfd, struct plan *p,
                         int64_t clamp_mtime, struct chrun_changeset_layer *ret,
                         struct chrun_err *err)
{
    struct layer_out o = {.clamp = clamp_mtime, .now = time(NULL), .lowerfd = lowerfd};
    double start_ms = monotonic_ms();
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < p->after->n; i++)
        n += p->marked[i];
    if (n > 0 || p->n_whiteouts > 0) {
        if (p->n_whiteouts > 0)
            qsort(p->whiteouts, p->n_whiteouts, sizeof(char *), str_cmp);
        rc = out_open(&o, st, err);
        if (rc == 0)
            rc = write_plan(&o, rootfd, p, err);
        if (rc == 0)
            rc = out_finish(&o, ret, err);
        ret->empty = false;
    }
    out_release(&o);
    if (rc == 0)
        chrun_log_debug("layer: %zu entries, %zu whiteouts, written in %.1f ms", n,
                        p->n_whiteouts, monotonic_ms() - start_ms);
    return rc;
}

int chrun_changeset_write_layer(struct chrun_store *st, int rootfd,
                                const struct chrun_snapshot *before,
                                const struct chrun_snapshot *after, int64_t clamp_mtime,
                                struct chrun_changeset_layer *ret, struct chrun_err *err)
{
    struct plan p = {.after = after};
    int rc;

    *ret = (struct chrun_changeset_layer){.empty = true};
    p.marked = calloc(after->n + 1, sizeof(bool));
    if (p.marked == NULL)
        return chrun_err_sys(err, ENOMEM, "layer plan");
    rc = chrun_changeset_diff(before, after, plan_change, &p, err);
    if (rc == 0)
        rc = write_planned(st, rootfd, -1, &p, clamp_mtime, ret, err);
    plan_release(&p);
    return rc;
}

/* ---- the third input: an overlayfs upper directory ------------------------ */

int chrun_changeset_write_upper(struct chrun_store *st, int upperfd, int lowerfd, unsigned flags,
                                int64_t clamp_mtime, struct chrun_changeset_layer *ret,
                                struct chrun_err *err)
{
    struct chrun_snapshot *s = calloc(1, sizeof(*s));
    struct plan p = {.after = s};
    struct walker w = {.s = s, .upper = &p, .lowerfd = lowerfd,
                       .xattr_ns = (flags & CHRUN_CHANGESET_USERXATTR) ? "user." : "trusted."};
    size_t n_from_lower = 0;
    int fd, rc;

    *ret = (struct chrun_changeset_layer){.empty = true};
    if (s == NULL)
        return chrun_err_sys(err, ENOMEM, "snapshot");
    fd = openat(upperfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rc = fd < 0 ? chrun_err_sys(err, errno, "open the overlay upper directory")
                : walk_dir(&w, fd, "", "", err);
    if (rc == 0 && w.needs_lower)
        rc = 1;
    if (rc == 0 && s->n > 0)
        qsort(s->e, s->n, sizeof(*s->e), entry_cmp);
    /* every upper entry is a change: overlayfs copies an entry up only to
     * change it, and copies its parent directories up with it */
    if (rc == 0 && (p.marked = calloc(s->n + 1, sizeof(bool))) == NULL)
        rc = chrun_err_sys(err, ENOMEM, "layer plan");
    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        p.marked[i] = true;
        n_from_lower += s->e[i].data != NULL;
    }
    if (rc == 0 && n_from_lower > 0)
        chrun_log_debug("overlay upper: %zu files with their bytes in the lower",
                        n_from_lower);
    if (rc == 0)
        rc = write_planned(st, upperfd, lowerfd, &p, clamp_mtime, ret, err);
    plan_release(&p);
    chrun_snapshot_free(s);
    return rc;
}
