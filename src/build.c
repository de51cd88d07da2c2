/* chrun_build: Dockerfile -> layers, config and manifest in the store (see
 * include/chrun/build.h): variables and ARG scoping, the stages and their
 * root filesystems, filesystem steps and the step-cache chain, FROM, the
 * instruction loop and setup. */
#include "chrun/build.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chrun/image-config.h"
#include "build-internal.h"

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

struct var *build_vars_find(const struct vars *vs, const char *name)
{
    for (size_t i = vs->n; i-- > 0;)
        if (streq(vs->v[i].name, name))
            return &vs->v[i];
    return NULL;
}

int build_vars_set(struct vars *vs, const char *name, const char *value, struct chrun_err *err)
{
    struct var *v = build_vars_find(vs, name);
    char *val = value ? strdup(value) : NULL;
    if (value != NULL && val == NULL)
        return chrun_err_sys(err, ENOMEM, "build");
    if (v != NULL) {
        free(v->value);
        v->value = val;
        return 0;
    }
    if (chrun_grow(&vs->v, &vs->cap, vs->n + 1, sizeof(*vs->v), err) < 0 ||
        (vs->v[vs->n].name = strdup(name)) == NULL) {
        free(val);
        return chrun_err_sys(err, ENOMEM, "build");
    }
    vs->v[vs->n++].value = val;
    return 0;
}

/* ENV value of NAME in the config, or NULL. */
const char *build_env_value(struct stage *s, const char *name)
{
    json_t *env = build_cfg_get(s, "Env"), *v;
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
const char *build_lookup(void *data, const char *name)
{
    struct builder *b = data;
    const char *e;
    struct var *v;
    if (b->cur == NULL) {
        v = build_vars_find(&b->meta, name);
        return v ? v->value : NULL;
    }
    e = build_env_value(b->cur, name);
    if (e != NULL)
        return e;
    v = build_vars_find(&b->cur->args, name);
    return v ? v->value : NULL;
}

int build_words(struct builder *b, const char *s, bool split, char ***ret, size_t *ret_n,
                struct chrun_err *err)
{
    return chrun_dockerfile_words_escape(s, b->df.escape, build_lookup, b, split, ret, ret_n, err);
}

/* S substituted as one word: a new string (free), or NULL with ERR set. */
char *build_word1(struct builder *b, const char *s, struct chrun_err *err)
{
    char **w = NULL, *out;
    size_t n = 0;
    if (build_words(b, s, false, &w, &n, err) < 0)
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
const struct chrun_copy_filter *build_context_filter(struct builder *b)
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
const char *build_arg(struct builder *b, const char *name)
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
int build_materialize(struct builder *b, struct stage *s, struct chrun_err *err)
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
            rc = chrun_digest_parse(&diff_id,
                                    json_string_value(json_array_get(build_diff_ids(s), i)) ?: "",
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


static int run_and_diff(struct builder *b, struct stage *s, const struct step_ops *ops,
                        void *data, struct chrun_changeset_layer *l, struct chrun_err *err)
{
    struct chrun_snapshot *before = NULL, *after = NULL;
    int rc = ops->prepare ? ops->prepare(b, s, data, err) : 0;
    bool prepared = rc == 0;
    double start_ms = 0, before_ms = 0, after_ms = 0;
    if (rc == 0 && ops->run_layer)
        rc = ops->run_layer(b, s, data, l, err);
    if (rc == 0) {
        before_ms = start_ms = monotonic_ms();
        if ((before = chrun_snapshot_take(s->rootfd, err)) == NULL)
            rc = -1;
        before_ms = monotonic_ms() - before_ms;
    }
    if (rc == 0)
        rc = ops->run(b, s, data, err);
    if (rc == 0) {
        after_ms = monotonic_ms();
        if ((after = chrun_snapshot_take(s->rootfd, err)) == NULL)
            rc = -1;
    }
    if (rc == 0)
        rc = chrun_changeset_write_layer(b->st, s->rootfd, before, after, b->epoch, l, err);
    if (rc == 0 && before != NULL)
        chrun_log_debug("step diff: full walk, %.1f ms (step %.1f ms)",
                        before_ms + monotonic_ms() - after_ms, monotonic_ms() - start_ms);
    if (prepared && ops->cleanup)
        ops->cleanup(b, s, data);
    chrun_snapshot_free(before);
    chrun_snapshot_free(after);
    return rc; /* 1: RUN_LAYER did the step, the rootfs does not hold its layer yet */
}

/* One filesystem-changing step: from the cache, or run OPS and diff. */
int build_fs_step(struct builder *b, struct stage *s, const char *text, const char *extra,
                  const struct step_ops *ops, void *data, struct chrun_err *err)
{
    struct chrun_digest key = s->chain;
    struct chrun_changeset_layer l;
    bool hit;
    int ran = 0;
    if (chain_next(&key, text, extra, err) < 0)
        return -1;
    hit = !b->opts->no_cache && chrun_build_cache_get(b->st, &key, &l);
    if (hit) {
        chrun_log_info("%s: using cache", text);
    } else {
        chrun_log_debug("%s: running (cache key %s)", text, key.str);
        if (build_materialize(b, s, err) < 0 ||
            (ran = run_and_diff(b, s, ops, data, &l, err)) < 0 ||
            chrun_build_cache_put(b->st, &key, &l, err) < 0)
            return -1;
    }
    if (!l.empty &&
        build_add_layer(s, CHRUN_MT_OCI_LAYER_GZIP, &l.digest, l.size, &l.diff_id, err) < 0)
        return -1;
    if (build_add_history(b, s, text, l.empty, err) < 0)
        return -1;
    if (!hit && !l.empty && ran == 0)
        s->applied++; /* the rootfs already holds what the layer says */
    s->chain = key;
    return chain_next(&s->chain, "layer", l.empty ? "empty" : l.diff_id.str, err);
}

/* A metadata-only step: history (TEXT) and the cache chain (TEXT, EXTRA). */
static int meta_step(struct builder *b, struct stage *s, const char *text, const char *extra,
                     struct chrun_err *err)
{
    if (build_add_history(b, s, text, true, err) < 0)
        return -1;
    return chain_next(&s->chain, text, extra, err);
}

/* A new scratch file or directory name under the builder's tmp directory. */
void build_scratch_name(struct builder *b, const char *what, char *buf, size_t size)
{
    snprintf(buf, size, "%s-%u", what, b->tmp_seq++);
}

/* ---- stages ---------------------------------------------------------------------- */

static int build_stage(struct builder *b, struct stage *s, struct chrun_err *err);

bool build_all_digits(const char *s)
{
    return *s != '\0' && strspn(s, "0123456789") == strlen(s);
}

/* The stage a --from=VALUE of stage S names: a stage name (any case), an
 * index, or else an image reference from the store (an implicit stage). The
 * stage is built (through the cache) before it is returned. */
int build_resolve_from(struct builder *b, struct stage *s, const char *flag, const char *value,
                       struct stage **ret, struct chrun_err *err)
{
    cleanup_free char *v = build_word1(b, value, err);
    struct stage *found = NULL, *p;
    if (v == NULL)
        return -1;
    if (*v == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "%s names no stage or image", flag);
    if (build_all_digits(v)) {
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
        if (p == NULL ||
            chrun_grow(&b->stages, &b->cap_stages, b->n_stages + 1, sizeof(*b->stages), err) < 0) {
            free(p);
            return chrun_err_sys(err, ENOMEM, "build");
        }
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
        rc = build_add_layer(s, mt, &m.layers[i].digest, m.layers[i].size, &c.diff_ids[i], err);
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
    json_t *ob = build_cfg_get(s, "OnBuild"), *v;
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
    name = build_word1(b, in->args, err);
    if (name != NULL && platform != NULL && (plat = build_word1(b, platform, err)) == NULL)
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
    case CHRUN_DF_RUN: return build_do_run(b, s, in, err);
    case CHRUN_DF_COPY:
    case CHRUN_DF_ADD: return build_do_copy(b, s, in, err);
    case CHRUN_DF_WORKDIR: return build_do_workdir(b, s, in, err);
    default: rc = build_do_metadata(b, s, in, err); break;
    }
    if (rc < 0 || b->cur == NULL)
        return rc;
    /* ARG values are part of the state later steps see */
    if ((text = build_instr_text(in, in->args)) == NULL)
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
        name = build_word1(b, in->args, &ignored);
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
            /* O_PATH first: a FIFO or device of the tar is never opened */
            cleanup_close int pfd = chrun_fs_open_in_root(b->ctxfd, b->dfpath, O_PATH, 0, err);
            fd = pfd < 0 ? -1 : chrun_fs_reopen_regular(pfd, O_RDONLY, err);
            if (pfd >= 0 && fd < 0)
                chrun_err_prefix(err, "Dockerfile '%s'", b->dfpath);
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
    b->cap_stages = n;
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
            if (build_vars_set(&b->meta, name, vals[j], err) < 0)
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
        rc = build_finish_image(&b, target, ret, err);
    for (size_t i = 0; rc == 0 && i < opts->n_build_args; i++)
        if (!b.used_args[i])
            chrun_log_warn("build argument '%s' was not consumed by any ARG",
                           opts->build_args[i]);
    builder_release(&b);
    return rc;
}
