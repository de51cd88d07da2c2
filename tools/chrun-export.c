/* chrun-export [-o FILE] IMAGE|BUNDLE: a flattened root filesystem tar, like docker export. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/export.h"
#include "chrun/fs.h"
#include "chrun/log.h"
#include "chrun/ref.h"
#include "chrun/tool.h"
#include "cleanup.h"
#include "util.h"

enum { OPT_PLATFORM = CHRUN_OPT_TOOL_BASE };

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-export [-q] [-o FILE] [--platform OS/ARCH[/VARIANT]] IMAGE|BUNDLE\n"
                 "Write the root filesystem of a stored image (its layers flattened, streamed\n"
                 "from the store) or of a bundle directory (BUNDLE/rootfs, e.g. made by\n"
                 "chrun-unpack) as one tar archive to FILE or standard output. An operand\n"
                 "that is an existing directory is a bundle; anything else is an image. '-'\n"
                 "reads the image from the first line of standard input.\n\n"
                 "  -o, --output FILE   write to FILE (replaced only when complete)\n"
                 "  -p, --platform P    platform to choose from a multi-platform image\n"
                 "  -q, --quiet         no informational messages\n"
                 "  -h, --help          show this help\n"
                 "      --version       show the version\n");
    return status;
}

/* Export OPERAND (an image of ST, or a bundle when ST is NULL) to FD. */
static int export_to_fd(struct chrun_store *st, const char *operand, const char *platform,
                        int fd, struct chrun_err *err)
{
    if (st == NULL)
        return chrun_export_bundle(operand, fd, err);
    return chrun_export_image(st, operand, platform, fd, err);
}

/* Export into a temporary file beside OUTPUT, fsync it and rename it over
 * OUTPUT, so FILE is either the old file or the complete tar. */
static int export_to_file(struct chrun_store *st, const char *operand, const char *platform,
                          const char *output, struct chrun_err *err)
{
    struct chrun_tool_output out;
    int rc = chrun_tool_output_open(&out, output, ".chrun-export-", err);
    if (rc == 0)
        rc = export_to_fd(st, operand, platform, out.fd, err);
    return chrun_tool_output_finish(&out, rc, err);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"platform", required_argument, NULL, 'p'},
        CHRUN_TOOL_LONGOPTS_COMMON,
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    char operand[PATH_MAX + CHRUN_REF_STR_MAX];
    const char *output = NULL, *platform = NULL;
    struct chrun_store *st = NULL;
    int c, rc;

    chrun_tool_init("chrun-export");
    while ((c = getopt_long(argc, argv, "+o:p:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'p': platform = optarg; break;
        default:
            if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
                return rc;
        }
    }
    if (argc - optind > 1)
        return chrun_tool_usage_error("expected one IMAGE or BUNDLE");
    if (output != NULL && output[0] == '\0')
        return chrun_tool_usage_error("empty FILE for -o");
    /* as docker export does: a tar is no use on a terminal */
    if (output == NULL && isatty(STDOUT_FILENO))
        return chrun_tool_usage_error("refusing to write a tar archive to a terminal: use -o FILE "
                                      "or a redirection");
    if (chrun_tool_image_operand(optind < argc ? argv[optind] : NULL, operand, sizeof(operand),
                                 &err) < 0)
        return chrun_tool_fail(&err);
    if (!chrun_export_operand_is_bundle(operand)) {
        st = chrun_store_open(NULL, 0, &err);
        if (st == NULL)
            return chrun_tool_fail(&err);
    }
    if (output != NULL)
        rc = export_to_file(st, operand, platform, output, &err);
    else
        rc = export_to_fd(st, operand, platform, STDOUT_FILENO, &err);
    chrun_store_close(st);
    if (rc < 0)
        return chrun_tool_fail(&err);
    return chrun_tool_finish_stdout();
}
