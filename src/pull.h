/* Inside the pull (src/pull.c plans, src/pull-download.c downloads): the
 * plan of one image and what several images pulled at once share. */
#ifndef CHRUN_PULL_H
#define CHRUN_PULL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/manifest.h"
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
    } *claims;
    size_t n_claims, cap_claims;
};

/* Wait for a connection, for a manifest request. Callers hold none while
 * waiting, and download loops never wait for manifests: no deadlock. No-op
 * when SH is NULL. */
void pull_share_wait_slot(struct pull_share *sh);

/* Give back a connection taken with pull_share_wait_slot (SH may be NULL). */
void pull_share_give_slot(struct pull_share *sh);

/* Download and verify every blob of P->blobs, then publish them all under
 * blobs/ (a failed download publishes none). With SHARE, blobs another image
 * is fetching are waited for instead, and fetched here only if that image
 * failed. Returns 0 or -1 with ERR set. */
int pull_fetch_blobs(struct registry_client *c, struct plan *p, struct pull_share *share,
                     struct chrun_err *err);

#endif
