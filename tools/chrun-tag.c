/* chrun-tag IMAGE NEWREF: give a stored image another name. */
#include <getopt.h>
#include <stdio.h>

#include "chrun/image.h"
#include "chrun/log.h"
#include "chrun/tool.h"

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-tag [-q] IMAGE NEWREF\n"
                 "Name the stored image IMAGE (reference or digest, '-' = stdin) NEWREF.\n"
                 "Prints the full normalized NEWREF.\n\n"
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
    char image[CHRUN_REF_STR_MAX * 2], full[CHRUN_REF_STR_MAX];
    struct chrun_ref ref;
    struct chrun_store *st;
    int c, rc;

    chrun_tool_init("chrun-tag");
    while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
        switch (c) {
        default:
            if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
                return rc;
        }
    }
    if (argc - optind != 2)
        return chrun_tool_usage_error("expected IMAGE and NEWREF");
    if (chrun_ref_parse(&ref, argv[optind + 1], &err) < 0)
        return chrun_tool_usage_error("%s", err.msg);
    if (chrun_tool_image_operand(argv[optind], image, sizeof(image), &err) < 0)
        return chrun_tool_fail(&err);
    st = chrun_store_open(NULL, 0, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    rc = chrun_image_tag(st, image, argv[optind + 1], full, sizeof(full), &err);
    chrun_store_close(st);
    if (rc < 0)
        return chrun_tool_fail(&err);
    printf("%s\n", full);
    return chrun_tool_finish_stdout();
}
