/* chrun-exec's mount policy: every mount a run makes inside its private
 * mount namespace, each target resolved inside the rootfs. */
#include "runtime-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/fs.h"
#include "cleanup.h"
#include "util.h"

static void fd_path(char *buf, size_t size, int fd)
{
    snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* Mount onto PATH inside the rootfs, resolved in the root so a symlink in the
 * image can never point the mount at the host. */
static int mount_in_root(int rootfd, const char *path, const char *src, const char *fstype,
                         unsigned long flags, const char *data, struct chrun_err *err)
{
    char target[64];
    cleanup_close int fd = chrun_fs_open_in_root(rootfd, path, O_PATH, 0, err);
    if (fd < 0)
        return chrun_err_prefix(err, "mount point '/%s'", path);
    fd_path(target, sizeof(target), fd);
    if (mount(src, target, fstype, flags, data) < 0)
        return chrun_err_sys(err, errno, "mount %s on '/%s'", src ? src : fstype, path);
    return 0;
}

/* Make the mount at PATH in the root (and with RECURSIVE everything below it)
 * read-only. Opened again so the walk lands on the mount just made. */
static int make_ro_in_root(int rootfd, const char *path, bool recursive, struct chrun_err *err)
{
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    cleanup_close int fd = chrun_fs_open_in_root(rootfd, path, O_PATH, 0, err);
    if (fd < 0)
        return -1;
    if (mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                      sizeof(attr)) < 0)
        return chrun_err_sys(err, errno, "make '/%s' read-only", path);
    return 0;
}

/* Create the directory PATH (and parents) inside the root where missing. */
static int mkdir_in_root(int rootfd, const char *path, struct chrun_err *err)
{
    return chrun_fs_mkdir_p_in_root(rootfd, path, 0755, 0, err);
}

/* Create an empty file at PATH in the root if nothing is there. */
static int touch_in_root(int rootfd, const char *path, struct chrun_err *err)
{
    const char *base;
    cleanup_close int parent = chrun_fs_open_parent_in_root(rootfd, path, &base, err);
    cleanup_close int fd = -1;
    if (parent < 0)
        return -1;
    fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST)
        return chrun_err_sys(err, errno, "create '/%s' in rootfs", path);
    return 0;
}

/* Bind a host file (or directory) SRC onto PATH in the root, read-only. A
 * missing source or an image without a regular file there is skipped. */
static int bind_host_file(int rootfd, const char *src, const char *path, struct chrun_err *err)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    struct stat st;
    int fd;
    if (access(src, F_OK) < 0)
        return 0;
    fd = chrun_fs_open_in_root(rootfd, path, O_PATH, 0, &ignored);
    if (fd < 0 && ignored.errnum == ENOENT) {
        /* like runc and docker: the file is always there for the container */
        if (touch_in_root(rootfd, path, &ignored) < 0)
            return 0;
        fd = chrun_fs_open_in_root(rootfd, path, O_PATH, 0, &ignored);
    }
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0;
    }
    close(fd);
    if (mount_in_root(rootfd, path, src, NULL, MS_BIND, NULL, err) < 0)
        return -1;
    /* read-only: the container must not rewrite the host's file */
    return make_ro_in_root(rootfd, path, false, err);
}

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

static int setup_dev(struct run *r, int rootfd, struct chrun_err *err)
{
    cleanup_close int devfd = -1;
    char target[64], src[64];
    const char *pts_opts = r->rootless ? "newinstance,ptmxmode=0666,mode=0620"
                                       : "newinstance,ptmxmode=0666,mode=0620,gid=5";

    if (mkdir_in_root(rootfd, "dev", err) < 0)
        return chrun_err_prefix(err, "mount point '/dev'");
    if (mount_in_root(rootfd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                      "mode=755,size=65536k", err) < 0)
        return -1;
    devfd = chrun_fs_open_in_root(rootfd, "dev", O_PATH | O_DIRECTORY, 0, err);
    if (devfd < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(dev_nodes); i++) {
        struct stat st;
        cleanup_close int fd = -1;
        snprintf(src, sizeof(src), "/dev/%s", dev_nodes[i]);
        if (stat(src, &st) < 0 || !S_ISCHR(st.st_mode))
            continue;
        if (!r->rootless && mknodat(devfd, dev_nodes[i], S_IFCHR | 0666, st.st_rdev) == 0)
            continue;
        /* in a user namespace mknod is refused: bind the host's node instead */
        fd = openat(devfd, dev_nodes[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0666);
        if (fd < 0)
            return chrun_err_sys(err, errno, "create /dev/%s", dev_nodes[i]);
        close(fd);
        fd = openat(devfd, dev_nodes[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return chrun_err_sys(err, errno, "open /dev/%s", dev_nodes[i]);
        fd_path(target, sizeof(target), fd);
        if (mount(src, target, NULL, MS_BIND, NULL) < 0)
            return chrun_err_sys(err, errno, "bind %s", src);
    }
    if (mkdirat(devfd, "pts", 0755) < 0 || mkdirat(devfd, "shm", 01777) < 0)
        return chrun_err_sys(err, errno, "create /dev/pts, /dev/shm");
    if (mount_in_root(rootfd, "dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, pts_opts,
                      err) < 0 ||
        mount_in_root(rootfd, "dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      "mode=1777,size=65536k", err) < 0)
        return -1;
    if (symlinkat("pts/ptmx", devfd, "ptmx") < 0 || symlinkat("/proc/self/fd", devfd, "fd") < 0 ||
        symlinkat("/proc/self/fd/0", devfd, "stdin") < 0 ||
        symlinkat("/proc/self/fd/1", devfd, "stdout") < 0 ||
        symlinkat("/proc/self/fd/2", devfd, "stderr") < 0)
        return chrun_err_sys(err, errno, "create /dev links");
    return 0;
}

static int setup_volume(struct run *r, int rootfd, size_t i, struct chrun_err *err)
{
    const struct chrun_volume *v = &r->opts->volumes[i];
    const char *path = v->ctr;
    struct stat hst, cst;
    char src[64];
    cleanup_close int fd = -1;

    while (*path == '/')
        path++;
    if (*path == '\0')
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s:%s': cannot mount over /", v->host,
                             v->ctr);
    if (fstat(r->volume_fds[i], &hst) < 0)
        return chrun_err_sys(err, errno, "-v source '%s'", v->host);
    if (S_ISDIR(hst.st_mode)) {
        if (mkdir_in_root(rootfd, path, err) < 0)
            return chrun_err_prefix(err, "-v target '%s'", v->ctr);
    } else {
        const char *slash = strrchr(path, '/');
        if (slash != NULL) {
            char parent[PATH_MAX];
            snprintf(parent, sizeof(parent), "%.*s", (int) (slash - path), path);
            if (mkdir_in_root(rootfd, parent, err) < 0)
                return chrun_err_prefix(err, "-v target '%s'", v->ctr);
        }
        if (touch_in_root(rootfd, path, err) < 0)
            return chrun_err_prefix(err, "-v target '%s'", v->ctr);
    }
    fd = chrun_fs_open_in_root(rootfd, path, O_PATH, 0, err);
    if (fd < 0 || fstat(fd, &cst) < 0)
        return chrun_err_prefix(err, "-v target '%s'", v->ctr);
    if (S_ISDIR(hst.st_mode) != S_ISDIR(cst.st_mode))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "-v '%s:%s': cannot mount a %s over a %s", v->host, v->ctr,
                             S_ISDIR(hst.st_mode) ? "directory" : "file",
                             S_ISDIR(cst.st_mode) ? "directory" : "file");
    fd_path(src, sizeof(src), r->volume_fds[i]);
    if (mount_in_root(rootfd, path, src, NULL, MS_BIND | MS_REC, NULL, err) < 0)
        return chrun_err_prefix(err, "-v '%s'", v->host);
    if (v->ro && make_ro_in_root(rootfd, path, true, err) < 0)
        return -1;
    return 0;
}

/* Mount opts->overlay on TARGET (a /proc/self/fd path). Its directories are
 * opened here, inside the new mount namespace, and named to overlayfs by
 * /proc/self/fd paths, so no ',' or ':' in them can change the options. */
static int mount_overlay(struct run *r, const char *target, struct chrun_err *err)
{
    const struct chrun_exec_overlay *ov = r->opts->overlay;
    const char *paths[3] = {ov->lower, ov->upper, ov->work};
    int fds[3] = {-1, -1, -1};
    const char *extra = "";
    char data[256];
    int rc = 0, n;

    for (int i = 0; rc == 0 && i < 3; i++) {
        fds[i] = open(paths[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fds[i] < 0)
            rc = chrun_err_sys(err, errno, "overlay directory '%s'", paths[i]);
    }
    /* kernel: metacopy=on needs redirect_dir=on (and implies it); named
     * both so a module default of redirect_dir=off cannot refuse the mount */
    if (r->rootless)
        extra = ",userxattr";
    else if (r->opts->flags & CHRUN_EXEC_OVERLAY_METACOPY)
        extra = ",redirect_dir=on,metacopy=on";
    n = snprintf(data, sizeof(data),
                 "lowerdir=/proc/self/fd/%d,upperdir=/proc/self/fd/%d,workdir=/proc/self/fd/%d,volatile%s",
                 fds[0], fds[1], fds[2], extra);
    if (rc == 0 && (n < 0 || (size_t) n >= sizeof(data)))
        rc = chrun_err_sys(err, ENAMETOOLONG, "overlay options");
    if (rc == 0 && mount("overlay", target, "overlay", 0, data) < 0) {
        rc = chrun_err_sys(err, errno, "mount overlay on '%s' over '%s'", r->root_path, ov->lower);
        err->code = CHRUN_E_UNSUPPORTED; /* chrun_runtime_exec: the caller may copy instead */
    }
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

int runtime_setup_mounts(struct run *r, int *ret_rootfd, struct chrun_err *err)
{
    char self[64];
    cleanup_close int rootfd = -1;
    cleanup_close int bundlefd = -1;

    /* rslave: host mounts still propagate in, ours never propagate out */
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
        return chrun_err_sys(err, errno, "make / a slave mount");
    /* fds opened before unshare name mounts of the host's namespace, which
     * mount(2) refuses as sources and targets: open the bundle and the -v
     * sources again, by the same paths, now that they resolve in ours */
    bundlefd = open(r->bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (bundlefd < 0)
        return chrun_err_sys(err, errno, "bundle '%s'", r->bundle);
    rootfd = openat(bundlefd, r->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return chrun_err_sys(err, errno, "open rootfs '%s'", r->root_path);
    for (size_t i = 0; i < r->opts->n_volumes; i++) {
        const char *host = r->opts->volumes[i].host;
        struct stat before, now;
        int fd = open(host, O_PATH | O_CLOEXEC);
        if (fd < 0)
            return chrun_err_sys(err, errno, "-v source '%s'", host);
        /* the same file as the one opened (or handed over) before: a path
         * swapped meanwhile never decides what the container sees */
        if (fstat(r->volume_fds[i], &before) < 0 || fstat(fd, &now) < 0 ||
            before.st_dev != now.st_dev || before.st_ino != now.st_ino) {
            close(fd);
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "-v source '%s' changed while the container started", host);
        }
        close(r->volume_fds[i]);
        r->volume_fds[i] = fd;
    }
    /* The rootfs becomes a mount of its own: pivot_root and --read-only need it. */
    fd_path(self, sizeof(self), rootfd);
    if (r->opts->overlay != NULL) {
        if (mount_overlay(r, self, err) < 0)
            return -1;
    } else if (mount(self, self, NULL, MS_BIND | MS_REC, NULL) < 0) {
        return chrun_err_sys(err, errno, "bind rootfs '%s'", r->root_path);
    }
    close(rootfd);
    rootfd = openat(bundlefd, r->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return chrun_err_sys(err, errno, "open rootfs '%s'", r->root_path);

    if (mkdir_in_root(rootfd, "proc", err) < 0)
        return chrun_err_prefix(err, "mount point '/proc'");
    if (mount_in_root(rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
                      err) < 0) {
        /* a user namespace may not mount procfs for a pid namespace it does
         * not own: show the host's, as a plain chroot would */
        if (err->errnum != EPERM && err->errnum != EACCES)
            return -1;
        if (mount_in_root(rootfd, "proc", "/proc", NULL, MS_BIND | MS_REC, NULL, err) < 0)
            return -1;
    }
    if (setup_dev(r, rootfd, err) < 0)
        return -1;
    if (mkdir_in_root(rootfd, "sys", err) < 0)
        return chrun_err_prefix(err, "mount point '/sys'");
    if (!(r->ns & CHRUN_EXEC_NS_NET) ||
        mount_in_root(rootfd, "sys", "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      NULL, err) < 0) {
        /* sysfs shows the network namespace of whoever mounts it: without
         * --net bind the host's, read-only */
        if (mount_in_root(rootfd, "sys", "/sys", NULL, MS_BIND | MS_REC, NULL, err) < 0 ||
            make_ro_in_root(rootfd, "sys", true, err) < 0)
            return -1;
    }
    if (bind_host_file(rootfd, "/etc/resolv.conf", "etc/resolv.conf", err) < 0 ||
        bind_host_file(rootfd, "/etc/hosts", "etc/hosts", err) < 0)
        return -1;
    for (size_t i = 0; i < r->opts->n_volumes; i++)
        if (setup_volume(r, rootfd, i, err) < 0)
            return -1;
    if (!(r->opts->flags & CHRUN_EXEC_READ_ONLY) && !streq(r->cwd, "/") &&
        mkdir_in_root(rootfd, r->cwd + 1, err) < 0)
        return chrun_err_prefix(err, "working directory");
    if (r->opts->flags & CHRUN_EXEC_READ_ONLY) {
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
        if (mount_setattr(rootfd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
            return chrun_err_sys(err, errno, "make rootfs read-only");
    }
    *ret_rootfd = take_fd(rootfd);
    return 0;
}
