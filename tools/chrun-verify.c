/* chrun-verify --key KEY.pub [-a KEY=VALUE]... IMAGE: check the cosign
 * signatures attached to a stored image, offline; print its digest. */
#include <stdio.h>
#include <stdlib.h>

#include "chrun/cosign.h"
#include "chrun/key.h"
#include "chrun/log.h"
#include "chrun/store.h"
#include "chrun/tool.h"

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-verify --key KEY.pub [-a KEY=VALUE]... [IMAGE]\n"
                 "Verify the cosign signatures attached to IMAGE in the store with the public\n"
                 "key KEY.pub (ECDSA P-256, RSA or Ed25519; PEM). Print the image digest when\n"
                 "at least one signature verifies; otherwise print why each failed.\n"
                 "No transparency log is consulted.\n\n"
                 "  -k, --key=FILE        PEM public key\n"
                 "  -a, --annotation=K=V  the signed payload must carry K=V in 'optional'\n"
                 "  -q, --quiet           no informational messages\n"
                 "  -h, --help            show this help\n"
                 "      --version         show the version\n");
    return status;
}

int main(int argc, char **argv)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_cosign_report rep = {0};
    struct chrun_tool_key_args args;
    struct chrun_cosign_opts opts = {0};
    struct chrun_digest digest;
    struct chrun_key *key = NULL;
    struct chrun_store *st;
    int rc;

    chrun_tool_init("chrun-verify");
    if (!chrun_tool_key_args(argc, argv, usage, &args, &rc))
        return rc;
    opts.annotations = args.annotations;
    opts.n_annotations = args.n_annotations;
    if (chrun_key_load_public(args.key_path, &key, &err) < 0)
        return chrun_tool_fail(&err);
    opts.key = key;
    st = chrun_store_open(NULL, 0, &err);
    if (st == NULL) {
        chrun_key_free(key);
        return chrun_tool_fail(&err);
    }
    rc = chrun_cosign_verify_image(st, args.image, &opts, &digest, &rep, &err);
    chrun_store_close(st);
    chrun_key_free(key);
    for (size_t i = 0; i < rep.n_reasons; i++) {
        if (rc < 0)
            chrun_log_error("%s", rep.reasons[i]);
        else
            chrun_log_info("%s", rep.reasons[i]);
    }
    chrun_cosign_report_release(&rep);
    if (rc < 0)
        return chrun_tool_fail(&err);
    printf("%s\n", digest.str);
    return chrun_tool_finish_stdout();
}
