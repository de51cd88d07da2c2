/* chrun: the front door. `chrun SUB ARGS` runs chrun-SUB (next to this program
 * first, then $PATH), as git runs git-SUB; `chrun run` is one library call,
 * chrun_run (chrun/run.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chrun/exec-cli.h"
#include "chrun/log.h"
#include "chrun/run.h"
#include "chrun/runtime.h"
#include "chrun/tool.h"
#include "util.h"

enum { OPT_RM = CHRUN_OPT_TOOL_BASE, OPT_PLATFORM };

static const char *const subcommands[][2] = {
    {"pull", "fetch an image from a registry into the store"},
    {"load", "import a docker save archive or an OCI layout"},
    {"unpack", "unpack an image into a runnable bundle"},
    {"exec", "chroot into a bundle and run its process"},
    {"run", "pull if missing, unpack (cached) and exec an image"},
    {"build", "build an image from a Dockerfile, offline"},
    {"save", "write images as a docker or OCI archive"},
    {"export", "write an image's or a bundle's root filesystem as one tar"},
    {"push", "upload an image to a registry"},
    {"sign", "sign an image as cosign does (key-based)"},
    {"verify", "check an image's cosign signatures offline"},
    {"images", "list named images"},
    {"inspect", "show an image's manifest and config"},
    {"tag", "name an image"},
    {"rmi", "remove image names"},
    {"gc", "remove blobs and bundles nothing uses"},
};

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun [--help] [--version] COMMAND [ARGS...]\n"
                 "       chrun run [--rm] [-p OS/ARCH] [-q] [EXEC OPTIONS] IMAGE [CMD [ARG...]]\n\n"
                 "Commands (each is also the program chrun-COMMAND):\n");
    for (size_t i = 0; i < ARRAY_SIZE(subcommands); i++)
        fprintf(out, "  %-8s %s\n", subcommands[i][0], subcommands[i][1]);
    fprintf(out, "\n'chrun COMMAND --help' describes each one.\n");
    return status;
}

static int run_usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun run [OPTIONS] IMAGE [CMD [ARG...]]\n"
                 "Pull IMAGE if the store lacks it, unpack it (the cached bundle, or a\n"
                 "throwaway one with --rm) and run it as chrun-exec does. Exits with the\n"
                 "command's status.\n\n"
                 "      --rm              a throwaway root filesystem, discarded afterwards\n"
                 "  -p, --platform P      platform to pull and unpack (default: host)\n"
                 "  -q, --quiet           no progress bars or informational messages\n" CHRUN_EXEC_OPTIONS_HELP
                 "  -h, --help            show this help\n");
    return status;
}

static int dispatch(const char *sub, char **argv)
{
    chrun_run_exec_sibling(sub, argv);
    if (errno == ENOENT)
        return chrun_tool_usage_error("unknown command '%s'", sub);
    chrun_log_error("cannot run 'chrun-%s': %s", sub, strerror(errno));
    return 1;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        CHRUN_EXEC_LONGOPTS,
        {"rm", no_argument, NULL, OPT_RM},
        {"platform", required_argument, NULL, 'p'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct chrun_run_opts opts = CHRUN_RUN_OPTS_INIT;
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_exec_cli cli;
    const char *copy = getenv("CHRUN_RUN_COPY");
    int c, rc, status = 1;

    chrun_log_set_prog("chrun run");
    optind = 1;
    chrun_exec_cli_init(&cli, 0);
    while ((c = getopt_long(argc, argv, "+" CHRUN_EXEC_SHORTOPTS "p:qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_RM: opts.rm = true; break;
        case 'p': opts.platform = optarg; break;
        case 'q': chrun_log_set_quiet(true); break;
        case 'h': chrun_exec_cli_release(&cli); return run_usage(stdout, 0);
        default:
            rc = chrun_exec_cli_option(&cli, c, optarg, &err);
            if (rc == 1)
                break;
            chrun_exec_cli_release(&cli);
            return rc < 0 ? chrun_tool_usage_error("%s", err.msg) : chrun_tool_bad_option(argv);
        }
    }
    if (optind >= argc) {
        chrun_exec_cli_release(&cli);
        return chrun_tool_usage_error("expected IMAGE");
    }
    opts.copy = copy != NULL && *copy != '\0' && strcmp(copy, "0") != 0;
    rc = chrun_run(argv[optind], &opts, &cli.opts, argv + optind + 1, &status, &err);
    if (rc < 0 && err.code == CHRUN_E_USAGE)
        status = chrun_tool_usage_error("%s", err.msg);
    else if (rc < 0 && err.code != CHRUN_E_OK)
        chrun_tool_fail(&err);
    chrun_exec_cli_release(&cli);
    return status;
}

int main(int argc, char **argv)
{
    chrun_tool_init("chrun");
    if (argc < 2)
        return usage(stderr, 2);
    if (streq(argv[1], "-h") || streq(argv[1], "--help") || streq(argv[1], "help"))
        return usage(stdout, 0);
    if (streq(argv[1], "--version"))
        return chrun_tool_version();
    if (argv[1][0] == '-')
        return chrun_tool_usage_error("unknown option '%s'", argv[1]);
    if (streq(argv[1], "run"))
        return cmd_run(argc - 1, argv + 1);
    return dispatch(argv[1], argv + 1);
}
