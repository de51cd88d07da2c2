/* chrun-load [FILE|-]: import docker save archives and OCI image layouts. */
#include <getopt.h>
#include <stdio.h>

#include "chrun/archive.h"
#include "chrun/cosign.h"
#include "chrun/key.h"
#include "chrun/log.h"
#include "chrun/tool.h"

enum { OPT_VERIFY_KEY = CHRUN_OPT_TOOL_BASE };

static int usage(FILE *out, int status)
{
    fprintf(out, "Usage: chrun-load [-q] [--verify-key KEY.pub] [FILE|-]\n"
                 "Import a docker save archive or an OCI image layout (tar, tar.gz, tar.zst\n"
                 "or a directory) from FILE or standard input into the store.\n"
                 "Prints one manifest digest per image. Signatures and attestations listed in\n"
                 "the archive are recorded with their image.\n\n"
                 "      --verify-key FILE  load only if every image has a cosign signature\n"
                 "                      that verifies with this PEM public key (else the\n"
                 "                      store is left unchanged)\n"
                 "  -q, --quiet     no informational messages\n"
                 "  -h, --help      show this help\n"
                 "      --version   show the version\n");
    return status;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"verify-key", required_argument, NULL, OPT_VERIFY_KEY},
        CHRUN_TOOL_LONGOPTS_COMMON,
    };
    struct chrun_err err = CHRUN_ERR_INIT;
    struct chrun_archive_result res = {0};
    struct chrun_cosign_opts verify = {0};
    struct chrun_key *key = NULL;
    const char *key_path = NULL;
    struct chrun_store *st;
    int c, rc;

    chrun_tool_init("chrun-load");
    while ((c = getopt_long(argc, argv, "+qh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_VERIFY_KEY: key_path = optarg; break;
        default:
            if ((rc = chrun_tool_common_option(c, argv, usage)) >= 0)
                return rc;
        }
    }
    if (argc - optind > 1)
        return chrun_tool_usage_error("expected at most one FILE");
    if (key_path != NULL && chrun_key_load_public(key_path, &key, &err) < 0)
        return chrun_tool_fail(&err);
    verify.key = key;
    st = chrun_store_open(NULL, CHRUN_STORE_CREATE, &err);
    if (st == NULL) {
        chrun_key_free(key);
        return chrun_tool_fail(&err);
    }
    rc = chrun_archive_load_verify(st, optind < argc ? argv[optind] : NULL,
                                   key ? &verify : NULL, &res, &err);
    chrun_store_close(st);
    chrun_key_free(key);
    if (rc < 0)
        return chrun_tool_fail(&err);
    for (size_t i = 0; i < res.n_digests; i++)
        printf("%s\n", res.digests[i].str);
    chrun_archive_result_release(&res);
    return chrun_tool_finish_stdout();
}
