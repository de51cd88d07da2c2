#include "chrun/user.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int chrun_user_spec_parse(struct chrun_user_spec *ret, const char *spec, struct chrun_err *err)
{
    const char *colon = strchr(spec, ':');
    size_t ulen = colon ? (size_t) (colon - spec) : strlen(spec);

    memset(ret, 0, sizeof(*ret));
    if (ulen == 0)
        return chrun_err_set(err, CHRUN_E_USAGE, "-u '%s': empty user", spec);
    if (ulen >= sizeof(ret->user) || (colon && strlen(colon + 1) >= sizeof(ret->group)))
        return chrun_err_set(err, CHRUN_E_USAGE, "-u '%s': name too long", spec);
    if (colon && (colon[1] == '\0' || strchr(colon + 1, ':') != NULL))
        return chrun_err_set(err, CHRUN_E_USAGE, "-u '%s': expected user[:group]", spec);
    memcpy(ret->user, spec, ulen);
    if (colon)
        strcpy(ret->group, colon + 1);
    return 0;
}

/* Parse a decimal id; -1 if S is not entirely digits or out of range. */
static long long parse_id(const char *s)
{
    char *end;
    unsigned long long v;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v >= (unsigned long long) UINT32_MAX)
        return -1;
    return (long long) v;
}

static bool is_number(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Iterate the lines of an /etc/passwd or /etc/group buffer: split LINE into at
 * most MAX ':'-separated fields (in place). Returns the number of fields. */
static size_t split_fields(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (p != NULL && n < max)
        fields[n++] = strsep(&p, ":");
    return n;
}

struct pw_entry {
    char name[256];
    long long uid, gid;
    char home[256];
};

/* Find a passwd entry by NAME (when not NULL) or by UID. Returns 1 found, 0 not. */
static int passwd_find(const char *passwd, const char *name, long long uid, struct pw_entry *ret)
{
    const char *p = passwd;
    while (p != NULL && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t) (nl - p) : strlen(p);
        char line[2048], *f[7];
        size_t n;
        if (len < sizeof(line) && p[0] != '#') {
            memcpy(line, p, len);
            line[len] = '\0';
            n = split_fields(line, f, 7);
            if (n >= 4) {
                long long u = parse_id(f[2]), g = parse_id(f[3]);
                bool hit = name ? streq(f[0], name) : (u == uid);
                if (hit && u >= 0 && g >= 0 && strlen(f[0]) < sizeof(ret->name)) {
                    strcpy(ret->name, f[0]);
                    ret->uid = u;
                    ret->gid = g;
                    snprintf(ret->home, sizeof(ret->home), "%s",
                             n >= 6 && f[5][0] == '/' ? f[5] : "/");
                    return 1;
                }
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return 0;
}

/* Walk /etc/group: with NAME find that group's gid (return 1); with MEMBER
 * collect the gids of groups listing MEMBER into GIDS. */
static int group_scan(const char *group, const char *name, long long *ret_gid, const char *member,
                      gid_t *gids, size_t *n_gids)
{
    const char *p = group;
    while (p != NULL && *p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t) (nl - p) : strlen(p);
        char line[8192], *f[4];
        if (len < sizeof(line) && p[0] != '#') {
            memcpy(line, p, len);
            line[len] = '\0';
            if (split_fields(line, f, 4) == 4) {
                long long g = parse_id(f[2]);
                if (g >= 0 && name != NULL && streq(f[0], name)) {
                    *ret_gid = g;
                    return 1;
                }
                if (g >= 0 && member != NULL) {
                    char *m, *save = NULL;
                    for (m = strtok_r(f[3], ",", &save); m; m = strtok_r(NULL, ",", &save)) {
                        if (streq(m, member) && *n_gids < CHRUN_RUNTIME_MAX_GROUPS) {
                            size_t i;
                            for (i = 0; i < *n_gids && gids[i] != (gid_t) g; i++)
                                ;
                            if (i == *n_gids)
                                gids[(*n_gids)++] = (gid_t) g;
                        }
                    }
                }
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return 0;
}

void chrun_exec_user_home(const char *passwd, uid_t uid, char *ret_home, size_t size)
{
    struct pw_entry pw;
    if (passwd != NULL && passwd_find(passwd, NULL, uid, &pw))
        snprintf(ret_home, size, "%s", pw.home);
    else
        snprintf(ret_home, size, "/");
}

int chrun_exec_user_resolve(struct chrun_exec_user *ret, const struct chrun_user_spec *spec,
                            const char *passwd, const char *group, struct chrun_err *err)
{
    struct pw_entry pw;
    bool found;

    memset(ret, 0, sizeof(*ret));
    if (is_number(spec->user)) {
        long long uid = parse_id(spec->user);
        if (uid < 0)
            return chrun_err_set(err, CHRUN_E_INPUT, "user '%s': bad uid", spec->user);
        found = passwd != NULL && passwd_find(passwd, NULL, uid, &pw);
        ret->uid = (uid_t) uid;
        ret->gid = found ? (gid_t) pw.gid : 0;
    } else {
        found = passwd != NULL && passwd_find(passwd, spec->user, -1, &pw);
        if (!found)
            return chrun_err_set(err, CHRUN_E_NOTFOUND, "user '%s' not found in the image's /etc/passwd",
                                 spec->user);
        ret->uid = (uid_t) pw.uid;
        ret->gid = (gid_t) pw.gid;
    }
    snprintf(ret->home, sizeof(ret->home), "%s", found ? pw.home : "/");
    if (spec->group[0] != '\0') {
        long long gid = -1;
        if (is_number(spec->group)) {
            gid = parse_id(spec->group);
            if (gid < 0)
                return chrun_err_set(err, CHRUN_E_INPUT, "group '%s': bad gid", spec->group);
        } else if (group == NULL || !group_scan(group, spec->group, &gid, NULL, NULL, NULL)) {
            return chrun_err_set(err, CHRUN_E_NOTFOUND, "group '%s' not found in the image's /etc/group",
                                 spec->group);
        }
        ret->gid = (gid_t) gid;
        return 0;
    }
    if (found && group != NULL)
        group_scan(group, NULL, NULL, pw.name, ret->groups, &ret->n_groups);
    return 0;
}
