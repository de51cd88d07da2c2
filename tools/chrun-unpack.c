/* chrun-unpack [IMAGE] [BUNDLE]: unpack a stored image into an OCI runtime bundle. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "chrun/bundle.h"
#include "chrun/log.h"
#include "chrun/ref.h"
#include "chrun/tool.h"

enum { OPT_PLATFORM = CHRUN_OPT_TOOL_BASE, OPT_FORCE };

static int usage(FILE *out, int status)
{
    fprintf(out,
            "Usage: chrun-unpack [-q] [--platform OS/ARCH[/VARIANT]] [--force] [IMAGE [BUNDLE]]\n"
            "Apply the layers of the stored image IMAGE (reference or digest; absent or '-':\n"
            "the first line of stdin) into BUNDLE/rootfs and write BUNDLE/config.json, an OCI\n"
            "runtime bundle for runc. BUNDLE defaults to $CHRUN_ROOT/bundles/<12 hex of the\n"
            "manifest digest>. Prints the bundle path.\n\n"
            "  -p, --platform P  platform to choose from a multi-platform image (default: host)\n"
            "  -f, --force       replace a bundle of another image at BUNDLE\n"
            "  -q, --quiet       no informational messages\n"
            "  -h, --help        show this help\n"
            "      --version     show the version\n");
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"platform", required_argument, NULL, 'p'},
        {"force", no_argument, NULL, 'f'},
        CHRUN_TOOL_LONGOPTS_COMMON,
    };
    struct chrun_unpack_opts opts = CHRUN_UNPACK_OPTS_INIT;
    struct chrun_err err = CHRUN_ERR_INIT;
    char image[CHRUN_REF_STR_MAX * 2], path[PATH_MAX];
    const char *bundle = NULL;
    struct chrun_store *st;
    int c, rc;

    chrun_tool_init("chrun-unpack");
    while ((c = getopt_long(argc, argv, "+p:fqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': opts.platform = optarg; break;
        case 'f': opts.force = true; break;
        default:
            if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
                return rc;
        }
    }
    if (argc - optind > 2)
        return chrun_tool_usage_error("expected at most IMAGE and BUNDLE");
    if (argc - optind == 2)
        bundle = argv[optind + 1];
    if (bundle != NULL && bundle[0] == '\0')
        return chrun_tool_usage_error("empty BUNDLE");
    if (chrun_tool_image_operand(optind < argc ? argv[optind] : NULL, image, sizeof(image),
                                 &err) < 0)
        return chrun_tool_fail(&err);
    st = chrun_store_open(NULL, 0, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    rc = chrun_bundle_unpack(st, image, bundle, &opts, path, sizeof(path), &err);
    chrun_store_close(st);
    if (rc < 0)
        return chrun_tool_fail(&err);
    printf("%s\n", path);
    return chrun_tool_finish_stdout();
}
