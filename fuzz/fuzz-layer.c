/* The layer applier (src/layer.c): the input is an uncompressed tar layer,
 * applied twice (a layer over itself exercises replacement and whiteouts of
 * lower entries) into a fresh rootfs directory BASE/root. BASE also holds a
 * canary file and a directory with a secret file; after every run the
 * harness asserts that BASE still lists exactly those, with the same inode,
 * link count, mode, owner, size and content: nothing outside the rootfs
 * changed. Then the rootfs is removed. */
#include <dirent.h>
#include <errno.h>

#include "chrun/layer.h"
#include "fuzz-common.h"

#define CANARY_TEXT "canary: must never change\n"

static char base[256], root[300];
static int base_fd = -1;

struct seen {
    const char *name;
    struct stat sb;
};
static struct seen seen[] = {{"canary", {0}}, {"outside", {0}}, {"outside/secret", {0}}};

static void write_file(const char *name)
{
    int fd = openat(base_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, CANARY_TEXT, strlen(CANARY_TEXT)) != (ssize_t) strlen(CANARY_TEXT) ||
        close(fd) < 0)
        abort();
}

static bool same_file(const char *name, const struct stat *want)
{
    struct stat sb;
    char buf[sizeof(CANARY_TEXT) + 8];
    ssize_t n;
    int fd;

    if (fstatat(base_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || sb.st_ino != want->st_ino ||
        sb.st_mode != want->st_mode || sb.st_nlink != want->st_nlink ||
        sb.st_uid != want->st_uid || sb.st_gid != want->st_gid || sb.st_size != want->st_size ||
        sb.st_mtim.tv_sec != want->st_mtim.tv_sec || sb.st_mtim.tv_nsec != want->st_mtim.tv_nsec)
        return false;
    if (!S_ISREG(sb.st_mode))
        return true;
    fd = openat(base_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, buf, sizeof(buf));
    close(fd);
    return n == (ssize_t) strlen(CANARY_TEXT) && memcmp(buf, CANARY_TEXT, (size_t) n) == 0;
}

/* NAMES of directory DIR (relative to BASE) must be exactly WANT. */
static bool lists_exactly(const char *dir, const char *const *want, size_t n_want)
{
    int fd = openat(base_fd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    struct dirent *de;
    size_t n = 0;
    bool ok = d != NULL;

    while (ok && (de = readdir(d)) != NULL) {
        bool known = false;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        for (size_t i = 0; i < n_want; i++)
            known = known || strcmp(de->d_name, want[i]) == 0;
        ok = known;
        n++;
    }
    if (d != NULL)
        closedir(d);
    else if (fd >= 0)
        close(fd);
    return ok && n == n_want;
}

static void check_outside_unchanged(const char *what)
{
    static const char *const top[] = {"canary", "outside", "root"};
    static const char *const inner[] = {"secret"};
    bool ok = lists_exactly(".", top, 3) && lists_exactly("outside", inner, 1);

    for (size_t i = 0; ok && i < sizeof(seen) / sizeof(seen[0]); i++)
        ok = same_file(seen[i].name, &seen[i].sb);
    if (!ok) {
        fprintf(stderr, "fuzz-layer: %s changed something outside the rootfs in %s\n", what,
                base);
        abort();
    }
}

static void remove_base(void)
{
    fuzz_rm_rf(base);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    fuzz_scratch_dir("layer", base, sizeof(base));
    snprintf(root, sizeof(root), "%s/root", base);
    base_fd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (base_fd < 0 || mkdirat(base_fd, "outside", 0755) < 0)
        abort();
    write_file("canary");
    write_file("outside/secret");
    for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++)
        if (fstatat(base_fd, seen[i].name, &seen[i].sb, AT_SYMLINK_NOFOLLOW) < 0)
            abort();
    atexit(remove_base);
    fuzz_quiet();
    return 0;
}

static void apply(int rootfd, int blob_fd, const struct chrun_descriptor *desc)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    int rc;

    if (a == NULL)
        abort();
    /* The layer twice, as two layers of one image, then the directory
     * metadata once, as chrun-unpack does. */
    rc = 0;
    for (int pass = 0; rc == 0 && pass < 2; pass++) {
        if (lseek(blob_fd, 0, SEEK_SET) < 0)
            abort();
        rc = chrun_layer_apply(a, blob_fd, desc, &desc->digest, &err);
        fuzz_check_err(rc, &err);
    }
    if (rc == 0)
        fuzz_check_err(chrun_layer_applier_finish(a, &err), &err);
    chrun_layer_applier_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_descriptor desc = {0};
    int rootfd, blob_fd;

    if (mkdirat(base_fd, "root", 0755) < 0)
        abort();
    rootfd = openat(base_fd, "root", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0)
        abort();
    snprintf(desc.media_type, sizeof(desc.media_type), "%s", CHRUN_MT_OCI_LAYER);
    if (chrun_digest_of_buffer(&desc.digest, data, size, &err) < 0)
        abort();
    desc.size = (int64_t) size;
    blob_fd = fuzz_memfd(data, size);
    apply(rootfd, blob_fd, &desc);
    close(blob_fd);
    close(rootfd);
    check_outside_unchanged("the layer");
    fuzz_rm_rf(root);
    return 0;
}
