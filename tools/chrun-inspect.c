/* chrun-inspect IMAGE: the manifest and config of a stored image as JSON. */
#include <getopt.h>
#include <stdio.h>

#include "chrun/image.h"
#include "chrun/log.h"
#include "chrun/tool.h"

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-inspect [--platform OS/ARCH[/VARIANT]] [IMAGE|-]\n"
                 "Print the manifest and config of IMAGE (reference, digest or short digest;\n"
                 "'-' or none: the first line of stdin) as one JSON object.\n\n"
                 "  -p, --platform P  for a multi-platform image, which platform (default: host)\n"
                 "  -q, --quiet       no informational messages\n"
                 "  -h, --help        show this help\n"
                 "      --version     show the version\n");
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"platform", required_argument, NULL, 'p'},
        CHRUN_TOOL_LONGOPTS_COMMON,
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    char image[CHRUN_REF_STR_MAX * 2];
    const char *platform = NULL;
    struct chrun_store *st;
    json_t *out = NULL;
    int c, rc;

    chrun_tool_init("chrun-inspect");
    while ((c = getopt_long(argc, argv, "+p:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': platform = optarg; break;
        default:
            if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
                return rc;
        }
    }
    if (argc - optind > 1)
        return chrun_tool_usage_error("expected at most one IMAGE");
    if (chrun_tool_image_operand(argc > optind ? argv[optind] : NULL, image, sizeof(image),
                                 &err) < 0)
        return chrun_tool_fail(&err);
    st = chrun_store_open(NULL, 0, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    rc = chrun_image_inspect(st, image, platform, &out, &err);
    chrun_store_close(st);
    if (rc < 0)
        return chrun_tool_fail(&err);
    rc = json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(out);
    if (rc < 0)
        return chrun_tool_fail(&err);
    printf("\n");
    return chrun_tool_finish_stdout();
}
