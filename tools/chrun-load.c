/* chrun-load [FILE|-]: import docker save archives and OCI image layouts. */
#include <getopt.h>
#include <stdio.h>

#include "chrun/archive.h"
#include "chrun/log.h"
#include "chrun/tool.h"

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-load [-q] [FILE|-]\n"
                 "Import a docker save archive or an OCI image layout (tar, tar.gz, tar.zst\n"
                 "or a directory) from FILE or standard input into the store.\n"
                 "Prints one manifest digest per image.\n\n"
                 "  -q, --quiet     no informational messages\n"
                 "  -h, --help      show this help\n"
                 "      --version   show the version\n");
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, CHRUN_OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_archive_result res = {0};
    struct chrun_store *st;
    int c, rc;

    chrun_tool_init("chrun-load");
    while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'q': chrun_log_set_quiet(true); break;
        case 'h': return usage(stdout, 0);
        case CHRUN_OPT_VERSION: return chrun_tool_version();
        default: return chrun_tool_bad_option(argv);
        }
    }
    if (argc - optind > 1)
        return chrun_tool_usage_error("expected at most one FILE");
    st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    rc = chrun_archive_load(st, optind < argc ? argv[optind] : NULL, &res, &err);
    chrun_store_close(st);
    if (rc < 0)
        return chrun_tool_fail(&err);
    for (size_t i = 0; i < res.n_digests; i++)
        printf("%s\n", res.digests[i].str);
    chrun_archive_result_release(&res);
    return chrun_tool_finish_stdout();
}
