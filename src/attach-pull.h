/* Fetching what is attached to a pulled image (chrun-pull --signatures);
 * internal to libchrun, not installed. */
#ifndef CHRUN_ATTACH_PULL_H
#define CHRUN_ATTACH_PULL_H

#include "chrun/digest.h"
#include "chrun/err.h"
#include "registry-client.h"

/* Bounds on what one image's attachments may bring (SPEC "Bad input"): a
 * blob of a .att, .sbom or referrer artifact, and all of them together.
 * Signature payloads are capped at CHRUN_COSIGN_PAYLOAD_MAX and every
 * artifact at CHRUN_COSIGN_LAYERS_MAX layers. */
#define CHRUN_ATTACH_BLOB_MAX (16 * 1024 * 1024)
#define CHRUN_ATTACH_TOTAL_MAX (64 * 1024 * 1024)
/* Referrers of one image taken at most. */
#define CHRUN_ATTACH_REFERRERS_MAX 64

/* Fetch from C's repository what is attached to SUBJECT: cosign's tags
 * sha256-<hex>.sig, .att and .sbom, and OCI 1.1 referrers (the referrers
 * API; on 404 its fallback tag sha256-<hex>). A missing tag is not an
 * error. Everything is fetched and checked (digests, sizes, bounds; a .sig
 * tag must name an image manifest) before anything is written; then the
 * blobs go into the store and each artifact is recorded as an attachment
 * of SUBJECT (attach.h). On failure the store is unchanged. Returns 0 or -1. */
int attach_pull(struct registry_client *c, const struct chrun_digest *subject,
                struct chrun_err *err);

/* For a push of the referrers ATTS (N, all of SUBJECT) to C's repository:
 * the OCI 1.1 fallback index to PUT as tag sha256-<hex>, the registry's
 * current one (if any) with ATTS merged in, as a new string in *RET_TEXT
 * (caller frees). *RET_TEXT is NULL when the registry serves the referrers
 * API, which lists them by itself. Returns 0 or -1. */
struct chrun_attachment;
int attach_referrers_fallback(struct registry_client *c, const struct chrun_digest *subject,
                              const struct chrun_attachment *atts, size_t n, char **ret_text,
                              struct chrun_err *err);

#endif
