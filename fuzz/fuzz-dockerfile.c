/* The Dockerfile parser (src/dockerfile.c): parse, then apply the word rules
 * to each instruction's arguments and split ENV/LABEL/ARG pairs, as
 * chrun-build does. */
#include "chrun/dockerfile.h"
#include "fuzz-common.h"

static const char *lookup(void *data, const char *name)
{
    (void) data;
    if (strcmp(name, "HOME") == 0)
        return "/root";
    if (strcmp(name, "SPACE") == 0)
        return "a b  c";
    return NULL;
}

static void words(const struct chrun_df_instr *in)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    char **w = NULL, **keys = NULL, **values = NULL;
    size_t n = 0, n_pairs = 0;
    bool split = in->kind != CHRUN_DF_RUN && in->kind != CHRUN_DF_CMD &&
                 in->kind != CHRUN_DF_ENTRYPOINT && in->kind != CHRUN_DF_WORKDIR &&
                 in->kind != CHRUN_DF_USER;
    int rc;

    if (in->args == NULL)
        return;
    rc = chrun_dockerfile_words(in->args, lookup, NULL, split, &w, &n, &err);
    fuzz_check_err(rc, &err);
    if (rc < 0)
        return;
    if (in->kind == CHRUN_DF_ENV || in->kind == CHRUN_DF_LABEL || in->kind == CHRUN_DF_ARG) {
        chrun_err_clear(&err);
        rc = chrun_dockerfile_pairs(in->kind, w, n, &keys, &values, &n_pairs, &err);
        fuzz_check_err(rc, &err);
        if (rc == 0)
            chrun_dockerfile_pairs_free(keys, values, n_pairs);
    }
    chrun_dockerfile_words_free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_dockerfile df = {0};
    char *text = fuzz_strndup(data, size);
    int rc;

    if (text == NULL)
        return 0;
    fuzz_quiet();
    rc = chrun_dockerfile_parse(&df, "Dockerfile", text, size, &err);
    fuzz_check_err(rc, &err);
    if (rc == 0)
        for (size_t i = 0; i < df.n_instrs; i++)
            words(&df.instrs[i]);
    chrun_dockerfile_release(&df);
    free(text);
    return 0;
}
