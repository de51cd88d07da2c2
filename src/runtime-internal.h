/* chrun-exec internals shared by runtime.c (the start sequence) and
 * mounts.c (the mount policy); not installed. */
#ifndef CHRUN_RUNTIME_INTERNAL_H
#define CHRUN_RUNTIME_INTERNAL_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

#include "chrun/err.h"
#include "chrun/runtime.h"
#include "chrun/user.h"
#include "chrun/userns.h"

/* The state of one chrun_runtime_exec call. */
struct run {
    const struct chrun_exec_opts *opts;
    const char *bundle;
    int bundlefd;
    int rootfd;
    char root_path[PATH_MAX]; /* root.path: relative to the bundle or absolute */
    char **args;
    char **env;
    char cwd[PATH_MAX];
    struct chrun_exec_user user;
    unsigned ns;
    bool rootless, no_mounts;
    uid_t outer_uid;
    gid_t outer_gid;
    struct chrun_idmap idmap;                /* rootless: the caller's mapping */
    char bundle_idmap[CHRUN_IDMAP_STR_MAX]; /* the bundle's recorded mapping, or "" */
    int *volume_fds; /* host side of each -v, O_PATH */
    sigset_t oldmask;
    bool mask_saved;
    mode_t saved_umask;
    int report_fd; /* write end of the report pipe, or -1 */
};

/* The mount policy of chrun-exec(1); runs inside the new mount namespace:
 * the rootfs (or R->opts->overlay) bound on itself, /proc, /dev, /sys, the
 * host's resolv.conf and hosts, the -v volumes, the working directory, and
 * --read-only. On success returns 0 and *RET_ROOTFD is a new O_PATH fd of
 * the mounted rootfs (the caller closes it); -1 with ERR set on failure. */
int runtime_setup_mounts(struct run *r, int *ret_rootfd, struct chrun_err *err);

#endif
