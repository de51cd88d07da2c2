/* Unit tests for the layer applier (src/layer.c). */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "chrun/fs.h"
#include "chrun/layer.h"
#include "harness.h"
#include "tar-specs.h"

/* Apply the plain tar PATH to ROOTFD with a correct (or WRONG) diff_id. */
static int apply(struct chrun_layer_applier *a, const char *path, bool wrong, struct chrun_err *err)
{
    struct chrun_descriptor desc = {0};
    struct chrun_digest diff;
    char buf[1 << 16];
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
    ssize_t n = read(fd, buf, sizeof(buf));
    chrun_digest_of_buffer(&desc.digest, buf, (size_t) n, err);
    desc.size = n;
    snprintf(desc.media_type, sizeof(desc.media_type), "%s", CHRUN_MT_OCI_LAYER);
    diff = desc.digest;
    if (wrong)
        diff.str[10] = diff.str[10] == '0' ? '1' : '0';
    lseek(fd, 0, SEEK_SET);
    rc = chrun_layer_apply(a, fd, &desc, &diff, err);
    close(fd);
    return rc;
}

static int open_root(void)
{
    mkdir("root", 0755);
    return open("root", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

static void test_files_dirs_symlinks(void)
{
    static const char *const l1[] = {"d:etc", "f:etc/a=hello", "l:bin>usr/bin", "d:usr/bin", NULL};
    static const char *const l2[] = {"f:bin/sh=sh", "f:etc/.wh.a", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    struct stat st;
    make_tar("l1.tar", l1);
    make_tar("l2.tar", l2);
    CHECK_INT_EQ(apply(a, "l1.tar", false, &err), 0);
    CHECK(access("root/etc/a", F_OK) == 0);
    CHECK_INT_EQ(apply(a, "l2.tar", false, &err), 0);
    CHECK_INT_EQ(chrun_layer_applier_finish(a, &err), 0);
    CHECK(access("root/etc/a", F_OK) != 0);
    CHECK(lstat("root/usr/bin/sh", &st) == 0 && S_ISREG(st.st_mode));
    CHECK(lstat("root/etc", &st) == 0 && st.st_mtime == 1600000000);
    chrun_layer_applier_free(a);
    close(rootfd);
}

static void test_dotdot_refused(void)
{
    static const char *const l[] = {"f:a/../../x=evil", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    make_tar("l.tar", l);
    CHECK_INT_EQ(apply(a, "l.tar", false, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strstr(err.msg, "'..' component") != NULL);
    CHECK(access("x", F_OK) != 0);
    chrun_layer_applier_free(a);
    close(rootfd);
}

static void test_symlink_escape_refused(void)
{
    static const char *const l[] = {"l:evil>/tmp", "f:evil/chrun-unit-escape=x", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    make_tar("l.tar", l);
    CHECK_INT_EQ(apply(a, "l.tar", false, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(access("/tmp/chrun-unit-escape", F_OK) != 0);
    chrun_layer_applier_free(a);
    close(rootfd);
}

/* Apply LAYERS (NULL-terminated spec lists) in order onto a fresh root. */
static int apply_layers(const char *const *const *layers, size_t n, struct chrun_err *err)
{
    int rootfd = open_root(), rc = 0;
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "layer%zu.tar", i);
        make_tar(name, layers[i]);
        rc = apply(a, name, false, err);
    }
    if (rc == 0)
        rc = chrun_layer_applier_finish(a, err);
    chrun_layer_applier_free(a);
    close(rootfd);
    return rc;
}

/* SPEC "Bad input" (issue 7, umoci): a whiteout (plain or opaque) whose
 * parent is not a directory reached without symlinks (a file, a symlink,
 * absent) deletes nothing and follows nothing; test-export.c has the same
 * case for the tree back-end. */
static void umoci_whiteout_case(void)
{
    static const char *const *layers[] = {umoci_l1, umoci_l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    struct stat st;
    CHECK_INT_EQ(apply_layers(layers, 2, &err), 0);
    CHECK(lstat("root/r/d", &st) == 0 && S_ISREG(st.st_mode));
    CHECK(lstat("root/r/s", &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(access("root/t/keep", F_OK) == 0);
    CHECK(access("root/r/gone", F_OK) != 0);
    CHECK_INT_EQ(count_entries("root/r"), 2);
}

static void test_whiteout_under_non_directory_is_nothing(void)
{
    umoci_whiteout_case();
}

/* The same through the fallback walk, as on a kernel without openat2. */
static void test_whiteout_under_non_directory_walk(void)
{
    chrun_fs_force_walk(true);
    umoci_whiteout_case();
    chrun_fs_force_walk(false);
}

static void test_symlink_escape_refused_walk(void)
{
    chrun_fs_force_walk(true);
    test_symlink_escape_refused();
    chrun_fs_force_walk(false);
}

/* Old copies differed: the applier failed (the target went with the
 * directory it replaced), the exporter's model linked the freed file. One
 * rule now: refused, by both back-ends (test-export.c has the tree's). */
static void test_hardlink_into_replaced_path_refused(void)
{
    static const char *const l1[] = {"d:x", "f:x/y=Y", NULL};
    static const char *const l2[] = {"h:x>x/y", NULL};
    static const char *const *layers[] = {l1, l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(apply_layers(layers, 2, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strstr(err.msg, "inside the entry it replaces") != NULL);
    CHECK(access("root/x/y", F_OK) == 0); /* refused before anything was removed */
}

/* Old copies differed: a whiteout in a directory whose name is too long for
 * the kernel (a component over NAME_MAX) failed the unpack, while export
 * took it as nothing to delete. No such directory can exist: nothing. */
static void test_whiteout_in_overlong_dir_is_nothing(void)
{
    char wh[400], *l2[] = {wh, NULL};
    static const char *const l1[] = {"f:a=A", NULL};
    const char *const *layers[] = {l1, (const char *const *) l2};
    struct chrun_err err = CHRUN_ERR_INIT;
    snprintf(wh, sizeof(wh), "f:%0300d/.wh.a", 0);
    CHECK_INT_EQ(apply_layers(layers, 2, &err), 0);
    CHECK(access("root/a", F_OK) == 0);
}

/* Old copies differed: implicit parents took the caller's umask on disk
 * but 0755 in the export. Now 0755 in both. */
static void test_implicit_parents_are_0755(void)
{
    static const char *const l1[] = {"f:implicit/deep/y=y", NULL};
    static const char *const *layers[] = {l1};
    struct chrun_err err = CHRUN_ERR_INIT;
    struct stat st;
    mode_t old = umask(077);
    CHECK_INT_EQ(apply_layers(layers, 1, &err), 0);
    umask(old);
    CHECK(stat("root/implicit", &st) == 0 && (st.st_mode & 07777) == 0755);
    CHECK(stat("root/implicit/deep", &st) == 0 && (st.st_mode & 07777) == 0755);
}

/* A chain of links up to the kernel's limit resolves, one more does not:
 * the same bound for openat2, the walk and the exporter's model. */
static void test_parent_symlink_chain_limit(void)
{
    static char specs[2][CHRUN_FS_MAX_HOPS + 3][32];
    for (int extra = 0; extra < 2; extra++) {
        int links = CHRUN_FS_MAX_HOPS + extra;
        const char *l1[CHRUN_FS_MAX_HOPS + 4];
        const char *const *layers[] = {l1};
        struct chrun_err err = CHRUN_ERR_INIT;
        chain_specs(links, specs[extra], l1);
        CHECK(system("rm -rf root") == 0);
        CHECK_INT_EQ(apply_layers(layers, 1, &err), extra ? -1 : 0);
        CHECK_INT_EQ(access("root/d/x", F_OK), extra ? -1 : 0);
    }
}

static void test_diff_id_mismatch(void)
{
    static const char *const l[] = {"f:a=x", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    make_tar("l.tar", l);
    CHECK_INT_EQ(apply(a, "l.tar", true, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK(strstr(err.msg, "diff_id mismatch") != NULL);
    chrun_layer_applier_free(a);
    close(rootfd);
}

static void test_unsupported_media_type(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_descriptor desc = {0};
    struct chrun_digest diff;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    snprintf(desc.media_type, sizeof(desc.media_type), "application/x-nope");
    chrun_digest_of_buffer(&desc.digest, "", 0, &err);
    diff = desc.digest;
    CHECK_INT_EQ(chrun_layer_apply(a, 0, &desc, &diff, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_UNSUPPORTED);
    chrun_layer_applier_free(a);
    close(rootfd);
}

/* A chrun_layer_source over a buffer: whole reads, the short one at the
 * end; FAIL_AT > 0 fails the read that would pass that offset. */
struct mem_source {
    const char *buf;
    size_t len, off, fail_at;
};

static ssize_t mem_read(void *data, void *buf, size_t cap, struct chrun_err *err)
{
    struct mem_source *m = data;
    size_t n = m->len - m->off < cap ? m->len - m->off : cap;
    if (m->fail_at > 0 && m->off + n > m->fail_at)
        return chrun_err_set(err, CHRUN_E_NETWORK, "blob: download failed");
    memcpy(buf, m->buf + m->off, n);
    m->off += n;
    return (ssize_t) n;
}

/* Apply the plain tar PATH from a mem_source failing at FAIL_AT (0: never). */
static int apply_from_source(struct chrun_layer_applier *a, const char *path, size_t fail_at,
                             struct chrun_err *err)
{
    static char buf[1 << 20];
    struct chrun_descriptor desc = {0};
    struct mem_source m = {buf, 0, 0, fail_at};
    struct chrun_layer_source src = {mem_read, &m};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    m.len = (size_t) n;
    chrun_digest_of_buffer(&desc.digest, buf, m.len, err);
    desc.size = n;
    snprintf(desc.media_type, sizeof(desc.media_type), "%s", CHRUN_MT_OCI_LAYER);
    return chrun_layer_apply_source(a, &src, &desc, &desc.digest, err);
}

static void test_source_applies_like_a_descriptor(void)
{
    static const char *const l[] = {"d:etc",     "f:etc/a=hello",   "l:bin>usr/bin",
                                    "d:usr/bin", "f:usr/bin/sh=sh", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    struct stat st;
    make_tar("l.tar", l);
    CHECK_INT_EQ(apply_from_source(a, "l.tar", 0, &err), 0);
    CHECK_INT_EQ(chrun_layer_applier_finish(a, &err), 0);
    CHECK(lstat("root/usr/bin/sh", &st) == 0 && S_ISREG(st.st_mode));
    CHECK(lstat("root/bin", &st) == 0 && S_ISLNK(st.st_mode));
    chrun_layer_applier_free(a);
    close(rootfd);
}

static void test_source_failure_is_the_error(void)
{
    static const char *const l[] = {"f:a=x", "f:b=y", NULL};
    struct chrun_err err = CHRUN_ERR_INIT;
    int rootfd = open_root();
    struct chrun_layer_applier *a = chrun_layer_applier_new(rootfd, &err);
    make_tar("l.tar", l);
    CHECK_INT_EQ(apply_from_source(a, "l.tar", 1000, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NETWORK);
    CHECK(strstr(err.msg, "download failed") != NULL);
    chrun_layer_applier_free(a);
    close(rootfd);
}

int main(void)
{
    RUN_TEST(test_files_dirs_symlinks);
    RUN_TEST(test_dotdot_refused);
    RUN_TEST(test_symlink_escape_refused);
    RUN_TEST(test_symlink_escape_refused_walk);
    RUN_TEST(test_whiteout_under_non_directory_is_nothing);
    RUN_TEST(test_whiteout_under_non_directory_walk);
    RUN_TEST(test_hardlink_into_replaced_path_refused);
    RUN_TEST(test_whiteout_in_overlong_dir_is_nothing);
    RUN_TEST(test_implicit_parents_are_0755);
    RUN_TEST(test_parent_symlink_chain_limit);
    RUN_TEST(test_diff_id_mismatch);
    RUN_TEST(test_unsupported_media_type);
    RUN_TEST(test_source_applies_like_a_descriptor);
    RUN_TEST(test_source_failure_is_the_error);
    return harness_done();
}
