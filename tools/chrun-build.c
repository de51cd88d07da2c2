/* chrun-build [options] CONTEXT|- : see usage() and chrun-build(1). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "chrun/build.h"
#include "chrun/log.h"
#include "chrun/ref.h"
#include "chrun/tool.h"

enum {
    OPT_BUILD_ARG = CHRUN_OPT_TOOL_BASE,
    OPT_NO_CACHE,
    OPT_TARGET,
    OPT_SECRET,
    OPT_IIDFILE,
    OPT_LABEL,
    OPT_NETWORK,
    OPT_PLATFORM,
};

#define MAX_LIST 256

static int usage(FILE *out, int status)
{
    fprintf(out,
            "Usage: chrun-build [-q] [-f FILE|-] [-t NAME]... [--build-arg K[=V]]... [--no-cache]\n"
            "                   [--target STAGE] [--secret id=ID,src=FILE]... [--label K=V]...\n"
            "                   [--network MODE] [--platform P] [--iidfile FILE] CONTEXT|-\n"
            "Build an image from a Dockerfile offline, into the store. Prints the manifest\n"
            "digest. CONTEXT '-': a tar (plain, gzip, zstd) or a Dockerfile on stdin.\n\n"
            "  -f, --file FILE       the Dockerfile (default: CONTEXT/Dockerfile; '-': stdin)\n"
            "  -t, --tag NAME        name the image NAME in index.json (repeatable)\n"
            "      --build-arg K=V   value of ARG K (K alone: from the environment)\n"
            "      --target STAGE    build this stage (default: the last)\n"
            "      --secret id=ID,src=FILE|env=NAME  a secret for RUN --mount=type=secret\n"
            "      --label K=V       set a label on the image (repeatable)\n"
            "      --network MODE    RUN's network unless it says: default, host or none\n"
            "      --platform P      the host's platform (no other can be built)\n"
            "      --iidfile FILE    also write the manifest digest to FILE\n"
            "      --no-cache        run every step; do not use the step cache\n"
            "  -q, --quiet           no informational messages\n"
            "  -h, --help            show this help\n"
            "      --version         show the version\n");
    return status;
}

static int add(const char **list, size_t *n, const char *arg, const char *opt)
{
    if (*n == MAX_LIST)
        return chrun_tool_usage_error("more than %d %s", MAX_LIST, opt);
    list[(*n)++] = arg;
    return 0;
}

static int write_iidfile(const char *path, const char *digest)
{
    FILE *f = fopen(path, "we");
    if (f == NULL || fprintf(f, "%s\n", digest) < 0 || fclose(f) != 0) {
        struct chrun_err err = CHRUN_ERR_INIT;
        chrun_err_sys(&err, errno, "--iidfile '%s'", path);
        return chrun_tool_fail(&err);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},
        {"tag", required_argument, NULL, 't'},
        {"build-arg", required_argument, NULL, OPT_BUILD_ARG},
        {"no-cache", no_argument, NULL, OPT_NO_CACHE},
        {"target", required_argument, NULL, OPT_TARGET},
        {"secret", required_argument, NULL, OPT_SECRET},
        {"iidfile", required_argument, NULL, OPT_IIDFILE},
        {"label", required_argument, NULL, OPT_LABEL},
        {"network", required_argument, NULL, OPT_NETWORK},
        {"platform", required_argument, NULL, OPT_PLATFORM},
        CHRUN_TOOL_LONGOPTS_COMMON,
    };
    struct chrun_build_opts opts = CHRUN_BUILD_OPTS_INIT;
    struct chrun_settings settings;
    struct chrun_err err = CHRUN_ERR_INIT;
    const char *tags[MAX_LIST], *args[MAX_LIST], *secrets[MAX_LIST], *labels[MAX_LIST];
    const char *iidfile = NULL;
    struct chrun_digest digest;
    struct chrun_store *st;
    struct chrun_ref ref;
    int c, rc = 0;

    chrun_tool_init("chrun-build");
    while (rc == 0 && (c = getopt_long(argc, argv, "+f:t:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': opts.dockerfile = optarg; break;
        case 't':
            if (chrun_ref_parse(&ref, optarg, &err) < 0 || ref.digest[0] != '\0')
                return chrun_tool_usage_error("-t '%s': not a NAME[:TAG] reference", optarg);
            rc = add(tags, &opts.n_tags, optarg, "-t");
            break;
        case OPT_BUILD_ARG:
            if (optarg[0] == '=' || optarg[0] == '\0')
                return chrun_tool_usage_error("--build-arg '%s': want K=V or K", optarg);
            rc = add(args, &opts.n_build_args, optarg, "--build-arg");
            break;
        case OPT_SECRET: rc = add(secrets, &opts.n_secrets, optarg, "--secret"); break;
        case OPT_LABEL: rc = add(labels, &opts.n_labels, optarg, "--label"); break;
        case OPT_TARGET: opts.target = optarg; break;
        case OPT_IIDFILE: iidfile = optarg; break;
        case OPT_NETWORK: opts.network = optarg; break;
        case OPT_PLATFORM: opts.platform = optarg; break;
        case OPT_NO_CACHE: opts.no_cache = true; break;
        default:
            if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
                return rc;
            rc = 0; /* -q: parse on */
        }
    }
    if (rc != 0)
        return rc;
    if (argc - optind != 1)
        return chrun_tool_usage_error("expected exactly one CONTEXT");
    opts.context = argv[optind];
    opts.tags = tags;
    opts.build_args = args;
    opts.secrets = secrets;
    opts.labels = labels;
    if (chrun_build_check_opts(&opts, &err) < 0)
        return chrun_tool_usage_error("%s", err.msg);
    if (chrun_settings_from_env(&settings, &err) < 0)
        return chrun_tool_fail(&err);
    opts.settings = &settings;
    st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    rc = chrun_build(st, &opts, &digest, &err);
    chrun_store_close(st);
    if (rc < 0)
        return chrun_tool_fail(&err);
    if (iidfile != NULL && write_iidfile(iidfile, digest.str) != 0)
        return 1;
    printf("%s\n", digest.str);
    return chrun_tool_finish_stdout();
}
