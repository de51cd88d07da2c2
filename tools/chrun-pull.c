/* chrun-pull [--platform os/arch[/variant]] [--all-platforms] [-j N]
 * [--tree | --unpack[=BUNDLE]] REF... | -i LIST: fetch images from
 * registries into the store; print their manifest digests. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chrun/imagelist.h"
#include "chrun/log.h"
#include "chrun/ref.h"
#include "chrun/registry.h"
#include "chrun/settings.h"
#include "chrun/store.h"
#include "chrun/tool.h"

enum {
    OPT_PLATFORM = CHRUN_OPT_TOOL_BASE,
    OPT_ALL_PLATFORMS,
    OPT_SIGNATURES,
    OPT_TREE,
    OPT_UNPACK,
};

static int usage(FILE *out, int status)
{
    fprintf(out,
            "Usage: chrun-pull [OPTION]... REF...\n"
            "  or:  chrun-pull [OPTION]... -i LIST\n"
            "Pull each image REF from its registry into the store, name it REF in\n"
            "index.json and print its image manifest digest, one line per REF in order.\n"
            "Several images are pulled in parallel and blobs they share are fetched once;\n"
            "one that fails is reported and the others still complete.\n\n"
            "  -i, --images=LIST     pull the references listed in LIST ('-': stdin), one\n"
            "                        per line; '#' comments and blank lines are ignored\n"
            "  -p, --platform=OS/ARCH[/VARIANT]  platform to take from a multi-platform\n"
            "                        image (default: this host)\n"
            "      --all-platforms   fetch every platform; REF names the index and its\n"
            "                        digest is printed\n"
            "  -j, --jobs=N          parallel downloads, over all images (default %d)\n"
            "      --signatures      also fetch cosign signatures, attestations, SBOMs\n"
            "                        (sha256-<hex>.sig/.att/.sbom tags) and OCI referrers\n"
            "      --tree            also make the tree `chrun run --rm` mounts, each layer\n"
            "                        applied while it downloads\n"
            "      --unpack[=BUNDLE] also unpack the one REF into BUNDLE as chrun-unpack\n"
            "                        would (default: its cached bundle), each layer\n"
            "                        applied while it downloads\n"
            "  -q, --quiet           no progress bars or informational messages\n"
            "  -h, --help            show this help\n"
            "      --version         show the version\n\n"
            "Credentials come from $DOCKER_CONFIG/config.json (auths, credHelpers,\n"
            "credsStore). Environment: CHRUN_ROOT, CHRUN_INSECURE_REGISTRIES,\n"
            "CHRUN_REGISTRY_MIRRORS, CHRUN_STALL_TIMEOUT.\n",
            CHRUN_PULL_JOBS_DEFAULT);
    return status;
}

/* Pull N REFS; print each digest in order. Returns 0; -1 with ERR (one
 * REF); or 1 when some of several failed, each reported on its own line. */
static int pull_all(struct chrun_store *st, const char *const *refs, size_t n,
                    const struct chrun_pull_opts *opts, struct chrun_err *err)
{
    struct chrun_pull_result *res;
    struct chrun_digest digest;
    int rc;

    if (n == 1) {
        if (chrun_registry_pull(st, refs[0], opts, &digest, err) < 0)
            return -1;
        printf("%s\n", digest.str);
        return 0;
    }
    res = calloc(n, sizeof(*res));
    if (res == NULL)
        return chrun_err_sys(err, ENOMEM, "pull");
    rc = chrun_registry_pull_many(st, refs, n, opts, res, err);
    for (size_t i = 0; i < n; i++) {
        if (res[i].rc == 0)
            printf("%s\n", res[i].digest.str);
        else
            chrun_tool_fail(&res[i].err);
    }
    free(res);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"platform", required_argument, NULL, 'p'},
        {"all-platforms", no_argument, NULL, OPT_ALL_PLATFORMS},
        {"signatures", no_argument, NULL, OPT_SIGNATURES},
        {"tree", no_argument, NULL, OPT_TREE},
        {"unpack", optional_argument, NULL, OPT_UNPACK},
        {"jobs", required_argument, NULL, 'j'},
        {"images", required_argument, NULL, 'i'},
        CHRUN_TOOL_LONGOPTS_COMMON,
    };
    struct chrun_pull_opts opts = CHRUN_PULL_OPTS_INIT;
    struct chrun_settings settings;
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_imagelist list = {0};
    const char *list_path = NULL;
    const char *const *refs;
    size_t n;
    struct chrun_ref ref;
    struct chrun_store *st;
    char *end;
    int c, rc;

    chrun_tool_init("chrun-pull");
    while ((c = getopt_long(argc, argv, "+p:j:i:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': opts.platform = optarg; break;
        case OPT_ALL_PLATFORMS: opts.all_platforms = true; break;
        case OPT_SIGNATURES: opts.signatures = true; break;
        case OPT_TREE: opts.tree = true; break;
        case OPT_UNPACK:
            opts.unpack = true;
            opts.bundle = optarg;
            if (optarg != NULL && *optarg == '\0')
                return chrun_tool_usage_error("--unpack=BUNDLE: empty BUNDLE");
            break;
        case 'j':
            opts.jobs = (int) strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || opts.jobs < 1 ||
                opts.jobs > CHRUN_PULL_JOBS_MAX)
                return chrun_tool_usage_error("invalid --jobs '%s': want 1..%d", optarg,
                                              CHRUN_PULL_JOBS_MAX);
            break;
        case 'i': list_path = optarg; break;
        default:
            if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
                return rc;
        }
    }
    if (list_path != NULL && argc > optind)
        return chrun_tool_usage_error("-i LIST and REF operands exclude each other");
    if (list_path == NULL && argc == optind)
        return chrun_tool_usage_error("expected a REF or -i LIST");
    for (int i = optind; i < argc; i++)
        if (chrun_ref_parse(&ref, argv[i], &err) < 0)
            return chrun_tool_usage_error("%s", err.msg);
    if (chrun_registry_platform_check(opts.platform, &err) < 0)
        return chrun_tool_usage_error("%s", err.msg);
    if (opts.platform != NULL && opts.all_platforms)
        return chrun_tool_usage_error("--platform and --all-platforms exclude each other");
    if (opts.tree && opts.unpack)
        return chrun_tool_usage_error("--tree and --unpack exclude each other");
    if (opts.unpack && (list_path != NULL || argc - optind > 1))
        return chrun_tool_usage_error("--unpack takes one REF");
    if (chrun_settings_from_env(&settings, &err) < 0)
        return chrun_tool_fail(&err);
    opts.settings = &settings;
    if (list_path != NULL && chrun_imagelist_read(&list, list_path, &err) < 0) {
        chrun_imagelist_release(&list);
        return chrun_tool_fail(&err);
    }
    refs = list_path ? (const char *const *) list.items : (const char *const *) &argv[optind];
    n = list_path ? list.n : (size_t) (argc - optind);
    opts.progress = n == 1 && !chrun_log_quiet() && isatty(STDERR_FILENO);
    st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    rc = st != NULL ? pull_all(st, refs, n, &opts, &err) : -1;
    chrun_store_close(st);
    chrun_imagelist_release(&list);
    if (rc < 0 && err.code == CHRUN_E_USAGE)
        return chrun_tool_usage_error("%s", err.msg);
    if (rc < 0)
        return chrun_tool_fail(&err);
    if (rc > 0) {
        chrun_tool_finish_stdout();
        return 1;
    }
    return chrun_tool_finish_stdout();
}
