/* User namespaces for rootless runs and unpacks.
 *
 * An ordinary user gets a user namespace in one of two ways:
 *  - with subordinate ids (a range for the user in both /etc/subuid and
 *    /etc/subgid, and the setuid helpers newuidmap/newgidmap of the uidmap
 *    package): the caller becomes root and ids 1..COUNT map to the range
 *    START..START+COUNT-1, as podman's rootless mode does ("0 UID 1" plus
 *    "1 START COUNT"); setgroups stays allowed;
 *  - without them: only the caller is mapped, to root ("0 UID 1"), and
 *    setgroups is denied. */
#ifndef CHRUN_USERNS_H
#define CHRUN_USERNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "chrun/err.h"

#define CHRUN_USERNS_SUBUID_PATH "/etc/subuid"
#define CHRUN_USERNS_SUBGID_PATH "/etc/subgid"
/* Cap for /etc/subuid and /etc/subgid, read into memory. */
#define CHRUN_USERNS_SUBID_FILE_MAX (1024 * 1024)
/* Room for chrun_idmap_format's text. */
#define CHRUN_IDMAP_STR_MAX 128

/* One subordinate range: ids START..START+COUNT-1 on the host. */
struct chrun_subid_range {
    uint32_t start;
    uint32_t count;
};

/* The mapping a rootless process of the caller gets. */
struct chrun_idmap {
    uid_t uid;     /* the caller (real uid) */
    gid_t gid;     /* the caller (real gid) */
    char user[64]; /* the caller's name, or its number when it has none */
    bool subids;   /* true: full mapping through newuidmap/newgidmap */
    struct chrun_subid_range subuid, subgid;
    char newuidmap[256], newgidmap[256]; /* helper paths, when SUBIDS */
    char why[160]; /* when !SUBIDS: why not ("no subordinate ids for ...") */
};

/* Find the first valid range of the user NAME (may be NULL) or of the
 * numeric id ID in TEXT (LEN bytes of /etc/subuid or /etc/subgid syntax:
 * "name:start:count" or "id:start:count" lines). Malformed lines (wrong
 * field count, non-digits, signs, overflow, count 0, a range passing
 * 2^32-1, over-long lines) are ignored, never fatal. Returns 1 with *RET
 * set when found, 0 when not. */
int chrun_userns_parse_subids(const char *text, size_t len, const char *name, uint32_t id,
                              struct chrun_subid_range *ret);

/* Read PATH (at most CHRUN_USERNS_SUBID_FILE_MAX bytes) and look NAME/ID up
 * as chrun_userns_parse_subids does. Returns 1 found, 0 not found (also
 * when PATH does not exist), -1 with ERR set when PATH cannot be read. */
int chrun_userns_read_subids(const char *path, const char *name, uint32_t id,
                             struct chrun_subid_range *ret, struct chrun_err *err);

/* Find the setuid helper NAME ("newuidmap" or "newgidmap"): the first
 * absolute $PATH entry holding NAME as a root-owned executable regular file
 * that is setuid or has file capabilities, else /usr/bin/NAME if it is one. Writes it to RET (SIZE bytes). Returns 0, or -1 with ERR
 * (CHRUN_E_NOTFOUND) when there is none. */
int chrun_userns_find_helper(const char *name, char *ret, size_t size, struct chrun_err *err);

/* Fill MAP for the calling user: MAP->subids when the user has ranges in
 * both files and both helpers exist; otherwise MAP->why says what is
 * missing. Never fails: an unreadable file counts as no ranges. */
void chrun_idmap_load(struct chrun_idmap *map);

/* Write MAP as text ("uid 0:1000:1,1:100000:65536 gid 0:1000:1,1:100000:65536",
 * single-id maps have one part) to RET (CHRUN_IDMAP_STR_MAX bytes). */
void chrun_idmap_format(const struct chrun_idmap *map, char *ret, size_t size);

/* Highest uid (gid) that exists in MAP's namespace: COUNT, or 0. */
uint32_t chrun_idmap_max_uid(const struct chrun_idmap *map);
uint32_t chrun_idmap_max_gid(const struct chrun_idmap *map);

/* Move the calling process into a new user namespace with MAP. With
 * MAP->subids a helper process forked beforehand waits until the namespace
 * exists, then runs newuidmap and newgidmap on the caller's pid; the call
 * returns after they succeeded. The caller is then uid 0 and gid 0 inside.
 * Returns 0, or -1 with ERR set (which helper failed, its exit status and
 * first stderr line). Not thread-safe (forks). */
int chrun_userns_enter(const struct chrun_idmap *map, struct chrun_err *err);

/* The mapping (chrun_idmap_format's text) this process entered with
 * chrun_userns_enter and subordinate ids, or NULL: what it unpacks then
 * belongs to those ids, and bundles record it. */
const char *chrun_userns_entered_idmap(void);

/* Run FN(DATA, err) in a forked child that entered a user namespace with
 * MAP, and wait for it. FN's failure (its struct chrun_err) is carried back.
 * Returns FN's result (0 or -1 with ERR set). */
int chrun_userns_run(const struct chrun_idmap *map, int (*fn)(void *data, struct chrun_err *err),
                     void *data, struct chrun_err *err);

/* Remove DIRFD/NAME recursively as chrun_fs_rm_rf_at does; when an
 * ordinary user is refused (files owned by its subordinate ids, left by a
 * rootless unpack), remove it again inside a user namespace with the
 * caller's subordinate-id mapping. Returns 0 or -1. */
int chrun_userns_rm_rf_at(int dirfd, const char *name, struct chrun_err *err);

/* chrun_fs_rm_rf_at of DIRFD/NAME inside a user namespace with MAP (e.g.
 * only the caller, mapped to root, who may then remove its own directories
 * of mode 0). Returns 0 or -1. */
int chrun_userns_rm_rf_at_mapped(const struct chrun_idmap *map, int dirfd, const char *name,
                                 struct chrun_err *err);

#endif
