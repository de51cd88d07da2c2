/* cosign simple-signing: verify and sign. See cosign.h. */
#include "chrun/cosign.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chrun/attach.h"
#include "chrun/io.h"
#include "chrun/manifest.h"
#include "chrun/ref.h"
#include "cleanup.h"
#include "util.h"

/* What cosign writes in a signature artifact's config (a zero time). */
#define COSIGN_ZERO_TIME "0001-01-01T00:00:00Z"
/* Tries to append a signature while other signers change the artifact. */
#define SIGN_ATTEMPTS_MAX 8

static int store_read(void *data, const struct chrun_digest *d, int64_t size, size_t max,
                      char **ret_buf, size_t *ret_len, struct chrun_err *err)
{
    cleanup_free char *buf = NULL;
    size_t len;
    if (size >= 0 && (uint64_t) size > max)
        return chrun_err_sys(err, EFBIG, "blob %s: %" PRId64 " bytes, more than %zu", d->str,
                             size, max);
    if (chrun_store_read_blob(data, d, max, &buf, &len, err) < 0)
        return -1;
    if (size >= 0 && (int64_t) len != size)
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "blob %s: size mismatch: %zu bytes, descriptor says %" PRId64,
                             d->str, len, size);
    *ret_buf = take_ptr(buf);
    *ret_len = len;
    return 0;
}

void chrun_cosign_store_source(struct chrun_cosign_source *src, struct chrun_store *st)
{
    src->read_blob = store_read;
    src->data = st;
}

void chrun_cosign_report_release(struct chrun_cosign_report *r)
{
    for (size_t i = 0; i < r->n_reasons; i++)
        free(r->reasons[i]);
    free(r->reasons);
    memset(r, 0, sizeof(*r));
}

static int report_add(struct chrun_cosign_report *r, struct chrun_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int report_add(struct chrun_cosign_report *r, struct chrun_err *err, const char *fmt, ...)
{
    char *line = NULL;
    va_list ap;
    int n;
    if (chrun_grow(&r->reasons, &r->cap_reasons, r->n_reasons + 1, sizeof(*r->reasons), err) < 0)
        return chrun_err_prefix(err, "verify");
    va_start(ap, fmt);
    n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return chrun_err_sys(err, ENOMEM, "verify");
    chrun_sanitize(line);
    r->reasons[r->n_reasons++] = line;
    return 0;
}

int chrun_cosign_annotations_check(const char *const *a, size_t n, struct chrun_err *err)
{
    if (n > CHRUN_COSIGN_ANNOTATIONS_MAX)
        return chrun_err_set(err, CHRUN_E_USAGE, "more than %d annotations",
                             CHRUN_COSIGN_ANNOTATIONS_MAX);
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(a[i], '=');
        if (eq == NULL || eq == a[i])
            return chrun_err_set(err, CHRUN_E_USAGE, "invalid annotation '%.200s': want KEY=VALUE",
                                 a[i]);
        if ((size_t) (eq - a[i]) >= CHRUN_COSIGN_ANNOTATION_KEY_MAX)
            return chrun_err_set(err, CHRUN_E_USAGE, "annotation key '%.40s...' is longer than %d",
                                 a[i], CHRUN_COSIGN_ANNOTATION_KEY_MAX - 1);
    }
    return 0;
}

/* The reason PAYLOAD (a signed, parsed payload) does not fit SUBJECT and
 * the annotations into WHY, or "" when it fits. */
static void payload_mismatch(json_t *payload, const struct chrun_digest *subject,
                             const struct chrun_cosign_opts *opts, char *why, size_t size)
{
    json_t *critical = json_object_get(payload, "critical");
    json_t *optional = json_object_get(payload, "optional");
    const char *type = json_string_value(json_object_get(critical, "type"));
    const char *digest = json_string_value(
        json_object_get(json_object_get(critical, "image"), "docker-manifest-digest"));

    why[0] = '\0';
    if (!json_is_object(critical)) {
        snprintf(why, size, "payload has no critical section");
    } else if (type == NULL || !streq(type, CHRUN_COSIGN_TYPE)) {
        snprintf(why, size, "payload type is '%.100s', not '%s'", type ? type : "",
                 CHRUN_COSIGN_TYPE);
    } else if (digest == NULL || !streq(digest, subject->str)) {
        snprintf(why, size, "signs %.80s, not %s", digest ? digest : "no digest", subject->str);
    } else {
        for (size_t i = 0; i < opts->n_annotations; i++) {
            const char *eq = strchr(opts->annotations[i], '=');
            char key[CHRUN_COSIGN_ANNOTATION_KEY_MAX];
            const char *have;
            if (eq == NULL)
                continue;
            snprintf(key, sizeof(key), "%.*s", (int) (eq - opts->annotations[i]),
                     opts->annotations[i]);
            have = json_string_value(json_object_get(optional, key));
            if (have == NULL || !streq(have, eq + 1)) {
                snprintf(why, size, "annotation %.200s: payload has '%.200s'",
                         opts->annotations[i], have ? have : "(none)");
                return;
            }
        }
    }
}

/* Check layer I of signature manifest M (digest SIG). Returns 1 if it
 * verified, 0 if not (a reason added), -1 on failure. */
static int verify_layer(const struct chrun_cosign_source *src, const struct chrun_manifest *m,
                        const struct chrun_digest *sig, size_t i,
                        const struct chrun_digest *subject, const struct chrun_cosign_opts *opts,
                        struct chrun_cosign_report *rep, struct chrun_err *err)
{
    const struct chrun_descriptor *d = &m->layers[i];
    json_t *ann = json_object_get(json_array_get(json_object_get(m->json, "layers"), i),
                                  "annotations");
    const char *b64 = json_string_value(json_object_get(ann, CHRUN_COSIGN_ANNOTATION_SIGNATURE));
    unsigned char sig_bytes[CHRUN_KEY_SIG_MAX];
    cleanup_free char *payload = NULL;
    json_auto_t *doc = NULL;
    struct chrun_err e = CHRUN_ERR_INIT;
    size_t sig_len, len;
    char why[512], line[CHRUN_ERR_MSG_MAX];
    int rc;

#define FAIL(...) report_add(rep, err, "signature %zu of %s: " __VA_ARGS__)
    if (!streq(d->media_type, CHRUN_COSIGN_MT_PAYLOAD))
        return FAIL("layer media type '%.100s' is not a simple-signing payload", i + 1, sig->str,
                    d->media_type);
    if (d->size > CHRUN_COSIGN_PAYLOAD_MAX)
        return FAIL("payload of %" PRId64 " bytes is larger than %d", i + 1, sig->str, d->size,
                    CHRUN_COSIGN_PAYLOAD_MAX);
    if (b64 == NULL)
        return FAIL("no %s annotation", i + 1, sig->str, CHRUN_COSIGN_ANNOTATION_SIGNATURE);
    if (strlen(b64) > CHRUN_COSIGN_SIG_B64_MAX)
        return FAIL("signature annotation longer than %d characters", i + 1, sig->str,
                    CHRUN_COSIGN_SIG_B64_MAX);
    if (chrun_key_b64_decode(b64, sig_bytes, sizeof(sig_bytes), &sig_len, &e) < 0)
        return FAIL("signature annotation: %s", i + 1, sig->str, e.msg);
    if (src->read_blob(src->data, &d->digest, d->size, CHRUN_COSIGN_PAYLOAD_MAX, &payload, &len,
                       &e) < 0)
        return FAIL("payload %s: %s", i + 1, sig->str, d->digest.str,
                    chrun_err_format(&e, line, sizeof(line)));
    rc = chrun_key_verify(opts->key, payload, len, sig_bytes, sig_len, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return FAIL("signature does not verify with the %s key", i + 1, sig->str,
                    chrun_key_describe(opts->key));
    doc = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(doc))
        return FAIL("payload is not a JSON object", i + 1, sig->str);
    payload_mismatch(doc, subject, opts, why, sizeof(why));
    if (why[0])
        return FAIL("%s", i + 1, sig->str, why);
#undef FAIL
    return 1;
}

int chrun_cosign_verify_manifest(const struct chrun_cosign_source *src,
                                 const struct chrun_digest *subject,
                                 const struct chrun_digest *sig, int64_t sig_size,
                                 const struct chrun_cosign_opts *opts,
                                 struct chrun_cosign_report *rep, struct chrun_err *err)
{
    cleanup_free char *buf = NULL;
    struct chrun_manifest m;
    struct chrun_err e = CHRUN_ERR_INIT;
    char line[CHRUN_ERR_MSG_MAX];
    size_t len;
    int rc = 0;

    rep->n_checked++;
    if (src->read_blob(src->data, sig, sig_size, CHRUN_MANIFEST_MAX, &buf, &len, &e) < 0 ||
        chrun_manifest_parse(&m, buf, len, CHRUN_MT_OCI_MANIFEST, &e) < 0)
        return report_add(rep, err, "signature artifact %s: %s", sig->str,
                          chrun_err_format(&e, line, sizeof(line)));
    if (m.n_layers > CHRUN_COSIGN_LAYERS_MAX)
        rc = report_add(rep, err, "signature artifact %s: %zu layers, more than %d", sig->str,
                        m.n_layers, CHRUN_COSIGN_LAYERS_MAX);
    else if (m.n_layers == 0)
        rc = report_add(rep, err, "signature artifact %s holds no signature", sig->str);
    for (size_t i = 0; rc == 0 && m.n_layers <= CHRUN_COSIGN_LAYERS_MAX && i < m.n_layers; i++) {
        int v = verify_layer(src, &m, sig, i, subject, opts, rep, err);
        if (v < 0)
            rc = -1;
        else if (v == 1)
            rep->n_verified++;
    }
    chrun_manifest_release(&m);
    return rc;
}

bool chrun_cosign_is_signature(const struct chrun_attachment *a)
{
    return chrun_attach_kind(a) == CHRUN_ATTACH_SIG ||
           (chrun_attach_kind(a) == CHRUN_ATTACH_REFERRER &&
            streq(a->artifact_type, CHRUN_COSIGN_ARTIFACT_SIG));
}

/* The store image IMAGE's attached cosign signature artifacts. */
static int signature_attachments(struct chrun_store *st, const struct chrun_digest *subject,
                                 struct chrun_attachment **ret, size_t *ret_n,
                                 struct chrun_err *err)
{
    size_t n = 0, k = 0;
    if (chrun_attach_list(st, subject, ret, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (chrun_cosign_is_signature(&(*ret)[i]))
            (*ret)[k++] = (*ret)[i];
    *ret_n = k;
    return 0;
}

int chrun_cosign_verify_image(struct chrun_store *st, const char *image,
                              const struct chrun_cosign_opts *opts,
                              struct chrun_digest *ret_digest, struct chrun_cosign_report *rep,
                              struct chrun_err *err)
{
    cleanup_free struct chrun_attachment *sigs = NULL;
    struct chrun_cosign_source src;
    struct chrun_store_image img;
    size_t n;

    if (chrun_cosign_annotations_check(opts->annotations, opts->n_annotations, err) < 0 ||
        chrun_store_resolve(st, image, &img, err) < 0 ||
        signature_attachments(st, &img.digest, &sigs, &n, err) < 0)
        return -1;
    *ret_digest = img.digest;
    chrun_cosign_store_source(&src, st);
    for (size_t i = 0; i < n; i++)
        if (chrun_cosign_verify_manifest(&src, &img.digest, &sigs[i].digest, sigs[i].size, opts,
                                         rep, err) < 0)
            return -1;
    if (rep->n_verified > 0)
        return 0;
    if (n == 0)
        return chrun_err_set(err, CHRUN_E_NOTFOUND, "image '%s' (%s) has no cosign signature",
                             image, img.digest.str);
    return chrun_err_set(err, CHRUN_E_INPUT, "image '%s' (%s): no signature verifies", image,
                         img.digest.str);
}

/* Signing */

/* cosign's payload for SUBJECT in repository REPO, with the annotations;
 * *ret_text (caller frees) is compact JSON with sorted keys, as Go's
 * encoding/json writes it. */
static int payload_text(const char *repo, const struct chrun_digest *subject,
                        const struct chrun_cosign_opts *opts, char **ret_text,
                        struct chrun_err *err)
{
    json_auto_t *doc = NULL;
    json_t *optional = json_null();

    if (opts->n_annotations > 0) {
        optional = json_object();
        for (size_t i = 0; optional && i < opts->n_annotations; i++) {
            const char *a = opts->annotations[i], *eq = strchr(a, '=');
            char key[CHRUN_COSIGN_ANNOTATION_KEY_MAX];
            if (eq == NULL || (size_t) (eq - a) >= sizeof(key))
                continue;
            snprintf(key, sizeof(key), "%.*s", (int) (eq - a), a);
            json_object_set_new(optional, key, json_string(eq + 1));
        }
    }
    doc = json_pack("{s:{s:{s:s}, s:{s:s}, s:s}, s:o*}", "critical", "identity",
                    "docker-reference", repo, "image", "docker-manifest-digest", subject->str,
                    "type", CHRUN_COSIGN_TYPE, "optional", optional);
    *ret_text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (*ret_text == NULL)
        return chrun_err_sys(err, ENOMEM, "signature payload");
    return 0;
}

static int put_text(struct chrun_store *st, const char *text, struct chrun_digest *ret,
                    struct chrun_err *err)
{
    return chrun_store_put_blob(st, text, strlen(text), NULL, ret, err);
}

/* The layers of the image's existing .sig artifact NAME (a new array; an
 * empty one when there is none) and its digest (RET_PREV, "" if none). */
static int existing_layers(struct chrun_store *st, const struct chrun_digest *subject,
                           const char *name, json_t **ret, struct chrun_digest *ret_prev,
                           struct chrun_err *err)
{
    cleanup_free struct chrun_attachment *atts = NULL;
    struct chrun_manifest m;
    size_t n;

    *ret = NULL;
    ret_prev->str[0] = '\0';
    if (chrun_attach_list(st, subject, &atts, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!streq(atts[i].ref, name))
            continue;
        if (chrun_manifest_load(&m, st, &atts[i].digest, atts[i].media_type, err) < 0)
            return chrun_err_prefix(err, "signature artifact %s", atts[i].digest.str);
        *ret = json_deep_copy(json_object_get(m.json, "layers"));
        *ret_prev = atts[i].digest;
        chrun_manifest_release(&m);
        break;
    }
    if (*ret == NULL)
        *ret = json_array();
    if (*ret == NULL)
        return chrun_err_sys(err, ENOMEM, "sign");
    return 0;
}

/* True if LAYERS already holds a signature of PAYLOAD that KEY verifies. */
static bool already_signed(struct chrun_store *st, json_t *layers, const struct chrun_digest *payload,
                           const struct chrun_key *key)
{
    json_t *l;
    size_t i;
    json_array_foreach (layers, i, l) {
        const char *d = json_string_value(json_object_get(l, "digest"));
        const char *b64 = json_string_value(
            json_object_get(json_object_get(l, "annotations"), CHRUN_COSIGN_ANNOTATION_SIGNATURE));
        unsigned char sig[CHRUN_KEY_SIG_MAX];
        cleanup_free char *buf = NULL;
        struct chrun_err e = CHRUN_ERR_INIT;
        size_t sig_len, len;
        if (d == NULL || b64 == NULL || !streq(d, payload->str) ||
            chrun_key_b64_decode(b64, sig, sizeof(sig), &sig_len, &e) < 0 ||
            chrun_store_read_blob(st, payload, CHRUN_COSIGN_PAYLOAD_MAX, &buf, &len, &e) < 0)
            continue;
        if (chrun_key_verify(key, buf, len, sig, sig_len, &e) == 1)
            return true;
    }
    return false;
}

/* Write the config and manifest of a signature artifact with LAYERS;
 * RET gets the manifest's digest, *RET_SIZE its size. */
static int write_artifact(struct chrun_store *st, json_t *layers, struct chrun_digest *ret,
                          int64_t *ret_size, struct chrun_err *err)
{
    json_auto_t *diff_ids = json_array(), *config = NULL, *manifest = NULL;
    cleanup_free char *config_text = NULL, *manifest_text = NULL;
    struct chrun_digest config_digest;
    json_t *l;
    size_t i;

    json_array_foreach (layers, i, l)
        json_array_append(diff_ids, json_object_get(l, "digest"));
    config = json_pack("{s:s, s:{}, s:s, s:[{s:s}], s:s, s:{s:s, s:O}}", "architecture", "",
                       "config", "created", COSIGN_ZERO_TIME, "history", "created",
                       COSIGN_ZERO_TIME, "os", "", "rootfs", "type", "layers", "diff_ids",
                       diff_ids);
    config_text = config ? json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    if (config_text == NULL || put_text(st, config_text, &config_digest, err) < 0)
        return config_text ? -1 : chrun_err_sys(err, ENOMEM, "sign");
    manifest = json_pack("{s:i, s:s, s:{s:s, s:I, s:s}, s:O}", "schemaVersion", 2, "mediaType",
                         CHRUN_MT_OCI_MANIFEST, "config", "mediaType", CHRUN_MT_OCI_CONFIG,
                         "size", (json_int_t) strlen(config_text), "digest", config_digest.str,
                         "layers", layers);
    manifest_text = manifest ? json_dumps(manifest, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (manifest_text == NULL)
        return chrun_err_sys(err, ENOMEM, "sign");
    *ret_size = (int64_t) strlen(manifest_text);
    return put_text(st, manifest_text, ret, err);
}

/* One signing attempt: append to what the .sig artifact ATT->ref holds now;
 * CHRUN_E_EXISTS if it changed before the new one was recorded. */
static int sign_once(struct chrun_store *st, const char *payload,
                     const struct chrun_digest *payload_digest,
                     const struct chrun_cosign_opts *opts, struct chrun_attachment *att,
                     struct chrun_err *err)
{
    json_auto_t *layers = NULL;
    cleanup_free char *b64 = NULL;
    struct chrun_digest prev;
    unsigned char sig[CHRUN_KEY_SIG_MAX];
    size_t sig_len;
    json_t *layer;

    if (existing_layers(st, &att->subject, att->ref, &layers, &prev, err) < 0)
        return -1;
    if (!already_signed(st, layers, payload_digest, opts->key)) {
        if (json_array_size(layers) >= CHRUN_COSIGN_LAYERS_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT, "'%s' already holds %d signatures",
                                 att->ref, CHRUN_COSIGN_LAYERS_MAX);
        if (chrun_key_sign(opts->key, payload, strlen(payload), sig, &sig_len, err) < 0)
            return -1;
        b64 = chrun_key_b64_encode(sig, sig_len);
        layer = b64 ? json_pack("{s:s, s:I, s:s, s:{s:s}}", "mediaType", CHRUN_COSIGN_MT_PAYLOAD,
                                "size", (json_int_t) strlen(payload), "digest",
                                payload_digest->str, "annotations",
                                CHRUN_COSIGN_ANNOTATION_SIGNATURE, b64)
                    : NULL;
        if (layer == NULL || json_array_append_new(layers, layer) < 0)
            return chrun_err_sys(err, ENOMEM, "sign");
    }
    if (write_artifact(st, layers, &att->digest, &att->size, err) < 0)
        return -1;
    return chrun_attach_replace(st, att, prev.str[0] ? &prev : NULL, err);
}

int chrun_cosign_sign_image(struct chrun_store *st, const char *image,
                            const struct chrun_cosign_opts *opts, struct chrun_digest *ret_digest,
                            struct chrun_err *err)
{
    struct chrun_store_image img;
    struct chrun_attachment att = {0};
    struct chrun_ref ref;
    struct chrun_digest payload_digest;
    cleanup_free char *payload = NULL;
    char repo[CHRUN_REF_STR_MAX];
    int rc = -1;

    if (chrun_cosign_annotations_check(opts->annotations, opts->n_annotations, err) < 0 ||
        chrun_store_resolve(st, image, &img, err) < 0)
        return -1;
    if (img.ref[0] == '\0' || chrun_ref_parse(&ref, img.ref, err) < 0)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "image '%s' has no name: cosign signatures name a repository "
                             "(chrun-tag it first)",
                             image);
    chrun_ref_repository(&ref, repo, sizeof(repo));
    att.subject = img.digest;
    snprintf(att.media_type, sizeof(att.media_type), "%s", CHRUN_MT_OCI_MANIFEST);
    if (chrun_attach_tag_name(repo, &img.digest, CHRUN_ATTACH_SUFFIX_SIG, att.ref,
                              sizeof(att.ref), err) < 0 ||
        payload_text(repo, &img.digest, opts, &payload, err) < 0 ||
        put_text(st, payload, &payload_digest, err) < 0)
        return -1;
    /* another chrun-sign may append to the same artifact meanwhile: start
     * over from what it recorded rather than drop its signature */
    for (int attempt = 0; attempt < SIGN_ATTEMPTS_MAX; attempt++) {
        chrun_err_clear(err);
        rc = sign_once(st, payload, &payload_digest, opts, &att, err);
        if (rc == 0 || err->code != CHRUN_E_EXISTS)
            break;
    }
    if (rc < 0)
        return chrun_err_prefix(err, "sign '%s'", image);
    *ret_digest = att.digest;
    return 0;
}
