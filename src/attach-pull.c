/* chrun-pull --signatures: cosign tags and OCI referrers of an image. */
#include "attach-pull.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chrun/attach.h"
#include "chrun/cosign.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/ref.h"
#include "cleanup.h"
#include "util.h"

#define ACCEPT_MANIFEST "Accept: " CHRUN_MT_OCI_MANIFEST ", " CHRUN_MT_DOCKER_MANIFEST
#define ACCEPT_INDEX "Accept: " CHRUN_MT_OCI_INDEX

static void cleanup_reply_fn(struct registry_reply *r)
{
    registry_reply_release(r);
}
#define cleanup_reply __attribute__((cleanup(cleanup_reply_fn)))

/* A blob fetched and checked, waiting to be stored. */
struct held_blob {
    struct chrun_digest digest;
    char *buf;
    size_t len;
};

/* Everything fetched for one image, written only when all is good. */
struct haul {
    struct registry_client *c;
    const struct chrun_digest *subject;
    struct held_blob *blobs; /* configs and layers, then manifests */
    size_t n_blobs, cap_blobs;
    struct chrun_attachment *atts;
    size_t n_atts, cap_atts;
    uint64_t total;
};

static void haul_release(struct haul *h)
{
    for (size_t i = 0; i < h->n_blobs; i++)
        free(h->blobs[i].buf);
    free(h->blobs);
    free(h->atts);
}

static bool haul_has(const struct haul *h, const struct chrun_digest *d)
{
    for (size_t i = 0; i < h->n_blobs; i++)
        if (streq(h->blobs[i].digest.str, d->str))
            return true;
    return false;
}

/* Keep BUF (taken over) as blob D. */
static int haul_keep(struct haul *h, const struct chrun_digest *d, char **buf, size_t len,
                     struct chrun_err *err)
{
    struct held_blob *p;
    if (h->total + len > CHRUN_ATTACH_TOTAL_MAX)
        return chrun_err_sys(err, EFBIG, "attachments of %s: more than %d bytes in all",
                             h->subject->str, CHRUN_ATTACH_TOTAL_MAX);
    if (chrun_grow(&h->blobs, &h->cap_blobs, h->n_blobs + 1, sizeof(*h->blobs), err) < 0)
        return chrun_err_prefix(err, "attachments");
    p = h->blobs;
    /* a reply buffer is as big as its cap: keep only the bytes */
    char *fit = realloc(*buf, len + 1);
    if (fit != NULL)
        *buf = fit;
    p[h->n_blobs].digest = *d;
    p[h->n_blobs].buf = take_ptr(*buf);
    p[h->n_blobs++].len = len;
    h->total += len;
    return 0;
}

/* GET PATH (after /v2/<repo>/) of at most MAX bytes into R (status and,
 * for a 200, the body). Statuses other than 200 and 404 fail, unless
 * ANY_4XX: then every 4xx is an answer too. */
static int get_status(struct haul *h, const char *path, const char *accept, const char *what,
                      size_t max, bool any_4xx, struct registry_reply *r, struct chrun_err *err)
{
    char url[REGISTRY_URL_MAX * 2];
    struct registry_req rq = {.what = what, .url = url, .accept = accept, .max = max};
    snprintf(url, sizeof(url), "%s/v2/%s/%s", h->c->base, h->c->repo, path);
    if (registry_request(h->c, &rq, r, err) < 0)
        return -1;
    if (r->resp.status != 200 && r->resp.status != 404 &&
        !(any_4xx && r->resp.status >= 400 && r->resp.status < 500))
        return chrun_err_set(err, CHRUN_E_NETWORK, "%s: registry %s answered HTTP %ld", what,
                             h->c->host, r->resp.status);
    return 0;
}

static int get(struct haul *h, const char *path, const char *accept, const char *what, size_t max,
               struct registry_reply *r, struct chrun_err *err)
{
    return get_status(h, path, accept, what, max, false, r, err);
}

/* The referrers API: registries without it answer 404, or, older ones,
 * 400, 405 and the like; any 4xx means "use the fallback tag". */
static int get_referrers_api(struct haul *h, const char *what, struct registry_reply *r,
                             struct chrun_err *err)
{
    char path[CHRUN_DIGEST_STR_MAX + 32];
    snprintf(path, sizeof(path), "referrers/%s", h->subject->str);
    return get_status(h, path, ACCEPT_INDEX, what, CHRUN_MANIFEST_MAX, true, r, err);
}

/* The digest of R's body, checked against EXPECTED (may be NULL) and the
 * registry's Docker-Content-Digest. */
static int reply_digest(struct registry_reply *r, const struct chrun_digest *expected,
                        const char *what, struct chrun_digest *ret, struct chrun_err *err)
{
    if (chrun_digest_of_buffer(ret, r->body ? r->body : "", r->len, err) < 0)
        return -1;
    if (expected != NULL && !streq(expected->str, ret->str))
        return chrun_err_set(err, CHRUN_E_DIGEST, "%s: digest mismatch: content is %s", what,
                             ret->str);
    if (r->resp.docker_digest[0] && str_has_prefix(r->resp.docker_digest, "sha256:") &&
        !streq(r->resp.docker_digest, ret->str)) {
        chrun_sanitize(r->resp.docker_digest);
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "%s: Docker-Content-Digest %.80s does not match the content (%s)",
                             what, r->resp.docker_digest, ret->str);
    }
    return 0;
}

/* Fetch blob D (SIZE bytes, at most MAX) unless the store or the haul has it. */
static int fetch_blob(struct haul *h, const struct chrun_descriptor *d, size_t max,
                      const char *art, struct chrun_err *err)
{
    cleanup_reply struct registry_reply r = {0};
    struct chrun_digest got;
    char path[CHRUN_DIGEST_STR_MAX + 8], what[256];

    snprintf(what, sizeof(what), "%s: blob %s", art, d->digest.str);
    if (d->size < 0 || (uint64_t) d->size > max)
        return chrun_err_sys(err, EFBIG, "%s: %" PRId64 " bytes, more than %zu", what, d->size,
                             max);
    if (chrun_store_has_blob(h->c->st, &d->digest) || haul_has(h, &d->digest))
        return 0;
    snprintf(path, sizeof(path), "blobs/%s", d->digest.str);
    /* the reply buffer is sized by the cap: ask for what the descriptor says */
    if (get(h, path, NULL, what, (size_t) d->size, &r, err) < 0)
        return -1;
    if (r.resp.status == 404)
        return chrun_err_set(err, CHRUN_E_NOTFOUND, "%s: not in the registry", what);
    if (reply_digest(&r, &d->digest, what, &got, err) < 0)
        return -1;
    if ((int64_t) r.len != d->size)
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "%s: size mismatch: got %zu bytes, descriptor says %" PRId64, what,
                             r.len, d->size);
    return haul_keep(h, &d->digest, &r.body, r.len, err);
}

/* Take the artifact manifest in R (fetched as WHAT, digest D) with its
 * config and layers, to be recorded under NAME ("" for a referrer). */
static int take_artifact(struct haul *h, struct registry_reply *r, const struct chrun_digest *d,
                         const char *name, bool is_sig, const char *artifact_type,
                         const char *what, struct chrun_err *err)
{
    struct chrun_manifest m;
    struct chrun_attachment *a;
    size_t layer_max = is_sig ? CHRUN_COSIGN_PAYLOAD_MAX : CHRUN_ATTACH_BLOB_MAX;
    int rc = 0;

    if (chrun_manifest_parse(&m, r->body, r->len, NULL, err) < 0)
        return chrun_err_prefix(err, "%s", what);
    /* SPEC "Bad input": an artifact is one manifest, of bounded size */
    if (m.is_index)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "%s is an index, not a signature manifest", what);
    else if (m.n_layers > CHRUN_COSIGN_LAYERS_MAX)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "%s has %zu layers, more than %d", what,
                           m.n_layers, CHRUN_COSIGN_LAYERS_MAX);
    if (rc == 0)
        rc = fetch_blob(h, &m.config, CHRUN_CONFIG_MAX, what, err);
    for (size_t i = 0; rc == 0 && i < m.n_layers; i++)
        rc = fetch_blob(h, &m.layers[i], layer_max, what, err);
    if (rc == 0 && chrun_grow(&h->atts, &h->cap_atts, h->n_atts + 1, sizeof(*h->atts), err) < 0)
        rc = chrun_err_prefix(err, "attachments");
    if (rc == 0) {
        a = &h->atts[h->n_atts++];
        memset(a, 0, sizeof(*a));
        a->subject = *h->subject;
        a->digest = *d;
        a->size = (int64_t) r->len;
        snprintf(a->media_type, sizeof(a->media_type), "%s", m.media_type);
        snprintf(a->ref, sizeof(a->ref), "%s", name);
        snprintf(a->artifact_type, sizeof(a->artifact_type), "%s", artifact_type);
        rc = haul_keep(h, d, &r->body, r->len, err);
    }
    chrun_manifest_release(&m);
    return rc;
}

/* cosign's tag sha256-<hex>SUFFIX: absent is fine. */
static int fetch_tag(struct haul *h, const char *suffix, struct chrun_err *err)
{
    cleanup_reply struct registry_reply r = {0};
    struct chrun_digest d;
    char tag[CHRUN_REF_TAG_MAX + 1], path[CHRUN_REF_TAG_MAX + 16], name[CHRUN_REF_STR_MAX];
    char repo[CHRUN_REF_STR_MAX], what[CHRUN_REF_STR_MAX + 32];
    struct chrun_ref ref;

    /* named after the image's repository as the user wrote it, also when a
     * mirror served it */
    if (chrun_ref_parse(&ref, h->c->display, err) < 0)
        return -1;
    chrun_ref_repository(&ref, repo, sizeof(repo));
    if (chrun_attach_tag_name(NULL, h->subject, suffix, tag, sizeof(tag), err) < 0 ||
        chrun_attach_tag_name(repo, h->subject, suffix, name, sizeof(name), err) < 0)
        return -1;
    snprintf(what, sizeof(what), "'%s'", name);
    snprintf(path, sizeof(path), "manifests/%s", tag);
    if (get(h, path, ACCEPT_MANIFEST ", " CHRUN_MT_OCI_INDEX, what, CHRUN_MANIFEST_MAX, &r,
            err) < 0)
        return -1;
    if (r.resp.status == 404 || r.body == NULL) {
        chrun_log_debug("%s: none", what);
        return 0;
    }
    if (reply_digest(&r, NULL, what, &d, err) < 0)
        return -1;
    return take_artifact(h, &r, &d, name, streq(suffix, CHRUN_ATTACH_SUFFIX_SIG), "", what, err);
}

/* One referrer listed by the API or the fallback index. */
static int fetch_referrer(struct haul *h, const struct chrun_descriptor *d, json_t *entry,
                          struct chrun_err *err)
{
    cleanup_reply struct registry_reply r = {0};
    struct chrun_digest got;
    const char *at = json_string_value(json_object_get(entry, "artifactType"));
    char path[CHRUN_DIGEST_STR_MAX + 16], what[CHRUN_DIGEST_STR_MAX + 32];

    snprintf(what, sizeof(what), "referrer %s", d->digest.str);
    if (chrun_manifest_type_is_index(d->media_type)) {
        chrun_log_warn("%s of %s is an index: not taken", what, h->subject->str);
        return 0;
    }
    if (haul_has(h, &d->digest))
        return 0; /* listed twice */
    if (chrun_store_has_blob(h->c->st, &d->digest)) {
        /* stored already: read it back to record it */
        if (chrun_store_read_blob(h->c->st, &d->digest, CHRUN_MANIFEST_MAX, &r.body, &r.len,
                                  err) < 0)
            return -1;
    } else {
        snprintf(path, sizeof(path), "manifests/%s", d->digest.str);
        if (get(h, path, ACCEPT_MANIFEST, what, CHRUN_MANIFEST_MAX, &r, err) < 0)
            return -1;
        if (r.resp.status == 404 || r.body == NULL)
            return chrun_err_set(err, CHRUN_E_NOTFOUND, "%s: listed but not in the registry",
                                 what);
    }
    if (reply_digest(&r, &d->digest, what, &got, err) < 0)
        return -1;
    return take_artifact(h, &r, &got, "",
                         at != NULL && streq(at, CHRUN_COSIGN_ARTIFACT_SIG),
                         at && chrun_manifest_media_type_valid(at) ? at : "", what, err);
}

/* GET /v2/<name>/referrers/<digest>; on 404 the fallback tag sha256-<hex>. */
static int fetch_referrers(struct haul *h, struct chrun_err *err)
{
    cleanup_reply struct registry_reply r = {0}, fallback = {0};
    struct registry_reply *list = &r;
    struct chrun_manifest idx;
    char path[CHRUN_DIGEST_STR_MAX + 32], what[CHRUN_DIGEST_STR_MAX + 32];
    int rc = 0;

    snprintf(what, sizeof(what), "referrers of %s", h->subject->str);
    if (get_referrers_api(h, what, &r, err) < 0)
        return -1;
    if (r.resp.status != 200 || r.body == NULL) {
        snprintf(path, sizeof(path), "manifests/sha256-%s", chrun_digest_hex(h->subject));
        if (get(h, path, ACCEPT_INDEX, what, CHRUN_MANIFEST_MAX, &fallback, err) < 0)
            return -1;
        if (fallback.resp.status == 404 || fallback.body == NULL)
            return 0;
        list = &fallback;
    }
    if (chrun_manifest_parse(&idx, list->body, list->len, CHRUN_MT_OCI_INDEX, err) < 0)
        return chrun_err_prefix(err, "%s", what);
    if (idx.n_manifests > CHRUN_ATTACH_REFERRERS_MAX)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "%s: %zu listed, more than %d", what,
                           idx.n_manifests, CHRUN_ATTACH_REFERRERS_MAX);
    for (size_t i = 0; rc == 0 && i < idx.n_manifests; i++)
        rc = fetch_referrer(h, &idx.manifests[i],
                            json_array_get(json_object_get(idx.json, "manifests"), i), err);
    chrun_manifest_release(&idx);
    return rc;
}

int attach_referrers_fallback(struct registry_client *c, const struct chrun_digest *subject,
                              const struct chrun_attachment *atts, size_t n, char **ret_text,
                              struct chrun_err *err)
{
    cleanup_reply struct registry_reply api = {0}, old = {0};
    struct haul h = {.c = c, .subject = subject};
    json_auto_t *list = json_array(), *doc = NULL;
    char path[CHRUN_DIGEST_STR_MAX + 32], what[CHRUN_DIGEST_STR_MAX + 32];
    json_t *e;
    size_t i;

    *ret_text = NULL;
    snprintf(what, sizeof(what), "referrers of %s", subject->str);
    if (get_referrers_api(&h, what, &api, err) < 0)
        return -1;
    if (api.resp.status == 200)
        return 0;
    snprintf(path, sizeof(path), "manifests/sha256-%s", chrun_digest_hex(subject));
    if (get(&h, path, ACCEPT_INDEX, what, CHRUN_MANIFEST_MAX, &old, err) < 0)
        return -1;
    if (list == NULL)
        return chrun_err_sys(err, ENOMEM, "%s", what);
    if (old.resp.status == 200 && old.body != NULL) {
        json_auto_t *prev = json_loadb(old.body, old.len, JSON_REJECT_DUPLICATES, NULL);
        json_array_foreach (json_object_get(prev, "manifests"), i, e) {
            const char *d = json_string_value(json_object_get(e, "digest"));
            bool ours = false;
            for (size_t j = 0; d != NULL && j < n; j++)
                ours |= streq(atts[j].digest.str, d);
            if (d != NULL && !ours && json_array_size(list) < CHRUN_ATTACH_REFERRERS_MAX)
                json_array_append(list, e);
        }
    }
    for (size_t j = 0; j < n; j++) {
        e = json_pack("{s:s, s:s, s:I}", "mediaType", atts[j].media_type, "digest",
                      atts[j].digest.str, "size", (json_int_t) atts[j].size);
        if (e != NULL && atts[j].artifact_type[0])
            json_object_set_new(e, "artifactType", json_string(atts[j].artifact_type));
        if (e == NULL || json_array_append_new(list, e) < 0)
            return chrun_err_sys(err, ENOMEM, "%s", what);
    }
    doc = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType", CHRUN_MT_OCI_INDEX,
                    "manifests", list);
    *ret_text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (*ret_text == NULL)
        return chrun_err_sys(err, ENOMEM, "%s", what);
    return 0;
}

/* Write the held blobs (the manifests last: they were kept after their
 * blobs) and record the attachments. */
static int publish(struct haul *h, struct chrun_err *err)
{
    for (size_t i = 0; i < h->n_blobs; i++)
        if (chrun_store_put_blob(h->c->st, h->blobs[i].buf, h->blobs[i].len,
                                 &h->blobs[i].digest, NULL, err) < 0)
            return -1;
    for (size_t i = 0; i < h->n_atts; i++) {
        if (chrun_attach_add(h->c->st, &h->atts[i], err) < 0)
            return -1;
        chrun_log_info("%s %s of %s",
                       chrun_attach_kind_name(chrun_attach_kind(&h->atts[i])),
                       h->atts[i].digest.str, h->subject->str);
    }
    return 0;
}

int attach_pull(struct registry_client *c, const struct chrun_digest *subject,
                struct chrun_err *err)
{
    static const char *const suffixes[] = {CHRUN_ATTACH_SUFFIX_SIG, CHRUN_ATTACH_SUFFIX_ATT,
                                           CHRUN_ATTACH_SUFFIX_SBOM};
    struct haul h = {.c = c, .subject = subject};
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(suffixes); i++)
        rc = fetch_tag(&h, suffixes[i], err);
    if (rc == 0)
        rc = fetch_referrers(&h, err);
    if (rc == 0)
        rc = publish(&h, err);
    haul_release(&h);
    if (rc < 0)
        return chrun_err_prefix(err, "%s: signatures", c->display);
    return 0;
}
