/* The image config (application/vnd.oci.image.config.v1+json or docker's
 * application/vnd.docker.container.image.v1+json): the document that names an
 * image's layers by diff_id and holds its runtime defaults. */
#ifndef CHRUN_IMAGE_CONFIG_H
#define CHRUN_IMAGE_CONFIG_H

#include <stddef.h>

#include <jansson.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/store.h"

/* A parsed image config. */
struct chrun_image_config {
    json_t *json;           /* whole document (owned) */
    struct chrun_digest *diff_ids;
    size_t n_diff_ids;
};

/* Parse LEN bytes of BUF as an image config: it must be a JSON object whose
 * rootfs.type is "layers" and whose rootfs.diff_ids are valid digests.
 * Release with chrun_image_config_release. Returns 0 or -1. */
int chrun_image_config_parse(struct chrun_image_config *c, const char *buf, size_t len,
                             struct chrun_err *err);

/* Read config blob D from ST (at most CHRUN_CONFIG_MAX bytes, digest checked)
 * and parse it as chrun_image_config_parse does. Returns 0, or -1 with ERR
 * set (prefixed with the config's digest). */
int chrun_image_config_load(struct chrun_image_config *c, struct chrun_store *st,
                            const struct chrun_digest *d, struct chrun_err *err);

/* Free what C holds; safe on a zeroed struct, leaves C zeroed. */
void chrun_image_config_release(struct chrun_image_config *c);

#endif
