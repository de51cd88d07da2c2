/* docker's config.json (src/auth.c chrun_auth_config_parse), looked up for a
 * few registry names as chrun-pull would ask, plus the base64 decoder its
 * "auth" fields go through. */
#include "chrun/auth.h"
#include "fuzz-common.h"

static const char *const registries[] = {
    "docker.io", "localhost:5000", "registry.example.com", "[::1]:5000",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chrun_auth_source src;
    char out[4096];
    size_t out_len;
    char *s;

    fuzz_quiet();
    for (size_t i = 0; i < sizeof(registries) / sizeof(registries[0]); i++) {
        struct chrun_err err = CHRUN_ERR_INIT;
        fuzz_check_err(chrun_auth_config_parse((const char *) data, size, registries[i], &src,
                                               &err),
                       &err);
    }
    s = fuzz_strndup(data, size);
    if (s != NULL) {
        struct chrun_err err = CHRUN_ERR_INIT;
        fuzz_check_err(chrun_auth_base64_decode(s, out, sizeof(out), &out_len, &err), &err);
    }
    free(s);
    return 0;
}
