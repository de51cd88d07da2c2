/* /etc/passwd and /etc/group of an image (src/user.c): the input is
 * "SPEC\0PASSWD\0GROUP" (missing parts: the image lacks the file), resolved
 * as chrun-exec --user SPEC would, plus the home lookup. */
#include "chrun/user.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_user_spec spec;
    struct chrun_exec_user user;
    char home[256];
    char *s = fuzz_strndup(data, size), *passwd = NULL, *group = NULL;
    size_t n;
    int rc;

    if (s == NULL)
        return 0;
    fuzz_quiet();
    n = strlen(s);
    if (n < size) {
        passwd = s + n + 1;
        n += 1 + strlen(passwd);
        if (n < size)
            group = s + n + 1;
    }
    chrun_exec_user_home(passwd, 0, home, sizeof(home));
    chrun_exec_user_home(passwd, 1000, home, sizeof(home));
    rc = chrun_user_spec_parse(&spec, s, &err);
    fuzz_check_err(rc, &err);
    if (rc == 0) {
        chrun_err_clear(&err);
        rc = chrun_exec_user_resolve(&user, &spec, passwd, group, &err);
        fuzz_check_err(rc, &err);
        if (rc == 0 && user.n_groups > CHRUN_RUNTIME_MAX_GROUPS)
            abort();
    }
    free(s);
    return 0;
}
