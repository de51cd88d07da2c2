/* The command line chrun-sign and chrun-verify share (chrun_tool_key_args).
 * Apart from tool.c because it reaches cosign.c, and with it the store,
 * OpenSSL and libsodium: tool.o is linked into every program, and
 * chrun-exec's start-up must not load them. */
#include "chrun/tool.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "chrun/cosign.h"
#include "chrun/err.h"

bool chrun_tool_key_args(int argc, char **argv, int (*usage)(FILE *out, int status),
                         struct chrun_tool_key_args *args, int *ret_status)
{
    static const struct option longopts[] = {
        {"key", required_argument, NULL, 'k'},
        {"annotation", required_argument, NULL, 'a'},
        CHRUN_TOOL_LONGOPTS_COMMON,
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    int c;

    memset(args, 0, sizeof(*args));
    *ret_status = 2;
    while ((c = getopt_long(argc, argv, "+k:a:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'k': args->key_path = optarg; break;
        case 'a':
            if (args->n_annotations == CHRUN_COSIGN_ANNOTATIONS_MAX) {
                *ret_status = chrun_tool_usage_error("more than %d -a options",
                                                     CHRUN_COSIGN_ANNOTATIONS_MAX);
                return false;
            }
            args->annotations[args->n_annotations++] = optarg;
            break;
        default:
            if ((*ret_status = chrun_tool_common_option(c, argv, usage)) >= 0)
                return false;
        }
    }
    if (args->key_path == NULL)
        *ret_status = chrun_tool_usage_error("--key is required");
    else if (argc - optind > 1)
        *ret_status = chrun_tool_usage_error("expected at most one IMAGE");
    else if (chrun_cosign_annotations_check(args->annotations, args->n_annotations, &err) < 0)
        *ret_status = chrun_tool_usage_error("%s", err.msg);
    else if (chrun_tool_image_operand(argv[optind], args->image, sizeof(args->image), &err) < 0)
        *ret_status = chrun_tool_fail(&err);
    else
        return true;
    return false;
}
