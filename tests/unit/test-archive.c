#include "harness.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>

#include "chrun/archive.h"
#include "chrun/digest.h"
#include "chrun/fs.h"

struct member_spec {
    const char *name;
    const char *data;    /* NULL with link: a symlink */
    const char *link;
};

/* Write a tar of MEMBERS to PATH. */
static void write_tar(const char *path, const struct member_spec *m, size_t n)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_pax_restricted(a);
    archive_write_open_filename(a, path);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].name);
        if (m[i].link != NULL) {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, m[i].link);
            archive_entry_set_perm(e, 0777);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_perm(e, 0644);
            archive_entry_set_size(e, (la_int64_t) strlen(m[i].data));
        }
        archive_write_header(a, e);
        if (m[i].link == NULL)
            archive_write_data(a, m[i].data, strlen(m[i].data));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

static char layer[] = "layer bytes";
static char config[512], config_name[80], manifest[256];

static void make_docker_docs(const char *layer_path)
{
    struct chrun_digest d, c;
    struct chrun_err err = CHRUN_ERR_INIT;
    chrun_digest_of_buffer(&d, layer, strlen(layer), &err);
    snprintf(config, sizeof(config),
             "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
             "\"diff_ids\":[\"%s\"]}}",
             d.str);
    chrun_digest_of_buffer(&c, config, strlen(config), &err);
    snprintf(config_name, sizeof(config_name), "%s.json", chrun_digest_hex(&c));
    snprintf(manifest, sizeof(manifest),
             "[{\"Config\":\"%s\",\"RepoTags\":[\"unit/test:1\"],\"Layers\":[\"%s\"]}]",
             config_name, layer_path);
}

static int load_file(struct chrun_store *st, const char *path, struct chrun_archive_result *r,
                     struct chrun_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc = chrun_archive_load_fd(st, fd, path, r, err);
    close(fd);
    return rc;
}

/* Member order does not matter, symlinked layer members resolve, and the
 * generated manifest is the same whatever the order. */
static void test_docker_any_order(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    struct chrun_archive_result r1 = {0}, r2 = {0};
    CHECK(st != NULL);
    make_docker_docs("abc/layer.tar");
    struct member_spec first[] = {
        {"manifest.json", manifest, NULL}, {"abc/layer.tar", NULL, "../blob.tar"},
        {config_name, config, NULL},       {"blob.tar", layer, NULL},
    };
    struct member_spec last[] = {
        {"./blob.tar", layer, NULL}, {config_name, config, NULL},
        {"abc/layer.tar", NULL, "../blob.tar"}, {"manifest.json", manifest, NULL},
    };
    write_tar("a.tar", first, 4);
    write_tar("b.tar", last, 4);
    CHECK_INT_EQ(load_file(st, "a.tar", &r1, &err), 0);
    CHECK_STR_EQ(err.msg, "");
    CHECK_INT_EQ(load_file(st, "b.tar", &r2, &err), 0);
    CHECK_INT_EQ(r1.n_digests, 1);
    CHECK_INT_EQ(r2.n_digests, 1);
    if (r1.n_digests == 1 && r2.n_digests == 1) {
        struct chrun_store_image img;
        CHECK_STR_EQ(r1.digests[0].str, r2.digests[0].str);
        CHECK_INT_EQ(chrun_store_resolve(st, "unit/test:1", &img, &err), 0);
        CHECK_STR_EQ(img.digest.str, r1.digests[0].str);
        CHECK(chrun_store_has_blob(st, &r1.digests[0]));
    }
    chrun_archive_result_release(&r1);
    chrun_archive_result_release(&r2);
    chrun_store_close(st);
}

/* A failed load leaves nothing: no blob, no name, an empty tmp/. */
static void test_failure_changes_nothing(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    struct chrun_archive_result r = {0};
    struct chrun_digest d;
    CHECK(st != NULL);
    make_docker_docs("../escape/layer.tar");
    struct member_spec m[] = {
        {"blob.tar", layer, NULL}, {config_name, config, NULL}, {"manifest.json", manifest, NULL},
    };
    write_tar("bad.tar", m, 3);
    CHECK_INT_EQ(load_file(st, "bad.tar", &r, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(strstr(err.msg, "'bad.tar'") != NULL);
    CHECK(strstr(err.msg, "leads outside the archive") != NULL);
    chrun_digest_of_buffer(&d, layer, strlen(layer), &err);
    CHECK(!chrun_store_has_blob(st, &d));
    CHECK_INT_EQ(system("test -z \"$(ls -A store/tmp)\""), 0);
    chrun_store_close(st);
}

/* Abandoned staging directories go, under either name chrun-load has used
 * ("load.<random>" before its lock, "load-<random>" after); one a live load
 * holds stays. */
static void test_clean_stale(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    const char *live[] = {"load-live", "load.live"};
    int tmpfd, held[2];
    CHECK(st != NULL);
    tmpfd = chrun_store_tmp_fd(st);
    CHECK_INT_EQ(mkdirat(tmpfd, "load-dead", 0700), 0);
    CHECK_INT_EQ(mkdirat(tmpfd, "load-dead/m0", 0700), 0);
    CHECK_INT_EQ(mkdirat(tmpfd, "load.dead", 0700), 0);
    CHECK_INT_EQ(mkdirat(tmpfd, "load.dead/m0", 0700), 0);
    CHECK_INT_EQ(mkdirat(tmpfd, "blob-x.partial", 0700), 0); /* not a staging directory */
    for (int i = 0; i < 2; i++) {
        CHECK_INT_EQ(mkdirat(tmpfd, live[i], 0700), 0);
        held[i] = openat(tmpfd, live[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CHECK(held[i] >= 0);
        CHECK_INT_EQ(flock(held[i], LOCK_EX), 0);
    }
    /* A lock held through another open file description excludes ours. */
    CHECK_INT_EQ(chrun_archive_clean_stale(st, &err), 0);
    CHECK(!chrun_fs_exists_at(tmpfd, "load-dead"));
    CHECK(!chrun_fs_exists_at(tmpfd, "load.dead"));
    CHECK(chrun_fs_exists_at(tmpfd, "load-live"));
    CHECK(chrun_fs_exists_at(tmpfd, "load.live"));
    CHECK(chrun_fs_exists_at(tmpfd, "blob-x.partial"));
    for (int i = 0; i < 2; i++)
        close(held[i]);
    chrun_store_close(st);
}

int main(void)
{
    RUN_TEST(test_docker_any_order);
    RUN_TEST(test_failure_changes_nothing);
    RUN_TEST(test_clean_stale);
    return harness_done();
}
