#include "chrun/image-config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "chrun/io.h"
#include "cleanup.h"
#include "util.h"

int chrun_image_config_parse(struct chrun_image_config *c, const char *buf, size_t len,
                             struct chrun_err *err)
{
    json_error_t jerr;
    json_t *rootfs, *ids, *item;
    size_t i;

    memset(c, 0, sizeof(*c));
    c->json = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (c->json == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "image config: invalid JSON at line %d: %s",
                             jerr.line, jerr.text);
    rootfs = json_object_get(c->json, "rootfs");
    ids = json_object_get(rootfs, "diff_ids");
    if (!json_is_object(c->json) || !json_is_object(rootfs) || !json_is_array(ids) ||
        !json_is_string(json_object_get(rootfs, "type")) ||
        !streq(json_string_value(json_object_get(rootfs, "type")), "layers")) {
        chrun_image_config_release(c);
        return chrun_err_set(err, CHRUN_E_INPUT, "image config: missing rootfs.diff_ids");
    }
    c->diff_ids = calloc(json_array_size(ids) + 1, sizeof(*c->diff_ids));
    if (c->diff_ids == NULL) {
        chrun_image_config_release(c);
        return chrun_err_sys(err, ENOMEM, "image config");
    }
    json_array_foreach (ids, i, item) {
        if (chrun_digest_parse(&c->diff_ids[i], json_string_value(item), err) < 0) {
            chrun_image_config_release(c);
            return chrun_err_prefix(err, "image config: rootfs.diff_ids[%zu]", i);
        }
    }
    c->n_diff_ids = json_array_size(ids);
    return 0;
}

int chrun_image_config_load(struct chrun_image_config *c, struct chrun_store *st,
                            const struct chrun_digest *d, struct chrun_err *err)
{
    cleanup_free char *buf = NULL;
    size_t len;
    memset(c, 0, sizeof(*c));
    if (chrun_store_read_blob(st, d, CHRUN_CONFIG_MAX, &buf, &len, err) < 0)
        return -1;
    if (chrun_image_config_parse(c, buf, len, err) < 0)
        return chrun_err_prefix(err, "config %s", d->str);
    return 0;
}

void chrun_image_config_release(struct chrun_image_config *c)
{
    free(c->diff_ids);
    if (c->json != NULL)
        json_decref(c->json);
    memset(c, 0, sizeof(*c));
}
