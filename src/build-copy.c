/* chrun-build: COPY, ADD (context, stages, URLs, heredocs) and WORKDIR. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/user.h"
#include "build-internal.h"

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
        if (build_materialize(b, cs->from, err) < 0)
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
    const struct chrun_settings *settings; /* timeouts and size cap, from the build opts */
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
        if (chrun_fetch_url(u->urls[i], u->checksum, dfd, "download.part", u->settings, &r,
                            err) < 0)
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
    static const struct step_ops ops = {NULL, url_fn, NULL, NULL};
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
    u.settings = b->opts->settings;
    if (u.checksum != NULL && n != 2)
        return chrun_err_set(err, CHRUN_E_INPUT, "ADD --checksum takes exactly one URL source");
    if ((v = chrun_df_instr_flag(in, "chmod")) != NULL && parse_chmod(v, &u.cs.c, err) < 0)
        return -1;
    if ((v = chrun_df_instr_flag(in, "chown")) != NULL &&
        (u.cs.chown = build_word1(b, v, err)) == NULL)
        return -1;
    /* the URLs as written: fetch_urls replaces the sources with local names */
    urls = calloc(n, sizeof(char *));
    if (urls == NULL)
        rc = chrun_err_sys(err, ENOMEM, "build");
    for (size_t i = 0; rc == 0 && i + 1 < n; i++)
        if ((urls[i] = strdup(w[i])) == NULL)
            rc = chrun_err_sys(err, ENOMEM, "build");
    u.urls = urls;
    build_scratch_name(b, "add-url", dir, sizeof(dir));
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
    if (rc == 0 && (text = build_instr_text(in, args)) == NULL)
        rc = chrun_err_sys(err, ENOMEM, "build");
    if (rc == 0)
        rc = build_fs_step(b, s, text, key, &ops, &u, err);
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
    } else if (build_words(b, in->args, true, ret, ret_n, err) < 0) {
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
    build_scratch_name(b, "heredoc", dir, sizeof(dir));
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
        if (h->expand ? chrun_dockerfile_expand_raw(h->body, build_lookup, b, &body, err) < 0
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
    if ((v = chrun_df_instr_flag(in, "chown")) != NULL &&
        (cs->chown = build_word1(b, v, err)) == NULL)
        return -1;
    if (chrun_df_instr_flag(in, "checksum") != NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "ADD --checksum is only valid with a URL source");
    if (in->n_heredocs > 0) {
        if (heredoc_sources(b, in, cs->srcs, cs->n, heredoc_fd, err) < 0 ||
            chrun_copy_hash(*heredoc_fd, cs->srcs, cs->n, NULL, &sources, err) < 0)
            return -1;
        cs->c.ctxfd = *heredoc_fd;
        cs->c.filter = NULL; /* .dockerignore is of the context only */
    } else if (from != NULL) {
        if (build_resolve_from(b, s, "COPY --from", from, &cs->from, err) < 0)
            return -1;
        sources = cs->from->chain;
        cs->c.filter = NULL;
    } else if (chrun_copy_hash(b->ctxfd, cs->srcs, cs->n, cs->c.filter, &sources, err) < 0) {
        return -1;
    }
    if (asprintf(extra, "%s %s", sources.str, in->n_heredocs > 0 ? "heredoc" : "") < 0)
        return chrun_err_sys(err, ENOMEM, "build");
    return 0;
}

int build_do_copy(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                  struct chrun_err *err)
{
    static const struct step_ops ops = {NULL, copy_fn, NULL, NULL};
    struct copy_step cs = {.c = {.ctxfd = b->ctxfd, .extract = in->kind == CHRUN_DF_ADD,
                                 .tmpfd = b->tmpfd, .filter = build_context_filter(b)}};
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
    dest = build_abs_path(s, w[n - 1]);
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
    if (rc == 0 && (text = build_instr_text(in, args)) == NULL)
        rc = chrun_err_sys(err, ENOMEM, "build");
    if (rc == 0) {
        cs.c.dest = dest;
        rc = build_fs_step(b, s, text, extra, &ops, &cs, err);
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

int build_do_workdir(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                     struct chrun_err *err)
{
    static const struct step_ops ops = {NULL, workdir_fn, NULL, NULL};
    json_t *config;
    cleanup_free char *path = NULL, *text = NULL, *w = build_word1(b, in->args, err);
    if (w == NULL)
        return -1;
    path = build_abs_path(s, w);
    if (path == NULL || asprintf(&text, "WORKDIR %s", path) < 0)
        return chrun_err_sys(err, ENOMEM, "build");
    if ((config = build_cfg(s, err)) == NULL ||
        build_set_str(config, "WorkingDir", path, "WORKDIR", err) < 0)
        return -1;
    return build_fs_step(b, s, text, NULL, &ops, path, err);
}
