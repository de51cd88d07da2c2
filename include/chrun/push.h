/* Registry API v2 client, push side: upload a stored image to a registry.
 *
 * chrun_push_image sends an image from the store to DEST_REF in the order a
 * registry needs: for each image manifest its config and layer blobs, then
 * the manifest; for an index, every child manifest by digest first and the
 * index last. Each blob is asked for with HEAD and skipped when the
 * repository has it; else, when the store names the same image in another
 * repository of the same registry, it is mounted from there (POST
 * ?mount=&from=); else uploaded: one PUT for blobs up to the chunk size,
 * PATCH chunks and a closing PUT for bigger ones. Bodies stream from the
 * store's blob files: memory use does not grow with the blob size.
 *
 * Authentication and network rules are those of chrun_registry_pull
 * (registry.h): credentials from docker's config.json, Basic or a Bearer
 * token (scope repository:NAME:pull,push, plus repository:FROM:pull for
 * mounts), the Authorization header only for the registry's own origin
 * (an upload Location on another host gets none), timeouts, and retries of
 * requests that are safe to repeat; a failed upload starts over with a new
 * upload session rather than guess what the registry kept.
 *
 * Signatures, attestations, SBOMs and referrers attached to the image
 * (attach.h) are pushed after it, unless opts->no_signatures: cosign's
 * under their tag sha256-<hex>.sig|.att|.sbom in DEST's repository,
 * referrers by digest (and in the fallback index tag sha256-<hex> when the
 * registry has no referrers API).
 *
 * This lives apart from registry.h so that a reader finds push by file
 * name; both sit on the client core in src/registry-client.c. */
#ifndef CHRUN_PUSH_H
#define CHRUN_PUSH_H

#include <stdbool.h>
#include <stdint.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/settings.h"
#include "chrun/store.h"

struct chrun_push_opts {
    uint64_t chunk_size_bytes; /* PATCH size; 0 = settings->push_chunk_bytes */
    bool progress;             /* bars on stderr (drawn only if it is a terminal) */
    bool no_signatures;        /* leave out what is attached to the image (attach.h) */
    /* Timeouts, insecure registries, docker's config directory, the chunk
     * size (settings.h); NULL = defaults. Borrowed for the call. */
    const struct chrun_settings *settings;
};

#define CHRUN_PUSH_OPTS_INIT {0, false, false, NULL}

/* Push IMAGE (anything chrun_store_resolve takes) from ST to DEST_REF (a
 * docker-normalized reference; a tag, or a digest that must be IMAGE's).
 * The store is only read. The digest of the top manifest pushed (the index
 * for an image stored as an index) is written to RET_DIGEST. On failure ERR
 * holds one line: CHRUN_E_NOTFOUND (no such image, or a blob or manifest the
 * image needs is missing from the store), CHRUN_E_INPUT (DEST_REF malformed
 * or pinning another digest, hostile replies), CHRUN_E_AUTH,
 * CHRUN_E_NETWORK (with the registry's own words when it gave any),
 * CHRUN_E_DIGEST (the registry reports another digest than the content's).
 * Returns 0 or -1. */
int chrun_push_image(struct chrun_store *st, const char *image, const char *dest_ref,
                     const struct chrun_push_opts *opts, struct chrun_digest *ret_digest,
                     struct chrun_err *err);

#endif
