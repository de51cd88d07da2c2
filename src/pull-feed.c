/* chrun-pull --tree and --unpack: the image's layers applied into a staging
 * tree or bundle while they download. The downloader (pull-download.c) tells the feed where each
 * blob's temporary file is and how far it got; an applier thread reads each
 * layer from that growing file in layer order, waiting on a condition
 * variable for more bytes, and the blob is final only when the downloader
 * verified it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/bundle.h"
#include "chrun/io.h"
#include "chrun/layer.h"
#include "chrun/log.h"
#include "chrun/userns.h"
#include "cleanup.h"
#include "pull.h"
#include "util.h"

enum follow_state {
    FOLLOW_WAITING,   /* no temporary file yet */
    FOLLOW_GROWING,   /* FD reads what the sink has written so far */
    FOLLOW_VERIFIED,  /* every byte written and the digest matched */
    FOLLOW_RESTARTED, /* the download started over from byte 0: FD is stale */
};

struct pull_follow {
    struct chrun_digest d;
    enum follow_state state;
    int fd; /* read-only descriptor of the temporary file, or -1 */
};

struct pull_feed {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long gen;         /* bumped whenever a blob may have grown or settled */
    struct pull_follow *blobs; /* the blobs this pull downloads */
    size_t n_blobs;
    bool ended; /* downloads over: a blob not verified never will be */
    bool done;  /* the applier returned */
    bool stale; /* it stopped because a blob restarted: no tree, no error */
    int rc;     /* its result */
    struct chrun_err err;

    /* applier side */
    struct chrun_store *st;
    struct chrun_manifest m;
    struct chrun_digest md;            /* the image manifest applied */
    struct chrun_bundle_staging *bs;   /* the bundle made, or NULL: a tree */
    struct chrun_tree_staging ts;      /* the tree made (without BS) */
    char ref[CHRUN_REF_STR_MAX];       /* the name BS's config records */
    pthread_t thread;
    bool started;
};

/* One blob being read by the applier. FD and OFF are the layer's producer
 * thread's, read atomically by reader_behind on the applier's. */
struct feed_reader {
    struct pull_feed *feed;
    struct pull_follow *f; /* NULL: the blob was in the store already */
    int fd;
    uint64_t off;
};

/* Bytes downloaded but not yet read past which the applier, not the link,
 * sets the pace: more than the layer stream's read-ahead. */
#define FEED_BACKLOG (8u << 20)

static struct pull_follow *feed_find(struct pull_feed *feed, const struct chrun_digest *d)
{
    for (size_t i = 0; i < feed->n_blobs; i++)
        if (streq(feed->blobs[i].d.str, d->str))
            return &feed->blobs[i];
    return NULL;
}

struct pull_follow *pull_feed_follow(struct pull_feed *feed, const struct chrun_digest *d)
{
    return feed == NULL ? NULL : feed_find(feed, d);
}

static void feed_bump(struct pull_feed *feed)
{
    feed->gen++;
    pthread_cond_broadcast(&feed->cv);
}

void pull_feed_opened(struct pull_feed *feed, struct pull_follow *f, struct chrun_store_writer *w)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    int fd;
    if (f == NULL || f->state != FOLLOW_WAITING)
        return;
    /* a descriptor of its own: it outlives the writer and the rename into blobs/ */
    fd = chrun_store_writer_reopen(w, &ignored);
    pthread_mutex_lock(&feed->mu);
    f->fd = fd;
    f->state = fd >= 0 ? FOLLOW_GROWING : FOLLOW_RESTARTED;
    feed_bump(feed);
    pthread_mutex_unlock(&feed->mu);
}

void pull_feed_grew(struct pull_feed *feed, struct pull_follow *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&feed->mu);
    feed_bump(feed);
    pthread_mutex_unlock(&feed->mu);
}

static void feed_settle(struct pull_feed *feed, struct pull_follow *f, enum follow_state state)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&feed->mu);
    if (f->state != FOLLOW_RESTARTED)
        f->state = state;
    feed_bump(feed);
    pthread_mutex_unlock(&feed->mu);
}

void pull_feed_verified(struct pull_feed *feed, struct pull_follow *f)
{
    feed_settle(feed, f, FOLLOW_VERIFIED);
}

void pull_feed_restarted(struct pull_feed *feed, struct pull_follow *f)
{
    feed_settle(feed, f, FOLLOW_RESTARTED);
}

/* The downloads are over (OK: all verified). */
static void feed_end(struct pull_feed *feed)
{
    pthread_mutex_lock(&feed->mu);
    feed->ended = true;
    feed_bump(feed);
    pthread_mutex_unlock(&feed->mu);
}

int pull_feed_wait_applied(struct pull_feed *feed, struct chrun_err *err)
{
    int rc = 0;
    if (feed == NULL)
        return 0;
    pthread_mutex_lock(&feed->mu);
    while (!feed->done)
        pthread_cond_wait(&feed->cv, &feed->mu);
    if (feed->rc < 0 && !feed->stale) {
        *err = feed->err;
        rc = -1;
    }
    pthread_mutex_unlock(&feed->mu);
    return rc;
}

/* Until F has a file to read (or never will): its descriptor, or -1. */
static int reader_attach(struct feed_reader *r, struct chrun_err *err)
{
    struct pull_feed *feed = r->feed;
    struct pull_follow *f = r->f;
    enum follow_state state;
    int fd = -1;

    pthread_mutex_lock(&feed->mu);
    while (f->state == FOLLOW_WAITING && !feed->ended)
        pthread_cond_wait(&feed->cv, &feed->mu);
    state = f->state;
    if (state == FOLLOW_GROWING || state == FOLLOW_VERIFIED)
        fd = fcntl(f->fd, F_DUPFD_CLOEXEC, 0);
    pthread_mutex_unlock(&feed->mu);
    if (fd >= 0)
        return fd;
    if (state == FOLLOW_RESTARTED) {
        feed->stale = true;
        return chrun_err_set(err, CHRUN_E_SYS, "blob %s: download restarted", f->d.str);
    }
    if (state == FOLLOW_GROWING || state == FOLLOW_VERIFIED)
        return chrun_err_sys(err, errno, "blob %s: duplicate descriptor", f->d.str);
    return chrun_err_set(err, CHRUN_E_NETWORK, "blob %s: download failed", f->d.str);
}

/* chrun_layer_source.read over a growing temporary file: what is there,
 * then wait for the downloader to say more came or the blob is final. */
static ssize_t reader_read(void *data, void *buf, size_t cap, struct chrun_err *err)
{
    struct feed_reader *r = data;
    struct pull_feed *feed = r->feed;
    size_t got = 0;

    if (r->f == NULL)
        return chrun_io_read_full(r->fd, buf, cap, err);
    if (r->fd < 0) {
        int fd = reader_attach(r, err);
        if (fd < 0)
            return -1;
        __atomic_store_n(&r->fd, fd, __ATOMIC_RELEASE);
    }
    while (got < cap) {
        unsigned long gen;
        enum follow_state state;
        ssize_t n;

        pthread_mutex_lock(&feed->mu);
        gen = feed->gen;
        state = r->f->state;
        pthread_mutex_unlock(&feed->mu);
        if (state == FOLLOW_RESTARTED) {
            feed->stale = true;
            return chrun_err_set(err, CHRUN_E_SYS, "blob %s: download restarted", r->f->d.str);
        }
        n = pread(r->fd, (char *) buf + got, cap - got, (off_t) r->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return chrun_err_sys(err, errno, "read blob %s", r->f->d.str);
        __atomic_store_n(&r->off, r->off + (uint64_t) n, __ATOMIC_RELAXED);
        got += (size_t) n;
        if (n > 0)
            continue;
        /* nothing new: the blob's end once verified (its bytes were all
         * written before), else wait for a sign from the downloader */
        if (state == FOLLOW_VERIFIED)
            break;
        pthread_mutex_lock(&feed->mu);
        while (feed->gen == gen && !feed->ended)
            pthread_cond_wait(&feed->cv, &feed->mu);
        state = r->f->state;
        if (feed->ended && state != FOLLOW_VERIFIED && state != FOLLOW_RESTARTED) {
            pthread_mutex_unlock(&feed->mu);
            return chrun_err_set(err, CHRUN_E_NETWORK, "blob %s: download failed", r->f->d.str);
        }
        pthread_mutex_unlock(&feed->mu);
    }
    return (ssize_t) got;
}

/* chrun_layer_source.behind: has the download a backlog the applier has
 * not read? (A blob from the store is all there.) */
static bool reader_behind(void *data)
{
    struct feed_reader *r = data;
    int fd = __atomic_load_n(&r->fd, __ATOMIC_ACQUIRE);
    struct stat st;
    if (r->f == NULL)
        return true;
    if (fd < 0 || fstat(fd, &st) < 0)
        return fd >= 0;
    return (uint64_t) st.st_size > __atomic_load_n(&r->off, __ATOMIC_RELAXED) + FEED_BACKLOG;
}

static void reader_close(struct feed_reader *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

/* Open blob D for the applier: from the store, or following its download. */
static int reader_open(struct pull_feed *feed, const struct chrun_descriptor *d,
                       struct feed_reader *r, struct chrun_err *err)
{
    memset(r, 0, sizeof(*r));
    r->feed = feed;
    r->fd = -1;
    r->f = feed_find(feed, &d->digest);
    if (r->f != NULL)
        return 0;
    r->fd = chrun_store_open_blob(feed->st, &d->digest, err);
    return r->fd < 0 ? -1 : 0;
}

/* Whether the blob of R is still downloading. */
static bool reader_growing(struct feed_reader *r)
{
    bool growing;
    if (r->f == NULL)
        return false;
    pthread_mutex_lock(&r->feed->mu);
    growing = r->f->state != FOLLOW_VERIFIED;
    pthread_mutex_unlock(&r->feed->mu);
    return growing;
}

/* The image config, once its blob is complete and matches its digest. */
static int read_config(struct pull_feed *feed, struct chrun_image_config *cfg,
                       struct chrun_err *err)
{
    const struct chrun_descriptor *d = &feed->m.config;
    cleanup_free char *buf = NULL;
    struct feed_reader r;
    struct chrun_digest got;
    ssize_t n;

    if (d->size < 0 || d->size > CHRUN_CONFIG_MAX)
        return chrun_err_sys(err, EFBIG, "config %s", d->digest.str);
    buf = malloc((size_t) d->size + 1);
    if (buf == NULL)
        return chrun_err_sys(err, ENOMEM, "config %s", d->digest.str);
    if (reader_open(feed, d, &r, err) < 0)
        return -1;
    n = reader_read(&r, buf, (size_t) d->size + 1, err);
    reader_close(&r);
    if (n < 0)
        return -1;
    if (n != d->size)
        return chrun_err_set(err, CHRUN_E_DIGEST, "config %s: %zd bytes, descriptor says %" PRId64,
                             d->digest.str, n, d->size);
    if (chrun_digest_of_buffer(&got, buf, (size_t) n, err) < 0)
        return -1;
    if (!streq(got.str, d->digest.str))
        return chrun_err_set(err, CHRUN_E_DIGEST, "config %s: digest mismatch: content is %s",
                             d->digest.str, got.str);
    return chrun_image_config_parse(cfg, buf, (size_t) n, err);
}

struct feed_layers {
    struct pull_feed *feed;
    const struct chrun_image_config *cfg;
};

/* Layer I from its blob's temporary file, as it grows. */
static int apply_fed(void *data, struct chrun_layer_applier *a, size_t i, struct chrun_err *err)
{
    const struct feed_layers *fl = data;
    struct pull_feed *feed = fl->feed;
    const struct chrun_descriptor *d = &feed->m.layers[i];
    struct chrun_layer_source src;
    struct feed_reader r;
    int rc;
    if (reader_open(feed, d, &r, err) < 0)
        return -1;
    /* the event tests look for: this layer is applied as it arrives */
    if (reader_growing(&r))
        chrun_log_debug("applying layer %zu/%zu %s while it downloads", i + 1, feed->m.n_layers,
                        d->digest.str);
    src.read = reader_read;
    src.behind = reader_behind;
    src.data = &r;
    rc = chrun_layer_apply_source(a, &src, d, &fl->cfg->diff_ids[i], err);
    reader_close(&r);
    return rc;
}

/* Apply every layer into the staging bundle at BUNDLEFD and write its
 * config as chrun-unpack writes it (recording the user namespace chrun-pull
 * entered, if it did). */
static int apply_all(struct pull_feed *feed, int bundlefd, const struct chrun_image_config *cfg,
                     struct chrun_err *err)
{
    struct feed_layers fl = {feed, cfg};
    if (chrun_bundle_apply_rootfs(bundlefd, feed->m.n_layers, apply_fed, &fl, err) < 0)
        return -1;
    return chrun_bundle_write_image_config(bundlefd, cfg->json, feed->md.str, feed->ref,
                                           chrun_userns_entered_idmap(), err);
}

/* The staging bundle to fill: BS's directory, or the tree's "b". */
static int open_bundle(struct pull_feed *feed, struct chrun_err *err)
{
    int fd;
    if (feed->bs != NULL) {
        fd = fcntl(chrun_bundle_staging_fd(feed->bs), F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            return chrun_err_sys(err, errno, "bundle '%s'", chrun_bundle_staging_path(feed->bs));
        return fd;
    }
    if (mkdirat(feed->ts.dir_fd, "b", 0700) < 0 ||
        (fd = openat(feed->ts.dir_fd, "b", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
        return chrun_err_sys(err, errno, "create '%s'", feed->ts.bundle);
    return fd;
}

static int apply_image(struct pull_feed *feed, struct chrun_err *err)
{
    struct chrun_image_config cfg;
    cleanup_close int bundlefd = -1;
    int rc;

    if (read_config(feed, &cfg, err) < 0)
        return -1;
    if (cfg.n_diff_ids != feed->m.n_layers)
        rc = chrun_err_set(err, CHRUN_E_INPUT,
                           "manifest %s has %zu layers but its config lists %zu diff_ids",
                           feed->md.str, feed->m.n_layers, cfg.n_diff_ids);
    else if ((bundlefd = open_bundle(feed, err)) < 0)
        rc = -1;
    else
        rc = apply_all(feed, bundlefd, &cfg, err);
    chrun_image_config_release(&cfg);
    return rc;
}

static void *applier_main(void *arg)
{
    struct pull_feed *feed = arg;
    struct chrun_err err = CHRUN_ERR_INIT;
    int rc = apply_image(feed, &err);
    if (rc < 0 && feed->stale)
        chrun_log_debug("%s of %s left to be unpacked after the pull: %s",
                        feed->bs ? "bundle" : "tree", feed->md.str, err.msg);
    pthread_mutex_lock(&feed->mu);
    feed->rc = rc;
    feed->err = err;
    feed->done = true;
    pthread_cond_broadcast(&feed->cv);
    pthread_mutex_unlock(&feed->mu);
    return NULL;
}

struct pull_feed *pull_feed_start(struct chrun_store *st, const struct chrun_digest *md,
                                  const char *buf, size_t len, const char *media_type,
                                  const struct chrun_descriptor *blobs, size_t n_blobs,
                                  struct chrun_bundle_staging *bs, const char *ref,
                                  struct chrun_err *err)
{
    cleanup_free struct pull_feed *feed = calloc(1, sizeof(*feed));
    int prc;

    if (feed == NULL) {
        chrun_bundle_staging_free(bs);
        chrun_err_sys(err, ENOMEM, "unpack %s", md->str);
        return NULL;
    }
    feed->st = st;
    feed->md = *md;
    feed->bs = bs;
    snprintf(feed->ref, sizeof(feed->ref), "%s", ref != NULL ? ref : "");
    feed->ts.trees_fd = feed->ts.dir_fd = -1;
    if (chrun_manifest_parse(&feed->m, buf, len, media_type, err) < 0) {
        chrun_bundle_staging_free(bs);
        chrun_err_prefix(err, "manifest %s", md->str);
        return NULL;
    }
    if (feed->m.is_index) {
        chrun_bundle_staging_free(bs);
        chrun_manifest_release(&feed->m);
        chrun_err_set(err, CHRUN_E_INPUT, "manifest %s: an index has no root filesystem", md->str);
        return NULL;
    }
    feed->blobs = calloc(n_blobs ? n_blobs : 1, sizeof(*feed->blobs));
    if (feed->blobs == NULL || (bs == NULL && chrun_tree_staging_begin(st, md, &feed->ts, err) < 0)) {
        if (feed->blobs == NULL)
            chrun_err_sys(err, ENOMEM, "unpack %s", md->str);
        chrun_bundle_staging_free(bs);
        chrun_tree_staging_release(&feed->ts);
        chrun_manifest_release(&feed->m);
        free(feed->blobs);
        return NULL;
    }
    feed->n_blobs = n_blobs;
    for (size_t i = 0; i < n_blobs; i++) {
        feed->blobs[i].d = blobs[i].digest;
        feed->blobs[i].fd = -1;
    }
    pthread_mutex_init(&feed->mu, NULL);
    pthread_cond_init(&feed->cv, NULL);
    prc = pthread_create(&feed->thread, NULL, applier_main, feed);
    if (prc != 0) {
        chrun_err_sys(err, prc, "start the tree thread");
        feed->done = true;
        feed->rc = -1;
        feed->err = *err;
    } else {
        feed->started = true;
    }
    return take_ptr(feed);
}

int pull_feed_finish(struct pull_feed *feed, bool publish, struct chrun_err *err)
{
    int rc = 0;
    if (feed == NULL)
        return 0;
    feed_end(feed);
    if (feed->started)
        pthread_join(feed->thread, NULL);
    feed->started = false;
    if (!publish || feed->rc != 0)
        return 0;
    if (feed->bs != NULL)
        rc = chrun_bundle_staging_publish(feed->bs, err);
    else
        rc = chrun_tree_staging_publish(&feed->ts, err);
    if (rc == 0)
        chrun_log_debug("%s of %s made while it downloaded", feed->bs ? "bundle" : "tree",
                        feed->md.str);
    return rc;
}

void pull_feed_free(struct pull_feed *feed)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    if (feed == NULL)
        return;
    pull_feed_finish(feed, false, &ignored);
    chrun_bundle_staging_free(feed->bs);
    chrun_tree_staging_release(&feed->ts);
    for (size_t i = 0; i < feed->n_blobs; i++)
        if (feed->blobs[i].fd >= 0)
            close(feed->blobs[i].fd);
    free(feed->blobs);
    chrun_manifest_release(&feed->m);
    pthread_cond_destroy(&feed->cv);
    pthread_mutex_destroy(&feed->mu);
    free(feed);
}
