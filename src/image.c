#include "chrun/image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chrun/image-config.h"
#include "chrun/manifest.h"
#include "cleanup.h"
#include "util.h"

int chrun_image_tag(struct chrun_store *st, const char *image, const char *newref,
                    char *ret_full, size_t size, struct chrun_err *err)
{
    struct chrun_store_image img;
    struct chrun_ref ref;
    char full[CHRUN_REF_STR_MAX];

    if (chrun_ref_parse(&ref, newref, err) < 0)
        return -1;
    /* A name that pins a digest would claim a manifest it may not name (docker refuses too). */
    if (ref.digest[0] != '\0')
        return chrun_err_set(err, CHRUN_E_USAGE, "cannot tag with a digest reference '%s'",
                             newref);
    if (chrun_store_resolve(st, image, &img, err) < 0)
        return -1;
    if (img.media_type[0] == '\0') {
        struct chrun_manifest m;
        if (chrun_manifest_load(&m, st, &img.digest, NULL, err) < 0)
            return -1;
        snprintf(img.media_type, sizeof(img.media_type), "%s", m.media_type);
        chrun_manifest_release(&m);
    }
    chrun_ref_format(&ref, full, sizeof(full));
    if (chrun_store_tag(st, full, img.media_type, &img.digest, img.size, err) < 0)
        return chrun_err_prefix(err, "tag '%s'", full);
    snprintf(ret_full, size, "%s", full);
    return 0;
}

int chrun_image_untag(struct chrun_store *st, const char *refstr, char *ret_full, size_t size,
                      struct chrun_err *err)
{
    struct chrun_ref ref;
    char full[CHRUN_REF_STR_MAX];
    if (chrun_digest_is_valid(refstr))
        return chrun_err_set(err, CHRUN_E_USAGE, "'%s' is a digest, not a name: only names are removed",
                             refstr);
    if (chrun_ref_parse(&ref, refstr, err) < 0)
        return -1;
    chrun_ref_format(&ref, full, sizeof(full));
    if (chrun_store_untag(st, full, err) < 0)
        return -1;
    snprintf(ret_full, size, "%s", full);
    return 0;
}

static void describe(struct chrun_store *st, struct chrun_image_info *info)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_manifest m;
    struct chrun_image_config cfg;
    int64_t total;

    info->size_bytes = -1;
    if (chrun_manifest_load_image(&m, st, &info->image, NULL, NULL, &err) < 0)
        return;
    total = info->image.size + m.config.size;
    for (size_t i = 0; i < m.n_layers; i++)
        total += m.layers[i].size;
    info->size_bytes = total;
    if (chrun_image_config_load(&cfg, st, &m.config.digest, &err) == 0) {
        const char *created = json_string_value(json_object_get(cfg.json, "created"));
        const char *os = json_string_value(json_object_get(cfg.json, "os"));
        const char *arch = json_string_value(json_object_get(cfg.json, "architecture"));
        const char *variant = json_string_value(json_object_get(cfg.json, "variant"));
        snprintf(info->created, sizeof(info->created), "%s", created ? created : "");
        if (os && arch)
            snprintf(info->platform, sizeof(info->platform), "%s/%s%s%s", os, arch,
                     variant ? "/" : "", variant ? variant : "");
        chrun_image_config_release(&cfg);
    }
    chrun_manifest_release(&m);
}

int chrun_image_list(struct chrun_store *st, struct chrun_image_info **ret, size_t *ret_n,
                     struct chrun_err *err)
{
    cleanup_free struct chrun_store_image *imgs = NULL;
    struct chrun_image_info *infos;
    size_t n, out = 0;

    if (chrun_store_list(st, &imgs, &n, err) < 0)
        return -1;
    infos = calloc(n + 1, sizeof(*infos));
    if (infos == NULL)
        return chrun_err_sys(err, ENOMEM, "list images");
    for (size_t i = 0; i < n; i++) {
        if (imgs[i].ref[0] == '\0')
            continue;
        infos[out].image = imgs[i];
        describe(st, &infos[out]);
        out++;
    }
    *ret = infos;
    *ret_n = out;
    return 0;
}

int chrun_image_inspect(struct chrun_store *st, const char *image, const char *platform,
                        json_t **ret, struct chrun_err *err)
{
    struct chrun_store_image img;
    struct chrun_manifest top, m;
    struct chrun_image_config cfg;
    struct chrun_digest digest;
    cleanup_json json_t *out = NULL;
    bool is_index;

    if (chrun_store_resolve(st, image, &img, err) < 0)
        return -1;
    if (chrun_manifest_load(&top, st, &img.digest, img.media_type[0] ? img.media_type : NULL,
                            err) < 0)
        return -1;
    out = json_pack("{s:s, s:s, s:s}", "Ref", img.ref, "Digest", img.digest.str, "MediaType",
                    top.media_type);
    if (out == NULL) {
        chrun_manifest_release(&top);
        return chrun_err_sys(err, ENOMEM, "inspect");
    }
    is_index = top.is_index;
    if (is_index)
        json_object_set(out, "Index", top.json);
    chrun_manifest_release(&top);
    if (chrun_manifest_load_image(&m, st, &img, platform, &digest, err) < 0)
        return -1;
    json_object_set(out, "Manifest", m.json);
    if (is_index)
        json_object_set_new(out, "ManifestDigest", json_string(digest.str));
    if (chrun_image_config_load(&cfg, st, &m.config.digest, err) < 0) {
        chrun_manifest_release(&m);
        return -1;
    }
    json_object_set(out, "Config", cfg.json);
    chrun_image_config_release(&cfg);
    chrun_manifest_release(&m);
    *ret = take_ptr(out);
    return 0;
}

bool chrun_image_is_config_type(const char *media_type)
{
    return streq(media_type, CHRUN_MT_OCI_CONFIG) || streq(media_type, CHRUN_MT_DOCKER_CONFIG);
}

int chrun_image_load_runnable(struct chrun_store *st, const char *image, const char *platform,
                              struct chrun_manifest *m, struct chrun_store_image *ret_img,
                              struct chrun_digest *ret_digest, struct chrun_err *err)
{
    struct chrun_store_image img;
    if (chrun_store_resolve(st, image, &img, err) < 0)
        return -1;
    if (chrun_manifest_load_image(m, st, &img, platform, ret_digest, err) < 0)
        return -1;
    if (!chrun_image_is_config_type(m->config.media_type)) {
        chrun_err_set(err, CHRUN_E_INPUT,
                      "an artifact (config media type %s), not a runnable image",
                      m->config.media_type);
        chrun_manifest_release(m);
        return -1;
    }
    if (ret_img != NULL)
        *ret_img = img;
    return 0;
}
