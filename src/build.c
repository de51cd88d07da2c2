/* chrun_build: Dockerfile -> layers, config and manifest in the store (see
 * include/chrun/build.h). */
#include "chrun/build.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "chrun/bundle.h"
#include "chrun/changeset.h"
#include "chrun/copy.h"
#include "chrun/dockerfile.h"
#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/layer.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/ref.h"
#include "chrun/runtime.h"
#include "cleanup.h"
#include "util.h"

#define WORK_PREFIX "build-"
#define CACHE_ENTRY_MAX 4096

struct var {
    char *name;
    char *value; /* NULL: declared without a value */
};

struct vars {
    struct var *v;
    size_t n;
};

struct builder {
    struct chrun_store *st;
    const struct chrun_build_opts *opts;
    const char *dfname;
    int ctxfd;
    int workfd;
    int rootfd;
    char workname[NAME_MAX + 1];
    char bundle[PATH_MAX];
    json_t *image;  /* the image config being built */
    json_t *layers; /* manifest layer descriptors */
    struct chrun_digest chain; /* parent state for the step cache */
    struct vars meta;          /* ARGs before FROM */
    struct vars args;          /* ARGs after FROM */
    bool *used_args;           /* per --build-arg */
    bool seen_from, seen_cmd;
    int64_t epoch;             /* SOURCE_DATE_EPOCH, or -1 */
    char created[32];
};

/* ---- variables -------------------------------------------------------------- */

static void vars_release(struct vars *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->v[i].name);
        free(vs->v[i].value);
    }
    free(vs->v);
}

static struct var *vars_find(const struct vars *vs, const char *name)
{
    for (size_t i = vs->n; i-- > 0;)
        if (streq(vs->v[i].name, name))
            return &vs->v[i];
    return NULL;
}

static int vars_set(struct vars *vs, const char *name, const char *value, struct chrun_err *err)
{
    struct var *v = vars_find(vs, name), *p;
    char *val = value ? strdup(value) : NULL;
    if (value != NULL && val == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    if (v != NULL) {
        free(v->value);
        v->value = val;
        return 0;
    }
    p = realloc(vs->v, (vs->n + 1) * sizeof(*p));
    if (p == NULL || (p[vs->n].name = strdup(name)) == NULL) {
        free(val);
        vs->v = p ? p : vs->v;
        return chrun_err_sys(err, ENOMEM, "build");
    }
    vs->v = p;
    vs->v[vs->n++].value = val;
    return 0;
}

static json_t *cfg(struct builder *b)
{
    json_t *c = json_object_get(b->image, "config");
    if (!json_is_object(c)) {
        c = json_object();
        json_object_set_new(b->image, "config", c);
    }
    return c;
}

/* ENV value of NAME in the config, or NULL. */
static const char *env_value(struct builder *b, const char *name)
{
    json_t *env = json_object_get(cfg(b), "Env"), *v;
    size_t i, len = strlen(name);
    const char *found = NULL;
    json_array_foreach (env, i, v) {
        const char *s = json_string_value(v);
        if (s && strncmp(s, name, len) == 0 && s[len] == '=')
            found = s + len + 1;
    }
    return found;
}

/* Docker: ENV wins over ARG; before FROM only the ARGs before FROM exist. */
static const char *lookup(void *data, const char *name)
{
    struct builder *b = data;
    const char *e;
    struct var *v;
    if (!b->seen_from) {
        v = vars_find(&b->meta, name);
        return v ? v->value : NULL;
    }
    e = env_value(b, name);
    if (e != NULL)
        return e;
    v = vars_find(&b->args, name);
    return v ? v->value : NULL;
}

/* --build-arg NAME's value (marking it used), or NULL. */
static const char *build_arg(struct builder *b, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < b->opts->n_build_args; i++) {
        const char *a = b->opts->build_args[i];
        if (strncmp(a, name, len) == 0 && (a[len] == '=' || a[len] == '\0')) {
            b->used_args[i] = true;
            return a[len] == '=' ? a + len + 1 : getenv(name);
        }
    }
    return NULL;
}

/* ---- the step cache ---------------------------------------------------------- */

static int chain_next(struct chrun_digest *chain, const char *text, const char *extra,
                      struct chrun_err *err)
{
    cleanup_free char *buf = NULL;
    int len = asprintf(&buf, "%s\n%s\n%s", chain->str, text, extra ? extra : "");
    if (len < 0)
        return chrun_err_sys(err, ENOMEM, "build");
    return chrun_digest_of_buffer(chain, buf, (size_t) len, err);
}

/* Look KEY up; a hit is only trusted when its blob is in the store. */
static bool cache_get(struct builder *b, const struct chrun_digest *key,
                      struct chrun_changeset_layer *ret)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    cleanup_free char *buf = NULL;
    cleanup_json json_t *doc = NULL;
    cleanup_close int dfd = -1;
    size_t len;
    dfd = openat(chrun_store_root_fd(b->st), CHRUN_BUILD_CACHE_DIR,
                 O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || chrun_io_read_file_at(dfd, chrun_digest_hex(key), CACHE_ENTRY_MAX, &buf, &len,
                                         &ignored) < 0)
        return false;
    doc = json_loadb(buf, len, 0, NULL);
    *ret = (struct chrun_changeset_layer){.empty = json_is_true(json_object_get(doc, "empty"))};
    if (ret->empty)
        return json_is_object(doc);
    ret->size = json_integer_value(json_object_get(doc, "size"));
    return chrun_digest_parse(&ret->digest, json_string_value(json_object_get(doc, "digest")) ?: "",
                              &ignored) == 0 &&
           chrun_digest_parse(&ret->diff_id,
                              json_string_value(json_object_get(doc, "diff_id")) ?: "",
                              &ignored) == 0 &&
           ret->size > 0 && chrun_store_has_blob(b->st, &ret->digest);
}

static int cache_put(struct builder *b, const struct chrun_digest *key,
                     const struct chrun_changeset_layer *l, struct chrun_err *err)
{
    cleanup_json json_t *doc = NULL;
    cleanup_free char *text = NULL;
    cleanup_close int dfd = -1;
    int root = chrun_store_root_fd(b->st);
    doc = l->empty ? json_pack("{s:b}", "empty", 1)
                   : json_pack("{s:b, s:s, s:s, s:I}", "empty", 0, "digest", l->digest.str,
                               "diff_id", l->diff_id.str, "size", (json_int_t) l->size);
    text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (text == NULL)
        return chrun_err_sys(err, ENOMEM, "build cache");
    if (mkdirat(root, CHRUN_BUILD_CACHE_DIR, 0755) < 0 && errno != EEXIST)
        return chrun_err_sys(err, errno, "create '%s'", CHRUN_BUILD_CACHE_DIR);
    dfd = openat(root, CHRUN_BUILD_CACHE_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return chrun_err_sys(err, errno, "open '%s'", CHRUN_BUILD_CACHE_DIR);
    /* concurrent builds may write one key: no shared temporary, no lock */
    return chrun_fs_write_atomic_unlocked_at(chrun_store_tmp_fd(b->st), dfd,
                                             chrun_digest_hex(key), text, strlen(text), 0644,
                                             err);
}

/* ---- config bookkeeping ------------------------------------------------------ */

static int add_history(struct builder *b, const char *created_by, bool empty,
                       struct chrun_err *err)
{
    json_t *h = json_object_get(b->image, "history");
    json_t *e = json_pack("{s:s, s:s}", "created", b->created, "created_by", created_by);
    if (!json_is_array(h)) {
        h = json_array();
        json_object_set_new(b->image, "history", h);
    }
    if (e == NULL || (empty && json_object_set_new(e, "empty_layer", json_true()) < 0) ||
        json_array_append_new(h, e) < 0)
        return chrun_err_sys(err, ENOMEM, "build config");
    return 0;
}

static int add_layer(struct builder *b, const struct chrun_changeset_layer *l,
                     struct chrun_err *err)
{
    json_t *rootfs = json_object_get(b->image, "rootfs");
    json_t *ids = json_object_get(rootfs, "diff_ids");
    json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", CHRUN_MT_OCI_LAYER_GZIP, "digest",
                          l->digest.str, "size", (json_int_t) l->size);
    if (d == NULL || json_array_append_new(b->layers, d) < 0 ||
        json_array_append_new(ids, json_string(l->diff_id.str)) < 0)
        return chrun_err_sys(err, ENOMEM, "build config");
    return 0;
}

/* ---- filesystem steps ------------------------------------------------------- */

typedef int (*step_fn)(struct builder *b, void *data, struct chrun_err *err);

static int apply_cached(struct builder *b, const struct chrun_changeset_layer *l,
                        struct chrun_err *err)
{
    struct chrun_descriptor desc = {.size = l->size, .digest = l->digest};
    struct chrun_layer_applier *a;
    cleanup_close int fd = chrun_store_open_blob(b->st, &l->digest, err);
    int rc;
    if (fd < 0)
        return -1;
    snprintf(desc.media_type, sizeof(desc.media_type), "%s", CHRUN_MT_OCI_LAYER_GZIP);
    a = chrun_layer_applier_new(b->rootfd, err);
    if (a == NULL)
        return -1;
    rc = chrun_layer_apply(a, fd, &desc, &l->diff_id, err);
    if (rc == 0)
        rc = chrun_layer_applier_finish(a, err);
    chrun_layer_applier_free(a);
    return rc;
}

static int run_and_diff(struct builder *b, step_fn fn, void *data,
                        struct chrun_changeset_layer *l, struct chrun_err *err)
{
    struct chrun_snapshot *before = chrun_snapshot_take(b->rootfd, err), *after = NULL;
    int rc = before ? fn(b, data, err) : -1;
    if (rc == 0)
        after = chrun_snapshot_take(b->rootfd, err);
    if (rc == 0 && after == NULL)
        rc = -1;
    if (rc == 0)
        rc = chrun_changeset_write_layer(b->st, b->rootfd, before, after, b->epoch, l, err);
    chrun_snapshot_free(before);
    chrun_snapshot_free(after);
    return rc;
}

/* One filesystem-changing step: from the cache, or run FN and diff. */
static int fs_step(struct builder *b, const char *text, const char *extra, step_fn fn,
                   void *data, struct chrun_err *err)
{
    struct chrun_digest key = b->chain;
    struct chrun_changeset_layer l;
    bool hit;
    if (chain_next(&key, text, extra, err) < 0)
        return -1;
    hit = !b->opts->no_cache && cache_get(b, &key, &l);
    if (hit) {
        chrun_log_info("%s: using cache", text);
        if (!l.empty && apply_cached(b, &l, err) < 0)
            return -1;
    } else {
        chrun_log_debug("%s: running (cache key %s)", text, key.str);
        if (run_and_diff(b, fn, data, &l, err) < 0 || cache_put(b, &key, &l, err) < 0)
            return -1;
    }
    if ((!l.empty && add_layer(b, &l, err) < 0) || add_history(b, text, l.empty, err) < 0)
        return -1;
    b->chain = key;
    return chain_next(&b->chain, "layer", l.empty ? "empty" : l.diff_id.str, err);
}

/* A metadata-only step: history (TEXT) and the cache chain (TEXT, EXTRA). */
static int meta_step(struct builder *b, const char *text, const char *extra,
                     struct chrun_err *err)
{
    if (add_history(b, text, true, err) < 0)
        return -1;
    return chain_next(&b->chain, text, extra, err);
}

/* ---- RUN -------------------------------------------------------------------- */

/* Mount points the runtime creates when missing; made before the snapshot
 * and removed after the step when still empty, so they never reach a layer.
 * Files go in etc/ as the container sees it (resolved in the root): an
 * image's "etc -> /host/dir" must never make the builder touch the host. */
static const char *const run_dirs[] = {"proc", "dev", "sys"};
static const char *const run_files[] = {"resolv.conf", "hosts"};

struct mount_points {
    unsigned dirs_made;
    bool file_made[ARRAY_SIZE(run_files)];
    struct stat file_st[ARRAY_SIZE(run_files)]; /* what we made, to remove only that */
};

static int open_etc(struct builder *b)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    return chrun_fs_open_in_root(b->rootfd, "etc", O_RDONLY | O_DIRECTORY, 0, &ignored);
}

static void make_mount_points(struct builder *b, struct mount_points *mp)
{
    cleanup_close int etc = -1;
    memset(mp, 0, sizeof(*mp));
    for (size_t i = 0; i < ARRAY_SIZE(run_dirs); i++)
        if (mkdirat(b->rootfd, run_dirs[i], 0755) == 0)
            mp->dirs_made |= 1u << i;
    etc = open_etc(b);
    for (size_t i = 0; etc >= 0 && i < ARRAY_SIZE(run_files); i++) {
        int fd = openat(etc, run_files[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                        0644);
        if (fd < 0)
            continue;
        mp->file_made[i] = fstat(fd, &mp->file_st[i]) == 0;
        close(fd);
    }
}

static void remove_mount_points(struct builder *b, const struct mount_points *mp)
{
    cleanup_close int etc = -1;
    struct stat st;
    for (size_t i = 0; i < ARRAY_SIZE(run_dirs); i++)
        if (mp->dirs_made & (1u << i))
            unlinkat(b->rootfd, run_dirs[i], AT_REMOVEDIR); /* fails when not empty: kept */
    etc = open_etc(b);
    for (size_t i = 0; etc >= 0 && i < ARRAY_SIZE(run_files); i++)
        if (mp->file_made[i] && fstatat(etc, run_files[i], &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_dev == mp->file_st[i].st_dev && st.st_ino == mp->file_st[i].st_ino &&
            S_ISREG(st.st_mode) && st.st_size == 0)
            unlinkat(etc, run_files[i], 0);
}

struct run_step {
    char **argv;
    char **env; /* ARG values not shadowed by ENV, "K=V", NULL-terminated */
    size_t n_env;
};

/* Run through the runtime with stdout on our stderr (stdout carries only the
 * digest) and stdin from /dev/null, as a build step has no terminal. */
static int run_exec(struct builder *b, struct run_step *rs, int *ret_status,
                    struct chrun_err *err)
{
    struct chrun_exec_opts eo = CHRUN_EXEC_OPTS_INIT;
    cleanup_close int saved_out = -1, saved_in = -1, null = -1;
    int rc;
    eo.env = (const char *const *) rs->env;
    eo.n_env = rs->n_env;
    eo.flags |= CHRUN_EXEC_SINGLE_ID;
    /* a Dockerfile runs as root: its own pid namespace (no /proc/PID/root of
     * host processes) and pivot_root (no chroot to climb out of) */
    eo.ns |= CHRUN_EXEC_NS_PID | CHRUN_EXEC_NS_IPC | CHRUN_EXEC_NS_UTS;
    eo.flags |= CHRUN_EXEC_DEFAULT_CAPS;
    if (chrun_bundle_write_config(b->workfd, b->image, err) < 0)
        return -1;
    fflush(stdout);
    saved_out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    saved_in = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (saved_out < 0 || saved_in < 0 || null < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0 ||
        dup2(null, STDIN_FILENO) < 0)
        rc = chrun_err_sys(err, errno, "redirect the output of RUN");
    else
        rc = chrun_runtime_exec(b->bundle, &eo, rs->argv, ret_status, err);
    if (saved_out >= 0)
        dup2(saved_out, STDOUT_FILENO);
    if (saved_in >= 0)
        dup2(saved_in, STDIN_FILENO);
    return rc;
}

static int run_fn(struct builder *b, void *data, struct chrun_err *err)
{
    struct run_step *rs = data;
    int status = 0, rc;
    rc = run_exec(b, rs, &status, err);
    if (rc == 0 && status != 0)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "RUN returned exit status %d", status);
    return rc;
}

static int build_run_env(struct builder *b, struct run_step *rs, struct chrun_err *err)
{
    rs->env = calloc(b->args.n + 1, sizeof(char *));
    if (rs->env == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; i < b->args.n; i++) {
        const struct var *v = &b->args.v[i];
        if (v->value == NULL || env_value(b, v->name) != NULL)
            continue;
        if (asprintf(&rs->env[rs->n_env], "%s=%s", v->name, v->value) < 0)
            return chrun_err_sys(err, ENOMEM, "build");
        rs->n_env++;
    }
    return 0;
}

static int do_run(struct builder *b, const struct chrun_df_instr *in, struct chrun_err *err)
{
    char *shell[] = {"/bin/sh", "-c", in->args, NULL};
    struct run_step rs = {.argv = in->exec ? in->exec : shell};
    cleanup_free char *text = NULL, *argv_json = NULL, *extra = NULL;
    cleanup_json json_t *arr = json_array();
    int rc;
    for (char **a = rs.argv; *a; a++)
        json_array_append_new(arr, json_string(*a));
    argv_json = json_dumps(arr, JSON_COMPACT);
    rc = argv_json ? build_run_env(b, &rs, err) : chrun_err_sys(err, ENOMEM, "build");
    if (rc == 0 && (asprintf(&text, "RUN %s", in->exec ? argv_json : in->args) < 0 ||
                    asprintf(&extra, "%s", argv_json) < 0))
        rc = chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; rc == 0 && i < rs.n_env; i++) {
        char *more = NULL;
        if (asprintf(&more, "%s\n%s", extra, rs.env[i]) < 0)
            rc = chrun_err_sys(err, ENOMEM, "build");
        free(extra);
        extra = more;
    }
    if (rc == 0) {
        /* made before the "before" snapshot, removed after the "after" one */
        struct mount_points mp;
        make_mount_points(b, &mp);
        rc = fs_step(b, text, extra, run_fn, &rs, err);
        remove_mount_points(b, &mp);
    }
    chrun_dockerfile_words_free(rs.env);
    return rc;
}

/* ---- COPY, ADD, WORKDIR ------------------------------------------------------ */

/* Join PATH to the working directory unless it is absolute. */
static char *abs_path(struct builder *b, const char *path)
{
    const char *wd = json_string_value(json_object_get(cfg(b), "WorkingDir"));
    char *out = NULL;
    if (path[0] == '/')
        return strdup(path);
    if (wd == NULL || *wd == '\0')
        wd = "/";
    if (asprintf(&out, "%s%s%s", wd, wd[strlen(wd) - 1] == '/' ? "" : "/", path) < 0)
        return NULL;
    return out;
}

struct copy_step {
    struct chrun_copy c;
    char **srcs;
    size_t n;
};

static int copy_fn(struct builder *b, void *data, struct chrun_err *err)
{
    struct copy_step *cs = data;
    (void) b;
    return chrun_copy_run(&cs->c, cs->srcs, cs->n, err);
}

/* --chown=user[:group]: numbers, or names from the rootfs' account files. */
static int resolve_chown(struct builder *b, const char *spec, struct chrun_copy *c,
                         struct chrun_err *err)
{
    cleanup_free char *passwd = NULL, *group = NULL;
    struct chrun_user_spec us;
    struct chrun_exec_user u, g;
    struct chrun_user_spec gs = {{0}, ""};
    if (chrun_user_spec_parse(&us, spec, err) < 0)
        return -1;
    /* a FIFO or device an image put there is refused, never opened */
    if (chrun_fs_read_regular_in_root(b->rootfd, "/etc/passwd", CHRUN_RUNTIME_ETC_MAX, &passwd,
                                      err) < 0 ||
        chrun_fs_read_regular_in_root(b->rootfd, "/etc/group", CHRUN_RUNTIME_ETC_MAX, &group,
                                      err) < 0)
        return -1;
    snprintf(gs.user, sizeof(gs.user), "%s", us.user);
    if (chrun_exec_user_resolve(&u, &gs, passwd, group, err) < 0)
        return chrun_err_prefix(err, "--chown '%s'", spec);
    c->chown = true;
    c->uid = u.uid;
    c->gid = (gid_t) u.uid; /* Docker: a user without a group gets gid = uid */
    if (us.group[0] != '\0') {
        snprintf(gs.user, sizeof(gs.user), "0");
        snprintf(gs.group, sizeof(gs.group), "%s", us.group);
        if (chrun_exec_user_resolve(&g, &gs, passwd, group, err) < 0)
            return chrun_err_prefix(err, "--chown '%s'", spec);
        c->gid = g.gid;
    }
    return 0;
}

static int copy_words(struct builder *b, const struct chrun_df_instr *in, char ***ret,
                      size_t *ret_n, struct chrun_err *err)
{
    size_t n = 0;
    if (in->exec != NULL) {
        char **v = calloc(in->n_exec + 1, sizeof(char *));
        if (v == NULL)
            return chrun_err_sys(err, ENOMEM, "build");
        for (; n < in->n_exec; n++)
            if ((v[n] = strdup(in->exec[n])) == NULL) {
                chrun_dockerfile_words_free(v);
                return chrun_err_sys(err, ENOMEM, "build");
            }
        *ret = v;
        *ret_n = n;
    } else if (chrun_dockerfile_words(in->args, lookup, b, true, ret, ret_n, err) < 0) {
        return -1;
    }
    if (*ret_n < 2) {
        chrun_dockerfile_words_free(take_ptr(*ret));
        return chrun_err_set(err, CHRUN_E_INPUT, "%s needs a source and a destination",
                             in->keyword);
    }
    return 0;
}

static int do_copy(struct builder *b, const struct chrun_df_instr *in, struct chrun_err *err)
{
    struct chrun_copy c = {.ctxfd = b->ctxfd, .rootfd = b->rootfd,
                           .extract = in->kind == CHRUN_DF_ADD};
    cleanup_free char *text = NULL, *extra = NULL, *dest = NULL, *chown = NULL;
    struct chrun_digest sources;
    char **words = NULL;
    size_t n = 0;
    int rc;
    if (copy_words(b, in, &words, &n, err) < 0)
        return -1;
    for (size_t i = 0; i + 1 < n; i++)
        if (c.extract && strstr(words[i], "://") != NULL) {
            chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                          "ADD of a URL is not supported (offline builder): '%s'", words[i]);
            chrun_dockerfile_words_free(words);
            return -1;
        }
    dest = abs_path(b, words[n - 1]);
    rc = dest ? 0 : chrun_err_sys(err, ENOMEM, "build");
    if (rc == 0 && chrun_df_instr_flag(in, "chown") != NULL) {
        char **cw = NULL;
        size_t cn = 0;
        rc = chrun_dockerfile_words(chrun_df_instr_flag(in, "chown"), lookup, b, false, &cw, &cn, err);
        if (rc == 0)
            rc = resolve_chown(b, cw[0], &c, err);
        chrun_dockerfile_words_free(cw);
    }
    if (rc == 0)
        rc = chrun_copy_hash(b->ctxfd, words, n - 1, &sources, err);
    if (rc == 0 && (asprintf(&text, "%s %s%s%s", in->keyword, chrun_df_instr_flag(in, "chown") ? "--chown=" : "",
                             chrun_df_instr_flag(in, "chown") ? chrun_df_instr_flag(in, "chown") : "", chrun_df_instr_flag(in, "chown") ? " " : "") < 0 ||
                    asprintf(&extra, "%s %u:%u %d", sources.str, c.uid, c.gid, c.chown) < 0))
        rc = chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *more = NULL;
        if (asprintf(&more, "%s%s%s", text, i ? " " : "", i + 1 == n ? dest : words[i]) < 0)
            rc = chrun_err_sys(err, ENOMEM, "build");
        free(text);
        text = more;
    }
    if (rc == 0) {
        struct copy_step cs = {.c = c, .srcs = words, .n = n - 1};
        cs.c.dest = dest;
        rc = fs_step(b, text, extra, copy_fn, &cs, err);
    }
    chrun_dockerfile_words_free(words);
    return rc;
}

static int workdir_fn(struct builder *b, void *data, struct chrun_err *err)
{
    return chrun_copy_mkdir(b->rootfd, data, err);
}

static int do_workdir(struct builder *b, const struct chrun_df_instr *in, struct chrun_err *err)
{
    cleanup_free char *path = NULL, *text = NULL;
    char **w = NULL;
    size_t n = 0;
    if (chrun_dockerfile_words(in->args, lookup, b, false, &w, &n, err) < 0)
        return -1;
    path = abs_path(b, w[0]);
    chrun_dockerfile_words_free(w);
    if (path == NULL || asprintf(&text, "WORKDIR %s", path) < 0)
        return chrun_err_sys(err, ENOMEM, "build");
    json_object_set_new(cfg(b), "WorkingDir", json_string(path));
    return fs_step(b, text, NULL, workdir_fn, path, err);
}

/* ---- metadata -------------------------------------------------------------- */

static int set_env(struct builder *b, const char *key, const char *value, struct chrun_err *err)
{
    json_t *env = json_object_get(cfg(b), "Env"), *v;
    cleanup_free char *kv = NULL;
    size_t i, len = strlen(key);
    if (asprintf(&kv, "%s=%s", key, value) < 0)
        return chrun_err_sys(err, ENOMEM, "build");
    if (!json_is_array(env)) {
        env = json_array();
        json_object_set_new(cfg(b), "Env", env);
    }
    json_array_foreach (env, i, v) {
        const char *s = json_string_value(v);
        if (s && strncmp(s, key, len) == 0 && s[len] == '=')
            return json_array_set_new(env, i, json_string(kv));
    }
    return json_array_append_new(env, json_string(kv));
}

/* ENV, LABEL, ARG: KEY=VALUE pairs after substitution. */
static int do_pairs(struct builder *b, const struct chrun_df_instr *in, struct chrun_err *err)
{
    char **w = NULL, **keys = NULL, **values = NULL;
    size_t n = 0, np = 0;
    int rc = chrun_dockerfile_words(in->args, lookup, b, true, &w, &n, err);
    if (rc == 0)
        rc = chrun_dockerfile_pairs(in->kind, w, n, &keys, &values, &np, err);
    for (size_t i = 0; rc == 0 && i < np; i++) {
        if (in->kind == CHRUN_DF_ENV) {
            rc = set_env(b, keys[i], values[i], err);
        } else if (in->kind == CHRUN_DF_LABEL) {
            json_t *labels = json_object_get(cfg(b), "Labels");
            if (!json_is_object(labels)) {
                labels = json_object();
                json_object_set_new(cfg(b), "Labels", labels);
            }
            rc = json_object_set_new(labels, keys[i], json_string(values[i]));
        } else {
            const char *given = build_arg(b, keys[i]);
            rc = vars_set(b->seen_from ? &b->args : &b->meta, keys[i],
                          given ? given : values[i], err);
        }
    }
    chrun_dockerfile_pairs_free(keys, values, np);
    chrun_dockerfile_words_free(w);
    return rc;
}

static bool valid_port(const char *p)
{
    size_t digits = strspn(p, "0123456789");
    const char *proto = p + digits;
    return digits > 0 && digits <= 5 && atoi(p) <= 65535 &&
           (*proto == '\0' || streq(proto, "/tcp") || streq(proto, "/udp") ||
            streq(proto, "/sctp"));
}

/* EXPOSE and VOLUME: a set of names in the config. */
static int do_set(struct builder *b, const struct chrun_df_instr *in, struct chrun_err *err)
{
    const char *key = in->kind == CHRUN_DF_EXPOSE ? "ExposedPorts" : "Volumes";
    json_t *set = json_object_get(cfg(b), key);
    char **w = NULL;
    size_t n = 0;
    int rc = 0;
    if (in->exec == NULL && chrun_dockerfile_words(in->args, lookup, b, true, &w, &n, err) < 0)
        return -1;
    if (!json_is_object(set)) {
        set = json_object();
        json_object_set_new(cfg(b), key, set);
    }
    for (size_t i = 0; rc == 0 && i < (w ? n : in->n_exec); i++) {
        const char *item = w ? w[i] : in->exec[i];
        char port[64];
        if (in->kind == CHRUN_DF_EXPOSE && !valid_port(item))
            rc = chrun_err_set(err, CHRUN_E_INPUT, "EXPOSE '%s' is not PORT[/tcp|udp|sctp]",
                               item);
        else if (in->kind == CHRUN_DF_EXPOSE)
            snprintf(port, sizeof(port), "%s%s", item, strchr(item, '/') ? "" : "/tcp");
        if (rc == 0)
            rc = json_object_set_new(set, in->kind == CHRUN_DF_EXPOSE ? port : item,
                                     json_object());
    }
    chrun_dockerfile_words_free(w);
    return rc;
}

/* CMD and ENTRYPOINT: the exec form, or ["/bin/sh", "-c", text]. */
static int do_command(struct builder *b, const struct chrun_df_instr *in, struct chrun_err *err)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    if (in->exec != NULL) {
        for (size_t i = 0; i < in->n_exec; i++)
            json_array_append_new(arr, json_string(in->exec[i]));
    } else {
        json_array_append_new(arr, json_string("/bin/sh"));
        json_array_append_new(arr, json_string("-c"));
        json_array_append_new(arr, json_string(in->args));
    }
    if (in->kind == CHRUN_DF_CMD) {
        b->seen_cmd = true;
        return json_object_set_new(cfg(b), "Cmd", arr);
    }
    /* Docker: a new ENTRYPOINT drops the base image's CMD */
    if (!b->seen_cmd)
        json_object_del(cfg(b), "Cmd");
    return json_object_set_new(cfg(b), "Entrypoint", arr);
}

static int do_user(struct builder *b, const struct chrun_df_instr *in, struct chrun_err *err)
{
    char **w = NULL;
    size_t n = 0;
    if (chrun_dockerfile_words(in->args, lookup, b, false, &w, &n, err) < 0)
        return -1;
    json_object_set_new(cfg(b), "User", json_string(w[0]));
    chrun_dockerfile_words_free(w);
    return 0;
}

/* ---- FROM ---------------------------------------------------------------------- */

static int from_image(struct builder *b, const char *name, struct chrun_err *err)
{
    struct chrun_store_image img;
    struct chrun_manifest m;
    struct chrun_image_config c;
    struct chrun_digest md;
    struct chrun_layer_applier *a;
    int rc = 0;
    if (chrun_store_resolve(b->st, name, &img, err) < 0) {
        if (err->code == CHRUN_E_NOTFOUND)
            return chrun_err_set(err, CHRUN_E_NOTFOUND,
                                 "FROM image '%s' is not in the store (the builder is offline: "
                                 "chrun-pull or chrun-load it first)",
                                 name);
        return -1;
    }
    if (chrun_manifest_load_image(&m, b->st, &img, NULL, &md, err) < 0)
        return chrun_err_prefix(err, "FROM '%s'", name);
    if (chrun_image_config_load(&c, b->st, &m.config.digest, err) < 0) {
        chrun_manifest_release(&m);
        return chrun_err_prefix(err, "FROM '%s'", name);
    }
    if (c.n_diff_ids != m.n_layers)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "FROM '%s': %zu layers but %zu diff_ids", name,
                           m.n_layers, c.n_diff_ids);
    a = rc == 0 ? chrun_layer_applier_new(b->rootfd, err) : NULL;
    if (rc == 0 && a == NULL)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < m.n_layers; i++) {
        cleanup_close int fd = chrun_store_open_blob(b->st, &m.layers[i].digest, err);
        const char *mt = m.layers[i].media_type;
        /* the same bytes under the OCI name: the new manifest is OCI */
        if (streq(mt, CHRUN_MT_DOCKER_LAYER_GZIP))
            mt = CHRUN_MT_OCI_LAYER_GZIP;
        rc = fd < 0 ? -1 : chrun_layer_apply(a, fd, &m.layers[i], &c.diff_ids[i], err);
        if (rc == 0 && json_array_append_new(b->layers,
                                             json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest",
                                                       m.layers[i].digest.str, "size",
                                                       (json_int_t) m.layers[i].size)) < 0)
            rc = chrun_err_sys(err, ENOMEM, "build");
    }
    if (rc == 0)
        rc = chrun_layer_applier_finish(a, err);
    chrun_layer_applier_free(a);
    if (rc == 0) {
        json_object_set(b->image, "config", json_object_get(c.json, "config"));
        json_object_set(b->image, "history", json_object_get(c.json, "history"));
        for (size_t i = 0; i < c.n_diff_ids; i++)
            json_array_append_new(json_object_get(json_object_get(b->image, "rootfs"),
                                                  "diff_ids"),
                                  json_string(c.diff_ids[i].str));
        rc = chain_next(&b->chain, "FROM", md.str, err);
    }
    if (rc < 0)
        chrun_err_prefix(err, "FROM '%s'", name);
    chrun_image_config_release(&c);
    chrun_manifest_release(&m);
    return rc;
}

static int do_from(struct builder *b, const struct chrun_df_instr *in, struct chrun_err *err)
{
    char **w = NULL;
    size_t n = 0;
    int rc;
    if (chrun_dockerfile_words(in->args, lookup, b, false, &w, &n, err) < 0)
        return -1;
    b->seen_from = true;
    if (w[0][0] == '\0')
        rc = chrun_err_set(err, CHRUN_E_INPUT, "FROM names no image");
    else if (streq(w[0], "scratch"))
        rc = chain_next(&b->chain, "FROM", "scratch", err);
    else
        rc = from_image(b, w[0], err);
    chrun_dockerfile_words_free(w);
    /* a deep copy: the base image's objects are never edited in place */
    if (rc == 0 && json_object_get(b->image, "config") != NULL)
        rc = json_object_set_new(b->image, "config",
                                 json_deep_copy(json_object_get(b->image, "config")));
    if (rc == 0 && json_object_get(b->image, "history") != NULL)
        rc = json_object_set_new(b->image, "history",
                                 json_deep_copy(json_object_get(b->image, "history")));
    return rc;
}

/* ---- the instruction loop -------------------------------------------------------- */

static int do_instr(struct builder *b, const struct chrun_df_instr *in, struct chrun_err *err)
{
    cleanup_free char *text = NULL, *values = NULL;
    int rc;
    switch (in->kind) {
    case CHRUN_DF_FROM: return do_from(b, in, err);
    case CHRUN_DF_RUN: return do_run(b, in, err);
    case CHRUN_DF_COPY:
    case CHRUN_DF_ADD: return do_copy(b, in, err);
    case CHRUN_DF_WORKDIR: return do_workdir(b, in, err);
    case CHRUN_DF_ENV:
    case CHRUN_DF_LABEL:
    case CHRUN_DF_ARG: rc = do_pairs(b, in, err); break;
    case CHRUN_DF_EXPOSE:
    case CHRUN_DF_VOLUME: rc = do_set(b, in, err); break;
    case CHRUN_DF_CMD:
    case CHRUN_DF_ENTRYPOINT: rc = do_command(b, in, err); break;
    case CHRUN_DF_USER: rc = do_user(b, in, err); break;
    default: return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "%s is not supported", in->keyword);
    }
    if (rc < 0 || !b->seen_from)
        return rc;
    /* ARG values are part of the state later steps see */
    if (asprintf(&text, "%s %s", in->keyword, in->args) < 0)
        return chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; in->kind == CHRUN_DF_ARG && i < b->args.n; i++) {
        const struct var *v = &b->args.v[i];
        char *more = NULL;
        if (asprintf(&more, "%s\n%s=%s", values ? values : "", v->name,
                     v->value ? v->value : "") < 0)
            return chrun_err_sys(err, ENOMEM, "build");
        free(values);
        values = more;
    }
    return meta_step(b, text, values, err);
}

/* ---- image config and manifest --------------------------------------------------- */

static int finish_image(struct builder *b, struct chrun_digest *ret, struct chrun_err *err)
{
    char platform[96], *arch, *variant;
    cleanup_free char *cfg_text = NULL, *man_text = NULL;
    cleanup_json json_t *man = NULL;
    struct chrun_digest cfg_digest;
    chrun_manifest_host_platform(platform, sizeof(platform));
    arch = strchr(platform, '/');
    *arch++ = '\0';
    variant = strchr(arch, '/');
    if (variant != NULL)
        *variant++ = '\0';
    json_object_set_new(b->image, "created", json_string(b->created));
    json_object_set_new(b->image, "os", json_string(platform));
    json_object_set_new(b->image, "architecture", json_string(arch));
    if (variant != NULL)
        json_object_set_new(b->image, "variant", json_string(variant));
    /* sorted keys: the same image gives the same bytes */
    cfg_text = json_dumps(b->image, JSON_COMPACT | JSON_SORT_KEYS);
    if (cfg_text == NULL)
        return chrun_err_sys(err, ENOMEM, "image config");
    if (chrun_store_put_blob(b->st, cfg_text, strlen(cfg_text), NULL, &cfg_digest, err) < 0)
        return chrun_err_prefix(err, "image config");
    man = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType",
                    CHRUN_MT_OCI_MANIFEST, "config", "mediaType", CHRUN_MT_OCI_CONFIG, "digest",
                    cfg_digest.str, "size", (json_int_t) strlen(cfg_text), "layers", b->layers);
    man_text = man ? json_dumps(man, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (man_text == NULL)
        return chrun_err_sys(err, ENOMEM, "manifest");
    if (chrun_store_put_blob(b->st, man_text, strlen(man_text), NULL, ret, err) < 0)
        return chrun_err_prefix(err, "manifest");
    for (size_t i = 0; i < b->opts->n_tags; i++) {
        struct chrun_ref r;
        char full[CHRUN_REF_STR_MAX];
        if (chrun_ref_parse(&r, b->opts->tags[i], err) < 0 ||
            chrun_store_tag(b->st, chrun_ref_format(&r, full, sizeof(full)), CHRUN_MT_OCI_MANIFEST,
                            ret, (int64_t) strlen(man_text), err) < 0)
            return chrun_err_prefix(err, "tag '%s'", b->opts->tags[i]);
    }
    return 0;
}

/* ---- setup ------------------------------------------------------------------------ */

static int read_epoch(struct builder *b, struct chrun_err *err)
{
    const char *s = getenv("SOURCE_DATE_EPOCH");
    time_t t = time(NULL);
    struct tm tm;
    b->epoch = -1;
    if (s != NULL && *s != '\0') {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0' || v < 0)
            return chrun_err_set(err, CHRUN_E_USAGE, "SOURCE_DATE_EPOCH '%s' is not a number", s);
        b->epoch = v;
        t = (time_t) v;
    }
    if (gmtime_r(&t, &tm) == NULL)
        return chrun_err_sys(err, EOVERFLOW, "SOURCE_DATE_EPOCH");
    strftime(b->created, sizeof(b->created), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return 0;
}

static int check_tags(const struct chrun_build_opts *o, struct chrun_err *err)
{
    for (size_t i = 0; i < o->n_tags; i++) {
        struct chrun_ref r;
        if (chrun_ref_parse(&r, o->tags[i], err) < 0)
            return -1;
        if (r.digest[0] != '\0')
            return chrun_err_set(err, CHRUN_E_USAGE, "tag '%s' must not hold a digest",
                                 o->tags[i]);
    }
    return 0;
}

static int load_dockerfile(const struct chrun_build_opts *o, struct chrun_dockerfile *df,
                           const char **ret_name, char *pathbuf, size_t size,
                           struct chrun_err *err)
{
    cleanup_free char *text = NULL;
    size_t len;
    int fd;
    if (o->dockerfile != NULL)
        snprintf(pathbuf, size, "%s", o->dockerfile);
    else if (snprintf(pathbuf, size, "%s/Dockerfile", o->context) >= (int) size)
        return chrun_err_sys(err, ENAMETOOLONG, "Dockerfile path");
    *ret_name = pathbuf;
    fd = open(pathbuf, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return chrun_err_sys(err, errno, "open Dockerfile '%s'", pathbuf);
    if (chrun_io_read_bounded(fd, CHRUN_DOCKERFILE_MAX, &text, &len, err) < 0) {
        close(fd);
        return chrun_err_prefix(err, "Dockerfile '%s'", pathbuf);
    }
    close(fd);
    return chrun_dockerfile_parse(df, pathbuf, text, len, err);
}

static int make_workdir(struct builder *b, struct chrun_err *err)
{
    int tmpfd = chrun_store_tmp_fd(b->st);
    if (chrun_fs_mkdtemp_at(tmpfd, WORK_PREFIX, b->workname, sizeof(b->workname), err) < 0)
        return -1;
    b->workfd = openat(tmpfd, b->workname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (b->workfd < 0 || mkdirat(b->workfd, "rootfs", 0755) < 0)
        return chrun_err_sys(err, errno, "create build directory");
    b->rootfd = openat(b->workfd, "rootfs", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (b->rootfd < 0)
        return chrun_err_sys(err, errno, "open build rootfs");
    if (snprintf(b->bundle, sizeof(b->bundle), "%s/tmp/%s", chrun_store_root_path(b->st),
                 b->workname) >= (int) sizeof(b->bundle))
        return chrun_err_sys(err, ENAMETOOLONG, "build directory");
    return 0;
}

static void builder_release(struct builder *b)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    if (b->workname[0] != '\0')
        chrun_fs_rm_rf_at(chrun_store_tmp_fd(b->st), b->workname, &ignored);
    if (b->rootfd >= 0)
        close(b->rootfd);
    if (b->workfd >= 0)
        close(b->workfd);
    if (b->ctxfd >= 0)
        close(b->ctxfd);
    json_decref(b->image);
    json_decref(b->layers);
    vars_release(&b->meta);
    vars_release(&b->args);
    free(b->used_args);
}

static int builder_init(struct builder *b, struct chrun_store *st,
                        const struct chrun_build_opts *o, struct chrun_err *err)
{
    *b = (struct builder){.st = st, .opts = o, .ctxfd = -1, .workfd = -1, .rootfd = -1};
    b->image = json_pack("{s:{s:s, s:[]}}", "rootfs", "type", "layers", "diff_ids");
    b->layers = json_array();
    b->used_args = calloc(o->n_build_args + 1, sizeof(bool));
    if (b->image == NULL || b->layers == NULL || b->used_args == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    if (read_epoch(b, err) < 0 || check_tags(o, err) < 0)
        return -1;
    b->ctxfd = open(o->context, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (b->ctxfd < 0)
        return chrun_err_sys(err, errno, "build context '%s'", o->context);
    return chrun_digest_of_buffer(&b->chain, "chrun-build 1", 13, err);
}

static int run_instrs(struct builder *b, const struct chrun_dockerfile *df,
                      struct chrun_err *err)
{
    for (size_t i = 0; i < df->n_instrs; i++) {
        const struct chrun_df_instr *in = &df->instrs[i];
        chrun_log_info("step %zu/%zu: %s %s", i + 1, df->n_instrs, in->keyword, in->args);
        if (in->kind == CHRUN_DF_FROM && make_workdir(b, err) < 0)
            return -1;
        if (do_instr(b, in, err) < 0)
            return chrun_err_prefix(err, "'%s' line %u", b->dfname, in->line);
    }
    for (size_t i = 0; i < b->opts->n_build_args; i++)
        if (!b->used_args[i])
            chrun_log_warn("build argument '%s' was not consumed by any ARG",
                           b->opts->build_args[i]);
    return 0;
}

int chrun_build(struct chrun_store *st, const struct chrun_build_opts *opts,
                struct chrun_digest *ret, struct chrun_err *err)
{
    struct builder b;
    struct chrun_dockerfile df = {0};
    char dfpath[PATH_MAX];
    int rc = builder_init(&b, st, opts, err);
    if (rc == 0)
        rc = load_dockerfile(opts, &df, &b.dfname, dfpath, sizeof(dfpath), err);
    if (rc == 0)
        rc = run_instrs(&b, &df, err);
    if (rc == 0)
        rc = finish_image(&b, ret, err);
    chrun_dockerfile_release(&df);
    builder_release(&b);
    return rc;
}
