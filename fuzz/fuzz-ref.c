/* References (src/ref.c): parse, then format and re-parse what we printed. */
#include <stdio.h>

#include "chrun/ref.h"
#include "chrun/settings.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chrun_err err = CHRUN_ERR_INIT, err2 = CHRUN_ERR_INIT;
    struct chrun_ref r, r2;
    char buf[CHRUN_REF_STR_MAX], repo[CHRUN_REF_STR_MAX];
    char *s = fuzz_strndup(data, size);
    int rc;

    if (s == NULL)
        return 0;
    fuzz_quiet();
    rc = chrun_ref_parse(&r, s, &err);
    fuzz_check_err(rc, &err);
    if (rc == 0) {
        if (chrun_ref_format(&r, buf, sizeof(buf)) == NULL ||
            chrun_ref_repository(&r, repo, sizeof(repo)) == NULL)
            abort();
        (void) chrun_settings_host_insecure(NULL, chrun_ref_registry_host(&r));
        /* A normalized reference parses to itself. */
        if (chrun_ref_parse(&r2, buf, &err2) < 0 || strcmp(r.domain, r2.domain) != 0 ||
            strcmp(r.path, r2.path) != 0 || strcmp(r.tag, r2.tag) != 0 ||
            strcmp(r.digest, r2.digest) != 0)
            abort();
    }
    free(s);
    return 0;
}
