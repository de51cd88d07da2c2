/* chrun-build [-f FILE] [-t NAME]... [--build-arg K=V]... [--no-cache] CONTEXT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "chrun/build.h"
#include "chrun/log.h"
#include "chrun/ref.h"
#include "chrun/tool.h"

enum { OPT_BUILD_ARG = CHRUN_OPT_TOOL_BASE, OPT_NO_CACHE };

#define MAX_LIST 256

static int usage(FILE *out, int status)
{
    fprintf(out,
            "Usage: chrun-build [-q] [-f FILE] [-t NAME]... [--build-arg K[=V]]... [--no-cache]\n"
            "                   CONTEXT\n"
            "Build an image from a Dockerfile (a subset: FROM, RUN, COPY, ADD, ENV, ARG,\n"
            "WORKDIR, USER, LABEL, EXPOSE, ENTRYPOINT, CMD, VOLUME) offline, into the store.\n"
            "Prints the manifest digest.\n\n"
            "  -f, --file FILE       the Dockerfile (default: CONTEXT/Dockerfile)\n"
            "  -t, --tag NAME        name the image NAME in index.json (repeatable)\n"
            "      --build-arg K=V   value of ARG K (K alone: from the environment)\n"
            "      --no-cache        run every step; do not use the step cache\n"
            "  -q, --quiet           no informational messages\n"
            "  -h, --help            show this help\n"
            "      --version         show the version\n");
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},
        {"tag", required_argument, NULL, 't'},
        {"build-arg", required_argument, NULL, OPT_BUILD_ARG},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, CHRUN_OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct chrun_build_opts opts = CHRUN_BUILD_OPTS_INIT;
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *tags[MAX_LIST], *args[MAX_LIST];
    struct chrun_digest digest;
    struct chrun_store *st;
    struct chrun_ref ref;
    int c, rc;

    chrun_tool_init("chrun-build");
    while ((c = getopt_long(argc, argv, "+f:t:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': opts.dockerfile = optarg; break;
        case 't':
            if (opts.n_tags == MAX_LIST)
                return chrun_tool_usage_error("more than %d -t", MAX_LIST);
            if (chrun_ref_parse(&ref, optarg, &err) < 0 || ref.digest[0] != '\0')
                return chrun_tool_usage_error("-t '%s': not a NAME[:TAG] reference", optarg);
            tags[opts.n_tags++] = optarg;
            break;
        case OPT_BUILD_ARG:
            if (opts.n_build_args == MAX_LIST)
                return chrun_tool_usage_error("more than %d --build-arg", MAX_LIST);
            if (optarg[0] == '=' || optarg[0] == '\0')
                return chrun_tool_usage_error("--build-arg '%s': want K=V or K", optarg);
            args[opts.n_build_args++] = optarg;
            break;
        case OPT_NO_CACHE: opts.no_cache = true; break;
        case 'q': chrun_log_set_quiet(true); break;
        case 'h': return usage(stdout, 0);
        case CHRUN_OPT_VERSION: return chrun_tool_version();
        default: return chrun_tool_bad_option(argv);
        }
    }
    if (argc - optind != 1)
        return chrun_tool_usage_error("expected exactly one CONTEXT");
    opts.context = argv[optind];
    opts.tags = tags;
    opts.build_args = args;
    st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    rc = chrun_build(st, &opts, &digest, &err);
    chrun_store_close(st);
    if (rc < 0)
        return chrun_tool_fail(&err);
    printf("%s\n", digest.str);
    return chrun_tool_finish_stdout();
}
