/* chrun-sign --key KEY [-a KEY=VALUE]... IMAGE: write a cosign signature
 * artifact for a stored image; print the signature manifest's digest. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "chrun/cosign.h"
#include "chrun/key.h"
#include "chrun/log.h"
#include "chrun/ref.h"
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
    static const struct option longopts[] = {
        {"key", required_argument, NULL, 'k'},
        {"annotation", required_argument, NULL, 'a'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, CHRUN_OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_cosign_opts opts = {0};
    const char *ann[CHRUN_COSIGN_ANNOTATIONS_MAX + 1];
    const char *key_path = NULL;
    char image[CHRUN_REF_STR_MAX];
    struct chrun_digest digest;
    struct chrun_key *key = NULL;
    struct chrun_store *st;
    int c, rc;

    chrun_tool_init("chrun-sign");
    while ((c = getopt_long(argc, argv, "+k:a:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': key_path = optarg; break;
        case 'a':
            if (opts.n_annotations == CHRUN_COSIGN_ANNOTATIONS_MAX)
                return chrun_tool_usage_error("more than %d -a options",
                                              CHRUN_COSIGN_ANNOTATIONS_MAX);
            ann[opts.n_annotations++] = optarg;
            break;
        case 'q': chrun_log_set_quiet(true); break;
        case 'h': return usage(stdout, 0);
        case CHRUN_OPT_VERSION: return chrun_tool_version();
        default: return chrun_tool_bad_option(argv);
        }
    }
    opts.annotations = ann;
    if (key_path == NULL)
        return chrun_tool_usage_error("--key is required");
    if (argc - optind > 1)
        return chrun_tool_usage_error("expected at most one IMAGE");
    if (chrun_cosign_annotations_check(ann, opts.n_annotations, &err) < 0)
        return chrun_tool_usage_error("%s", err.msg);
    if (chrun_tool_image_operand(argv[optind], image, sizeof(image), &err) < 0)
        return chrun_tool_fail(&err);
    st = chrun_store_open(NULL, 0, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    rc = chrun_key_load_private(key_path, &key, &err);
    opts.key = key;
    if (rc == 0)
        rc = chrun_cosign_sign_image(st, image, &opts, &digest, &err);
    chrun_store_close(st);
    chrun_key_free(key);
    if (rc < 0)
        return chrun_tool_fail(&err);
    printf("%s\n", digest.str);
    return chrun_tool_finish_stdout();
}
