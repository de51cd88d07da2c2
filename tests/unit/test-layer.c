/* Unit tests for the layer applier (src/layer.c). */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

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

int main(void)
{
    RUN_TEST(test_files_dirs_symlinks);
    RUN_TEST(test_dotdot_refused);
    RUN_TEST(test_symlink_escape_refused);
    RUN_TEST(test_diff_id_mismatch);
    RUN_TEST(test_unsupported_media_type);
    return harness_done();
}
