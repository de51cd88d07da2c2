/* chrun-push [-q] IMAGE DEST_REF: upload a stored image to a registry; print
 * the pushed manifest digest. */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "chrun/log.h"
#include "chrun/push.h"
#include "chrun/ref.h"
#include "chrun/settings.h"
#include "chrun/store.h"
#include "chrun/tool.h"

enum { OPT_NO_SIGNATURES = CHRUN_OPT_TOOL_BASE };

static int usage(FILE *out, int status)
{
    fprintf(out,
            "Usage: chrun-push [OPTION]... IMAGE DEST_REF\n"
            "Upload the stored image IMAGE (a name, a manifest digest, or '-' for the first\n"
            "line of stdin) to the registry and repository of DEST_REF, and print the\n"
            "pushed manifest digest. Blobs the registry has are skipped; blobs of an image\n"
            "pulled from another repository of the same registry are mounted from there.\n\n"
            "      --no-signatures   leave out the signatures, attestations and SBOMs\n"
            "                        attached to IMAGE (pushed beside it by default)\n"
            "  -q, --quiet           no progress bars or informational messages\n"
            "  -h, --help            show this help\n"
            "      --version         show the version\n\n"
            "Credentials come from $DOCKER_CONFIG/config.json (auths, credHelpers,\n"
            "credsStore). Environment: CHRUN_ROOT, CHRUN_INSECURE_REGISTRIES,\n"
            "CHRUN_PUSH_CHUNK_SIZE (default 32M), CHRUN_STALL_TIMEOUT.\n");
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"no-signatures", no_argument, NULL, OPT_NO_SIGNATURES},
        CHRUN_TOOL_LONGOPTS_COMMON,
    };
    struct chrun_push_opts opts = CHRUN_PUSH_OPTS_INIT;
    struct chrun_settings settings;
    struct chrun_err err = CHRUN_ERR_INIT;
    char image[CHRUN_REF_STR_MAX * 2];
    struct chrun_digest digest;
    struct chrun_ref dest;
    struct chrun_store *st;
    int c, rc;

    chrun_tool_init("chrun-push");
    while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_NO_SIGNATURES: opts.no_signatures = true; break;
        default:
            if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
                return rc;
        }
    }
    if (argc - optind != 2)
        return chrun_tool_usage_error("expected IMAGE and DEST_REF");
    if (chrun_ref_parse(&dest, argv[optind + 1], &err) < 0)
        return chrun_tool_usage_error("%s", err.msg);
    if (chrun_tool_image_operand(argv[optind], image, sizeof(image), &err) < 0 ||
        chrun_settings_from_env(&settings, &err) < 0)
        return chrun_tool_fail(&err);
    opts.settings = &settings;
    opts.progress = !chrun_log_quiet() && isatty(STDERR_FILENO);
    st = chrun_store_open(NULL, 0, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    rc = chrun_push_image(st, image, argv[optind + 1], &opts, &digest, &err);
    chrun_store_close(st);
    if (rc < 0)
        return chrun_tool_fail(&err);
    printf("%s\n", digest.str);
    return chrun_tool_finish_stdout();
}
