/* Users inside an image: the -u user[:group] spec, and its resolution
 * against the image's own /etc/passwd and /etc/group (never the host's NSS). */
#ifndef CHRUN_USER_H
#define CHRUN_USER_H

#include <stddef.h>
#include <sys/types.h>

#include "chrun/err.h"

/* Caps: supplementary groups of one user, bytes of /etc/passwd or /etc/group
 * read from an image. */
#define CHRUN_RUNTIME_MAX_GROUPS 64
#define CHRUN_RUNTIME_ETC_MAX (4 * 1024 * 1024)

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

#endif
