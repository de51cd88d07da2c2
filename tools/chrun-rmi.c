/* chrun-rmi REF...: remove image names; blobs stay until chrun-gc. */
#include <getopt.h>
#include <stdio.h>

#include "chrun/image.h"
#include "chrun/log.h"
#include "chrun/tool.h"

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-rmi [-q] REF...\n"
                 "Remove the names REF from the store and print each full name removed.\n"
                 "Blobs stay until chrun-gc.\n\n"
                 "  -q, --quiet     no informational messages\n"
                 "  -h, --help      show this help\n"
                 "      --version   show the version\n");
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        CHRUN_TOOL_LONGOPTS_COMMON,
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    char full[CHRUN_REF_STR_MAX];
    struct chrun_store *st;
    int c, rc, status = 0;

    chrun_tool_init("chrun-rmi");
    while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
        switch (c) {
        default:
            if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
                return rc;
        }
    }
    if (optind >= argc)
        return chrun_tool_usage_error("expected at least one REF");
    st = chrun_store_open(NULL, 0, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    /* Each name is its own job: report a failure and go on (as crun delete does). */
    for (int i = optind; i < argc; i++) {
        if (chrun_image_untag(st, argv[i], full, sizeof(full), &err) < 0) {
            status = chrun_tool_fail(&err);
            continue;
        }
        printf("%s\n", full);
    }
    chrun_store_close(st);
    return chrun_tool_finish_stdout() || status;
}
