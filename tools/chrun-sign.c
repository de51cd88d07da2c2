/* chrun-sign --key KEY [-a KEY=VALUE]... IMAGE: write a cosign signature
 * artifact for a stored image; print the signature manifest's digest. */
#include <stdio.h>
#include <stdlib.h>

#include "chrun/cosign.h"
#include "chrun/key.h"
#include "chrun/log.h"
#include "chrun/settings.h"
#include "chrun/store.h"
#include "chrun/tool.h"

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-sign --key KEY [-a KEY=VALUE]... [IMAGE]\n"
                 "Sign IMAGE (a named image in the store) as cosign does, attach the signature\n"
                 "artifact (tag sha256-<hex>.sig) to it and print that artifact's digest.\n\n"
                 "  -k, --key=FILE        PEM private key (PKCS#8, SEC1 EC, PKCS#1 RSA) or a\n"
                 "                        cosign encrypted key (password: CHRUN_SIGN_PASSWORD\n"
                 "                        or asked on the terminal)\n"
                 "  -a, --annotation=K=V  add K=V to the payload's 'optional' section\n"
                 "  -q, --quiet           no informational messages\n"
                 "  -h, --help            show this help\n"
                 "      --version         show the version\n");
    return status;
}

int main(int argc, char **argv)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_tool_key_args args;
    struct chrun_cosign_opts opts = {0};
    struct chrun_settings settings;
    struct chrun_digest digest;
    struct chrun_key *key = NULL;
    struct chrun_store *st;
    int rc;

    chrun_tool_init("chrun-sign");
    if (!chrun_tool_key_args(argc, argv, usage, &args, &rc))
        return rc;
    opts.annotations = args.annotations;
    opts.n_annotations = args.n_annotations;
    if (chrun_settings_from_env(&settings, &err) < 0)
        return chrun_tool_fail(&err);
    st = chrun_store_open(NULL, 0, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    rc = chrun_key_load_private(args.key_path, settings.sign_password, &key, &err);
    opts.key = key;
    if (rc == 0)
        rc = chrun_cosign_sign_image(st, args.image, &opts, &digest, &err);
    chrun_store_close(st);
    chrun_key_free(key);
    if (rc < 0)
        return chrun_tool_fail(&err);
    printf("%s\n", digest.str);
    return chrun_tool_finish_stdout();
}
