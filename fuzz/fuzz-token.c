/* Token server replies (src/auth.c chrun_auth_token_parse). */
#include "chrun/auth.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char *token = NULL;
    int rc;

    fuzz_quiet();
    rc = chrun_auth_token_parse((const char *) data, size, &token, &err);
    fuzz_check_err(rc, &err);
    if (rc == 0 && (token == NULL || token[0] == '\0'))
        abort();
    free(token);
    return 0;
}
