/* The content-addressed store: layout, blob writers, index.json, resolve, locks. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <jansson.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/image.h"
#include "chrun/store.h"

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_INDEX "application/vnd.oci.image.index.v1+json"

/* ---- helpers ---- */

static struct chrun_store *open_store(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    if (st == NULL)
        fprintf(stderr, "# open store: %s\n", err.msg);
    return st;
}

static void digest_of(struct chrun_digest *d, const char *s)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    if (chrun_digest_of_buffer(d, s, strlen(s), &err) < 0)
        fprintf(stderr, "# digest: %s\n", err.msg);
}

static void blob_path(char *buf, size_t size, const struct chrun_digest *d)
{
    snprintf(buf, size, "store/blobs/sha256/%s", chrun_digest_hex(d));
}

static bool msg_has(const struct chrun_err *err, const char *needle)
{
    if (strstr(err->msg, needle) != NULL)
        return true;
    fprintf(stderr, "# message '%s' lacks '%s'\n", err->msg, needle);
    return false;
}

/* A fake image digest whose hex starts with PREFIX (not a real hash: only
 * index.json lookups use it). */
static void fake_digest(struct chrun_digest *d, const char *prefix)
{
    size_t n = strlen(prefix);
    strcpy(d->str, "sha256:");
    memset(d->str + 7, '0', CHRUN_DIGEST_HEX_LEN);
    memcpy(d->str + 7, prefix, n);
    d->str[7 + CHRUN_DIGEST_HEX_LEN] = '\0';
}

/* ---- layout ---- */

static void test_create_layout(void)
{
    struct chrun_store *st = open_store();
    struct stat sb;
    json_t *idx;
    char *text;
    CHECK(st != NULL);
    if (st == NULL)
        return;
    text = slurp("store/oci-layout", NULL);
    CHECK_STR_EQ(text, "{\"imageLayoutVersion\":\"1.0.0\"}");
    free(text);
    idx = json_load_file("store/index.json", JSON_REJECT_DUPLICATES, NULL);
    CHECK(json_is_object(idx));
    CHECK_INT_EQ(json_integer_value(json_object_get(idx, "schemaVersion")), 2);
    CHECK(json_is_array(json_object_get(idx, "manifests")));
    CHECK_INT_EQ(json_array_size(json_object_get(idx, "manifests")), 0);
    json_decref(idx);
    CHECK(stat("store/blobs/sha256", &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK(stat("store/tmp", &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK(stat("store/locks", &sb) == 0 && S_ISDIR(sb.st_mode));
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    CHECK_INT_EQ(count_entries("store/blobs/sha256"), 0);
    chrun_store_close(st);

    /* Re-opening an existing store changes nothing. */
    text = slurp("store/index.json", NULL);
    st = open_store();
    CHECK(st != NULL);
    chrun_store_close(st);
    char *again = slurp("store/index.json", NULL);
    CHECK_STR_EQ(again, text);
    free(again);
    free(text);
}

static void test_open_missing(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open("nowhere", 0, &err);
    CHECK(st == NULL);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    CHECK(msg_has(&err, "nowhere"));
    CHECK(access("nowhere", F_OK) < 0);
    chrun_store_close(st);

    /* An empty directory is not a store either. */
    CHECK(mkdir("empty", 0755) == 0);
    chrun_err_clear(&err);
    st = chrun_store_open("empty", 0, &err);
    CHECK(st == NULL);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    CHECK_INT_EQ(count_entries("empty"), 0);
    chrun_store_close(st);
}

/* ---- blob writers ---- */

static void test_writer_expected_ok(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest d, got;
    struct chrun_store_writer *w;
    char path[256];
    struct stat sb;
    const char *data = "hello, blob\n";

    digest_of(&d, data);
    w = chrun_store_writer_begin(st, &d, (int64_t) strlen(data), 0, &err);
    CHECK(w != NULL);
    CHECK_INT_EQ(chrun_store_writer_write(w, data, 5, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_write(w, data + 5, strlen(data) - 5, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_offset(w), strlen(data));
    CHECK(!chrun_store_has_blob(st, &d));
    CHECK_INT_EQ(chrun_store_writer_commit(w, &got, &err), 0);
    chrun_store_writer_free(w);
    CHECK_STR_EQ(got.str, d.str);
    CHECK(chrun_store_has_blob(st, &d));
    blob_path(path, sizeof(path), &d);
    CHECK(lstat(path, &sb) == 0 && S_ISREG(sb.st_mode));
    CHECK_INT_EQ(sb.st_mode & 07777, 0444);
    char *text = slurp(path, NULL);
    CHECK_STR_EQ(text, data);
    free(text);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    chrun_store_close(st);
}

static void test_writer_no_expected(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest d, got;
    struct chrun_store_writer *w = chrun_store_writer_begin(st, NULL, -1, 0, &err);
    CHECK(w != NULL);
    CHECK_INT_EQ(chrun_store_writer_write(w, "abc", 3, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_commit(w, &got, &err), 0);
    chrun_store_writer_free(w);
    digest_of(&d, "abc");
    CHECK_STR_EQ(got.str, d.str);
    CHECK(chrun_store_has_blob(st, &d));
    CHECK_INT_EQ(count_entries("store/tmp"), 0);

    /* Abandoned without commit: its temporary file goes away. */
    w = chrun_store_writer_begin(st, NULL, -1, 0, &err);
    CHECK(w != NULL);
    CHECK_INT_EQ(chrun_store_writer_write(w, "xyz", 3, &err), 0);
    CHECK_INT_EQ(count_entries("store/tmp"), 1);
    chrun_store_writer_free(w);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    CHECK_INT_EQ(count_entries("store/blobs/sha256"), 1);
    chrun_store_close(st);
}

static void test_writer_wrong_bytes(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest d;
    struct chrun_store_writer *w;

    digest_of(&d, "good bytes");
    w = chrun_store_writer_begin(st, &d, 10, 0, &err);
    CHECK(w != NULL);
    CHECK_INT_EQ(chrun_store_writer_write(w, "evil bytes", 10, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_commit(w, NULL, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK(msg_has(&err, d.str));
    chrun_store_writer_free(w);
    CHECK_INT_EQ(count_entries("store/blobs/sha256"), 0);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);

    /* Same with a resumable writer: known-bad bytes are not kept for resume. */
    chrun_err_clear(&err);
    w = chrun_store_writer_begin(st, &d, -1, CHRUN_STORE_WRITER_RESUMABLE, &err);
    CHECK(w != NULL);
    CHECK_INT_EQ(chrun_store_writer_write(w, "evil bytes", 10, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_commit(w, NULL, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    chrun_store_writer_free(w);
    CHECK_INT_EQ(count_entries("store/blobs/sha256"), 0);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    chrun_store_close(st);
}

static void test_writer_too_many_bytes(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest d;
    struct chrun_store_writer *w;

    digest_of(&d, "12345");
    w = chrun_store_writer_begin(st, &d, 5, 0, &err);
    CHECK(w != NULL);
    CHECK_INT_EQ(chrun_store_writer_write(w, "123", 3, &err), 0);
    /* The write that crosses the declared size fails, not the commit. */
    CHECK_INT_EQ(chrun_store_writer_write(w, "456", 3, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK(msg_has(&err, "declared size"));
    chrun_store_writer_free(w);
    CHECK_INT_EQ(count_entries("store/blobs/sha256"), 0);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);

    /* Unknown digest, known size: same rule. */
    w = chrun_store_writer_begin(st, NULL, 2, 0, &err);
    CHECK(w != NULL);
    CHECK_INT_EQ(chrun_store_writer_write(w, "abc", 3, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    chrun_store_writer_free(w);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    chrun_store_close(st);
}

static void test_writer_too_few_bytes(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest d;
    struct chrun_store_writer *w;

    digest_of(&d, "12345");
    w = chrun_store_writer_begin(st, &d, 5, 0, &err);
    CHECK(w != NULL);
    CHECK_INT_EQ(chrun_store_writer_write(w, "1234", 4, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_commit(w, NULL, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK(msg_has(&err, "size mismatch"));
    chrun_store_writer_free(w);
    CHECK_INT_EQ(count_entries("store/blobs/sha256"), 0);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    chrun_store_close(st);
}

static void test_writer_resume(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest d, got;
    struct chrun_store_writer *w;
    char data[10000];
    char partial[256], path[256];
    struct stat sb;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char) ('a' + i % 26);
    CHECK_INT_EQ(chrun_digest_of_buffer(&d, data, sizeof(data), &err), 0);
    w = chrun_store_writer_begin(st, &d, sizeof(data), CHRUN_STORE_WRITER_RESUMABLE, &err);
    CHECK(w != NULL);
    if (w == NULL)
        return chrun_store_close(st);
    CHECK_INT_EQ(chrun_store_writer_offset(w), 0);
    CHECK_INT_EQ(chrun_store_writer_write(w, data, sizeof(data) / 2, &err), 0);
    chrun_store_writer_free(w); /* interrupted: no commit */

    snprintf(partial, sizeof(partial), "store/tmp/blob-%s.partial", chrun_digest_hex(&d));
    CHECK(stat(partial, &sb) == 0);
    CHECK_INT_EQ(sb.st_size, sizeof(data) / 2);
    CHECK(!chrun_store_has_blob(st, &d));

    w = chrun_store_writer_begin(st, &d, sizeof(data), CHRUN_STORE_WRITER_RESUMABLE, &err);
    CHECK(w != NULL);
    if (w == NULL)
        return chrun_store_close(st);
    CHECK_INT_EQ(chrun_store_writer_offset(w), sizeof(data) / 2);
    CHECK_INT_EQ(chrun_store_writer_write(w, data + sizeof(data) / 2, sizeof(data) / 2, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_commit(w, &got, &err), 0);
    chrun_store_writer_free(w);
    CHECK_STR_EQ(got.str, d.str);
    blob_path(path, sizeof(path), &d);
    CHECK(stat(path, &sb) == 0);
    CHECK_INT_EQ(sb.st_size, sizeof(data));
    CHECK_INT_EQ(count_entries("store/tmp"), 0);

    /* A non-resumable writer of the same digest starts over. */
    digest_of(&d, "fresh");
    w = chrun_store_writer_begin(st, &d, 5, CHRUN_STORE_WRITER_RESUMABLE, &err);
    CHECK(w != NULL);
    CHECK_INT_EQ(chrun_store_writer_write(w, "fr", 2, &err), 0);
    chrun_store_writer_free(w);
    w = chrun_store_writer_begin(st, &d, 5, 0, &err);
    CHECK(w != NULL);
    CHECK_INT_EQ(chrun_store_writer_offset(w), 0);
    CHECK_INT_EQ(chrun_store_writer_write(w, "fresh", 5, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_commit(w, NULL, &err), 0);
    chrun_store_writer_free(w);
    CHECK(chrun_store_has_blob(st, &d));
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    chrun_store_close(st);
}

static void test_writer_resume_oversized_partial(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest d;
    struct chrun_store_writer *w;
    char partial[256];

    /* A partial longer than the declared size is junk: start over. */
    digest_of(&d, "short");
    snprintf(partial, sizeof(partial), "store/tmp/blob-%s.partial", chrun_digest_hex(&d));
    CHECK(spew(partial, "shortandthensomemore") == 0);
    w = chrun_store_writer_begin(st, &d, 5, CHRUN_STORE_WRITER_RESUMABLE, &err);
    CHECK(w != NULL);
    if (w == NULL)
        return chrun_store_close(st);
    CHECK_INT_EQ(chrun_store_writer_offset(w), 0);
    CHECK_INT_EQ(chrun_store_writer_write(w, "short", 5, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_commit(w, NULL, &err), 0);
    chrun_store_writer_free(w);
    CHECK(chrun_store_has_blob(st, &d));
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    chrun_store_close(st);
}

static void test_commit_existing_blob(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest d, got;
    struct chrun_store_writer *w;

    CHECK_INT_EQ(chrun_store_put_blob(st, "same", 4, NULL, &d, &err), 0);
    w = chrun_store_writer_begin(st, &d, 4, 0, &err);
    CHECK(w != NULL);
    CHECK_INT_EQ(chrun_store_writer_write(w, "same", 4, &err), 0);
    CHECK_INT_EQ(chrun_store_writer_commit(w, &got, &err), 0);
    chrun_store_writer_free(w);
    CHECK_STR_EQ(got.str, d.str);
    CHECK_INT_EQ(chrun_store_put_blob(st, "same", 4, &d, NULL, &err), 0);
    CHECK_INT_EQ(count_entries("store/blobs/sha256"), 1);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    chrun_store_close(st);
}

static void test_put_and_read_blob(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest d, other;
    char *buf = NULL;
    size_t len = 0;
    char path[256];

    CHECK_INT_EQ(chrun_store_put_blob(st, "{\"a\":1}", 7, NULL, &d, &err), 0);
    CHECK_INT_EQ(chrun_store_read_blob(st, &d, 100, &buf, &len, &err), 0);
    CHECK_INT_EQ(len, 7);
    CHECK_STR_EQ(buf, "{\"a\":1}");
    free(buf);
    buf = NULL;

    /* Over the cap. */
    CHECK_INT_EQ(chrun_store_read_blob(st, &d, 6, &buf, &len, &err), -1);
    CHECK_INT_EQ(err.errnum, EFBIG);
    CHECK(buf == NULL);

    /* put with a wrong expected digest stores nothing. */
    digest_of(&other, "other");
    CHECK_INT_EQ(chrun_store_put_blob(st, "not other", 9, &other, NULL, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK_INT_EQ(count_entries("store/blobs/sha256"), 1);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);

    /* Missing blob. */
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_store_read_blob(st, &other, 100, &buf, &len, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    CHECK(msg_has(&err, other.str));

    /* A blob file corrupted on disk is caught by the re-hash. */
    blob_path(path, sizeof(path), &d);
    CHECK(chmod(path, 0644) == 0);
    CHECK(spew(path, "{\"a\":2}") == 0);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_store_read_blob(st, &d, 100, &buf, &len, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK(msg_has(&err, d.str));
    CHECK(buf == NULL);
    chrun_store_close(st);
}

/* ---- index.json ---- */

static void test_tag_untag_list(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store_image *imgs = NULL;
    struct chrun_digest a, b;
    size_t n = 99;

    fake_digest(&a, "aaaa");
    fake_digest(&b, "bbbb");
    CHECK_INT_EQ(chrun_store_list(st, &imgs, &n, &err), 0);
    CHECK_INT_EQ(n, 0);
    free(imgs);
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/a:1", MT_MANIFEST, &a, 100, &err), 0);
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/b:1", MT_INDEX, &b, 200, &err), 0);
    CHECK_INT_EQ(chrun_store_list(st, &imgs, &n, &err), 0);
    CHECK_INT_EQ(n, 2);
    if (n == 2) {
        CHECK_STR_EQ(imgs[0].ref, "docker.io/library/a:1");
        CHECK_STR_EQ(imgs[0].digest.str, a.str);
        CHECK_STR_EQ(imgs[0].media_type, MT_MANIFEST);
        CHECK_INT_EQ(imgs[0].size, 100);
        CHECK_STR_EQ(imgs[1].ref, "docker.io/library/b:1");
        CHECK_STR_EQ(imgs[1].media_type, MT_INDEX);
        CHECK_INT_EQ(imgs[1].size, 200);
    }
    free(imgs);

    /* Re-tagging a name moves it. */
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/a:1", MT_MANIFEST, &b, 200, &err), 0);
    CHECK_INT_EQ(chrun_store_list(st, &imgs, &n, &err), 0);
    CHECK_INT_EQ(n, 2);
    for (size_t i = 0; i < n; i++)
        if (strcmp(imgs[i].ref, "docker.io/library/a:1") == 0)
            CHECK_STR_EQ(imgs[i].digest.str, b.str);
    free(imgs);

    CHECK_INT_EQ(chrun_store_untag(st, "docker.io/library/a:1", &err), 0);
    CHECK_INT_EQ(chrun_store_list(st, &imgs, &n, &err), 0);
    CHECK_INT_EQ(n, 1);
    if (n == 1)
        CHECK_STR_EQ(imgs[0].ref, "docker.io/library/b:1");
    free(imgs);

    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_store_untag(st, "docker.io/library/a:1", &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    CHECK(msg_has(&err, "docker.io/library/a:1"));
    chrun_store_close(st);
}

static void test_tag_identical_noop(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest a;
    struct stat s1, s2;
    char *before, *after;

    fake_digest(&a, "abcd");
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/x:1", MT_MANIFEST, &a, 10, &err), 0);
    before = slurp("store/index.json", NULL);
    CHECK(stat("store/index.json", &s1) == 0);
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/x:1", MT_MANIFEST, &a, 10, &err), 0);
    after = slurp("store/index.json", NULL);
    CHECK(stat("store/index.json", &s2) == 0);
    CHECK_STR_EQ(after, before);
    CHECK_INT_EQ(s1.st_ino, s2.st_ino); /* not even rewritten */
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    free(before);
    free(after);
    chrun_store_close(st);
}

static void test_foreign_entries_preserved(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store_image *imgs = NULL;
    struct chrun_digest a;
    size_t n = 0;
    json_t *idx, *m;

    /* What skopeo or umoci might leave: no annotations, an extra field. */
    CHECK(spew("store/index.json",
               "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_MANIFEST "\","
               "\"digest\":\"sha256:1111111111111111111111111111111111111111111111111111111111111111\","
               "\"size\":5,\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}],"
               "\"annotations\":{\"x\":\"y\"}}") == 0);
    fake_digest(&a, "2222");
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/mine:1", MT_MANIFEST, &a, 7, &err), 0);
    CHECK_INT_EQ(chrun_store_untag(st, "docker.io/library/mine:1", &err), 0);
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/mine:2", MT_MANIFEST, &a, 7, &err), 0);

    idx = json_load_file("store/index.json", JSON_REJECT_DUPLICATES, NULL);
    m = json_object_get(idx, "manifests");
    CHECK_INT_EQ(json_array_size(m), 2);
    CHECK_STR_EQ(json_string_value(json_object_get(json_array_get(m, 0), "digest")),
                 "sha256:1111111111111111111111111111111111111111111111111111111111111111");
    CHECK_STR_EQ(json_string_value(json_object_get(
                     json_object_get(json_array_get(m, 0), "platform"), "architecture")),
                 "amd64");
    CHECK_STR_EQ(json_string_value(json_object_get(json_object_get(idx, "annotations"), "x")),
                 "y");
    json_decref(idx);

    CHECK_INT_EQ(chrun_store_list(st, &imgs, &n, &err), 0);
    CHECK_INT_EQ(n, 2);
    if (n == 2) {
        CHECK_STR_EQ(imgs[0].ref, "");
        CHECK_STR_EQ(imgs[1].ref, "docker.io/library/mine:2");
    }
    free(imgs);
    chrun_store_close(st);
}

static void test_index_not_json(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store_image *imgs = NULL;
    struct chrun_store_image img;
    struct chrun_digest a;
    size_t n = 0;

    CHECK(spew("store/index.json", "this is { not json") == 0);
    CHECK_INT_EQ(chrun_store_list(st, &imgs, &n, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(msg_has(&err, "index.json"));
    CHECK(imgs == NULL);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_store_resolve(st, "redis", &img, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    fake_digest(&a, "aaaa");
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/a:1", MT_MANIFEST, &a, 1, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    char *text = slurp("store/index.json", NULL);
    CHECK_STR_EQ(text, "this is { not json");
    free(text);

    /* JSON, but not an index. */
    CHECK(spew("store/index.json", "[1,2]") == 0);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_store_list(st, &imgs, &n, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(spew("store/index.json", "{\"manifests\":{}}") == 0);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_store_list(st, &imgs, &n, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    chrun_store_close(st);
}

static void test_resolve(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store_image img;
    struct chrun_digest a, b, c, blob;

    fake_digest(&a, "abcd1111");
    fake_digest(&b, "abcd2222");
    fake_digest(&c, "cafe");
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/redis:latest", MT_MANIFEST, &a, 1, &err),
                 0);
    CHECK_INT_EQ(chrun_store_tag(st, "localhost:5000/app:v1", MT_MANIFEST, &b, 2, &err), 0);
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/user/cafe:1", MT_INDEX, &c, 3, &err), 0);

    /* short name, normalized */
    CHECK_INT_EQ(chrun_store_resolve(st, "redis", &img, &err), 0);
    CHECK_STR_EQ(img.ref, "docker.io/library/redis:latest");
    CHECK_STR_EQ(img.digest.str, a.str);
    CHECK_STR_EQ(img.media_type, MT_MANIFEST);
    CHECK_INT_EQ(chrun_store_resolve(st, "library/redis:latest", &img, &err), 0);
    CHECK_STR_EQ(img.digest.str, a.str);
    /* full ref */
    CHECK_INT_EQ(chrun_store_resolve(st, "localhost:5000/app:v1", &img, &err), 0);
    CHECK_STR_EQ(img.digest.str, b.str);
    CHECK_INT_EQ(img.size, 2);
    /* full digest */
    CHECK_INT_EQ(chrun_store_resolve(st, c.str, &img, &err), 0);
    CHECK_STR_EQ(img.ref, "docker.io/user/cafe:1");
    CHECK_STR_EQ(img.media_type, MT_INDEX);
    /* short digests, with and without the algorithm */
    CHECK_INT_EQ(chrun_store_resolve(st, "abcd1", &img, &err), 0);
    CHECK_STR_EQ(img.digest.str, a.str);
    CHECK_INT_EQ(chrun_store_resolve(st, "sha256:abcd2", &img, &err), 0);
    CHECK_STR_EQ(img.digest.str, b.str);
    CHECK_INT_EQ(chrun_store_resolve(st, "cafe", &img, &err), 0);
    CHECK_STR_EQ(img.digest.str, c.str);
    /* name@digest pins the manifest */
    char pinned[200];
    snprintf(pinned, sizeof(pinned), "redis@%s", a.str);
    CHECK_INT_EQ(chrun_store_resolve(st, pinned, &img, &err), 0);
    CHECK_STR_EQ(img.digest.str, a.str);

    /* ambiguous */
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_store_resolve(st, "abcd", &img, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_AMBIGUOUS);
    CHECK(msg_has(&err, a.str) && msg_has(&err, b.str));
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_store_resolve(st, "sha256:abcd", &img, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_AMBIGUOUS);
    /* too short to be a short digest: a name, unknown */
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_store_resolve(st, "abc", &img, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    /* unknown */
    static const char *const unknown[] = {
        "nosuch", "redis:7", "beef", "sha256:beef", "localhost:5000/app:v2",
        "sha256:9999999999999999999999999999999999999999999999999999999999999999",
    };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        chrun_err_clear(&err);
        CHECK_INT_EQ(chrun_store_resolve(st, unknown[i], &img, &err), -1);
        CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
        CHECK(msg_has(&err, unknown[i]));
    }
    /* garbage is an error, not a crash */
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_store_resolve(st, "Not/A:Valid//Ref", &img, &err), -1);
    CHECK(err.code == CHRUN_E_NOTFOUND || err.code == CHRUN_E_INPUT);

    /* a full digest of an unnamed manifest the store holds */
    CHECK_INT_EQ(chrun_store_put_blob(st, "{}", 2, NULL, &blob, &err), 0);
    CHECK_INT_EQ(chrun_store_resolve(st, blob.str, &img, &err), 0);
    CHECK_STR_EQ(img.digest.str, blob.str);
    CHECK_STR_EQ(img.ref, "");
    CHECK_INT_EQ(img.size, 2);
    chrun_store_close(st);
}

/* ---- concurrency and locks ---- */

static void test_concurrent_tags(void)
{
    enum { N = 20 };
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store_image *imgs = NULL;
    size_t n = 0;
    pid_t pids[N];

    chrun_store_close(st);
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            struct chrun_err cerr = CHRUN_ERR_INIT;
            struct chrun_store *cst = chrun_store_open(NULL, CHRUN_STORE_CREATE, &cerr);
            struct chrun_digest d;
            char ref[64], hex[8];
            int rc;
            if (cst == NULL)
                _exit(2);
            snprintf(hex, sizeof(hex), "%04x", i);
            fake_digest(&d, hex);
            snprintf(ref, sizeof(ref), "docker.io/library/c%d:latest", i);
            rc = chrun_store_tag(cst, ref, MT_MANIFEST, &d, i, &cerr);
            chrun_store_close(cst);
            _exit(rc == 0 ? 0 : 1);
        }
    }
    for (int i = 0; i < N; i++) {
        int status = -1;
        CHECK(waitpid(pids[i], &status, 0) == pids[i]);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    st = open_store();
    CHECK_INT_EQ(chrun_store_list(st, &imgs, &n, &err), 0);
    CHECK_INT_EQ(n, N);
    for (int i = 0; i < N; i++) {
        char ref[64];
        bool found = false;
        snprintf(ref, sizeof(ref), "docker.io/library/c%d:latest", i);
        for (size_t j = 0; j < n; j++)
            found = found || strcmp(imgs[j].ref, ref) == 0;
        if (!found)
            fprintf(stderr, "# lost %s\n", ref);
        CHECK(found);
    }
    free(imgs);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    chrun_store_close(st);
}

/* Children that create the store and tag at once: the layout step of one
 * must not replace an index.json another already tagged into. */
static void test_concurrent_create_and_tag(void)
{
    enum { N = 8, ROUNDS = 30 };
    for (int round = 0; round < ROUNDS; round++) {
        struct chrun_err err = CHRUN_ERR_INIT;
        struct chrun_store_image *imgs = NULL;
        struct chrun_store *st;
        char root[32];
        pid_t pids[N];
        size_t n = 0;

        snprintf(root, sizeof(root), "store%d", round);
        for (int i = 0; i < N; i++) {
            pids[i] = fork();
            if (pids[i] == 0) {
                struct chrun_err cerr = CHRUN_ERR_INIT;
                struct chrun_store *cst = chrun_store_open(root, CHRUN_STORE_CREATE, &cerr);
                struct chrun_digest d;
                char ref[64], hex[8];
                int rc;
                if (cst == NULL)
                    _exit(2);
                snprintf(hex, sizeof(hex), "%04x", i);
                fake_digest(&d, hex);
                snprintf(ref, sizeof(ref), "docker.io/library/c%d:latest", i);
                rc = chrun_store_tag(cst, ref, MT_MANIFEST, &d, i, &cerr);
                chrun_store_close(cst);
                _exit(rc == 0 ? 0 : 1);
            }
        }
        for (int i = 0; i < N; i++) {
            int status = -1;
            CHECK(waitpid(pids[i], &status, 0) == pids[i]);
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
        st = chrun_store_open(root, 0, &err);
        CHECK(st != NULL);
        if (st == NULL)
            return;
        CHECK_INT_EQ(chrun_store_list(st, &imgs, &n, &err), 0);
        if (n != N)
            fprintf(stderr, "# round %d: %zu of %d names survived\n", round, n, N);
        CHECK_INT_EQ(n, N);
        free(imgs);
        chrun_store_close(st);
        if (n != N)
            return;
    }
}

/* Is anyone waiting on a flock(2) lock? /proc/locks marks waiters with "->". */
static bool someone_waits_on_flock(void)
{
    FILE *f = fopen("/proc/locks", "r");
    char line[256];
    bool found = false;
    if (f == NULL)
        return false;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, "-> FLOCK") != NULL)
            found = true;
    fclose(f);
    return found;
}

static void test_gc_lock_excludes_holders(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    int ready[2], go[2], done[2];
    char c = 0;
    pid_t holder, gc;
    int fd, status = -1;

    CHECK(st != NULL);
    chrun_store_close(st);
    CHECK(pipe2(ready, O_CLOEXEC) == 0 && pipe2(go, O_CLOEXEC) == 0 && pipe2(done, O_CLOEXEC) == 0);

    /* A child holds the store open (shared). */
    holder = fork();
    if (holder == 0) {
        struct chrun_err cerr = CHRUN_ERR_INIT;
        struct chrun_store *cst = chrun_store_open(NULL, 0, &cerr);
        char x;
        if (cst == NULL)
            _exit(2);
        if (write(ready[1], "r", 1) != 1)
            _exit(3);
        if (read(go[0], &x, 1) < 0) /* wait for the parent */
            _exit(4);
        chrun_store_close(cst);
        _exit(0);
    }
    CHECK_INT_EQ(read(ready[0], &c, 1), 1);

    /* Another shared holder is fine; an exclusive one is refused. */
    st = chrun_store_open(NULL, 0, &err);
    CHECK(st != NULL);
    chrun_store_close(st);
    fd = open("store/locks/gc", O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_INT_EQ(flock(fd, LOCK_EX | LOCK_NB), -1);
    CHECK_INT_EQ(errno, EWOULDBLOCK);
    CHECK_INT_EQ(flock(fd, LOCK_SH | LOCK_NB), 0);
    close(fd);

    /* chrun_store_open(EXCLUSIVE) waits until the holder is gone. */
    gc = fork();
    if (gc == 0) {
        struct chrun_err cerr = CHRUN_ERR_INIT;
        struct chrun_store *cst = chrun_store_open(NULL, CHRUN_STORE_EXCLUSIVE, &cerr);
        if (cst == NULL)
            _exit(2);
        if (write(done[1], "g", 1) != 1)
            _exit(3);
        chrun_store_close(cst);
        _exit(0);
    }
    close(done[1]);
    /* Wait (without a clock) until the gc child is parked on the lock. */
    for (int i = 0; i < 100000 && !someone_waits_on_flock(); i++)
        sched_yield();
    CHECK(someone_waits_on_flock());
    /* Nothing arrived yet: the exclusive open is still blocked. */
    CHECK(fcntl(done[0], F_SETFL, O_NONBLOCK) == 0);
    CHECK_INT_EQ(read(done[0], &c, 1), -1);
    CHECK_INT_EQ(errno, EAGAIN);
    CHECK(fcntl(done[0], F_SETFL, 0) == 0);

    CHECK_INT_EQ(write(go[1], "g", 1), 1);
    CHECK(waitpid(holder, &status, 0) == holder);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_INT_EQ(read(done[0], &c, 1), 1);
    CHECK_INT_EQ(c, 'g');
    CHECK(waitpid(gc, &status, 0) == gc);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ready[0]);
    close(ready[1]);
    close(go[0]);
    close(go[1]);
    close(done[0]);
}

/* ---- named-image operations (image.c) over the store ---- */

static void test_image_tag_untag_list(void)
{
    static const char config[] =
        "{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\",\"created\":\"2024-01-01T00:00:00Z\","
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_image_info *infos = NULL;
    struct chrun_store_image img;
    struct chrun_digest cfg, man;
    char text[1024], full[CHRUN_REF_STR_MAX], pinned[200];
    size_t n = 0;
    json_t *j = NULL;

    if (st == NULL)
        return;
    CHECK_INT_EQ(chrun_store_put_blob(st, config, strlen(config), NULL, &cfg, &err), 0);
    snprintf(text, sizeof(text),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":"
             "\"application/vnd.oci.image.config.v1+json\",\"digest\":\"%s\",\"size\":%zu},"
             "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\","
             "\"digest\":\"%s\",\"size\":1000}]}",
             MT_MANIFEST, cfg.str, strlen(config), cfg.str);
    CHECK_INT_EQ(chrun_store_put_blob(st, text, strlen(text), NULL, &man, &err), 0);

    /* an unnamed manifest, by full digest: the media type comes from the blob */
    CHECK_INT_EQ(chrun_image_tag(st, man.str, "app", full, sizeof(full), &err), 0);
    CHECK_STR_EQ(full, "docker.io/library/app:latest");
    CHECK_INT_EQ(chrun_store_resolve(st, "app", &img, &err), 0);
    CHECK_STR_EQ(img.media_type, MT_MANIFEST);
    CHECK_INT_EQ(img.size, strlen(text));
    /* by short digest, to a second name */
    char shorthex[13];
    snprintf(shorthex, sizeof(shorthex), "%.12s", chrun_digest_hex(&man));
    CHECK_INT_EQ(chrun_image_tag(st, shorthex, "localhost:5000/app:2", full, sizeof(full), &err),
                 0);
    CHECK_STR_EQ(full, "localhost:5000/app:2");
    /* a name that pins another digest is not a tag */
    snprintf(pinned, sizeof(pinned), "app@%s", cfg.str);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_image_tag(st, "app", pinned, full, sizeof(full), &err), -1);
    CHECK(err.code == CHRUN_E_USAGE || err.code == CHRUN_E_INPUT);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_image_tag(st, "nosuch", "x", full, sizeof(full), &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_image_tag(st, "app", "Bad:Name:", full, sizeof(full), &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);

    CHECK_INT_EQ(chrun_image_list(st, &infos, &n, &err), 0);
    CHECK_INT_EQ(n, 2);
    if (n == 2) {
        CHECK_INT_EQ(infos[0].size_bytes, (int64_t) (strlen(text) + strlen(config) + 1000));
        CHECK_STR_EQ(infos[0].platform, "linux/arm64/v8");
        CHECK_STR_EQ(infos[0].created, "2024-01-01T00:00:00Z");
    }
    free(infos);

    CHECK_INT_EQ(chrun_image_inspect(st, "app", NULL, &j, &err), 0);
    CHECK_STR_EQ(json_string_value(json_object_get(j, "Digest")), man.str);
    CHECK(json_is_object(json_object_get(j, "Config")));
    json_decref(j);

    CHECK_INT_EQ(chrun_image_untag(st, "app", full, sizeof(full), &err), 0);
    CHECK_STR_EQ(full, "docker.io/library/app:latest");
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_image_untag(st, "app", full, sizeof(full), &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    /* names only: a digest is not a name */
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_image_untag(st, man.str, full, sizeof(full), &err), -1);
    CHECK(err.code != CHRUN_E_OK);
    CHECK_INT_EQ(chrun_store_resolve(st, "localhost:5000/app:2", &img, &err), 0);

    /* a named image whose blobs are gone is listed with size -1 */
    char path[256];
    snprintf(path, sizeof(path), "store/blobs/sha256/%s", chrun_digest_hex(&man));
    CHECK(unlink(path) == 0);
    CHECK_INT_EQ(chrun_image_list(st, &infos, &n, &err), 0);
    CHECK_INT_EQ(n, 1);
    if (n == 1)
        CHECK_INT_EQ(infos[0].size_bytes, -1);
    free(infos);
    chrun_store_close(st);
}

int main(void)
{
    RUN_TEST(test_create_layout);
    RUN_TEST(test_open_missing);
    RUN_TEST(test_writer_expected_ok);
    RUN_TEST(test_writer_no_expected);
    RUN_TEST(test_writer_wrong_bytes);
    RUN_TEST(test_writer_too_many_bytes);
    RUN_TEST(test_writer_too_few_bytes);
    RUN_TEST(test_writer_resume);
    RUN_TEST(test_writer_resume_oversized_partial);
    RUN_TEST(test_commit_existing_blob);
    RUN_TEST(test_put_and_read_blob);
    RUN_TEST(test_tag_untag_list);
    RUN_TEST(test_tag_identical_noop);
    RUN_TEST(test_foreign_entries_preserved);
    RUN_TEST(test_index_not_json);
    RUN_TEST(test_resolve);
    RUN_TEST(test_image_tag_untag_list);
    RUN_TEST(test_concurrent_tags);
    RUN_TEST(test_concurrent_create_and_tag);
    RUN_TEST(test_gc_lock_excludes_holders);
    return harness_done();
}
