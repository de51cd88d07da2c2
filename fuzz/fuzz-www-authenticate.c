/* WWW-Authenticate (src/auth.c, src/registry-client.c): the input is a reply's
 * header block, fed line by line through the registry client's header parser;
 * the challenge it kept, and the whole input as one header value, go through
 * chrun_auth_parse_challenge and, when that succeeds, chrun_auth_token_url. */
#include "chrun/auth.h"
#include "fuzz-common.h"
#include "registry-client.h"

static void challenge(const char *value)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_auth_challenge c;
    char *url = NULL;
    int rc = chrun_auth_parse_challenge(&c, value, &err);

    fuzz_check_err(rc, &err);
    if (rc < 0)
        return;
    chrun_err_clear(&err);
    rc = chrun_auth_token_url(&c, "repository:library/a:pull repository:b/c:pull,push", &url,
                              &err);
    fuzz_check_err(rc, &err);
    free(url);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct registry_resp r;
    const char *p = (const char *) data, *end = p + size;
    char *s;

    fuzz_quiet();
    registry_resp_reset(&r);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        size_t len = nl ? (size_t) (nl - p) + 1 : (size_t) (end - p);
        (void) registry_resp_header_line(&r, p, len);
        p += len;
    }
    (void) registry_retry_delay_ms(&r, 1);
    if (r.www_auth[0] != '\0')
        challenge(r.www_auth);
    s = fuzz_strndup(data, size);
    if (s != NULL)
        challenge(s);
    free(s);
    return 0;
}
