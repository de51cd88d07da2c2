/* Inside the pull (src/pull.c plans, src/pull-download.c downloads): the
 * plan of one image and what several images pulled at once share. */
#ifndef CHRUN_PULL_H
#define CHRUN_PULL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "chrun/bundle.h"
#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/manifest.h"
#include "chrun/store.h"
#include "chrun/tree.h"
#include "registry-client.h"

/* A manifest fetched by this pull, published after the blobs. */
struct fetched {
    char *buf;
    size_t len;
    struct chrun_digest digest;
    char media_type[CHRUN_MEDIA_TYPE_MAX];
};

struct plan {
    struct fetched *manifests; /* fetched now; published after the blobs */
    size_t n_manifests, cap_manifests;
    struct chrun_descriptor *blobs; /* missing from the store */
    size_t n_blobs, cap_blobs;
    bool have_result;
    struct chrun_descriptor result; /* what REF names in index.json */
    struct pull_share *share;       /* several images at once, or NULL */
};

/* Several images pulled at once (chrun_registry_pull_many), one thread
 * each: connections are counted across all of them, and a blob two images
 * need is downloaded by the first that claims it while the other waits. A
 * thread waits only after its own claims are settled, so no two wait on
 * each other. */
struct pull_share {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int free_slots; /* connections not in use, of opts->jobs */
    struct claim {
        struct chrun_digest d;
        enum { CLAIM_BUSY, CLAIM_DONE, CLAIM_FAILED } state;
    } * claims;
    size_t n_claims, cap_claims;
};

/* Wait for a connection, for a manifest request. Callers hold none while
 * waiting, and download loops never wait for manifests: no deadlock. No-op
 * when SH is NULL. */
void pull_share_wait_slot(struct pull_share *sh);

/* Give back a connection taken with pull_share_wait_slot (SH may be NULL). */
void pull_share_give_slot(struct pull_share *sh);

/* The tree or bundle of the pulled image, made while its blobs download
 * (src/pull-feed.c; chrun_pull_opts.tree and .unpack). */
struct pull_feed;
/* One blob the feed follows. */
struct pull_follow;

/* Download and verify every blob of P->blobs, then publish them all under
 * blobs/ (a failed download publishes none). With SHARE, blobs another image
 * is fetching are waited for instead, and fetched here only if that image
 * failed. With FEED (may be NULL) each blob's progress is told to it, and
 * the blobs are published only after its applier succeeded. Returns 0 or -1
 * with ERR set. */
int pull_fetch_blobs(struct registry_client *c, struct plan *p, struct pull_share *share,
                     struct pull_feed *feed, struct chrun_err *err);

/* Start applying the image manifest MD (LEN bytes at BUF, of MEDIA_TYPE)
 * on a thread of its own: into the staging bundle BS (taken, freed with
 * the feed or on failure; its config records REF), or with BS NULL into a
 * staging tree (chrun_tree_staging_begin). BLOBS (N_BLOBS) are the blobs
 * this pull downloads: the applier follows them as they grow; any other
 * blob is read from the store. Returns the feed (end with pull_feed_free)
 * or NULL with ERR set. */
struct pull_feed *pull_feed_start(struct chrun_store *st, const struct chrun_digest *md,
                                  const char *buf, size_t len, const char *media_type,
                                  const struct chrun_descriptor *blobs, size_t n_blobs,
                                  struct chrun_bundle_staging *bs, const char *ref,
                                  struct chrun_err *err);

/* The downloader's side, each a no-op for a NULL FEED or F. F is what
 * pull_feed_follow returned for the blob (NULL: not followed). */
struct pull_follow *pull_feed_follow(struct pull_feed *feed, const struct chrun_digest *d);
/* The blob's temporary file exists: W is its writer. */
void pull_feed_opened(struct pull_feed *feed, struct pull_follow *f, struct chrun_store_writer *w);
/* More bytes were queued for the file. */
void pull_feed_grew(struct pull_feed *feed, struct pull_follow *f);
/* All bytes are written and the digest matched. */
void pull_feed_verified(struct pull_feed *feed, struct pull_follow *f);
/* The file was dropped and the download starts over: what the applier read
 * is stale, so it gives up without an error (the tree is left to be made
 * after the pull). */
void pull_feed_restarted(struct pull_feed *feed, struct pull_follow *f);
/* Wait for the applier to return; -1 with its error when it failed for any
 * reason but a restart. */
int pull_feed_wait_applied(struct pull_feed *feed, struct chrun_err *err);

/* End the downloads' side (a blob not verified now never will be), wait
 * for the applier and, with PUBLISH and a complete tree or bundle, rename
 * it into place. Returns 0 or -1 with ERR set (the rename failed). */
int pull_feed_finish(struct pull_feed *feed, bool publish, struct chrun_err *err);

/* Finish without publishing (if not done), remove the staging directory and
 * free FEED. NULL is fine. */
void pull_feed_free(struct pull_feed *feed);

#endif
