#include "chrun/volume.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup.h"
#include "util.h"

void chrun_volume_release(struct chrun_volume *v)
{
    free(v->host);
    free(v->ctr);
    v->host = v->ctr = NULL;
}

int chrun_volume_parse(struct chrun_volume *ret, const char *spec, struct chrun_err *err)
{
    cleanup_free char *copy = strdup(spec);
    char *parts[4] = {NULL};
    size_t n = 0;
    char *p;

    memset(ret, 0, sizeof(*ret));
    if (copy == NULL)
        return chrun_err_sys(err, ENOMEM, "-v '%s'", spec);
    /* strsep keeps empty fields, so "a::b" is rejected instead of read as "a:b" */
    p = copy;
    while (p != NULL && n < ARRAY_SIZE(parts))
        parts[n++] = strsep(&p, ":");
    if (p != NULL || n < 2)
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s': expected HOST:CTR[:ro|rw]", spec);
    if (n == 3 && !streq(parts[2], "ro") && !streq(parts[2], "rw"))
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s': unknown mode '%s' (use ro or rw)", spec,
                             parts[2]);
    if (n > 3)
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s': expected HOST:CTR[:ro|rw]", spec);
    if (parts[0][0] == '\0')
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s': empty host path", spec);
    if (parts[1][0] != '/')
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s': container path must be absolute",
                             spec);
    ret->host = strdup(parts[0]);
    ret->ctr = strdup(parts[1]);
    ret->ro = n == 3 && streq(parts[2], "ro");
    if (ret->host == NULL || ret->ctr == NULL) {
        chrun_volume_release(ret);
        return chrun_err_sys(err, ENOMEM, "-v '%s'", spec);
    }
    return 0;
}
