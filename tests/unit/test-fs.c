/* fd-relative filesystem helpers: resolving inside a root (openat2 and the
 * fallback walk, each tested directly), creation, removal, atomic writes. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "chrun/err.h"
#include "chrun/fs.h"

typedef int (*open_fn)(int rootfd, const char *path, int flags, mode_t mode,
                       enum chrun_fs_resolve how, struct chrun_err *err);

/* chrun_fs_open_at as the kernel gives it (openat2), and as a kernel without
 * openat2 gives it (the walk, forced): every case runs both ways. */
static int open_openat2(int rootfd, const char *path, int flags, mode_t mode,
                        enum chrun_fs_resolve how, struct chrun_err *err)
{
    return chrun_fs_open_at(rootfd, path, flags, mode, how, err);
}

static int open_walk(int rootfd, const char *path, int flags, mode_t mode,
                     enum chrun_fs_resolve how, struct chrun_err *err)
{
    int fd;
    chrun_fs_force_walk(true);
    fd = chrun_fs_open_at(rootfd, path, flags, mode, how, err);
    chrun_fs_force_walk(false);
    return fd;
}

static const struct {
    const char *name;
    open_fn fn;
} openers[] = {
    {"openat2", open_openat2},
    {"walk", open_walk},
};
#define N_OPENERS (sizeof(openers) / sizeof(openers[0]))

static int open_root(void)
{
    int fd = open("root", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        perror("# open root");
    return fd;
}

static ino_t ino_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_ino : 0;
}

static ino_t ino_of_fd(int fd)
{
    struct stat sb;
    return fstat(fd, &sb) == 0 ? sb.st_ino : 0;
}

/* Open PATH resolved as HOW with each opener and check it lands on WANT (a
 * path relative to cwd). */
static void expect_lands_how(enum chrun_fs_resolve how, int rootfd, const char *path, int flags,
                             const char *want)
{
    for (size_t i = 0; i < N_OPENERS; i++) {
        struct chrun_err err = CHRUN_ERR_INIT;
        int fd = openers[i].fn(rootfd, path, flags, 0, how, &err);
        if (fd < 0) {
            fprintf(stderr, "# %s('%s'): %s (errno %d)\n", openers[i].name, path, err.msg,
                    err.errnum);
            harness_failed_checks++;
            continue;
        }
        if (ino_of_fd(fd) != ino_of(want)) {
            fprintf(stderr, "# %s('%s') did not land on %s\n", openers[i].name, path, want);
            harness_failed_checks++;
        }
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        close(fd);
    }
}

/* Open PATH resolved as HOW with each opener and expect failure with ERRNUM. */
static void expect_errno_how(enum chrun_fs_resolve how, int rootfd, const char *path, int flags,
                             int errnum)
{
    for (size_t i = 0; i < N_OPENERS; i++) {
        struct chrun_err err = CHRUN_ERR_INIT;
        int fd = openers[i].fn(rootfd, path, flags, 0644, how, &err);
        if (fd >= 0) {
            fprintf(stderr, "# %s('%s') opened, expected %s\n", openers[i].name, path,
                    strerror(errnum));
            harness_failed_checks++;
            close(fd);
            continue;
        }
        if (err.errnum != errnum) {
            fprintf(stderr, "# %s('%s'): errno %d (%s), expected %d\n", openers[i].name, path,
                    err.errnum, err.msg, errnum);
            harness_failed_checks++;
        }
        CHECK_INT_EQ(err.code, CHRUN_E_SYS);
        CHECK(strstr(err.msg, path) != NULL);
    }
}

#define expect_lands(rootfd, path, flags, want)                                                     \
    expect_lands_how(CHRUN_FS_IN_ROOT, rootfd, path, flags, want)
#define expect_errno(rootfd, path, flags, errnum)                                                   \
    expect_errno_how(CHRUN_FS_IN_ROOT, rootfd, path, flags, errnum)

/* root/usr/bin/sh, root/bin -> usr/bin, root/abs -> /usr/bin */
static void make_tree(void)
{
    CHECK(mkdir("root", 0755) == 0);
    CHECK(mkdir("root/usr", 0755) == 0);
    CHECK(mkdir("root/usr/bin", 0755) == 0);
    CHECK(spew("root/usr/bin/sh", "in-root sh\n") == 0);
    CHECK(symlink("usr/bin", "root/bin") == 0);
    CHECK(symlink("/usr/bin", "root/abs") == 0);
    CHECK(symlink("/bin/sh", "root/sh-abs") == 0);
}

static void test_absolute_symlink_in_root(void)
{
    int rootfd;
    make_tree();
    rootfd = open_root();
    expect_lands(rootfd, "usr/bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands(rootfd, "bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands(rootfd, "/bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands(rootfd, "abs/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands(rootfd, "sh-abs", O_RDONLY, "root/usr/bin/sh");
    expect_lands(rootfd, "abs", O_RDONLY | O_DIRECTORY, "root/usr/bin");
    expect_lands(rootfd, "bin/", O_RDONLY | O_DIRECTORY, "root/usr/bin");
    expect_lands(rootfd, "", O_PATH | O_DIRECTORY, "root");
    expect_lands(rootfd, ".", O_PATH | O_DIRECTORY, "root");
    expect_lands(rootfd, "./usr//bin/./sh", O_RDONLY, "root/usr/bin/sh");
    close(rootfd);
}

static void test_dotdot_clamps(void)
{
    int rootfd;
    make_tree();
    CHECK(symlink("../../../../../../..", "root/usr/up") == 0);
    CHECK(symlink("../../../../../../../usr/bin/sh", "root/usr/bin/upsh") == 0);
    rootfd = open_root();
    expect_lands(rootfd, "../../..", O_PATH | O_DIRECTORY, "root");
    expect_lands(rootfd, "../../../usr/bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands(rootfd, "/../usr/../../usr/bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands(rootfd, "usr/bin/../../..", O_PATH | O_DIRECTORY, "root");
    expect_lands(rootfd, "usr/up", O_PATH | O_DIRECTORY, "root");
    expect_lands(rootfd, "usr/up/usr/bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands(rootfd, "usr/bin/upsh", O_RDONLY, "root/usr/bin/sh");
    expect_lands(rootfd, "bin/../bin/sh", O_RDONLY, "root/usr/bin/sh");
    close(rootfd);
}

static void test_host_paths_stay_inside(void)
{
    char canary[PATH_MAX + 16];
    int rootfd;

    make_tree();
    /* A host-side canary the image names by absolute and relative paths. */
    snprintf(canary, sizeof(canary), "%s/canary", harness_dir);
    CHECK(spew(canary, "host secret\n") == 0);
    CHECK(symlink("/etc/passwd", "root/pw") == 0);
    CHECK(symlink(canary, "root/canary-abs") == 0);
    CHECK(symlink("../canary", "root/canary-rel") == 0);
    CHECK(symlink("../../../../../../../..", "root/hostroot") == 0);
    rootfd = open_root();

    expect_errno(rootfd, "pw", O_RDONLY, ENOENT);
    expect_errno(rootfd, "canary-abs", O_RDONLY, ENOENT);
    expect_errno(rootfd, "canary-rel", O_RDONLY, ENOENT);
    expect_errno(rootfd, "../canary", O_RDONLY, ENOENT);
    expect_errno(rootfd, "hostroot/etc/passwd", O_RDONLY, ENOENT);
    expect_errno(rootfd, canary, O_RDONLY, ENOENT);

    /* Once the root has its own files, those are what opens, never the host's. */
    CHECK(mkdir("root/etc", 0755) == 0);
    CHECK(spew("root/etc/passwd", "root:x:0:0::/:/bin/sh\n") == 0);
    CHECK(spew("root/canary", "in-root canary\n") == 0);
    CHECK(ino_of("root/etc/passwd") != ino_of("/etc/passwd"));
    expect_lands(rootfd, "pw", O_RDONLY, "root/etc/passwd");
    expect_lands(rootfd, "hostroot/etc/passwd", O_RDONLY, "root/etc/passwd");
    expect_lands(rootfd, "canary-rel", O_RDONLY, "root/canary");
    expect_lands(rootfd, "../canary", O_RDONLY, "root/canary");
    for (size_t i = 0; i < N_OPENERS; i++) {
        struct chrun_err err = CHRUN_ERR_INIT;
        int fd = openers[i].fn(rootfd, "canary-abs", O_RDONLY, 0, CHRUN_FS_IN_ROOT, &err);
        if (fd >= 0) {
            CHECK(ino_of_fd(fd) != ino_of(canary));
            close(fd);
        }
    }
    close(rootfd);
}

static void make_chain(const char *dir, int links)
{
    char from[PATH_MAX], to[64];
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(from, sizeof(from), "%s/t", dir);
    CHECK(spew(from, "end\n") == 0);
    for (int i = 0; i < links; i++) {
        snprintf(from, sizeof(from), "%s/l%d", dir, i);
        if (i + 1 < links)
            snprintf(to, sizeof(to), "/%s/l%d", dir + strlen("root/"), i + 1);
        else
            snprintf(to, sizeof(to), "t");
        CHECK(symlink(to, from) == 0);
    }
}

static void test_symlink_loops(void)
{
    int rootfd;

    CHECK(mkdir("root", 0755) == 0);
    CHECK(symlink("self", "root/self") == 0);
    CHECK(symlink("b", "root/a") == 0);
    CHECK(symlink("/a", "root/b") == 0);
    CHECK(symlink("loopdir/x", "root/loopdir") == 0);
    make_chain("root/c32", 32);
    make_chain("root/c40", 40);
    make_chain("root/c41", 41);
    rootfd = open_root();
    expect_errno(rootfd, "self", O_RDONLY, ELOOP);
    expect_errno(rootfd, "a", O_RDONLY, ELOOP);
    expect_errno(rootfd, "a/x/y", O_RDONLY, ELOOP);
    expect_errno(rootfd, "loopdir", O_RDONLY, ELOOP);
    expect_errno(rootfd, "self", O_WRONLY | O_CREAT, ELOOP);
    /* One more symlink than the limit, which the walk shares with the
     * kernel: ELOOP both ways; exactly the limit opens both ways. */
    expect_errno(rootfd, "c41/l0", O_RDONLY, ELOOP);
    expect_lands(rootfd, "c40/l0", O_RDONLY, "root/c40/t");
    expect_lands(rootfd, "c32/l0", O_RDONLY, "root/c32/t");
    close(rootfd);
}

static void test_create_through_dangling_symlink(void)
{
    char hostpath[PATH_MAX + 16];
    int rootfd;

    CHECK(mkdir("root", 0755) == 0);
    CHECK(mkdir("root/sub", 0755) == 0);
    CHECK(symlink("/sub/created", "root/dangling") == 0);
    snprintf(hostpath, sizeof(hostpath), "%s/host-created", harness_dir);
    CHECK(symlink(hostpath, "root/to-host") == 0);
    rootfd = open_root();
    for (size_t i = 0; i < N_OPENERS; i++) {
        struct chrun_err err = CHRUN_ERR_INIT;
        int fd;
        unlink("root/sub/created");
        fd = openers[i].fn(rootfd, "dangling", O_WRONLY | O_CREAT, 0600, CHRUN_FS_IN_ROOT, &err);
        CHECK(fd >= 0);
        if (fd < 0) {
            fprintf(stderr, "# %s: %s\n", openers[i].name, err.msg);
            continue;
        }
        CHECK(write(fd, "x", 1) == 1);
        close(fd);
        CHECK(access("root/sub/created", F_OK) == 0);
        CHECK(access("/sub/created", F_OK) < 0);

        /* A target whose directories exist only on the host: nothing is created. */
        fd = openers[i].fn(rootfd, "to-host", O_WRONLY | O_CREAT, 0600, CHRUN_FS_IN_ROOT, &err);
        CHECK_INT_EQ(fd, -1);
        CHECK_INT_EQ(err.errnum, ENOENT);
        CHECK(access(hostpath, F_OK) < 0);

        /* O_CREAT|O_EXCL on a symlink fails with EEXIST, as open(2) does. */
        CHECK(unlink("root/sub/created") == 0);
        fd = openers[i].fn(rootfd, "dangling", O_WRONLY | O_CREAT | O_EXCL, 0600, CHRUN_FS_IN_ROOT,
                            &err);
        if (fd >= 0)
            close(fd);
        CHECK_INT_EQ(fd, -1);
        CHECK_INT_EQ(err.errnum, EEXIST);
        CHECK(access("root/sub/created", F_OK) < 0);
        CHECK(spew("root/sub/created", "x") == 0);
    }
    CHECK_INT_EQ(count_entries("root/sub"), 1);
    close(rootfd);
}

static void test_intermediate_not_dir(void)
{
    int rootfd;
    CHECK(mkdir("root", 0755) == 0);
    CHECK(spew("root/file", "f") == 0);
    rootfd = open_root();
    expect_errno(rootfd, "file/x", O_RDONLY, ENOTDIR);
    expect_errno(rootfd, "missing/x", O_RDONLY, ENOENT);
    expect_errno(rootfd, "missing/x", O_RDONLY | O_CREAT, ENOENT);
    close(rootfd);
}

static void test_open_parent_in_root(void)
{
    static const char *const refused[] = {"", ".", "..", "a/..", "/", "a/.", "a/../", "//"};
    int rootfd;

    make_tree();
    rootfd = open_root();
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        struct chrun_err err = CHRUN_ERR_INIT;
        const char *base = NULL;
        int fd = chrun_fs_open_parent_in_root(rootfd, refused[i], &base, &err);
        if (fd >= 0) {
            fprintf(stderr, "# open_parent('%s') accepted\n", refused[i]);
            close(fd);
        }
        CHECK_INT_EQ(fd, -1);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    }
    {
        struct chrun_err err = CHRUN_ERR_INIT;
        const char *base = NULL;
        int fd = chrun_fs_open_parent_in_root(rootfd, "/bin/newfile", &base, &err);
        CHECK(fd >= 0);
        CHECK_STR_EQ(base, "newfile");
        CHECK_INT_EQ(ino_of_fd(fd), ino_of("root/usr/bin"));
        if (fd >= 0)
            close(fd);
        fd = chrun_fs_open_parent_in_root(rootfd, "top", &base, &err);
        CHECK(fd >= 0);
        CHECK_STR_EQ(base, "top");
        CHECK_INT_EQ(ino_of_fd(fd), ino_of("root"));
        if (fd >= 0)
            close(fd);
        fd = chrun_fs_open_parent_in_root(rootfd, "../../usr/bin/..x", &base, &err);
        CHECK(fd >= 0);
        CHECK_STR_EQ(base, "..x");
        CHECK_INT_EQ(ino_of_fd(fd), ino_of("root/usr/bin"));
        if (fd >= 0)
            close(fd);
    }
    close(rootfd);
}

static void test_mkdir_p_at(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct stat sb;
    CHECK_INT_EQ(chrun_fs_mkdir_p_at(AT_FDCWD, "a/b/c", 0755, &err), 0);
    CHECK(stat("a/b/c", &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK_INT_EQ(chrun_fs_mkdir_p_at(AT_FDCWD, "a/b/c", 0755, &err), 0); /* exists: fine */
    CHECK_INT_EQ(chrun_fs_mkdir_p_at(AT_FDCWD, "a//b/c/", 0755, &err), 0);

    CHECK(spew("a/file", "f") == 0);
    CHECK_INT_EQ(chrun_fs_mkdir_p_at(AT_FDCWD, "a/file", 0755, &err), -1);
    CHECK_INT_EQ(err.errnum, ENOTDIR);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_fs_mkdir_p_at(AT_FDCWD, "a/file/sub", 0755, &err), -1);
    CHECK_INT_EQ(err.errnum, ENOTDIR);
    CHECK(strstr(err.msg, "a/file") != NULL);

    /* A symlink to a directory is not followed. */
    CHECK(mkdir("elsewhere", 0755) == 0);
    CHECK(symlink("../elsewhere", "a/link") == 0);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_fs_mkdir_p_at(AT_FDCWD, "a/link/sub", 0755, &err), -1);
    CHECK_INT_EQ(err.errnum, ENOTDIR);
    CHECK_INT_EQ(count_entries("elsewhere"), 0);
}

/* A hostile tree for the two beneath modes: links inside, links out
 * (absolute, relative, ".." past the root), a loop, a dangling link. */
static void make_beneath_tree(void)
{
    char canary[PATH_MAX + 16];
    make_tree();
    snprintf(canary, sizeof(canary), "%s/canary", harness_dir);
    CHECK(spew(canary, "host secret\n") == 0);
    CHECK(mkdir("root/d", 0755) == 0);
    CHECK(symlink("../usr", "root/d/up") == 0);
    CHECK(symlink("../..", "root/d/out") == 0);
    CHECK(symlink("../canary", "root/canary-rel") == 0);
    CHECK(symlink(canary, "root/canary-abs") == 0);
    CHECK(symlink("self", "root/self") == 0);
    CHECK(symlink("nowhere", "root/dangling") == 0);
    CHECK(spew("root/file", "f") == 0);
}

static void test_beneath(void)
{
    const enum chrun_fs_resolve b = CHRUN_FS_BENEATH;
    int rootfd;
    make_beneath_tree();
    rootfd = open_root();
    expect_lands_how(b, rootfd, "usr/bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands_how(b, rootfd, "bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands_how(b, rootfd, "d/up/bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands_how(b, rootfd, "usr/../usr/bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands_how(b, rootfd, "", O_PATH | O_DIRECTORY, "root");
    /* every way out is EXDEV, never clamped to the root (that is IN_ROOT) */
    expect_errno_how(b, rootfd, "/usr/bin/sh", O_RDONLY, EXDEV);
    expect_errno_how(b, rootfd, "abs/sh", O_RDONLY, EXDEV);
    expect_errno_how(b, rootfd, "sh-abs", O_RDONLY, EXDEV);
    expect_errno_how(b, rootfd, "../canary", O_RDONLY, EXDEV);
    expect_errno_how(b, rootfd, "usr/../../canary", O_RDONLY, EXDEV);
    expect_errno_how(b, rootfd, "d/out/canary", O_RDONLY, EXDEV);
    expect_errno_how(b, rootfd, "canary-rel", O_RDONLY, EXDEV);
    expect_errno_how(b, rootfd, "canary-abs", O_RDONLY, EXDEV);
    expect_errno_how(b, rootfd, "self", O_RDONLY, ELOOP);
    expect_errno_how(b, rootfd, "dangling", O_RDONLY, ENOENT);
    expect_errno_how(b, rootfd, "file/x", O_RDONLY, ENOTDIR);
    close(rootfd);
}

static void test_beneath_no_symlinks(void)
{
    const enum chrun_fs_resolve n = CHRUN_FS_BENEATH_NO_SYMLINKS;
    int rootfd;
    make_beneath_tree();
    rootfd = open_root();
    expect_lands_how(n, rootfd, "usr/bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands_how(n, rootfd, "usr/../usr/bin/sh", O_RDONLY, "root/usr/bin/sh");
    expect_lands_how(n, rootfd, "d", O_RDONLY | O_DIRECTORY, "root/d");
    /* any symlink on the way, inside or out, dangling or looping: ELOOP */
    expect_errno_how(n, rootfd, "bin/sh", O_RDONLY, ELOOP);
    expect_errno_how(n, rootfd, "bin", O_RDONLY | O_DIRECTORY, ELOOP);
    expect_errno_how(n, rootfd, "d/up/bin", O_RDONLY, ELOOP);
    expect_errno_how(n, rootfd, "abs/sh", O_RDONLY, ELOOP);
    expect_errno_how(n, rootfd, "canary-rel", O_RDONLY, ELOOP);
    expect_errno_how(n, rootfd, "self", O_RDONLY, ELOOP);
    expect_errno_how(n, rootfd, "dangling", O_RDONLY, ELOOP);
    expect_errno_how(n, rootfd, "dangling", O_WRONLY | O_CREAT, ELOOP);
    /* escapes without a symlink: EXDEV */
    expect_errno_how(n, rootfd, "/usr", O_RDONLY, EXDEV);
    expect_errno_how(n, rootfd, "../canary", O_RDONLY, EXDEV);
    expect_errno_how(n, rootfd, "d/../../canary", O_RDONLY, EXDEV);
    expect_errno_how(n, rootfd, "file/x", O_RDONLY, ENOTDIR);
    expect_errno_how(n, rootfd, "missing/x", O_RDONLY, ENOENT);
    /* O_PATH|O_NOFOLLOW opens a final symlink itself, as open(2) does */
    for (size_t i = 0; i < N_OPENERS; i++) {
        struct chrun_err err = CHRUN_ERR_INIT;
        struct stat sb;
        int fd = openers[i].fn(rootfd, "d/up", O_PATH | O_NOFOLLOW, 0, n, &err);
        CHECK(fd >= 0);
        if (fd < 0)
            continue;
        CHECK(fstat(fd, &sb) == 0 && S_ISLNK(sb.st_mode));
        close(fd);
    }
    close(rootfd);
}

/* mkdir -p in root, both ways: one rule for what already exists. */
static void mkdir_p_in_root_case(bool walk)
{
    static const char *const bad[][2] = {
        {"file", "file"},           {"file/sub", "file"},     {"to-file/sub", "to-file"},
        {"dangling/x", "dangling"}, {"to-host/x", "to-host"}, {"loop/x", "loop"},
    };
    char hostpath[PATH_MAX];
    struct chrun_err err = CHRUN_ERR_INIT;
    struct stat sb;
    int rootfd;

    make_tree();
    CHECK(getcwd(hostpath, sizeof(hostpath) - 16) != NULL);
    strcat(hostpath, "/host-made");
    CHECK(symlink(hostpath, "root/to-host") == 0);
    CHECK(symlink("/var/made", "root/dangling") == 0);
    CHECK(spew("root/file", "f") == 0);
    CHECK(symlink("file", "root/to-file") == 0);
    CHECK(symlink("loop", "root/loop") == 0);
    rootfd = open_root();
    chrun_fs_force_walk(walk);
    CHECK_INT_EQ(chrun_fs_mkdir_p_in_root(rootfd, "a/b/c", 0755, 0, &err), 0);
    CHECK(stat("root/a/b/c", &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK_INT_EQ(sb.st_mode & 07777, 0755); /* not the umask's 0700 */
    CHECK_INT_EQ(chrun_fs_mkdir_p_in_root(rootfd, "a/b/c", 0755, 0, &err), 0);
    /* through symlinks to directories, resolved in the root */
    CHECK_INT_EQ(chrun_fs_mkdir_p_in_root(rootfd, "bin/new", 0755, 0, &err), 0);
    CHECK(stat("root/usr/bin/new", &sb) == 0 && S_ISDIR(sb.st_mode));
    /* ".." of abs -> /usr/bin is /usr, as the kernel resolves it */
    CHECK_INT_EQ(chrun_fs_mkdir_p_in_root(rootfd, "/abs/../bin/new2", 0755, 0, &err), 0);
    CHECK(stat("root/usr/bin/new2", &sb) == 0 && S_ISDIR(sb.st_mode));
    /* an existing non-directory is an error naming it */
    for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
        chrun_err_clear(&err);
        CHECK_INT_EQ(chrun_fs_mkdir_p_in_root(rootfd, bad[j][0], 0755, 0, &err), -1);
        if (strstr(err.msg, bad[j][1]) == NULL)
            fprintf(stderr, "# '%s': '%s' does not name '%s'\n", bad[j][0], err.msg, bad[j][1]);
    }
    CHECK(access("root/var", F_OK) < 0);
    /* THROUGH_DANGLING: the target is made inside the root, never on the host */
    CHECK_INT_EQ(chrun_fs_mkdir_p_in_root(rootfd, "dangling/x", 0755,
                                          CHRUN_FS_MKDIR_THROUGH_DANGLING, &err),
                 0);
    CHECK(stat("root/var/made/x", &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK_INT_EQ(chrun_fs_mkdir_p_in_root(rootfd, "to-host/x", 0755,
                                          CHRUN_FS_MKDIR_THROUGH_DANGLING, &err),
                 0);
    CHECK(access(hostpath, F_OK) < 0);
    CHECK(access("/var/made", F_OK) < 0);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_fs_mkdir_p_in_root(rootfd, "to-file/x", 0755,
                                          CHRUN_FS_MKDIR_THROUGH_DANGLING, &err),
                 -1);
    CHECK(strstr(err.msg, "to-file") != NULL);
    /* _owned: the directories it makes get the owner, existing ones keep theirs
     * (as root only: others cannot give files away) */
    if (geteuid() == 0) {
        CHECK_INT_EQ(chrun_fs_mkdir_p_in_root_owned(rootfd, "a/own/er", 0750, 0, 1000, 50, &err),
                     0);
        CHECK(stat("root/a/own/er", &sb) == 0 && sb.st_uid == 1000 && sb.st_gid == 50);
        CHECK_INT_EQ(sb.st_mode & 07777, 0750);
        CHECK(stat("root/a/own", &sb) == 0 && sb.st_uid == 1000 && sb.st_gid == 50);
        CHECK(stat("root/a", &sb) == 0 && sb.st_uid == 0 && sb.st_gid == 0);
        /* through a dangling symlink: the target made in the root is owned too */
        CHECK_INT_EQ(chrun_fs_mkdir_p_in_root_owned(rootfd, "dangling/y", 0755,
                                                    CHRUN_FS_MKDIR_THROUGH_DANGLING, 7, 8, &err),
                     0);
        CHECK(stat("root/var/made/y", &sb) == 0 && sb.st_uid == 7 && sb.st_gid == 8);
        CHECK(lstat("root/dangling", &sb) == 0 && S_ISLNK(sb.st_mode) && sb.st_uid == 0);
    }
    chrun_fs_force_walk(false);
    close(rootfd);
}

static void test_mkdir_p_in_root(void)
{
    mode_t old_umask = umask(077);
    CHECK(mkdir("openat2", 0755) == 0 && chdir("openat2") == 0);
    mkdir_p_in_root_case(false);
    CHECK(chdir(harness_dir) == 0);
    CHECK(mkdir("walk", 0755) == 0 && chdir("walk") == 0);
    mkdir_p_in_root_case(true);
    CHECK(chdir(harness_dir) == 0);
    umask(old_umask);
}

static void make_rm_tree(void)
{
    CHECK(mkdir("hostdir", 0755) == 0);
    CHECK(spew("hostdir/keep", "keep me\n") == 0);
    CHECK(mkdir("victim", 0755) == 0);
    CHECK(mkdir("victim/ro", 0755) == 0);
    CHECK(mkdir("victim/ro/deeper", 0755) == 0);
    CHECK(spew("victim/ro/file", "x") == 0);
    CHECK(spew("victim/ro/deeper/file", "x") == 0);
    CHECK(chmod("victim/ro/deeper", 0555) == 0);
    CHECK(chmod("victim/ro", 0555) == 0);
    CHECK(symlink("../hostdir", "victim/to-host") == 0);
    CHECK(symlink("../../hostdir/keep", "victim/ro/to-keep") == 0);
    CHECK(spew("victim/plain", "p") == 0);
}

static void test_rm_rf_at(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    make_rm_tree();
    CHECK_INT_EQ(chrun_fs_rm_rf_at(AT_FDCWD, "victim", &err), 0);
    CHECK(access("victim", F_OK) < 0);
    CHECK_INT_EQ(count_entries("hostdir"), 1);
    CHECK(access("hostdir/keep", F_OK) == 0);
    /* missing: success; a plain file and a symlink: removed themselves */
    CHECK_INT_EQ(chrun_fs_rm_rf_at(AT_FDCWD, "victim", &err), 0);
    CHECK(symlink("hostdir", "lnk") == 0);
    CHECK_INT_EQ(chrun_fs_rm_rf_at(AT_FDCWD, "lnk", &err), 0);
    CHECK(access("hostdir/keep", F_OK) == 0);
    CHECK_INT_EQ(chrun_fs_rm_rf_at(AT_FDCWD, "hostdir/keep", &err), 0);
    CHECK_INT_EQ(count_entries("hostdir"), 0);
}

/* The same as an unprivileged owner, for whom 0555 directories really bite. */
static void test_rm_rf_at_unprivileged(void)
{
    pid_t pid;
    int status = -1;
    if (geteuid() != 0) {
        test_rm_rf_at();
        return;
    }
    /* The victim's parent belongs to the unprivileged user; hostdir stays root's. */
    CHECK(chmod(harness_dir, 0755) == 0);
    CHECK(mkdir("owned", 0755) == 0);
    CHECK(chdir("owned") == 0);
    make_rm_tree();
    CHECK(system("chown -h 65534:65534 . && chown -R -h 65534:65534 victim") == 0);
    pid = fork();
    if (pid == 0) {
        struct chrun_err err = CHRUN_ERR_INIT;
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(3);
        _exit(chrun_fs_rm_rf_at(AT_FDCWD, "victim", &err) == 0 ? 0 : 1);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(access("victim", F_OK) < 0);
    CHECK(access("hostdir/keep", F_OK) == 0);
    CHECK(chdir(harness_dir) == 0);
}

static void test_write_atomic_at(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    int dfd, tfd;
    struct stat sb;
    char buf[64] = {0};
    FILE *f;

    CHECK(mkdir("dir", 0755) == 0);
    CHECK(mkdir("dir/tmp", 0755) == 0);
    dfd = open("dir", O_PATH | O_DIRECTORY | O_CLOEXEC);
    tfd = open("dir/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK(spew("dir/doc", "old content that is longer\n") == 0);
    CHECK_INT_EQ(chrun_fs_write_atomic_at(tfd, dfd, "doc", "new\n", 4, 0640, &err), 0);
    f = fopen("dir/doc", "r");
    CHECK(f != NULL);
    if (f != NULL) {
        CHECK(fread(buf, 1, sizeof(buf) - 1, f) == 4);
        fclose(f);
    }
    CHECK_STR_EQ(buf, "new\n");
    CHECK(stat("dir/doc", &sb) == 0);
    CHECK_INT_EQ(sb.st_mode & 07777, 0640);
    CHECK_INT_EQ(count_entries("dir/tmp"), 0);
    CHECK_INT_EQ(count_entries("dir"), 2);
    /* a new name, empty content */
    CHECK_INT_EQ(chrun_fs_write_atomic_at(tfd, dfd, "empty", "", 0, 0644, &err), 0);
    CHECK(stat("dir/empty", &sb) == 0 && sb.st_size == 0);
    CHECK_INT_EQ(count_entries("dir/tmp"), 0);
    /* replacing a directory fails and leaves no temp file */
    CHECK(mkdir("dir/isdir", 0755) == 0);
    CHECK(spew("dir/isdir/x", "x") == 0);
    CHECK_INT_EQ(chrun_fs_write_atomic_at(tfd, dfd, "isdir", "x", 1, 0644, &err), -1);
    CHECK(strstr(err.msg, "isdir") != NULL);
    CHECK_INT_EQ(count_entries("dir/tmp"), 0);
    close(dfd);
    close(tfd);
}

static void test_mktemp_unique(void)
{
    enum { N = 200 };
    static char names[2 * N][64];
    struct chrun_err err = CHRUN_ERR_INIT;
    int dfd;
    CHECK(mkdir("t", 0755) == 0);
    dfd = open("t", O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (int i = 0; i < N; i++) {
        int fd = chrun_fs_mkstemp_at(dfd, "f-", names[i], sizeof(names[i]), &err);
        CHECK(fd >= 0);
        CHECK(strncmp(names[i], "f-", 2) == 0 && strlen(names[i]) > 2);
        if (fd >= 0) {
            CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
            CHECK(write(fd, "x", 1) == 1);
            close(fd);
        }
        CHECK_INT_EQ(chrun_fs_mkdtemp_at(dfd, "d-", names[N + i], sizeof(names[N + i]), &err), 0);
    }
    CHECK_INT_EQ(count_entries("t"), 2 * N);
    for (int i = 0; i < 2 * N; i++)
        for (int j = i + 1; j < 2 * N; j++)
            CHECK(strcmp(names[i], names[j]) != 0);
    /* a name buffer too small is an error, not an overflow */
    char tiny[4];
    CHECK_INT_EQ(chrun_fs_mkstemp_at(dfd, "long-prefix-", tiny, sizeof(tiny), &err), -1);
    CHECK_INT_EQ(err.errnum, ENAMETOOLONG);
    CHECK_INT_EQ(count_entries("t"), 2 * N);
    close(dfd);
}

static void test_mkdtemp_locked(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char name[64], tiny[8];
    int dfd, fd, other;
    CHECK(mkdir("lk", 0755) == 0);
    dfd = open("lk", O_PATH | O_DIRECTORY | O_CLOEXEC);
    fd = chrun_fs_mkdtemp_locked_at(dfd, ".x.new-", ".x.tmp-", name, sizeof(name), &err);
    CHECK(fd >= 0);
    /* the swept name only, with the same random part, and the lock held */
    CHECK(strncmp(name, ".x.tmp-", 7) == 0 && strlen(name) > 7);
    CHECK_INT_EQ(count_entries("lk"), 1);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    other = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(other >= 0);
    CHECK(flock(other, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK);
    close(fd);
    CHECK(flock(other, LOCK_EX | LOCK_NB) == 0);
    close(other);
    /* a final name that does not fit: an error, and nothing left behind */
    CHECK_INT_EQ(chrun_fs_mkdtemp_locked_at(dfd, "h-", "a-much-longer-prefix-", tiny,
                                            sizeof(tiny), &err),
                 -1);
    CHECK_INT_EQ(err.errnum, ENAMETOOLONG);
    CHECK_INT_EQ(count_entries("lk"), 1);
    close(dfd);
}

static void test_list_at(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char **names = NULL;
    size_t n = 0;
    int fd;
    bool seen[3] = {false, false, false};
    CHECK(mkdir("d", 0755) == 0);
    CHECK(spew("d/a", "a") == 0);
    CHECK(mkdir("d/b", 0755) == 0);
    CHECK(symlink("/nowhere", "d/c") == 0);
    fd = open("d", O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK_INT_EQ(chrun_fs_list_at(fd, &names, &n, &err), 0);
    CHECK_INT_EQ(n, 3);
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == 1 && names[i][0] >= 'a' && names[i][0] <= 'c')
            seen[names[i][0] - 'a'] = true;
    CHECK(seen[0] && seen[1] && seen[2]);
    chrun_fs_names_free(names, n);
    close(fd);
    /* an empty directory: no names, NULL array */
    fd = open("d/b", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK_INT_EQ(chrun_fs_list_at(fd, &names, &n, &err), 0);
    CHECK_INT_EQ(n, 0);
    chrun_fs_names_free(names, n);
    close(fd);
}

struct each_count {
    size_t n, removed;
    const char *stop_at;
};

static int count_entry(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct each_count *c = data;
    c->n++;
    if (c->stop_at != NULL && strcmp(name, c->stop_at) == 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "stop at '%s'", name);
    if (name[0] == 'x' && unlinkat(dfd, name, 0) == 0)
        c->removed++;
    return 0;
}

static void test_each_at(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct each_count c = {0};
    char name[32];
    int fd;
    CHECK(mkdir("d", 0755) == 0);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "d/%c%03d", i % 2 ? 'x' : 'k', i);
        CHECK(spew(name, "") == 0);
    }
    fd = open("d", O_PATH | O_DIRECTORY | O_CLOEXEC);
    /* every entry once, even while the callback removes half of them */
    CHECK_INT_EQ(chrun_fs_each_at(fd, count_entry, &c, &err), 0);
    CHECK_INT_EQ(c.n, 500);
    CHECK_INT_EQ(c.removed, 250);
    CHECK_INT_EQ(count_entries("d"), 250);
    /* the callback's failure stops the walk with its message */
    c = (struct each_count){.stop_at = "k010"};
    CHECK_INT_EQ(chrun_fs_each_at(fd, count_entry, &c, &err), -1);
    CHECK_STR_EQ(err.msg, "stop at 'k010'");
    CHECK(c.n <= 250);
    close(fd);
    /* not a directory */
    CHECK(spew("f", "") == 0);
    fd = open("f", O_PATH | O_CLOEXEC);
    CHECK_INT_EQ(chrun_fs_each_at(fd, count_entry, &c, &err), -1);
    CHECK_INT_EQ(err.errnum, ENOTDIR);
    CHECK_STR_EQ(err.msg, "open directory");
    close(fd);
}

static void test_read_regular_at(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char *buf = NULL;
    size_t len = 99;
    int fd;
    CHECK(mkdir("d", 0755) == 0);
    CHECK(spew("d/f", "abc\n") == 0);
    CHECK(symlink("/f", "d/abs") == 0); /* resolves to d/f: symlinks stay in d */
    CHECK(mkfifo("d/p", 0644) == 0);
    fd = open("d", O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK_INT_EQ(chrun_fs_read_regular_at(fd, "missing", 16, &buf, &len, &err), 0);
    CHECK(buf == NULL);
    CHECK_INT_EQ(len, 0);
    CHECK_INT_EQ(chrun_fs_read_regular_at(fd, "abs", 16, &buf, &len, &err), 0);
    CHECK(buf != NULL && len == strlen(buf) && buf[len] == '\0');
    free(buf);
    CHECK_INT_EQ(chrun_fs_read_regular_at(fd, "p", 16, &buf, &len, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK_STR_EQ(err.msg, "'p': not a regular file");
    CHECK_INT_EQ(chrun_fs_read_regular_at(fd, "f", 0, &buf, &len, &err), -1);
    CHECK_INT_EQ(err.errnum, EFBIG);
    CHECK(buf == NULL);
    CHECK_INT_EQ(chrun_fs_read_regular_in_root(fd, "p", 16, &buf, &err), -1);
    CHECK_STR_EQ(err.msg, "'p' of the image: not a regular file");
    close(fd);
}

static void test_exists_and_open_dir(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    int fd;
    CHECK(mkdir("d", 0755) == 0);
    CHECK(symlink("nowhere", "dangling") == 0);
    CHECK(symlink("d", "dlink") == 0);
    CHECK(chrun_fs_exists_at(AT_FDCWD, "d"));
    CHECK(chrun_fs_exists_at(AT_FDCWD, "dangling"));
    CHECK(!chrun_fs_exists_at(AT_FDCWD, "nowhere"));
    fd = chrun_fs_open_dir_at(AT_FDCWD, "d", &err);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    CHECK_INT_EQ(chrun_fs_open_dir_at(AT_FDCWD, "dlink", &err), -1);
    CHECK(err.errnum == ELOOP || err.errnum == ENOTDIR); /* O_DIRECTORY|O_NOFOLLOW */
    CHECK(strstr(err.msg, "dlink") != NULL);
    fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK_INT_EQ(chrun_fs_fsync_dir(fd, &err), 0);
    close(fd);
}

int main(void)
{
    RUN_TEST(test_absolute_symlink_in_root);
    RUN_TEST(test_dotdot_clamps);
    RUN_TEST(test_host_paths_stay_inside);
    RUN_TEST(test_symlink_loops);
    RUN_TEST(test_create_through_dangling_symlink);
    RUN_TEST(test_intermediate_not_dir);
    RUN_TEST(test_open_parent_in_root);
    RUN_TEST(test_mkdir_p_at);
    RUN_TEST(test_beneath);
    RUN_TEST(test_beneath_no_symlinks);
    RUN_TEST(test_mkdir_p_in_root);
    RUN_TEST(test_rm_rf_at);
    RUN_TEST(test_rm_rf_at_unprivileged);
    RUN_TEST(test_write_atomic_at);
    RUN_TEST(test_mktemp_unique);
    RUN_TEST(test_mkdtemp_locked);
    RUN_TEST(test_list_at);
    RUN_TEST(test_each_at);
    RUN_TEST(test_read_regular_at);
    RUN_TEST(test_exists_and_open_dir);
    return harness_done();
}
