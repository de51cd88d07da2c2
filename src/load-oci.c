/* chrun_archive_load, OCI image layouts (a directory or an oci-archive):
 * index.json and oci-layout checked, every image's graph walked over the
 * staged blobs, names taken from the index entries, attachments and delta
 * archives recognized. */
#include "load-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "chrun/attach.h"
#include "chrun/image-config.h"
#include "chrun/image.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/ref.h"
#include "chrun/walk.h"
#include "cleanup.h"
#include "util.h"

#define ANNOTATION_CONTAINERD_NAME "io.containerd.image.name"

static bool is_image_config_type(const char *mt)
{
    return chrun_image_is_config_type(mt);
}

/* Record that the image being checked needs blob D, which neither the
 * archive nor the store has: "; IMAGE: D1, D2" */
static int note_missing(struct loader *l, const struct chrun_digest *d, struct chrun_err *err)
{
    size_t add = strlen(l->cur_image) + CHRUN_DIGEST_STR_MAX + 8;
    const char *last_image = NULL;
    char *p;
    int n;
    if (chrun_grow(&l->missing, &l->cap_missing, l->missing_len + add, 1, err) < 0)
        return chrun_err_prefix(err, "load");
    p = l->missing;
    p[l->missing_len] = '\0';
    if (strstr(p, d->str) != NULL) /* checked twice per layer: listed once */
        return 0;
    if (l->missing_len > 0)
        last_image = l->last_missing_image;
    if (last_image == l->cur_image)
        n = snprintf(p + l->missing_len, add, ", %s", d->str);
    else
        n = snprintf(p + l->missing_len, add, "%s%s: %s", l->missing_len ? "; " : "",
                     l->cur_image, d->str);
    l->missing_len += (size_t) n;
    l->last_missing_image = l->cur_image;
    return 0;
}

/* A layer of a delta archive may be absent when the store has it; one the
 * store lacks too is recorded in l->missing (reported before anything is
 * published). *RET is NULL then. */
static int lookup_layer(struct loader *l, const struct chrun_descriptor *d, struct member **ret,
                        struct chrun_err *err)
{
    char path[32 + CHRUN_DIGEST_HEX_LEN];
    struct chrun_err absent = CHRUN_ERR_INIT;
    struct member *m;

    *ret = NULL;
    snprintf(path, sizeof(path), "%s%s", l->blob_dir, chrun_digest_hex(&d->digest));
    if (l->delta && load_lookup(l, path, &m, &absent) < 0 &&
        (absent.code == CHRUN_E_NOTFOUND || absent.errnum == ENOENT)) {
        if (chrun_store_has_blob(l->st, &d->digest))
            return 0;
        return note_missing(l, &d->digest, err);
    }
    return load_lookup_blob(l, &d->digest, d->size, ret, err);
}

static int resolve_oci_manifest(struct loader *l, const struct chrun_manifest *mf,
                                struct chrun_err *err)
{
    struct chrun_image_config cfg;
    cleanup_free char *buf = NULL;
    struct member *m;
    size_t len;

    if (load_lookup_blob(l, &mf->config.digest, mf->config.size, &m, err) < 0)
        return chrun_err_prefix(err, "config");
    for (size_t i = 0; i < mf->n_layers; i++) {
        enum chrun_compression want;
        if (lookup_layer(l, &mf->layers[i], &m, err) < 0)
            return chrun_err_prefix(err, "layer %zu", i + 1);
        /* A layer whose bytes are not what its media type says would only
         * fail later, in unpack, after the image was named. */
        if (m != NULL &&
            chrun_manifest_layer_compression(mf->layers[i].media_type, &want, err) == 0 &&
            want != CHRUN_COMPRESSION_NONE && load_member_compression(m) != want)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "layer %zu: %s is not compressed as its media type '%s' says",
                                 i + 1, mf->layers[i].digest.str, mf->layers[i].media_type);
    }
    if (!is_image_config_type(mf->config.media_type))
        return 0;
    if (load_lookup_blob(l, &mf->config.digest, mf->config.size, &m, err) < 0 ||
        load_read_staged(l, m, CHRUN_CONFIG_MAX, &buf, &len, err) < 0 ||
        chrun_image_config_parse(&cfg, buf, len, err) < 0)
        return chrun_err_prefix(err, "config %s", mf->config.digest.str);
    if (cfg.n_diff_ids != mf->n_layers) {
        chrun_image_config_release(&cfg);
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "config %s lists %zu diff_ids for %zu layers",
                             mf->config.digest.str, cfg.n_diff_ids, mf->n_layers);
    }
    for (size_t i = 0; i < mf->n_layers; i++) {
        /* a layer from the store was checked when it arrived there */
        if (lookup_layer(l, &mf->layers[i], &m, err) < 0 ||
            (m != NULL && load_check_diff_id(l, m, &cfg.diff_ids[i], false, err) < 0)) {
            chrun_image_config_release(&cfg);
            return chrun_err_prefix(err, "layer %zu", i + 1);
        }
    }
    chrun_image_config_release(&cfg);
    return 0;
}

/* The walk of a load: documents come from the staging directory; every
 * blob an image names must be in the archive, of its declared size. */
static int load_read(void *ctx, const struct chrun_walk_node *n, char **ret_buf, size_t *ret_len,
                     struct chrun_err *err)
{
    struct loader *l = ctx;
    struct member *m;
    if (n->parent == NULL && l->root_doc != NULL) {
        *ret_buf = malloc(l->root_doc->len ? l->root_doc->len : 1);
        if (*ret_buf == NULL)
            return chrun_err_sys(err, ENOMEM, "load");
        memcpy(*ret_buf, l->root_doc->buf, l->root_doc->len);
        *ret_len = l->root_doc->len;
        return 0;
    }
    if (load_lookup_blob(l, &n->desc->digest, n->desc->size, &m, err) < 0)
        return -1;
    return load_read_staged(l, m, CHRUN_MANIFEST_MAX, ret_buf, ret_len, err);
}

static int load_visit(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct loader *l = ctx;
    struct member *m;
    if (n->kind != CHRUN_WALK_OTHER)
        return CHRUN_WALK_CONTINUE; /* documents: read; a manifest's blobs: on leave */
    return load_lookup_blob(l, &n->desc->digest, n->desc->size, &m, err);
}

static int load_leave(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    if (!n->m->is_index && resolve_oci_manifest(ctx, n->m, err) < 0)
        return chrun_err_prefix(err, "manifest %s", n->desc->digest.str);
    return 0;
}

const struct chrun_walk_ops load_walk_ops = {load_read, load_visit, load_leave};

/* A ref.name that is only a tag ("latest", "1.0", "v2": what umoci and skopeo
 * write when given a tag) names no repository. */
static bool looks_like_bare_tag(const char *s)
{
    if (strpbrk(s, "/:@") != NULL)
        return false;
    return streq(s, "latest") || (s[0] >= '0' && s[0] <= '9') ||
           (s[0] == 'v' && s[1] >= '0' && s[1] <= '9');
}

/* The name an index.json entry gives its image, or NULL. The
 * io.containerd.image.name annotation (docker 25+, nerdctl) is a full
 * reference. A ref.name that parses as one ("fixture/basic:1", or "basic" as
 * given to `skopeo copy ... oci-archive:F:basic`) is what the user typed when
 * making the archive and is kept, normalized as everywhere; a bare tag is
 * not a name, so that image is loaded without one. */
static const char *entry_name(json_t *entry)
{
    json_t *ann = json_object_get(entry, "annotations");
    const char *cd = json_string_value(json_object_get(ann, ANNOTATION_CONTAINERD_NAME));
    const char *rn = json_string_value(json_object_get(ann, CHRUN_ANNOTATION_REF_NAME));
    struct chrun_ref r;
    struct chrun_err ignored = CHRUN_ERR_INIT;
    if (cd != NULL && *cd && chrun_ref_parse(&r, cd, &ignored) == 0)
        return cd;
    if (rn == NULL || *rn == '\0')
        return NULL;
    if (!looks_like_bare_tag(rn) && chrun_ref_parse(&r, rn, &ignored) == 0)
        return rn;
    chrun_log_info("'%s' is a tag without a repository: image loaded without a name", rn);
    return NULL;
}

/* An attachment listed in the archive's index.json: recorded with its
 * annotations once everything is committed; not an image of the result. */
static int add_attachment(struct loader *l, json_t *entry, struct chrun_err *err)
{
    if (chrun_grow(&l->atts, &l->cap_atts, l->n_atts + 1, sizeof(*l->atts), err) < 0)
        return chrun_err_prefix(err, "attachments");
    if (chrun_attach_from_entry(entry, &l->atts[l->n_atts], err) < 0)
        return -1;
    l->n_atts++;
    return 0;
}

int load_resolve_oci(struct loader *l, struct chrun_err *err)
{
    const char *delta;
    struct chrun_manifest idx;
    cleanup_json json_t *layout = NULL;
    json_t *entries;
    int rc = 0;

    if (l->layout.present) {
        const char *v;
        if (load_parse_json_doc(l->layout.buf, l->layout.len, "oci-layout", &layout, err) < 0)
            return -1;
        v = json_string_value(json_object_get(layout, "imageLayoutVersion"));
        if (v == NULL)
            return chrun_err_set(err, CHRUN_E_INPUT, "oci-layout: no imageLayoutVersion");
        if (!str_has_prefix(v, "1."))
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "oci-layout: unsupported imageLayoutVersion '%.32s'", v);
    }
    if (chrun_manifest_parse(&idx, l->index.buf, l->index.len, CHRUN_MT_OCI_INDEX, err) < 0)
        return chrun_err_prefix(err, "index.json");
    if (!idx.is_index) {
        chrun_manifest_release(&idx);
        return chrun_err_set(err, CHRUN_E_INPUT, "index.json: not an image index");
    }
    entries = json_object_get(idx.json, "manifests");
    delta = json_string_value(
        json_object_get(json_object_get(idx.json, "annotations"), CHRUN_ANNOTATION_DELTA));
    l->delta = delta != NULL && streq(delta, "true");
    for (size_t i = 0; i < idx.n_manifests && rc == 0; i++) {
        const struct chrun_descriptor *d = &idx.manifests[i];
        const char *name = NULL;
        if (chrun_attach_entry_is_attachment(json_array_get(entries, i))) {
            l->cur_image = d->digest.str;
            rc = chrun_walk_from(&l->walk, d, err);
            if (rc == 0)
                rc = add_attachment(l, json_array_get(entries, i), err);
            if (rc < 0)
                chrun_err_prefix(err, "index.json manifests[%zu]", i);
            continue;
        }
        name = entry_name(json_array_get(entries, i));
        l->cur_image = name != NULL ? name : d->digest.str;
        rc = chrun_walk_from(&l->walk, d, err);
        if (rc == 0 && name != NULL)
            rc = load_add_tag(l, name, d->media_type, &d->digest, d->size, err);
        if (rc == 0)
            rc = load_add_result(l, &d->digest, err);
        if (rc < 0)
            chrun_err_prefix(err, "index.json manifests[%zu]", i);
    }
    if (rc == 0 && idx.n_manifests == 0)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "index.json lists no images");
    /* SPEC chrun-load: a delta loads only if every blob is somewhere */
    if (rc == 0 && l->missing != NULL)
        rc = chrun_err_set(err, CHRUN_E_NOTFOUND,
                           "delta archive: blobs in neither the archive nor the store: %.900s",
                           l->missing);
    chrun_manifest_release(&idx);
    return rc;
}
