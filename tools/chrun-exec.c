/* chrun-exec [opts] BUNDLE [CMD [ARG...]]: chroot into a bundle and run its process. */
#include <getopt.h>
#include <stdio.h>

#include "chrun/exec-cli.h"
#include "chrun/log.h"
#include "chrun/runtime.h"
#include "chrun/tool.h"

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-exec [OPTIONS] BUNDLE [CMD [ARG...]]\n"
                 "Run BUNDLE's process (BUNDLE/config.json), or CMD, chrooted in BUNDLE/rootfs,\n"
                 "with /proc, a minimal /dev, /sys (read-only) and the host's resolv.conf and\n"
                 "hosts mounted in a private mount namespace. Exits with the command's status\n"
                 "(128+N when it died of signal N; 127 not found, 126 not executable).\n\n" CHRUN_EXEC_OPTIONS_HELP
                 "  -h, --help            show this help\n"
                 "      --version         show the version\n");
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        CHRUN_EXEC_LONGOPTS,
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, CHRUN_OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_exec_cli cli;
    int c, rc, status = 1;

    chrun_tool_init("chrun-exec");
    chrun_exec_cli_init(&cli, CHRUN_EXEC_REPLACE);
    while ((c = getopt_long(argc, argv, "+" CHRUN_EXEC_SHORTOPTS "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': chrun_exec_cli_release(&cli); return usage(stdout, 0);
        case CHRUN_OPT_VERSION: chrun_exec_cli_release(&cli); return chrun_tool_version();
        default:
            rc = chrun_exec_cli_option(&cli, c, optarg, &err);
            if (rc == 1)
                break;
            chrun_exec_cli_release(&cli);
            return rc < 0 ? chrun_tool_usage_error("%s", err.msg) : chrun_tool_bad_option(argv);
        }
    }
    if (argc - optind < 1) {
        chrun_exec_cli_release(&cli);
        return chrun_tool_usage_error("expected BUNDLE");
    }
    rc = chrun_runtime_exec(argv[optind], &cli.opts, argv + optind + 1, &status, &err);
    chrun_exec_cli_release(&cli);
    if (rc < 0 && err.code == CHRUN_E_USAGE)
        return chrun_tool_usage_error("%s", err.msg);
    if (rc < 0)
        chrun_tool_fail(&err);
    return status;
}
