#include "chrun/registry.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <pthread.h>

#include "chrun/auth.h"
#include "chrun/bundle.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/progress.h"
#include "chrun/ref.h"
#include "chrun/sink.h"
#include "chrun/store.h"
#include "chrun/tree.h"
#include "chrun/tool.h"
#include "chrun/userns.h"
#include "chrun/walk.h"
#include "attach-pull.h"
#include "cleanup.h"
#include "pull.h"
#include "registry-client.h"
#include "util.h"

#define ACCEPT_MANIFESTS                                                                           \
    "Accept: " CHRUN_MT_OCI_INDEX ", " CHRUN_MT_DOCKER_LIST ", " CHRUN_MT_OCI_MANIFEST            \
    ", " CHRUN_MT_DOCKER_MANIFEST

/* Manifests */

static void plan_release(struct plan *p)
{
    for (size_t i = 0; i < p->n_manifests; i++)
        free(p->manifests[i].buf);
    free(p->manifests);
    free(p->blobs);
    memset(p, 0, sizeof(*p));
}

static const struct fetched *plan_find_manifest(const struct plan *p,
                                                const struct chrun_digest *d)
{
    for (size_t i = 0; i < p->n_manifests; i++)
        if (streq(p->manifests[i].digest.str, d->str))
            return &p->manifests[i];
    return NULL;
}

static int plan_add_blob(struct plan *p, struct registry_client *c,
                         const struct chrun_descriptor *d,
                         struct chrun_err *err)
{
    /* the walk visits each blob once and refuses one listed with two sizes */
    if (chrun_store_has_blob(c->st, &d->digest)) {
        if (c->progress != NULL) {
            int bar = chrun_progress_add(c->progress, chrun_digest_hex(&d->digest), 0);
            chrun_progress_update(c->progress, bar, 0, "Already exists");
        }
        return 0;
    }
    if (chrun_grow(&p->blobs, &p->cap_blobs, p->n_blobs + 1, sizeof(*p->blobs), err) < 0)
        return chrun_err_prefix(err, "pull plan");
    p->blobs[p->n_blobs++] = *d;
    return 0;
}

static int plan_add_manifest(struct plan *p, struct fetched *f, struct chrun_err *err)
{
    if (chrun_grow(&p->manifests, &p->cap_manifests, p->n_manifests + 1, sizeof(*p->manifests),
                   err) < 0)
        return chrun_err_prefix(err, "pull plan");
    p->manifests[p->n_manifests++] = *f;
    memset(f, 0, sizeof(*f));
    return 0;
}

/* Check the reply R to a GET of manifest WHAT (see fetch_manifest) and move
 * its body to RET. */
static int take_manifest(struct registry_client *c, struct registry_reply *r, const char *what,
                         const char *label, const struct chrun_digest *expected,
                         int64_t expected_size, struct fetched *ret, struct chrun_err *err)
{
    struct chrun_digest actual;

    if (r->resp.status == 404) {
        if (registry_ping(c, err) == 0)
            chrun_err_set(err, CHRUN_E_NOTFOUND, "manifest unknown: %s", label);
        return -1;
    }
    if (r->resp.status != 200)
        return chrun_err_set(err, CHRUN_E_NETWORK, "%s: registry %s answered HTTP %ld", what,
                             c->host, r->resp.status);
    if (r->body == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "%s: empty reply", what);
    if (chrun_digest_of_buffer(&actual, r->body, r->len, err) < 0)
        return -1;
    if (expected != NULL && !streq(expected->str, actual.str))
        return chrun_err_set(err, CHRUN_E_DIGEST, "%s: digest mismatch: content is %s", what,
                             actual.str);
    if (r->resp.docker_digest[0] && str_has_prefix(r->resp.docker_digest, "sha256:") &&
        !streq(r->resp.docker_digest, actual.str)) {
        chrun_sanitize(r->resp.docker_digest);
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "%s: Docker-Content-Digest %.80s does not match the content (%s)",
                             what, r->resp.docker_digest, actual.str);
    }
    if (expected_size >= 0 && (int64_t) r->len != expected_size)
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "%s: size mismatch: got %zu bytes, descriptor says %" PRId64, what,
                             r->len, expected_size);
    ret->buf = take_ptr(r->body);
    ret->len = r->len;
    ret->digest = actual;
    snprintf(ret->media_type, sizeof(ret->media_type), "%s", r->resp.content_type);
    chrun_sanitize(ret->media_type);
    return 0;
}

/* GET a manifest by tag or digest and check it: size cap while streaming,
 * the computed digest against EXPECTED (may be NULL) and against
 * Docker-Content-Digest, the length against EXPECTED_SIZE (-1: unknown). */
static int fetch_manifest(struct registry_client *c, const char *reference, const char *label,
                          const struct chrun_digest *expected, int64_t expected_size,
                          struct fetched *ret, struct chrun_err *err)
{
    char url[REGISTRY_URL_MAX * 2], what[2 * CHRUN_REF_NAME_MAX + CHRUN_DIGEST_STR_MAX + 32];
    struct registry_reply r = {0};
    struct registry_req rq = {.what = what, .url = url, .accept = ACCEPT_MANIFESTS,
                         .max = CHRUN_MANIFEST_MAX};
    int rc;

    memset(ret, 0, sizeof(*ret));
    snprintf(url, sizeof(url), "%s/v2/%s/manifests/%s", c->base, c->repo, reference);
    snprintf(what, sizeof(what), "manifest %s", label);
    rc = registry_request(c, &rq, &r, err);
    if (rc == 0)
        rc = take_manifest(c, &r, what, label, expected, expected_size, ret, err);
    registry_reply_release(&r);
    return rc;
}

/* A copy of LEN bytes at BUF in *RET_BUF (malloc'd). */
static int copy_bytes(const char *buf, size_t len, char **ret_buf, size_t *ret_len,
                      struct chrun_err *err)
{
    *ret_buf = malloc(len ? len : 1);
    if (*ret_buf == NULL)
        return chrun_err_sys(err, ENOMEM, "pull plan");
    memcpy(*ret_buf, buf, len);
    *ret_len = len;
    return 0;
}

/* The document descriptor D names (or the top REFERENCE when D has no
 * digest): from the store, from this pull's fetched set, or from the
 * registry; *RET_BUF gets a copy (free) and RET_DIGEST its digest. RET_TYPE
 * (CHRUN_MEDIA_TYPE_MAX) gets the registry's Content-Type when fetched. */
static int get_document(struct registry_client *c, struct plan *p, const char *reference,
                        const struct chrun_descriptor *d, char **ret_buf, size_t *ret_len,
                        struct chrun_digest *ret_digest, char *ret_type, struct chrun_err *err)
{
    const struct fetched *have;
    struct fetched f;
    char label[2 * CHRUN_REF_NAME_MAX + CHRUN_DIGEST_STR_MAX + 8];
    bool pinned = d != NULL && d->digest.str[0] != '\0';
    int rc;

    ret_type[0] = '\0';
    if (pinned && chrun_store_has_blob(c->st, &d->digest)) {
        if (chrun_store_read_blob(c->st, &d->digest, CHRUN_MANIFEST_MAX, ret_buf, ret_len,
                                  err) < 0)
            return -1;
        if (d->size >= 0 && (int64_t) *ret_len != d->size) {
            free(*ret_buf);
            return chrun_err_set(err, CHRUN_E_DIGEST,
                                 "manifest %s: size mismatch: %zu bytes, descriptor says %" PRId64,
                                 d->digest.str, *ret_len, d->size);
        }
        *ret_digest = d->digest;
        return 0;
    }
    if (pinned && (have = plan_find_manifest(p, &d->digest)) != NULL) {
        *ret_digest = d->digest;
        return copy_bytes(have->buf, have->len, ret_buf, ret_len, err);
    }
    if (pinned && reference == NULL) {
        snprintf(label, sizeof(label), "%s/%s@%s", c->registry, c->repo, d->digest.str);
        reference = d->digest.str;
    } else {
        snprintf(label, sizeof(label), "%s", c->display);
    }
    pull_share_wait_slot(p->share);
    rc = fetch_manifest(c, reference, label, pinned ? &d->digest : NULL, pinned ? d->size : -1, &f,
                        err);
    pull_share_give_slot(p->share);
    if (rc < 0)
        return -1;
    *ret_digest = f.digest;
    snprintf(ret_type, CHRUN_MEDIA_TYPE_MAX, "%s", f.media_type);
    if (copy_bytes(f.buf, f.len, ret_buf, ret_len, err) < 0 ||
        /* a re-pull by tag: the store has it already */
        (!chrun_store_has_blob(c->st, &f.digest) && plan_add_manifest(p, &f, err) < 0)) {
        free(f.buf);
        return -1;
    }
    free(f.buf);
    return 0;
}

/* The walk of a pull: documents through get_document; the chosen platform
 * of each index (or all of them); the blobs the store lacks into the plan. */
struct planner {
    struct registry_client *c;
    struct plan *p;
    const struct chrun_pull_opts *opts;
};

static int plan_read(void *ctx, const struct chrun_walk_node *n, char **ret_buf,
                     size_t *ret_len, struct chrun_err *err)
{
    struct planner *pl = ctx;
    struct chrun_digest got;
    char type[CHRUN_MEDIA_TYPE_MAX];
    return get_document(pl->c, pl->p, NULL, n->desc, ret_buf, ret_len, &got, type, err);
}

static void plan_result(struct plan *p, const struct chrun_descriptor *d)
{
    if (!p->have_result) {
        p->result = *d;
        p->have_result = true;
    }
}

static int plan_visit(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct planner *pl = ctx;
    struct chrun_descriptor sel;

    switch (n->kind) {
    case CHRUN_WALK_CONFIG:
    case CHRUN_WALK_LAYER: return plan_add_blob(pl->p, pl->c, n->desc, err);
    case CHRUN_WALK_OTHER: return CHRUN_WALK_SKIP; /* attestations and other artifacts */
    default: break;
    }
    if (n->parent != NULL && !pl->opts->all_platforms) {
        if (chrun_manifest_select_platform(n->parent->m, pl->opts->platform, &sel, err) < 0)
            return chrun_err_prefix(err, "%s", pl->c->display);
        if (!streq(sel.digest.str, n->desc->digest.str))
            return CHRUN_WALK_SKIP;
    }
    if (n->kind == CHRUN_WALK_MANIFEST || pl->opts->all_platforms)
        plan_result(pl->p, n->desc);
    return CHRUN_WALK_CONTINUE;
}

/* An index none of whose entries is for the platform names what it offers. */
static int plan_leave(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct planner *pl = ctx;
    struct chrun_descriptor sel;
    if (!n->m->is_index || pl->p->have_result)
        return 0;
    if (chrun_manifest_select_platform(n->m, pl->opts->platform, &sel, err) < 0)
        return chrun_err_prefix(err, "%s", pl->c->display);
    return chrun_err_set(err, CHRUN_E_INPUT, "%s: index %s: entry %s is no image manifest",
                         pl->c->display, n->desc->digest.str, sel.digest.str);
}

/* Fetch the manifest REFERENCE names and walk it: P gets the blobs to fetch
 * and the descriptor REF will name. */
static int plan_pull(struct registry_client *c, struct plan *p, const char *reference,
                     const struct chrun_descriptor *pin, const struct chrun_pull_opts *opts,
                     struct chrun_err *err)
{
    static const struct chrun_walk_ops ops = {plan_read, plan_visit, plan_leave};
    struct planner pl = {c, p, opts};
    cleanup_free char *buf = NULL;
    char type[CHRUN_MEDIA_TYPE_MAX];
    struct chrun_descriptor top;
    struct chrun_manifest m;
    struct chrun_walk w;
    size_t len;
    int rc;

    memset(&top, 0, sizeof(top));
    if (get_document(c, p, reference, pin, &buf, &len, &top.digest, type, err) < 0)
        return -1;
    /* The descriptor's type is authoritative; a registry's Content-Type
     * (often application/json) only helps when there is none. */
    if (chrun_manifest_parse(&m, buf, len, pin->media_type[0] ? pin->media_type : type, err) < 0)
        return chrun_err_prefix(err, "manifest %s",
                                pin->digest.str[0] ? pin->digest.str : c->display);
    snprintf(top.media_type, sizeof(top.media_type), "%s", m.media_type);
    top.size = (int64_t) len;
    chrun_manifest_release(&m);
    chrun_walk_init(&w, &ops, &pl, CHRUN_WALK_BOUNDED);
    rc = chrun_walk_from(&w, &top, err);
    chrun_walk_release(&w);
    return rc;
}

/* An ordinary user with subordinate ids who wants a tree or bundle: move
 * this process, still single-threaded, into a user namespace with that
 * mapping, as chrun_bundle_unpack's child does, so that the layers get
 * their owners while they download. The store is open already (its
 * default path is the caller's). */
static int enter_userns(const struct chrun_pull_opts *opts, struct chrun_err *err)
{
    struct chrun_idmap map;
    char text[CHRUN_IDMAP_STR_MAX];
    if ((!opts->tree && !opts->unpack) || geteuid() == 0)
        return 0;
    chrun_idmap_load(&map);
    if (!map.subids)
        return 0;
    chrun_idmap_format(&map, text, sizeof(text));
    chrun_log_debug("pulling in a user namespace: %s", text);
    return chrun_userns_enter(&map, err);
}

/* With opts->tree or opts->unpack: start making the tree or bundle of the
 * image P names while its blobs download, or leave *RET_FEED NULL when that
 * does not apply. A bundle that cannot be made at opts->bundle fails here,
 * before any download. */
static int feed_begin(struct registry_client *c, struct plan *p,
                      const struct chrun_pull_opts *opts, struct pull_share *share,
                      struct pull_feed **ret_feed, struct chrun_err *err)
{
    const struct chrun_descriptor *r = &p->result;
    const struct fetched *f;
    struct chrun_bundle_staging *bs = NULL;
    cleanup_free char *buf = NULL;
    size_t len = 0;
    int rc;

    *ret_feed = NULL;
    /* the process applies layers itself: as root, as root of the user
     * namespace chrun_registry_pull entered for an ordinary user with
     * subordinate ids, or as an ordinary user without them (whose files
     * are all its own) */
    if ((!opts->tree && !opts->unpack) || share != NULL || opts->all_platforms ||
        chrun_manifest_type_is_index(r->media_type))
        return 0;
    if (opts->unpack) {
        rc = chrun_bundle_staging_begin(c->st, opts->bundle, &r->digest, false, &bs, err);
        if (rc != 0)
            return rc < 0 ? -1 : 0; /* refused, or there already */
    } else if (chrun_tree_exists(c->st, &r->digest)) {
        return 0;
    }
    f = plan_find_manifest(p, &r->digest);
    if (f == NULL &&
        chrun_store_read_blob(c->st, &r->digest, CHRUN_MANIFEST_MAX, &buf, &len, err) < 0) {
        chrun_bundle_staging_free(bs);
        return -1;
    }
    *ret_feed = pull_feed_start(c->st, &r->digest, f ? f->buf : buf, f ? f->len : len,
                                r->media_type, p->blobs, p->n_blobs, bs, c->display, err);
    if (*ret_feed == NULL) {
        /* made from the store after the pull instead */
        chrun_log_debug("%s of %s not made while downloading: %s", opts->unpack ? "bundle" : "tree",
                        r->digest.str, err->msg);
        chrun_err_clear(err);
    }
    return 0;
}

/* chrun_bundle_unpack of manifest (or index) MD into opts->bundle. */
static int unpack_stored(struct chrun_store *st, const struct chrun_digest *md,
                         const struct chrun_pull_opts *opts, struct chrun_err *err)
{
    struct chrun_unpack_opts uo = CHRUN_UNPACK_OPTS_INIT;
    char path[PATH_MAX];
    uo.platform = opts->platform;
    return chrun_bundle_unpack(st, md->str, opts->bundle, &uo, path, sizeof(path), err);
}

static void feed_free_fn(struct pull_feed **feed)
{
    pull_feed_free(*feed);
}
#define cleanup_feed __attribute__((cleanup(feed_free_fn)))

/* One endpoint: resolve, download, publish, name. */
static int pull_from(struct registry_client *c, const struct chrun_ref *ref,
                     const struct chrun_pull_opts *opts, struct pull_share *share,
                     struct chrun_digest *ret_digest, struct chrun_err *err)
{
    struct plan p = {.share = share};
    cleanup_feed struct pull_feed *feed = NULL;
    struct chrun_descriptor pin;
    int rc;

    memset(&pin, 0, sizeof(pin));
    pin.size = -1;
    if (ref->digest[0] && chrun_digest_parse(&pin.digest, ref->digest, err) < 0)
        return -1;
    rc = plan_pull(c, &p, ref->digest[0] ? ref->digest : ref->tag, &pin, opts, err);
    if (rc == 0)
        rc = feed_begin(c, &p, opts, share, &feed, err);
    if (rc == 0)
        rc = pull_fetch_blobs(c, &p, share, feed, err);
    /* manifests after their blobs, so a stored manifest is always complete */
    for (size_t i = 0; rc == 0 && i < p.n_manifests; i++)
        rc = chrun_store_put_blob(c->st, p.manifests[i].buf, p.manifests[i].len,
                                  &p.manifests[i].digest, NULL, err);
    /* what is attached is fetched before the name, so a refused one leaves no name */
    if (rc == 0 && opts->signatures)
        rc = attach_pull(c, &p.result.digest, err);
    if (rc == 0)
        rc = chrun_store_tag(c->st, c->display, p.result.media_type, &p.result.digest,
                             p.result.size, err);
    /* the tree or bundle last: it exists only for a stored image */
    if (rc == 0)
        rc = pull_feed_finish(feed, true, err);
    /* a bundle not made while downloading is made now (at once when it was) */
    if (rc == 0 && opts->unpack)
        rc = unpack_stored(c->st, &p.result.digest, opts, err);
    if (rc == 0)
        *ret_digest = p.result.digest;
    plan_release(&p);
    return rc;
}

int chrun_registry_platform_check(const char *platform, struct chrun_err *err)
{
    const char *slash;
    if (platform == NULL)
        return 0;
    slash = strchr(platform, '/');
    if (slash == NULL || slash == platform || slash[1] == '\0' || slash[1] == '/' ||
        strlen(platform) > 95)
        return chrun_err_set(err, CHRUN_E_USAGE, "invalid platform '%.96s': want os/arch[/variant]",
                             platform);
    slash = strchr(slash + 1, '/');
    if (slash != NULL && (slash[1] == '\0' || strchr(slash + 1, '/') != NULL))
        return chrun_err_set(err, CHRUN_E_USAGE, "invalid platform '%.96s': want os/arch[/variant]",
                             platform);
    return 0;
}

static int pull_endpoint(struct chrun_store *st, const char *base, const char *host,
                         const char *registry, const struct chrun_ref *ref,
                         const struct chrun_pull_opts *opts, struct chrun_progress *progress,
                         struct pull_share *share, struct chrun_digest *ret_digest,
                         struct chrun_err *err)
{
    struct registry_client *c =
        registry_client_create(st, base, host, registry, ref, opts->jobs, opts->settings, err);
    int rc;
    if (c == NULL)
        return -1;
    c->progress = progress;
    rc = pull_from(c, ref, opts, share, ret_digest, err);
    registry_client_free(c);
    return rc;
}

/* Pull REF (parsed) from its mirrors or its registry; curl is initialized. */
static int pull_ref(struct chrun_store *st, const struct chrun_ref *ref,
                    const struct chrun_pull_opts *opts, struct chrun_progress *progress,
                    struct pull_share *share, struct chrun_digest *ret_digest,
                    struct chrun_err *err)
{
    char base[CHRUN_REF_NAME_MAX + 16], host[CHRUN_REF_NAME_MAX + 1];
    const struct chrun_settings *settings = chrun_settings_or_defaults(opts->settings);
    const char *mirrors = settings->mirrors;

    /* SPEC "Mirrors": docker.io images try each mirror first, as docker's
     * registry-mirrors; any failure there falls through to the next. */
    if (streq(ref->domain, "docker.io") && mirrors != NULL && *mirrors) {
        cleanup_free char *list = strdup(mirrors);
        char *save = NULL;
        if (list == NULL)
            return chrun_err_sys(err, ENOMEM, "mirrors");
        for (char *m = strtok_r(list, ",", &save); m != NULL; m = strtok_r(NULL, ",", &save)) {
            struct chrun_err merr = CHRUN_ERR_INIT;
            char line[CHRUN_ERR_MSG_MAX + 64];
            if (chrun_registry_mirror_url(m, settings, base, sizeof(base), host, sizeof(host),
                                          &merr) == 0) {
                if (pull_endpoint(st, base, host, host, ref, opts, progress, share, ret_digest,
                                  &merr) == 0)
                    return 0;
                /* messages name the docker.io reference: say which mirror failed */
                chrun_err_prefix(&merr, "%s", host);
            }
            if (merr.code == CHRUN_E_SYS && merr.errnum != 0) {
                *err = merr; /* a local failure: another endpoint will not help */
                return -1;
            }
            chrun_log_warn("mirror: %s; trying the next source",
                           chrun_err_format(&merr, line, sizeof(line)));
        }
    }
    snprintf(host, sizeof(host), "%s", chrun_ref_registry_host(ref));
    snprintf(base, sizeof(base), "%s://%s",
             chrun_settings_host_insecure(settings, host) ? "http" : "https", host);
    return pull_endpoint(st, base, host, ref->domain, ref, opts, progress, share, ret_digest,
                         err);
}

int chrun_registry_pull(struct chrun_store *st, const char *ref_s,
                        const struct chrun_pull_opts *opts, struct chrun_digest *ret_digest,
                        struct chrun_err *err)
{
    static const struct chrun_pull_opts defaults = CHRUN_PULL_OPTS_INIT;
    struct chrun_ref ref;
    struct chrun_progress *progress = NULL;
    int rc;

    if (opts == NULL)
        opts = &defaults;
    if (chrun_ref_parse(&ref, ref_s, err) < 0 || chrun_registry_platform_check(opts->platform, err) < 0)
        return -1;
    if (opts->tree && opts->unpack)
        return chrun_err_set(err, CHRUN_E_USAGE, "a tree and a bundle exclude each other");
    if (enter_userns(opts, err) < 0)
        return -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return chrun_err_set(err, CHRUN_E_SYS, "curl initialisation failed");
    if (opts->progress && !chrun_log_quiet())
        progress = chrun_progress_new(true);
    rc = pull_ref(st, &ref, opts, progress, NULL, ret_digest, err);
    chrun_progress_free(progress);
    curl_global_cleanup();
    return rc;
}

/* chrun_registry_pull_many: worker threads take the next image in turn. */
struct pull_pool {
    struct chrun_store *st;
    const struct chrun_pull_opts *opts;
    struct pull_share *share;
    const struct chrun_ref *refs;
    struct chrun_pull_result *results;
    size_t n, next; /* next under share->mu */
};

static void *pull_worker(void *arg)
{
    struct pull_pool *pool = arg;
    for (;;) {
        size_t i;
        pthread_mutex_lock(&pool->share->mu);
        i = pool->next++;
        pthread_mutex_unlock(&pool->share->mu);
        if (i >= pool->n)
            return NULL;
        if (pool->results[i].rc == 0)
            pool->results[i].rc = pull_ref(pool->st, &pool->refs[i], pool->opts, NULL,
                                           pool->share, &pool->results[i].digest,
                                           &pool->results[i].err);
    }
}

int chrun_registry_pull_many(struct chrun_store *st, const char *const *refs, size_t n,
                             const struct chrun_pull_opts *opts, struct chrun_pull_result *ret,
                             struct chrun_err *err)
{
    static const struct chrun_pull_opts defaults = CHRUN_PULL_OPTS_INIT;
    cleanup_free struct chrun_ref *parsed = NULL;
    pthread_t threads[CHRUN_PULL_JOBS_MAX];
    struct pull_share share = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    struct pull_pool pool = {.st = st, .share = &share, .results = ret, .n = n};
    size_t n_failed = 0, n_threads = 0, want;
    int jobs;

    if (opts == NULL)
        opts = &defaults;
    pool.opts = opts;
    if (chrun_registry_platform_check(opts->platform, err) < 0)
        return -1;
    if (opts->unpack) {
        chrun_err_set(err, CHRUN_E_USAGE, "unpacking takes one image, not %zu", n);
        for (size_t i = 0; i < n; i++)
            ret[i] = (struct chrun_pull_result){.rc = -1, .err = *err};
        return -1;
    }
    parsed = calloc(n ? n : 1, sizeof(*parsed));
    if (parsed == NULL)
        return chrun_err_sys(err, ENOMEM, "pull");
    pool.refs = parsed;
    for (size_t i = 0; i < n; i++) {
        memset(&ret[i], 0, sizeof(ret[i]));
        ret[i].rc = chrun_ref_parse(&parsed[i], refs[i], &ret[i].err);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return chrun_err_set(err, CHRUN_E_SYS, "curl initialisation failed");
    /* connections are counted across images: as many images at once as
     * there are connections, each holding one at least for its manifests */
    jobs = opts->jobs > 0 ? opts->jobs : CHRUN_PULL_JOBS_DEFAULT;
    share.free_slots = jobs;
    want = n < (size_t) jobs ? n : (size_t) jobs;
    while (n_threads < want && pthread_create(&threads[n_threads], NULL, pull_worker, &pool) == 0)
        n_threads++;
    if (n_threads == 0)
        pull_worker(&pool); /* no thread to be had: one at a time, here */
    for (size_t i = 0; i < n_threads; i++)
        pthread_join(threads[i], NULL);
    curl_global_cleanup();
    free(share.claims);
    pthread_mutex_destroy(&share.mu);
    pthread_cond_destroy(&share.cv);
    for (size_t i = 0; i < n; i++)
        if (ret[i].rc < 0) {
            chrun_err_prefix(&ret[i].err, "'%s'", refs[i]);
            n_failed++;
        }
    if (n_failed > 0)
        return chrun_err_set(err, ret[0].err.code ? ret[0].err.code : CHRUN_E_NETWORK,
                             "%zu of %zu images failed", n_failed, n);
    return 0;
}
