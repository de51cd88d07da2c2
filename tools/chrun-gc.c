/* chrun-gc: remove blobs, temporary files and bundles nothing refers to. */
#include <getopt.h>
#include <stdio.h>

#include "chrun/gc.h"
#include "chrun/log.h"
#include "chrun/tool.h"

enum { OPT_JSON = CHRUN_OPT_TOOL_BASE, OPT_DRY_RUN, OPT_BUNDLES, OPT_BUILD_CACHE };

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-gc [--dry-run] [--bundles] [--build-cache] [--json] [-q]\n"
                 "Mark every blob reachable from the store's named images, remove the rest\n"
                 "and every stale tmp/ entry. Waits for running pulls, loads and builds.\n\n"
                 "      --dry-run   report what would be removed, remove nothing\n"
                 "      --bundles   also remove bundles of images no longer named\n"
                 "      --build-cache  also remove every build step-cache entry and every\n"
                 "                  RUN --mount=type=cache directory\n"
                 "      --json      print the summary as JSON on stdout\n"
                 "  -q, --quiet     no summary on stderr\n"
                 "  -h, --help      show this help\n"
                 "      --version   show the version\n");
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"bundles", no_argument, NULL, OPT_BUNDLES},
        {"build-cache", no_argument, NULL, OPT_BUILD_CACHE},
        {"json", no_argument, NULL, OPT_JSON},
        CHRUN_TOOL_LONGOPTS_COMMON,
    };
    struct chrun_gc_opts opts = CHRUN_GC_OPTS_INIT;
    struct chrun_gc_report r;
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_store *st;
    bool json = false;
    int c, rc;

    chrun_tool_init("chrun-gc");
    while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_DRY_RUN: opts.dry_run = true; break;
        case OPT_BUNDLES: opts.bundles = true; break;
        case OPT_BUILD_CACHE: opts.build_cache = true; break;
        case OPT_JSON: json = true; break;
        default:
            if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
                return rc;
        }
    }
    if (optind != argc)
        return chrun_tool_usage_error("unexpected operand '%s'", argv[optind]);
    st = chrun_store_open(NULL, CHRUN_STORE_EXCLUSIVE, &err);
    if (st == NULL)
        return chrun_tool_fail(&err);
    rc = chrun_gc_run(st, &opts, &r, &err);
    chrun_store_close(st);
    if (rc < 0)
        return chrun_tool_fail(&err);
    chrun_log_info("%s %llu blobs (%llu bytes), %llu tmp entries, %llu bundles, %llu build "
                   "cache entries, %llu cache mounts; kept %llu blobs",
                   opts.dry_run ? "would remove" : "removed",
                   (unsigned long long) r.blobs_removed, (unsigned long long) r.bytes_freed,
                   (unsigned long long) r.tmp_removed, (unsigned long long) r.bundles_removed,
                   (unsigned long long) r.cache_removed, (unsigned long long) r.cache_mounts_removed,
                   (unsigned long long) r.blobs_kept);
    if (json)
        printf("{\"dry_run\":%s,\"blobs_removed\":%llu,\"bytes_freed\":%llu,"
               "\"tmp_removed\":%llu,\"bundles_removed\":%llu,\"cache_removed\":%llu,"
               "\"cache_mounts_removed\":%llu,\"blobs_kept\":%llu}\n",
               opts.dry_run ? "true" : "false", (unsigned long long) r.blobs_removed,
               (unsigned long long) r.bytes_freed, (unsigned long long) r.tmp_removed,
               (unsigned long long) r.bundles_removed, (unsigned long long) r.cache_removed,
               (unsigned long long) r.cache_mounts_removed, (unsigned long long) r.blobs_kept);
    return chrun_tool_finish_stdout();
}
