#include "chrun/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "chrun/io.h"
#include "cleanup.h"
#include "util.h"

/* Tests set this to run every resolution through the walk below, as on a
 * kernel without openat2; nothing else writes it. */
static bool force_walk;

void chrun_fs_force_walk(bool on)
{
    force_walk = on;
}

static const char *how_name(enum chrun_fs_resolve how)
{
    return how == CHRUN_FS_IN_ROOT ? " in root" : how == CHRUN_FS_BENEATH ? " beneath" : "";
}

int chrun_fs_open_at(int dirfd, const char *path, int flags, mode_t mode,
                     enum chrun_fs_resolve how, struct chrun_err *err)
{
    static const uint64_t resolve[] = {
        [CHRUN_FS_IN_ROOT] = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        [CHRUN_FS_BENEATH] = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        [CHRUN_FS_BENEATH_NO_SYMLINKS] = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
    };
    struct open_how oh = {
        .flags = (uint64_t) (flags | O_CLOEXEC),
        /* O_TMPFILE holds O_DIRECTORY's bit: test it whole, since openat2
         * refuses a mode without O_CREAT or O_TMPFILE */
        .mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? mode : 0,
        .resolve = resolve[how],
    };
    int fd;
    if (*path == '\0')
        path = ".";
    if (force_walk)
        return chrun_fs_walk_at(dirfd, path, flags, mode, how, err);
    fd = (int) TEMP_FAILURE_RETRY_INT(syscall(SYS_openat2, dirfd, path, &oh, sizeof(oh)));
    if (fd < 0 && (errno == ENOSYS || errno == EPERM)) /* old kernel or seccomp filter */
        return chrun_fs_walk_at(dirfd, path, flags, mode, how, err);
    if (fd < 0)
        return chrun_err_sys(err, errno, "open '%s'%s", path, how_name(how));
    return fd;
}

int chrun_fs_open_in_root(int rootfd, const char *path, int flags, mode_t mode,
                          struct chrun_err *err)
{
    return chrun_fs_open_at(rootfd, path, flags, mode, CHRUN_FS_IN_ROOT, err);
}

/* Re-open the directory reached by the already resolved components, used after
 * ".." pops one: those components were directories when we walked them. */
static int reopen_resolved(int rootfd, const char *resolved)
{
    if (*resolved == '\0')
        return fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
    return openat(rootfd, resolved, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

static void pop_component(char *resolved)
{
    char *slash = strrchr(resolved, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        resolved[0] = '\0';
}

/* Does the fd's /proc path still lie under the root's? Guards the walk against
 * directories renamed out of the root while we held them. */
static bool fd_under_root(int rootfd, int fd)
{
    char proc[64], root_path[PATH_MAX], fd_path[PATH_MAX];
    ssize_t rn, fn;
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", rootfd);
    rn = readlink(proc, root_path, sizeof(root_path) - 1);
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    fn = readlink(proc, fd_path, sizeof(fd_path) - 1);
    if (rn < 0 || fn < 0)
        return true; /* no /proc: nothing to compare against */
    root_path[rn] = fd_path[fn] = '\0';
    if (streq(root_path, "/"))
        return true;
    return strncmp(fd_path, root_path, (size_t) rn) == 0 &&
           (fd_path[rn] == '\0' || fd_path[rn] == '/');
}

struct walk {
    char todo[PATH_MAX * 2];
    char resolved[PATH_MAX];
    int hops;
    enum chrun_fs_resolve how;
};

/* Replace the walk's pending path with TARGET followed by REST. As openat2
 * does: in the root an absolute target restarts at the root; beneath it,
 * an absolute target is an escape (EXDEV). */
static int walk_expand(struct walk *w, int rootfd, int *cur, const char *target, const char *rest)
{
    char next[sizeof(w->todo)];
    if (w->how == CHRUN_FS_BENEATH_NO_SYMLINKS)
        return -ELOOP;
    if (++w->hops > CHRUN_FS_MAX_HOPS)
        return -ELOOP;
    if (target[0] == '/' && w->how == CHRUN_FS_BENEATH)
        return -EXDEV;
    if (snprintf(next, sizeof(next), "%s/%s", target, rest) >= (int) sizeof(next))
        return -ENAMETOOLONG;
    memcpy(w->todo, next, sizeof(next));
    if (target[0] == '/') {
        close(*cur);
        w->resolved[0] = '\0';
        *cur = reopen_resolved(rootfd, "");
        if (*cur < 0)
            return -errno;
    }
    return 0;
}

/* The last component is "." or "..": open the directory we are in. */
static int open_here(int cur, int flags, int *ret_fd)
{
    *ret_fd = openat(cur, ".", (flags & ~(O_CREAT | O_EXCL)) | O_CLOEXEC);
    return *ret_fd < 0 ? -errno : 1;
}

static int walk_step(struct walk *w, int rootfd, int *cur, int flags, mode_t mode, int *ret_fd)
{
    char *p = w->todo, *comp, *rest;
    char target[PATH_MAX];
    struct stat st;
    bool last;
    int fd;
    ssize_t n;

    while (*p == '/')
        p++;
    comp = p;
    while (*p && *p != '/')
        p++;
    rest = p;
    while (*rest == '/')
        rest++;
    last = (*rest == '\0');
    if (*p)
        *p = '\0';
    if (*comp == '\0' || streq(comp, ".")) {
        if (last)
            return open_here(*cur, flags, ret_fd);
        memmove(w->todo, rest, strlen(rest) + 1);
        return 0;
    }
    if (streq(comp, "..")) {
        /* in the root ".." stops at the root; beneath it, passing it escapes */
        if (w->resolved[0] == '\0' && w->how != CHRUN_FS_IN_ROOT)
            return -EXDEV;
        pop_component(w->resolved);
        close(*cur);
        *cur = reopen_resolved(rootfd, w->resolved);
        if (*cur < 0)
            return -errno;
        if (last)
            return open_here(*cur, flags, ret_fd);
        memmove(w->todo, rest, strlen(rest) + 1);
        return 0;
    }
    fd = openat(*cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && !(errno == ENOENT && last && (flags & O_CREAT)))
        return -errno;
    if (fd >= 0 && fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (fd >= 0 && S_ISLNK(st.st_mode) && !(last && (flags & O_NOFOLLOW))) {
        char rest_copy[sizeof(w->todo)];
        if (last && (flags & O_CREAT) && (flags & O_EXCL)) {
            close(fd); /* open(2): O_CREAT|O_EXCL never follows a final symlink */
            return -EEXIST;
        }
        n = readlinkat(fd, "", target, sizeof(target) - 1);
        close(fd);
        if (n < 0)
            return -errno;
        target[n] = '\0';
        snprintf(rest_copy, sizeof(rest_copy), "%s", rest);
        return walk_expand(w, rootfd, cur, target, rest_copy);
    }
    if (last) {
        if (fd >= 0 && (flags & O_PATH) && (flags & O_NOFOLLOW)) {
            *ret_fd = fd;
            return 1;
        }
        if (fd >= 0)
            close(fd);
        *ret_fd = openat(*cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
        return *ret_fd < 0 ? -errno : 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        close(fd);
        return -ENOTDIR;
    }
    if (strlen(w->resolved) + strlen(comp) + 2 > sizeof(w->resolved)) {
        close(fd);
        return -ENAMETOOLONG;
    }
    if (w->resolved[0])
        strcat(w->resolved, "/");
    strcat(w->resolved, comp);
    close(*cur);
    *cur = fd;
    memmove(w->todo, rest, strlen(rest) + 1);
    return 0;
}

int chrun_fs_walk_at(int dirfd, const char *path, int flags, mode_t mode,
                     enum chrun_fs_resolve how, struct chrun_err *err)
{
    cleanup_free struct walk *w = calloc(1, sizeof(*w));
    cleanup_close int cur = -1;
    int fd = -1, rc;

    if (w == NULL)
        return chrun_err_sys(err, ENOMEM, "open '%s'%s", path, how_name(how));
    if (*path == '\0')
        path = ".";
    w->how = how;
    if (path[0] == '/' && how != CHRUN_FS_IN_ROOT) /* openat2: RESOLVE_BENEATH */
        return chrun_err_sys(err, EXDEV, "open '%s'%s", path, how_name(how));
    if (snprintf(w->todo, sizeof(w->todo), "%s", path) >= (int) sizeof(w->todo))
        return chrun_err_sys(err, ENAMETOOLONG, "open '%s'%s", path, how_name(how));
    cur = reopen_resolved(dirfd, "");
    if (cur < 0)
        return chrun_err_sys(err, errno, "open root");
    while ((rc = walk_step(w, dirfd, &cur, flags, mode, &fd)) == 0)
        ;
    if (rc < 0)
        return chrun_err_sys(err, -rc, "open '%s'%s", path, how_name(how));
    /* STYLE 4: after a fallback walk, check what was opened */
    if (!fd_under_root(dirfd, fd)) {
        close(fd);
        return chrun_err_sys(err, EXDEV, "open '%s'%s: escaped the root", path, how_name(how));
    }
    return fd;
}

int chrun_fs_open_parent_in_root(int rootfd, const char *path, const char **ret_base,
                                 struct chrun_err *err)
{
    char dir[PATH_MAX];
    size_t len = strlen(path);
    const char *base;
    size_t baselen;

    while (len > 1 && path[len - 1] == '/')
        len--;
    if (len >= sizeof(dir))
        return chrun_err_sys(err, ENAMETOOLONG, "path '%.64s...'", path);
    memcpy(dir, path, len);
    dir[len] = '\0';
    base = strrchr(dir, '/');
    base = base ? base + 1 : dir;
    baselen = strlen(base);
    if (baselen == 0 || streq(base, ".") || streq(base, ".."))
        return chrun_err_set(err, CHRUN_E_INPUT, "path '%s' has no final name", path);
    *ret_base = path + (base - dir);
    dir[base - dir] = '\0';
    return chrun_fs_open_in_root(rootfd, dir[0] ? dir : ".", O_PATH | O_DIRECTORY, 0, err);
}

int chrun_fs_open_dir_at(int dirfd, const char *name, struct chrun_err *err)
{
    int fd = TEMP_FAILURE_RETRY_INT(
        openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0)
        return chrun_err_sys(err, errno, "open directory '%s'", name);
    return fd;
}

int chrun_fs_mkdir_p_at(int dirfd, const char *path, mode_t mode, struct chrun_err *err)
{
    char buf[PATH_MAX];
    char *p;
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int) sizeof(buf))
        return chrun_err_sys(err, ENAMETOOLONG, "mkdir '%.64s...'", path);
    for (p = buf;; p++) {
        char saved = *p;
        if (*p != '/' && *p != '\0')
            continue;
        *p = '\0';
        if (buf[0] != '\0' && mkdirat(dirfd, buf, mode) < 0 && errno != EEXIST)
            return chrun_err_sys(err, errno, "mkdir '%s'", buf);
        if (buf[0] != '\0' && errno == EEXIST) {
            struct stat st;
            if (fstatat(dirfd, buf, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return chrun_err_sys(err, errno, "stat '%s'", buf);
            if (!S_ISDIR(st.st_mode))
                return chrun_err_sys(err, ENOTDIR, "mkdir '%s'", buf);
        }
        errno = 0;
        *p = saved;
        if (saved == '\0')
            break;
    }
    return 0;
}

/* What a directory made by mkdir -p in root gets. */
struct mkdir_how {
    mode_t mode;
    unsigned flags;
    bool chown;
    uid_t uid;
    gid_t gid;
};

static int mkdir_in_root_depth(int rootfd, const char *path, const struct mkdir_how *how,
                               int depth, struct chrun_err *err);

/* PREFIX is a symlink (PARENT/BASE) whose target is missing in the root:
 * create that target, as the container would see it. */
static int mkdir_link_target(int rootfd, int parent, const char *base, const char *prefix,
                             const struct mkdir_how *how, int depth, struct chrun_err *err)
{
    char link[PATH_MAX], target[PATH_MAX];
    ssize_t n = readlinkat(parent, base, link, sizeof(link) - 1);
    if (n < 0)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "'%s' exists but is not a directory inside the root", prefix);
    link[n] = '\0';
    if (depth >= CHRUN_FS_MAX_HOPS)
        return chrun_err_sys(err, ELOOP, "create directory '%s' in root", prefix);
    if (snprintf(target, sizeof(target), "%.*s/%s", link[0] == '/' ? 0 : (int) (base - prefix),
                 prefix, link) >= (int) sizeof(target))
        return chrun_err_sys(err, ENAMETOOLONG, "create directory '%s' in root", prefix);
    return mkdir_in_root_depth(rootfd, target, how, depth + 1, err);
}

static int mkdir_in_root_depth(int rootfd, const char *path, const struct mkdir_how *how,
                               int depth, struct chrun_err *err)
{
    char prefix[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(prefix))
        return chrun_err_sys(err, ENAMETOOLONG, "create directory '%.64s...' in root", path);
    for (size_t i = 1; i <= len; i++) {
        struct chrun_err probe = CHRUN_ERR_INIT;
        cleanup_close int fd = -1, parent = -1;
        const char *base;
        if ((path[i] != '/' && path[i] != '\0') || path[i - 1] == '/')
            continue;
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        fd = chrun_fs_open_at(rootfd, prefix, O_PATH | O_DIRECTORY, 0, CHRUN_FS_IN_ROOT, &probe);
        if (fd >= 0)
            continue;
        if (probe.errnum == ENOTDIR) /* a file, or a symlink to one */
            return chrun_err_sys(err, ENOTDIR, "create directory '%s' in root", prefix);
        if (probe.errnum != ENOENT) {
            *err = probe;
            return -1;
        }
        parent = chrun_fs_open_parent_in_root(rootfd, prefix, &base, err);
        if (parent < 0)
            return -1;
        if (mkdirat(parent, base, how->mode) == 0) {
            if (how->chown && fchownat(parent, base, how->uid, how->gid, AT_SYMLINK_NOFOLLOW) < 0)
                return chrun_err_sys(err, errno, "set owner of '%s' in root", prefix);
            /* the caller's umask must not decide the mode */
            if (fchmodat(parent, base, how->mode, 0) < 0)
                return chrun_err_sys(err, errno, "set mode of '%s' in root", prefix);
            continue;
        }
        if (errno != EEXIST)
            return chrun_err_sys(err, errno, "create directory '%s' in root", prefix);
        /* It exists, yet does not resolve: a symlink to nothing in the root. */
        if (!(how->flags & CHRUN_FS_MKDIR_THROUGH_DANGLING))
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "'%s' exists but is not a directory inside the root "
                                 "(a symlink leading out?)",
                                 prefix);
        if (mkdir_link_target(rootfd, parent, base, prefix, how, depth, err) < 0)
            return -1;
    }
    return 0;
}

int chrun_fs_mkdir_p_in_root(int rootfd, const char *path, mode_t mode, unsigned flags,
                             struct chrun_err *err)
{
    const struct mkdir_how how = {.mode = mode, .flags = flags};
    return mkdir_in_root_depth(rootfd, path, &how, 0, err);
}

int chrun_fs_mkdir_p_in_root_owned(int rootfd, const char *path, mode_t mode, unsigned flags,
                                   uid_t uid, gid_t gid, struct chrun_err *err)
{
    const struct mkdir_how how = {.mode = mode, .flags = flags, .chown = true, .uid = uid, .gid = gid};
    return mkdir_in_root_depth(rootfd, path, &how, 0, err);
}

void chrun_fs_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int chrun_fs_each_at(int dir_fd, chrun_fs_entry_fn fn, void *data, struct chrun_err *err)
{
    cleanup_closedir DIR *d = NULL;
    struct dirent *de;
    /* a fresh open: readdir moves the offset, and DIR_FD may be O_PATH */
    int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return chrun_err_sys(err, errno, "open directory");
    d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return chrun_err_sys(err, e, "open directory");
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
            continue;
        if (fn(dirfd(d), de->d_name, data, err) < 0)
            return -1;
    }
    if (errno != 0)
        return chrun_err_sys(err, errno, "read directory");
    return 0;
}

struct name_list {
    char **names;
    size_t n, cap;
};

static int name_list_add(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct name_list *l = data;
    (void) dfd;
    if (chrun_grow(&l->names, &l->cap, l->n + 1, sizeof(*l->names), err) < 0)
        return chrun_err_prefix(err, "read directory");
    if ((l->names[l->n] = strdup(name)) == NULL)
        return chrun_err_sys(err, ENOMEM, "read directory");
    l->n++;
    return 0;
}

int chrun_fs_list_at(int dirfd, char ***ret_names, size_t *ret_n, struct chrun_err *err)
{
    struct name_list l = {0};

    *ret_names = NULL;
    *ret_n = 0;
    if (chrun_fs_each_at(dirfd, name_list_add, &l, err) < 0) {
        chrun_fs_names_free(l.names, l.n);
        return -1;
    }
    *ret_names = l.names;
    *ret_n = l.n;
    return 0;
}

/* Listed first, then removed: removing while reading may skip entries. */
static int rm_dir_contents(int dfd, struct chrun_err *err)
{
    char **names = NULL;
    size_t n = 0;
    int rc = 0;
    if (chrun_fs_list_at(dfd, &names, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = chrun_fs_rm_rf_at(dfd, names[i], err);
    chrun_fs_names_free(names, n);
    return rc;
}

int chrun_fs_rm_rf_at(int dirfd, const char *name, struct chrun_err *err)
{
    cleanup_close int dfd = -1;
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return chrun_err_sys(err, errno, "remove '%s'", name);
    dfd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return chrun_err_sys(err, errno, "open '%s'", name);
    /* An unprivileged owner may need write+search permission to empty it. */
    (void) fchmod(dfd, 0700);
    if (rm_dir_contents(dfd, err) < 0)
        return chrun_err_prefix(err, "remove '%s'", name);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return chrun_err_sys(err, errno, "remove '%s'", name);
    return 0;
}

int chrun_fs_fsync_dir(int dirfd, struct chrun_err *err)
{
    cleanup_close int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return chrun_err_sys(err, errno, "open directory for fsync");
    if (fsync(fd) < 0 && errno != EINVAL)
        return chrun_err_sys(err, errno, "fsync directory");
    return 0;
}

static void random_suffix(char *buf, size_t size)
{
    unsigned char rnd[8];
    size_t i;
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t) sizeof(rnd)) {
        /* getrandom cannot fail for 8 bytes once the pool is up; fall back anyway. */
        unsigned long v = (unsigned long) getpid() ^ (unsigned long) (size_t) buf;
        memcpy(rnd, &v, sizeof(rnd) < sizeof(v) ? sizeof(rnd) : sizeof(v));
    }
    for (i = 0; i < sizeof(rnd) && 2 * i + 2 < size; i++)
        snprintf(buf + 2 * i, 3, "%02x", rnd[i]);
}

static int make_temp_name(const char *prefix, char *ret_name, size_t size, struct chrun_err *err)
{
    char suffix[17] = {0};
    random_suffix(suffix, sizeof(suffix));
    if (snprintf(ret_name, size, "%s%s", prefix, suffix) >= (int) size)
        return chrun_err_sys(err, ENAMETOOLONG, "temporary name '%s'", prefix);
    return 0;
}

int chrun_fs_mkstemp_at(int dirfd, const char *prefix, char *ret_name, size_t size,
                        struct chrun_err *err)
{
    for (int tries = 0; tries < 100; tries++) {
        int fd;
        if (make_temp_name(prefix, ret_name, size, err) < 0)
            return -1;
        fd = openat(dirfd, ret_name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0)
            return fd;
        if (errno != EEXIST)
            return chrun_err_sys(err, errno, "create temporary file '%s'", ret_name);
    }
    return chrun_err_sys(err, EEXIST, "create temporary file '%s'", prefix);
}

int chrun_fs_mkdtemp_at(int dirfd, const char *prefix, char *ret_name, size_t size,
                        struct chrun_err *err)
{
    for (int tries = 0; tries < 100; tries++) {
        if (make_temp_name(prefix, ret_name, size, err) < 0)
            return -1;
        if (mkdirat(dirfd, ret_name, 0700) == 0)
            return 0;
        if (errno != EEXIST)
            return chrun_err_sys(err, errno, "create temporary directory '%s'", ret_name);
    }
    return chrun_err_sys(err, EEXIST, "create temporary directory '%s'", prefix);
}

int chrun_fs_mkdtemp_locked_at(int dirfd, const char *hidden_prefix, const char *swept_prefix,
                               char *ret_name, size_t size, struct chrun_err *err)
{
    char fresh[NAME_MAX + 1];
    int fd, e;

    if (chrun_fs_mkdtemp_at(dirfd, hidden_prefix, fresh, sizeof(fresh), err) < 0)
        return -1;
    if (snprintf(ret_name, size, "%s%s", swept_prefix, fresh + strlen(hidden_prefix)) >=
        (int) size) {
        unlinkat(dirfd, fresh, AT_REMOVEDIR);
        return chrun_err_sys(err, ENAMETOOLONG, "temporary directory '%s'", swept_prefix);
    }
    fd = openat(dirfd, fresh, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && flock(fd, LOCK_EX) == 0 && renameat(dirfd, fresh, dirfd, ret_name) == 0)
        return fd;
    e = errno;
    if (fd >= 0)
        close(fd);
    unlinkat(dirfd, fresh, AT_REMOVEDIR);
    return chrun_err_sys(err, e, "lock temporary directory '%s'", fresh);
}

/* Fill the open temporary TMPNAME (FD) with DATA, then fsync, rename it
 * to NAME in DIRFD and fsync DIRFD; the temporary is removed on failure. */
static int publish_temp(int tmpdirfd, int fd, const char *tmpname, int dirfd, const char *name,
                        const void *data, size_t len, mode_t mode, struct chrun_err *err)
{
    if (chrun_io_write_full(fd, data, len, err) < 0) {
        unlinkat(tmpdirfd, tmpname, 0);
        return chrun_err_prefix(err, "'%s'", name);
    }
    if (fchmod(fd, mode) < 0 || fsync(fd) < 0 || renameat(tmpdirfd, tmpname, dirfd, name) < 0) {
        int e = errno;
        unlinkat(tmpdirfd, tmpname, 0);
        return chrun_err_sys(err, e, "replace '%s'", name);
    }
    return chrun_fs_fsync_dir(dirfd, err);
}

int chrun_fs_write_atomic_at(int tmpdirfd, int dirfd, const char *name, const void *data,
                             size_t len, mode_t mode, struct chrun_err *err)
{
    char tmpname[NAME_MAX];
    cleanup_close int fd = -1;
    /* One temporary name per target: a temp left by a crash is reused and
     * renamed away by the next write instead of piling up. */
    if (snprintf(tmpname, sizeof(tmpname), "atomic-%s", name) >= (int) sizeof(tmpname) ||
        strchr(name, '/') != NULL)
        return chrun_err_sys(err, EINVAL, "replace '%s'", name);
    fd = openat(tmpdirfd, tmpname, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return chrun_err_sys(err, errno, "create '%s'", tmpname);
    return publish_temp(tmpdirfd, fd, tmpname, dirfd, name, data, len, mode, err);
}

int chrun_fs_write_atomic_unlocked_at(int tmpdirfd, int dirfd, const char *name,
                                      const void *data, size_t len, mode_t mode,
                                      struct chrun_err *err)
{
    char tmpname[NAME_MAX];
    cleanup_close int fd = -1;
    if (strchr(name, '/') != NULL)
        return chrun_err_sys(err, EINVAL, "replace '%s'", name);
    fd = chrun_fs_mkstemp_at(tmpdirfd, "atomic-", tmpname, sizeof(tmpname), err);
    if (fd < 0)
        return -1;
    return publish_temp(tmpdirfd, fd, tmpname, dirfd, name, data, len, mode, err);
}

bool chrun_fs_exists_at(int dirfd, const char *name)
{
    struct stat st;
    return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

int chrun_fs_reopen_regular(int pathfd, int flags, struct chrun_err *err)
{
    char proc[64];
    struct stat st;
    int fd;
    if (fstat(pathfd, &st) < 0)
        return chrun_err_sys(err, errno, "stat");
    if (!S_ISREG(st.st_mode))
        return chrun_err_set(err, CHRUN_E_INPUT, "not a regular file");
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pathfd);
    fd = TEMP_FAILURE_RETRY_INT(open(proc, flags | O_NOCTTY | O_CLOEXEC));
    if (fd < 0)
        return chrun_err_sys(err, errno, "reopen through /proc/self/fd");
    return fd;
}

/* WHOSE follows 'PATH' in the errors after the open ("" or " of the image"). */
static int read_regular(int rootfd, const char *path, size_t max, const char *whose,
                        char **ret_buf, size_t *ret_len, struct chrun_err *err)
{
    struct chrun_err open_err = CHRUN_ERR_INIT;
    cleanup_close int pfd = -1, fd = -1;
    *ret_buf = NULL;
    *ret_len = 0;
    /* O_PATH, then reopened only if a regular file: an image or a build
     * context could make the file a FIFO (open blocks) or a device node
     * (open acts on it). */
    pfd = chrun_fs_open_in_root(rootfd, path, O_PATH, 0, &open_err);
    if (pfd < 0 && open_err.errnum == ENOENT)
        return 0;
    if (pfd < 0) {
        *err = open_err;
        return -1;
    }
    fd = chrun_fs_reopen_regular(pfd, O_RDONLY, err);
    if (fd < 0 || chrun_io_read_bounded(fd, max, ret_buf, ret_len, err) < 0)
        return chrun_err_prefix(err, "'%s'%s", path, whose);
    return 0;
}

int chrun_fs_read_regular_at(int dirfd, const char *path, size_t max, char **ret_buf,
                             size_t *ret_len, struct chrun_err *err)
{
    return read_regular(dirfd, path, max, "", ret_buf, ret_len, err);
}

int chrun_fs_read_regular_in_root(int rootfd, const char *path, size_t max, char **ret_buf,
                                  struct chrun_err *err)
{
    size_t len;
    return read_regular(rootfd, path, max, " of the image", ret_buf, &len, err);
}
