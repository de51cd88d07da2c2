/* A credential helper's `get` reply (src/auth.c chrun_auth_helper_parse). */
#include "chrun/auth.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_auth_creds creds;

    fuzz_quiet();
    fuzz_check_err(chrun_auth_helper_parse((const char *) data, size, &creds, &err), &err);
    return 0;
}
