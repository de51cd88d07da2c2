/* chrun-pull [--platform os/arch[/variant]] [--all-platforms] [-j N] REF:
 * fetch an image from a registry into the store; print its manifest digest. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chrun/log.h"
#include "chrun/ref.h"
#include "chrun/registry.h"
#include "chrun/store.h"
#include "chrun/tool.h"

enum {
    OPT_PLATFORM = CHRUN_OPT_TOOL_BASE,
    OPT_ALL_PLATFORMS,
    OPT_SIGNATURES,
};

static int usage(FILE *out, int status)
{
    fprintf(out,
            "Usage: chrun-pull [OPTION]... REF\n"
            "Pull the image REF from its registry into the store, name it REF in index.json\n"
            "and print the image manifest digest.\n\n"
            "  -p, --platform=OS/ARCH[/VARIANT]  platform to take from a multi-platform\n"
            "                        image (default: this host)\n"
            "      --all-platforms   fetch every platform; REF names the index and its\n"
            "                        digest is printed\n"
            "  -j, --jobs=N          parallel blob downloads (default %d)\n"
            "      --signatures      also fetch cosign signatures, attestations, SBOMs\n"
            "                        (sha256-<hex>.sig/.att/.sbom tags) and OCI referrers\n"
            "  -q, --quiet           no progress bars or informational messages\n"
            "  -h, --help            show this help\n"
            "      --version         show the version\n\n"
            "Credentials come from $DOCKER_CONFIG/config.json (auths, credHelpers,\n"
            "credsStore). Environment: CHRUN_ROOT, CHRUN_INSECURE_REGISTRIES,\n"
            "CHRUN_REGISTRY_MIRRORS, CHRUN_STALL_TIMEOUT.\n",
            CHRUN_PULL_JOBS_DEFAULT);
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"platform", required_argument, NULL, 'p'},
        {"all-platforms", no_argument, NULL, OPT_ALL_PLATFORMS},
        {"signatures", no_argument, NULL, OPT_SIGNATURES},
        {"jobs", required_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, CHRUN_OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct chrun_pull_opts opts = CHRUN_PULL_OPTS_INIT;
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_digest digest;
    struct chrun_ref ref;
    struct chrun_store *st;
    char *end;
    int c, rc;

    chrun_tool_init("chrun-pull");
    while ((c = getopt_long(argc, argv, "+p:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': opts.platform = optarg; break;
        case OPT_ALL_PLATFORMS: opts.all_platforms = true; break;
        case OPT_SIGNATURES: opts.signatures = true; break;
        case 'j':
            opts.jobs = (int) strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || opts.jobs < 1 ||
                opts.jobs > CHRUN_PULL_JOBS_MAX)
                return chrun_tool_usage_error("invalid --jobs '%s': want 1..%d", optarg,
                                              CHRUN_PULL_JOBS_MAX);
            break;
        case 'q': chrun_log_set_quiet(true); break;
        case 'h': return usage(stdout, 0);
        case CHRUN_OPT_VERSION: return chrun_tool_version();
        default: return chrun_tool_bad_option(argv);
        }
    }
    if (argc - optind != 1)
        return chrun_tool_usage_error("expected exactly one REF");
    if (chrun_ref_parse(&ref, argv[optind], &err) < 0)
        return chrun_tool_usage_error("%s", err.msg);
    if (chrun_registry_platform_check(opts.platform, &err) < 0)
        return chrun_tool_usage_error("%s", err.msg);
    if (opts.platform != NULL && opts.all_platforms)
        return chrun_tool_usage_error("--platform and --all-platforms exclude each other");
    opts.progress = !chrun_log_quiet() && isatty(STDERR_FILENO);
    st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    rc = chrun_registry_pull(st, argv[optind], &opts, &digest, &err);
    chrun_store_close(st);
    if (rc < 0 && err.code == CHRUN_E_USAGE)
        return chrun_tool_usage_error("%s", err.msg);
    if (rc < 0)
        return chrun_tool_fail(&err);
    printf("%s\n", digest.str);
    return chrun_tool_finish_stdout();
}
