#include "chrun/push.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "chrun/attach.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/progress.h"
#include "chrun/ref.h"
#include "chrun/registry.h"
#include "chrun/settings.h"
#include "chrun/walk.h"
#include "cleanup.h"
#include "attach-pull.h"
#include "registry-client.h"
#include "util.h"

#define OCTET_STREAM "Content-Type: application/octet-stream"

/* One push: the client, where blobs may be mounted from, what is done. */
struct pusher {
    struct registry_client *c;
    struct chrun_store *st;
    char mount_from[CHRUN_REF_NAME_MAX + 1]; /* repository on the same registry, or "" */
    uint64_t chunk_bytes;
    const char *top_reference; /* the tag (or digest) the root is pushed as */
};

static void pusher_release(struct pusher *p)
{
    registry_client_free(p->c);
    memset(p, 0, sizeof(*p));
}

/* Upload Locations */

/* LOCATION of reply R made absolute against the URL that answered (a
 * registry may send a path only), into BUF. SPEC "References": plain http
 * only where allowed. Returns 0 or -1. */
static int absolute_location(const struct pusher *p, const struct registry_reply *r,
                             const char *what, char *buf, size_t size, struct chrun_err *err)
{
    cleanup_curl_url CURLU *u = curl_url();
    cleanup_curl_str char *abs = NULL;
    bool ok;

    if (r->resp.location_too_long || r->resp.location[0] == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "%s: HTTP %ld without a usable Location", what,
                             r->resp.status);
    ok = u != NULL && curl_url_set(u, CURLUPART_URL, r->url, 0) == CURLUE_OK &&
         curl_url_set(u, CURLUPART_URL, r->resp.location, 0) == CURLUE_OK &&
         curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK && strlen(abs) < size;
    if (ok)
        snprintf(buf, size, "%s", abs);
    if (!ok)
        return chrun_err_set(err, CHRUN_E_INPUT, "%s: invalid Location '%.200s'", what,
                             r->resp.location);
    if (!chrun_registry_url_permitted(buf, &p->c->settings))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "%s: refusing upload Location '%.200s' (plain http to a host not "
                             "allowed insecure)",
                             what, buf);
    return 0;
}

/* LOCATION with "digest=D" added to its query, into BUF. */
static int location_with_digest(const char *location, const struct chrun_digest *d, char *buf,
                                size_t size, struct chrun_err *err)
{
    cleanup_curl_url CURLU *u = curl_url();
    cleanup_curl_str char *abs = NULL;
    char query[CHRUN_DIGEST_STR_MAX + 8];
    bool ok;

    snprintf(query, sizeof(query), "digest=%s", d->str);
    ok = u != NULL && curl_url_set(u, CURLUPART_URL, location, 0) == CURLUE_OK &&
         curl_url_set(u, CURLUPART_QUERY, query, CURLU_APPENDQUERY | CURLU_URLENCODE) ==
             CURLUE_OK &&
         curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK && strlen(abs) < size;
    if (ok)
        snprintf(buf, size, "%s", abs);
    return ok ? 0 : chrun_err_set(err, CHRUN_E_INPUT, "blob %s: upload URL too long", d->str);
}

/* "WHAT: H answered HTTP N[: CODE: message]" for an unexpected reply; H is
 * the host that answered (an upload Location may lead elsewhere). */
static int unexpected(const char *what, const struct registry_reply *r, struct chrun_err *err)
{
    char detail[300], host[REGISTRY_HOSTPORT_MAX];
    registry_reply_detail(r, detail, sizeof(detail));
    registry_url_hostport(r->url, host, sizeof(host));
    return chrun_err_set(err, CHRUN_E_NETWORK, "%s: %s answered HTTP %ld%s%s", what, host,
                         r->resp.status, detail[0] ? ": " : "", detail);
}

/* Blobs */

static int blob_exists(struct pusher *p, const struct chrun_digest *d, bool *ret_exists,
                       struct chrun_err *err)
{
    char url[REGISTRY_URL_MAX], what[CHRUN_DIGEST_STR_MAX + 16];
    struct registry_reply r = {0};
    struct registry_req rq = {.what = what, .url = url, .method = "HEAD",
                              .max = REGISTRY_ERROR_BODY_MAX};
    int rc = 0;

    snprintf(url, sizeof(url), "%s/v2/%s/blobs/%s", p->c->base, p->c->repo, d->str);
    snprintf(what, sizeof(what), "blob %s", d->str);
    if (registry_request(p->c, &rq, &r, err) < 0)
        rc = -1;
    else if (r.resp.status == 200 || r.resp.status == 404)
        *ret_exists = r.resp.status == 200;
    else
        rc = unexpected(what, &r, err);
    registry_reply_release(&r);
    return rc;
}

/* POST an upload session: *RET_MOUNTED when the registry mounted D from
 * p->mount_from instead (201), else the session's URL in LOCATION. */
static int start_upload(struct pusher *p, const struct chrun_digest *d, bool try_mount,
                        bool *ret_mounted, char *location, size_t size, struct chrun_err *err)
{
    char url[REGISTRY_URL_MAX], what[CHRUN_DIGEST_STR_MAX + 16];
    struct registry_reply r = {0};
    struct registry_req rq = {.what = what, .url = url, .method = "POST",
                              .max = REGISTRY_ERROR_BODY_MAX};
    int n, rc = 0;

    if (try_mount)
        n = snprintf(url, sizeof(url), "%s/v2/%s/blobs/uploads/?mount=%s&from=%s", p->c->base,
                     p->c->repo, d->str, p->mount_from);
    else
        n = snprintf(url, sizeof(url), "%s/v2/%s/blobs/uploads/", p->c->base, p->c->repo);
    if (n < 0 || (size_t) n >= sizeof(url))
        return chrun_err_set(err, CHRUN_E_INPUT, "blob %s: upload URL too long", d->str);
    snprintf(what, sizeof(what), "blob %s", d->str);
    *ret_mounted = false;
    if (registry_request(p->c, &rq, &r, err) < 0)
        rc = -1;
    else if (try_mount && r.resp.status == 201)
        *ret_mounted = true;
    else if (r.resp.status == 202)
        rc = absolute_location(p, &r, what, location, size, err);
    else
        rc = unexpected(what, &r, err);
    registry_reply_release(&r);
    return rc;
}

/* PUT or PATCH BODY (may be NULL) to URL. *RET_AGAIN says whether a failure
 * is worth a fresh upload session (connection lost, 5xx, 429). On 2xx the
 * next Location, if any, goes to NEXT. */
static int send_upload_request(struct pusher *p, const char *method, const char *url,
                               struct registry_body *body, const char *range,
                               const struct chrun_digest *d, long want_status, bool *ret_again,
                               char *next, size_t size, struct chrun_err *err)
{
    char what[CHRUN_DIGEST_STR_MAX + 16];
    struct registry_reply r = {0};
    struct registry_req rq = {.what = what, .url = url, .method = method, .body = body,
                              .headers = {OCTET_STREAM, range}, .once = true, .streaming = true,
                              .max = REGISTRY_ERROR_BODY_MAX};
    int rc = 0;

    snprintf(what, sizeof(what), "blob %s", d->str);
    *ret_again = false;
    if (registry_request(p->c, &rq, &r, err) < 0) {
        *ret_again = err->code == CHRUN_E_NETWORK;
        rc = -1;
    } else if (r.resp.status != want_status) {
        *ret_again = registry_status_retryable(r.resp.status);
        rc = unexpected(what, &r, err);
    } else if (want_status == 201 && r.resp.docker_digest[0] &&
               !streq(r.resp.docker_digest, d->str)) {
        chrun_sanitize(r.resp.docker_digest);
        rc = chrun_err_set(err, CHRUN_E_DIGEST,
                           "%s: registry %s stored it as %.80s: upload corrupted", what,
                           p->c->host, r.resp.docker_digest);
    } else if (next != NULL && (r.resp.location[0] || r.resp.location_too_long)) {
        /* the next request goes where this answer says; without a Location
         * (some registries omit it after a chunk) the session URL stays */
        rc = absolute_location(p, &r, what, next, size, err);
    }
    registry_reply_release(&r);
    return rc;
}

/* Send the blob in FD (SIZE bytes) to upload session LOCATION: one PUT, or
 * PATCH chunks and a closing PUT, each to the Location the last answer gave. */
static int send_blob(struct pusher *p, const struct chrun_digest *d, int fd, uint64_t size,
                     const char *location, int bar, bool *ret_again, struct chrun_err *err)
{
    char url[REGISTRY_URL_MAX], final_url[REGISTRY_URL_MAX], range[64];
    struct registry_body body = {.fd = fd, .progress = p->c->progress, .bar = bar};
    uint64_t off = 0;

    snprintf(url, sizeof(url), "%s", location);
    if (size <= p->chunk_bytes) {
        body.len = size;
        if (location_with_digest(url, d, final_url, sizeof(final_url), err) < 0)
            return -1;
        return send_upload_request(p, "PUT", final_url, &body, NULL, d, 201, ret_again, NULL, 0,
                                   err);
    }
    while (off < size) {
        uint64_t n = size - off < p->chunk_bytes ? size - off : p->chunk_bytes;
        body.offset = body.bar_base = off;
        body.len = n;
        /* distribution's form: no "bytes " unit, inclusive end */
        snprintf(range, sizeof(range), "Content-Range: %" PRIu64 "-%" PRIu64, off, off + n - 1);
        if (send_upload_request(p, "PATCH", url, &body, range, d, 202, ret_again, url,
                                sizeof(url), err) < 0)
            return -1;
        off += n;
    }
    if (location_with_digest(url, d, final_url, sizeof(final_url), err) < 0)
        return -1;
    return send_upload_request(p, "PUT", final_url, NULL, NULL, d, 201, ret_again, NULL, 0, err);
}

/* Open blob D of the store and check it has the size its descriptor says. */
static int open_blob_checked(struct pusher *p, const struct chrun_descriptor *d,
                             struct chrun_err *err)
{
    cleanup_close int fd = chrun_store_open_blob(p->st, &d->digest, err);
    struct stat sb;
    if (fd < 0)
        return -1;
    if (fstat(fd, &sb) < 0)
        return chrun_err_sys(err, errno, "blob %s", d->digest.str);
    if (sb.st_size != d->size)
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "blob %s: %jd bytes in the store, descriptor says %" PRId64,
                             d->digest.str, (intmax_t) sb.st_size, d->size);
    return take_fd(fd);
}

/* Upload D, starting with session LOCATION if given ("" = none yet). A
 * failure worth repeating starts over with a new session. */
static int upload_blob(struct pusher *p, const struct chrun_descriptor *d, const char *location,
                       int bar, struct chrun_err *err)
{
    char url[REGISTRY_URL_MAX];
    cleanup_close int fd = open_blob_checked(p, d, err);
    bool again = false, mounted;

    if (fd < 0)
        return -1;
    snprintf(url, sizeof(url), "%s", location);
    for (int attempt = 1;; attempt++) {
        if (url[0] == '\0' &&
            start_upload(p, &d->digest, false, &mounted, url, sizeof(url), err) < 0)
            return -1;
        chrun_progress_update(p->c->progress, bar, 0, "Pushing");
        if (send_blob(p, &d->digest, fd, (uint64_t) d->size, url, bar, &again, err) == 0)
            return 0;
        if (!again || attempt >= CHRUN_PULL_ATTEMPTS_MAX)
            return attempt > 1 ? chrun_err_prefix(err, "gave up after %d uploads", attempt) : -1;
        chrun_log_debug("%s; starting the upload over", err->msg);
        chrun_err_clear(err);
        url[0] = '\0';
        registry_sleep_ms(chrun_registry_backoff_ms(attempt));
    }
}

/* Make the repository hold blob D: present already, mounted, or uploaded. */
static int push_blob(struct pusher *p, const struct chrun_descriptor *d, struct chrun_err *err)
{
    char location[REGISTRY_URL_MAX] = "";
    bool exists = false, mounted = false;
    int bar;

    if (!chrun_store_has_blob(p->st, &d->digest))
        return chrun_err_set(err, CHRUN_E_NOTFOUND, "blob %s is not in the store", d->digest.str);
    bar = chrun_progress_add(p->c->progress, chrun_digest_hex(&d->digest), (uint64_t) d->size);
    if (blob_exists(p, &d->digest, &exists, err) < 0)
        return -1;
    if (!exists && p->mount_from[0] &&
        start_upload(p, &d->digest, true, &mounted, location, sizeof(location), err) < 0)
        return -1;
    if (exists || mounted) {
        chrun_progress_update(p->c->progress, bar, (uint64_t) d->size,
                              exists ? "Layer already exists" : "Mounted");
    } else {
        if (upload_blob(p, d, location, bar, err) < 0)
            return -1;
        chrun_progress_update(p->c->progress, bar, (uint64_t) d->size, "Pushed");
    }
    chrun_progress_draw(p->c->progress, false);
    return 0;
}

/* Manifests */

/* PUT manifest BUF (LEN bytes, digest D, MEDIA_TYPE) as REFERENCE (a tag or
 * D itself) and check the digest the registry says it stored. */
static int put_manifest(struct pusher *p, const char *buf, size_t len, const char *media_type,
                        const struct chrun_digest *d, const char *reference,
                        struct chrun_err *err)
{
    char url[REGISTRY_URL_MAX], what[CHRUN_DIGEST_STR_MAX + 16];
    char content_type[CHRUN_MEDIA_TYPE_MAX + 16];
    struct registry_body body = {.buf = buf, .fd = -1, .len = len, .bar = -1};
    struct registry_reply r = {0};
    struct registry_req rq = {.what = what, .url = url, .method = "PUT", .body = &body,
                              .headers = {content_type}, .max = REGISTRY_ERROR_BODY_MAX};
    int rc = 0;

    snprintf(url, sizeof(url), "%s/v2/%s/manifests/%s", p->c->base, p->c->repo, reference);
    snprintf(what, sizeof(what), "manifest %s", d->str);
    snprintf(content_type, sizeof(content_type), "Content-Type: %s", media_type);
    if (registry_request(p->c, &rq, &r, err) < 0)
        rc = -1;
    else if (r.resp.status != 201)
        rc = unexpected(what, &r, err);
    else if (r.resp.docker_digest[0] && !streq(r.resp.docker_digest, d->str)) {
        /* the registry stored other bytes than ours, or says so: the
         * digest the user would pin is not the one printed */
        chrun_sanitize(r.resp.docker_digest);
        rc = chrun_err_set(err, CHRUN_E_DIGEST,
                           "%s: registry %s answered Docker-Content-Digest %.80s", what,
                           p->c->host, r.resp.docker_digest);
    }
    registry_reply_release(&r);
    return rc;
}

/* The walk of a push: blobs as they come, every manifest after everything
 * it refers to (a registry refuses a manifest whose blobs it lacks). */
static int push_read(void *ctx, const struct chrun_walk_node *n, char **ret_buf, size_t *ret_len,
                     struct chrun_err *err)
{
    struct pusher *p = ctx;
    if (n->parent != NULL && !chrun_store_has_blob(p->st, &n->desc->digest))
        return chrun_err_set(err, CHRUN_E_NOTFOUND,
                             "index %s: manifest %s is not in the store (pull it with "
                             "--all-platforms)",
                             n->parent->desc->digest.str, n->desc->digest.str);
    return chrun_store_read_blob(p->st, &n->desc->digest, CHRUN_MANIFEST_MAX, ret_buf, ret_len,
                                 err);
}

static int push_visit(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct pusher *p = ctx;
    switch (n->kind) {
    case CHRUN_WALK_CONFIG:
    case CHRUN_WALK_LAYER: return push_blob(p, n->desc, err);
    case CHRUN_WALK_OTHER:
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "index %s: manifest %s: unknown manifest media type '%.200s'",
                             n->parent ? n->parent->desc->digest.str : "(root)",
                             n->desc->digest.str, n->desc->media_type);
    default: return CHRUN_WALK_CONTINUE;
    }
}

static int push_leave(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct pusher *p = ctx;
    /* the type recorded in the store, else the document's own */
    return put_manifest(p, n->buf, n->len,
                        n->desc->media_type[0] ? n->desc->media_type : n->m->media_type,
                        &n->desc->digest, n->parent ? n->desc->digest.str : p->top_reference,
                        err);
}

/* Push TOP (its blobs and children first) as P->top_reference. */
static int push_tree(struct pusher *p, const struct chrun_descriptor *top, struct chrun_err *err)
{
    static const struct chrun_walk_ops ops = {push_read, push_visit, push_leave};
    struct chrun_walk w;
    int rc;
    chrun_walk_init(&w, &ops, p, 0);
    rc = chrun_walk_from(&w, top, err);
    chrun_walk_release(&w);
    return rc;
}

/* Push TOP's tree with TOP named REFERENCE (a tag or its digest). */
static int push_as(struct pusher *p, const struct chrun_descriptor *top, const char *reference,
                   struct chrun_err *err)
{
    const char *saved = p->top_reference;
    int rc;
    p->top_reference = reference;
    rc = push_tree(p, top, err);
    p->top_reference = saved;
    return rc;
}

/* What is attached to IMG (attach.h) goes beside it: cosign's artifacts
 * under their tag sha256-<hex>.sig (.att, .sbom) in the destination
 * repository -- the image keeps its digest, so the tag still names it --
 * and referrers by digest. */
static int push_attachments(struct pusher *p, const struct chrun_store_image *img,
                            struct chrun_err *err)
{
    cleanup_free struct chrun_attachment *atts = NULL;
    cleanup_free char *fallback = NULL;
    size_t n, n_referrers = 0;

    if (chrun_attach_list(p->st, &img->digest, &atts, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct chrun_descriptor d = {.size = atts[i].size};
        const char *dot = strrchr(atts[i].ref, '.');
        char tag[CHRUN_REF_TAG_MAX + 1];
        snprintf(d.media_type, sizeof(d.media_type), "%s", atts[i].media_type);
        d.digest = atts[i].digest;
        if (chrun_attach_kind(&atts[i]) != CHRUN_ATTACH_REFERRER &&
            chrun_attach_tag_name(NULL, &img->digest, dot, tag, sizeof(tag), err) < 0)
            return -1;
        if (push_as(p, &d,
                    chrun_attach_kind(&atts[i]) == CHRUN_ATTACH_REFERRER ? d.digest.str : tag,
                    err) < 0)
            return chrun_err_prefix(err, "%s %s",
                                    chrun_attach_kind_name(chrun_attach_kind(&atts[i])),
                                    d.digest.str);
        if (chrun_attach_kind(&atts[i]) == CHRUN_ATTACH_REFERRER)
            atts[n_referrers++] = atts[i]; /* i >= n_referrers: a safe overwrite */
    }
    /* a registry without the referrers API lists them under the fallback tag */
    if (n_referrers > 0 && attach_referrers_fallback(p->c, &img->digest, atts, n_referrers,
                                                     &fallback, err) < 0)
        return chrun_err_prefix(err, "referrers");
    if (fallback != NULL) {
        struct chrun_digest fd;
        char tag[CHRUN_REF_TAG_MAX + 1];
        if (chrun_digest_of_buffer(&fd, fallback, strlen(fallback), err) < 0 ||
            chrun_attach_tag_name(NULL, &img->digest, "", tag, sizeof(tag), err) < 0 ||
            put_manifest(p, fallback, strlen(fallback), CHRUN_MT_OCI_INDEX, &fd, tag, err) < 0)
            return chrun_err_prefix(err, "referrers fallback index");
    }
    return 0;
}

/* Setup */

static bool same_registry(const struct chrun_ref *a, const struct chrun_ref *b)
{
    return streq(chrun_ref_registry_host(a), chrun_ref_registry_host(b));
}

/* A repository on DEST's registry where the store says this image came
 * from (pulled or tagged there): blobs can be mounted from it. IMG's own
 * name first, then any other name of the same manifest. */
static int find_mount_source(struct chrun_store *st, const struct chrun_store_image *img,
                             const struct chrun_ref *dest, char *ret, size_t size,
                             struct chrun_err *err)
{
    cleanup_free struct chrun_store_image *imgs = NULL;
    struct chrun_err ignored = CHRUN_ERR_INIT;
    struct chrun_ref src;
    size_t n;

    ret[0] = '\0';
    if (img->ref[0] && chrun_ref_parse(&src, img->ref, &ignored) == 0 &&
        same_registry(&src, dest) && !streq(src.path, dest->path)) {
        snprintf(ret, size, "%s", src.path);
        return 0;
    }
    if (chrun_store_list(st, &imgs, &n, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (streq(imgs[i].digest.str, img->digest.str) &&
            chrun_ref_parse(&src, imgs[i].ref, &ignored) == 0 && same_registry(&src, dest) &&
            !streq(src.path, dest->path)) {
            snprintf(ret, size, "%s", src.path);
            return 0;
        }
    return 0;
}

/* The client for DEST, with the token scope a push needs. */
static int pusher_init(struct pusher *p, struct chrun_store *st, const struct chrun_ref *dest,
                       const struct chrun_store_image *img, const struct chrun_push_opts *opts,
                       struct chrun_progress *progress, struct chrun_err *err)
{
    char base[CHRUN_REF_NAME_MAX + 16], host[CHRUN_REF_NAME_MAX + 1];

    const struct chrun_settings *settings = chrun_settings_or_defaults(opts->settings);

    memset(p, 0, sizeof(*p));
    p->st = st;
    p->chunk_bytes = opts->chunk_size_bytes > 0 ? opts->chunk_size_bytes
                                                : settings->push_chunk_bytes;
    if (p->chunk_bytes == 0) /* a zeroed settings struct: never an endless loop */
        p->chunk_bytes = CHRUN_SETTINGS_PUSH_CHUNK_BYTES;
    if (find_mount_source(st, img, dest, p->mount_from, sizeof(p->mount_from), err) < 0)
        return -1;
    snprintf(host, sizeof(host), "%s", chrun_ref_registry_host(dest));
    snprintf(base, sizeof(base), "%s://%s",
             chrun_settings_host_insecure(settings, host) ? "http" : "https", host);
    p->c = registry_client_create(st, base, host, dest->domain, dest, 1, settings, err);
    if (p->c == NULL)
        return -1;
    p->c->progress = progress;
    p->c->access = "push";
    snprintf(p->c->scope, sizeof(p->c->scope), "repository:%s:pull,push%s%s%s", dest->path,
             p->mount_from[0] ? " repository:" : "", p->mount_from,
             p->mount_from[0] ? ":pull" : "");
    return 0;
}

/* IMAGE from the store, and DEST checked against it before any network. */
static int resolve_operands(struct chrun_store *st, const char *image, const char *dest_ref,
                            struct chrun_store_image *ret_img, struct chrun_ref *ret_dest,
                            struct chrun_err *err)
{
    if (chrun_ref_parse(ret_dest, dest_ref, err) < 0)
        return -1;
    if (chrun_store_resolve(st, image, ret_img, err) < 0)
        return -1;
    if (ret_dest->digest[0] && !streq(ret_dest->digest, ret_img->digest.str))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "'%s' pins digest %s but image '%s' is %s", dest_ref,
                             ret_dest->digest, image, ret_img->digest.str);
    return 0;
}

int chrun_push_image(struct chrun_store *st, const char *image, const char *dest_ref,
                     const struct chrun_push_opts *opts, struct chrun_digest *ret_digest,
                     struct chrun_err *err)
{
    static const struct chrun_push_opts defaults = CHRUN_PUSH_OPTS_INIT;
    struct chrun_store_image img;
    struct chrun_descriptor top = {.size = -1};
    struct chrun_ref dest;
    struct chrun_progress *progress = NULL;
    struct pusher p = {0};
    int rc;

    if (opts == NULL)
        opts = &defaults;
    if (resolve_operands(st, image, dest_ref, &img, &dest, err) < 0)
        return -1;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return chrun_err_set(err, CHRUN_E_SYS, "curl initialisation failed");
    if (opts->progress && !chrun_log_quiet())
        progress = chrun_progress_new(true);
    rc = pusher_init(&p, st, &dest, &img, opts, progress, err);
    if (rc == 0) {
        snprintf(top.media_type, sizeof(top.media_type), "%s", img.media_type);
        top.digest = img.digest;
        top.size = img.size;
        /* a tag when DEST has one (its digest, if any, was checked above) */
        p.top_reference = dest.tag[0] ? dest.tag : dest.digest;
        rc = push_tree(&p, &top, err);
    }
    if (rc == 0 && !opts->no_signatures)
        rc = push_attachments(&p, &img, err);
    if (rc < 0)
        chrun_err_prefix(err, "push %s", p.c ? p.c->display : dest_ref);
    if (rc == 0)
        *ret_digest = img.digest;
    pusher_release(&p);
    chrun_progress_free(progress);
    curl_global_cleanup();
    return rc;
}
