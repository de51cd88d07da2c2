/* chrun-images [--json | -q | --inventory]: list the named images of the
 * store, or its blob digests for a sender's chrun-save --have. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chrun/attach.h"
#include "chrun/image.h"
#include "chrun/inventory.h"
#include "chrun/log.h"
#include "chrun/tool.h"
#include "util.h"

enum { OPT_JSON = CHRUN_OPT_TOOL_BASE, OPT_INVENTORY };

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-images [--json | -q | --inventory]\n"
                 "List the named images: reference, manifest digest, size, created;\n"
                 "signatures, attestations, SBOMs and referrers under their image.\n\n"
                 "      --json      one JSON array of objects\n"
                 "      --inventory the store's blob digests as JSON, for a sender's\n"
                 "                  chrun-save --have\n"
                 "  -q, --quiet     print only the manifest digests, one per line\n"
                 "  -h, --help      show this help\n"
                 "      --version   show the version\n");
    return status;
}

/* Sizes as docker prints them: SI units, three significant digits. */
static void human_size(int64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    double v = (double) bytes;
    size_t u = 0;
    if (bytes < 0) {
        snprintf(buf, size, "?");
        return;
    }
    while (v >= 1000.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1000.0;
        u++;
    }
    snprintf(buf, size, u == 0 ? "%.0f%s" : "%.3g%s", v, units[u]);
}

/* The attachments of image digest D, as JSON. */
static json_t *attachments_json(const struct chrun_attachment *atts, size_t n_atts,
                                const struct chrun_digest *d)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n_atts; i++)
        if (streq(atts[i].subject.str, d->str))
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "Kind",
                                                 chrun_attach_kind_name(chrun_attach_kind(&atts[i])),
                                                 "Digest", atts[i].digest.str, "Ref", atts[i].ref));
    return arr;
}

static int print_json(const struct chrun_image_info *infos, size_t n,
                      const struct chrun_attachment *atts, size_t n_atts)
{
    json_t *arr = json_array();
    int rc;
    for (size_t i = 0; i < n; i++) {
        const struct chrun_image_info *in = &infos[i];
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:o}", "Ref", in->image.ref, "Digest",
                           in->image.digest.str, "MediaType", in->image.media_type, "Size",
                           (json_int_t) in->size_bytes, "Created", in->created, "Platform",
                           in->platform, "Attachments",
                           attachments_json(atts, n_atts, &in->image.digest)));
    }
    rc = json_dumpf(arr, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(arr);
    printf("\n");
    return rc;
}

static void print_table(const struct chrun_image_info *infos, size_t n,
                        const struct chrun_attachment *atts, size_t n_atts)
{
    printf("%-50s %-19s %-8s %s\n", "REFERENCE", "DIGEST", "SIZE", "CREATED");
    for (size_t i = 0; i < n; i++) {
        char size[32];
        human_size(infos[i].size_bytes, size, sizeof(size));
        printf("%-50s sha256:%.12s %-8s %s\n", infos[i].image.ref,
               chrun_digest_hex(&infos[i].image.digest), size, infos[i].created);
        for (size_t j = 0; j < n_atts; j++)
            if (streq(atts[j].subject.str, infos[i].image.digest.str))
                printf("  + %-46s sha256:%.12s\n",
                       chrun_attach_kind_name(chrun_attach_kind(&atts[j])),
                       chrun_digest_hex(&atts[j].digest));
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"inventory", no_argument, NULL, OPT_INVENTORY},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, CHRUN_OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_image_info *infos = NULL;
    struct chrun_attachment *atts = NULL;
    struct chrun_store *st;
    struct chrun_inventory *inv = NULL;
    bool json = false, quiet = false, inventory = false;
    size_t n = 0, n_atts = 0;
    int c;

    chrun_tool_init("chrun-images");
    while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: json = true; break;
        case OPT_INVENTORY: inventory = true; break;
        case 'q': quiet = true; break;
        case 'h': return usage(stdout, 0);
        case CHRUN_OPT_VERSION: return chrun_tool_version();
        default: return chrun_tool_bad_option(argv);
        }
    }
    if (optind != argc)
        return chrun_tool_usage_error("unexpected operand '%s'", argv[optind]);
    st = chrun_store_open(NULL, 0, &err);
    if (st == NULL && err.code != CHRUN_E_NOTFOUND)
        return chrun_tool_fail(&err);
    if (inventory) {
        /* a missing store has no blobs: an empty inventory */
        inv = chrun_inventory_new(&err);
        c = inv == NULL || (st != NULL && chrun_inventory_add_store(inv, st, &err) < 0) ||
            chrun_inventory_write(inv, stdout, &err) < 0;
        chrun_inventory_free(inv);
        chrun_store_close(st);
        return c ? chrun_tool_fail(&err) : chrun_tool_finish_stdout();
    }
    if (st != NULL && (chrun_image_list(st, &infos, &n, &err) < 0 ||
                       chrun_attach_list(st, NULL, &atts, &n_atts, &err) < 0)) {
        chrun_store_close(st);
        free(infos);
        return chrun_tool_fail(&err);
    }
    chrun_store_close(st);
    if (json)
        print_json(infos, n, atts, n_atts);
    else if (quiet)
        for (size_t i = 0; i < n; i++)
            printf("%s\n", infos[i].image.digest.str);
    else
        print_table(infos, n, atts, n_atts);
    free(infos);
    free(atts);
    return chrun_tool_finish_stdout();
}
