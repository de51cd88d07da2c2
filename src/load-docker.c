/* chrun_archive_load, docker save archives (manifest.json: Config, Layers,
 * RepoTags per image) and skopeo's dir: transport: the OCI manifest of each
 * docker image is generated with deterministic bytes and staged as a blob. */
#include "load-internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "chrun/image-config.h"
#include "chrun/io.h"
#include "chrun/manifest.h"
#include "chrun/walk.h"
#include "cleanup.h"
#include "util.h"

static const char *layer_media_type(const struct member *m)
{
    switch (load_member_compression(m)) {
    case CHRUN_COMPRESSION_GZIP: return CHRUN_MT_OCI_LAYER_GZIP;
    case CHRUN_COMPRESSION_ZSTD: return CHRUN_MT_OCI_LAYER_ZSTD;
    default: return CHRUN_MT_OCI_LAYER;
    }
}

static json_t *descriptor_json(const char *media_type, const struct member *m)
{
    return json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", m->digest.str, "size",
                     (json_int_t) m->size);
}

static int resolve_docker_image(struct loader *l, json_t *item, struct chrun_err *err)
{
    json_t *layers = json_object_get(item, "Layers");
    json_t *tags = json_object_get(item, "RepoTags");
    const char *config_path = json_string_value(json_object_get(item, "Config"));
    cleanup_json json_t *doc = NULL;
    cleanup_free char *buf = NULL, *text = NULL;
    cleanup_image_config struct chrun_image_config cfg = {0};
    struct member *cm = NULL, *lm = NULL, *mm = NULL;
    json_t *arr, *v;
    size_t i, len;

    if (!json_is_object(item) || config_path == NULL || !json_is_array(layers) ||
        (tags != NULL && !json_is_null(tags) && !json_is_array(tags)))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "not an image entry (needs Config, Layers, RepoTags)");
    if (load_lookup(l, config_path, &cm, err) < 0 ||
        load_read_staged(l, cm, CHRUN_CONFIG_MAX, &buf, &len, err) < 0 ||
        chrun_image_config_parse(&cfg, buf, len, err) < 0)
        return chrun_err_prefix(err, "Config '%s'", config_path);
    cm->keep = true;
    if (cfg.n_diff_ids != json_array_size(layers))
        return chrun_err_set(err, CHRUN_E_INPUT, "config lists %zu diff_ids for %zu layers",
                             cfg.n_diff_ids, json_array_size(layers));
    arr = json_array();
    doc = json_pack("{s:i, s:s, s:o, s:o}", "schemaVersion", 2, "mediaType",
                    CHRUN_MT_OCI_MANIFEST, "config", descriptor_json(CHRUN_MT_OCI_CONFIG, cm),
                    "layers", arr);
    if (doc == NULL)
        return chrun_err_sys(err, ENOMEM, "build manifest");
    json_array_foreach (layers, i, v) {
        const char *p = json_string_value(v);
        if (p == NULL)
            return chrun_err_set(err, CHRUN_E_INPUT, "Layers[%zu] is not a string", i);
        if (load_lookup(l, p, &lm, err) < 0 ||
            load_check_diff_id(l, lm, &cfg.diff_ids[i], true, err) < 0)
            return chrun_err_prefix(err, "Layers[%zu] '%s'", i, p);
        lm->keep = true;
        if (json_array_append_new(arr, descriptor_json(layer_media_type(lm), lm)) < 0)
            return chrun_err_sys(err, ENOMEM, "build manifest");
    }
    /* Deterministic bytes: fixed key order, compact, so the digest is the
     * same on every load of the same archive. */
    text = json_dumps(doc, JSON_COMPACT);
    if (text == NULL)
        return chrun_err_sys(err, ENOMEM, "build manifest");
    if (load_stage_generated(l, text, strlen(text), &mm, err) < 0)
        return -1;
    json_array_foreach (tags, i, v) {
        const char *t = json_string_value(v);
        if (t == NULL)
            return chrun_err_set(err, CHRUN_E_INPUT, "RepoTags[%zu] is not a string", i);
        if (load_add_tag(l, t, CHRUN_MT_OCI_MANIFEST, &mm->digest, (int64_t) mm->size, err) < 0)
            return chrun_err_prefix(err, "RepoTags[%zu]", i);
    }
    return load_add_result(l, &mm->digest, err);
}

/* skopeo's dir: transport: manifest.json is the image manifest itself, kept
 * byte for byte, and the blobs are <hex> files beside it. It has no name. */
static int resolve_skopeo_dir(struct loader *l, json_t *doc, struct chrun_err *err)
{
    struct chrun_descriptor d = {0};
    const char *mt = json_string_value(json_object_get(doc, "mediaType"));
    struct member *m;

    l->blob_dir = "";
    if (load_stage_generated(l, l->manifest.buf, l->manifest.len, &m, err) < 0)
        return -1;
    snprintf(d.media_type, sizeof(d.media_type), "%s", mt ? mt : CHRUN_MT_OCI_MANIFEST);
    d.digest = m->digest;
    d.size = (int64_t) m->size;
    l->root_doc = &l->manifest;
    if (chrun_walk_from(&l->walk, &d, err) < 0)
        return chrun_err_prefix(err, "manifest.json");
    return load_add_result(l, &d.digest, err);
}

int load_resolve_docker(struct loader *l, struct chrun_err *err)
{
    cleanup_json json_t *doc = NULL;
    json_t *item;
    size_t i;

    if (load_parse_json_doc(l->manifest.buf, l->manifest.len, "manifest.json", &doc, err) < 0)
        return -1;
    if (json_is_object(doc) && json_object_get(doc, "schemaVersion") != NULL)
        return resolve_skopeo_dir(l, doc, err);
    if (!json_is_array(doc))
        return chrun_err_set(err, CHRUN_E_INPUT, "manifest.json is not an array");
    if (json_array_size(doc) == 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "manifest.json lists no images");
    json_array_foreach (doc, i, item)
        if (resolve_docker_image(l, item, err) < 0)
            return chrun_err_prefix(err, "manifest.json[%zu]", i);
    return 0;
}
