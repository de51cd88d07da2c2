/* chrun-save [-o FILE] [--format docker|oci] IMAGE...: stored images as one archive. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chrun/archive.h"
#include "chrun/fs.h"
#include "chrun/log.h"
#include "chrun/ref.h"
#include "chrun/tool.h"
#include "cleanup.h"
#include "util.h"

enum { OPT_FORMAT = CHRUN_OPT_TOOL_BASE, OPT_NO_SIGNATURES };

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-save [-q] [-o FILE] [--format docker|oci] [--no-signatures]\n"
                 "                  [IMAGE...]\n"
                 "Write stored images as one tar archive to FILE or standard output:\n"
                 "docker load compatible (default) or an OCI image layout. No IMAGE (or '-')\n"
                 "reads one from the first line of standard input.\n\n"
                 "  -o, --output FILE   write to FILE (replaced only when complete)\n"
                 "      --format FMT    docker (default) or oci\n"
                 "      --no-signatures leave out the signatures, attestations and SBOMs\n"
                 "                      attached to the images (included by default)\n"
                 "  -q, --quiet         no informational messages\n"
                 "  -h, --help          show this help\n"
                 "      --version       show the version\n");
    return status;
}

/* Save into a temporary file beside OUTPUT and rename it over OUTPUT. */
static int save_to_file(struct chrun_store *st, const char *const *images, size_t n,
                        enum chrun_archive_format format, unsigned flags,
                        const char *output, struct chrun_err *err)
{
    char dir_buf[PATH_MAX], tmp[NAME_MAX + 1];
    const char *base = strrchr(output, '/') ? strrchr(output, '/') + 1 : output;
    cleanup_close int dirfd = -1, fd = -1;
    int rc;

    if (snprintf(dir_buf, sizeof(dir_buf), "%s", output) >= (int) sizeof(dir_buf))
        return chrun_err_sys(err, ENAMETOOLONG, "output '%s'", output);
    dirfd = open(strchr(output, '/') ? dirname(dir_buf) : ".",
                 O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        return chrun_err_sys(err, errno, "output '%s'", output);
    fd = chrun_fs_mkstemp_at(dirfd, ".chrun-save-", tmp, sizeof(tmp), err);
    if (fd < 0)
        return chrun_err_prefix(err, "output '%s'", output);
    rc = chrun_archive_save(st, images, n, format, flags, fd, err);
    if (rc == 0 && fsync(fd) < 0)
        rc = chrun_err_sys(err, errno, "write '%s'", output);
    if (rc == 0 && renameat(dirfd, tmp, dirfd, base) < 0)
        rc = chrun_err_sys(err, errno, "write '%s'", output);
    if (rc < 0)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"no-signatures", no_argument, NULL, OPT_NO_SIGNATURES},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, CHRUN_OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    enum chrun_archive_format format = CHRUN_ARCHIVE_DOCKER;
    unsigned flags = 0;
    char stdin_image[CHRUN_REF_STR_MAX * 2];
    const char *stdin_images[1] = {stdin_image};
    const char *const *images;
    const char *output = NULL;
    struct chrun_store *st;
    size_t n;
    int c, rc;

    chrun_tool_init("chrun-save");
    while ((c = getopt_long(argc, argv, "+o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case OPT_FORMAT:
            if (streq(optarg, "docker"))
                format = CHRUN_ARCHIVE_DOCKER;
            else if (streq(optarg, "oci"))
                format = CHRUN_ARCHIVE_OCI;
            else
                return chrun_tool_usage_error("unknown format '%s' (docker or oci)", optarg);
            break;
        case OPT_NO_SIGNATURES: flags |= CHRUN_ARCHIVE_NO_ATTACHMENTS; break;
        case 'q': chrun_log_set_quiet(true); break;
        case 'h': return usage(stdout, 0);
        case CHRUN_OPT_VERSION: return chrun_tool_version();
        default: return chrun_tool_bad_option(argv);
        }
    }
    if (output == NULL && isatty(STDOUT_FILENO))
        return chrun_tool_usage_error("refusing to write an archive to a terminal: use -o FILE");
    if (argc - optind == 0 || (argc - optind == 1 && streq(argv[optind], "-"))) {
        if (chrun_tool_image_operand(NULL, stdin_image, sizeof(stdin_image), &err) < 0)
            return chrun_tool_fail(&err);
        images = stdin_images;
        n = 1;
    } else {
        images = (const char *const *) &argv[optind];
        n = (size_t) (argc - optind);
    }
    st = chrun_store_open(NULL, 0, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    if (output != NULL)
        rc = save_to_file(st, images, n, format, flags, output, &err);
    else
        rc = chrun_archive_save(st, images, n, format, flags, STDOUT_FILENO, &err);
    chrun_store_close(st);
    if (rc < 0)
        return chrun_tool_fail(&err);
    return chrun_tool_finish_stdout();
}
