/* Manifests, indexes and image configs, OCI and docker (src/manifest.c).
 * The first input byte picks the declared media type (as a descriptor or a
 * Content-Type would give it); the rest is the document, parsed both as a
 * manifest/index and as an image config. */
#include "chrun/image-config.h"
#include "chrun/manifest.h"
#include "fuzz-common.h"

static const char *const declared[] = {
    NULL,
    "",
    CHRUN_MT_OCI_MANIFEST,
    CHRUN_MT_OCI_INDEX,
    CHRUN_MT_DOCKER_MANIFEST,
    CHRUN_MT_DOCKER_LIST,
    CHRUN_MT_DOCKER_SCHEMA1_SIGNED,
    "application/vnd.evil.v1+json",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_manifest m = {0};
    struct chrun_image_config c = {0};
    struct chrun_descriptor d;
    enum chrun_compression comp;
    const char *type;
    int rc;

    if (size < 1)
        return 0;
    fuzz_quiet();
    type = declared[data[0] % (sizeof(declared) / sizeof(declared[0]))];
    data++;
    size--;
    rc = chrun_manifest_parse(&m, (const char *) data, size, type, &err);
    fuzz_check_err(rc, &err);
    if (rc == 0) {
        if (m.is_index) {
            chrun_err_clear(&err);
            fuzz_check_err(chrun_manifest_select_platform(&m, "linux/amd64", &d, &err), &err);
            chrun_err_clear(&err);
            fuzz_check_err(chrun_manifest_select_platform(&m, "linux/arm/v7", &d, &err), &err);
        }
        for (size_t i = 0; i < m.n_layers; i++) {
            chrun_err_clear(&err);
            fuzz_check_err(chrun_manifest_layer_compression(m.layers[i].media_type, &comp, &err),
                           &err);
        }
    }
    chrun_manifest_release(&m);
    chrun_err_clear(&err);
    rc = chrun_image_config_parse(&c, (const char *) data, size, &err);
    fuzz_check_err(rc, &err);
    chrun_image_config_release(&c);
    return 0;
}
