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
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "chrun/bundle.h"
#include "chrun/changeset.h"
#include "chrun/copy.h"
#include "chrun/dockerfile.h"
#include "chrun/dockerignore.h"
#include "chrun/fetch.h"
#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/layer.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/ref.h"
#include "chrun/runtime.h"
#include "cleanup.h"
#include "json.h"
#include "util.h"

#define WORK_PREFIX "build-"
/* RUN --mount's of one step, and created mount-point paths. */
#define RUN_MOUNTS_MAX 16
#define MOUNT_PATHS_MAX 256

struct var {
    char *name;
    char *value; /* NULL: declared without a value */
};

struct vars {
    struct var *v;
    size_t n;
};

enum stage_state { STAGE_NEW, STAGE_BUILDING, STAGE_DONE };

/* One stage: a FROM and its instructions [first, end), or an image named
 * by COPY --from / RUN --mount from= (IMAGE_REF set, no instructions). */
struct stage {
    size_t index;           /* in the Dockerfile; implicit image stages after them */
    const char *name;       /* lowercased AS name, or NULL */
    char *image_ref;        /* implicit stage: the image reference */
    size_t first, end;
    enum stage_state state;
    json_t *image;          /* the image config being built */
    json_t *layers;         /* manifest layer descriptors */
    struct chrun_digest chain; /* parent state for the step cache */
    struct vars args;       /* ARGs declared in the stage */
    bool seen_cmd;
    /* the root filesystem, materialized only when needed */
    char workname[NAME_MAX + 1];
    int workfd;
    int rootfd;
    char bundle[PATH_MAX];
    size_t applied;         /* layers of LAYERS already in the rootfs */
    unsigned scratch_seq;   /* names of per-step scratch files */
};

struct secret {
    char id[256];
    const char *path;  /* src=FILE, or NULL */
    char env[256];     /* env=NAME: the value of our environment variable NAME */
};

struct builder {
    struct chrun_store *st;
    const struct chrun_build_opts *opts;
    struct chrun_dockerfile df;
    const char *dfname;
    char dfpath[PATH_MAX];
    int ctxfd;
    struct chrun_copy_filter ctx_filter; /* .dockerignore: see context_filter() */
    struct chrun_dockerignore *ignore;   /* the matcher behind ctx_filter */
    char tmpname[NAME_MAX + 1]; /* the builder's scratch directory in tmp/ */
    int tmpfd;
    unsigned tmp_seq;
    struct stage **stages;      /* the Dockerfile's, then implicit image stages */
    size_t n_df_stages, n_stages;
    struct stage *cur;          /* whose variables are in scope; NULL: before FROM */
    struct vars meta;           /* ARGs before the first FROM, and the platform ARGs */
    bool *used_args;            /* per --build-arg */
    struct secret *secrets;
    int64_t epoch;              /* the mtime cap and creation time */
    char created[32];
    char platform[96];
    bool located;               /* ERR already names a Dockerfile line */
};

/* ---- variables -------------------------------------------------------------- */

static void vars_release(struct vars *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->v[i].name);
        free(vs->v[i].value);
    }
    free(vs->v);
    *vs = (struct vars){0};
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

/* PARENT[KEY] as an object (an array with ARRAY), created when absent or of
 * another type; borrowed from PARENT. NULL with ERR. */
static json_t *member(json_t *parent, const char *key, bool array, struct chrun_err *err)
{
    json_t *m = json_object_get(parent, key);
    if (array ? json_is_array(m) : json_is_object(m))
        return m;
    m = array ? json_array() : json_object();
    if (chrun_json_set(parent, key, m, err) < 0)
        return NULL;
    return m;
}

/* OBJ[KEY] = the string S; WHAT names S when it is not UTF-8. */
static int set_str(json_t *obj, const char *key, const char *s, const char *what,
                   struct chrun_err *err)
{
    json_t *v = chrun_json_str(s, what, err);
    return v ? chrun_json_set(obj, key, v, err) : -1;
}

/* Append the string S to ARR; WHAT names S when it is not UTF-8. */
static int append_str(json_t *arr, const char *s, const char *what, struct chrun_err *err)
{
    json_t *v = chrun_json_str(s, what, err);
    return v ? chrun_json_append(arr, v, what, err) : -1;
}

/* 0 if S can be a JSON object key, else -1 with ERR naming WHAT. */
static int check_key(const char *s, const char *what, struct chrun_err *err)
{
    json_t *v = chrun_json_str(s, what, err);
    json_decref(v);
    return v ? 0 : -1;
}

/* KEY of the stage's config, or NULL (a read: nothing is created). */
static json_t *cfg_get(struct stage *s, const char *key)
{
    return json_object_get(json_object_get(s->image, "config"), key);
}

/* The stage's config object ("config" of the image), or NULL with ERR. */
static json_t *cfg(struct stage *s, struct chrun_err *err)
{
    return member(s->image, "config", false, err);
}

/* ENV value of NAME in the config, or NULL. */
static const char *env_value(struct stage *s, const char *name)
{
    json_t *env = cfg_get(s, "Env"), *v;
    size_t i, len = strlen(name);
    const char *found = NULL;
    json_array_foreach (env, i, v) {
        const char *str = json_string_value(v);
        if (str && strncmp(str, name, len) == 0 && str[len] == '=')
            found = str + len + 1;
    }
    return found;
}

/* Docker: ENV wins over ARG; before FROM (and in FROM lines) only the ARGs
 * before the first FROM exist. */
static const char *lookup(void *data, const char *name)
{
    struct builder *b = data;
    const char *e;
    struct var *v;
    if (b->cur == NULL) {
        v = vars_find(&b->meta, name);
        return v ? v->value : NULL;
    }
    e = env_value(b->cur, name);
    if (e != NULL)
        return e;
    v = vars_find(&b->cur->args, name);
    return v ? v->value : NULL;
}

static int words(struct builder *b, const char *s, bool split, char ***ret, size_t *ret_n,
                 struct chrun_err *err)
{
    return chrun_dockerfile_words_escape(s, b->df.escape, lookup, b, split, ret, ret_n, err);
}

/* S substituted as one word: a new string (free), or NULL with ERR set. */
static char *word1(struct builder *b, const char *s, struct chrun_err *err)
{
    char **w = NULL, *out;
    size_t n = 0;
    if (words(b, s, false, &w, &n, err) < 0)
        return NULL;
    out = take_ptr(w[0]);
    chrun_dockerfile_words_free(w);
    return out;
}

/* The filter of the build context for COPY/ADD, the cache key of their
 * sources and of RUN bind mounts of the context: the one place a
 * .dockerignore matcher plugs in. It is set in b->ctx_filter once the
 * context and the Dockerfile are known (after load_dockerfile() in
 * chrun_build()). NULL: nothing is ignored. */
static const struct chrun_copy_filter *context_filter(struct builder *b)
{
    return b->ctx_filter.ignored != NULL ? &b->ctx_filter : NULL;
}

/* The copy filter over the context's .dockerignore: an entry is left out
 * when a pattern excludes it, except a directory that an exception ("!")
 * may reach below: that one is walked and its entries judged one by one. A
 * path the matcher cannot judge is left out. */
static bool dockerignore_filter(void *data, const char *relpath, bool is_dir)
{
    const struct chrun_dockerignore *ign = data;
    struct chrun_err e = CHRUN_ERR_INIT;
    bool ignored = true, descend = false;
    while (relpath[0] == '.' && relpath[1] == '/')
        relpath += 2; /* the copy names entries below a source "." as "./x" */
    if (*relpath == '\0' || streq(relpath, "."))
        return false; /* the context itself is never left out (Docker) */
    if (chrun_dockerignore_match(ign, relpath, &ignored, &e) < 0)
        return true;
    if (!ignored || !is_dir)
        return ignored;
    if (chrun_dockerignore_may_descend(ign, relpath, &descend, &e) < 0)
        return true;
    return !descend;
}

/* Read the build's ignore file: "<Dockerfile>.dockerignore" beside the
 * Dockerfile, else the context's .dockerignore (none: nothing ignored). */
static int load_ignore(struct builder *b, struct chrun_err *err)
{
    cleanup_close int dirfd = -1;
    const char *name = NULL;
    if (b->ctxfd < 0)
        return 0;
    if (!streq(b->dfpath, "-")) {
        char dir[PATH_MAX];
        const char *slash = strrchr(b->dfpath, '/');
        name = slash ? slash + 1 : b->dfpath;
        snprintf(dir, sizeof(dir), "%.*s", slash ? (int) (slash - b->dfpath) : 1,
                 slash ? b->dfpath : ".");
        /* a Dockerfile of a tar context lives in the context itself */
        dirfd = streq(b->opts->context, "-")
                    ? chrun_fs_open_in_root(b->ctxfd, dir, O_PATH | O_DIRECTORY, 0, err)
                    : open(slash == b->dfpath ? "/" : dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0 && !streq(b->opts->context, "-"))
            return chrun_err_sys(err, errno, "Dockerfile directory '%s'", dir);
        if (dirfd < 0)
            return -1;
    }
    if (chrun_dockerignore_load(b->ctxfd, dirfd, name, &b->ignore, err) < 0)
        return -1;
    if (chrun_dockerignore_count(b->ignore) > 0)
        b->ctx_filter = (struct chrun_copy_filter){dockerignore_filter, b->ignore};
    return 0;
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

/* ---- config bookkeeping ------------------------------------------------------ */

static int add_history(struct builder *b, struct stage *s, const char *created_by, bool empty,
                       struct chrun_err *err)
{
    json_t *h = member(s->image, "history", true, err);
    cleanup_json json_t *e = json_object();
    if (h == NULL)
        return -1;
    if (e == NULL)
        return chrun_err_sys(err, ENOMEM, "history");
    if (set_str(e, "created", b->created, "history", err) < 0 ||
        set_str(e, "created_by", created_by, "history", err) < 0 ||
        (empty && chrun_json_set(e, "empty_layer", json_true(), err) < 0))
        return -1;
    return chrun_json_append(h, json_incref(e), "history", err);
}

static json_t *diff_ids(struct stage *s)
{
    return json_object_get(json_object_get(s->image, "rootfs"), "diff_ids");
}

static int add_layer(struct stage *s, const char *media_type, const struct chrun_digest *digest,
                     int64_t size, const struct chrun_digest *diff_id, struct chrun_err *err)
{
    json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", digest->str,
                          "size", (json_int_t) size);
    json_t *ids = diff_ids(s);
    if (!json_is_array(ids)) {
        json_decref(d);
        return chrun_err_set(err, CHRUN_E_INPUT, "build config: no rootfs.diff_ids");
    }
    if (chrun_json_append(s->layers, d, "manifest layers", err) < 0)
        return -1;
    return append_str(ids, diff_id->str, "rootfs.diff_ids", err);
}

/* ---- the stage's root filesystem ---------------------------------------------- */

static int make_workdir(struct builder *b, struct stage *s, struct chrun_err *err)
{
    int tmpfd = chrun_store_tmp_fd(b->st);
    if (chrun_fs_mkdtemp_at(tmpfd, WORK_PREFIX, s->workname, sizeof(s->workname), err) < 0)
        return -1;
    s->workfd = openat(tmpfd, s->workname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s->workfd < 0 || mkdirat(s->workfd, "rootfs", 0755) < 0)
        return chrun_err_sys(err, errno, "create build directory");
    s->rootfd = openat(s->workfd, "rootfs", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (s->rootfd < 0)
        return chrun_err_sys(err, errno, "open build rootfs");
    if (snprintf(s->bundle, sizeof(s->bundle), "%s/tmp/%s", chrun_store_root_path(b->st),
                 s->workname) >= (int) sizeof(s->bundle))
        return chrun_err_sys(err, ENAMETOOLONG, "build directory");
    return 0;
}

/* Bring the stage's rootfs up to its layer list: the only place layers are
 * unpacked, and only when a step must run or another stage reads it. */
static int materialize(struct builder *b, struct stage *s, struct chrun_err *err)
{
    struct chrun_layer_applier *a;
    size_t n = json_array_size(s->layers);
    int rc = 0;
    if (s->workfd < 0 && make_workdir(b, s, err) < 0)
        return -1;
    if (s->applied == n)
        return 0;
    chrun_log_debug("unpacking %zu layers for a step that must run", n - s->applied);
    a = chrun_layer_applier_new(s->rootfd, err);
    if (a == NULL)
        return -1;
    for (size_t i = s->applied; rc == 0 && i < n; i++) {
        json_t *l = json_array_get(s->layers, i);
        struct chrun_descriptor desc = {.size = json_integer_value(json_object_get(l, "size"))};
        struct chrun_digest diff_id;
        cleanup_close int fd = -1;
        snprintf(desc.media_type, sizeof(desc.media_type), "%s",
                 json_string_value(json_object_get(l, "mediaType")) ?: "");
        rc = chrun_digest_parse(&desc.digest, json_string_value(json_object_get(l, "digest")) ?: "",
                                err);
        if (rc == 0)
            rc = chrun_digest_parse(&diff_id, json_string_value(json_array_get(diff_ids(s), i)) ?: "",
                                    err);
        if (rc == 0 && (fd = chrun_store_open_blob(b->st, &desc.digest, err)) < 0)
            rc = -1;
        if (rc == 0)
            rc = chrun_layer_apply(a, fd, &desc, &diff_id, err);
    }
    if (rc == 0)
        rc = chrun_layer_applier_finish(a, err);
    chrun_layer_applier_free(a);
    if (rc == 0)
        s->applied = n;
    return rc;
}

/* ---- filesystem steps ------------------------------------------------------- */

/* A step's work on the materialized rootfs. PREPARE runs before the "before"
 * snapshot, RUN between the snapshots, CLEANUP (when PREPARE ran) after the
 * layer is written, also on failure. */
struct step_ops {
    int (*prepare)(struct builder *b, struct stage *s, void *data, struct chrun_err *err);
    int (*run)(struct builder *b, struct stage *s, void *data, struct chrun_err *err);
    void (*cleanup)(struct builder *b, struct stage *s, void *data);
};

static int run_and_diff(struct builder *b, struct stage *s, const struct step_ops *ops,
                        void *data, struct chrun_changeset_layer *l, struct chrun_err *err)
{
    struct chrun_snapshot *before = NULL, *after = NULL;
    int rc = ops->prepare ? ops->prepare(b, s, data, err) : 0;
    bool prepared = rc == 0;
    if (rc == 0 && (before = chrun_snapshot_take(s->rootfd, err)) == NULL)
        rc = -1;
    if (rc == 0)
        rc = ops->run(b, s, data, err);
    if (rc == 0 && (after = chrun_snapshot_take(s->rootfd, err)) == NULL)
        rc = -1;
    if (rc == 0)
        rc = chrun_changeset_write_layer(b->st, s->rootfd, before, after, b->epoch, l, err);
    if (prepared && ops->cleanup)
        ops->cleanup(b, s, data);
    chrun_snapshot_free(before);
    chrun_snapshot_free(after);
    return rc;
}

/* One filesystem-changing step: from the cache, or run OPS and diff. */
static int fs_step(struct builder *b, struct stage *s, const char *text, const char *extra,
                   const struct step_ops *ops, void *data, struct chrun_err *err)
{
    struct chrun_digest key = s->chain;
    struct chrun_changeset_layer l;
    bool hit;
    if (chain_next(&key, text, extra, err) < 0)
        return -1;
    hit = !b->opts->no_cache && chrun_build_cache_get(b->st, &key, &l);
    if (hit) {
        chrun_log_info("%s: using cache", text);
    } else {
        chrun_log_debug("%s: running (cache key %s)", text, key.str);
        if (materialize(b, s, err) < 0 || run_and_diff(b, s, ops, data, &l, err) < 0 ||
            chrun_build_cache_put(b->st, &key, &l, err) < 0)
            return -1;
    }
    if (!l.empty && add_layer(s, CHRUN_MT_OCI_LAYER_GZIP, &l.digest, l.size, &l.diff_id, err) < 0)
        return -1;
    if (add_history(b, s, text, l.empty, err) < 0)
        return -1;
    if (!hit && !l.empty)
        s->applied++; /* the rootfs already holds what the layer says */
    s->chain = key;
    return chain_next(&s->chain, "layer", l.empty ? "empty" : l.diff_id.str, err);
}

/* A metadata-only step: history (TEXT) and the cache chain (TEXT, EXTRA). */
static int meta_step(struct builder *b, struct stage *s, const char *text, const char *extra,
                     struct chrun_err *err)
{
    if (add_history(b, s, text, true, err) < 0)
        return -1;
    return chain_next(&s->chain, text, extra, err);
}

/* A new scratch file or directory name under the builder's tmp directory. */
static void scratch_name(struct builder *b, const char *what, char *buf, size_t size)
{
    snprintf(buf, size, "%s-%u", what, b->tmp_seq++);
}

/* ---- stages ---------------------------------------------------------------------- */

static int build_stage(struct builder *b, struct stage *s, struct chrun_err *err);

static bool all_digits(const char *s)
{
    return *s != '\0' && strspn(s, "0123456789") == strlen(s);
}

/* The stage a --from=VALUE of stage S names: a stage name (any case), an
 * index, or else an image reference from the store (an implicit stage). The
 * stage is built (through the cache) before it is returned. */
static int resolve_from(struct builder *b, struct stage *s, const char *flag, const char *value,
                        struct stage **ret, struct chrun_err *err)
{
    cleanup_free char *v = word1(b, value, err);
    struct stage *found = NULL, *p, **pp;
    if (v == NULL)
        return -1;
    if (*v == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "%s names no stage or image", flag);
    if (all_digits(v)) {
        unsigned long i = strtoul(v, NULL, 10);
        if (strlen(v) > 6 || i >= b->n_df_stages)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "%s=%s: no stage %s (the Dockerfile has %zu, from 0)", flag, v, v,
                                 b->n_df_stages);
        found = b->stages[i];
    }
    for (size_t i = 0; found == NULL && i < b->n_stages; i++)
        if ((b->stages[i]->name && strcasecmp(b->stages[i]->name, v) == 0) ||
            (b->stages[i]->image_ref && streq(b->stages[i]->image_ref, v)))
            found = b->stages[i];
    if (found == s)
        return chrun_err_set(err, CHRUN_E_INPUT, "%s=%s refers to its own stage", flag, v);
    if (found == NULL) {
        struct chrun_store_image img;
        struct chrun_err probe = CHRUN_ERR_INIT;
        if (chrun_store_resolve(b->st, v, &img, &probe) < 0)
            return chrun_err_set(err, CHRUN_E_NOTFOUND,
                                 "%s=%s: no stage named '%s' and no such image in the store", flag,
                                 v, v);
        p = calloc(1, sizeof(*p));
        pp = p ? realloc(b->stages, (b->n_stages + 1) * sizeof(*pp)) : NULL;
        if (pp == NULL) {
            free(p);
            return chrun_err_sys(err, ENOMEM, "build");
        }
        b->stages = pp;
        *p = (struct stage){.index = b->n_stages, .workfd = -1, .rootfd = -1,
                            .image_ref = take_ptr(v)};
        b->stages[b->n_stages++] = p;
        found = p;
    }
    if (found->state == STAGE_BUILDING)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "%s=%s: stage %zu depends on itself (a cycle of --from and FROM)",
                             flag, v, found->index);
    if (build_stage(b, found, err) < 0) {
        b->located = found->image_ref == NULL;
        return -1;
    }
    *ret = found;
    return 0;
}

/* ---- RUN -------------------------------------------------------------------- */

/* Join PATH to the working directory unless it is absolute. */
static char *abs_path(struct stage *s, const char *path)
{
    const char *wd = json_string_value(cfg_get(s, "WorkingDir"));
    char *out = NULL;
    if (path[0] == '/')
        return strdup(path);
    if (wd == NULL || *wd == '\0')
        wd = "/";
    if (asprintf(&out, "%s%s%s", wd, wd[strlen(wd) - 1] == '/' ? "" : "/", path) < 0)
        return NULL;
    return out;
}

/* Paths a step created in the rootfs for its mounts: removed after it, when
 * still what was made (an empty directory, an empty file of the same inode),
 * so they never reach a layer. */
struct created {
    char *paths[MOUNT_PATHS_MAX];
    struct stat st[MOUNT_PATHS_MAX];
    size_t n;
};

/* Create PATH (absolute in the container) and its missing parents, as
 * directories or, with FILE, the last one as an empty file; resolved in the
 * root, so an image symlink never leads to the host. */
static int create_in_root(int rootfd, const char *path, bool file, struct created *c,
                          struct chrun_err *err)
{
    char prefix[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof(prefix))
        return chrun_err_set(err, CHRUN_E_INPUT, "path too long: '%s'", path);
    for (size_t i = 1; i <= len; i++) {
        struct chrun_err probe = CHRUN_ERR_INIT;
        cleanup_close int fd = -1, parent = -1;
        const char *base;
        bool last;
        if ((path[i] != '/' && path[i] != '\0') || path[i - 1] == '/')
            continue;
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        last = path[i] == '\0' || path[i + strspn(path + i, "/")] == '\0';
        fd = chrun_fs_open_in_root(rootfd, prefix, O_PATH, 0, &probe);
        if (fd >= 0)
            continue;
        if (probe.errnum != ENOENT)
            return chrun_err_sys(err, probe.errnum, "mount point '%s'", prefix);
        if (c->n == MOUNT_PATHS_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT, "more than %d mount point directories",
                                 MOUNT_PATHS_MAX);
        parent = chrun_fs_open_parent_in_root(rootfd, prefix, &base, err);
        if (parent < 0)
            return -1;
        if (last && file)
            fd = openat(parent, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        else if (mkdirat(parent, base, 0755) == 0)
            fd = openat(parent, base, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &c->st[c->n]) < 0)
            return chrun_err_sys(err, errno, "create mount point '%s'", prefix);
        if ((c->paths[c->n] = strdup(prefix)) == NULL)
            return chrun_err_sys(err, ENOMEM, "build");
        c->n++;
        if (last)
            break;
    }
    return 0;
}

static void remove_created(int rootfd, struct created *c)
{
    while (c->n > 0) {
        struct chrun_err ignored = CHRUN_ERR_INIT;
        char *p = c->paths[--c->n];
        const struct stat *made = &c->st[c->n];
        const char *base;
        struct stat st;
        int parent = chrun_fs_open_parent_in_root(rootfd, p, &base, &ignored);
        if (parent >= 0 && fstatat(parent, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            st.st_dev == made->st_dev && st.st_ino == made->st_ino) {
            if (S_ISDIR(st.st_mode))
                unlinkat(parent, base, AT_REMOVEDIR); /* fails when not empty: kept */
            else if (S_ISREG(st.st_mode) && st.st_size == 0)
                unlinkat(parent, base, 0);
        }
        if (parent >= 0)
            close(parent);
        free(p);
    }
}

enum mount_type { MOUNT_BIND, MOUNT_CACHE, MOUNT_TMPFS, MOUNT_SECRET };
enum mount_sharing { SHARING_SHARED, SHARING_PRIVATE, SHARING_LOCKED };

struct run_mount {
    enum mount_type type;
    char *target;          /* absolute in the container */
    char *source;          /* bind: path in the source; secret: unused */
    char *from;            /* bind: --from value as written, or NULL (the context) */
    char *id;              /* cache and secret */
    bool rw, required;
    enum mount_sharing sharing;
    long uid, gid;         /* -1: not given */
    long mode;             /* -1: not given */
    /* set up by the step */
    struct stage *from_stage;
    bool skip;             /* a secret that was not given and not required */
    bool is_file;
    char host[PATH_MAX];
    char scratch[32];      /* a secret's copy or a scratch directory in the stage's
                            * work directory, removed after the step; or "" */
    int lockfd;
};

static void mount_release(struct run_mount *m)
{
    free(m->target);
    free(m->source);
    free(m->from);
    free(m->id);
    if (m->lockfd >= 0)
        close(m->lockfd);
}

static int mount_bool(const char *key, const char *v, bool *ret, struct chrun_err *err)
{
    if (v == NULL || streq(v, "true") || streq(v, "1"))
        *ret = true;
    else if (streq(v, "false") || streq(v, "0"))
        *ret = false;
    else
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount: %s=%s is not true or false", key,
                             v);
    return 0;
}

static int mount_number(const char *key, const char *v, int base, long *ret,
                        struct chrun_err *err)
{
    char *end;
    errno = 0;
    *ret = v ? strtol(v, &end, base) : -1;
    if (v == NULL || *v == '\0' || *end != '\0' || errno != 0 || *ret < 0 || *ret > 0x7fffffff)
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount: %s=%s is not a number", key,
                             v ? v : "");
    return 0;
}

static int mount_option(struct run_mount *m, char *key, char *v, struct chrun_err *err)
{
    char **slot = NULL;
    if (streq(key, "type")) {
        if (v && streq(v, "bind"))
            m->type = MOUNT_BIND;
        else if (v && streq(v, "cache"))
            m->type = MOUNT_CACHE;
        else if (v && streq(v, "tmpfs"))
            m->type = MOUNT_TMPFS;
        else if (v && streq(v, "secret"))
            m->type = MOUNT_SECRET;
        else if (v && streq(v, "ssh"))
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "RUN --mount=type=ssh is not supported (chrun-build forwards no "
                                 "SSH agent)");
        else
            return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount: unknown type '%s'",
                                 v ? v : "");
        return 0;
    }
    if (streq(key, "target") || streq(key, "dst") || streq(key, "destination"))
        slot = &m->target;
    else if (streq(key, "source") || streq(key, "src"))
        slot = &m->source;
    else if (streq(key, "from"))
        slot = &m->from;
    else if (streq(key, "id"))
        slot = &m->id;
    else if (streq(key, "ro") || streq(key, "readonly")) {
        bool ro;
        if (mount_bool(key, v, &ro, err) < 0)
            return -1;
        m->rw = !ro;
        return 0;
    } else if (streq(key, "rw") || streq(key, "readwrite"))
        return mount_bool(key, v, &m->rw, err);
    else if (streq(key, "required"))
        return mount_bool(key, v, &m->required, err);
    else if (streq(key, "uid"))
        return mount_number(key, v, 10, &m->uid, err);
    else if (streq(key, "gid"))
        return mount_number(key, v, 10, &m->gid, err);
    else if (streq(key, "mode"))
        return mount_number(key, v, 8, &m->mode, err);
    else if (streq(key, "size"))
        return 0; /* tmpfs size: the scratch directory has no limit of its own */
    else if (streq(key, "sharing")) {
        if (v && streq(v, "shared"))
            m->sharing = SHARING_SHARED;
        else if (v && streq(v, "private"))
            m->sharing = SHARING_PRIVATE;
        else if (v && streq(v, "locked"))
            m->sharing = SHARING_LOCKED;
        else
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "RUN --mount: sharing=%s is not shared, private or locked",
                                 v ? v : "");
        return 0;
    } else
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "RUN --mount: option '%s' is not supported",
                             key);
    if (v == NULL || *v == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount: %s needs a value", key);
    free(*slot);
    *slot = strdup(v);
    return *slot ? 0 : chrun_err_sys(err, ENOMEM, "build");
}

/* Normalize the absolute mount target PATH in place ("//" and "." go,
 * "/src/." is "/src"). Returns -1 for "/", a ".." component, or a place the
 * runtime mounts itself (/proc, /dev, /sys). */
static int clean_target(char *path)
{
    char *out = path + 1, *p = path;
    while (*p) {
        size_t len;
        while (*p == '/')
            p++;
        len = strcspn(p, "/");
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return -1;
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (out > path + 1)
                *out++ = '/';
            memmove(out, p, len);
            out += len;
        }
        p += len;
    }
    *out = '\0';
    if (path[1] == '\0')
        return -1;
    for (const char *const *r = (const char *const[]){"proc", "dev", "sys", NULL}; *r; r++) {
        size_t len = strlen(*r);
        if (strncmp(path + 1, *r, len) == 0 && (path[len + 1] == '\0' || path[len + 1] == '/'))
            return -1;
    }
    return 0;
}

/* Parse one --mount=SPEC (substituted) of stage S into M. */
static int parse_mount(struct builder *b, struct stage *s, const char *spec, struct run_mount *m,
                       struct chrun_err *err)
{
    cleanup_free char *text = word1(b, spec, err);
    char *save = NULL;
    *m = (struct run_mount){.uid = -1, .gid = -1, .mode = -1, .lockfd = -1};
    if (text == NULL)
        return -1;
    for (char *kv = strtok_r(text, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (eq != NULL)
            *eq++ = '\0';
        if (mount_option(m, kv, eq, err) < 0)
            return -1;
    }
    if (m->type == MOUNT_SECRET && m->id == NULL && m->target == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount=type=secret needs id= or target=");
    if (m->type == MOUNT_SECRET && m->id == NULL) {
        const char *slash = strrchr(m->target, '/');
        m->id = strdup(slash ? slash + 1 : m->target);
    }
    if (m->type == MOUNT_SECRET && m->target == NULL && m->id != NULL &&
        asprintf(&m->target, "/run/secrets/%s", m->id) < 0)
        m->target = NULL;
    if (m->target == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount needs target=");
    if (m->type == MOUNT_CACHE && m->from != NULL)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "RUN --mount=type=cache,from= is not supported");
    if (m->type == MOUNT_CACHE && m->id == NULL && (m->id = strdup(m->target)) == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    {
        char *abs = abs_path(s, m->target);
        if (abs == NULL)
            return chrun_err_sys(err, ENOMEM, "build");
        free(m->target);
        m->target = abs;
    }
    if (clean_target(m->target) < 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --mount: target '%s' is not allowed",
                             m->target);
    return 0;
}

/* The canonical host path of FD (O_PATH): what the runtime bind-mounts. */
static int fd_host_path(int fd, char *buf, size_t size, struct chrun_err *err)
{
    char proc[64];
    ssize_t n;
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    n = readlink(proc, buf, size - 1);
    if (n < 0 || (size_t) n >= size - 1)
        return chrun_err_sys(err, n < 0 ? errno : ENAMETOOLONG, "resolve a mount source");
    buf[n] = '\0';
    return 0;
}

static const struct secret *find_secret(struct builder *b, const char *id)
{
    for (size_t i = 0; i < b->opts->n_secrets; i++)
        if (streq(b->secrets[i].id, id))
            return &b->secrets[i];
    return NULL;
}

/* A fresh directory NAME (sizeof 32) under the stage's work directory; its
 * host path in HOST. */
static int stage_scratch_dir(struct stage *s, char *name, char *host, size_t size,
                             struct chrun_err *err)
{
    snprintf(name, 32, "mnt-%u", s->scratch_seq++);
    if (mkdirat(s->workfd, name, 0755) < 0 || fchmodat(s->workfd, name, 0755, 0) < 0)
        return chrun_err_sys(err, errno, "create mount directory");
    if (snprintf(host, size, "%s/%s", s->bundle, name) >= (int) size)
        return chrun_err_sys(err, ENAMETOOLONG, "mount directory");
    return 0;
}

/* The secret's bytes, copied to a private file (mode, owner) for the step. */
static int prepare_secret(struct builder *b, struct stage *s, struct run_mount *m,
                          struct chrun_err *err)
{
    const struct secret *sec = find_secret(b, m->id);
    cleanup_close int in = -1, out = -1;
    cleanup_free char *buf = NULL;
    char *name = m->scratch;
    ssize_t n;
    if (sec == NULL) {
        if (m->required)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "RUN --mount=type=secret: secret '%s' was not given (--secret "
                                 "id=%s,src=FILE)",
                                 m->id, m->id);
        m->skip = true;
        return 0;
    }
    snprintf(name, sizeof(m->scratch), "secret-%u", s->scratch_seq++);
    if (sec->path != NULL) {
        in = open(sec->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0)
            return chrun_err_sys(err, errno, "secret '%s': open '%s'", m->id, sec->path);
    }
    out = openat(s->workfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    buf = malloc(CHRUN_IO_BUFSZ);
    if (out < 0 || buf == NULL)
        return chrun_err_sys(err, out < 0 ? errno : ENOMEM, "secret '%s'", m->id);
    if (in < 0) {
        const char *v = getenv(sec->env);
        if (v == NULL)
            return chrun_err_set(err, CHRUN_E_INPUT, "secret '%s': environment variable '%s' "
                                 "is not set", m->id, sec->env);
        if (chrun_io_write_full(out, v, strlen(v), err) < 0)
            return chrun_err_prefix(err, "secret '%s'", m->id);
        n = 0;
    }
    while (in >= 0 && (n = chrun_io_read_full(in, buf, CHRUN_IO_BUFSZ, err)) > 0)
        if (chrun_io_write_full(out, buf, (size_t) n, err) < 0)
            return chrun_err_prefix(err, "secret '%s'", m->id);
    if (n < 0)
        return chrun_err_prefix(err, "secret '%s'", m->id);
    if ((geteuid() == 0 && fchown(out, m->uid < 0 ? 0 : (uid_t) m->uid,
                                  m->gid < 0 ? 0 : (gid_t) m->gid) < 0) ||
        fchmod(out, m->mode < 0 ? 0400 : (mode_t) m->mode & 07777) < 0)
        return chrun_err_sys(err, errno, "secret '%s'", m->id);
    m->is_file = true;
    if (snprintf(m->host, sizeof(m->host), "%s/%s", s->bundle, name) >= (int) sizeof(m->host))
        return chrun_err_sys(err, ENAMETOOLONG, "secret '%s'", m->id);
    return 0;
}

/* The persistent cache directory of ID: created with uid/gid/mode. */
static int prepare_cache(struct builder *b, struct stage *s, struct run_mount *m,
                         struct chrun_err *err)
{
    struct chrun_digest d;
    cleanup_close int dfd = -1;
    int root = chrun_store_root_fd(b->st);
    const char *hex;
    if (chrun_digest_of_buffer(&d, m->id, strlen(m->id), err) < 0)
        return -1;
    hex = chrun_digest_hex(&d);
    if (mkdirat(root, CHRUN_BUILD_CACHE_MOUNTS_DIR, 0700) < 0 && errno != EEXIST)
        return chrun_err_sys(err, errno, "create '%s'", CHRUN_BUILD_CACHE_MOUNTS_DIR);
    dfd = openat(root, CHRUN_BUILD_CACHE_MOUNTS_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return chrun_err_sys(err, errno, "open '%s'", CHRUN_BUILD_CACHE_MOUNTS_DIR);
    if (mkdirat(dfd, hex, 0755) == 0) {
        if ((geteuid() == 0 && fchownat(dfd, hex, m->uid < 0 ? 0 : (uid_t) m->uid,
                                        m->gid < 0 ? 0 : (gid_t) m->gid, AT_SYMLINK_NOFOLLOW) < 0) ||
            fchmodat(dfd, hex, m->mode < 0 ? 0755 : (mode_t) m->mode & 07777, 0) < 0)
            return chrun_err_sys(err, errno, "cache mount '%s'", m->id);
    } else if (errno != EEXIST) {
        return chrun_err_sys(err, errno, "cache mount '%s'", m->id);
    }
    m->lockfd = openat(dfd, hex, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (m->lockfd < 0)
        return chrun_err_sys(err, errno, "cache mount '%s'", m->id);
    if (m->sharing == SHARING_LOCKED && flock(m->lockfd, LOCK_EX) < 0)
        return chrun_err_sys(err, errno, "lock cache mount '%s'", m->id);
    if (m->sharing == SHARING_PRIVATE && flock(m->lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK)
            return chrun_err_sys(err, errno, "lock cache mount '%s'", m->id);
        /* in use elsewhere: this step gets a fresh one of its own */
        return stage_scratch_dir(s, m->scratch, m->host, sizeof(m->host), err);
    }
    if (snprintf(m->host, sizeof(m->host), "%s/%s/%s", chrun_store_root_path(b->st),
                 CHRUN_BUILD_CACHE_MOUNTS_DIR, hex) >= (int) sizeof(m->host))
        return chrun_err_sys(err, ENAMETOOLONG, "cache mount '%s'", m->id);
    return 0;
}

/* A bind mount of SOURCE from the context or a stage; rw gets a copy, so
 * writes never reach the source, and so does the context when a
 * .dockerignore leaves something out (the copy holds only what is kept). */
static int prepare_bind(struct builder *b, struct stage *s, struct run_mount *m,
                        struct chrun_err *err)
{
    struct stage *src = m->from_stage;
    const char *source = m->source ? m->source : ".";
    cleanup_close int fd = -1;
    struct stat st;
    int rootfd = b->ctxfd;
    if (src != NULL) {
        if (materialize(b, src, err) < 0)
            return -1;
        rootfd = src->rootfd;
    }
    /* in the root of the context too: a symlink never leaves it */
    fd = chrun_fs_open_in_root(rootfd, source, O_PATH, 0, err);
    if (fd < 0 || fstat(fd, &st) < 0)
        return chrun_err_prefix(err, "RUN --mount source '%s'", source);
    m->is_file = !S_ISDIR(st.st_mode);
    /* the context as .dockerignore leaves it: what COPY could see, no more */
    if (!m->rw && (src != NULL || context_filter(b) == NULL))
        return fd_host_path(fd, m->host, sizeof(m->host), err);
    {
        struct chrun_copy c = {.ctxfd = rootfd, .src_in_root = src != NULL, .dest = "/",
                               .tmpfd = -1, .filter = src != NULL ? NULL : context_filter(b)};
        char *srcs[] = {(char *) source, NULL};
        cleanup_close int dfd = -1;
        const char *slash = strrchr(source, '/');
        if (stage_scratch_dir(s, m->scratch, m->host, sizeof(m->host), err) < 0)
            return -1;
        dfd = openat(s->workfd, m->scratch, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        c.rootfd = dfd;
        if (dfd < 0 || chrun_copy_run(&c, srcs, 1, err) < 0)
            return chrun_err_prefix(err, "RUN --mount source '%s'", source);
        if (m->is_file && strlen(m->host) + strlen(slash ? slash : source) + 2 < sizeof(m->host))
            snprintf(m->host + strlen(m->host), sizeof(m->host) - strlen(m->host), "/%s",
                     slash ? slash + 1 : source);
    }
    return 0;
}

struct run_step {
    char **argv;
    char **env; /* ARG values not shadowed by ENV, "K=V", NULL-terminated */
    size_t n_env;
    struct run_mount mounts[RUN_MOUNTS_MAX];
    size_t n_mounts;
    struct chrun_volume volumes[RUN_MOUNTS_MAX];
    size_t n_volumes;
    bool no_network;
    const char *script;    /* "RUN <<EOF" with a #! line: run as a file, or NULL */
    char script_name[32];  /* its copy in the stage's work directory */
    char script_host[PATH_MAX];
    char script_target[PATH_MAX];
    struct created made;
};

/* Mount points the runtime creates when missing: made before the snapshot
 * and removed after the step when still empty. Files go in etc/ only when
 * the image has one (resolved in the root: an image's "etc -> /host/dir"
 * never makes the builder touch the host). */
static const char *const run_dirs[] = {"/proc", "/dev", "/sys"};
static const char *const run_files[] = {"/etc/resolv.conf", "/etc/hosts"};

static int run_prepare(struct builder *b, struct stage *s, void *data, struct chrun_err *err)
{
    struct run_step *rs = data;
    struct chrun_err ignored = CHRUN_ERR_INIT;
    cleanup_close int etc = chrun_fs_open_in_root(s->rootfd, "etc", O_PATH | O_DIRECTORY, 0,
                                                  &ignored);
    for (size_t i = 0; i < ARRAY_SIZE(run_dirs); i++)
        if (create_in_root(s->rootfd, run_dirs[i], false, &rs->made, err) < 0)
            return -1;
    for (size_t i = 0; etc >= 0 && i < ARRAY_SIZE(run_files); i++)
        if (create_in_root(s->rootfd, run_files[i], true, &rs->made, err) < 0)
            return -1;
    if (rs->script != NULL) {
        /* as BuildKit: the file is bind-mounted at /dev/pipes/NAME (inside the
         * runtime's /dev tmpfs, never in the rootfs) and executed */
        cleanup_close int fd = -1;
        snprintf(rs->script_name, sizeof(rs->script_name), "script-%u", s->scratch_seq++);
        fd = openat(s->workfd, rs->script_name,
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
        if (fd < 0)
            return chrun_err_sys(err, errno, "RUN heredoc script");
        if (chrun_io_write_full(fd, rs->script, strlen(rs->script), err) < 0)
            return chrun_err_prefix(err, "RUN heredoc script");
        if (fchmod(fd, 0755) < 0)
            return chrun_err_sys(err, errno, "RUN heredoc script");
        if (snprintf(rs->script_host, sizeof(rs->script_host), "%s/%s", s->bundle,
                     rs->script_name) >= (int) sizeof(rs->script_host))
            return chrun_err_sys(err, ENAMETOOLONG, "RUN heredoc script");
        rs->volumes[rs->n_volumes++] = (struct chrun_volume){
            .host = rs->script_host, .ctr = rs->script_target, .ro = true};
    }
    for (size_t i = 0; i < rs->n_mounts; i++) {
        struct run_mount *m = &rs->mounts[i];
        int rc = m->type == MOUNT_SECRET  ? prepare_secret(b, s, m, err)
                 : m->type == MOUNT_CACHE ? prepare_cache(b, s, m, err)
                 : m->type == MOUNT_TMPFS
                     ? stage_scratch_dir(s, m->scratch, m->host, sizeof(m->host), err)
                                          : prepare_bind(b, s, m, err);
        if (rc < 0)
            return -1;
        if (m->skip)
            continue;
        if (create_in_root(s->rootfd, m->target, m->is_file, &rs->made, err) < 0)
            return chrun_err_prefix(err, "RUN --mount target '%s'", m->target);
        rs->volumes[rs->n_volumes++] = (struct chrun_volume){
            .host = m->host, .ctr = m->target,
            .ro = m->type == MOUNT_SECRET || (m->type == MOUNT_BIND && !m->rw)};
    }
    return 0;
}

static void run_cleanup(struct builder *b, struct stage *s, void *data)
{
    struct run_step *rs = data;
    (void) b;
    remove_created(s->rootfd, &rs->made);
    if (rs->script_name[0] != '\0')
        unlinkat(s->workfd, rs->script_name, 0);
    rs->script_name[0] = '\0';
    /* a secret's copy does not wait for the end of the build */
    for (size_t i = 0; i < rs->n_mounts; i++) {
        struct chrun_err ignored = CHRUN_ERR_INIT;
        if (rs->mounts[i].scratch[0] != '\0')
            chrun_fs_rm_rf_at(s->workfd, rs->mounts[i].scratch, &ignored);
        rs->mounts[i].scratch[0] = '\0';
    }
}

/* Run through the runtime with stdout on our stderr (stdout carries only the
 * digest) and stdin from /dev/null, as a build step has no terminal. */
static int run_exec(struct stage *s, struct run_step *rs, int *ret_status, struct chrun_err *err)
{
    struct chrun_exec_opts eo = CHRUN_EXEC_OPTS_INIT;
    cleanup_close int saved_out = -1, saved_in = -1, null = -1;
    int rc;
    eo.env = (const char *const *) rs->env;
    eo.n_env = rs->n_env;
    eo.volumes = rs->volumes;
    eo.n_volumes = rs->n_volumes;
    eo.flags |= CHRUN_EXEC_SINGLE_ID;
    /* a Dockerfile runs as root: its own pid namespace (no /proc/PID/root of
     * host processes) and pivot_root (no chroot to climb out of) */
    eo.ns |= CHRUN_EXEC_NS_PID | CHRUN_EXEC_NS_IPC | CHRUN_EXEC_NS_UTS;
    if (rs->no_network)
        eo.ns |= CHRUN_EXEC_NS_NET;
    eo.flags |= CHRUN_EXEC_DEFAULT_CAPS;
    if (chrun_bundle_write_config(s->workfd, s->image, err) < 0)
        return -1;
    fflush(stdout);
    saved_out = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    saved_in = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
    null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (saved_out < 0 || saved_in < 0 || null < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0 ||
        dup2(null, STDIN_FILENO) < 0)
        rc = chrun_err_sys(err, errno, "redirect the output of RUN");
    else
        rc = chrun_runtime_exec(s->bundle, &eo, rs->argv, ret_status, err);
    if (saved_out >= 0)
        dup2(saved_out, STDOUT_FILENO);
    if (saved_in >= 0)
        dup2(saved_in, STDIN_FILENO);
    return rc;
}

static int run_fn(struct builder *b, struct stage *s, void *data, struct chrun_err *err)
{
    struct run_step *rs = data;
    int status = 0, rc;
    (void) b;
    rc = run_exec(s, rs, &status, err);
    if (rc == 0 && status != 0)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "RUN returned exit status %d", status);
    return rc;
}

static int build_run_env(struct stage *s, struct run_step *rs, struct chrun_err *err)
{
    rs->env = calloc(s->args.n + 1, sizeof(char *));
    if (rs->env == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; i < s->args.n; i++) {
        const struct var *v = &s->args.v[i];
        if (v->value == NULL || env_value(s, v->name) != NULL)
            continue;
        if (asprintf(&rs->env[rs->n_env], "%s=%s", v->name, v->value) < 0)
            return chrun_err_sys(err, ENOMEM, "build");
        rs->n_env++;
    }
    return 0;
}

/* The shell of shell-form commands: SHELL's, else /bin/sh -c. */
static int shell_argv(struct stage *s, const char *script, char ***ret, struct chrun_err *err)
{
    json_t *sh = cfg_get(s, "Shell"), *v;
    size_t n = json_is_array(sh) && json_array_size(sh) > 0 ? json_array_size(sh) : 2, i;
    char **argv = calloc(n + 2, sizeof(char *));
    if (argv == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    if (json_is_array(sh) && json_array_size(sh) > 0) {
        json_array_foreach (sh, i, v)
            argv[i] = strdup(json_string_value(v) ?: "");
    } else {
        argv[0] = strdup("/bin/sh");
        argv[1] = strdup("-c");
    }
    argv[n] = strdup(script);
    for (i = 0; i <= n; i++)
        if (argv[i] == NULL) {
            chrun_dockerfile_words_free(argv);
            return chrun_err_sys(err, ENOMEM, "build");
        }
    *ret = argv;
    return 0;
}

static int run_setup_mounts(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                            struct run_step *rs, char **extra, struct chrun_err *err)
{
    const char *net = chrun_df_instr_flag(in, "network");
    if (net == NULL)
        net = b->opts->network ? b->opts->network : "default";
    if (streq(net, "none"))
        rs->no_network = true;
    else if (!streq(net, "default") && !streq(net, "host"))
        return chrun_err_set(err, CHRUN_E_INPUT, "RUN --network=%s: want none, default or host",
                             net);
    for (size_t i = 0; i < in->n_flags; i++) {
        struct run_mount *m = &rs->mounts[rs->n_mounts];
        if (!streq(in->flags[i].name, "mount"))
            continue;
        if (rs->n_mounts == RUN_MOUNTS_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT, "more than %d RUN --mount's",
                                 RUN_MOUNTS_MAX);
        rs->n_mounts++;
        if (parse_mount(b, s, in->flags[i].value, m, err) < 0)
            return -1;
        if (m->type == MOUNT_BIND && m->from != NULL &&
            resolve_from(b, s, "RUN --mount from", m->from, &m->from_stage, err) < 0)
            return -1;
        /* what a bind mount shows is part of the step's input */
        if (m->type == MOUNT_BIND) {
            struct chrun_digest d;
            char *src = m->source ? m->source : ".", *more = NULL;
            if (m->from_stage != NULL)
                d = m->from_stage->chain;
            else if (chrun_copy_hash(b->ctxfd, &src, 1, context_filter(b), &d, err) < 0)
                return chrun_err_prefix(err, "RUN --mount");
            if (asprintf(&more, "%s\nmount %s", *extra, d.str) < 0)
                return chrun_err_sys(err, ENOMEM, "build");
            free(*extra);
            *extra = more;
        }
    }
    return 0;
}

/* The instruction as the history and the cache key show it: keyword, flags
 * as written, arguments. */
static char *instr_text(const struct chrun_df_instr *in, const char *args)
{
    char *text = strdup(in->keyword);
    for (size_t i = 0; text && i < in->n_flags; i++) {
        char *more = NULL;
        if (asprintf(&more, "%s --%s%s%s", text, in->flags[i].name, in->flags[i].value ? "=" : "",
                     in->flags[i].value ? in->flags[i].value : "") < 0)
            more = NULL;
        free(text);
        text = more;
    }
    if (text != NULL) {
        char *more = NULL;
        if (asprintf(&more, "%s %s", text, args) < 0)
            more = NULL;
        free(text);
        text = more;
    }
    return text;
}

static int do_run(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                  struct chrun_err *err)
{
    static const struct step_ops ops = {run_prepare, run_fn, run_cleanup};
    struct run_step *rs = calloc(1, sizeof(*rs));
    cleanup_free char *text = NULL, *argv_json = NULL, *extra = NULL;
    cleanup_json json_t *arr = json_array();
    int rc = rs && arr ? 0 : chrun_err_sys(err, ENOMEM, "build");
    if (rc == 0 && in->exec != NULL) {
        rs->argv = calloc(in->n_exec + 1, sizeof(char *));
        for (size_t i = 0; rs->argv && i < in->n_exec; i++)
            rs->argv[i] = strdup(in->exec[i]);
        if (rs->argv == NULL)
            rc = chrun_err_sys(err, ENOMEM, "build");
    } else if (rc == 0 && in->n_heredocs == 1 && in->script != NULL &&
               str_has_prefix(in->script, "#!") && streq(in->script, in->heredocs[0].body)) {
        rs->script = in->script;
        snprintf(rs->script_target, sizeof(rs->script_target), "/dev/pipes/%s",
                 in->heredocs[0].name);
        rs->argv = calloc(2, sizeof(char *));
        if (rs->argv == NULL || (rs->argv[0] = strdup(rs->script_target)) == NULL)
            rc = chrun_err_sys(err, ENOMEM, "build");
    } else if (rc == 0) {
        rc = shell_argv(s, in->script ? in->script : in->args, &rs->argv, err);
    }
    for (char **a = rc == 0 ? rs->argv : NULL; rc == 0 && a && *a; a++)
        rc = append_str(arr, *a, "RUN", err);
    if (rc == 0 && (argv_json = json_dumps(arr, JSON_COMPACT)) == NULL)
        rc = chrun_err_sys(err, ENOMEM, "build");
    if (rc == 0)
        rc = build_run_env(s, rs, err);
    if (rc == 0 && ((text = instr_text(in, in->exec ? argv_json : in->args)) == NULL ||
                    asprintf(&extra, "%s\n%s", argv_json, rs->script ? rs->script : "") < 0))
        rc = chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; rc == 0 && i < rs->n_env; i++) {
        char *more = NULL;
        if (asprintf(&more, "%s\n%s", extra, rs->env[i]) < 0)
            rc = chrun_err_sys(err, ENOMEM, "build");
        free(extra);
        extra = more;
    }
    if (rc == 0)
        rc = run_setup_mounts(b, s, in, rs, &extra, err);
    if (rc == 0)
        rc = fs_step(b, s, text, extra, &ops, rs, err);
    if (rs != NULL) {
        for (size_t i = 0; i < rs->n_mounts; i++)
            mount_release(&rs->mounts[i]);
        remove_created(s->rootfd, &rs->made);
        chrun_dockerfile_words_free(rs->env);
        chrun_dockerfile_words_free(rs->argv);
        free(rs);
    }
    return rc;
}

/* ---- COPY, ADD, WORKDIR ------------------------------------------------------ */


static bool is_url(const char *s)
{
    return strstr(s, "://") != NULL || str_has_prefix(s, "git@");
}

struct copy_step {
    struct chrun_copy c;
    char **srcs;
    size_t n;
    const char *chown;    /* --chown after substitution, or NULL */
    struct stage *from;   /* COPY --from's stage, or NULL */
};

/* --chown=user[:group]: numbers, or names from the rootfs' account files. */
static int resolve_chown(struct stage *s, const char *spec, struct chrun_copy *c,
                         struct chrun_err *err)
{
    cleanup_free char *passwd = NULL, *group = NULL;
    struct chrun_user_spec us;
    struct chrun_exec_user u, g;
    struct chrun_user_spec gs = {{0}, ""};
    if (chrun_user_spec_parse(&us, spec, err) < 0)
        return -1;
    /* a FIFO or device an image put there is refused, never opened */
    if (chrun_fs_read_regular_in_root(s->rootfd, "/etc/passwd", CHRUN_RUNTIME_ETC_MAX, &passwd,
                                      err) < 0 ||
        chrun_fs_read_regular_in_root(s->rootfd, "/etc/group", CHRUN_RUNTIME_ETC_MAX, &group,
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

static int copy_fn(struct builder *b, struct stage *s, void *data, struct chrun_err *err)
{
    struct copy_step *cs = data;
    cs->c.rootfd = s->rootfd;
    if (cs->from != NULL) {
        if (materialize(b, cs->from, err) < 0)
            return -1;
        cs->c.ctxfd = cs->from->rootfd;
        cs->c.src_in_root = true;
    }
    if (cs->chown != NULL && resolve_chown(s, cs->chown, &cs->c, err) < 0)
        return -1;
    return chrun_copy_run(&cs->c, cs->srcs, cs->n, err);
}

/* ADD of remote URLs. Each source is fetched by chrun_fetch_url (chrun-pull's
 * proxy, CA and timeout rules; https never drops to http; redirects only to
 * http(s); --checksum verified; a size cap) into the builder's scratch
 * directory and copied like a local file, never extracted, as Docker does.
 * The file keeps the name BuildKit gives it when DEST is a directory, mode
 * 0600 unless --chmod, and the reply's Last-Modified as mtime. The cache key
 * is the checksum when one is given, so a cached step downloads nothing;
 * else the digest of what was downloaded. */
struct url_step {
    struct copy_step cs;
    char *const *urls;
    const char *checksum; /* --checksum, or NULL */
    int dirfd;            /* the downloads' scratch directory */
    bool fetched;
};

/* Download every URL of U into U->dirfd as "<i>/<file name>" and point the
 * copy's sources there. With RET_KEY, append each download's digest, name
 * and mtime to *RET_KEY (the cache input). */
static int fetch_urls(struct url_step *u, char **ret_key, struct chrun_err *err)
{
    for (size_t i = 0; i < u->cs.n; i++) {
        struct chrun_fetch_result r;
        char sub[32], *src = NULL;
        cleanup_close int dfd = -1;
        snprintf(sub, sizeof(sub), "%zu", i);
        if (mkdirat(u->dirfd, sub, 0700) < 0 && errno != EEXIST)
            return chrun_err_sys(err, errno, "ADD '%s': scratch directory", u->urls[i]);
        dfd = openat(u->dirfd, sub, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            return chrun_err_sys(err, errno, "ADD '%s': scratch directory", u->urls[i]);
        if (chrun_fetch_url(u->urls[i], u->checksum, dfd, "download.part", &r, err) < 0)
            return -1;
        if (renameat(dfd, "download.part", dfd, r.filename) < 0)
            return chrun_err_sys(err, errno, "ADD '%s': name '%s'", u->urls[i], r.filename);
        if (asprintf(&src, "%s/%s", sub, r.filename) < 0)
            return chrun_err_sys(err, ENOMEM, "build");
        free(u->cs.srcs[i]);
        u->cs.srcs[i] = src;
        if (ret_key != NULL) {
            char *more = NULL;
            if (asprintf(&more, "%s %s %s %s %lld", *ret_key ? *ret_key : "", r.digest.str,
                         r.filename, r.has_mtime ? "mtime" : "epoch",
                         (long long) (r.has_mtime ? r.mtime_s : 0)) < 0)
                return chrun_err_sys(err, ENOMEM, "build");
            free(*ret_key);
            *ret_key = more;
        }
    }
    u->fetched = true;
    return 0;
}

static int url_fn(struct builder *b, struct stage *s, void *data, struct chrun_err *err)
{
    struct url_step *u = data;
    if (!u->fetched && fetch_urls(u, NULL, err) < 0)
        return -1;
    return copy_fn(b, s, &u->cs, err);
}

static int parse_chmod(const char *v, struct chrun_copy *c, struct chrun_err *err);

static int add_url(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                   char **w, size_t n, const char *dest, const char *args, struct chrun_err *err)
{
    static const struct step_ops ops = {NULL, url_fn, NULL};
    struct url_step u = {.cs = {.c = {.extract = false, .tmpfd = b->tmpfd, .dest = dest},
                                .srcs = w, .n = n - 1},
                         .urls = NULL, .dirfd = -1};
    cleanup_free char *text = NULL, *key = NULL;
    char **urls = NULL;
    char dir[64];
    const char *v;
    int rc = 0;

    for (size_t i = 0; i + 1 < n; i++)
        if (!is_url(w[i]))
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "ADD: URLs and local sources in one instruction are not "
                                 "supported ('%s')", w[i]);
    if (chrun_df_instr_flag(in, "from") != NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "ADD --from cannot take a URL");
    u.checksum = chrun_df_instr_flag(in, "checksum");
    if (u.checksum != NULL && n != 2)
        return chrun_err_set(err, CHRUN_E_INPUT, "ADD --checksum takes exactly one URL source");
    if ((v = chrun_df_instr_flag(in, "chmod")) != NULL && parse_chmod(v, &u.cs.c, err) < 0)
        return -1;
    if ((v = chrun_df_instr_flag(in, "chown")) != NULL && (u.cs.chown = word1(b, v, err)) == NULL)
        return -1;
    /* the URLs as written: fetch_urls replaces the sources with local names */
    urls = calloc(n, sizeof(char *));
    if (urls == NULL)
        rc = chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; rc == 0 && i + 1 < n; i++)
        if ((urls[i] = strdup(w[i])) == NULL)
            rc = chrun_err_sys(err, ENOMEM, "build");
    u.urls = urls;
    scratch_name(b, "add-url", dir, sizeof(dir));
    if (rc == 0 && mkdirat(b->tmpfd, dir, 0700) < 0)
        rc = chrun_err_sys(err, errno, "ADD: scratch directory");
    if (rc == 0 && (u.dirfd = openat(b->tmpfd, dir, O_PATH | O_DIRECTORY | O_NOFOLLOW |
                                                        O_CLOEXEC)) < 0)
        rc = chrun_err_sys(err, errno, "ADD: scratch directory");
    u.cs.c.ctxfd = u.dirfd;
    if (rc == 0 && u.checksum != NULL)
        rc = asprintf(&key, "url %s %s", urls[0], u.checksum) < 0
                 ? chrun_err_sys(err, ENOMEM, "build") : 0;
    else if (rc == 0)
        rc = fetch_urls(&u, &key, err);
    if (rc == 0 && (text = instr_text(in, args)) == NULL)
        rc = chrun_err_sys(err, ENOMEM, "build");
    if (rc == 0)
        rc = fs_step(b, s, text, key, &ops, &u, err);
    if (u.dirfd >= 0) {
        struct chrun_err ignored = CHRUN_ERR_INIT;
        close(u.dirfd);
        chrun_fs_rm_rf_at(b->tmpfd, dir, &ignored);
    }
    if (urls != NULL)
        chrun_dockerfile_words_free(urls);
    free((char *) u.cs.chown);
    return rc;
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
    } else if (words(b, in->args, true, ret, ret_n, err) < 0) {
        return -1;
    }
    if (*ret_n < 2) {
        chrun_dockerfile_words_free(take_ptr(*ret));
        return chrun_err_set(err, CHRUN_E_INPUT, "%s needs a source and a destination",
                             in->keyword);
    }
    return 0;
}

/* The heredoc a source word "<<NAME" or "<<-NAME" names, or NULL. */
static const struct chrun_df_heredoc *heredoc_of(const struct chrun_df_instr *in, const char *w)
{
    if (!str_has_prefix(w, "<<"))
        return NULL;
    w += 2;
    w += *w == '-';
    for (size_t i = 0; i < in->n_heredocs; i++)
        if (streq(in->heredocs[i].name, w))
            return &in->heredocs[i];
    return NULL;
}

/* COPY <<EOF /dest: write the heredocs (substituted unless quoted) as files
 * NAME in a new scratch directory, open it as the source root (*RET_FD) and
 * turn the source words into the names. */
static int heredoc_sources(struct builder *b, const struct chrun_df_instr *in, char **srcs,
                           size_t n, int *ret_fd, struct chrun_err *err)
{
    char dir[64];
    cleanup_close int dfd = -1;
    scratch_name(b, "heredoc", dir, sizeof(dir));
    if (mkdirat(b->tmpfd, dir, 0755) < 0)
        return chrun_err_sys(err, errno, "create '%s'", dir);
    dfd = openat(b->tmpfd, dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return chrun_err_sys(err, errno, "open '%s'", dir);
    for (size_t i = 0; i < n; i++) {
        const struct chrun_df_heredoc *h = heredoc_of(in, srcs[i]);
        cleanup_free char *body = NULL;
        cleanup_close int fd = -1;
        struct timespec t[2] = {{.tv_sec = b->epoch}, {.tv_sec = b->epoch}};
        if (h == NULL)
            return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                                 "%s: heredocs and files as sources of one %s are not supported",
                                 in->keyword, in->keyword);
        if (h->expand ? chrun_dockerfile_expand_raw(h->body, lookup, b, &body, err) < 0
                      : (body = strdup(h->body)) == NULL)
            return h->expand ? -1 : chrun_err_sys(err, ENOMEM, "build");
        fd = openat(dfd, h->name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 || chrun_io_write_full(fd, body, strlen(body), err) < 0 ||
            fchmod(fd, 0644) < 0 || futimens(fd, t) < 0)
            return fd < 0 ? chrun_err_sys(err, errno, "heredoc '%s'", h->name) : -1;
        free(srcs[i]);
        if ((srcs[i] = strdup(h->name)) == NULL)
            return chrun_err_sys(err, ENOMEM, "build");
    }
    *ret_fd = take_fd(dfd);
    return 0;
}

static int parse_chmod(const char *v, struct chrun_copy *c, struct chrun_err *err)
{
    char *end;
    unsigned long mode;
    errno = 0;
    mode = strtoul(v, &end, 8);
    if (*v == '\0' || *end != '\0' || errno != 0 || mode > 07777)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "--chmod=%s: only octal modes (e.g. 0755) are supported", v);
    c->chmod = true;
    c->mode = (mode_t) mode;
    return 0;
}

/* COPY/ADD flags and the cache input of the sources (EXTRA). */
static int copy_setup(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                      struct copy_step *cs, int *heredoc_fd, char **extra, struct chrun_err *err)
{
    const char *from = chrun_df_instr_flag(in, "from"), *v;
    struct chrun_digest sources;
    if ((v = chrun_df_instr_flag(in, "chmod")) != NULL && parse_chmod(v, &cs->c, err) < 0)
        return -1;
    if ((v = chrun_df_instr_flag(in, "chown")) != NULL && (cs->chown = word1(b, v, err)) == NULL)
        return -1;
    if (chrun_df_instr_flag(in, "checksum") != NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "ADD --checksum is only valid with a URL source");
    if (in->n_heredocs > 0) {
        if (heredoc_sources(b, in, cs->srcs, cs->n, heredoc_fd, err) < 0 ||
            chrun_copy_hash(*heredoc_fd, cs->srcs, cs->n, NULL, &sources, err) < 0)
            return -1;
        cs->c.ctxfd = *heredoc_fd;
    } else if (from != NULL) {
        if (resolve_from(b, s, "COPY --from", from, &cs->from, err) < 0)
            return -1;
        sources = cs->from->chain;
    } else if (chrun_copy_hash(b->ctxfd, cs->srcs, cs->n, cs->c.filter, &sources, err) < 0) {
        return -1;
    }
    if (asprintf(extra, "%s %s", sources.str, in->n_heredocs > 0 ? "heredoc" : "") < 0)
        return chrun_err_sys(err, ENOMEM, "build");
    return 0;
}

static int do_copy(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                   struct chrun_err *err)
{
    static const struct step_ops ops = {NULL, copy_fn, NULL};
    struct copy_step cs = {.c = {.ctxfd = b->ctxfd, .extract = in->kind == CHRUN_DF_ADD,
                                 .tmpfd = b->tmpfd, .filter = context_filter(b)}};
    cleanup_free char *text = NULL, *extra = NULL, *dest = NULL, *args = NULL;
    cleanup_close int heredoc_fd = -1;
    char **w = NULL;
    size_t n = 0;
    bool any_url = false;
    int rc;
    if (copy_words(b, in, &w, &n, err) < 0)
        return -1;
    cs.srcs = w;
    cs.n = n - 1;
    for (size_t i = 0; i + 1 < n; i++)
        if (is_url(w[i]) && in->n_heredocs == 0 && in->kind != CHRUN_DF_ADD) {
            rc = chrun_err_set(err, CHRUN_E_INPUT, "COPY cannot fetch '%s' (use ADD)", w[i]);
            chrun_dockerfile_words_free(w);
            return rc;
        }
    dest = abs_path(s, w[n - 1]);
    rc = dest ? 0 : chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *more = NULL;
        if (asprintf(&more, "%s%s%s", args ? args : "", i ? " " : "", i + 1 == n ? dest : w[i]) <
            0)
            rc = chrun_err_sys(err, ENOMEM, "build");
        free(args);
        args = more;
    }
    for (size_t i = 0; i + 1 < n && in->kind == CHRUN_DF_ADD && in->n_heredocs == 0; i++)
        any_url = any_url || is_url(w[i]);
    if (rc == 0 && any_url) {
        rc = add_url(b, s, in, w, n, dest, args, err);
        chrun_dockerfile_words_free(w);
        return rc;
    }
    if (rc == 0)
        rc = copy_setup(b, s, in, &cs, &heredoc_fd, &extra, err);
    if (rc == 0 && (text = instr_text(in, args)) == NULL)
        rc = chrun_err_sys(err, ENOMEM, "build");
    if (rc == 0) {
        cs.c.dest = dest;
        rc = fs_step(b, s, text, extra, &ops, &cs, err);
    }
    free((char *) cs.chown);
    chrun_dockerfile_words_free(w);
    return rc;
}

static int workdir_fn(struct builder *b, struct stage *s, void *data, struct chrun_err *err)
{
    (void) b;
    return chrun_copy_mkdir(s->rootfd, data, err);
}

static int do_workdir(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                      struct chrun_err *err)
{
    static const struct step_ops ops = {NULL, workdir_fn, NULL};
    json_t *config;
    cleanup_free char *path = NULL, *text = NULL, *w = word1(b, in->args, err);
    if (w == NULL)
        return -1;
    path = abs_path(s, w);
    if (path == NULL || asprintf(&text, "WORKDIR %s", path) < 0)
        return chrun_err_sys(err, ENOMEM, "build");
    if ((config = cfg(s, err)) == NULL || set_str(config, "WorkingDir", path, "WORKDIR", err) < 0)
        return -1;
    return fs_step(b, s, text, NULL, &ops, path, err);
}

/* ---- metadata -------------------------------------------------------------- */

static int set_env(struct stage *s, const char *key, const char *value, struct chrun_err *err)
{
    json_t *config = cfg(s, err), *env = config ? member(config, "Env", true, err) : NULL, *v;
    cleanup_free char *kv = NULL;
    size_t i, len = strlen(key);
    if (env == NULL)
        return -1;
    if (asprintf(&kv, "%s=%s", key, value) < 0)
        return chrun_err_sys(err, ENOMEM, "build");
    if ((v = chrun_json_str(kv, "ENV", err)) == NULL)
        return -1;
    for (i = 0; i < json_array_size(env); i++) {
        const char *str = json_string_value(json_array_get(env, i));
        if (str && strncmp(str, key, len) == 0 && str[len] == '=')
            return json_array_set_new(env, i, v) < 0 ? chrun_err_sys(err, ENOMEM, "ENV") : 0;
    }
    return chrun_json_append(env, v, "ENV", err);
}

/* LABEL KEY=VALUE (WHAT names where it came from: LABEL or --label). */
static int set_label(struct stage *s, const char *key, const char *value, const char *what,
                     struct chrun_err *err)
{
    json_t *config = cfg(s, err), *labels = config ? member(config, "Labels", false, err) : NULL;
    if (labels == NULL || check_key(key, what, err) < 0)
        return -1;
    return set_str(labels, key, value, what, err);
}

/* ARG NAME[=default] with Docker's scoping: before the first FROM it is a
 * global ARG (usable in FROM lines); in a stage, a --build-arg wins, then
 * the default, then, for a bare NAME, the global ARG's value. */
static int set_arg(struct builder *b, const char *key, const char *value, struct chrun_err *err)
{
    const char *given = build_arg(b, key);
    struct var *meta = vars_find(&b->meta, key);
    if (b->cur == NULL) {
        if (given == NULL && value == NULL && meta != NULL)
            return 0; /* a bare global ARG keeps a predefined value */
        return vars_set(&b->meta, key, given ? given : value, err);
    }
    if (given == NULL && value == NULL && meta != NULL)
        value = meta->value;
    return vars_set(&b->cur->args, key, given ? given : value, err);
}

/* ENV, LABEL, ARG: KEY=VALUE pairs after substitution. */
static int do_pairs(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                    struct chrun_err *err)
{
    char **w = NULL, **keys = NULL, **values = NULL;
    size_t n = 0, np = 0;
    int rc = words(b, in->args, true, &w, &n, err);
    if (rc == 0)
        rc = chrun_dockerfile_pairs(in->kind, w, n, &keys, &values, &np, err);
    for (size_t i = 0; rc == 0 && i < np; i++) {
        if (in->kind == CHRUN_DF_ENV)
            rc = set_env(s, keys[i], values[i], err);
        else if (in->kind == CHRUN_DF_LABEL)
            rc = set_label(s, keys[i], values[i], "LABEL", err);
        else
            rc = set_arg(b, keys[i], values[i], err);
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
static int do_set(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                  struct chrun_err *err)
{
    const char *key = in->kind == CHRUN_DF_EXPOSE ? "ExposedPorts" : "Volumes";
    json_t *config = cfg(s, err), *set = config ? member(config, key, false, err) : NULL;
    char **w = NULL;
    size_t n = 0;
    int rc = 0;
    if (set == NULL || (in->exec == NULL && words(b, in->args, true, &w, &n, err) < 0))
        return -1;
    for (size_t i = 0; rc == 0 && i < (w ? n : in->n_exec); i++) {
        const char *item = w ? w[i] : in->exec[i];
        char port[64];
        if (in->kind == CHRUN_DF_EXPOSE && !valid_port(item))
            rc = chrun_err_set(err, CHRUN_E_INPUT, "EXPOSE '%s' is not PORT[/tcp|udp|sctp]",
                               item);
        else if (in->kind == CHRUN_DF_EXPOSE)
            snprintf(port, sizeof(port), "%s%s", item, strchr(item, '/') ? "" : "/tcp");
        if (rc == 0)
            rc = check_key(item, in->keyword, err);
        if (rc == 0)
            rc = chrun_json_set(set, in->kind == CHRUN_DF_EXPOSE ? port : item, json_object(),
                                err);
    }
    chrun_dockerfile_words_free(w);
    return rc;
}

/* A command of CMD, ENTRYPOINT or HEALTHCHECK CMD: the exec form, or the
 * shell (SHELL's, else /bin/sh -c) with the text. */
static json_t *command_json(struct stage *s, const struct chrun_df_instr *in, bool healthcheck,
                            struct chrun_err *err)
{
    cleanup_json json_t *arr = json_array();
    json_t *sh = cfg_get(s, "Shell");
    size_t i;
    int rc = 0;
    if (arr == NULL) {
        chrun_err_sys(err, ENOMEM, "%s", in->keyword);
        return NULL;
    }
    if (healthcheck)
        rc = append_str(arr, in->exec ? "CMD" : "CMD-SHELL", in->keyword, err);
    if (in->exec != NULL) {
        for (i = 0; rc == 0 && i < in->n_exec; i++)
            rc = append_str(arr, in->exec[i], in->keyword, err);
    } else if (!healthcheck && json_is_array(sh) && json_array_size(sh) > 0) {
        for (i = 0; rc == 0 && i < json_array_size(sh); i++)
            rc = chrun_json_append(arr, json_incref(json_array_get(sh, i)), in->keyword, err);
    } else if (!healthcheck) {
        rc = append_str(arr, "/bin/sh", in->keyword, err);
        if (rc == 0)
            rc = append_str(arr, "-c", in->keyword, err);
    }
    if (rc == 0 && in->exec == NULL)
        rc = append_str(arr, in->args, in->keyword, err);
    return rc == 0 ? json_incref(arr) : NULL;
}

static int do_command(struct stage *s, const struct chrun_df_instr *in, struct chrun_err *err)
{
    json_t *config = cfg(s, err), *arr = config ? command_json(s, in, false, err) : NULL;
    if (arr == NULL)
        return -1;
    if (in->kind == CHRUN_DF_CMD) {
        s->seen_cmd = true;
        return chrun_json_set(config, "Cmd", arr, err);
    }
    /* Docker: a new ENTRYPOINT drops the base image's CMD */
    if (!s->seen_cmd)
        json_object_del(config, "Cmd");
    return chrun_json_set(config, "Entrypoint", arr, err);
}

/* A Go duration ("1m30s", "500ms", "2h") in nanoseconds; -1 if not one. */
static int64_t parse_duration(const char *s)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    double total = 0;
    if (*s == '\0')
        return -1;
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        size_t best = 0, ulen = 0;
        if (end == s || v < 0)
            return -1;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(end, units[i].unit, l) == 0 && l > ulen) {
                best = i;
                ulen = l;
            }
        }
        if (ulen == 0)
            return -1;
        total += v * units[best].ns;
        s = end + ulen;
    }
    return total > 9e18 ? -1 : (int64_t) total;
}

static int do_healthcheck(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                          struct chrun_err *err)
{
    static const struct {
        const char *flag, *key;
    } timings[] = {{"interval", "Interval"},
                   {"timeout", "Timeout"},
                   {"start-period", "StartPeriod"},
                   {"start-interval", "StartInterval"}};
    json_t *config = cfg(s, err), *hc, *test;
    const char *v;
    if (config == NULL || chrun_json_set(config, "Healthcheck", json_object(), err) < 0)
        return -1;
    hc = json_object_get(config, "Healthcheck");
    if (in->none)
        return chrun_json_set(hc, "Test", json_pack("[s]", "NONE"), err);
    if ((test = command_json(s, in, true, err)) == NULL || chrun_json_set(hc, "Test", test, err) < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(timings); i++) {
        cleanup_free char *w = NULL;
        int64_t ns;
        if ((v = chrun_df_instr_flag(in, timings[i].flag)) == NULL)
            continue;
        if ((w = word1(b, v, err)) == NULL)
            return -1;
        ns = parse_duration(w);
        if (ns < 0 || (ns > 0 && ns < 1000000))
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "HEALTHCHECK --%s=%s: not a duration of at least 1ms", timings[i].flag,
                                 w);
        if (ns > 0 && chrun_json_set(hc, timings[i].key, json_integer(ns), err) < 0)
            return -1;
    }
    if ((v = chrun_df_instr_flag(in, "retries")) != NULL) {
        cleanup_free char *w = word1(b, v, err);
        char *end;
        long r;
        if (w == NULL)
            return -1;
        errno = 0;
        r = strtol(w, &end, 10);
        if (*w == '\0' || *end != '\0' || errno != 0 || r < 0 || r > 0x7fffffff)
            return chrun_err_set(err, CHRUN_E_INPUT, "HEALTHCHECK --retries=%s: not a count", w);
        if (r > 0 && chrun_json_set(hc, "Retries", json_integer(r), err) < 0)
            return -1;
    }
    return 0;
}

static bool valid_signal(const char *s)
{
    static const char *const names[] = {
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS", "RTMIN", "RTMAX"};
    if (all_digits(s))
        return strlen(s) <= 2 && atoi(s) >= 1 && atoi(s) <= 64;
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strcasecmp(s, names[i]) == 0)
            return true;
    /* SIGRTMIN+3 and the like */
    return (strncasecmp(s, "RTMIN+", 6) == 0 || strncasecmp(s, "RTMAX-", 6) == 0) &&
           all_digits(s + 6);
}

static int do_metadata(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                       struct chrun_err *err)
{
    cleanup_free char *w = NULL;
    json_t *arr, *config;
    switch (in->kind) {
    case CHRUN_DF_USER:
    case CHRUN_DF_STOPSIGNAL:
    case CHRUN_DF_MAINTAINER:
        if ((w = word1(b, in->args, err)) == NULL)
            return -1;
        if (in->kind == CHRUN_DF_MAINTAINER)
            return set_str(s->image, "author", w, in->keyword, err);
        if ((config = cfg(s, err)) == NULL)
            return -1;
        if (in->kind == CHRUN_DF_USER)
            return set_str(config, "User", w, in->keyword, err);
        if (!valid_signal(w))
            return chrun_err_set(err, CHRUN_E_INPUT, "STOPSIGNAL '%s' is not a signal", w);
        return set_str(config, "StopSignal", w, in->keyword, err);
    case CHRUN_DF_SHELL:
        if ((config = cfg(s, err)) == NULL || chrun_json_set(config, "Shell", json_array(), err) < 0)
            return -1;
        arr = json_object_get(config, "Shell");
        for (size_t i = 0; i < in->n_exec; i++)
            if (append_str(arr, in->exec[i], in->keyword, err) < 0)
                return -1;
        return 0;
    case CHRUN_DF_ONBUILD:
        if ((config = cfg(s, err)) == NULL || (arr = member(config, "OnBuild", true, err)) == NULL)
            return -1;
        /* Docker records the trigger with its keyword in capitals */
        {
            size_t klen = strcspn(in->args, " \t");
            cleanup_free char *t = strdup(in->args);
            if (t == NULL)
                return chrun_err_sys(err, ENOMEM, "build");
            for (size_t i = 0; i < klen; i++)
                t[i] = (char) toupper((unsigned char) t[i]);
            return append_str(arr, t, in->keyword, err);
        }
    case CHRUN_DF_HEALTHCHECK: return do_healthcheck(b, s, in, err);
    case CHRUN_DF_CMD:
    case CHRUN_DF_ENTRYPOINT: return do_command(s, in, err);
    case CHRUN_DF_EXPOSE:
    case CHRUN_DF_VOLUME: return do_set(b, s, in, err);
    default: return do_pairs(b, s, in, err);
    }
}

/* ---- FROM ---------------------------------------------------------------------- */

/* Stage S starts from image NAME: its layers are listed, not unpacked. */
static int from_image(struct builder *b, struct stage *s, const char *name,
                      struct chrun_err *err)
{
    struct chrun_store_image img;
    struct chrun_manifest m;
    struct chrun_image_config c;
    struct chrun_digest md;
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
    for (size_t i = 0; rc == 0 && i < m.n_layers; i++) {
        const char *mt = m.layers[i].media_type;
        /* the same bytes under the OCI name: the new manifest is OCI */
        if (streq(mt, CHRUN_MT_DOCKER_LAYER_GZIP))
            mt = CHRUN_MT_OCI_LAYER_GZIP;
        rc = add_layer(s, mt, &m.layers[i].digest, m.layers[i].size, &c.diff_ids[i], err);
    }
    if (rc == 0) {
        json_t *config = json_object_get(c.json, "config");
        json_t *history = json_object_get(c.json, "history");
        /* deep copies: the base image's objects are never edited in place */
        if (json_is_object(config))
            rc = chrun_json_set(s->image, "config", json_deep_copy(config), err);
        if (rc == 0 && json_is_array(history))
            rc = chrun_json_set(s->image, "history", json_deep_copy(history), err);
        if (rc == 0)
            rc = chain_next(&s->chain, "FROM", md.str, err);
    }
    if (rc < 0)
        chrun_err_prefix(err, "FROM '%s'", name);
    chrun_image_config_release(&c);
    chrun_manifest_release(&m);
    return rc;
}

/* The earlier stage named NAME (any case), or NULL. */
static struct stage *earlier_stage(struct builder *b, struct stage *s, const char *name)
{
    for (size_t i = 0; i < s->index && i < b->n_df_stages; i++)
        if (b->stages[i]->name != NULL && strcasecmp(b->stages[i]->name, name) == 0)
            return b->stages[i];
    return NULL;
}

/* Is P (os/arch[/variant]) the HOST platform? A missing variant on either
 * side matches. */
static bool platform_matches(const char *host, const char *p)
{
    size_t lh = strlen(host), lp = strlen(p);
    if (strchr(p, '/') == NULL)
        return false;
    if (lp <= lh)
        return strncmp(host, p, lp) == 0 && (host[lp] == '\0' || host[lp] == '/');
    return strncmp(host, p, lh) == 0 && p[lh] == '/';
}

static int check_platform(struct builder *b, const char *p, struct chrun_err *err)
{
    if (platform_matches(b->platform, p))
        return 0;
    return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                         "platform '%s': chrun-build builds for the host's platform only (%s)", p,
                         b->platform);
}

static int do_instr(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                    struct chrun_err *err);

/* Run the ONBUILD triggers of the base image, then drop them (Docker does
 * not pass them on). */
static int run_triggers(struct builder *b, struct stage *s, const struct chrun_df_instr *from,
                        struct chrun_err *err)
{
    json_t *ob = cfg_get(s, "OnBuild"), *v;
    struct chrun_dockerfile t = {0};
    cleanup_free char *text = NULL;
    size_t i, len = 0;
    int rc = 0;
    if (!json_is_array(ob) || json_array_size(ob) == 0) {
        json_object_del(json_object_get(s->image, "config"), "OnBuild");
        return 0;
    }
    json_array_foreach (ob, i, v) {
        const char *str = json_string_value(v);
        char *more = NULL;
        if (str == NULL || strchr(str, '\n') != NULL)
            return chrun_err_set(err, CHRUN_E_INPUT, "the base image's OnBuild entry %zu is not "
                                 "one instruction", i);
        if (asprintf(&more, "%s%s\n", text ? text : "", str) < 0)
            return chrun_err_sys(err, ENOMEM, "build");
        free(text);
        text = more;
        len = strlen(text);
    }
    json_object_del(json_object_get(s->image, "config"), "OnBuild");
    if (chrun_dockerfile_parse_triggers(&t, "ONBUILD trigger", text, len, err) < 0) {
        chrun_dockerfile_release(&t);
        return -1;
    }
    for (i = 0; rc == 0 && i < t.n_instrs; i++) {
        chrun_log_info("step: ONBUILD trigger %s %s", t.instrs[i].keyword, t.instrs[i].args);
        rc = do_instr(b, s, &t.instrs[i], err);
        if (rc < 0)
            chrun_err_prefix(err, "ONBUILD trigger '%s %s' of the base of line %u",
                             t.instrs[i].keyword, t.instrs[i].args, from->line);
    }
    chrun_dockerfile_release(&t);
    return rc;
}

static int do_from(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                   struct chrun_err *err)
{
    const char *platform = chrun_df_instr_flag(in, "platform");
    cleanup_free char *name = NULL, *plat = NULL;
    struct stage *dep;
    int rc;
    b->cur = NULL; /* FROM lines see the global ARGs only */
    name = word1(b, in->args, err);
    if (name != NULL && platform != NULL && (plat = word1(b, platform, err)) == NULL)
        name = NULL;
    b->cur = s;
    if (name == NULL)
        return -1;
    if (plat != NULL && check_platform(b, plat, err) < 0)
        return chrun_err_prefix(err, "FROM --platform");
    if (*name == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "FROM names no image");
    dep = earlier_stage(b, s, name);
    if (dep != NULL) {
        if (build_stage(b, dep, err) < 0)
            return -1;
        json_decref(s->image);
        json_decref(s->layers);
        s->image = json_deep_copy(dep->image);
        s->layers = json_deep_copy(dep->layers);
        if (s->image == NULL || s->layers == NULL)
            return chrun_err_sys(err, ENOMEM, "build");
        s->chain = dep->chain;
        rc = 0;
    } else if (streq(name, "scratch")) {
        rc = chain_next(&s->chain, "FROM", "scratch", err);
    } else {
        rc = from_image(b, s, name, err);
    }
    return rc < 0 ? -1 : run_triggers(b, s, in, err);
}

/* ---- the instruction loop -------------------------------------------------------- */

static int do_instr(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                    struct chrun_err *err)
{
    cleanup_free char *text = NULL, *values = NULL;
    int rc;
    switch (in->kind) {
    case CHRUN_DF_FROM: return do_from(b, s, in, err);
    case CHRUN_DF_RUN: return do_run(b, s, in, err);
    case CHRUN_DF_COPY:
    case CHRUN_DF_ADD: return do_copy(b, s, in, err);
    case CHRUN_DF_WORKDIR: return do_workdir(b, s, in, err);
    default: rc = do_metadata(b, s, in, err); break;
    }
    if (rc < 0 || b->cur == NULL)
        return rc;
    /* ARG values are part of the state later steps see */
    if ((text = instr_text(in, in->args)) == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; in->kind == CHRUN_DF_ARG && i < s->args.n; i++) {
        const struct var *v = &s->args.v[i];
        char *more = NULL;
        if (asprintf(&more, "%s\n%s=%s", values ? values : "", v->name,
                     v->value ? v->value : "") < 0)
            return chrun_err_sys(err, ENOMEM, "build");
        free(values);
        values = more;
    }
    return meta_step(b, s, text, values, err);
}

static int build_stage(struct builder *b, struct stage *s, struct chrun_err *err)
{
    struct stage *saved = b->cur;
    int rc = 0;
    if (s->state == STAGE_DONE)
        return 0;
    s->state = STAGE_BUILDING;
    s->image = json_pack("{s:{s:s, s:[]}}", "rootfs", "type", "layers", "diff_ids");
    s->layers = json_array();
    if (s->image == NULL || s->layers == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    /* the seed: the builder's format and the time every layer is capped at */
    {
        char seed[64];
        int len = snprintf(seed, sizeof(seed), "chrun-build 2 %s", b->created);
        if (chrun_digest_of_buffer(&s->chain, seed, (size_t) len, err) < 0)
            return -1;
    }
    if (s->image_ref != NULL) {
        rc = from_image(b, s, s->image_ref, err);
        s->state = STAGE_DONE;
        return rc;
    }
    for (size_t i = s->first; rc == 0 && i < s->end; i++) {
        const struct chrun_df_instr *in = &b->df.instrs[i];
        chrun_log_info("step %zu/%zu: %s %s", i + 1, b->df.n_instrs, in->keyword, in->args);
        b->cur = s;
        rc = do_instr(b, s, in, err);
        if (rc < 0 && !b->located) {
            chrun_err_prefix(err, "'%s' line %u", b->dfname, in->line);
            b->located = true;
        }
    }
    b->cur = saved;
    s->state = STAGE_DONE;
    return rc;
}

/* ---- image config and manifest --------------------------------------------------- */

static int finish_image(struct builder *b, struct stage *s, struct chrun_digest *ret,
                        struct chrun_err *err)
{
    char platform[96], *arch, *variant;
    cleanup_free char *cfg_text = NULL, *man_text = NULL;
    cleanup_json json_t *man = NULL;
    struct chrun_digest cfg_digest;
    snprintf(platform, sizeof(platform), "%s", b->platform);
    arch = strchr(platform, '/');
    *arch++ = '\0';
    variant = strchr(arch, '/');
    if (variant != NULL)
        *variant++ = '\0';
    for (size_t i = 0; i < b->opts->n_labels; i++) {
        const char *l = b->opts->labels[i], *eq = strchr(l, '=');
        cleanup_free char *key = eq ? strndup(l, (size_t) (eq - l)) : NULL;
        if (key == NULL)
            return chrun_err_sys(err, ENOMEM, "--label");
        if (set_label(s, key, eq + 1, "--label", err) < 0)
            return -1;
    }
    if (set_str(s->image, "created", b->created, "created", err) < 0 ||
        set_str(s->image, "os", platform, "--platform", err) < 0 ||
        set_str(s->image, "architecture", arch, "--platform", err) < 0 ||
        (variant != NULL && set_str(s->image, "variant", variant, "--platform", err) < 0))
        return -1;
    /* sorted keys: the same image gives the same bytes */
    cfg_text = json_dumps(s->image, JSON_COMPACT | JSON_SORT_KEYS);
    if (cfg_text == NULL)
        return chrun_err_sys(err, ENOMEM, "image config");
    if (chrun_store_put_blob(b->st, cfg_text, strlen(cfg_text), NULL, &cfg_digest, err) < 0)
        return chrun_err_prefix(err, "image config");
    man = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType",
                    CHRUN_MT_OCI_MANIFEST, "config", "mediaType", CHRUN_MT_OCI_CONFIG, "digest",
                    cfg_digest.str, "size", (json_int_t) strlen(cfg_text), "layers", s->layers);
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

/* "id=ID,src=FILE" (src may be spelled source; type=file is the default),
 * or "id=ID,env=NAME". */
static int parse_secret(const char *spec, struct secret *ret, struct chrun_err *err)
{
    const char *p = spec;
    *ret = (struct secret){0};
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t) (eq - p) : len;
        const char *v = eq ? eq + 1 : "";
        size_t vlen = eq ? len - klen - 1 : 0;
        if (klen == 2 && strncmp(p, "id", 2) == 0 && vlen > 0 && vlen < sizeof(ret->id))
            snprintf(ret->id, sizeof(ret->id), "%.*s", (int) vlen, v);
        else if (klen == 3 && strncmp(p, "env", 3) == 0 && vlen > 0 && vlen < sizeof(ret->env))
            snprintf(ret->env, sizeof(ret->env), "%.*s", (int) vlen, v);
        else if (((klen == 3 && strncmp(p, "src", 3) == 0) ||
                  (klen == 6 && strncmp(p, "source", 6) == 0)) &&
                 vlen > 0)
            ret->path = v; /* up to the end: a path may hold ',' only as the last key */
        else if (!(klen == 4 && strncmp(p, "type", 4) == 0 &&
                   ((vlen == 4 && strncmp(v, "file", 4) == 0) ||
                    (vlen == 3 && strncmp(v, "env", 3) == 0))))
            return chrun_err_set(err, CHRUN_E_USAGE,
                                 "--secret '%.*s': want id=ID,src=FILE or id=ID,env=NAME",
                                 (int) len, p);
        if (ret->path == v)
            break;
        p += len + (p[len] == ',');
    }
    if (ret->id[0] == '\0' || (ret->path == NULL) == (ret->env[0] == '\0'))
        return chrun_err_set(err, CHRUN_E_USAGE,
                             "--secret: want id=ID,src=FILE or id=ID,env=NAME");
    return 0;
}

int chrun_build_check_opts(const struct chrun_build_opts *o, struct chrun_err *err)
{
    char host[96];
    struct secret s;
    for (size_t i = 0; i < o->n_secrets; i++)
        if (parse_secret(o->secrets[i], &s, err) < 0)
            return -1;
    for (size_t i = 0; i < o->n_labels; i++)
        if (o->labels[i][0] == '=' || strchr(o->labels[i], '=') == NULL)
            return chrun_err_set(err, CHRUN_E_USAGE, "--label '%s': want KEY=VALUE",
                                 o->labels[i]);
    if (o->network && !streq(o->network, "default") && !streq(o->network, "host") &&
        !streq(o->network, "none"))
        return chrun_err_set(err, CHRUN_E_USAGE, "--network '%s': want default, host or none",
                             o->network);
    chrun_manifest_host_platform(host, sizeof(host));
    if (o->platform != NULL && !platform_matches(host, o->platform))
        return chrun_err_set(err, CHRUN_E_USAGE,
                             "--platform '%s': chrun-build builds for the host's platform only "
                             "(%s)",
                             o->platform, host);
    if (o->context && o->dockerfile && streq(o->context, "-") && streq(o->dockerfile, "-"))
        return chrun_err_set(err, CHRUN_E_USAGE, "-f - and CONTEXT - cannot both read stdin");
    return 0;
}

/* RFC 3339 "2023-11-14T22:13:20.5Z" or with an offset: seconds since the
 * epoch, or 0 when it is not one. */
static int64_t parse_created(const char *s)
{
    struct tm tm = {0};
    const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    int64_t t;
    if (p == NULL)
        return 0;
    if (*p == '.')
        p += 1 + strspn(p + 1, "0123456789");
    t = (int64_t) timegm(&tm);
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':')
        t -= (*p == '+' ? 1 : -1) * (atoi(p + 1) * 3600 + atoi(p + 4) * 60);
    else if (!streq(p, "Z"))
        return 0;
    return t < 0 ? 0 : t;
}

/* Without SOURCE_DATE_EPOCH: the "created" of the image the target stage
 * starts from (following FROM <stage>), 0 for scratch or when unknown. */
static int64_t base_created(struct builder *b, struct stage *s)
{
    for (size_t hops = 0; hops <= b->n_df_stages; hops++) {
        struct chrun_err ignored = CHRUN_ERR_INIT;
        const struct chrun_df_instr *in = &b->df.instrs[s->first];
        cleanup_free char *name = NULL;
        struct chrun_store_image img;
        struct chrun_manifest m;
        struct chrun_image_config c;
        struct stage *dep;
        int64_t t;
        b->cur = NULL;
        name = word1(b, in->args, &ignored);
        if (name == NULL || streq(name, "scratch"))
            return 0;
        if ((dep = earlier_stage(b, s, name)) != NULL) {
            s = dep;
            continue;
        }
        if (chrun_store_resolve(b->st, name, &img, &ignored) < 0 ||
            chrun_manifest_load_image(&m, b->st, &img, NULL, NULL, &ignored) < 0)
            return 0;
        t = 0;
        if (chrun_image_config_load(&c, b->st, &m.config.digest, &ignored) == 0) {
            t = parse_created(json_string_value(json_object_get(c.json, "created")));
            chrun_image_config_release(&c);
        }
        chrun_manifest_release(&m);
        return t;
    }
    return 0;
}

static int set_epoch(struct builder *b, struct stage *target, struct chrun_err *err)
{
    const char *s = getenv("SOURCE_DATE_EPOCH");
    struct tm tm;
    time_t t;
    if (s != NULL && *s != '\0') {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0' || v < 0)
            return chrun_err_set(err, CHRUN_E_USAGE, "SOURCE_DATE_EPOCH '%s' is not a number", s);
        b->epoch = v;
    } else {
        b->epoch = base_created(b, target);
    }
    t = (time_t) b->epoch;
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

/* Copy stdin into a new file NAME under the builder's tmp directory and
 * return it opened for reading. */
static int spool_stdin(struct builder *b, const char *name, struct chrun_err *err)
{
    cleanup_close int out = -1;
    cleanup_free char *buf = malloc(CHRUN_IO_BUFSZ);
    ssize_t n;
    out = openat(b->tmpfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0 || buf == NULL)
        return chrun_err_sys(err, out < 0 ? errno : ENOMEM, "read stdin");
    while ((n = chrun_io_read_full(STDIN_FILENO, buf, CHRUN_IO_BUFSZ, err)) > 0)
        if (chrun_io_write_full(out, buf, (size_t) n, err) < 0)
            return chrun_err_prefix(err, "read stdin");
    if (n < 0)
        return chrun_err_prefix(err, "read stdin");
    if (lseek(out, 0, SEEK_SET) < 0)
        return chrun_err_sys(err, errno, "read stdin");
    return take_fd(out);
}

/* CONTEXT "-": a tar on stdin, unpacked with the layer applier's rules, or
 * else a Dockerfile (*RET_TEXT) with an empty context. */
static int context_from_stdin(struct builder *b, char **ret_text, size_t *ret_len,
                              struct chrun_err *err)
{
    cleanup_close int in = spool_stdin(b, "context.in", err);
    cleanup_close int dfd = -1;
    bool is_tar = false;
    if (in < 0)
        return -1;
    if (mkdirat(b->tmpfd, "context", 0755) < 0 ||
        (dfd = openat(b->tmpfd, "context", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return chrun_err_sys(err, errno, "create the context directory");
    if (chrun_copy_extract(in, dfd, &is_tar, err) < 0)
        return chrun_err_prefix(err, "build context '-'");
    if (!is_tar) {
        if (lseek(in, 0, SEEK_SET) < 0)
            return chrun_err_sys(err, errno, "read stdin");
        if (chrun_io_read_bounded(in, CHRUN_DOCKERFILE_MAX, ret_text, ret_len, err) < 0)
            return chrun_err_prefix(err, "Dockerfile on stdin");
    }
    unlinkat(b->tmpfd, "context.in", 0); /* a copy of stdin is not kept meanwhile */
    b->ctxfd = openat(b->tmpfd, "context", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (b->ctxfd < 0)
        return chrun_err_sys(err, errno, "open the context directory");
    return 0;
}

static int load_dockerfile(struct builder *b, struct chrun_err *err)
{
    const struct chrun_build_opts *o = b->opts;
    cleanup_free char *text = NULL;
    size_t len = 0;
    int fd = -1;
    bool stdin_ctx = streq(o->context, "-");
    if (stdin_ctx && context_from_stdin(b, &text, &len, err) < 0)
        return -1;
    if (stdin_ctx && text != NULL && o->dockerfile != NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "build context '-' is not a tar archive");
    if (stdin_ctx && text != NULL) {
        snprintf(b->dfpath, sizeof(b->dfpath), "-");
    } else if (o->dockerfile != NULL && streq(o->dockerfile, "-")) {
        snprintf(b->dfpath, sizeof(b->dfpath), "-");
        if (chrun_io_read_bounded(STDIN_FILENO, CHRUN_DOCKERFILE_MAX, &text, &len, err) < 0)
            return chrun_err_prefix(err, "Dockerfile on stdin");
    } else {
        if (stdin_ctx) {
            /* a tar context: the Dockerfile is a file in it */
            snprintf(b->dfpath, sizeof(b->dfpath), "%s", o->dockerfile ? o->dockerfile
                                                                        : "Dockerfile");
            fd = chrun_fs_open_in_root(b->ctxfd, b->dfpath, O_RDONLY, 0, err);
        } else {
            if (o->dockerfile != NULL)
                snprintf(b->dfpath, sizeof(b->dfpath), "%s", o->dockerfile);
            else if (snprintf(b->dfpath, sizeof(b->dfpath), "%s/Dockerfile", o->context) >=
                     (int) sizeof(b->dfpath))
                return chrun_err_sys(err, ENAMETOOLONG, "Dockerfile path");
            fd = open(b->dfpath, O_RDONLY | O_CLOEXEC | O_NOCTTY);
            if (fd < 0)
                chrun_err_sys(err, errno, "open Dockerfile '%s'", b->dfpath);
        }
        if (fd < 0)
            return -1;
        if (chrun_io_read_bounded(fd, CHRUN_DOCKERFILE_MAX, &text, &len, err) < 0) {
            close(fd);
            return chrun_err_prefix(err, "Dockerfile '%s'", b->dfpath);
        }
        close(fd);
    }
    b->dfname = b->dfpath;
    return chrun_dockerfile_parse(&b->df, b->dfpath, text, len, err);
}

/* One stage per FROM; the ARGs before the first FROM are global. */
static int split_stages(struct builder *b, struct chrun_err *err)
{
    size_t n = 0;
    for (size_t i = 0; i < b->df.n_instrs; i++)
        n += b->df.instrs[i].kind == CHRUN_DF_FROM;
    b->stages = calloc(n, sizeof(*b->stages));
    if (b->stages == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; i < b->df.n_instrs; i++) {
        const struct chrun_df_instr *in = &b->df.instrs[i];
        struct stage *s;
        if (in->kind != CHRUN_DF_FROM) {
            if (b->n_stages == 0) {
                b->cur = NULL;
                if (do_instr(b, NULL, in, err) < 0)
                    return chrun_err_prefix(err, "'%s' line %u", b->dfname, in->line);
            }
            continue;
        }
        for (size_t j = 0; in->stage && j < b->n_stages; j++)
            if (b->stages[j]->name && streq(b->stages[j]->name, in->stage))
                return chrun_err_set(err, CHRUN_E_INPUT, "'%s' line %u: stage name '%s' is "
                                     "already used", b->dfname, in->line, in->stage);
        if (b->n_stages > 0)
            b->stages[b->n_stages - 1]->end = i;
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return chrun_err_sys(err, ENOMEM, "build");
        *s = (struct stage){.index = b->n_stages, .name = in->stage, .first = i, .end = i + 1,
                            .workfd = -1, .rootfd = -1};
        b->stages[b->n_stages++] = s;
    }
    b->stages[b->n_stages - 1]->end = b->df.n_instrs;
    b->n_df_stages = b->n_stages;
    return 0;
}

static int find_target(struct builder *b, struct stage **ret, struct chrun_err *err)
{
    const char *t = b->opts->target;
    if (t == NULL) {
        *ret = b->stages[b->n_df_stages - 1];
        return 0;
    }
    for (size_t i = 0; i < b->n_df_stages; i++)
        if (b->stages[i]->name && strcasecmp(b->stages[i]->name, t) == 0) {
            *ret = b->stages[i];
            return 0;
        }
    return chrun_err_set(err, CHRUN_E_INPUT, "--target '%s': no stage of that name in '%s'", t,
                         b->dfname);
}

/* The predefined platform ARGs (BuildKit's), global like ARGs before FROM. */
static int platform_args(struct builder *b, struct chrun_err *err)
{
    char os[32] = "", arch[32] = "", variant[32] = "";
    sscanf(b->platform, "%31[^/]/%31[^/]/%31s", os, arch, variant);
    static const char *const pre[] = {"TARGET", "BUILD"};
    for (size_t i = 0; i < ARRAY_SIZE(pre); i++) {
        char name[32];
        const char *vals[] = {b->platform, os, arch, variant};
        const char *suffix[] = {"PLATFORM", "OS", "ARCH", "VARIANT"};
        for (size_t j = 0; j < ARRAY_SIZE(vals); j++) {
            snprintf(name, sizeof(name), "%s%s", pre[i], suffix[j]);
            if (vars_set(&b->meta, name, vals[j], err) < 0)
                return -1;
        }
    }
    return 0;
}

static void stage_free(struct builder *b, struct stage *s)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    if (s->workname[0] != '\0')
        chrun_fs_rm_rf_at(chrun_store_tmp_fd(b->st), s->workname, &ignored);
    if (s->rootfd >= 0)
        close(s->rootfd);
    if (s->workfd >= 0)
        close(s->workfd);
    json_decref(s->image);
    json_decref(s->layers);
    vars_release(&s->args);
    free(s->image_ref);
    free(s);
}

static void builder_release(struct builder *b)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    for (size_t i = 0; i < b->n_stages; i++)
        stage_free(b, b->stages[i]);
    free(b->stages);
    if (b->tmpfd >= 0)
        close(b->tmpfd);
    if (b->tmpname[0] != '\0')
        chrun_fs_rm_rf_at(chrun_store_tmp_fd(b->st), b->tmpname, &ignored);
    if (b->ctxfd >= 0)
        close(b->ctxfd);
    chrun_dockerfile_release(&b->df);
    chrun_dockerignore_free(b->ignore);
    vars_release(&b->meta);
    free(b->used_args);
    free(b->secrets);
}

static int builder_init(struct builder *b, struct chrun_store *st,
                        const struct chrun_build_opts *o, struct chrun_err *err)
{
    int tmp = chrun_store_tmp_fd(st);
    *b = (struct builder){.st = st, .opts = o, .ctxfd = -1, .tmpfd = -1};
    b->used_args = calloc(o->n_build_args + 1, sizeof(bool));
    b->secrets = calloc(o->n_secrets + 1, sizeof(*b->secrets));
    if (b->used_args == NULL || b->secrets == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    if (chrun_build_check_opts(o, err) < 0 || check_tags(o, err) < 0)
        return -1;
    for (size_t i = 0; i < o->n_secrets; i++) {
        int fd;
        if (parse_secret(o->secrets[i], &b->secrets[i], err) < 0)
            return -1;
        /* checked now: a missing secret fails before any work */
        if (b->secrets[i].path == NULL) {
            if (getenv(b->secrets[i].env) == NULL)
                return chrun_err_set(err, CHRUN_E_INPUT,
                                     "secret '%s': environment variable '%s' is not set",
                                     b->secrets[i].id, b->secrets[i].env);
            continue;
        }
        fd = open(b->secrets[i].path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
            return chrun_err_sys(err, errno, "secret '%s': open '%s'", b->secrets[i].id,
                                 b->secrets[i].path);
        close(fd);
    }
    chrun_manifest_host_platform(b->platform, sizeof(b->platform));
    if (platform_args(b, err) < 0)
        return -1;
    if (chrun_fs_mkdtemp_at(tmp, WORK_PREFIX, b->tmpname, sizeof(b->tmpname), err) < 0)
        return -1;
    b->tmpfd = openat(tmp, b->tmpname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (b->tmpfd < 0)
        return chrun_err_sys(err, errno, "open build directory");
    if (!streq(o->context, "-")) {
        b->ctxfd = open(o->context, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (b->ctxfd < 0)
            return chrun_err_sys(err, errno, "build context '%s'", o->context);
    }
    return 0;
}

int chrun_build(struct chrun_store *st, const struct chrun_build_opts *opts,
                struct chrun_digest *ret, struct chrun_err *err)
{
    struct builder b;
    struct stage *target = NULL;
    int rc = builder_init(&b, st, opts, err);
    if (rc == 0)
        rc = load_dockerfile(&b, err);
    if (rc == 0)
        rc = load_ignore(&b, err);
    if (rc == 0)
        rc = split_stages(&b, err);
    if (rc == 0)
        rc = find_target(&b, &target, err);
    if (rc == 0)
        rc = set_epoch(&b, target, err);
    if (rc == 0)
        rc = build_stage(&b, target, err);
    if (rc == 0)
        rc = finish_image(&b, target, ret, err);
    for (size_t i = 0; rc == 0 && i < opts->n_build_args; i++)
        if (!b.used_args[i])
            chrun_log_warn("build argument '%s' was not consumed by any ARG",
                           opts->build_args[i]);
    builder_release(&b);
    return rc;
}
