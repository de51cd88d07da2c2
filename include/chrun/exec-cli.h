/* The command line shared by chrun-exec and `chrun run`, so both take the
 * same -e, -u, -w, -v and namespace options. */
#ifndef CHRUN_EXEC_CLI_H
#define CHRUN_EXEC_CLI_H

#include "chrun/env.h"
#include "chrun/err.h"
#include "chrun/runtime.h"
#include "chrun/volume.h"

/* The options parsed so far. Parse with getopt_long using
 * CHRUN_EXEC_SHORTOPTS and CHRUN_EXEC_LONGOPTS (needs <getopt.h>), and hand
 * every option to chrun_exec_cli_option. */
struct chrun_exec_cli {
    struct chrun_exec_opts opts; /* points into the arrays below */
    const char *env[CHRUN_RUNTIME_MAX_ENV];
    struct chrun_volume volumes[CHRUN_RUNTIME_MAX_VOLUMES];
};

enum {
    CHRUN_EXEC_OPT_READ_ONLY = 0x300,
    CHRUN_EXEC_OPT_HOSTNAME,
    CHRUN_EXEC_OPT_PID,
    CHRUN_EXEC_OPT_NET,
    CHRUN_EXEC_OPT_IPC,
    CHRUN_EXEC_OPT_UTS,
    CHRUN_EXEC_OPT_ISOLATE,
    CHRUN_EXEC_OPT_NO_MOUNTS,
};

#define CHRUN_EXEC_SHORTOPTS "e:u:w:v:"
#define CHRUN_EXEC_LONGOPTS                                                                        \
    {"env", required_argument, NULL, 'e'}, {"user", required_argument, NULL, 'u'},                 \
        {"workdir", required_argument, NULL, 'w'}, {"volume", required_argument, NULL, 'v'},       \
        {"read-only", no_argument, NULL, CHRUN_EXEC_OPT_READ_ONLY},                                \
        {"hostname", required_argument, NULL, CHRUN_EXEC_OPT_HOSTNAME},                            \
        {"pid", no_argument, NULL, CHRUN_EXEC_OPT_PID},                                            \
        {"net", no_argument, NULL, CHRUN_EXEC_OPT_NET},                                            \
        {"ipc", no_argument, NULL, CHRUN_EXEC_OPT_IPC},                                            \
        {"uts", no_argument, NULL, CHRUN_EXEC_OPT_UTS},                                            \
        {"isolate", no_argument, NULL, CHRUN_EXEC_OPT_ISOLATE},                                    \
        {"no-mounts", no_argument, NULL, CHRUN_EXEC_OPT_NO_MOUNTS}

/* The option lines of a usage text, for the tools' --help. */
#define CHRUN_EXEC_OPTIONS_HELP                                                                    \
    "  -e, --env K=V|K       set (or copy from here) an environment variable\n"                    \
    "  -u, --user U[:G]      run as user U (name or number, resolved in the image)\n"              \
    "  -w, --workdir DIR     working directory inside the container\n"                             \
    "  -v, --volume H:C[:ro] bind host path H at C (read-only with :ro)\n"                          \
    "      --read-only       mount the rootfs read-only\n"                                         \
    "      --hostname NAME   set the hostname (implies --uts)\n"                                   \
    "      --pid             new pid namespace with a reaping, signal-forwarding init\n"           \
    "      --net             new network namespace with only loopback up\n"                        \
    "      --ipc             new IPC namespace\n"                                                  \
    "      --uts             new UTS namespace\n"                                                  \
    "      --isolate         all four namespaces\n"                                                \
    "      --no-mounts       a plain chroot: no mount namespace, no mounts\n"

/* Set up CLI with empty options (FLAGS = initial enum chrun_exec_flags). */
void chrun_exec_cli_init(struct chrun_exec_cli *cli, unsigned flags);

/* Apply option C (a getopt_long result) with argument ARG. Returns 1 when C
 * is an exec option, 0 when it is not, -1 with ERR (CHRUN_E_USAGE) when its
 * argument is bad. */
int chrun_exec_cli_option(struct chrun_exec_cli *cli, int c, const char *arg,
                          struct chrun_err *err);

/* Free what chrun_exec_cli_option allocated. */
void chrun_exec_cli_release(struct chrun_exec_cli *cli);

#endif
