/* Garbage collection: mark from index.json, sweep blobs, tmp/ and bundles. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/build-cache.h"
#include "chrun/bundle.h"
#include "chrun/gc.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/store.h"

/* Sorted listing of a directory tree, as one string (caller frees). */
static char *snapshot(void)
{
    FILE *p = popen("cd store && find . -path ./locks -prune -o -print | LC_ALL=C sort", "r");
    char *buf = calloc(1, 1 << 16);
    size_t n;
    if (p == NULL || buf == NULL) {
        if (p != NULL)
            pclose(p);
        return buf;
    }
    n = fread(buf, 1, (1 << 16) - 1, p);
    buf[n] = '\0';
    pclose(p);
    return buf;
}

static bool blob_exists(const struct chrun_digest *d)
{
    char path[256];
    snprintf(path, sizeof(path), "store/blobs/sha256/%s", chrun_digest_hex(d));
    return access(path, F_OK) == 0;
}

static void put(struct chrun_store *st, const char *text, struct chrun_digest *ret)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    if (chrun_store_put_blob(st, text, strlen(text), NULL, ret, &err) < 0) {
        fprintf(stderr, "# put: %s\n", err.msg);
        harness_failed_checks++;
    }
}

struct image {
    struct chrun_digest manifest, config, own_layer;
    size_t manifest_size;
};

/* An OCI image with layers SHARED and its own layer (content NAME). */
static void make_image(struct chrun_store *st, const char *name, const struct chrun_digest *shared,
                       struct image *img)
{
    char text[2048], config[256], layer[64];
    snprintf(config, sizeof(config),
             "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"comment\":\"%s\"}", name);
    snprintf(layer, sizeof(layer), "layer of %s", name);
    put(st, config, &img->config);
    put(st, layer, &img->own_layer);
    snprintf(text, sizeof(text),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\",\"digest\":"
             "\"%s\",\"size\":12},{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
             CHRUN_MT_OCI_MANIFEST, CHRUN_MT_OCI_CONFIG, img->config.str, strlen(config),
             CHRUN_MT_OCI_LAYER_GZIP, shared->str, CHRUN_MT_OCI_LAYER_GZIP, img->own_layer.str,
             strlen(layer));
    put(st, text, &img->manifest);
    img->manifest_size = strlen(text);
}

static void tag(struct chrun_store *st, const char *ref, const struct image *img)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    if (chrun_store_tag(st, ref, CHRUN_MT_OCI_MANIFEST, &img->manifest,
                        (int64_t) img->manifest_size, &err) < 0) {
        fprintf(stderr, "# tag: %s\n", err.msg);
        harness_failed_checks++;
    }
}

static struct chrun_store *open_store(unsigned flags)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE | flags, &err);
    if (st == NULL)
        fprintf(stderr, "# open store: %s\n", err.msg);
    return st;
}

static void make_bundle(const char *name, const char *digest)
{
    char path[256], text[512];
    snprintf(path, sizeof(path), "store/bundles/%s", name);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof(path), "store/bundles/%s/rootfs", name);
    CHECK(mkdir(path, 0755) == 0);
    snprintf(path, sizeof(path), "store/bundles/%s/rootfs/file", name);
    CHECK(spew(path, "x") == 0);
    snprintf(path, sizeof(path), "store/bundles/%s/config.json", name);
    if (digest != NULL)
        snprintf(text, sizeof(text),
                 "{\"ociVersion\":\"1.0.2\",\"annotations\":{\"%s\":\"%s\"}}",
                 CHRUN_BUNDLE_ANNOTATION_DIGEST, digest);
    else
        snprintf(text, sizeof(text), "{\"ociVersion\":\"1.0.2\"}");
    CHECK(spew(path, text) == 0);
}

static void test_gc_two_images_shared_layer(void)
{
    struct chrun_store *st = open_store(0);
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_gc_opts opts = CHRUN_GC_OPTS_INIT;
    struct chrun_gc_report dry, real;
    struct chrun_digest shared;
    struct image a, b;
    char *before, *after;
    const char *junk = "store/blobs/sha256/README";
    const char *upper = "store/blobs/sha256/"
                        "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789";

    if (st == NULL)
        return;
    put(st, "shared layer", &shared);
    make_image(st, "a", &shared, &a);
    make_image(st, "b", &shared, &b);
    tag(st, "docker.io/library/a:1", &a);
    tag(st, "docker.io/library/b:1", &b);
    CHECK_INT_EQ(chrun_store_untag(st, "docker.io/library/a:1", &err), 0);
    chrun_store_close(st);

    /* Not ours: names that are not digests stay. */
    CHECK(spew(junk, "not a blob") == 0);
    CHECK(spew(upper, "not a blob either") == 0);
    /* Stale temporary work. */
    CHECK(spew("store/tmp/blob-0123.partial", "partial") == 0);
    CHECK(mkdir("store/tmp/unpack-x", 0755) == 0);
    CHECK(spew("store/tmp/unpack-x/f", "f") == 0);

    st = open_store(CHRUN_STORE_EXCLUSIVE);
    if (st == NULL)
        return;
    before = snapshot();
    opts.dry_run = true;
    CHECK_INT_EQ(chrun_gc_run(st, &opts, &dry, &err), 0);
    after = snapshot();
    CHECK_STR_EQ(after, before);
    free(after);
    CHECK_INT_EQ(dry.blobs_removed, 3);
    CHECK_INT_EQ(dry.tmp_removed, 2);

    opts.dry_run = false;
    CHECK_INT_EQ(chrun_gc_run(st, &opts, &real, &err), 0);
    CHECK_INT_EQ(real.blobs_removed, 3);
    CHECK_INT_EQ(real.blobs_kept, dry.blobs_kept);
    CHECK_INT_EQ(real.tmp_removed, 2);
    CHECK_INT_EQ(real.bytes_freed, dry.bytes_freed);
    CHECK(real.bytes_freed > 0);
    CHECK(!blob_exists(&a.manifest));
    CHECK(!blob_exists(&a.config));
    CHECK(!blob_exists(&a.own_layer));
    CHECK(blob_exists(&shared));
    CHECK(blob_exists(&b.manifest));
    CHECK(blob_exists(&b.config));
    CHECK(blob_exists(&b.own_layer));
    CHECK(access(junk, F_OK) == 0);
    CHECK(access(upper, F_OK) == 0);
    CHECK_INT_EQ(count_entries("store/tmp"), 0);
    CHECK_INT_EQ(count_entries("store/blobs/sha256"), 6);

    /* A second run finds nothing more. */
    CHECK_INT_EQ(chrun_gc_run(st, &opts, &real, &err), 0);
    CHECK_INT_EQ(real.blobs_removed, 0);
    CHECK_INT_EQ(real.tmp_removed, 0);
    CHECK_INT_EQ(real.bytes_freed, 0);
    free(before);
    chrun_store_close(st);

    /* The remaining image still loads. */
    st = open_store(0);
    if (st != NULL) {
        struct chrun_store_image img;
        struct chrun_manifest m;
        CHECK_INT_EQ(chrun_store_resolve(st, "b:1", &img, &err), 0);
        CHECK_INT_EQ(chrun_manifest_load_image(&m, st, &img, NULL, NULL, &err), 0);
        chrun_manifest_release(&m);
        chrun_store_close(st);
    }
}

static char captured[4096];

static void capture(enum chrun_log_level level, const char *line, void *data)
{
    (void) level;
    (void) data;
    strncat(captured, line, sizeof(captured) - strlen(captured) - 1);
}

static void test_gc_bundles(void)
{
    struct chrun_store *st = open_store(0);
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_gc_opts opts = CHRUN_GC_OPTS_INIT;
    struct chrun_gc_report rep;
    struct chrun_digest shared;
    struct image a, b;
    char *before, *after;

    if (st == NULL)
        return;
    put(st, "shared layer", &shared);
    make_image(st, "a", &shared, &a);
    make_image(st, "b", &shared, &b);
    tag(st, "docker.io/library/a:1", &a);
    tag(st, "docker.io/library/b:1", &b);
    CHECK_INT_EQ(chrun_store_untag(st, "docker.io/library/a:1", &err), 0);
    chrun_store_close(st);
    make_bundle("of-a", a.manifest.str);
    make_bundle("of-b", b.manifest.str);
    make_bundle("unknown", NULL);
    CHECK(chmod("store/bundles/of-a/rootfs", 0555) == 0);

    st = open_store(CHRUN_STORE_EXCLUSIVE);
    if (st == NULL)
        return;
    captured[0] = '\0';
    chrun_log_set_sink(capture, NULL);
    /* Without --bundles, bundles are not touched. */
    CHECK_INT_EQ(chrun_gc_run(st, &opts, &rep, &err), 0);
    CHECK_INT_EQ(rep.bundles_removed, 0);
    CHECK_INT_EQ(count_entries("store/bundles"), 3);

    opts.bundles = true;
    opts.dry_run = true;
    before = snapshot();
    CHECK_INT_EQ(chrun_gc_run(st, &opts, &rep, &err), 0);
    after = snapshot();
    CHECK_STR_EQ(after, before);
    CHECK_INT_EQ(rep.bundles_removed, 1);
    free(before);
    free(after);

    opts.dry_run = false;
    CHECK_INT_EQ(chrun_gc_run(st, &opts, &rep, &err), 0);
    CHECK_INT_EQ(rep.bundles_removed, 1);
    CHECK(access("store/bundles/of-a", F_OK) < 0);
    CHECK(access("store/bundles/of-b/rootfs/file", F_OK) == 0);
    CHECK(access("store/bundles/unknown/rootfs/file", F_OK) == 0);
    chrun_log_set_sink(NULL, NULL);
    CHECK(strstr(captured, "warning: keeping bundle 'unknown'") != NULL);
    chrun_store_close(st);
}

static void test_gc_missing_manifest_removes_nothing(void)
{
    struct chrun_store *st = open_store(0);
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_gc_opts opts = CHRUN_GC_OPTS_INIT;
    struct chrun_gc_report rep;
    struct chrun_digest shared, orphan;
    struct image a, b;
    char path[256];
    char *before, *after;

    if (st == NULL)
        return;
    put(st, "shared layer", &shared);
    put(st, "orphan", &orphan);
    make_image(st, "a", &shared, &a);
    make_image(st, "b", &shared, &b);
    tag(st, "docker.io/library/a:1", &a);
    tag(st, "docker.io/library/b:1", &b);
    chrun_store_close(st);
    snprintf(path, sizeof(path), "store/blobs/sha256/%s", chrun_digest_hex(&b.manifest));
    CHECK(unlink(path) == 0);
    CHECK(spew("store/tmp/stale", "x") == 0);
    make_bundle("orphaned", orphan.str);

    st = open_store(CHRUN_STORE_EXCLUSIVE);
    if (st == NULL)
        return;
    opts.bundles = true;
    before = snapshot();
    CHECK_INT_EQ(chrun_gc_run(st, &opts, &rep, &err), -1);
    after = snapshot();
    CHECK_STR_EQ(after, before);
    CHECK(strstr(err.msg, "docker.io/library/b:1") != NULL);
    CHECK(strstr(err.msg, b.manifest.str) != NULL);
    CHECK(blob_exists(&orphan));
    free(before);
    free(after);

    /* A corrupt manifest is no better. */
    CHECK(spew(path, "{}") == 0);
    before = snapshot();
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_gc_run(st, &opts, &rep, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    after = snapshot();
    CHECK_STR_EQ(after, before);
    free(before);
    free(after);
    chrun_store_close(st);
}

/* A pull keeps only the chosen platform's manifest of an index: the others'
 * absence is normal and must not stop gc, and the chosen one stays. */
static void test_gc_index_with_absent_platforms(void)
{
    struct chrun_store *st = open_store(0);
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_gc_opts opts = CHRUN_GC_OPTS_INIT;
    struct chrun_gc_report rep;
    struct chrun_digest shared, index, orphan;
    struct image a;
    char text[2048];

    if (st == NULL)
        return;
    put(st, "shared layer", &shared);
    put(st, "orphan", &orphan);
    make_image(st, "a", &shared, &a);
    snprintf(text, sizeof(text),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
             "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
             "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
             "{\"mediaType\":\"%s\",\"digest\":\"sha256:%064d\",\"size\":100,"
             "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}",
             CHRUN_MT_OCI_INDEX, CHRUN_MT_OCI_MANIFEST, a.manifest.str, a.manifest_size,
             CHRUN_MT_OCI_MANIFEST, 7);
    put(st, text, &index);
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/multi:1", CHRUN_MT_OCI_INDEX, &index,
                                 (int64_t) strlen(text), &err),
                 0);
    chrun_store_close(st);

    st = open_store(CHRUN_STORE_EXCLUSIVE);
    if (st == NULL)
        return;
    if (chrun_gc_run(st, &opts, &rep, &err) < 0) {
        fprintf(stderr, "# gc: %s\n", err.msg);
        harness_failed_checks++;
    } else {
        CHECK_INT_EQ(rep.blobs_removed, 1);
    }
    CHECK(blob_exists(&index));
    CHECK(blob_exists(&a.manifest));
    CHECK(blob_exists(&a.config));
    CHECK(blob_exists(&a.own_layer));
    CHECK(blob_exists(&shared));
    CHECK(!blob_exists(&orphan));
    chrun_store_close(st);
}

static void test_gc_empty_store(void)
{
    struct chrun_store *st = open_store(CHRUN_STORE_EXCLUSIVE);
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_gc_opts opts = CHRUN_GC_OPTS_INIT;
    struct chrun_gc_report rep;
    struct chrun_digest d;
    if (st == NULL)
        return;
    opts.bundles = true;
    CHECK_INT_EQ(chrun_gc_run(st, &opts, &rep, &err), 0);
    CHECK_INT_EQ(rep.blobs_removed + rep.blobs_kept + rep.tmp_removed + rep.bundles_removed, 0);
    put(st, "lonely", &d);
    CHECK_INT_EQ(chrun_gc_run(st, &opts, &rep, &err), 0);
    CHECK_INT_EQ(rep.blobs_removed, 1);
    CHECK_INT_EQ(rep.bytes_freed, 6);
    CHECK(!blob_exists(&d));
    chrun_store_close(st);
}

/* The step-cache entry format (build-cache.h): what build writes, gc and
 * build read; files of another shape are no entry. */
static void test_build_cache_entries(void)
{
    struct chrun_store *st = open_store(CHRUN_STORE_EXCLUSIVE);
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_changeset_layer in = {0}, out;
    struct chrun_digest key, key2;
    char big[CHRUN_BUILD_CACHE_ENTRY_MAX + 64];
    FILE *f;
    int dfd;
    if (st == NULL)
        return;
    put(st, "layer bytes", &in.digest);
    CHECK_INT_EQ(chrun_digest_of_buffer(&in.diff_id, "tar", 3, &err), 0);
    in.size = 11;
    CHECK_INT_EQ(chrun_digest_of_buffer(&key, "step", 4, &err), 0);
    CHECK_INT_EQ(chrun_digest_of_buffer(&key2, "empty step", 10, &err), 0);
    CHECK(!chrun_build_cache_get(st, &key, &out));
    CHECK_INT_EQ(chrun_build_cache_put(st, &key, &in, &err), 0);
    CHECK(chrun_build_cache_get(st, &key, &out));
    CHECK(!out.empty);
    CHECK_STR_EQ(out.digest.str, in.digest.str);
    CHECK_STR_EQ(out.diff_id.str, in.diff_id.str);
    CHECK_INT_EQ(out.size, 11);
    CHECK_INT_EQ(chrun_build_cache_put(st, &key2, &(struct chrun_changeset_layer){.empty = true},
                                       &err), 0);
    CHECK(chrun_build_cache_get(st, &key2, &out) && out.empty);
    dfd = openat(chrun_store_root_fd(st), CHRUN_BUILD_CACHE_DIR, O_PATH | O_DIRECTORY);
    CHECK(dfd >= 0);
    /* not an entry: junk, a missing field, a size of 0, an oversized file */
    f = fopen("store/build-cache/junk", "w");
    CHECK(f != NULL && fputs("{\"digest\": 1}", f) >= 0 && fclose(f) == 0);
    CHECK(!chrun_build_cache_read_at(dfd, "junk", &out));
    f = fopen("store/build-cache/nosize", "w");
    CHECK(f != NULL && fprintf(f, "{\"empty\":false,\"digest\":\"%s\",\"diff_id\":\"%s\"}",
                               in.digest.str, in.diff_id.str) > 0 && fclose(f) == 0);
    CHECK(!chrun_build_cache_read_at(dfd, "nosize", &out));
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "{\"empty\":true}", 14);
    f = fopen("store/build-cache/big", "w");
    CHECK(f != NULL && fputs(big, f) >= 0 && fclose(f) == 0);
    CHECK(!chrun_build_cache_read_at(dfd, "big", &out));
    CHECK(!chrun_build_cache_read_at(dfd, "absent", &out));
    close(dfd);
    /* a hit is only trusted when its blob is there */
    {
        char path[256];
        snprintf(path, sizeof(path), "store/blobs/sha256/%s", chrun_digest_hex(&in.digest));
        CHECK_INT_EQ(unlink(path), 0);
        CHECK(!chrun_build_cache_get(st, &key, &out));
    }
    chrun_store_close(st);
}

int main(void)
{
    RUN_TEST(test_gc_two_images_shared_layer);
    RUN_TEST(test_gc_bundles);
    RUN_TEST(test_gc_missing_manifest_removes_nothing);
    RUN_TEST(test_gc_index_with_absent_platforms);
    RUN_TEST(test_gc_empty_store);
    RUN_TEST(test_build_cache_entries);
    return harness_done();
}
