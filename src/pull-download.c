/* Blob downloads of a pull: curl multi, one writer per blob, verified before
 * publish; connections and claims shared between images pulled at once. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <pthread.h>

#include "chrun/log.h"
#include "chrun/progress.h"
#include "chrun/registry.h"
#include "chrun/sink.h"
#include "cleanup.h"
#include "pull.h"
#include "util.h"

/* Verified blobs held open (one fd each) before they are published early. */
#define OPEN_WRITERS_MAX 256
/* Buffers queued for the blob writer thread beyond one per transfer. */
#define SINK_SPARE_BUFS 8
/* How often a running download loop wakes to redraw progress bars. */
#define PROGRESS_TICK_MS 100

/* Whether the shared pool has a free connection slot; with TAKE, take it. */
static bool share_slot(struct pull_share *sh, bool take)
{
    bool ok;
    if (sh == NULL)
        return true;
    pthread_mutex_lock(&sh->mu);
    ok = sh->free_slots > 0;
    if (ok && take)
        sh->free_slots--;
    pthread_mutex_unlock(&sh->mu);
    return ok;
}

void pull_share_give_slot(struct pull_share *sh)
{
    if (sh == NULL)
        return;
    pthread_mutex_lock(&sh->mu);
    sh->free_slots++;
    pthread_cond_broadcast(&sh->cv); /* a manifest fetch may wait for it */
    pthread_mutex_unlock(&sh->mu);
}

void pull_share_wait_slot(struct pull_share *sh)
{
    if (sh == NULL)
        return;
    pthread_mutex_lock(&sh->mu);
    while (sh->free_slots == 0)
        pthread_cond_wait(&sh->cv, &sh->mu);
    sh->free_slots--;
    pthread_mutex_unlock(&sh->mu);
}

static struct claim *claim_find(struct pull_share *sh, const struct chrun_digest *d)
{
    for (size_t i = 0; i < sh->n_claims; i++)
        if (streq(sh->claims[i].d.str, d->str))
            return &sh->claims[i];
    return NULL;
}

/* Split P's blobs: those this thread claims stay in P->blobs; those another
 * thread is fetching or has fetched go to *RET_WAIT (N in *RET_N_WAIT). */
static int share_claim(struct pull_share *sh, struct plan *p, struct chrun_descriptor **ret_wait,
                       size_t *ret_n_wait, struct chrun_err *err)
{
    size_t keep = 0;
    int rc = 0;

    *ret_wait = NULL;
    *ret_n_wait = 0;
    if (sh == NULL || p->n_blobs == 0)
        return 0;
    *ret_wait = calloc(p->n_blobs, sizeof(**ret_wait));
    if (*ret_wait == NULL)
        return chrun_err_sys(err, ENOMEM, "pull plan");
    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; rc == 0 && i < p->n_blobs; i++) {
        struct claim *cl = claim_find(sh, &p->blobs[i].digest);
        if (cl != NULL && cl->state != CLAIM_FAILED) {
            (*ret_wait)[(*ret_n_wait)++] = p->blobs[i];
            continue;
        }
        if (cl == NULL && chrun_grow(&sh->claims, &sh->cap_claims, sh->n_claims + 1,
                                     sizeof(*sh->claims), err) < 0) {
            rc = chrun_err_prefix(err, "pull plan");
            break;
        }
        if (cl == NULL)
            cl = &sh->claims[sh->n_claims++];
        cl->d = p->blobs[i].digest;
        cl->state = CLAIM_BUSY;
        p->blobs[keep++] = p->blobs[i];
    }
    p->n_blobs = keep;
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

/* Settle the claims on P's blobs: published (OK) or not. */
static void share_settle(struct pull_share *sh, const struct plan *p, bool ok)
{
    if (sh == NULL)
        return;
    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; i < p->n_blobs; i++) {
        struct claim *cl = claim_find(sh, &p->blobs[i].digest);
        if (cl != NULL && cl->state == CLAIM_BUSY)
            cl->state = ok ? CLAIM_DONE : CLAIM_FAILED;
    }
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
}

/* Wait until no claim on WAIT's blobs is busy. */
static void share_wait(struct pull_share *sh, const struct chrun_descriptor *wait, size_t n)
{
    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; i < n; i++) {
        struct claim *cl;
        while ((cl = claim_find(sh, &wait[i].digest)) != NULL && cl->state == CLAIM_BUSY)
            pthread_cond_wait(&sh->cv, &sh->mu);
    }
    pthread_mutex_unlock(&sh->mu);
}

/* Blob downloads: curl multi, one writer per blob, verified before publish. */

struct job {
    struct registry_client *c;
    struct chrun_descriptor d;
    struct chrun_store_writer *w;
    CURL *e;
    struct curl_slist *hdrs;
    struct registry_resp resp;
    char url[REGISTRY_URL_MAX];
    char errbuf[CURL_ERROR_SIZE];
    int redirects, attempts, auth_rounds;
    unsigned auth_gen; /* c->auth_gen when this attempt started */
    int attempts_total; /* bounded even when every attempt makes progress */
    bool restarted_after_mismatch;
    uint64_t start_offset; /* writer offset when this attempt began */
    bool active, finished, committed;
    bool checked;          /* 2xx reply validated, body goes to the writer */
    bool discard;          /* non-2xx body: read and drop */
    size_t discarded;
    bool cb_failed;        /* a callback stopped the transfer: see cb_err */
    bool cb_hostile;       /* ... because the bytes are proven wrong */
    struct chrun_err cb_err;
    long long not_before_ms;
    int bar;
    struct pull_feed *feed;          /* told of this blob's progress, or NULL */
    struct pull_follow *follow;      /* this blob there, or NULL */
    struct chrun_sink *sink;         /* writes and hashes the body off this thread */
    struct chrun_sink_ticket ticket; /* what this blob has queued there */
    char *buf;                       /* CHRUN_SINK_BUFSZ, being filled; or NULL */
    size_t buf_len;
    uint64_t accepted; /* bytes of the blob taken: written or queued */
    /* Useful progress: since MARK_MS (0: never started) the blob got
     * MARK_BYTES + useful_bytes() bytes, or it has stalled (check_stalled). */
    long long mark_ms;
    uint64_t mark_bytes;
};

/* Bytes a blob must get within c->blob_stall_limit_s seconds. */
static uint64_t useful_bytes(const struct registry_client *c)
{
    return (uint64_t) REGISTRY_STALL_BYTES_PER_S * (uint64_t) c->blob_stall_limit_s;
}

/* The blob took bytes (or restarted at a lower offset): move the mark. */
static void job_mark_progress(struct job *j)
{
    if (j->accepted < j->mark_bytes)
        j->mark_bytes = j->accepted;
    if (j->accepted - j->mark_bytes >= useful_bytes(j->c)) {
        j->mark_ms = registry_mono_ms();
        j->mark_bytes = j->accepted;
    }
}

static void partial_name(const struct chrun_digest *d, char *buf, size_t size)
{
    snprintf(buf, size, "blob-%s.partial", chrun_digest_hex(d));
}

/* Drop a job's partial file: its bytes are proven wrong, or the server
 * restarts from byte 0. */
static void job_discard_partial(struct job *j)
{
    char name[128];
    struct chrun_err ignored = CHRUN_ERR_INIT;
    (void) chrun_sink_wait(j->sink, &j->ticket, &ignored);
    partial_name(&j->d.digest, name, sizeof(name));
    unlinkat(chrun_store_tmp_fd(j->c->st), name, 0);
    chrun_store_writer_free(j->w);
    j->w = NULL;
    pull_feed_restarted(j->feed, j->follow);
}

static int job_open_writer(struct job *j, struct chrun_err *err)
{
    if (j->w != NULL)
        return 0;
    j->w = chrun_store_writer_begin(j->c->st, &j->d.digest, j->d.size,
                                    CHRUN_STORE_WRITER_RESUMABLE, err);
    if (j->w == NULL)
        return -1;
    pull_feed_opened(j->feed, j->follow, j->w);
    return 0;
}

static int job_fail_cb(struct job *j, bool hostile)
{
    j->cb_failed = true;
    j->cb_hostile = hostile;
    return 0;
}

/* Check a 2xx reply before its body is stored: SPEC "Bad input", every size
 * a peer declares is checked. */
static bool job_check_reply(struct job *j)
{
    uint64_t off;
    int64_t want;

    j->checked = true;
    if (chrun_sink_wait(j->sink, &j->ticket, &j->cb_err) < 0) {
        chrun_err_prefix(&j->cb_err, "blob %s", j->d.digest.str);
        return job_fail_cb(j, j->cb_err.code == CHRUN_E_DIGEST);
    }
    off = chrun_store_writer_offset(j->w);
    if (j->resp.status == 200 && off > 0) {
        /* the server ignored Range: start over from byte 0 */
        job_discard_partial(j);
        if (job_open_writer(j, &j->cb_err) < 0)
            return job_fail_cb(j, false);
        off = chrun_store_writer_offset(j->w);
        if (off > 0) {
            chrun_err_set(&j->cb_err, CHRUN_E_SYS, "blob %s: could not restart", j->d.digest.str);
            return job_fail_cb(j, false);
        }
    } else if (j->resp.status == 206) {
        if (!j->resp.has_range || j->resp.range_start != off) {
            chrun_err_set(&j->cb_err, CHRUN_E_INPUT,
                          "blob %s: partial reply does not start at byte %" PRIu64,
                          j->d.digest.str, off);
            return job_fail_cb(j, true);
        }
    } else if (j->resp.status != 200) {
        chrun_err_set(&j->cb_err, CHRUN_E_NETWORK, "blob %s: unexpected HTTP %ld",
                      j->d.digest.str, j->resp.status);
        return job_fail_cb(j, false);
    }
    want = j->d.size - (int64_t) off;
    if (j->resp.content_length == -2 ||
        (j->resp.content_length >= 0 && j->resp.content_length != want)) {
        chrun_err_set(&j->cb_err, CHRUN_E_DIGEST,
                      "blob %s: server declared Content-Length %" PRId64 ", expected %" PRId64
                      " bytes",
                      j->d.digest.str, j->resp.content_length, want);
        return job_fail_cb(j, true);
    }
    j->accepted = off;
    job_mark_progress(j);
    chrun_progress_update(j->c->progress, j->bar, off, "Downloading");
    return true;
}

static size_t job_on_header(char *buf, size_t size, size_t n, void *data)
{
    struct job *j = data;
    size_t len = size * n;
    if (registry_resp_header_line(&j->resp, buf, len)) {
        j->checked = false;
        j->discard = !(j->resp.status >= 200 && j->resp.status < 300);
        if (j->resp.status == 100)
            return len;
        if (!j->discard && !job_check_reply(j))
            return 0;
    } else if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        j->checked = false;
        j->discard = false;
    }
    return len;
}

/* Queue the buffer being filled, if any. */
static void job_submit(struct job *j)
{
    if (j->buf == NULL)
        return;
    if (j->buf_len > 0) {
        chrun_sink_submit(j->sink, &j->ticket, j->w, j->buf, j->buf_len);
        pull_feed_grew(j->feed, j->follow);
    } else
        chrun_sink_unused(j->sink, j->buf);
    j->buf = NULL;
    j->buf_len = 0;
}

/* End of a transfer: queue what is buffered (or drop it when the transfer
 * failed) and wait until the blob's bytes are all written. */
static int job_flush(struct job *j, bool keep, struct chrun_err *err)
{
    if (!keep)
        j->buf_len = 0;
    job_submit(j);
    if (chrun_sink_wait(j->sink, &j->ticket, err) < 0)
        return chrun_err_prefix(err, "blob %s", j->d.digest.str);
    return 0;
}

static size_t job_on_body(char *buf, size_t size, size_t n, void *data)
{
    struct job *j = data;
    size_t len = size * n, done = 0;
    if (j->discard) {
        j->discarded += len;
        return j->discarded > REGISTRY_ERROR_BODY_MAX ? 0 : len;
    }
    if (!j->checked && !job_check_reply(j))
        return 0;
    /* SPEC "Bad input": too many bytes fail the moment they arrive. */
    if (j->accepted + len > (uint64_t) j->d.size) {
        chrun_err_set(&j->cb_err, CHRUN_E_DIGEST, "blob %s: more bytes than the declared size %" PRId64,
                      j->d.digest.str, j->d.size);
        return job_fail_cb(j, true);
    }
    if (chrun_sink_failed(j->sink, &j->ticket)) {
        chrun_sink_wait(j->sink, &j->ticket, &j->cb_err);
        chrun_err_prefix(&j->cb_err, "blob %s", j->d.digest.str);
        return job_fail_cb(j, j->cb_err.code == CHRUN_E_DIGEST);
    }
    while (done < len) {
        size_t room, take;
        if (j->buf == NULL)
            j->buf = chrun_sink_buffer(j->sink);
        room = CHRUN_SINK_BUFSZ - j->buf_len;
        take = len - done < room ? len - done : room;
        memcpy(j->buf + j->buf_len, buf + done, take);
        j->buf_len += take;
        done += take;
        if (j->buf_len == CHRUN_SINK_BUFSZ)
            job_submit(j);
    }
    j->accepted += len;
    job_mark_progress(j);
    chrun_progress_update(j->c->progress, j->bar, j->accepted, NULL);
    return len;
}

struct downloader {
    struct registry_client *c;
    struct pull_share *share; /* NULL: one image, c->jobs connections of its own */
    struct pull_feed *feed;   /* the tree made while downloading, or NULL */
    CURLM *multi;
    struct chrun_sink *sink;
    struct job *jobs;
    size_t n_jobs;
    size_t n_done;
    int n_active;
    size_t n_open_verified;
};

/* J's blob is whole and verified (OFF bytes): tell the feed and the bars. */
static void job_verified(struct downloader *dl, struct job *j, uint64_t off)
{
    pull_feed_verified(j->feed, j->follow);
    j->finished = true;
    dl->n_done++;
    dl->n_open_verified++;
    chrun_progress_update(dl->c->progress, j->bar, off, "Download complete");
}

static int job_start(struct downloader *dl, struct job *j, struct chrun_err *err)
{
    struct registry_client *c = dl->c;
    char range[48];
    uint64_t off;
    struct curl_slist *tmp;
    CURLcode setup;

    if (job_open_writer(j, err) < 0)
        return -1;
    off = chrun_store_writer_offset(j->w);
    j->start_offset = off;
    if (j->mark_ms == 0) {
        j->mark_ms = registry_mono_ms();
        j->mark_bytes = off;
    }
    if ((int64_t) off == j->d.size) {
        /* an earlier run left the whole blob in tmp/: verify it, no network */
        if (chrun_store_writer_verify(j->w, NULL, err) == 0) {
            job_verified(dl, j, off);
            return 0;
        }
        chrun_store_writer_free(j->w);
        j->w = NULL;
        pull_feed_restarted(j->feed, j->follow);
        chrun_err_clear(err);
        if (job_open_writer(j, err) < 0)
            return -1;
        off = j->start_offset = 0;
    }
    registry_resp_reset(&j->resp);
    j->checked = j->discard = j->cb_failed = j->cb_hostile = false;
    j->discarded = 0;
    chrun_err_clear(&j->cb_err);
    if (j->e == NULL && (j->e = curl_easy_init()) == NULL)
        return chrun_err_sys(err, ENOMEM, "curl init");
    curl_easy_reset(j->e);
    setup = registry_easy_setup(c, j->e, j->url, j->errbuf);
    registry_setopt(&setup, j->e, CURLOPT_HEADERFUNCTION, job_on_header);
    registry_setopt(&setup, j->e, CURLOPT_HEADERDATA, j);
    registry_setopt(&setup, j->e, CURLOPT_WRITEFUNCTION, job_on_body);
    registry_setopt(&setup, j->e, CURLOPT_WRITEDATA, j);
    registry_setopt(&setup, j->e, CURLOPT_PRIVATE, j);
    if (off > 0) {
        snprintf(range, sizeof(range), "%" PRIu64 "-", off);
        registry_setopt(&setup, j->e, CURLOPT_RANGE, range);
    }
    curl_slist_free_all(j->hdrs);
    j->hdrs = NULL;
    j->auth_gen = c->auth_gen;
    /* SPEC "Bad input": credentials never go to another host. */
    if (c->auth_header != NULL && chrun_registry_same_origin(j->url, c->base)) {
        tmp = curl_slist_append(NULL, c->auth_header);
        if (tmp == NULL)
            return chrun_err_sys(err, ENOMEM, "curl headers");
        j->hdrs = tmp;
    }
    registry_setopt(&setup, j->e, CURLOPT_HTTPHEADER, j->hdrs);
    if (setup != CURLE_OK)
        return registry_curl_setup_failed(setup, j->url, err);
    if (curl_multi_add_handle(dl->multi, j->e) != CURLM_OK)
        return chrun_err_sys(err, ENOMEM, "curl multi");
    j->active = true;
    dl->n_active++;
    chrun_progress_update(c->progress, j->bar, off, off > 0 ? "Resuming" : "Downloading");
    return 0;
}

static void job_retry(struct job *j, long delay_ms)
{
    j->not_before_ms = registry_mono_ms() + delay_ms;
    chrun_progress_update(j->c->progress, j->bar,
                          j->w ? chrun_store_writer_offset(j->w) : 0, "Retrying");
}

/* One finished transfer. Returns 0 (done, retry scheduled) or -1 (fatal). */
static int job_finish(struct downloader *dl, struct job *j, CURLcode rc, struct chrun_err *err)
{
    struct registry_client *c = dl->c;
    uint64_t off;
    long st = j->resp.status;

    curl_multi_remove_handle(dl->multi, j->e);
    j->active = false;
    dl->n_active--;
    pull_share_give_slot(dl->share);
    /* a callback's own failure, handled below, says more than a write's */
    if (job_flush(j, !j->cb_failed, err) < 0 && !j->cb_failed) {
        if (err->code == CHRUN_E_DIGEST)
            job_discard_partial(j);
        return -1;
    }
    off = j->w ? chrun_store_writer_offset(j->w) : 0;
    /* progress in this attempt resets the count of fruitless attempts;
     * a server that trickles a few bytes per connection still runs out */
    if (off > j->start_offset && ++j->attempts_total < 4 * CHRUN_PULL_ATTEMPTS_MAX)
        j->attempts = 0;

    if (j->cb_failed) {
        *err = j->cb_err;
        if (j->cb_hostile)
            job_discard_partial(j);
        return -1;
    }
    if (rc != CURLE_OK) {
        if (registry_curl_transient(rc) && ++j->attempts < CHRUN_PULL_ATTEMPTS_MAX) {
            chrun_log_debug("blob %s: %s; retrying", j->d.digest.str,
                            registry_curl_msg(rc, j->errbuf));
            job_retry(j, chrun_registry_backoff_ms(j->attempts));
            return 0;
        }
        return chrun_err_set(err, CHRUN_E_NETWORK, "blob %s: %s%s", j->d.digest.str,
                             registry_curl_msg(rc, j->errbuf),
                             j->attempts > 1 ? " (gave up after retries)" : "");
    }
    if (st >= 300 && st < 400) {
        char *loc = NULL;
        curl_easy_getinfo(j->e, CURLINFO_REDIRECT_URL, &loc);
        if (loc == NULL || strlen(loc) >= sizeof(j->url))
            return chrun_err_set(err, CHRUN_E_INPUT, "blob %s: HTTP %ld without a usable Location",
                                 j->d.digest.str, st);
        if (++j->redirects > REGISTRY_REDIRECTS_MAX)
            return chrun_err_set(err, CHRUN_E_INPUT, "blob %s: more than %d redirects",
                                 j->d.digest.str, REGISTRY_REDIRECTS_MAX);
        if (!chrun_registry_url_permitted(loc, &dl->c->settings))
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "blob %s: refusing redirect to '%.200s' (plain http to a host "
                                 "not allowed insecure)",
                                 j->d.digest.str, loc);
        snprintf(j->url, sizeof(j->url), "%s", loc);
        job_retry(j, 0);
        return 0;
    }
    if (st >= 200 && st < 300) {
        if ((int64_t) off < j->d.size) {
            /* the connection ended early without curl noticing: resume */
            if (++j->attempts < CHRUN_PULL_ATTEMPTS_MAX) {
                job_retry(j, chrun_registry_backoff_ms(j->attempts));
                return 0;
            }
            return chrun_err_set(err, CHRUN_E_NETWORK,
                                 "blob %s: transfer ended at %" PRIu64 " of %" PRId64
                                 " bytes (gave up after retries)",
                                 j->d.digest.str, off, j->d.size);
        }
        if (chrun_store_writer_verify(j->w, NULL, err) < 0) {
            chrun_store_writer_free(j->w);
            j->w = NULL;
            pull_feed_restarted(j->feed, j->follow);
            /* bytes kept from an earlier run may be the bad ones: one fresh try */
            if (j->start_offset > 0 && !j->restarted_after_mismatch) {
                j->restarted_after_mismatch = true;
                chrun_err_clear(err);
                job_retry(j, 0);
                return 0;
            }
            return -1;
        }
        job_verified(dl, j, off);
        return 0;
    }
    if (st == 401 && j->auth_gen != c->auth_gen && j->auth_rounds++ < 1) {
        /* another transfer authenticated meanwhile: try with that */
        snprintf(j->url, sizeof(j->url), "%s/v2/%s/blobs/%s", c->base, c->repo, j->d.digest.str);
        job_retry(j, 0);
        return 0;
    }
    if (st == 401 && j->auth_rounds++ < 1) {
        if (registry_take_challenge(c, &j->resp, j->url, err) < 0 ||
            registry_authenticate(c, err) < 0)
            return chrun_err_prefix(err, "blob %s", j->d.digest.str);
        snprintf(j->url, sizeof(j->url), "%s/v2/%s/blobs/%s", c->base, c->repo, j->d.digest.str);
        job_retry(j, 0);
        return 0;
    }
    if (st == 401) {
        char what[CHRUN_DIGEST_STR_MAX + 8];
        snprintf(what, sizeof(what), "blob %s", j->d.digest.str);
        return registry_auth_refused(c, what, err);
    }
    if (st == 404)
        return chrun_err_set(err, CHRUN_E_NOTFOUND, "blob %s: unknown to registry %s (HTTP 404)",
                             j->d.digest.str, c->host);
    if (st == 416 && ++j->attempts < CHRUN_PULL_ATTEMPTS_MAX) {
        job_discard_partial(j);
        job_retry(j, 0);
        return 0;
    }
    if (registry_status_retryable(st) && ++j->attempts < CHRUN_PULL_ATTEMPTS_MAX) {
        long ms = registry_retry_delay_ms(&j->resp, j->attempts);
        chrun_log_debug("blob %s: HTTP %ld; retrying in %ld ms", j->d.digest.str, st, ms);
        job_retry(j, ms);
        return 0;
    }
    return chrun_err_set(err, CHRUN_E_NETWORK, "blob %s: registry %s answered HTTP %ld%s",
                         j->d.digest.str, c->host, st,
                         registry_status_retryable(st) ? " (gave up after retries)" : "");
}

static int commit_verified(struct downloader *dl, struct chrun_err *err)
{
    for (size_t i = 0; i < dl->n_jobs; i++) {
        struct job *j = &dl->jobs[i];
        if (!j->finished || j->committed)
            continue;
        if (chrun_store_writer_commit(j->w, NULL, err) < 0)
            return -1;
        chrun_store_writer_free(j->w);
        j->w = NULL;
        j->committed = true;
    }
    dl->n_open_verified = 0;
    return 0;
}

static void downloader_release(struct downloader *dl)
{
    /* queued bytes are written first: they belong to resumable partials */
    chrun_sink_free(dl->sink);
    for (size_t i = 0; i < dl->n_jobs; i++) {
        struct job *j = &dl->jobs[i];
        if (j->e != NULL) {
            if (j->active) {
                curl_multi_remove_handle(dl->multi, j->e);
                pull_share_give_slot(dl->share);
            }
            curl_easy_cleanup(j->e);
        }
        curl_slist_free_all(j->hdrs);
        /* a resumable partial stays in tmp/ for the next attempt */
        chrun_store_writer_free(j->w);
    }
    free(dl->jobs);
    if (dl->multi != NULL)
        curl_multi_cleanup(dl->multi);
}

/* SPEC "Bad input": each retry of a stalling or trickling blob may resume
 * with a few new bytes, which resets its count of fruitless attempts; so the
 * time a started blob may go without useful progress is bounded as a whole,
 * retries and their delays included. */
static int check_stalled(const struct downloader *dl, struct chrun_err *err)
{
    const struct registry_client *c = dl->c;
    long long now = registry_mono_ms();
    for (size_t i = 0; i < dl->n_jobs; i++) {
        const struct job *j = &dl->jobs[i];
        if (j->finished || j->mark_ms == 0 || now - j->mark_ms <= c->blob_stall_limit_s * 1000LL)
            continue;
        return chrun_err_set(err, CHRUN_E_NETWORK,
                             "blob %s: stalled or trickling: less than %" PRIu64
                             " bytes in %ld s, retries included (%" PRIu64 " of %" PRId64
                             " bytes received; limit CHRUN_BLOB_STALL_LIMIT)",
                             j->d.digest.str, useful_bytes(c), c->blob_stall_limit_s,
                             j->accepted, j->d.size);
    }
    return 0;
}

/* Start queued blobs while there are free connections; a blob waiting out
 * a retry delay stays queued. */
static int start_ready_jobs(struct downloader *dl, struct chrun_err *err)
{
    long long now = registry_mono_ms();
    for (size_t i = 0; i < dl->n_jobs && dl->n_active < dl->c->jobs; i++) {
        struct job *j = &dl->jobs[i];
        if (j->finished || j->active || j->not_before_ms > now)
            continue;
        /* with several images, connections are counted across all of them */
        if (!share_slot(dl->share, true))
            return 0;
        if (job_start(dl, j, err) < 0) {
            pull_share_give_slot(dl->share);
            return -1;
        }
        if (!j->active) /* verified from tmp/ without a connection */
            pull_share_give_slot(dl->share);
    }
    return 0;
}

/* Milliseconds until a queued blob could start: 0 if one can start now.
 * Capped so that progress bars are redrawn while transfers run. */
static long long next_start_ms(const struct downloader *dl)
{
    long long now = registry_mono_ms(), wait_ms = PROGRESS_TICK_MS;
    if (dl->n_active >= dl->c->jobs || !share_slot(dl->share, false))
        return wait_ms;
    for (size_t i = 0; i < dl->n_jobs; i++) {
        const struct job *j = &dl->jobs[i];
        if (j->finished || j->active)
            continue;
        if (j->not_before_ms <= now)
            return 0;
        if (j->not_before_ms - now < wait_ms)
            wait_ms = j->not_before_ms - now;
    }
    return wait_ms;
}

/* Set up DL for P's blobs. */
static int downloader_init(struct downloader *dl, struct plan *p, struct chrun_err *err)
{
    struct registry_client *c = dl->c;
    dl->multi = curl_multi_init();
    dl->jobs = calloc(p->n_blobs, sizeof(*dl->jobs));
    if (dl->multi == NULL || dl->jobs == NULL)
        return chrun_err_sys(err, ENOMEM, "downloads");
    /* each running transfer holds one buffer it fills; the rest queue */
    dl->sink = chrun_sink_new((unsigned) c->jobs + SINK_SPARE_BUFS, err);
    if (dl->sink == NULL)
        return -1;
    /* -j bounds the connections: without the limit the bound is not kept */
    if (curl_multi_setopt(dl->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) c->jobs) != CURLM_OK)
        return chrun_err_set(err, CHRUN_E_SYS, "downloads: curl refused the connection limit");
    dl->n_jobs = p->n_blobs;
    for (size_t i = 0; i < p->n_blobs; i++) {
        struct job *j = &dl->jobs[i];
        j->c = c;
        j->sink = dl->sink;
        j->d = p->blobs[i];
        j->feed = dl->feed;
        j->follow = pull_feed_follow(dl->feed, &j->d.digest);
        j->bar = chrun_progress_add(c->progress, chrun_digest_hex(&j->d.digest),
                                    (uint64_t) j->d.size);
        snprintf(j->url, sizeof(j->url), "%s/v2/%s/blobs/%s", c->base, c->repo, j->d.digest.str);
    }
    return 0;
}

/* Hand each finished transfer to job_finish. */
static int reap_finished(struct downloader *dl, struct chrun_err *err)
{
    CURLMsg *msg;
    int queued;
    while ((msg = curl_multi_info_read(dl->multi, &queued)) != NULL) {
        struct job *j = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &j);
        if (job_finish(dl, j, msg->data.result, err) < 0)
            return -1;
    }
    return 0;
}

/* Run DL's transfers until every blob is verified, then publish them. */
static int downloader_run(struct downloader *dl, struct chrun_err *err)
{
    while (dl->n_done < dl->n_jobs) {
        long long wait_ms;
        int running;

        if (start_ready_jobs(dl, err) < 0)
            return -1;
        if (dl->n_open_verified >= OPEN_WRITERS_MAX && commit_verified(dl, err) < 0)
            return -1;
        if (dl->n_done == dl->n_jobs)
            break;
        if (curl_multi_perform(dl->multi, &running) != CURLM_OK)
            return chrun_err_set(err, CHRUN_E_NETWORK, "curl multi failed");
        if (reap_finished(dl, err) < 0)
            return -1;
        chrun_progress_draw(dl->c->progress, false);
        if (dl->n_done == dl->n_jobs)
            break;
        if (check_stalled(dl, err) < 0)
            return -1;
        /* a freed slot with a blob ready to go starts it now, not after a poll */
        wait_ms = next_start_ms(dl);
        if (wait_ms == 0)
            continue;
        if (dl->n_active > 0)
            curl_multi_poll(dl->multi, NULL, 0, (int) wait_ms, NULL);
        else
            registry_sleep_ms((long) wait_ms);
    }
    /* publish nothing of an image whose tree failed (a bad diff_id). Its
     * error is taken only now: bytes the applier refused before their
     * download ended may be a bad blob, which the download names first. */
    if (pull_feed_wait_applied(dl->feed, err) < 0) {
        /* the image is refused: its blobs are not kept for a later attempt */
        for (size_t i = 0; i < dl->n_jobs; i++)
            if (dl->jobs[i].w != NULL)
                job_discard_partial(&dl->jobs[i]);
        return -1;
    }
    return commit_verified(dl, err);
}

/* Download and verify every blob of P; publish them all once all are good
 * (SPEC: a failed pull leaves nothing new under blobs/). */
static int download_blobs(struct registry_client *c, struct plan *p, struct pull_share *share,
                          struct pull_feed *feed, struct chrun_err *err)
{
    struct downloader dl = {.c = c, .share = share, .feed = feed};
    int rc;

    if (p->n_blobs == 0)
        return pull_feed_wait_applied(feed, err);
    rc = downloader_init(&dl, p, err);
    if (rc == 0)
        rc = downloader_run(&dl, err);
    downloader_release(&dl);
    return rc;
}

/* Download P's blobs. With SHARE, blobs another image is fetching are
 * waited for instead, and fetched here only if that image failed. */
int pull_fetch_blobs(struct registry_client *c, struct plan *p, struct pull_share *share,
                     struct pull_feed *feed, struct chrun_err *err)
{
    if (share == NULL)
        return download_blobs(c, p, NULL, feed, err);
    for (;;) {
        struct chrun_descriptor *wait = NULL;
        size_t n_wait = 0;
        int rc = share_claim(share, p, &wait, &n_wait, err);
        if (rc == 0)
            rc = download_blobs(c, p, share, NULL, err);
        share_settle(share, p, rc == 0);
        if (rc < 0 || n_wait == 0) {
            free(wait);
            return rc;
        }
        share_wait(share, wait, n_wait);
        p->n_blobs = 0; /* n_wait <= the plan's capacity: they came from it */
        for (size_t i = 0; i < n_wait; i++)
            if (!chrun_store_has_blob(c->st, &wait[i].digest))
                p->blobs[p->n_blobs++] = wait[i];
        free(wait);
        if (p->n_blobs == 0)
            return 0;
    }
}

