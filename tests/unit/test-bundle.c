/* Unit tests for bundle assembly (src/bundle.c). */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "chrun/bundle.h"
#include "chrun/io.h"
#include "chrun/manifest.h"
#include "harness.h"

static char tarbuf[1 << 16];

/* A plain layer holding etc/passwd with PASSWD; returns its size. */
static size_t make_layer(const char *passwd)
{
    struct archive *w = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    size_t used = 0;
    archive_write_set_format_pax_restricted(w);
    archive_write_set_bytes_in_last_block(w, 1);
    archive_write_open_memory(w, tarbuf, sizeof(tarbuf), &used);
    archive_entry_set_pathname(e, "etc/passwd");
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, (la_int64_t) strlen(passwd));
    archive_write_header(w, e);
    archive_write_data(w, passwd, strlen(passwd));
    archive_entry_free(e);
    archive_write_close(w);
    archive_write_free(w);
    return used;
}

/* Store an image named REF with USER and CMD; write its manifest digest to RET. */
static void make_image(struct chrun_store *st, const char *ref, const char *user, const char *cmd,
                       struct chrun_digest *ret)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest layer, config;
    char doc[2048];
    size_t len = make_layer("root:x:0:0::/root:/bin/sh\nweb:x:33:44::/srv:/bin/sh\n");
    CHECK_INT_EQ(chrun_store_put_blob(st, tarbuf, len, NULL, &layer, &err), 0);
    snprintf(doc, sizeof(doc),
             "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"%s\","
             "\"Cmd\":[\"%s\"],\"WorkingDir\":\"srv\"},"
             "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
             user, cmd, layer.str);
    CHECK_INT_EQ(chrun_store_put_blob(st, doc, strlen(doc), NULL, &config, &err), 0);
    /* the manifest needs the config's size */
    {
        char *buf = NULL;
        size_t clen = 0;
        CHECK_INT_EQ(chrun_store_read_blob(st, &config, CHRUN_CONFIG_MAX, &buf, &clen, &err), 0);
        snprintf(doc, sizeof(doc),
                 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
                 "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\","
                 "\"digest\":\"%s\",\"size\":%zu}]}",
                 CHRUN_MT_OCI_MANIFEST, CHRUN_MT_OCI_CONFIG, config.str, clen,
                 CHRUN_MT_OCI_LAYER, layer.str, len);
        free(buf);
    }
    CHECK_INT_EQ(chrun_store_put_blob(st, doc, strlen(doc), NULL, ret, &err), 0);
    CHECK_INT_EQ(chrun_store_tag(st, ref, CHRUN_MT_OCI_MANIFEST, ret, (int64_t) strlen(doc), &err),
                 0);
    if (err.code)
        fprintf(stderr, "# %s\n", err.msg);
}

static void test_unpack_default_path_and_rerun(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    struct chrun_digest md;
    char path[PATH_MAX], again[PATH_MAX], want[PATH_MAX + 64], cwd[PATH_MAX];
    make_image(st, "docker.io/library/web:1", "web", "/bin/sh", &md);
    CHECK_INT_EQ(chrun_bundle_unpack(st, "web:1", NULL, NULL, path, sizeof(path), &err), 0);
    CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
    snprintf(want, sizeof(want), "%s/store/bundles/%.12s", cwd, chrun_digest_hex(&md));
    CHECK_STR_EQ(path, want);
    CHECK_INT_EQ(chrun_bundle_unpack(st, "web:1", NULL, NULL, again, sizeof(again), &err), 0);
    CHECK_STR_EQ(again, path);
    chrun_store_close(st);
}

static void test_config_user_and_digest(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    struct chrun_digest md;
    char path[PATH_MAX], digest[CHRUN_DIGEST_STR_MAX], *buf = NULL;
    size_t len;
    int fd;
    make_image(st, "docker.io/library/web:1", "web", "/bin/sh", &md);
    CHECK_INT_EQ(chrun_bundle_unpack(st, "web:1", "b", NULL, path, sizeof(path), &err), 0);
    fd = open("b", O_PATH | O_DIRECTORY | O_CLOEXEC);
    CHECK_INT_EQ(chrun_bundle_manifest_digest(fd, digest, &err), 0);
    CHECK_STR_EQ(digest, md.str);
    CHECK_INT_EQ(chrun_io_read_file_at(fd, "config.json", CHRUN_CONFIG_MAX, &buf, &len, &err), 0);
    CHECK(buf != NULL && strstr(buf, "\"uid\": 33") != NULL && strstr(buf, "\"gid\": 44") != NULL);
    CHECK(buf != NULL && strstr(buf, "\"cwd\": \"/srv\"") != NULL);
    CHECK(buf != NULL && strstr(buf, "\"HOME=/srv\"") != NULL);
    free(buf);
    close(fd);
    chrun_store_close(st);
}

static void test_unknown_user_and_other_image(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    struct chrun_unpack_opts opts = CHRUN_UNPACK_OPTS_INIT;
    struct chrun_digest md;
    char path[PATH_MAX];
    make_image(st, "docker.io/library/bad:1", "nobody-here", "/bin/sh", &md);
    CHECK_INT_EQ(chrun_bundle_unpack(st, "bad:1", "b", NULL, path, sizeof(path), &err), -1);
    CHECK(strstr(err.msg, "user 'nobody-here' not found") != NULL);
    CHECK(access("b", F_OK) != 0);
    make_image(st, "docker.io/library/a:1", "0", "/a", &md);
    make_image(st, "docker.io/library/b:1", "0", "/b", &md);
    CHECK_INT_EQ(chrun_bundle_unpack(st, "a:1", "b", NULL, path, sizeof(path), &err), 0);
    CHECK_INT_EQ(chrun_bundle_unpack(st, "b:1", "b", NULL, path, sizeof(path), &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_EXISTS);
    opts.force = true;
    CHECK_INT_EQ(chrun_bundle_unpack(st, "b:1", "b", &opts, path, sizeof(path), &err), 0);
    chrun_store_close(st);
}

int main(void)
{
    RUN_TEST(test_unpack_default_path_and_rerun);
    RUN_TEST(test_config_user_and_digest);
    RUN_TEST(test_unknown_user_and_other_image);
    return harness_done();
}
