/* The chrun-exec runtime: chroot an OCI bundle and run its process, with a
 * private mount namespace and opt-in pid, net, ipc and uts namespaces. */
#ifndef CHRUN_RUNTIME_H
#define CHRUN_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "chrun/err.h"

/* PATH given to a process whose image sets none (docker's default). */
#define CHRUN_RUNTIME_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Caps: supplementary groups of one user, bytes of /etc/passwd or /etc/group
 * read from an image, bind mounts and -e overrides of one run. */
#define CHRUN_RUNTIME_MAX_GROUPS 64
#define CHRUN_RUNTIME_ETC_MAX (4 * 1024 * 1024)
#define CHRUN_RUNTIME_MAX_VOLUMES 64
#define CHRUN_RUNTIME_MAX_ENV 1024

/* Opt-in namespaces (chrun-exec --pid --net --ipc --uts). */
enum chrun_exec_ns {
    CHRUN_EXEC_NS_PID = 1 << 0,
    CHRUN_EXEC_NS_NET = 1 << 1,
    CHRUN_EXEC_NS_IPC = 1 << 2,
    CHRUN_EXEC_NS_UTS = 1 << 3,
    CHRUN_EXEC_NS_ALL = 0xf,
};

enum chrun_exec_flags {
    /* Exec the command in the calling process when no fork is needed (no
     * --pid): chrun_runtime_exec then returns only on failure. Without it the
     * command runs in a child and the caller gets its status back. */
    CHRUN_EXEC_REPLACE = 1 << 0,
    /* Plain chroot(8): no mount namespace, no mounts. */
    CHRUN_EXEC_NO_MOUNTS = 1 << 1,
    /* Mount the rootfs read-only (mounts below it keep their own mode). */
    CHRUN_EXEC_READ_ONLY = 1 << 2,
    /* Run by an ordinary user: map only the caller (to root), even when it
     * has subordinate ids (chrun-build's rootfs belongs to the caller alone,
     * and a RUN step must not leave files it cannot remove). */
    CHRUN_EXEC_SINGLE_ID = 1 << 3,
    /* Keep only docker's default capabilities (chown, dac_override, fowner,
     * fsetid, kill, setgid, setuid, setpcap, net_bind_service, net_raw,
     * sys_chroot, mknod, audit_write, setfcap) in every set, bounding
     * included: for chrun-build's RUN steps, which need no more. */
    CHRUN_EXEC_DEFAULT_CAPS = 1 << 4,
};

/* One -v HOST:CTR[:ro] bind mount. Strings are owned by the struct. */
struct chrun_volume {
    char *host; /* host path, as given */
    char *ctr;  /* absolute path inside the container */
    bool ro;
};

/* A throwaway root filesystem: an overlayfs of LOWER (never written) under a
 * fresh UPPER and WORK (empty directories on one filesystem), mounted on the
 * bundle's rootfs directory inside the run's private mount namespace, so it
 * vanishes with that namespace and the host's mount table never holds it.
 * The upper is throwaway, so the mount is "volatile" (no syncs: unmounting
 * does not wait for the disk). An ordinary user's mount (Linux 5.11+) uses
 * the user.overlay.* xattrs (userxattr). */
struct chrun_exec_overlay {
    const char *lower;
    const char *upper;
    const char *work;
};

/* Options of one run. Arrays are borrowed from the caller for the call. */
struct chrun_exec_opts {
    unsigned flags;                     /* enum chrun_exec_flags */
    unsigned ns;                        /* enum chrun_exec_ns */
    const char *user;                   /* -u user[:group], NULL = config's */
    const char *cwd;                    /* -w dir, NULL = config's */
    const char *hostname;               /* --hostname (implies CHRUN_EXEC_NS_UTS) */
    const char *const *env;             /* -e K=V or K (copied from our environment) */
    size_t n_env;
    const struct chrun_volume *volumes; /* -v */
    size_t n_volumes;
    const struct chrun_exec_overlay *overlay; /* NULL: the bundle's rootfs as it is */
};

#define CHRUN_EXEC_OPTS_INIT {0, 0, NULL, NULL, NULL, NULL, 0, NULL, 0, NULL}

/* Run BUNDLE's process (BUNDLE/config.json: process.args, env, cwd, user and
 * root.path), or CMD (a NULL-terminated vector, NULL or empty = the config's
 * args) in BUNDLE's rootfs as described in chrun-exec(1).
 * Returns 0 with *RET_STATUS = the command's exit status (128+N when it died
 * of signal N). While it waits, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and
 * SIGUSR2 sent to the caller are passed on to the command.
 * With CHRUN_EXEC_REPLACE and no pid namespace it never returns on success.
 * On failure returns -1 with ERR set and *RET_STATUS the exit status a tool
 * should use: 127 command not found, 126 not executable, 1 anything else.
 * When the kernel refuses OPTS->overlay, nothing has run and ERR's code is
 * CHRUN_E_UNSUPPORTED with ERR->errnum the mount's errno (never 0): the
 * caller may fall back to a copy.
 * Not thread-safe: it forks, unshares and changes the signal mask. */
int chrun_runtime_exec(const char *bundle, const struct chrun_exec_opts *opts, char *const cmd[],
                       int *ret_status, struct chrun_err *err);

/* Parse -v SPEC "HOST:CTR[:ro|:rw]" into RET (strings newly allocated; free
 * with chrun_volume_release). CTR must be absolute; HOST must be non-empty.
 * Returns 0, or -1 with ERR (CHRUN_E_USAGE) set. */
int chrun_volume_parse(struct chrun_volume *ret, const char *spec, struct chrun_err *err);

/* Free the strings of V; safe on a zeroed struct. */
void chrun_volume_release(struct chrun_volume *v);

/* A -u spec split at the first ':'. */
struct chrun_user_spec {
    char user[256];  /* name or number, never empty */
    char group[256]; /* name or number, "" when not given */
};

/* Parse "user[:group]". Returns 0, or -1 with ERR (CHRUN_E_USAGE) set. */
int chrun_user_spec_parse(struct chrun_user_spec *ret, const char *spec, struct chrun_err *err);

/* A user resolved inside an image. */
struct chrun_exec_user {
    uid_t uid;
    gid_t gid;
    gid_t groups[CHRUN_RUNTIME_MAX_GROUPS]; /* supplementary groups (setgroups) */
    size_t n_groups;
    char home[256]; /* from the passwd entry, "/" when none */
};

/* Resolve SPEC against the image's /etc/passwd and /etc/group contents
 * (PASSWD and GROUP, NUL-terminated, NULL when the image lacks the file), as
 * docker and runc do: a name must exist; a number need not (gid 0, home "/");
 * with no group given the primary group comes from passwd and the
 * supplementary groups are the groups listing the user by name; with a group
 * given it is the primary group and there are no supplementary ones. Returns 0, or -1 with ERR set (CHRUN_E_NOTFOUND for an unknown name,
 * CHRUN_E_INPUT for a bad number). */
int chrun_exec_user_resolve(struct chrun_exec_user *ret, const struct chrun_user_spec *spec,
                            const char *passwd, const char *group, struct chrun_err *err);

/* Look up the home directory of UID in PASSWD (may be NULL); writes "/" when
 * the uid has no entry. */
void chrun_exec_user_home(const char *passwd, uid_t uid, char *ret_home, size_t size);

/* Build a process environment: IMAGE_ENV ("K=V"; a later entry replaces an
 * earlier one with the same key), then OVERRIDES ("K=V" sets, bare "K" copies
 * our own value of K or removes K when we have none), then defaults for what
 * is still missing: PATH (CHRUN_RUNTIME_DEFAULT_PATH), HOSTNAME (when
 * HOSTNAME is not NULL) and HOME (when HOME is not NULL). Order of first
 * appearance is kept. Returns a NULL-terminated vector the caller frees with
 * chrun_env_free, or NULL with ERR set (CHRUN_E_INPUT for an entry without
 * '=' in IMAGE_ENV or an empty key). */
char **chrun_env_build(const char *const *image_env, size_t n_image, const char *const *overrides,
                       size_t n_over, const char *hostname, const char *home,
                       struct chrun_err *err);

/* Free a vector from chrun_env_build; NULL is fine. */
void chrun_env_free(char **env);

/* The value of KEY in ENV (a NULL-terminated "K=V" vector), or NULL. */
const char *chrun_env_get(char *const *env, const char *key);

/* Command-line state shared by chrun-exec and `chrun run`, so both take the
 * same options. Parse with getopt_long using CHRUN_EXEC_SHORTOPTS and
 * CHRUN_EXEC_LONGOPTS (needs <getopt.h>), and hand every option to
 * chrun_exec_cli_option. */
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
