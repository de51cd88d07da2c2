/* Attachments in index.json, strict base64, keys, and cosign verification
 * against a source in memory. */
#include "harness.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <jansson.h>

#include "chrun/attach.h"
#include "chrun/cosign.h"
#include "chrun/key.h"
#include "chrun/store.h"

#define MT_MANIFEST "application/vnd.oci.image.manifest.v1+json"

static void digest_of(struct chrun_digest *d, const char *s)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    if (chrun_digest_of_buffer(d, s, strlen(s), &err) < 0)
        fprintf(stderr, "# digest: %s\n", err.msg);
}

static void test_b64_strict(void)
{
    static const struct {
        const char *in, *out;
    } good[] = {{"", ""}, {"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9v", "foo"}, {"Zm9vYg==", "foob"}};
    static const char *const bad[] = {"Zg=", "Z===", "Zm9v!", "Zg==Zg==", "Zm=v", "Zm9v\n"};
    unsigned char out[16];
    struct chrun_err err = CHRUN_ERR_INIT;
    size_t len;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        CHECK_INT_EQ(chrun_key_b64_decode(good[i].in, out, sizeof(out), &len, &err), 0);
        CHECK_INT_EQ(len, strlen(good[i].out));
        CHECK(memcmp(out, good[i].out, len) == 0);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_INT_EQ(chrun_key_b64_decode(bad[i], out, sizeof(out), &len, &err), -1);
        CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    }
    /* longer than the output buffer */
    CHECK_INT_EQ(chrun_key_b64_decode("Zm9vZm9vZm9vZm9vZm9vZm9v", out, 4, &len, &err), -1);
    char *enc = chrun_key_b64_encode("foob", 4);
    CHECK_STR_EQ(enc, "Zm9vYg==");
    free(enc);
}

static json_t *entry(const char *subject, const char *digest, const char *ref, const char *mt)
{
    json_t *e = json_pack("{s:s, s:s, s:i, s:{s:s}}", "mediaType", mt, "digest", digest, "size",
                          10, "annotations", CHRUN_ANNOTATION_SUBJECT, subject);
    if (ref != NULL)
        json_object_set_new(json_object_get(e, "annotations"), CHRUN_ANNOTATION_REF_NAME,
                            json_string(ref));
    return e;
}

static void test_entry_rules(void)
{
    struct chrun_digest s, d, o;
    struct chrun_attachment a;
    struct chrun_err err = CHRUN_ERR_INIT;
    char good[256], other[256];
    json_t *e;

    digest_of(&s, "subject");
    digest_of(&d, "artifact");
    digest_of(&o, "other");
    CHECK_INT_EQ(chrun_attach_tag_name("example.com/a/b", &s, ".sig", good, sizeof(good), &err), 0);
    CHECK_INT_EQ(chrun_attach_tag_name("example.com/a/b", &o, ".sig", other, sizeof(other), &err),
                 0);
    e = entry(s.str, d.str, good, MT_MANIFEST);
    CHECK(chrun_attach_entry_is_attachment(e));
    CHECK_INT_EQ(chrun_attach_from_entry(e, &a, &err), 0);
    CHECK_INT_EQ(chrun_attach_kind(&a), CHRUN_ATTACH_SIG);
    CHECK_STR_EQ(a.ref, good);
    json_decref(e);
    /* a name that is not a cosign tag of its own subject */
    e = entry(s.str, d.str, other, MT_MANIFEST);
    CHECK_INT_EQ(chrun_attach_from_entry(e, &a, &err), -1);
    json_decref(e);
    snprintf(other, sizeof(other), "example.com/a/b:sha256-%s.x.sig", s.str + 7);
    e = entry(s.str, d.str, other, MT_MANIFEST);
    CHECK_INT_EQ(chrun_attach_from_entry(e, &a, &err), -1);
    json_decref(e);
    e = entry(s.str, d.str, "example.com/a/b:latest", MT_MANIFEST);
    CHECK_INT_EQ(chrun_attach_from_entry(e, &a, &err), -1);
    json_decref(e);
    /* an index, a bad subject */
    e = entry(s.str, d.str, NULL, "application/vnd.oci.image.index.v1+json");
    CHECK_INT_EQ(chrun_attach_from_entry(e, &a, &err), -1);
    json_decref(e);
    e = entry("sha256:zz", d.str, NULL, MT_MANIFEST);
    CHECK_INT_EQ(chrun_attach_from_entry(e, &a, &err), -1);
    json_decref(e);
    e = entry(s.str, d.str, NULL, MT_MANIFEST);
    CHECK_INT_EQ(chrun_attach_from_entry(e, &a, &err), 0);
    CHECK_INT_EQ(chrun_attach_kind(&a), CHRUN_ATTACH_REFERRER);
    json_decref(e);
}

static bool keep_none(const struct chrun_digest *subject, void *data)
{
    (void) subject, (void) data;
    return false;
}

static void test_add_list_prune(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    struct chrun_attachment a = {0}, *list = NULL;
    struct chrun_store_image *imgs = NULL;
    struct chrun_digest img;
    size_t n = 0, removed = 0;

    CHECK(st != NULL);
    if (st == NULL)
        return;
    digest_of(&img, "image");
    CHECK_INT_EQ(chrun_store_tag(st, "docker.io/library/x:1", MT_MANIFEST, &img, 5, &err), 0);
    a.subject = img;
    digest_of(&a.digest, "sig-1");
    a.size = 10;
    snprintf(a.media_type, sizeof(a.media_type), MT_MANIFEST);
    CHECK_INT_EQ(chrun_attach_tag_name("docker.io/library/x", &img, ".sig", a.ref, sizeof(a.ref),
                                       &err), 0);
    CHECK_INT_EQ(chrun_attach_add(st, &a, &err), 0);
    CHECK_INT_EQ(chrun_attach_add(st, &a, &err), 0); /* no-op */
    digest_of(&a.digest, "sig-2");                   /* a re-signed .sig replaces */
    CHECK_INT_EQ(chrun_attach_add(st, &a, &err), 0);
    {
        struct chrun_digest prev = a.digest, stale;
        digest_of(&stale, "sig-1");
        digest_of(&a.digest, "sig-3");
        CHECK_INT_EQ(chrun_attach_replace(st, &a, &stale, &err), -1);
        CHECK_INT_EQ(err.code, CHRUN_E_EXISTS);
        CHECK_INT_EQ(chrun_attach_replace(st, &a, NULL, &err), -1);
        CHECK_INT_EQ(chrun_attach_replace(st, &a, &prev, &err), 0);
    }
    a.ref[0] = '\0';                                 /* a referrer is added beside */
    CHECK_INT_EQ(chrun_attach_add(st, &a, &err), 0);
    CHECK_INT_EQ(chrun_attach_list(st, &img, &list, &n, &err), 0);
    CHECK_INT_EQ(n, 2);
    free(list);
    /* attachments are not images */
    CHECK_INT_EQ(chrun_store_list(st, &imgs, &n, &err), 0);
    CHECK_INT_EQ(n, 1);
    free(imgs);
    CHECK_INT_EQ(chrun_attach_prune(st, keep_none, NULL, true, &removed, &err), 0);
    CHECK_INT_EQ(removed, 2);
    CHECK_INT_EQ(chrun_attach_list(st, NULL, &list, &n, &err), 0);
    CHECK_INT_EQ(n, 2);
    free(list);
    CHECK_INT_EQ(chrun_attach_prune(st, keep_none, NULL, false, &removed, &err), 0);
    CHECK_INT_EQ(chrun_attach_list(st, NULL, &list, &n, &err), 0);
    CHECK_INT_EQ(n, 0);
    free(list);
    chrun_store_close(st);
}

/* An ECDSA P-256 key written as PKCS#8 (priv) and SubjectPublicKeyInfo (pub). */
static int make_keys(const char *priv, const char *pub)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    FILE *f1 = fopen(priv, "w"), *f2 = fopen(pub, "w");
    int ok = k && f1 && f2 && PEM_write_PrivateKey(f1, k, NULL, NULL, 0, NULL, NULL) == 1 &&
             PEM_write_PUBKEY(f2, k) == 1;
    if (f1)
        fclose(f1);
    if (f2)
        fclose(f2);
    EVP_PKEY_free(k);
    return ok ? 0 : -1;
}

static void test_key_sign_verify(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_key *priv = NULL, *pub = NULL, *bad = NULL;
    unsigned char sig[CHRUN_KEY_SIG_MAX];
    size_t len;

    CHECK_INT_EQ(make_keys("k.pem", "k.pub"), 0);
    CHECK_INT_EQ(chrun_key_load_private("k.pem", NULL, &priv, &err), 0);
    CHECK_INT_EQ(chrun_key_load_public("k.pub", &pub, &err), 0);
    CHECK_INT_EQ(chrun_key_load_public("k.pem", &bad, &err), -1);
    CHECK(strstr(err.msg, "not a PUBLIC KEY") != NULL);
    CHECK_INT_EQ(chrun_key_load_private("k.pub", NULL, &bad, &err), -1);
    if (priv == NULL || pub == NULL)
        return;
    CHECK_STR_EQ(chrun_key_describe(pub), "ecdsa-p256");
    CHECK_INT_EQ(chrun_key_sign(priv, "payload", 7, sig, &len, &err), 0);
    CHECK_INT_EQ(chrun_key_verify(pub, "payload", 7, sig, len, &err), 1);
    CHECK_INT_EQ(chrun_key_verify(pub, "paylaod", 7, sig, len, &err), 0);
    CHECK_INT_EQ(chrun_key_verify(pub, "payload", 7, sig, len - 1, &err), 0);
    chrun_key_free(priv);
    chrun_key_free(pub);
}

/* A source holding a few named buffers. */
struct mem {
    const char *bufs[4];
    struct chrun_digest digests[4];
};

static int mem_read(void *data, const struct chrun_digest *d, int64_t size, size_t max,
                    char **ret_buf, size_t *ret_len, struct chrun_err *err)
{
    struct mem *m = data;
    for (int i = 0; i < 4 && m->bufs[i]; i++)
        if (strcmp(m->digests[i].str, d->str) == 0) {
            size_t len = strlen(m->bufs[i]);
            if (len > max || (size >= 0 && (int64_t) len != size))
                return chrun_err_set(err, CHRUN_E_DIGEST, "size");
            *ret_buf = strdup(m->bufs[i]);
            *ret_len = len;
            return 0;
        }
    return chrun_err_set(err, CHRUN_E_NOTFOUND, "blob %s not found", d->str);
}

static void test_verify_manifest_bounds(void)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_cosign_report rep = {0};
    struct chrun_key *pub = NULL;
    struct chrun_digest subject, cfg;
    struct mem m;
    struct chrun_cosign_source src = {mem_read, &m};
    struct chrun_cosign_opts opts = {0};
    json_t *layers = json_array(), *doc;
    char *text;

    memset(&m, 0, sizeof(m));
    CHECK_INT_EQ(make_keys("k.pem", "k.pub"), 0);
    CHECK_INT_EQ(chrun_key_load_public("k.pub", &pub, &err), 0);
    opts.key = pub;
    digest_of(&subject, "image");
    m.bufs[0] = "{}";
    digest_of(&m.digests[0], "{}");
    cfg = m.digests[0];
    /* 1001 layers: refused without reading one */
    for (int i = 0; i < CHRUN_COSIGN_LAYERS_MAX + 1; i++)
        json_array_append_new(layers, json_pack("{s:s, s:i, s:s}", "mediaType",
                                                CHRUN_COSIGN_MT_PAYLOAD, "size", 2, "digest",
                                                cfg.str));
    doc = json_pack("{s:i, s:s, s:{s:s, s:i, s:s}, s:o}", "schemaVersion", 2, "mediaType",
                    MT_MANIFEST, "config", "mediaType", "application/vnd.oci.image.config.v1+json",
                    "size", 2, "digest", cfg.str, "layers", layers);
    text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    m.bufs[1] = text;
    digest_of(&m.digests[1], text);
    CHECK_INT_EQ(chrun_cosign_verify_manifest(&src, &subject, &m.digests[1],
                                              (int64_t) strlen(text), &opts, &rep, &err),
                 0);
    CHECK_INT_EQ(rep.n_verified, 0);
    CHECK_INT_EQ(rep.n_reasons, 1);
    if (rep.n_reasons == 1)
        CHECK(strstr(rep.reasons[0], "1001 layers, more than 1000") != NULL);
    chrun_cosign_report_release(&rep);
    free(text);
    chrun_key_free(pub);
}

int main(void)
{
    RUN_TEST(test_b64_strict);
    RUN_TEST(test_entry_rules);
    RUN_TEST(test_add_list_prune);
    RUN_TEST(test_key_sign_verify);
    RUN_TEST(test_verify_manifest_bounds);
    return harness_done();
}
