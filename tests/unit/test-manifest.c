/* The image model: manifests, indexes, platforms, image configs, load_image. */
#include "harness.h"

#include <errno.h>
#include <stdbool.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/image-config.h"
#include "chrun/io.h"
#include "chrun/manifest.h"
#include "chrun/store.h"

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"
#define H4 "4444444444444444444444444444444444444444444444444444444444444444"
#define H5 "5555555555555555555555555555555555555555555555555555555555555555"
#define D1 "sha256:" H1
#define D2 "sha256:" H2
#define D3 "sha256:" H3
#define D4 "sha256:" H4
#define D5 "sha256:" H5

#define OCI_MANIFEST                                                                               \
    "{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\","                            \
    "\"config\":{\"mediaType\":\"" CHRUN_MT_OCI_CONFIG "\",\"digest\":\"" D1 "\",\"size\":10},"   \
    "\"layers\":[{\"mediaType\":\"" CHRUN_MT_OCI_LAYER_GZIP "\",\"digest\":\"" D2 "\","           \
    "\"size\":20},{\"mediaType\":\"" CHRUN_MT_OCI_LAYER_ZSTD "\",\"digest\":\"" D3                 \
    "\",\"size\":30}]}"

static bool msg_has(const struct chrun_err *err, const char *needle)
{
    if (strstr(err->msg, needle) != NULL)
        return true;
    fprintf(stderr, "# message '%s' lacks '%s'\n", err->msg, needle);
    return false;
}

static int parse(struct chrun_manifest *m, const char *text, const char *declared,
                 struct chrun_err *err)
{
    return chrun_manifest_parse(m, text, strlen(text), declared, err);
}

/* Parsing TEXT must fail with CODE and a message containing NEEDLE. */
static void expect_bad(const char *text, const char *declared, int code, const char *needle)
{
    struct chrun_manifest m;
    struct chrun_err err = CHRUN_ERR_INIT;
    int rc = parse(&m, text, declared, &err);
    CHECK_INT_EQ(rc, -1);
    if (rc == 0) {
        fprintf(stderr, "# accepted: %.200s\n", text);
        chrun_manifest_release(&m);
        return;
    }
    CHECK_INT_EQ(err.code, code);
    if (needle != NULL)
        CHECK(msg_has(&err, needle));
    CHECK(m.json == NULL && m.layers == NULL && m.manifests == NULL);
}

static void test_parse_oci_manifest(void)
{
    struct chrun_manifest m;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(parse(&m, OCI_MANIFEST, CHRUN_MT_OCI_MANIFEST, &err), 0);
    CHECK_STR_EQ(m.media_type, CHRUN_MT_OCI_MANIFEST);
    CHECK(!m.is_index);
    CHECK_STR_EQ(m.config.digest.str, D1);
    CHECK_STR_EQ(m.config.media_type, CHRUN_MT_OCI_CONFIG);
    CHECK_INT_EQ(m.config.size, 10);
    CHECK_INT_EQ(m.n_layers, 2);
    if (m.n_layers == 2) {
        CHECK_STR_EQ(m.layers[0].digest.str, D2);
        CHECK_INT_EQ(m.layers[0].size, 20);
        CHECK_STR_EQ(m.layers[1].media_type, CHRUN_MT_OCI_LAYER_ZSTD);
        CHECK_INT_EQ(m.layers[1].size, 30);
    }
    CHECK(m.json != NULL);
    chrun_manifest_release(&m);
    CHECK(m.json == NULL && m.layers == NULL);
    chrun_manifest_release(&m); /* twice is fine */

    /* no declared type, or an empty one */
    CHECK_INT_EQ(parse(&m, OCI_MANIFEST, NULL, &err), 0);
    chrun_manifest_release(&m);
    CHECK_INT_EQ(parse(&m, OCI_MANIFEST, "", &err), 0);
    chrun_manifest_release(&m);
}

static void test_parse_docker_manifest(void)
{
    static const char text[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_DOCKER_MANIFEST "\","
        "\"config\":{\"mediaType\":\"" CHRUN_MT_DOCKER_CONFIG "\",\"digest\":\"" D1
        "\",\"size\":1},\"layers\":[{\"mediaType\":\"" CHRUN_MT_DOCKER_LAYER_GZIP
        "\",\"digest\":\"" D2 "\",\"size\":2}]}";
    struct chrun_manifest m;
    struct chrun_err err = CHRUN_ERR_INIT;
    CHECK_INT_EQ(parse(&m, text, CHRUN_MT_DOCKER_MANIFEST, &err), 0);
    CHECK_STR_EQ(m.media_type, CHRUN_MT_DOCKER_MANIFEST);
    CHECK(!m.is_index);
    CHECK_STR_EQ(m.config.media_type, CHRUN_MT_DOCKER_CONFIG);
    CHECK_INT_EQ(m.n_layers, 1);
    chrun_manifest_release(&m);
}

#define INDEX_BODY                                                                                 \
    "\"manifests\":["                                                                              \
    "{\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":1,"               \
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"                                  \
    "{\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\",\"digest\":\"" D2 "\",\"size\":2,"               \
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\",\"variant\":\"v8\"}},"               \
    "{\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\",\"digest\":\"" D3 "\",\"size\":3,"               \
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}},"                 \
    "{\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\",\"digest\":\"" D4 "\",\"size\":4,"               \
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v6\"}},"                 \
    "{\"mediaType\":\"application/vnd.in-toto+json\",\"digest\":\"" D5 "\",\"size\":5,"            \
    "\"platform\":{\"os\":\"unknown\",\"architecture\":\"unknown\"}}]"

static const char oci_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_INDEX "\"," INDEX_BODY "}";

static void test_parse_indexes(void)
{
    static const char docker_list[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_DOCKER_LIST "\",\"manifests\":["
        "{\"mediaType\":\"" CHRUN_MT_DOCKER_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":7,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\",\"os.version\":\"x\"}}]}";
    struct chrun_manifest m;
    struct chrun_err err = CHRUN_ERR_INIT;

    CHECK_INT_EQ(parse(&m, oci_index, CHRUN_MT_OCI_INDEX, &err), 0);
    CHECK(m.is_index);
    CHECK_STR_EQ(m.media_type, CHRUN_MT_OCI_INDEX);
    CHECK_INT_EQ(m.n_manifests, 5);
    if (m.n_manifests == 5) {
        CHECK_STR_EQ(m.manifests[1].architecture, "arm64");
        CHECK_STR_EQ(m.manifests[1].variant, "v8");
        CHECK_STR_EQ(m.manifests[0].variant, "");
        CHECK_STR_EQ(m.manifests[4].media_type, "application/vnd.in-toto+json");
    }
    chrun_manifest_release(&m);

    CHECK_INT_EQ(parse(&m, docker_list, NULL, &err), 0);
    CHECK(m.is_index);
    CHECK_STR_EQ(m.media_type, CHRUN_MT_DOCKER_LIST);
    CHECK_INT_EQ(m.n_manifests, 1);
    CHECK_STR_EQ(m.manifests[0].os, "linux");
    chrun_manifest_release(&m);

    /* An empty index is a valid document. */
    CHECK_INT_EQ(parse(&m, "{\"schemaVersion\":2,\"manifests\":[]}", NULL, &err), 0);
    CHECK(m.is_index);
    CHECK_INT_EQ(m.n_manifests, 0);
    chrun_manifest_release(&m);
}

static void test_media_type_inferred(void)
{
    static const char manifest[] =
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" CHRUN_MT_OCI_CONFIG
        "\",\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]}";
    static const char index[] = "{\"schemaVersion\":2," INDEX_BODY "}";
    struct chrun_manifest m;
    struct chrun_err err = CHRUN_ERR_INIT;

    CHECK_INT_EQ(parse(&m, manifest, NULL, &err), 0);
    CHECK_STR_EQ(m.media_type, CHRUN_MT_OCI_MANIFEST);
    CHECK(!m.is_index);
    chrun_manifest_release(&m);
    CHECK_INT_EQ(parse(&m, index, NULL, &err), 0);
    CHECK_STR_EQ(m.media_type, CHRUN_MT_OCI_INDEX);
    CHECK(m.is_index);
    chrun_manifest_release(&m);
    /* the declared type fills the gap */
    CHECK_INT_EQ(parse(&m, manifest, CHRUN_MT_DOCKER_MANIFEST, &err), 0);
    CHECK_STR_EQ(m.media_type, CHRUN_MT_DOCKER_MANIFEST);
    chrun_manifest_release(&m);

    expect_bad("{\"schemaVersion\":2}", NULL, CHRUN_E_INPUT, "media type");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":7,\"manifests\":[]}", NULL, CHRUN_E_INPUT,
               "mediaType");
}

static void test_declared_mismatch(void)
{
    expect_bad(OCI_MANIFEST, CHRUN_MT_OCI_INDEX, CHRUN_E_INPUT, "does not match");
    expect_bad(OCI_MANIFEST, CHRUN_MT_DOCKER_MANIFEST, CHRUN_E_INPUT, CHRUN_MT_DOCKER_MANIFEST);
    expect_bad(oci_index, CHRUN_MT_DOCKER_LIST, CHRUN_E_INPUT, "does not match");
    /* An index declared as a manifest, shape decides nothing: mediaType does. */
    expect_bad(oci_index, CHRUN_MT_OCI_MANIFEST, CHRUN_E_INPUT, "does not match");
}

static void test_schema1_and_unknown(void)
{
    expect_bad("{\"schemaVersion\":1,\"name\":\"x\",\"tag\":\"latest\",\"fsLayers\":[]}", NULL,
               CHRUN_E_UNSUPPORTED, "schema1");
    expect_bad("{\"schemaVersion\":1,\"fsLayers\":[]}", CHRUN_MT_DOCKER_SCHEMA1_SIGNED,
               CHRUN_E_UNSUPPORTED, "schema1");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_DOCKER_SCHEMA1 "\",\"config\":{}}",
               NULL, CHRUN_E_UNSUPPORTED, "schema1");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_DOCKER_SCHEMA1_SIGNED "\"}", NULL,
               CHRUN_E_UNSUPPORTED, "schema1");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example+json\","
               "\"config\":{}}",
               NULL, CHRUN_E_UNSUPPORTED, "application/vnd.example+json");
    expect_bad("{\"schemaVersion\":3,\"manifests\":[]}", NULL, CHRUN_E_INPUT, "schemaVersion");
    expect_bad("{\"schemaVersion\":\"2\",\"manifests\":[]}", NULL, CHRUN_E_INPUT,
               "schemaVersion");
    expect_bad("{\"manifests\":[]}", NULL, CHRUN_E_INPUT, "schemaVersion");
}

static void test_bad_descriptors(void)
{
    /* a bad digest in layers[1] is named */
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\","
               "\"config\":{\"mediaType\":\"" CHRUN_MT_OCI_CONFIG "\",\"digest\":\"" D1
               "\",\"size\":1},\"layers\":[{\"mediaType\":\"" CHRUN_MT_OCI_LAYER
               "\",\"digest\":\"" D2 "\",\"size\":1},{\"mediaType\":\"" CHRUN_MT_OCI_LAYER
               "\",\"digest\":\"sha256:../../etc/passwd\",\"size\":1}]}",
               NULL, CHRUN_E_INPUT, "layers[1]");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\","
               "\"config\":{\"mediaType\":\"" CHRUN_MT_OCI_CONFIG "\",\"digest\":\"" D1
               "\",\"size\":1},\"layers\":[{\"mediaType\":\"" CHRUN_MT_OCI_LAYER
               "\",\"digest\":\"sha256:" H2 "0\",\"size\":1}]}",
               NULL, CHRUN_E_INPUT, "layers[0]");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\","
               "\"config\":{\"mediaType\":\"" CHRUN_MT_OCI_CONFIG "\",\"digest\":\"" D1
               "\",\"size\":1},\"layers\":[{\"mediaType\":\"" CHRUN_MT_OCI_LAYER
               "\",\"digest\":\"SHA256:" H2 "\",\"size\":1}]}",
               NULL, CHRUN_E_INPUT, "layers[0]");
    /* negative and non-integer sizes */
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\","
               "\"config\":{\"mediaType\":\"" CHRUN_MT_OCI_CONFIG "\",\"digest\":\"" D1
               "\",\"size\":1},\"layers\":[{\"mediaType\":\"" CHRUN_MT_OCI_LAYER
               "\",\"digest\":\"" D2 "\",\"size\":-1}]}",
               NULL, CHRUN_E_INPUT, "size");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\","
               "\"config\":{\"mediaType\":\"" CHRUN_MT_OCI_CONFIG "\",\"digest\":\"" D1
               "\",\"size\":1.5},\"layers\":[]}",
               NULL, CHRUN_E_INPUT, "config");
    /* missing pieces */
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\",\"layers\":[]}",
               NULL, CHRUN_E_INPUT, "config");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\","
               "\"config\":{\"mediaType\":\"" CHRUN_MT_OCI_CONFIG "\",\"digest\":\"" D1
               "\",\"size\":1}}",
               NULL, CHRUN_E_INPUT, "layers");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\","
               "\"config\":{\"digest\":\"" D1 "\",\"size\":1},\"layers\":[]}",
               NULL, CHRUN_E_INPUT, "mediaType");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_INDEX "\",\"manifests\":"
               "[{\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\",\"digest\":\"" D1 "\",\"size\":1,"
               "\"platform\":{\"os\":\"linux\"}}]}",
               NULL, CHRUN_E_INPUT, "manifests[0]");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_INDEX "\",\"manifests\":"
               "[\"" D1 "\"]}",
               NULL, CHRUN_E_INPUT, "manifests[0]");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_INDEX "\",\"manifests\":{}}",
               NULL, CHRUN_E_INPUT, "manifests");
}

/* Media types reach HTTP headers (chrun-push's Content-Type): only
 * RFC 6838 type/subtype passes, so no CR/LF can split a request. */
static void test_media_type_syntax(void)
{
    struct chrun_manifest m;
    struct chrun_err err = CHRUN_ERR_INIT;
    static const char *const good[] = {
        CHRUN_MT_OCI_MANIFEST, CHRUN_MT_DOCKER_LAYER_GZIP, "application/vnd.in-toto+json",
        "text/plain"};
    static const char *const bad[] = {
        "", "application", "application/", "/json", "application/json; charset=utf-8",
        "application/vnd.oci.image.manifest.v1+json\r\nX-Injected: yes", "a/b\n", "a b/c",
        ".a/b", "a/b/c"};
    char doc[512];

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(chrun_manifest_media_type_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!chrun_manifest_media_type_valid(bad[i]));
    CHECK(!chrun_manifest_media_type_valid(NULL));

    snprintf(doc, sizeof(doc),
             "{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_INDEX "\",\"manifests\":["
             "{\"mediaType\":\"%s\",\"digest\":\"" D1 "\",\"size\":1}]}",
             "application/vnd.oci.image.manifest.v1+json\\r\\nContent-Length: 0");
    CHECK_INT_EQ(parse(&m, doc, NULL, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(msg_has(&err, "invalid mediaType"));
}

static void test_bad_json(void)
{
    struct chrun_manifest m;
    struct chrun_err err = CHRUN_ERR_INIT;
    size_t big = (size_t) CHRUN_MANIFEST_MAX + 1, deep = 100000;
    char *buf;

    expect_bad("", NULL, CHRUN_E_INPUT, "JSON");
    expect_bad("not json", NULL, CHRUN_E_INPUT, "JSON");
    expect_bad("[]", NULL, CHRUN_E_INPUT, "object");
    expect_bad("{\"schemaVersion\":2,\"manifests\":[]", NULL, CHRUN_E_INPUT, "JSON");
    expect_bad("{\"schemaVersion\":2,\"schemaVersion\":2,\"manifests\":[]}", NULL, CHRUN_E_INPUT,
               "duplicate");
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST
               "\",\"mediaType\":\"" CHRUN_MT_OCI_INDEX "\",\"manifests\":[]}",
               NULL, CHRUN_E_INPUT, "duplicate");
    /* embedded NUL in a string (\u0000) must not truncate silently into a valid value */
    expect_bad("{\"schemaVersion\":2,\"mediaType\":\"" CHRUN_MT_OCI_INDEX
               "\\u0000x\",\"manifests\":[]}",
               NULL, CHRUN_E_INPUT, NULL);

    /* over 4 MiB: refused before parsing, even if it is valid JSON */
    buf = malloc(big + 1);
    CHECK(buf != NULL);
    if (buf != NULL) {
        memset(buf, ' ', big);
        memcpy(buf, oci_index, strlen(oci_index));
        buf[big] = '\0';
        CHECK_INT_EQ(chrun_manifest_parse(&m, buf, big, NULL, &err), -1);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
        CHECK(msg_has(&err, "larger"));
        /* exactly at the cap is fine */
        CHECK_INT_EQ(chrun_manifest_parse(&m, buf, big - 1, NULL, &err), 0);
        chrun_manifest_release(&m);
        free(buf);
    }

    /* 100000 nested arrays: a clean error, no stack overflow */
    buf = malloc(deep + 1);
    CHECK(buf != NULL);
    if (buf != NULL) {
        memset(buf, '[', deep);
        buf[deep] = '\0';
        chrun_err_clear(&err);
        CHECK_INT_EQ(chrun_manifest_parse(&m, buf, deep, NULL, &err), -1);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
        memset(buf, '{', 1);
        for (size_t i = 1; i + 6 < deep; i += 6)
            memcpy(buf + i, "\"a\":{", 5), buf[i + 5] = ' ';
        CHECK_INT_EQ(chrun_manifest_parse(&m, buf, deep, NULL, &err), -1);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
        free(buf);
    }
}

static void test_layer_compression(void)
{
    static const struct {
        const char *mt;
        int compression; /* -1: unsupported */
    } cases[] = {
        {CHRUN_MT_OCI_LAYER, CHRUN_COMPRESSION_NONE},
        {CHRUN_MT_OCI_LAYER_GZIP, CHRUN_COMPRESSION_GZIP},
        {CHRUN_MT_OCI_LAYER_ZSTD, CHRUN_COMPRESSION_ZSTD},
        {CHRUN_MT_DOCKER_LAYER_GZIP, CHRUN_COMPRESSION_GZIP},
        {"application/vnd.docker.image.rootfs.diff.tar", CHRUN_COMPRESSION_NONE},
        {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", CHRUN_COMPRESSION_GZIP},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar", CHRUN_COMPRESSION_NONE},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", CHRUN_COMPRESSION_GZIP},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", CHRUN_COMPRESSION_ZSTD},
        {"application/vnd.oci.image.layer.v1.tar+bzip2", -1},
        {"application/vnd.oci.image.layer.v1.tar+gzip+encrypted", -1},
        {CHRUN_MT_OCI_CONFIG, -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct chrun_err err = CHRUN_ERR_INIT;
        enum chrun_compression c = (enum chrun_compression) 99;
        int rc = chrun_manifest_layer_compression(cases[i].mt, &c, &err);
        if (cases[i].compression < 0) {
            CHECK_INT_EQ(rc, -1);
            CHECK_INT_EQ(err.code, CHRUN_E_UNSUPPORTED);
            CHECK(msg_has(&err, cases[i].mt));
        } else {
            CHECK_INT_EQ(rc, 0);
            CHECK_INT_EQ(c, cases[i].compression);
        }
    }
}

static void expect_platform(const struct chrun_manifest *m, const char *platform,
                            const char *digest)
{
    struct chrun_descriptor d;
    struct chrun_err err = CHRUN_ERR_INIT;
    if (chrun_manifest_select_platform(m, platform, &d, &err) < 0) {
        fprintf(stderr, "# select '%s': %s\n", platform, err.msg);
        harness_failed_checks++;
        return;
    }
    CHECK_STR_EQ(d.digest.str, digest);
}

static void test_select_platform(void)
{
    static const char arm64_plain[] =
        "{\"schemaVersion\":2,\"manifests\":["
        "{\"mediaType\":\"" CHRUN_MT_OCI_MANIFEST "\",\"digest\":\"" D5 "\",\"size\":1,"
        "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}}]}";
    static const char *const bad[] = {"linux", "linux/", "/amd64", "linux//v7", "a/b/c/d",
                                      "linux/amd64/"};
    struct chrun_manifest m, m2;
    struct chrun_descriptor d;
    struct chrun_err err = CHRUN_ERR_INIT;
    char host[96];

    CHECK_INT_EQ(parse(&m, oci_index, NULL, &err), 0);
    expect_platform(&m, "linux/amd64", D1);
    expect_platform(&m, "linux/x86_64", D1);
    expect_platform(&m, "linux/arm64", D2);
    expect_platform(&m, "linux/arm64/v8", D2);
    expect_platform(&m, "linux/aarch64", D2);
    expect_platform(&m, "linux/arm/v7", D3);
    expect_platform(&m, "linux/arm/v6", D4);
    /* host default */
    chrun_manifest_host_platform(host, sizeof(host));
    CHECK(strncmp(host, "linux/", 6) == 0);
    if (strcmp(host, "linux/amd64") == 0) {
        expect_platform(&m, NULL, D1);
        expect_platform(&m, "", D1);
    }

    /* missing: NOTFOUND naming the platform and what is offered */
    CHECK_INT_EQ(chrun_manifest_select_platform(&m, "linux/s390x", &d, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    CHECK(msg_has(&err, "linux/s390x"));
    CHECK(msg_has(&err, "linux/amd64") && msg_has(&err, "linux/arm/v7"));
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_manifest_select_platform(&m, "linux/arm/v5", &d, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_manifest_select_platform(&m, "windows/amd64", &d, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        chrun_err_clear(&err);
        CHECK_INT_EQ(chrun_manifest_select_platform(&m, bad[i], &d, &err), -1);
        if (err.code != CHRUN_E_USAGE)
            fprintf(stderr, "# platform '%s': %s\n", bad[i], err.msg);
        CHECK_INT_EQ(err.code, CHRUN_E_USAGE);
    }

    /* arm64 images often carry no variant: v8 still matches */
    CHECK_INT_EQ(parse(&m2, arm64_plain, NULL, &err), 0);
    expect_platform(&m2, "linux/arm64", D5);
    expect_platform(&m2, "linux/arm64/v8", D5);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_manifest_select_platform(&m2, "linux/amd64", &d, &err), -1);
    CHECK(msg_has(&err, "linux/arm64"));
    chrun_manifest_release(&m2);

    /* an empty index offers nothing */
    CHECK_INT_EQ(parse(&m2, "{\"schemaVersion\":2,\"manifests\":[]}", NULL, &err), 0);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_manifest_select_platform(&m2, "linux/amd64", &d, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    chrun_manifest_release(&m2);
    chrun_manifest_release(&m);
}

static void test_image_config(void)
{
    static const char good[] =
        "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"]},"
        "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"" D2 "\"]}}";
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"{\"os\":\"linux\"}", "rootfs"},
        {"{\"rootfs\":{\"type\":\"layers\"}}", "rootfs"},
        {"{\"rootfs\":{\"type\":\"other\",\"diff_ids\":[]}}", "rootfs"},
        {"{\"rootfs\":{\"diff_ids\":[]}}", "rootfs"},
        {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":{}}}", "rootfs"},
        {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D1 "\",\"sha256:nothex\"]}}",
         "diff_ids[1]"},
        {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[7]}}", "diff_ids[0]"},
        {"[]", "rootfs"},
        {"nope", "JSON"},
        {"{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]},\"rootfs\":{}}", "duplicate"},
    };
    struct chrun_image_config c;
    struct chrun_err err = CHRUN_ERR_INIT;

    CHECK_INT_EQ(chrun_image_config_parse(&c, good, strlen(good), &err), 0);
    CHECK_INT_EQ(c.n_diff_ids, 2);
    if (c.n_diff_ids == 2) {
        CHECK_STR_EQ(c.diff_ids[0].str, D1);
        CHECK_STR_EQ(c.diff_ids[1].str, D2);
    }
    CHECK(c.json != NULL);
    chrun_image_config_release(&c);
    chrun_image_config_release(&c);

    CHECK_INT_EQ(chrun_image_config_parse(
                     &c, "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}", 42, &err),
                 0);
    CHECK_INT_EQ(c.n_diff_ids, 0);
    chrun_image_config_release(&c);

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        chrun_err_clear(&err);
        CHECK_INT_EQ(chrun_image_config_parse(&c, bad[i].text, strlen(bad[i].text), &err), -1);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
        CHECK(msg_has(&err, bad[i].needle));
        CHECK(c.json == NULL && c.diff_ids == NULL);
    }
}

/* ---- load_image over a real store ---- */

static struct chrun_store *open_store(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    if (st == NULL)
        fprintf(stderr, "# open store: %s\n", err.msg);
    return st;
}

static void put(struct chrun_store *st, const char *text, struct chrun_digest *ret)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    if (chrun_store_put_blob(st, text, strlen(text), NULL, ret, &err) < 0) {
        fprintf(stderr, "# put: %s\n", err.msg);
        harness_failed_checks++;
    }
}

/* An index (or manifest list) with one linux/amd64 entry pointing at CHILD. */
static void put_index(struct chrun_store *st, const char *child_type,
                      const struct chrun_digest *child, size_t child_size,
                      struct chrun_digest *ret)
{
    char text[1024];
    snprintf(text, sizeof(text),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":%zu,\"platform\":{\"os\":\"linux\","
             "\"architecture\":\"amd64\"}}]}",
             CHRUN_MT_OCI_INDEX, child_type, child->str, child_size);
    put(st, text, ret);
}

static void make_image(struct chrun_store *st, struct chrun_digest *ret_manifest,
                       size_t *ret_size)
{
    static const char config[] = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}";
    struct chrun_digest cfg;
    char text[1024];
    put(st, config, &cfg);
    snprintf(text, sizeof(text),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":%zu},\"layers\":[]}",
             CHRUN_MT_OCI_MANIFEST, CHRUN_MT_OCI_CONFIG, cfg.str, strlen(config));
    put(st, text, ret_manifest);
    *ret_size = strlen(text);
}

static void test_load_image_nested(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store_image img;
    struct chrun_manifest m;
    struct chrun_image_config c;
    struct chrun_digest man, inner, outer, got;
    size_t man_size;

    if (st == NULL)
        return;
    make_image(st, &man, &man_size);
    put_index(st, CHRUN_MT_OCI_MANIFEST, &man, man_size, &inner);
    put_index(st, CHRUN_MT_OCI_INDEX, &inner, 300, &outer);
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/nested:1", CHRUN_MT_OCI_INDEX, &outer,
                                 400, &err),
                 0);
    CHECK_INT_EQ(chrun_store_resolve(st, "nested:1", &img, &err), 0);
    CHECK_INT_EQ(chrun_manifest_load_image(&m, st, &img, "linux/amd64", &got, &err), 0);
    CHECK(!m.is_index);
    CHECK_STR_EQ(got.str, man.str);
    CHECK_INT_EQ(chrun_image_config_load(&c, st, &m.config.digest, &err), 0);
    chrun_image_config_release(&c);
    chrun_manifest_release(&m);

    /* a plain manifest loads as itself */
    memset(&img, 0, sizeof(img));
    img.digest = man;
    snprintf(img.media_type, sizeof(img.media_type), "%s", CHRUN_MT_OCI_MANIFEST);
    CHECK_INT_EQ(chrun_manifest_load_image(&m, st, &img, NULL, &got, &err), 0);
    CHECK_STR_EQ(got.str, man.str);
    chrun_manifest_release(&m);

    /* platform missing at the second level */
    img.digest = outer;
    snprintf(img.media_type, sizeof(img.media_type), "%s", CHRUN_MT_OCI_INDEX);
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_manifest_load_image(&m, st, &img, "linux/riscv64", &got, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    CHECK(msg_has(&err, outer.str));
    CHECK(m.json == NULL);
    chrun_store_close(st);
}

static void test_load_image_bounded(void)
{
    struct chrun_store *st = open_store();
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store_image img;
    struct chrun_manifest m;
    struct chrun_digest cur, got;
    size_t size;
    char path[256], text[1024];
    FILE *f;

    if (st == NULL)
        return;
    /* a chain of indexes deeper than CHRUN_MANIFEST_MAX_DEPTH */
    make_image(st, &cur, &size);
    const char *type = CHRUN_MT_OCI_MANIFEST;
    struct chrun_digest chain[CHRUN_MANIFEST_MAX_DEPTH + 2];
    for (int i = 0; i < CHRUN_MANIFEST_MAX_DEPTH + 2; i++) {
        struct chrun_digest next;
        put_index(st, type, &cur, size, &next);
        cur = next;
        chain[i] = next;
        type = CHRUN_MT_OCI_INDEX;
        size = 300;
    }
    memset(&img, 0, sizeof(img));
    img.digest = cur;
    snprintf(img.media_type, sizeof(img.media_type), "%s", CHRUN_MT_OCI_INDEX);
    CHECK_INT_EQ(chrun_manifest_load_image(&m, st, &img, "linux/amd64", &got, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(msg_has(&err, "nested"));
    /* the index whose entry is too deep is named, not the image (a fix) */
    CHECK(msg_has(&err, chain[1].str));
    CHECK(m.json == NULL);

    /* An index that names itself: only possible by planting a blob under a
     * name it does not hash to, which the re-hash catches. */
    snprintf(img.digest.str, sizeof(img.digest.str), "sha256:%s", H5);
    snprintf(text, sizeof(text),
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[{\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":10,\"platform\":{\"os\":\"linux\","
             "\"architecture\":\"amd64\"}}]}",
             CHRUN_MT_OCI_INDEX, CHRUN_MT_OCI_INDEX, img.digest.str);
    snprintf(path, sizeof(path), "store/blobs/sha256/%s", H5);
    f = fopen(path, "w");
    CHECK(f != NULL);
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_manifest_load_image(&m, st, &img, "linux/amd64", &got, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_DIGEST);
    CHECK(m.json == NULL);

    /* an index entry that says "manifest" but points at an index */
    struct chrun_digest inner, outer;
    make_image(st, &cur, &size);
    put_index(st, CHRUN_MT_OCI_MANIFEST, &cur, size, &inner);
    put_index(st, CHRUN_MT_OCI_MANIFEST, &inner, 300, &outer);
    img.digest = outer;
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_manifest_load_image(&m, st, &img, "linux/amd64", &got, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(msg_has(&err, "does not match"));

    /* missing child */
    struct chrun_digest missing;
    snprintf(missing.str, sizeof(missing.str), "%s", D4);
    put_index(st, CHRUN_MT_OCI_MANIFEST, &missing, 10, &outer);
    img.digest = outer;
    chrun_err_clear(&err);
    CHECK_INT_EQ(chrun_manifest_load_image(&m, st, &img, "linux/amd64", &got, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    CHECK(msg_has(&err, D4));
    chrun_store_close(st);
}

int main(void)
{
    RUN_TEST(test_parse_oci_manifest);
    RUN_TEST(test_parse_docker_manifest);
    RUN_TEST(test_parse_indexes);
    RUN_TEST(test_media_type_inferred);
    RUN_TEST(test_declared_mismatch);
    RUN_TEST(test_schema1_and_unknown);
    RUN_TEST(test_bad_descriptors);
    RUN_TEST(test_media_type_syntax);
    RUN_TEST(test_bad_json);
    RUN_TEST(test_layer_compression);
    RUN_TEST(test_select_platform);
    RUN_TEST(test_image_config);
    RUN_TEST(test_load_image_nested);
    RUN_TEST(test_load_image_bounded);
    return harness_done();
}
