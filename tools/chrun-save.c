/* chrun-save [-o FILE] [--format docker|oci] [--compress gzip|zstd] [--have FILE]...
 * IMAGE... | -i LIST: stored images as one archive, or a delta of it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chrun/archive.h"
#include "chrun/fs.h"
#include "chrun/imagelist.h"
#include "chrun/inventory.h"
#include "chrun/log.h"
#include "chrun/ref.h"
#include "chrun/tool.h"
#include "cleanup.h"
#include "util.h"

enum { OPT_FORMAT = CHRUN_OPT_TOOL_BASE, OPT_COMPRESS, OPT_HAVE, OPT_NO_SIGNATURES };

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-save [OPTION]... [IMAGE...]\n"
                 "  or:  chrun-save [OPTION]... -i LIST\n"
                 "Write stored images as one tar archive to FILE or standard output:\n"
                 "docker load compatible (default) or an OCI image layout. No IMAGE (or '-')\n"
                 "reads one from the first line of standard input.\n\n"
                 "  -o, --output FILE   write to FILE (replaced only when complete)\n"
                 "      --format FMT    docker (default) or oci\n"
                 "      --compress ALG  gzip or zstd the whole archive\n"
                 "      --have FILE     leave out the layers FILE (chrun-images --inventory of\n"
                 "                      the receiver, or an archive sent earlier) says the\n"
                 "                      receiver has: a delta archive (repeatable)\n"
                 "  -i, --images LIST   save the images listed in LIST ('-': stdin), one per\n"
                 "                      line; '#' comments and blank lines are ignored\n"
                 "      --no-signatures leave out the signatures, attestations and SBOMs\n"
                 "                      attached to the images (included by default)\n"
                 "  -q, --quiet         no informational messages\n"
                 "  -h, --help          show this help\n"
                 "      --version       show the version\n");
    return status;
}

/* Save into a temporary file beside OUTPUT, renamed over it when complete. */
static int save_to_file(struct chrun_store *st, const char *const *images, size_t n,
                        const struct chrun_save_opts *opts, const char *output,
                        struct chrun_err *err)
{
    struct chrun_tool_output out;
    int rc = chrun_tool_output_open(&out, output, ".chrun-save-", err);
    if (rc == 0)
        rc = chrun_archive_save_opts(st, images, n, opts, out.fd, NULL, err);
    return chrun_tool_output_finish(&out, rc, err);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"compress", required_argument, NULL, OPT_COMPRESS},
        {"have", required_argument, NULL, OPT_HAVE},
        {"images", required_argument, NULL, 'i'},
        {"no-signatures", no_argument, NULL, OPT_NO_SIGNATURES},
        CHRUN_TOOL_LONGOPTS_COMMON,
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_save_opts opts = CHRUN_SAVE_OPTS_INIT;
    struct chrun_imagelist list = {0};
    const char *haves[64], *list_path = NULL;
    size_t n_haves = 0;
    struct chrun_inventory *have = NULL;
    char stdin_image[CHRUN_REF_STR_MAX * 2];
    const char *stdin_images[1] = {stdin_image};
    const char *const *images;
    const char *output = NULL;
    struct chrun_store *st;
    size_t n;
    int c, rc;

    chrun_tool_init("chrun-save");
    while ((c = getopt_long(argc, argv, "+o:i:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case OPT_FORMAT:
            if (streq(optarg, "docker"))
                opts.format = CHRUN_ARCHIVE_DOCKER;
            else if (streq(optarg, "oci"))
                opts.format = CHRUN_ARCHIVE_OCI;
            else
                return chrun_tool_usage_error("unknown format '%s' (docker or oci)", optarg);
            break;
        case OPT_COMPRESS:
            if (streq(optarg, "gzip"))
                opts.compress = CHRUN_COMPRESSION_GZIP;
            else if (streq(optarg, "zstd"))
                opts.compress = CHRUN_COMPRESSION_ZSTD;
            else
                return chrun_tool_usage_error("unknown compression '%s' (gzip or zstd)", optarg);
            break;
        case OPT_HAVE:
            if (n_haves == sizeof(haves) / sizeof(haves[0]))
                return chrun_tool_usage_error("more than %zu --have files", n_haves);
            haves[n_haves++] = optarg;
            break;
        case 'i': list_path = optarg; break;
        case OPT_NO_SIGNATURES: opts.flags |= CHRUN_ARCHIVE_NO_ATTACHMENTS; break;
        default:
            if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
                return rc;
        }
    }
    if (output == NULL && isatty(STDOUT_FILENO))
        return chrun_tool_usage_error("refusing to write an archive to a terminal: use -o FILE");
    if (list_path != NULL && argc > optind)
        return chrun_tool_usage_error("-i LIST and IMAGE operands exclude each other");
    rc = 0;
    if (list_path != NULL) {
        rc = chrun_imagelist_read(&list, list_path, &err);
        images = (const char *const *) list.items;
        n = list.n;
    } else if (argc - optind == 0 || (argc - optind == 1 && streq(argv[optind], "-"))) {
        if (chrun_tool_image_operand(NULL, stdin_image, sizeof(stdin_image), &err) < 0)
            return chrun_tool_fail(&err);
        images = stdin_images;
        n = 1;
    } else {
        images = (const char *const *) &argv[optind];
        n = (size_t) (argc - optind);
    }
    if (rc == 0 && n_haves > 0 && (have = chrun_inventory_new(&err)) == NULL)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < n_haves; i++)
        rc = chrun_inventory_read(have, haves[i], &err);
    opts.have = have;
    st = rc == 0 ? chrun_store_open(NULL, 0, &err) : NULL;
    if (st == NULL)
        rc = -1;
    else if (output != NULL)
        rc = save_to_file(st, images, n, &opts, output, &err);
    else
        rc = chrun_archive_save_opts(st, images, n, &opts, STDOUT_FILENO, NULL, &err);
    chrun_store_close(st);
    chrun_inventory_free(have);
    chrun_imagelist_release(&list);
    if (rc < 0)
        return chrun_tool_fail(&err);
    return chrun_tool_finish_stdout();
}
