/* The chrun-exec runtime: chroot an OCI bundle and run its process, with a
 * private mount namespace and opt-in pid, net, ipc and uts namespaces. The
 * parsers it uses have their own headers: chrun/env.h (the process
 * environment), chrun/user.h (-u and the image's passwd/group),
 * chrun/volume.h (-v); the shared command line is chrun/exec-cli.h. */
#ifndef CHRUN_RUNTIME_H
#define CHRUN_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "chrun/err.h"
#include "chrun/volume.h"

/* Cap on the bind mounts (-v) of one run. */
#define CHRUN_RUNTIME_MAX_VOLUMES 64

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
    /* Mount OPTS->overlay with metacopy=on and redirect_dir=on, whatever the
     * overlay module's defaults: a metadata change copies up no data, and a
     * renamed lower directory or metacopy file points at its lower path
     * (trusted.overlay.redirect). Root only: a userxattr mount (an ordinary
     * user's) cannot have either, so there the flag is ignored. */
    CHRUN_EXEC_OVERLAY_METACOPY = 1 << 5,
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

#endif
