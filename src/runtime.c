#include "chrun/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "chrun/bundle.h"
#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/userns.h"
#include "cleanup.h"
#include "util.h"

/* ---- pure parsers ------------------------------------------------------ */

void chrun_volume_release(struct chrun_volume *v)
{
    free(v->host);
    free(v->ctr);
    v->host = v->ctr = NULL;
}

int chrun_volume_parse(struct chrun_volume *ret, const char *spec, struct chrun_err *err)
{
    cleanup_free char *copy = strdup(spec);
    char *parts[4] = {NULL};
    size_t n = 0;
    char *p;

    memset(ret, 0, sizeof(*ret));
    if (copy == NULL)
        return chrun_err_sys(err, ENOMEM, "-v '%s'", spec);
    /* strsep keeps empty fields, so "a::b" is rejected instead of read as "a:b" */
    p = copy;
    while (p != NULL && n < ARRAY_SIZE(parts))
        parts[n++] = strsep(&p, ":");
    if (p != NULL || n < 2)
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s': expected HOST:CTR[:ro|rw]", spec);
    if (n == 3 && !streq(parts[2], "ro") && !streq(parts[2], "rw"))
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s': unknown mode '%s' (use ro or rw)", spec,
                             parts[2]);
    if (n > 3)
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s': expected HOST:CTR[:ro|rw]", spec);
    if (parts[0][0] == '\0')
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s': empty host path", spec);
    if (parts[1][0] != '/')
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s': container path must be absolute",
                             spec);
    ret->host = strdup(parts[0]);
    ret->ctr = strdup(parts[1]);
    ret->ro = n == 3 && streq(parts[2], "ro");
    if (ret->host == NULL || ret->ctr == NULL) {
        chrun_volume_release(ret);
        return chrun_err_sys(err, ENOMEM, "-v '%s'", spec);
    }
    return 0;
}

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

/* ---- environment ------------------------------------------------------- */

void chrun_env_free(char **env)
{
    if (env == NULL)
        return;
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

static size_t key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t) (eq - kv) : strlen(kv);
}

const char *chrun_env_get(char *const *env, const char *key)
{
    size_t klen = strlen(key);
    for (; env && *env; env++)
        if (key_len(*env) == klen && strncmp(*env, key, klen) == 0 && (*env)[klen] == '=')
            return *env + klen + 1;
    return NULL;
}

struct envvec {
    char **v;
    size_t n;
};

static ssize_t env_find(const struct envvec *e, const char *key, size_t klen)
{
    for (size_t i = 0; i < e->n; i++)
        if (key_len(e->v[i]) == klen && strncmp(e->v[i], key, klen) == 0)
            return (ssize_t) i;
    return -1;
}

/* Set KV ("K=V"), replacing an existing K in place. Takes a copy. */
static int env_set(struct envvec *e, const char *kv)
{
    size_t klen = key_len(kv);
    ssize_t i = env_find(e, kv, klen);
    char *copy = strdup(kv);
    if (copy == NULL)
        return -1;
    if (i >= 0) {
        free(e->v[i]);
        e->v[i] = copy;
        return 0;
    }
    if (e->n + 1 >= CHRUN_RUNTIME_MAX_ENV + 8) {
        free(copy);
        errno = E2BIG;
        return -1;
    }
    e->v[e->n++] = copy;
    e->v[e->n] = NULL;
    return 0;
}

static void env_unset(struct envvec *e, const char *key)
{
    ssize_t i = env_find(e, key, strlen(key));
    if (i < 0)
        return;
    free(e->v[i]);
    memmove(&e->v[i], &e->v[i + 1], (e->n - (size_t) i) * sizeof(char *));
    e->n--;
}

static int env_default(struct envvec *e, const char *key, const char *value)
{
    cleanup_free char *kv = NULL;
    if (value == NULL || env_find(e, key, strlen(key)) >= 0)
        return 0;
    if (asprintf(&kv, "%s=%s", key, value) < 0)
        return -1;
    return env_set(e, kv);
}

char **chrun_env_build(const char *const *image_env, size_t n_image, const char *const *overrides,
                       size_t n_over, const char *hostname, const char *home,
                       struct chrun_err *err)
{
    struct envvec e = {NULL, 0};

    if (n_image + n_over > CHRUN_RUNTIME_MAX_ENV)
        return chrun_err_set(err, CHRUN_E_INPUT, "too many environment variables (%zu)",
                             n_image + n_over),
               NULL;
    e.v = calloc(CHRUN_RUNTIME_MAX_ENV + 8, sizeof(char *));
    if (e.v == NULL)
        return chrun_err_sys(err, ENOMEM, "environment"), NULL;
    for (size_t i = 0; i < n_image; i++) {
        const char *kv = image_env[i];
        if (strchr(kv, '=') == NULL || kv[0] == '=') {
            chrun_env_free(e.v);
            return chrun_err_set(err, CHRUN_E_INPUT, "environment entry '%s': expected KEY=VALUE",
                                 kv),
                   NULL;
        }
        if (env_set(&e, kv) < 0) {
            int saved = errno;
            chrun_env_free(e.v);
            return chrun_err_sys(err, saved, "environment"), NULL;
        }
    }
    for (size_t i = 0; i < n_over; i++) {
        const char *kv = overrides[i];
        int rc = 0;
        if (kv[0] == '=' || kv[0] == '\0') {
            chrun_env_free(e.v);
            return chrun_err_set(err, CHRUN_E_USAGE, "-e '%s': empty variable name", kv), NULL;
        }
        if (strchr(kv, '=') != NULL) {
            rc = env_set(&e, kv);
        } else {
            const char *ours = getenv(kv);
            cleanup_free char *full = NULL;
            if (ours == NULL) {
                env_unset(&e, kv);
            } else if (asprintf(&full, "%s=%s", kv, ours) < 0) {
                rc = -1;
            } else {
                rc = env_set(&e, full);
            }
        }
        if (rc < 0) {
            int saved = errno;
            chrun_env_free(e.v);
            return chrun_err_sys(err, saved, "environment"), NULL;
        }
    }
    if (env_default(&e, "PATH", CHRUN_RUNTIME_DEFAULT_PATH) < 0 ||
        env_default(&e, "HOSTNAME", hostname) < 0 || env_default(&e, "HOME", home) < 0) {
        int saved = errno;
        chrun_env_free(e.v);
        return chrun_err_sys(err, saved, "environment"), NULL;
    }
    return e.v;
}

/* ---- one run ----------------------------------------------------------- */

/* Signals passed on to the command (SPEC: SIGINT/SIGTERM/SIGHUP reach it). */
static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

/* What a failed child reports to the process that waits for it. */
struct child_report {
    int status;
    struct chrun_err err;
};

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

static void run_release(struct run *r)
{
    if (r->bundlefd >= 0)
        close(r->bundlefd);
    if (r->rootfd >= 0)
        close(r->rootfd);
    for (size_t i = 0; r->volume_fds && i < r->opts->n_volumes; i++)
        if (r->volume_fds[i] >= 0)
            close(r->volume_fds[i]);
    free(r->volume_fds);
    if (r->args) {
        for (char **a = r->args; *a; a++)
            free(*a);
        free(r->args);
    }
    chrun_env_free(r->env);
}

/* Copy a JSON array of strings into a new NULL-terminated vector. */
static int json_strv(json_t *arr, const char *what, char ***ret, size_t *ret_n,
                     struct chrun_err *err)
{
    size_t n = json_array_size(arr), i;
    char **v;
    if (arr != NULL && !json_is_array(arr))
        return chrun_err_set(err, CHRUN_E_INPUT, "%s: not an array", what);
    if (n > CHRUN_RUNTIME_MAX_ENV)
        return chrun_err_set(err, CHRUN_E_INPUT, "%s: too many entries (%zu)", what, n);
    v = calloc(n + 1, sizeof(char *));
    if (v == NULL)
        return chrun_err_sys(err, ENOMEM, "%s", what);
    for (i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(arr, i));
        if (s == NULL || (v[i] = strdup(s)) == NULL) {
            for (size_t j = 0; j < i; j++)
                free(v[j]);
            free(v);
            if (s == NULL)
                return chrun_err_set(err, CHRUN_E_INPUT, "%s[%zu]: not a string", what, i);
            return chrun_err_sys(err, ENOMEM, "%s", what);
        }
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

static void strv_free(char **v)
{
    chrun_env_free(v);
}

/* Read an /etc file of the image through the rootfs (never the host's NSS). */
/* A file that cannot be opened (missing, a symlink loop) counts as absent:
 * names cannot resolve, numbers still do. A FIFO or device there is
 * refused, never opened. */
static int read_etc(int rootfd, const char *name, char **ret, struct chrun_err *err)
{
    struct chrun_err e = CHRUN_ERR_INIT;
    if (chrun_fs_read_regular_in_root(rootfd, name, CHRUN_RUNTIME_ETC_MAX, ret, &e) == 0)
        return 0;
    *ret = NULL;
    if (e.code != CHRUN_E_SYS) {
        *err = e;
        return -1;
    }
    return 0;
}

static int load_config(struct run *r, char *const cmd[], struct chrun_err *err)
{
    cleanup_free char *buf = NULL;
    cleanup_json json_t *root = NULL;
    cleanup_free char *passwd = NULL, *group = NULL;
    char **image_env = NULL;
    size_t len, n_env = 0, n_args = 0;
    json_error_t jerr;
    json_t *process, *user, *jroot;
    const char *s;
    char hostname[HOST_NAME_MAX + 1];

    if (chrun_io_read_file_at(r->bundlefd, "config.json", CHRUN_CONFIG_MAX, &buf, &len, err) < 0)
        return chrun_err_prefix(err, "bundle '%s'", r->bundle);
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "bundle '%s': config.json: invalid JSON at line %d: %s", r->bundle,
                             jerr.line, jerr.text);
    if (!json_is_object(root))
        return chrun_err_set(err, CHRUN_E_INPUT, "bundle '%s': config.json: not a JSON object",
                             r->bundle);
    process = json_object_get(root, "process");
    if (process != NULL && !json_is_object(process))
        return chrun_err_set(err, CHRUN_E_INPUT, "bundle '%s': config.json: process is not an object",
                             r->bundle);
    s = json_string_value(
        json_object_get(json_object_get(root, "annotations"), CHRUN_BUNDLE_ANNOTATION_IDMAP));
    if (s != NULL && snprintf(r->bundle_idmap, sizeof(r->bundle_idmap), "%s", s) >=
                         (int) sizeof(r->bundle_idmap))
        return chrun_err_set(err, CHRUN_E_INPUT, "bundle '%s': config.json: bad %s annotation",
                             r->bundle, CHRUN_BUNDLE_ANNOTATION_IDMAP);
    jroot = json_object_get(root, "root");
    s = json_string_value(json_object_get(jroot, "path"));
    if (snprintf(r->root_path, sizeof(r->root_path), "%s", s ? s : "rootfs") >=
        (int) sizeof(r->root_path))
        return chrun_err_set(err, CHRUN_E_INPUT, "bundle '%s': root.path too long", r->bundle);
    r->rootfd = openat(r->bundlefd, r->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->rootfd < 0)
        return chrun_err_sys(err, errno, "bundle '%s': rootfs '%s'", r->bundle, r->root_path);

    if (cmd != NULL && cmd[0] != NULL) {
        for (n_args = 0; cmd[n_args]; n_args++)
            ;
        r->args = calloc(n_args + 1, sizeof(char *));
        if (r->args == NULL)
            return chrun_err_sys(err, ENOMEM, "arguments");
        for (size_t i = 0; i < n_args; i++)
            if ((r->args[i] = strdup(cmd[i])) == NULL)
                return chrun_err_sys(err, ENOMEM, "arguments");
    } else {
        if (json_strv(json_object_get(process, "args"), "config.json process.args", &r->args,
                      &n_args, err) < 0)
            return chrun_err_prefix(err, "bundle '%s'", r->bundle);
        if (n_args == 0)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "bundle '%s': no command: config.json has no process.args and "
                                 "none was given",
                                 r->bundle);
    }
    if (r->args[0][0] == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "empty command name");

    s = r->opts->cwd ? r->opts->cwd : json_string_value(json_object_get(process, "cwd"));
    if (s == NULL || s[0] == '\0')
        s = "/";
    if (s[0] != '/')
        return chrun_err_set(err, CHRUN_E_INPUT, "working directory '%s' is not absolute", s);
    if (snprintf(r->cwd, sizeof(r->cwd), "%s", s) >= (int) sizeof(r->cwd))
        return chrun_err_set(err, CHRUN_E_INPUT, "working directory too long");

    if (read_etc(r->rootfd, "etc/passwd", &passwd, err) < 0 ||
        read_etc(r->rootfd, "etc/group", &group, err) < 0)
        return -1;
    if (r->opts->user != NULL) {
        struct chrun_user_spec spec;
        if (chrun_user_spec_parse(&spec, r->opts->user, err) < 0 ||
            chrun_exec_user_resolve(&r->user, &spec, passwd, group, err) < 0)
            return -1;
    } else {
        json_t *jgids, *v;
        json_int_t uid, gid;
        size_t i;
        user = json_object_get(process, "user");
        uid = json_integer_value(json_object_get(user, "uid"));
        gid = json_integer_value(json_object_get(user, "gid"));
        if (uid < 0 || uid >= UINT32_MAX || gid < 0 || gid >= UINT32_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT, "bundle '%s': config.json: bad process.user",
                                 r->bundle);
        r->user.uid = (uid_t) uid;
        r->user.gid = (gid_t) gid;
        jgids = json_object_get(user, "additionalGids");
        json_array_foreach(jgids, i, v) {
            json_int_t g = json_integer_value(v);
            if (!json_is_integer(v) || g < 0 || g >= UINT32_MAX)
                return chrun_err_set(err, CHRUN_E_INPUT,
                                     "bundle '%s': config.json: bad process.user.additionalGids",
                                     r->bundle);
            if (r->user.n_groups < CHRUN_RUNTIME_MAX_GROUPS)
                r->user.groups[r->user.n_groups++] = (gid_t) g;
        }
        chrun_exec_user_home(passwd, r->user.uid, r->user.home, sizeof(r->user.home));
    }

    if (json_strv(json_object_get(process, "env"), "config.json process.env", &image_env, &n_env,
                  err) < 0)
        return chrun_err_prefix(err, "bundle '%s'", r->bundle);
    if (r->opts->hostname != NULL)
        snprintf(hostname, sizeof(hostname), "%s", r->opts->hostname);
    else if (gethostname(hostname, sizeof(hostname)) < 0)
        hostname[0] = '\0';
    hostname[sizeof(hostname) - 1] = '\0';
    r->env = chrun_env_build((const char *const *) image_env, n_env, r->opts->env, r->opts->n_env,
                             hostname[0] ? hostname : NULL, r->user.home, err);
    strv_free(image_env);
    if (r->env == NULL)
        return chrun_err_prefix(err, "bundle '%s'", r->bundle);
    return 0;
}

static int open_volumes(struct run *r, struct chrun_err *err)
{
    size_t n = r->opts->n_volumes;
    if (n == 0)
        return 0;
    if (n > CHRUN_RUNTIME_MAX_VOLUMES)
        return chrun_err_set(err, CHRUN_E_USAGE, "too many -v mounts (%zu)", n);
    r->volume_fds = malloc(n * sizeof(int));
    if (r->volume_fds == NULL)
        return chrun_err_sys(err, ENOMEM, "volumes");
    for (size_t i = 0; i < n; i++)
        r->volume_fds[i] = -1;
    for (size_t i = 0; i < n; i++) {
        r->volume_fds[i] = open(r->opts->volumes[i].host, O_PATH | O_CLOEXEC);
        if (r->volume_fds[i] < 0)
            return chrun_err_sys(err, errno, "-v source '%s'", r->opts->volumes[i].host);
    }
    return 0;
}

/* ---- namespaces -------------------------------------------------------- */

static int loopback_up(struct chrun_err *err)
{
    struct ifreq ifr;
    cleanup_close int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        return chrun_err_sys(err, errno, "socket for loopback");
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(sock, SIOCGIFFLAGS, &ifr) < 0)
        return chrun_err_sys(err, errno, "get flags of 'lo'");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(sock, SIOCSIFFLAGS, &ifr) < 0)
        return chrun_err_sys(err, errno, "bring up 'lo'");
    return 0;
}

/* The clone/unshare flags of this run, the user namespace excepted. */
static int namespace_flags(const struct run *r)
{
    int flags = 0;
    if (!r->no_mounts)
        flags |= CLONE_NEWNS;
    if (r->ns & CHRUN_EXEC_NS_NET)
        flags |= CLONE_NEWNET;
    if (r->ns & CHRUN_EXEC_NS_IPC)
        flags |= CLONE_NEWIPC;
    if (r->ns & CHRUN_EXEC_NS_UTS)
        flags |= CLONE_NEWUTS;
    return flags;
}

/* Inside the new namespaces: hostname and loopback. */
static int finish_namespaces(struct run *r, struct chrun_err *err)
{
    if (r->opts->hostname != NULL &&
        sethostname(r->opts->hostname, strlen(r->opts->hostname)) < 0)
        return chrun_err_sys(err, errno, "set hostname '%s'", r->opts->hostname);
    if ((r->ns & CHRUN_EXEC_NS_NET) && loopback_up(err) < 0)
        return -1;
    return 0;
}

/* ---- mounts ------------------------------------------------------------ */

static void fd_path(char *buf, size_t size, int fd)
{
    snprintf(buf, size, "/proc/self/fd/%d", fd);
}

/* Mount onto PATH inside the rootfs, resolved in the root so a symlink in the
 * image can never point the mount at the host. */
static int mount_in_root(int rootfd, const char *path, const char *src, const char *fstype,
                         unsigned long flags, const char *data, struct chrun_err *err)
{
    char target[64];
    cleanup_close int fd = chrun_fs_open_in_root(rootfd, path, O_PATH, 0, err);
    if (fd < 0)
        return chrun_err_prefix(err, "mount point '/%s'", path);
    fd_path(target, sizeof(target), fd);
    if (mount(src, target, fstype, flags, data) < 0)
        return chrun_err_sys(err, errno, "mount %s on '/%s'", src ? src : fstype, path);
    return 0;
}

/* Make the mount at PATH in the root (and with RECURSIVE everything below it)
 * read-only. Opened again so the walk lands on the mount just made. */
static int make_ro_in_root(int rootfd, const char *path, bool recursive, struct chrun_err *err)
{
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
    cleanup_close int fd = chrun_fs_open_in_root(rootfd, path, O_PATH, 0, err);
    if (fd < 0)
        return -1;
    if (mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &attr,
                      sizeof(attr)) < 0)
        return chrun_err_sys(err, errno, "make '/%s' read-only", path);
    return 0;
}

/* Create the directory PATH (and parents) inside the root where missing. */
static int mkdir_in_root(int rootfd, const char *path, struct chrun_err *err)
{
    return chrun_fs_mkdir_p_in_root(rootfd, path, 0755, 0, err);
}

/* Create an empty file at PATH in the root if nothing is there. */
static int touch_in_root(int rootfd, const char *path, struct chrun_err *err)
{
    const char *base;
    cleanup_close int parent = chrun_fs_open_parent_in_root(rootfd, path, &base, err);
    cleanup_close int fd = -1;
    if (parent < 0)
        return -1;
    fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST)
        return chrun_err_sys(err, errno, "create '/%s' in rootfs", path);
    return 0;
}

/* Bind a host file (or directory) SRC onto PATH in the root, read-only. A
 * missing source or an image without a regular file there is skipped. */
static int bind_host_file(int rootfd, const char *src, const char *path, struct chrun_err *err)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    struct stat st;
    int fd;
    if (access(src, F_OK) < 0)
        return 0;
    fd = chrun_fs_open_in_root(rootfd, path, O_PATH, 0, &ignored);
    if (fd < 0 && ignored.errnum == ENOENT) {
        /* like runc and docker: the file is always there for the container */
        if (touch_in_root(rootfd, path, &ignored) < 0)
            return 0;
        fd = chrun_fs_open_in_root(rootfd, path, O_PATH, 0, &ignored);
    }
    if (fd < 0)
        return 0;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0;
    }
    close(fd);
    if (mount_in_root(rootfd, path, src, NULL, MS_BIND, NULL, err) < 0)
        return -1;
    /* read-only: the container must not rewrite the host's file */
    return make_ro_in_root(rootfd, path, false, err);
}

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};

static int setup_dev(struct run *r, int rootfd, struct chrun_err *err)
{
    cleanup_close int devfd = -1;
    char target[64], src[64];
    const char *pts_opts = r->rootless ? "newinstance,ptmxmode=0666,mode=0620"
                                       : "newinstance,ptmxmode=0666,mode=0620,gid=5";

    if (mkdir_in_root(rootfd, "dev", err) < 0)
        return chrun_err_prefix(err, "mount point '/dev'");
    if (mount_in_root(rootfd, "dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                      "mode=755,size=65536k", err) < 0)
        return -1;
    devfd = chrun_fs_open_in_root(rootfd, "dev", O_PATH | O_DIRECTORY, 0, err);
    if (devfd < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(dev_nodes); i++) {
        struct stat st;
        cleanup_close int fd = -1;
        snprintf(src, sizeof(src), "/dev/%s", dev_nodes[i]);
        if (stat(src, &st) < 0 || !S_ISCHR(st.st_mode))
            continue;
        if (!r->rootless && mknodat(devfd, dev_nodes[i], S_IFCHR | 0666, st.st_rdev) == 0)
            continue;
        /* in a user namespace mknod is refused: bind the host's node instead */
        fd = openat(devfd, dev_nodes[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0666);
        if (fd < 0)
            return chrun_err_sys(err, errno, "create /dev/%s", dev_nodes[i]);
        close(fd);
        fd = openat(devfd, dev_nodes[i], O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return chrun_err_sys(err, errno, "open /dev/%s", dev_nodes[i]);
        fd_path(target, sizeof(target), fd);
        if (mount(src, target, NULL, MS_BIND, NULL) < 0)
            return chrun_err_sys(err, errno, "bind %s", src);
    }
    if (mkdirat(devfd, "pts", 0755) < 0 || mkdirat(devfd, "shm", 01777) < 0)
        return chrun_err_sys(err, errno, "create /dev/pts, /dev/shm");
    if (mount_in_root(rootfd, "dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC, pts_opts,
                      err) < 0 ||
        mount_in_root(rootfd, "dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      "mode=1777,size=65536k", err) < 0)
        return -1;
    if (symlinkat("pts/ptmx", devfd, "ptmx") < 0 || symlinkat("/proc/self/fd", devfd, "fd") < 0 ||
        symlinkat("/proc/self/fd/0", devfd, "stdin") < 0 ||
        symlinkat("/proc/self/fd/1", devfd, "stdout") < 0 ||
        symlinkat("/proc/self/fd/2", devfd, "stderr") < 0)
        return chrun_err_sys(err, errno, "create /dev links");
    return 0;
}

static int setup_volume(struct run *r, int rootfd, size_t i, struct chrun_err *err)
{
    const struct chrun_volume *v = &r->opts->volumes[i];
    const char *path = v->ctr;
    struct stat hst, cst;
    char src[64];
    cleanup_close int fd = -1;

    while (*path == '/')
        path++;
    if (*path == '\0')
        return chrun_err_set(err, CHRUN_E_USAGE, "-v '%s:%s': cannot mount over /", v->host,
                             v->ctr);
    if (fstat(r->volume_fds[i], &hst) < 0)
        return chrun_err_sys(err, errno, "-v source '%s'", v->host);
    if (S_ISDIR(hst.st_mode)) {
        if (mkdir_in_root(rootfd, path, err) < 0)
            return chrun_err_prefix(err, "-v target '%s'", v->ctr);
    } else {
        const char *slash = strrchr(path, '/');
        if (slash != NULL) {
            char parent[PATH_MAX];
            snprintf(parent, sizeof(parent), "%.*s", (int) (slash - path), path);
            if (mkdir_in_root(rootfd, parent, err) < 0)
                return chrun_err_prefix(err, "-v target '%s'", v->ctr);
        }
        if (touch_in_root(rootfd, path, err) < 0)
            return chrun_err_prefix(err, "-v target '%s'", v->ctr);
    }
    fd = chrun_fs_open_in_root(rootfd, path, O_PATH, 0, err);
    if (fd < 0 || fstat(fd, &cst) < 0)
        return chrun_err_prefix(err, "-v target '%s'", v->ctr);
    if (S_ISDIR(hst.st_mode) != S_ISDIR(cst.st_mode))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "-v '%s:%s': cannot mount a %s over a %s", v->host, v->ctr,
                             S_ISDIR(hst.st_mode) ? "directory" : "file",
                             S_ISDIR(cst.st_mode) ? "directory" : "file");
    fd_path(src, sizeof(src), r->volume_fds[i]);
    if (mount_in_root(rootfd, path, src, NULL, MS_BIND | MS_REC, NULL, err) < 0)
        return chrun_err_prefix(err, "-v '%s'", v->host);
    if (v->ro && make_ro_in_root(rootfd, path, true, err) < 0)
        return -1;
    return 0;
}

/* Mount opts->overlay on TARGET (a /proc/self/fd path). Its directories are
 * opened here, inside the new mount namespace, and named to overlayfs by
 * /proc/self/fd paths, so no ',' or ':' in them can change the options. */
static int mount_overlay(struct run *r, const char *target, struct chrun_err *err)
{
    const struct chrun_exec_overlay *ov = r->opts->overlay;
    const char *paths[3] = {ov->lower, ov->upper, ov->work};
    int fds[3] = {-1, -1, -1};
    char data[256];
    int rc = 0, n;

    for (int i = 0; rc == 0 && i < 3; i++) {
        fds[i] = open(paths[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fds[i] < 0)
            rc = chrun_err_sys(err, errno, "overlay directory '%s'", paths[i]);
    }
    n = snprintf(data, sizeof(data),
                 "lowerdir=/proc/self/fd/%d,upperdir=/proc/self/fd/%d,workdir=/proc/self/fd/%d,volatile%s",
                 fds[0], fds[1], fds[2], r->rootless ? ",userxattr" : "");
    if (rc == 0 && (n < 0 || (size_t) n >= sizeof(data)))
        rc = chrun_err_sys(err, ENAMETOOLONG, "overlay options");
    if (rc == 0 && mount("overlay", target, "overlay", 0, data) < 0) {
        rc = chrun_err_sys(err, errno, "mount overlay on '%s' over '%s'", r->root_path, ov->lower);
        err->code = CHRUN_E_UNSUPPORTED; /* chrun_runtime_exec: the caller may copy instead */
    }
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

/* The mount policy of chrun-exec(1); runs inside the new mount namespace. On
 * success *RET_ROOTFD is the fd of the bind-mounted rootfs. */
static int setup_mounts(struct run *r, int *ret_rootfd, struct chrun_err *err)
{
    char self[64];
    cleanup_close int rootfd = -1;
    cleanup_close int bundlefd = -1;

    /* rslave: host mounts still propagate in, ours never propagate out */
    if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) < 0)
        return chrun_err_sys(err, errno, "make / a slave mount");
    /* fds opened before unshare name mounts of the host's namespace, which
     * mount(2) refuses as sources and targets: open the bundle and the -v
     * sources again, by the same paths, now that they resolve in ours */
    bundlefd = open(r->bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (bundlefd < 0)
        return chrun_err_sys(err, errno, "bundle '%s'", r->bundle);
    rootfd = openat(bundlefd, r->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return chrun_err_sys(err, errno, "open rootfs '%s'", r->root_path);
    for (size_t i = 0; i < r->opts->n_volumes; i++) {
        close(r->volume_fds[i]);
        r->volume_fds[i] = open(r->opts->volumes[i].host, O_PATH | O_CLOEXEC);
        if (r->volume_fds[i] < 0)
            return chrun_err_sys(err, errno, "-v source '%s'", r->opts->volumes[i].host);
    }
    /* The rootfs becomes a mount of its own: pivot_root and --read-only need it. */
    fd_path(self, sizeof(self), rootfd);
    if (r->opts->overlay != NULL) {
        if (mount_overlay(r, self, err) < 0)
            return -1;
    } else if (mount(self, self, NULL, MS_BIND | MS_REC, NULL) < 0) {
        return chrun_err_sys(err, errno, "bind rootfs '%s'", r->root_path);
    }
    close(rootfd);
    rootfd = openat(bundlefd, r->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        return chrun_err_sys(err, errno, "open rootfs '%s'", r->root_path);

    if (mkdir_in_root(rootfd, "proc", err) < 0)
        return chrun_err_prefix(err, "mount point '/proc'");
    if (mount_in_root(rootfd, "proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
                      err) < 0) {
        /* a user namespace may not mount procfs for a pid namespace it does
         * not own: show the host's, as a plain chroot would */
        if (err->errnum != EPERM && err->errnum != EACCES)
            return -1;
        if (mount_in_root(rootfd, "proc", "/proc", NULL, MS_BIND | MS_REC, NULL, err) < 0)
            return -1;
    }
    if (setup_dev(r, rootfd, err) < 0)
        return -1;
    if (mkdir_in_root(rootfd, "sys", err) < 0)
        return chrun_err_prefix(err, "mount point '/sys'");
    if (!(r->ns & CHRUN_EXEC_NS_NET) ||
        mount_in_root(rootfd, "sys", "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      NULL, err) < 0) {
        /* sysfs shows the network namespace of whoever mounts it: without
         * --net bind the host's, read-only */
        if (mount_in_root(rootfd, "sys", "/sys", NULL, MS_BIND | MS_REC, NULL, err) < 0 ||
            make_ro_in_root(rootfd, "sys", true, err) < 0)
            return -1;
    }
    if (bind_host_file(rootfd, "/etc/resolv.conf", "etc/resolv.conf", err) < 0 ||
        bind_host_file(rootfd, "/etc/hosts", "etc/hosts", err) < 0)
        return -1;
    for (size_t i = 0; i < r->opts->n_volumes; i++)
        if (setup_volume(r, rootfd, i, err) < 0)
            return -1;
    if (!(r->opts->flags & CHRUN_EXEC_READ_ONLY) && !streq(r->cwd, "/") &&
        mkdir_in_root(rootfd, r->cwd + 1, err) < 0)
        return chrun_err_prefix(err, "working directory");
    if (r->opts->flags & CHRUN_EXEC_READ_ONLY) {
        struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY};
        if (mount_setattr(rootfd, "", AT_EMPTY_PATH, &attr, sizeof(attr)) < 0)
            return chrun_err_sys(err, errno, "make rootfs read-only");
    }
    *ret_rootfd = take_fd(rootfd);
    return 0;
}

/* ---- the container process --------------------------------------------- */

static int switch_root(struct run *r, int rootfd, struct chrun_err *err)
{
    if (fchdir(rootfd) < 0)
        return chrun_err_sys(err, errno, "enter rootfs '%s'", r->root_path);
    if (!r->no_mounts && r->ns != 0) {
        /* isolated: pivot_root so the host tree is gone from the namespace */
        if (syscall(SYS_pivot_root, ".", ".") < 0)
            return chrun_err_sys(err, errno, "pivot_root to '%s'", r->root_path);
        if (umount2(".", MNT_DETACH) < 0)
            return chrun_err_sys(err, errno, "detach the old root");
    } else if (chroot(".") < 0) {
        return chrun_err_sys(err, errno, "chroot to '%s'", r->root_path);
    }
    if (chdir("/") < 0)
        return chrun_err_sys(err, errno, "chdir /");
    if (chdir(r->cwd) < 0)
        return chrun_err_sys(err, errno, "working directory '%s'", r->cwd);
    return 0;
}

static int switch_user(struct run *r, struct chrun_err *err)
{
    /* a single-id rootless namespace denies setgroups and maps only root;
     * newgidmap leaves setgroups allowed */
    if ((!r->rootless || r->idmap.subids) && setgroups(r->user.n_groups, r->user.groups) < 0)
        return chrun_err_sys(err, errno, "set supplementary groups");
    if (setgid(r->user.gid) < 0)
        return chrun_err_sys(err, errno, "switch to gid %u", (unsigned) r->user.gid);
    if (setuid(r->user.uid) < 0)
        return chrun_err_sys(err, errno, "switch to uid %u", (unsigned) r->user.uid);
    return 0;
}

/* docker's default capability set (moby's oci/caps/defaults.go). */
#define DEFAULT_CAPS_MASK                                                                          \
    ((1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_FOWNER) |                     \
     (1ULL << CAP_FSETID) | (1ULL << CAP_KILL) | (1ULL << CAP_SETGID) | (1ULL << CAP_SETUID) |     \
     (1ULL << CAP_SETPCAP) | (1ULL << CAP_NET_BIND_SERVICE) | (1ULL << CAP_NET_RAW) |              \
     (1ULL << CAP_SYS_CHROOT) | (1ULL << CAP_MKNOD) | (1ULL << CAP_AUDIT_WRITE) |                  \
     (1ULL << CAP_SETFCAP))

/* Drop every capability outside KEEP: the bounding set first (that needs
 * CAP_SETPCAP, which KEEP holds), then effective, permitted, inheritable. */
static int drop_capabilities(uint64_t keep, struct chrun_err *err)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[2];

    for (int cap = 0; cap < 64; cap++) {
        if (keep & (1ULL << cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            if (errno == EINVAL)
                break; /* past the kernel's last capability */
            return chrun_err_sys(err, errno, "drop capability %d", cap);
        }
    }
    if (syscall(SYS_capget, &hdr, data) < 0)
        return chrun_err_sys(err, errno, "read capabilities");
    for (int i = 0; i < 2; i++) {
        uint32_t k = (uint32_t) (keep >> (32 * i));
        data[i].effective &= k;
        data[i].permitted &= k;
        data[i].inheritable &= k;
    }
    if (syscall(SYS_capset, &hdr, data) < 0)
        return chrun_err_sys(err, errno, "set capabilities");
    return 0;
}

/* Everything between the namespaces and the command: mounts, root, user. */
static int container_setup(struct run *r, struct chrun_err *err)
{
    cleanup_close int rootfd = -1;
    r->saved_umask = umask(0);
    if (r->no_mounts) {
        rootfd = fcntl(r->rootfd, F_DUPFD_CLOEXEC, 3);
        if (rootfd < 0)
            return chrun_err_sys(err, errno, "dup rootfs fd");
    } else if (setup_mounts(r, &rootfd, err) < 0) {
        return -1;
    }
    umask(r->saved_umask);
    if (switch_root(r, rootfd, err) < 0)
        return -1;
    if ((r->opts->flags & CHRUN_EXEC_DEFAULT_CAPS) &&
        drop_capabilities(DEFAULT_CAPS_MASK, err) < 0)
        return -1;
    return switch_user(r, err);
}

/* Exec the command, searching the container's PATH for a bare name. Returns
 * only on failure, with *RET_STATUS 127 (not found) or 126 (not executable). */
static int exec_command(struct run *r, int *ret_status, struct chrun_err *err)
{
    const char *name = r->args[0];
    const char *path;
    bool denied = false;
    int e;

    if (r->mask_saved)
        sigprocmask(SIG_SETMASK, &r->oldmask, NULL);
    if (strchr(name, '/') != NULL) {
        execve(name, r->args, r->env);
        e = errno;
        *ret_status = (e == ENOENT || e == ENOTDIR) ? 127 : 126;
        return chrun_err_sys(err, e, "exec '%s' in the container", name);
    }
    path = chrun_env_get(r->env, "PATH");
    if (path == NULL)
        path = CHRUN_RUNTIME_DEFAULT_PATH;
    while (path != NULL) {
        const char *colon = strchr(path, ':');
        size_t dlen = colon ? (size_t) (colon - path) : strlen(path);
        const char *dir = path;
        char full[PATH_MAX];
        path = colon ? colon + 1 : NULL;
        /* an empty PATH entry means the working directory, as in execvp */
        if (snprintf(full, sizeof(full), "%.*s%s%s", (int) dlen, dir, dlen ? "/" : "", name) >=
            (int) sizeof(full))
            continue;
        execve(full, r->args, r->env);
        e = errno;
        if (e == EACCES)
            denied = true;
        else if (e != ENOENT && e != ENOTDIR)
            return *ret_status = 126, chrun_err_sys(err, e, "exec '%s' in the container", full);
    }
    if (denied) {
        *ret_status = 126;
        return chrun_err_sys(err, EACCES, "exec '%s' in the container", name);
    }
    *ret_status = 127;
    return chrun_err_set(err, CHRUN_E_NOTFOUND, "command '%s' not found in the container's PATH",
                         name);
}

static int status_of(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return 1;
}

/* In a forked child: send the failure to the waiting parent and leave. */
static void child_fail(int report_fd, int status, const struct chrun_err *err)
{
    struct child_report rep;
    memset(&rep, 0, sizeof(rep));
    rep.status = status;
    rep.err = *err;
    if (report_fd >= 0)
        (void) !write(report_fd, &rep, sizeof(rep)); /* one write: below PIPE_BUF */
    _exit(status);
}

/* Wait for PID, passing on the forwarded signals that a process sent us
 * (si_code <= 0: terminal-generated ones reach the whole process group, the
 * command included, by themselves). The signals and SIGCHLD are blocked. */
static int supervise(pid_t pid, bool reap_all, const sigset_t *set)
{
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(set, &si);
        if (sig < 0)
            continue;
        if (sig == SIGCHLD) {
            int wstatus;
            pid_t p;
            while ((p = waitpid(reap_all ? -1 : pid, &wstatus, WNOHANG)) > 0)
                if (p == pid)
                    return status_of(wstatus);
            continue;
        }
        if (si.si_code <= 0)
            kill(pid, sig);
    }
}

static void forwarded_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    for (size_t i = 0; i < ARRAY_SIZE(forwarded_signals); i++)
        sigaddset(set, forwarded_signals[i]);
}

/* Read a child's report: 1 when it sent one (*REP filled), 0 at EOF (its
 * command was executed). */
static int read_report(int fd, struct child_report *rep)
{
    ssize_t n;
    do
        n = read(fd, rep, sizeof(*rep));
    while (n < 0 && errno == EINTR);
    return n == (ssize_t) sizeof(*rep);
}

/* pid 1 of a new pid namespace: set up, fork the command, then reap every
 * zombie and pass signals on until the command exits. Never returns. */
static void run_init(struct run *r, const sigset_t *set)
{
    struct chrun_err err = CHRUN_ERR_INIT;
    int status = 1;
    pid_t cmd;
    /* the supervisor's death must not leave the namespace behind */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (finish_namespaces(r, &err) < 0 || container_setup(r, &err) < 0)
        child_fail(r->report_fd, 1, &err);
    cmd = fork();
    if (cmd < 0) {
        chrun_err_sys(&err, errno, "fork");
        child_fail(r->report_fd, 1, &err);
    }
    if (cmd == 0) {
        exec_command(r, &status, &err);
        child_fail(r->report_fd, status, &err);
    }
    close(r->report_fd);
    _exit(supervise(cmd, true, set));
}

/* The process that enters the namespaces (the caller itself with
 * CHRUN_EXEC_REPLACE, else a child). Returns only on failure when it is the
 * caller; a forked child reports through r->report_fd and exits. */
static int run_container(struct run *r, const sigset_t *set, int *ret_status,
                         struct chrun_err *err)
{
    *ret_status = 1;
    if (r->rootless && chrun_userns_enter(&r->idmap, err) < 0)
        return -1;
    if (r->ns & CHRUN_EXEC_NS_PID) {
        int fds[2];
        struct child_report rep;
        int rc;
        pid_t init;
        if (pipe2(fds, O_CLOEXEC) < 0)
            return chrun_err_sys(err, errno, "pipe");
        /* Only init enters the new namespaces: the waiting process keeps its
         * mounts (pivot_root would move its root too) and its pid namespace
         * for children (LeakSanitizer's tracer thread needs that). */
        init = (pid_t) syscall(SYS_clone, CLONE_NEWPID | namespace_flags(r) | SIGCHLD, NULL, NULL,
                               NULL, NULL);
        if (init < 0) {
            close(fds[0]);
            close(fds[1]);
            return chrun_err_sys(err, errno, "create a pid namespace");
        }
        if (init == 0) {
            close(fds[0]);
            /* the caller reads its pipe to EOF: only the waiter may hold it */
            if (r->report_fd >= 0)
                close(r->report_fd);
            r->report_fd = fds[1];
            run_init(r, set);
        }
        close(fds[1]);
        rc = read_report(fds[0], &rep);
        close(fds[0]);
        *ret_status = supervise(init, false, set);
        if (rc == 1) {
            *err = rep.err;
            *ret_status = rep.status;
            return -1;
        }
        return 0;
    }
    if (namespace_flags(r) != 0 && unshare(namespace_flags(r)) < 0)
        return chrun_err_sys(err, errno, "create namespaces");
    if (finish_namespaces(r, err) < 0 || container_setup(r, err) < 0)
        return -1;
    return exec_command(r, ret_status, err);
}

/* Can this caller run R's user, and see R's bundle as it was unpacked? */
static int check_ids(struct run *r, struct chrun_err *err)
{
    char have[CHRUN_IDMAP_STR_MAX];
    uint32_t max_uid, max_gid;

    if (r->rootless && (r->opts->flags & CHRUN_EXEC_SINGLE_ID)) {
        memset(&r->idmap, 0, sizeof(r->idmap));
        r->idmap.uid = getuid();
        r->idmap.gid = getgid();
        snprintf(r->idmap.why, sizeof(r->idmap.why), "a single-id user namespace was asked for");
    } else if (r->rootless) {
        chrun_idmap_load(&r->idmap);
    }
    if (r->bundle_idmap[0] != '\0') {
        /* SPEC-side rule: files of a bundle unpacked in a user namespace carry
         * the host ids of that mapping; any other mapping shows wrong owners */
        if (!r->rootless)
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "bundle '%s' was unpacked rootless with subordinate ids (%s): "
                                 "run it as the user who unpacked it",
                                 r->bundle, r->bundle_idmap);
        chrun_idmap_format(&r->idmap, have, sizeof(have));
        if (!r->idmap.subids)
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "bundle '%s' was unpacked with subordinate ids (%s) but this run "
                                 "has none: %s; see newuidmap(1)",
                                 r->bundle, r->bundle_idmap, r->idmap.why);
        if (!streq(have, r->bundle_idmap))
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "bundle '%s' was unpacked with the id mapping '%s', this run "
                                 "has '%s': unpack it again",
                                 r->bundle, r->bundle_idmap, have);
    }
    if (!r->rootless)
        return 0;
    if (!r->idmap.subids) {
        if (r->user.uid == 0 && r->user.gid == 0)
            return 0;
        /* the user namespace maps only the caller, as root */
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "cannot run as uid %u gid %u without root: a rootless run has only "
                             "uid 0 (%s; see newuidmap(1))",
                             (unsigned) r->user.uid, (unsigned) r->user.gid, r->idmap.why);
    }
    max_uid = chrun_idmap_max_uid(&r->idmap);
    max_gid = chrun_idmap_max_gid(&r->idmap);
    if (r->user.uid > max_uid || r->user.gid > max_gid)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "cannot run as uid %u gid %u: the subordinate ids of '%s' give a "
                             "rootless run uids 0-%u and gids 0-%u",
                             (unsigned) r->user.uid, (unsigned) r->user.gid, r->idmap.user,
                             max_uid, max_gid);
    for (size_t i = 0; i < r->user.n_groups; i++)
        if (r->user.groups[i] > max_gid)
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "cannot add group %u: the subordinate ids of '%s' give a "
                                 "rootless run gids 0-%u",
                                 (unsigned) r->user.groups[i], r->idmap.user, max_gid);
    return 0;
}

int chrun_runtime_exec(const char *bundle, const struct chrun_exec_opts *opts, char *const cmd[],
                       int *ret_status, struct chrun_err *err)
{
    struct run r;
    sigset_t set;
    int rc = -1;
    pid_t pid;
    int fds[2];
    struct child_report rep;

    memset(&r, 0, sizeof(r));
    r.opts = opts;
    r.bundle = bundle;
    r.bundlefd = r.rootfd = r.report_fd = -1;
    r.ns = opts->ns | (opts->hostname ? CHRUN_EXEC_NS_UTS : 0);
    r.no_mounts = (opts->flags & CHRUN_EXEC_NO_MOUNTS) != 0;
    r.outer_uid = geteuid();
    r.outer_gid = getegid();
    r.rootless = r.outer_uid != 0;
    *ret_status = 1;

    if (r.no_mounts && (opts->n_volumes > 0 || (opts->flags & CHRUN_EXEC_READ_ONLY)))
        return chrun_err_set(err, CHRUN_E_USAGE, "-v and --read-only need mounts (drop --no-mounts)");
    r.bundlefd = open(bundle, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r.bundlefd < 0)
        return chrun_err_sys(err, errno, "bundle '%s'", bundle);
    if (load_config(&r, cmd, err) < 0 || open_volumes(&r, err) < 0) {
        run_release(&r);
        return -1;
    }
    if (check_ids(&r, err) < 0) {
        run_release(&r);
        return -1;
    }

    forwarded_set(&set);
    if ((opts->flags & CHRUN_EXEC_REPLACE) && !(r.ns & CHRUN_EXEC_NS_PID)) {
        rc = run_container(&r, &set, ret_status, err);
        run_release(&r);
        return rc;
    }
    /* Block before forking: a signal between fork and wait must be queued
     * for the child, not kill us with its default action. */
    sigprocmask(SIG_BLOCK, &set, &r.oldmask);
    r.mask_saved = true;
    if ((opts->flags & CHRUN_EXEC_REPLACE)) {
        rc = run_container(&r, &set, ret_status, err);
        sigprocmask(SIG_SETMASK, &r.oldmask, NULL);
        run_release(&r);
        return rc;
    }
    if (pipe2(fds, O_CLOEXEC) < 0) {
        rc = chrun_err_sys(err, errno, "pipe");
    } else if ((pid = fork()) < 0) {
        rc = chrun_err_sys(err, errno, "fork");
        close(fds[0]);
        close(fds[1]);
    } else if (pid == 0) {
        int status = 1;
        close(fds[0]);
        r.report_fd = fds[1];
        if (run_container(&r, &set, &status, err) < 0)
            child_fail(fds[1], status, err);
        _exit(status);
    } else {
        int got;
        close(fds[1]);
        got = read_report(fds[0], &rep);
        close(fds[0]);
        *ret_status = supervise(pid, false, &set);
        rc = 0;
        if (got == 1) {
            *err = rep.err;
            *ret_status = rep.status;
            rc = -1;
        }
    }
    sigprocmask(SIG_SETMASK, &r.oldmask, NULL);
    run_release(&r);
    return rc;
}

/* ---- command line ------------------------------------------------------ */

void chrun_exec_cli_init(struct chrun_exec_cli *cli, unsigned flags)
{
    memset(cli, 0, sizeof(*cli));
    cli->opts.flags = flags;
    cli->opts.env = cli->env;
    cli->opts.volumes = cli->volumes;
}

void chrun_exec_cli_release(struct chrun_exec_cli *cli)
{
    for (size_t i = 0; i < cli->opts.n_volumes; i++)
        chrun_volume_release(&cli->volumes[i]);
    cli->opts.n_volumes = 0;
}

int chrun_exec_cli_option(struct chrun_exec_cli *cli, int c, const char *arg,
                          struct chrun_err *err)
{
    struct chrun_exec_opts *o = &cli->opts;
    switch (c) {
    case 'e':
        if (arg[0] == '\0' || arg[0] == '=')
            return chrun_err_set(err, CHRUN_E_USAGE, "-e '%s': empty variable name", arg);
        if (o->n_env >= ARRAY_SIZE(cli->env))
            return chrun_err_set(err, CHRUN_E_USAGE, "too many -e options");
        cli->env[o->n_env++] = arg;
        return 1;
    case 'u': {
        struct chrun_user_spec spec;
        if (chrun_user_spec_parse(&spec, arg, err) < 0)
            return -1;
        o->user = arg;
        return 1;
    }
    case 'w':
        if (arg[0] != '/')
            return chrun_err_set(err, CHRUN_E_USAGE, "-w '%s': must be an absolute path", arg);
        o->cwd = arg;
        return 1;
    case 'v':
        if (o->n_volumes >= ARRAY_SIZE(cli->volumes))
            return chrun_err_set(err, CHRUN_E_USAGE, "too many -v options");
        if (chrun_volume_parse(&cli->volumes[o->n_volumes], arg, err) < 0)
            return -1;
        o->n_volumes++;
        return 1;
    case CHRUN_EXEC_OPT_READ_ONLY: o->flags |= CHRUN_EXEC_READ_ONLY; return 1;
    case CHRUN_EXEC_OPT_NO_MOUNTS: o->flags |= CHRUN_EXEC_NO_MOUNTS; return 1;
    case CHRUN_EXEC_OPT_HOSTNAME:
        if (arg[0] == '\0' || strlen(arg) > HOST_NAME_MAX)
            return chrun_err_set(err, CHRUN_E_USAGE, "--hostname '%s': bad length", arg);
        o->hostname = arg;
        o->ns |= CHRUN_EXEC_NS_UTS;
        return 1;
    case CHRUN_EXEC_OPT_PID: o->ns |= CHRUN_EXEC_NS_PID; return 1;
    case CHRUN_EXEC_OPT_NET: o->ns |= CHRUN_EXEC_NS_NET; return 1;
    case CHRUN_EXEC_OPT_IPC: o->ns |= CHRUN_EXEC_NS_IPC; return 1;
    case CHRUN_EXEC_OPT_UTS: o->ns |= CHRUN_EXEC_NS_UTS; return 1;
    case CHRUN_EXEC_OPT_ISOLATE: o->ns |= CHRUN_EXEC_NS_ALL; return 1;
    default: return 0;
    }
}
