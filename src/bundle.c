#include "chrun/bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/fs.h"
#include "chrun/image-config.h"
#include "chrun/image.h"
#include "chrun/io.h"
#include "chrun/layer.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/userns.h"
#include "cleanup.h"
#include "json.h"
#include "util.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define TEMP_MARK ".tmp-"
/* Cap for the rootfs' /etc/passwd and /etc/group, read into memory. */
#define ACCOUNT_FILE_MAX (4 * 1024 * 1024)

/* `runc spec` (runc 1.1) defaults; the image's process, user and annotations
 * are filled in by build_config. */
static const char RUNTIME_TEMPLATE[] =
    "{\"ociVersion\":\"1.0.2\","
    "\"process\":{\"terminal\":false,\"user\":{\"uid\":0,\"gid\":0},\"args\":[],\"env\":[],"
    "\"cwd\":\"/\","
    "\"capabilities\":{"
    "\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
    "\"effective\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
    "\"permitted\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
    "\"ambient\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"]},"
    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}],"
    "\"noNewPrivileges\":true},"
    "\"root\":{\"path\":\"rootfs\",\"readonly\":false},"
    "\"hostname\":\"chrun\","
    "\"mounts\":["
    "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
    "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
    "\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},"
    "{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\","
    "\"options\":[\"nosuid\",\"noexec\",\"newinstance\",\"ptmxmode=0666\",\"mode=0620\","
    "\"gid=5\"]},"
    "{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\",\"size=65536k\"]},"
    "{\"destination\":\"/dev/mqueue\",\"type\":\"mqueue\",\"source\":\"mqueue\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\"]},"
    "{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"ro\"]},"
    "{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"relatime\",\"ro\"]}],"
    "\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},"
    "\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"},"
    "{\"type\":\"uts\"},{\"type\":\"mount\"}],"
    "\"maskedPaths\":[\"/proc/acpi\",\"/proc/asound\",\"/proc/kcore\",\"/proc/keys\","
    "\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_stats\",\"/proc/sched_debug\","
    "\"/sys/firmware\",\"/proc/scsi\"],"
    "\"readonlyPaths\":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\","
    "\"/proc/sysrq-trigger\"]}}";

/* ---- user resolution through the rootfs' account files ---- */

/* Read ETC/NAME of the rootfs (resolved in root; a missing file is empty). */
static int read_account_file(int rootfd, const char *name, char **ret_buf,
                             struct chrun_err *err)
{
    return chrun_fs_read_regular_in_root(rootfd, name, ACCOUNT_FILE_MAX, ret_buf, err);
}

static bool parse_id(const char *s, unsigned long *ret)
{
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    *ret = strtoul(s, &end, 10);
    return errno == 0 && *end == '\0' && *ret <= 0xfffffffeUL;
}

/* Split BUF's next line at ':' into at most MAX fields. Returns field count,
 * or -1 at the end. *CURSOR advances. */
static int next_record(char **cursor, char **fields, int max)
{
    char *line = *cursor, *nl;
    int n = 0;
    if (line == NULL || *line == '\0')
        return -1;
    nl = strchr(line, '\n');
    if (nl != NULL) {
        *nl = '\0';
        *cursor = nl + 1;
    } else {
        *cursor = line + strlen(line);
    }
    fields[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == ':') {
            *p = '\0';
            fields[n++] = p + 1;
        }
    return n;
}

struct user_info {
    unsigned long uid, gid;
    char home[PATH_MAX];
    char name[256];
    bool found;
};

static int lookup_passwd(char *passwd, const char *user, struct user_info *ui)
{
    char *cursor = passwd, *f[7];
    unsigned long uid_wanted = 0;
    bool numeric = parse_id(user, &uid_wanted);
    int n;
    while ((n = next_record(&cursor, f, 7)) >= 0) {
        unsigned long uid, gid;
        if (n < 4 || !parse_id(f[2], &uid) || !parse_id(f[3], &gid))
            continue;
        if (numeric ? uid != uid_wanted : !streq(f[0], user))
            continue;
        ui->uid = uid;
        ui->gid = gid;
        snprintf(ui->name, sizeof(ui->name), "%s", f[0]);
        snprintf(ui->home, sizeof(ui->home), "%s", n >= 6 && f[5][0] ? f[5] : "/");
        ui->found = true;
        return 0;
    }
    return -1;
}

static int lookup_group(char *group, const char *name, unsigned long *ret_gid)
{
    char *cursor = group, *f[4];
    int n;
    while ((n = next_record(&cursor, f, 4)) >= 0) {
        unsigned long gid;
        if (n >= 3 && streq(f[0], name) && parse_id(f[2], &gid)) {
            *ret_gid = gid;
            return 0;
        }
    }
    return -1;
}

/* Add the gids of groups listing USER as a member to ARR (skipping PRIMARY). */
static int add_member_groups(char *group, const char *user, unsigned long primary, json_t *arr,
                             struct chrun_err *err)
{
    char *cursor = group, *f[4];
    int n;
    while ((n = next_record(&cursor, f, 4)) >= 0) {
        unsigned long gid;
        char *save = NULL;
        if (n < 4 || !parse_id(f[2], &gid) || gid == primary)
            continue;
        for (char *m = strtok_r(f[3], ",", &save); m; m = strtok_r(NULL, ",", &save))
            if (streq(m, user)) {
                if (chrun_json_append(arr, json_integer((json_int_t) gid), "additionalGids",
                                      err) < 0)
                    return -1;
                break;
            }
    }
    return 0;
}

/* Resolve the image's User ("name", "uid", with ":group" or ":gid") into
 * PROCESS.user; write the user's home to HOME (or "/"). */
static int resolve_user(int rootfd, const char *spec, json_t *process, char *home,
                        size_t home_size, struct chrun_err *err)
{
    cleanup_free char *passwd = NULL, *group = NULL, *group2 = NULL, *user = NULL;
    struct user_info ui = {0};
    unsigned long gid = 0;
    char *colon;
    json_t *juser = json_object(), *extra = json_array();

    snprintf(home, home_size, "/");
    if (juser == NULL || extra == NULL) {
        json_decref(juser);
        json_decref(extra);
        return chrun_err_sys(err, ENOMEM, "config");
    }
    if (chrun_json_set(process, "user", juser, err) < 0) {
        json_decref(extra);
        return -1;
    }
    if (read_account_file(rootfd, "/etc/passwd", &passwd, err) < 0 ||
        read_account_file(rootfd, "/etc/group", &group, err) < 0) {
        json_decref(extra);
        return -1;
    }
    user = strdup(spec[0] ? spec : "0");
    if (user == NULL) {
        json_decref(extra);
        return chrun_err_sys(err, ENOMEM, "config");
    }
    colon = strchr(user, ':');
    if (colon != NULL)
        *colon++ = '\0';
    if (user[0] == '\0')
        snprintf(user, strlen(user) + 2, "0");
    if (passwd != NULL && lookup_passwd(passwd, user, &ui) == 0) {
        gid = ui.gid;
        snprintf(home, home_size, "%s", ui.home);
    } else if (parse_id(user, &ui.uid)) {
        gid = 0;
    } else {
        json_decref(extra);
        return chrun_err_set(err, CHRUN_E_INPUT, "user '%s' not found in the image's /etc/passwd",
                             user);
    }
    if (colon != NULL && *colon != '\0' && !parse_id(colon, &gid) &&
        (group == NULL || (group2 = strdup(group)) == NULL ||
         lookup_group(group2, colon, &gid) < 0)) {
        json_decref(extra);
        return chrun_err_set(err, CHRUN_E_INPUT, "group '%s' not found in the image's /etc/group",
                             colon);
    }
    if ((ui.found && group != NULL && add_member_groups(group, ui.name, gid, extra, err) < 0) ||
        chrun_json_set(juser, "uid", json_integer((json_int_t) ui.uid), err) < 0 ||
        chrun_json_set(juser, "gid", json_integer((json_int_t) gid), err) < 0) {
        json_decref(extra);
        return -1;
    }
    if (json_array_size(extra) > 0)
        return chrun_json_set(juser, "additionalGids", extra, err);
    json_decref(extra);
    return 0;
}

/* ---- config.json ---- */

static bool env_has(json_t *env, const char *prefix)
{
    size_t i;
    json_t *v;
    json_array_foreach (env, i, v)
        if (str_has_prefix(json_string_value(v), prefix))
            return true;
    return false;
}

static json_t *build_config(int rootfd, json_t *image_config, const char *manifest_digest,
                            const char *ref, const char *idmap, struct chrun_err *err)
{
    cleanup_json json_t *doc = NULL;
    json_error_t jerr;
    json_t *cfg = json_object_get(image_config, "config");
    json_t *process, *args, *env, *annotations, *v, *s;
    const char *user = json_string_value(json_object_get(cfg, "User"));
    const char *workdir = json_string_value(json_object_get(cfg, "WorkingDir"));
    char home[PATH_MAX], cwd[PATH_MAX];
    size_t i;

    doc = json_loads(RUNTIME_TEMPLATE, 0, &jerr);
    if (doc == NULL) {
        chrun_err_set(err, CHRUN_E_SYS, "runtime config template: %s", jerr.text);
        return NULL;
    }
    process = json_object_get(doc, "process");
    args = json_object_get(process, "args");
    env = json_object_get(process, "env");
    json_array_foreach (json_object_get(cfg, "Entrypoint"), i, v)
        if (json_is_string(v) && chrun_json_append(args, json_incref(v), "Entrypoint", err) < 0)
            return NULL;
    json_array_foreach (json_object_get(cfg, "Cmd"), i, v)
        if (json_is_string(v) && chrun_json_append(args, json_incref(v), "Cmd", err) < 0)
            return NULL;
    json_array_foreach (json_object_get(cfg, "Env"), i, v)
        if (json_is_string(v) && strchr(json_string_value(v), '=') != NULL &&
            chrun_json_append(env, json_incref(v), "Env", err) < 0)
            return NULL;
    if (!env_has(env, "PATH=") && json_array_insert_new(env, 0, json_string(DEFAULT_PATH)) < 0) {
        chrun_err_sys(err, ENOMEM, "Env");
        return NULL;
    }
    if (resolve_user(rootfd, user ? user : "", process, home, sizeof(home), err) < 0)
        return NULL;
    if (!env_has(env, "HOME=")) {
        char homevar[PATH_MAX + 8];
        snprintf(homevar, sizeof(homevar), "HOME=%s", home);
        if ((s = chrun_json_str(homevar, "the user's home in /etc/passwd", err)) == NULL ||
            chrun_json_append(env, s, "Env", err) < 0)
            return NULL;
    }
    if (workdir != NULL && workdir[0] != '\0') {
        snprintf(cwd, sizeof(cwd), "%s%s", workdir[0] == '/' ? "" : "/", workdir);
        if ((s = chrun_json_str(cwd, "WorkingDir", err)) == NULL ||
            chrun_json_set(process, "cwd", s, err) < 0)
            return NULL;
    }
    annotations = json_object();
    if (chrun_json_set(doc, "annotations", annotations, err) < 0 ||
        chrun_json_set(annotations, CHRUN_BUNDLE_ANNOTATION_DIGEST, json_string(manifest_digest),
                       err) < 0)
        return NULL;
    if (ref != NULL && ref[0] != '\0' &&
        ((s = chrun_json_str(ref, "reference", err)) == NULL ||
         chrun_json_set(annotations, CHRUN_ANNOTATION_REF_NAME, s, err) < 0))
        return NULL;
    if (idmap != NULL &&
        ((s = chrun_json_str(idmap, "id map", err)) == NULL ||
         chrun_json_set(annotations, CHRUN_BUNDLE_ANNOTATION_IDMAP, s, err) < 0))
        return NULL;
    return take_ptr(doc);
}

static int write_config(int bundlefd, json_t *doc, struct chrun_err *err)
{
    cleanup_free char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    cleanup_close int fd = -1;
    if (text == NULL)
        return chrun_err_sys(err, ENOMEM, "config.json");
    fd = openat(bundlefd, "config.json", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                0644);
    if (fd < 0)
        return chrun_err_sys(err, errno, "create config.json");
    if (chrun_io_write_full(fd, text, strlen(text), err) < 0 ||
        chrun_io_write_full(fd, "\n", 1, err) < 0)
        return chrun_err_prefix(err, "config.json");
    if (fsync(fd) < 0 || close(take_fd(fd)) < 0)
        return chrun_err_sys(err, errno, "write config.json");
    return 0;
}

int chrun_bundle_write_config(int bundlefd, json_t *image_config, struct chrun_err *err)
{
    cleanup_json json_t *doc = NULL;
    cleanup_close int rootfd = -1;
    rootfd = openat(bundlefd, "rootfs", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0)
        return chrun_err_sys(err, errno, "open rootfs");
    doc = build_config(rootfd, image_config, "", NULL, NULL, err);
    if (doc == NULL)
        return -1;
    json_object_del(json_object_get(doc, "annotations"), CHRUN_BUNDLE_ANNOTATION_DIGEST);
    if (unlinkat(bundlefd, "config.json", 0) < 0 && errno != ENOENT)
        return chrun_err_sys(err, errno, "replace config.json");
    return write_config(bundlefd, doc, err);
}

int chrun_bundle_manifest_digest(int bundlefd, char *ret_digest, struct chrun_err *err)
{
    cleanup_free char *buf = NULL;
    cleanup_json json_t *doc = NULL;
    size_t len;
    const char *d;
    if (chrun_io_read_file_at(bundlefd, "config.json", CHRUN_CONFIG_MAX, &buf, &len, err) < 0) {
        if (err->errnum == ENOENT)
            err->code = CHRUN_E_NOTFOUND;
        return -1;
    }
    doc = json_loadb(buf, len, 0, NULL);
    d = json_string_value(
        json_object_get(json_object_get(doc, "annotations"), CHRUN_BUNDLE_ANNOTATION_DIGEST));
    if (d == NULL || !chrun_digest_is_valid(d))
        return chrun_err_set(err, CHRUN_E_NOTFOUND, "config.json names no chrun image");
    snprintf(ret_digest, CHRUN_DIGEST_STR_MAX, "%s", d);
    return 0;
}

/* ---- assembling the bundle ---- */

struct target {
    char path[PATH_MAX];   /* absolute path printed to the user */
    char parent[PATH_MAX]; /* parent directory as given */
    char base[NAME_MAX + 1];
    bool in_store; /* the default $CHRUN_ROOT/bundles: every stale temp there is ours */
};

static int target_init(struct target *t, struct chrun_store *st, const char *bundle,
                       const struct chrun_digest *md, struct chrun_err *err)
{
    char given[PATH_MAX], real[PATH_MAX];
    char *slash, *base;
    size_t len;

    memset(t, 0, sizeof(*t));
    if (bundle == NULL) {
        t->in_store = true;
        if (snprintf(given, sizeof(given), "%s/bundles/%.12s", chrun_store_root_path(st),
                     chrun_digest_hex(md)) >= (int) sizeof(given))
            return chrun_err_sys(err, ENAMETOOLONG, "bundle path");
        if (mkdirat(chrun_store_root_fd(st), "bundles", 0755) < 0 && errno != EEXIST)
            return chrun_err_sys(err, errno, "create '%s/bundles'", chrun_store_root_path(st));
    } else if (snprintf(given, sizeof(given), "%s", bundle) >= (int) sizeof(given)) {
        return chrun_err_sys(err, ENAMETOOLONG, "bundle '%.64s...'", bundle);
    }
    len = strlen(given);
    while (len > 1 && given[len - 1] == '/')
        given[--len] = '\0';
    slash = strrchr(given, '/');
    base = slash ? slash + 1 : given;
    if (strlen(base) >= sizeof(t->base))
        return chrun_err_sys(err, ENAMETOOLONG, "bundle '%.64s...'", given);
    memcpy(t->base, base, strlen(base) + 1);
    if (slash == NULL) {
        snprintf(t->parent, sizeof(t->parent), ".");
    } else {
        *slash = '\0';
        snprintf(t->parent, sizeof(t->parent), "%s", given[0] ? given : "/");
    }
    if (t->base[0] == '\0' || streq(t->base, ".") || streq(t->base, ".."))
        return chrun_err_set(err, CHRUN_E_USAGE, "bundle '%s': not a directory name", bundle);
    if (realpath(t->parent, real) == NULL)
        return chrun_err_sys(err, errno, "bundle directory '%s'", t->parent);
    if (snprintf(t->path, sizeof(t->path), "%s/%s", streq(real, "/") ? "" : real, t->base) >=
        (int) sizeof(t->path))
        return chrun_err_sys(err, ENAMETOOLONG, "bundle path");
    return 0;
}

/* Remove temporary directories that no live unpack holds (their flock is free). */
static void remove_stale_temps(int parentfd, const struct target *t)
{
    char prefix[NAME_MAX + 16];
    cleanup_closedir DIR *d = NULL;
    struct dirent *de;
    int dfd = openat(parentfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    snprintf(prefix, sizeof(prefix), ".%s" TEMP_MARK, t->base);
    while ((de = readdir(d)) != NULL) {
        cleanup_close int fd = -1;
        struct chrun_err ignored = CHRUN_ERR_INIT;
        bool ours = t->in_store ? (de->d_name[0] == '.' && strstr(de->d_name, TEMP_MARK) != NULL)
                                : str_has_prefix(de->d_name, prefix);
        if (!ours)
            continue;
        fd = openat(parentfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
            continue;
        chrun_log_debug("removing stale '%s'", de->d_name);
        chrun_fs_rm_rf_at(parentfd, de->d_name, &ignored);
    }
}

static bool dir_is_empty(int parentfd, const char *name)
{
    cleanup_closedir DIR *d = NULL;
    struct dirent *de;
    int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    while ((de = readdir(d)) != NULL)
        if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
            return false;
    return true;
}

/* What is at the target now: 0 nothing, 1 this image's bundle, 2 something
 * to replace (empty directory, or anything with --force). */
static int check_existing(int parentfd, const struct target *t, const char *manifest_digest,
                          bool force, struct chrun_err *err)
{
    struct stat sb;
    char have[CHRUN_DIGEST_STR_MAX];
    struct chrun_err derr = CHRUN_ERR_INIT;
    cleanup_close int bfd = -1;
    bool is_bundle;

    if (fstatat(parentfd, t->base, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return chrun_err_sys(err, errno, "bundle '%s'", t->path);
    }
    if (S_ISDIR(sb.st_mode))
        bfd = openat(parentfd, t->base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    is_bundle = bfd >= 0 && chrun_bundle_manifest_digest(bfd, have, &derr) == 0;
    if (is_bundle && streq(have, manifest_digest))
        return 1;
    if (force || (S_ISDIR(sb.st_mode) && !is_bundle && dir_is_empty(parentfd, t->base)))
        return 2;
    if (is_bundle)
        return chrun_err_set(err, CHRUN_E_EXISTS,
                             "bundle '%s' holds image %s, not %s (--force replaces it)", t->path,
                             have, manifest_digest);
    return chrun_err_set(err, CHRUN_E_EXISTS,
                         "'%s' exists and is not a bundle (--force replaces it)", t->path);
}

int chrun_bundle_apply_rootfs(int bundlefd, size_t n,
                              int (*apply_one)(void *data, struct chrun_layer_applier *a,
                                               size_t i, struct chrun_err *err),
                              void *data, struct chrun_err *err)
{
    cleanup_close int rootfd = -1;
    struct chrun_layer_applier *a;
    int rc = 0;

    if (mkdirat(bundlefd, "rootfs", 0755) < 0)
        return chrun_err_sys(err, errno, "create rootfs");
    rootfd = openat(bundlefd, "rootfs", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (rootfd < 0)
        return chrun_err_sys(err, errno, "open rootfs");
    a = chrun_layer_applier_new(rootfd, err);
    if (a == NULL)
        return -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = apply_one(data, a, i, err);
    if (rc == 0)
        rc = chrun_layer_applier_finish(a, err);
    chrun_layer_applier_free(a);
    return rc;
}

struct stored_layers {
    struct chrun_store *st;
    const struct chrun_manifest *m;
    const struct chrun_image_config *cfg;
};

/* Layer I from the store. */
static int apply_stored(void *data, struct chrun_layer_applier *a, size_t i,
                        struct chrun_err *err)
{
    const struct stored_layers *sl = data;
    const struct chrun_descriptor *d = &sl->m->layers[i];
    cleanup_close int bfd = chrun_store_open_blob(sl->st, &d->digest, err);
    chrun_log_debug("layer %zu/%zu %s", i + 1, sl->m->n_layers, d->digest.str);
    if (bfd < 0)
        return -1;
    return chrun_layer_apply(a, bfd, d, &sl->cfg->diff_ids[i], err);
}

static int apply_layers(struct chrun_store *st, int bundlefd, const struct chrun_manifest *m,
                        const struct chrun_image_config *cfg, struct chrun_err *err)
{
    struct stored_layers sl = {st, m, cfg};
    return chrun_bundle_apply_rootfs(bundlefd, m->n_layers, apply_stored, &sl, err);
}

struct chrun_bundle_staging {
    struct target t;
    struct chrun_digest md;
    int parentfd;             /* the target's parent directory */
    int dirfd;                /* the temporary bundle, flock held */
    char tmpname[NAME_MAX + 1]; /* its name in the parent, "" once gone */
    bool replace;             /* publish exchanges it with what is there */
};

int chrun_bundle_staging_fd(const struct chrun_bundle_staging *bs)
{
    return bs->dirfd;
}

const char *chrun_bundle_staging_path(const struct chrun_bundle_staging *bs)
{
    return bs->t.path;
}

void chrun_bundle_staging_free(struct chrun_bundle_staging *bs)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    if (bs == NULL)
        return;
    if (bs->tmpname[0] != '\0')
        chrun_fs_rm_rf_at(bs->parentfd, bs->tmpname, &ignored);
    if (bs->dirfd >= 0)
        close(bs->dirfd);
    if (bs->parentfd >= 0)
        close(bs->parentfd);
    free(bs);
}

static void staging_free_fn(struct chrun_bundle_staging **bs)
{
    chrun_bundle_staging_free(*bs);
}
#define cleanup_staging __attribute__((cleanup(staging_free_fn)))

/* Make BS's temporary directory, locked before it gets the ".tmp-" name
 * remove_stale_temps sweeps (chrun_fs_mkdtemp_locked_at). */
static int staging_mkdir(struct chrun_bundle_staging *bs, struct chrun_err *err)
{
    char hidden[NAME_MAX + 1], swept[NAME_MAX + 1];
    snprintf(hidden, sizeof(hidden), ".%.200s.new-", bs->t.base);
    snprintf(swept, sizeof(swept), ".%.200s" TEMP_MARK, bs->t.base);
    bs->dirfd = chrun_fs_mkdtemp_locked_at(bs->parentfd, hidden, swept, bs->tmpname,
                                           sizeof(bs->tmpname), err);
    if (bs->dirfd < 0)
        bs->tmpname[0] = '\0';
    return bs->dirfd < 0 ? -1 : 0;
}

/* Begin at the initialized target T. */
static int staging_begin_at(const struct target *t, const struct chrun_digest *md, bool force,
                            struct chrun_bundle_staging **ret, struct chrun_err *err)
{
    cleanup_staging struct chrun_bundle_staging *bs = calloc(1, sizeof(*bs));
    int existing;

    *ret = NULL;
    if (bs == NULL)
        return chrun_err_sys(err, ENOMEM, "bundle '%s'", t->path);
    bs->t = *t;
    bs->md = *md;
    bs->dirfd = -1;
    bs->parentfd = open(t->parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (bs->parentfd < 0)
        return chrun_err_sys(err, errno, "bundle directory '%s'", t->parent);
    existing = check_existing(bs->parentfd, t, md->str, force, err);
    if (existing < 0)
        return -1;
    if (existing == 1)
        return 1; /* SPEC: re-running on a complete bundle is instant */
    bs->replace = existing == 2;
    remove_stale_temps(bs->parentfd, t);
    if (staging_mkdir(bs, err) < 0)
        return -1;
    *ret = take_ptr(bs);
    return 0;
}

int chrun_bundle_staging_begin(struct chrun_store *st, const char *bundle,
                               const struct chrun_digest *md, bool force,
                               struct chrun_bundle_staging **ret, struct chrun_err *err)
{
    struct target t;
    *ret = NULL;
    if (target_init(&t, st, bundle, md, err) < 0)
        return -1;
    return staging_begin_at(&t, md, force, ret, err);
}

int chrun_bundle_write_image_config(int bundlefd, json_t *image_config,
                                    const char *manifest_digest, const char *ref,
                                    const char *idmap, struct chrun_err *err)
{
    cleanup_json json_t *doc = NULL;
    cleanup_close int rootfd = openat(bundlefd, "rootfs", O_PATH | O_DIRECTORY | O_NOFOLLOW |
                                                              O_CLOEXEC);
    if (rootfd < 0)
        return chrun_err_sys(err, errno, "open rootfs");
    doc = build_config(rootfd, image_config, manifest_digest, ref != NULL && *ref ? ref : NULL,
                       idmap != NULL && *idmap ? idmap : NULL, err);
    if (doc == NULL)
        return -1;
    return write_config(bundlefd, doc, err);
}

int chrun_bundle_staging_publish(struct chrun_bundle_staging *bs, struct chrun_err *err)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    const struct target *t = &bs->t;
    if (bs->replace) {
        if (renameat2(bs->parentfd, bs->tmpname, bs->parentfd, t->base, RENAME_EXCHANGE) < 0)
            return chrun_err_sys(err, errno, "replace bundle '%s'", t->path);
        /* the temporary name now holds the old bundle, which free removes */
        return chrun_fs_fsync_dir(bs->parentfd, err);
    }
    if (renameat2(bs->parentfd, bs->tmpname, bs->parentfd, t->base, RENAME_NOREPLACE) < 0) {
        int e = errno;
        if (e == EEXIST && check_existing(bs->parentfd, t, bs->md.str, false, &ignored) == 1)
            return 0; /* a concurrent unpack of the same image finished first */
        return chrun_err_sys(err, e, "rename bundle into '%s'", t->path);
    }
    bs->tmpname[0] = '\0';
    return chrun_fs_fsync_dir(bs->parentfd, err);
}

/* Build the bundle for manifest M (digest MD) of IMG at target T. */
static int unpack_to(struct chrun_store *st, const struct chrun_store_image *img,
                     const struct chrun_manifest *m, const struct chrun_digest *md,
                     const struct target *t, bool force, const char *idmap,
                     struct chrun_err *err)
{
    cleanup_staging struct chrun_bundle_staging *bs = NULL;
    struct chrun_image_config cfg;
    int rc = staging_begin_at(t, md, force, &bs, err);

    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (chrun_image_config_load(&cfg, st, &m->config.digest, err) < 0)
        return -1;
    if (cfg.n_diff_ids != m->n_layers)
        rc = chrun_err_set(err, CHRUN_E_INPUT,
                           "manifest %s has %zu layers but its config lists %zu diff_ids",
                           md->str, m->n_layers, cfg.n_diff_ids);
    if (rc == 0)
        rc = apply_layers(st, bs->dirfd, m, &cfg, err);
    if (rc == 0)
        rc = chrun_bundle_write_image_config(bs->dirfd, cfg.json, md->str, img->ref, idmap, err);
    if (rc == 0)
        rc = chrun_bundle_staging_publish(bs, err);
    chrun_image_config_release(&cfg);
    return rc;
}

struct unpack_job {
    struct chrun_store *st;
    const struct chrun_store_image *img;
    const struct chrun_manifest *m;
    const struct chrun_digest *md;
    const struct target *t;
    bool force;
    char idmap[CHRUN_IDMAP_STR_MAX];
};

static int unpack_job_run(void *data, struct chrun_err *err)
{
    struct unpack_job *j = data;
    return unpack_to(j->st, j->img, j->m, j->md, j->t, j->force, j->idmap, err);
}

/* An ordinary user with subordinate ids unpacks as root of a user namespace
 * (so files get the image's owners); the whole unpack, publish and cleanup
 * included, runs there, since only there can it remove what it chowned. */
static int unpack_maybe_userns(struct chrun_store *st, const struct chrun_store_image *img,
                               const struct chrun_manifest *m, const struct chrun_digest *md,
                               const struct target *t, bool force, struct chrun_err *err)
{
    struct chrun_idmap map;
    struct unpack_job job = {st, img, m, md, t, force, ""};
    /* root, or root of the user namespace chrun-pull entered (its mapping
     * is recorded as a child's would be) */
    if (geteuid() == 0)
        return unpack_to(st, img, m, md, t, force, chrun_userns_entered_idmap(), err);
    chrun_idmap_load(&map);
    if (!map.subids) {
        chrun_log_debug("unpacking without a user namespace: %s", map.why);
        return unpack_to(st, img, m, md, t, force, NULL, err);
    }
    chrun_idmap_format(&map, job.idmap, sizeof(job.idmap));
    chrun_log_debug("unpacking in a user namespace: %s", job.idmap);
    return chrun_userns_run(&map, unpack_job_run, &job, err);
}

int chrun_bundle_unpack(struct chrun_store *st, const char *image, const char *bundle,
                        const struct chrun_unpack_opts *opts, char *ret_path, size_t size,
                        struct chrun_err *err)
{
    static const struct chrun_unpack_opts defaults = CHRUN_UNPACK_OPTS_INIT;
    struct chrun_store_image img;
    struct chrun_manifest m;
    struct chrun_digest md;
    struct target t;
    int rc;

    if (opts == NULL)
        opts = &defaults;
    if (chrun_image_load_runnable(st, image, opts->platform, &m, &img, &md, err) < 0)
        return chrun_err_prefix(err, "image '%s'", image);
    rc = target_init(&t, st, bundle, &md, err);
    if (rc == 0 && snprintf(ret_path, size, "%s", t.path) >= (int) size)
        rc = chrun_err_sys(err, ENAMETOOLONG, "bundle path '%s'", t.path);
    if (rc == 0 && unpack_maybe_userns(st, &img, &m, &md, &t, opts->force, err) < 0)
        rc = chrun_err_prefix(err, "image '%s'", image);
    chrun_manifest_release(&m);
    return rc;
}
