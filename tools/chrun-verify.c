/* chrun-verify --key KEY.pub [-a KEY=VALUE]... IMAGE: check the cosign
 * signatures attached to a stored image, offline; print its digest. */
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
    static const struct option longopts[] = {
        {"key", required_argument, NULL, 'k'},
        {"annotation", required_argument, NULL, 'a'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, CHRUN_OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_cosign_report rep = {0};
    struct chrun_cosign_opts opts = {0};
    const char *ann[CHRUN_COSIGN_ANNOTATIONS_MAX + 1];
    const char *key_path = NULL;
    char image[CHRUN_REF_STR_MAX];
    struct chrun_digest digest;
    struct chrun_key *key = NULL;
    struct chrun_store *st;
    int c, rc;

    chrun_tool_init("chrun-verify");
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
    if (chrun_tool_image_operand(argv[optind], image, sizeof(image), &err) < 0 ||
        chrun_key_load_public(key_path, &key, &err) < 0)
        return chrun_tool_fail(&err);
    opts.key = key;
    st = chrun_store_open(NULL, 0, &err);
    if (st == NULL) {
        chrun_key_free(key);
        return chrun_tool_fail(&err);
    }
    rc = chrun_cosign_verify_image(st, image, &opts, &digest, &rep, &err);
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
