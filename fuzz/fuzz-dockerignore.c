/* The .dockerignore parser and matcher (src/dockerignore.c). The input is
 * an ignore file; each of its lines is also matched as a path (when it is a
 * clean relative path) and tried with may_descend. Seeds:
 * testdata/fuzz/dockerignore/. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "chrun/dockerignore.h"
#include "fuzz-common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chrun_dockerignore *ign = NULL;
    struct chrun_err err = CHRUN_ERR_INIT;
    char path[512];
    size_t pos = 0;

    if (chrun_dockerignore_parse((const char *) data, size, ".dockerignore", &ign, &err) < 0)
        return 0;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t n = nl ? (size_t) (nl - (data + pos)) : size - pos;
        bool b;
        if (n > 0 && n < sizeof(path) && memchr(data + pos, '\0', n) == NULL) {
            memcpy(path, data + pos, n);
            path[n] = '\0';
            chrun_dockerignore_match(ign, path, &b, &err);
            chrun_dockerignore_may_descend(ign, path, &b, &err);
        }
        pos += n + 1;
    }
    chrun_dockerignore_free(ign);
    return 0;
}
