/* cosign "simple signing" signatures of images, made and checked offline.
 *
 * A cosign signature artifact is an OCI image manifest (attached to the
 * signed image, see attach.h; cosign's tag "sha256-<hex>.sig") whose every
 * layer is one signature: the layer blob is the payload, a JSON document
 *
 *   {"critical":{"identity":{"docker-reference":REPO},
 *                "image":{"docker-manifest-digest":DIGEST},
 *                "type":"cosign container image signature"},
 *    "optional":null | {"key":"value",...}}
 *
 * of media type application/vnd.dev.cosign.simplesigning.v1+json, and the
 * layer's annotation dev.cosignproject.cosign/signature holds the base64
 * signature over the payload bytes (key.h says which schemes). No
 * transparency log (Rekor) and no certificate (Fulcio) is consulted: a
 * signature is valid when the given public key verifies it. */
#ifndef CHRUN_COSIGN_H
#define CHRUN_COSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/key.h"
#include "chrun/store.h"

#define CHRUN_COSIGN_MT_PAYLOAD "application/vnd.dev.cosign.simplesigning.v1+json"
#define CHRUN_COSIGN_ANNOTATION_SIGNATURE "dev.cosignproject.cosign/signature"
#define CHRUN_COSIGN_TYPE "cosign container image signature"
/* artifactType of a cosign signature stored as an OCI 1.1 referrer */
#define CHRUN_COSIGN_ARTIFACT_SIG "application/vnd.dev.cosign.artifact.sig.v1+json"
/* Bounds on a signature artifact (SPEC "Bad input"): layers (signatures)
 * in one manifest, bytes of one payload, characters of one base64
 * signature annotation. */
#define CHRUN_COSIGN_LAYERS_MAX 1000
#define CHRUN_COSIGN_PAYLOAD_MAX (4 * 1024 * 1024)
#define CHRUN_COSIGN_SIG_B64_MAX 4096
/* Most -a KEY=VALUE pairs one call takes, and the size of a KEY (with NUL). */
#define CHRUN_COSIGN_ANNOTATIONS_MAX 64
#define CHRUN_COSIGN_ANNOTATION_KEY_MAX 256

/* Where the blobs of a signature come from: the store, or the staging area
 * of an archive being loaded. READ_BLOB reads blob D, which a descriptor
 * says is SIZE bytes, into a new NUL-terminated buffer (*RET_BUF, caller
 * frees) of at most MAX bytes, and fails unless the bytes hash to D and
 * number SIZE. Returns 0 or -1. */
struct chrun_cosign_source {
    int (*read_blob)(void *data, const struct chrun_digest *d, int64_t size, size_t max,
                     char **ret_buf, size_t *ret_len, struct chrun_err *err);
    void *data;
};

struct chrun_attachment;
/* True if attachment A is a cosign signature artifact: cosign's .sig tag,
 * or a referrer of artifactType CHRUN_COSIGN_ARTIFACT_SIG. */
bool chrun_cosign_is_signature(const struct chrun_attachment *a);

/* A source reading ST's blobs (chrun_store_read_blob, digest re-checked). */
void chrun_cosign_store_source(struct chrun_cosign_source *src, struct chrun_store *st);

/* What a signature must satisfy besides the subject's digest. */
struct chrun_cosign_opts {
    const struct chrun_key *key;     /* public key (or a private one's public half) */
    const char *const *annotations;  /* "KEY=VALUE", each must be in "optional" */
    size_t n_annotations;
};

/* What verification found: how many signatures were checked and
 * verified, and one line per signature (or artifact) that failed. */
struct chrun_cosign_report {
    size_t n_checked, n_verified;
    char **reasons; /* each a malloc'd line */
    size_t n_reasons;
    size_t cap_reasons; /* slots allocated in reasons */
};

/* Free the contents of R (safe on a zeroed report). */
void chrun_cosign_report_release(struct chrun_cosign_report *r);

/* Check the -a operands: N strings "KEY=VALUE" with a non-empty KEY shorter
 * than CHRUN_COSIGN_ANNOTATION_KEY_MAX, at most CHRUN_COSIGN_ANNOTATIONS_MAX.
 * Returns 0 or -1 (CHRUN_E_USAGE). */
int chrun_cosign_annotations_check(const char *const *a, size_t n, struct chrun_err *err);

/* Check every signature in the signature manifest SIG (SIG_SIZE bytes)
 * against SUBJECT (the signed manifest's digest): bounds, payload digest,
 * signature, critical.type, critical.image.docker-manifest-digest and the
 * annotations. Each failure adds a reason to REP; each success counts in
 * REP->n_verified. Returns 0, or -1 only when the check itself could not
 * run (out of memory, a library failure). */
int chrun_cosign_verify_manifest(const struct chrun_cosign_source *src,
                                 const struct chrun_digest *subject,
                                 const struct chrun_digest *sig, int64_t sig_size,
                                 const struct chrun_cosign_opts *opts,
                                 struct chrun_cosign_report *rep, struct chrun_err *err);

/* Verify the store image IMAGE (anything chrun_store_resolve takes): every
 * cosign signature artifact attached to its digest. *RET_DIGEST gets the
 * image's digest. Returns 0 when at least one signature verified; else -1
 * with ERR saying so (CHRUN_E_INPUT; REP holds the reason per signature)
 * or why verification could not run. */
int chrun_cosign_verify_image(struct chrun_store *st, const char *image,
                              const struct chrun_cosign_opts *opts,
                              struct chrun_digest *ret_digest, struct chrun_cosign_report *rep,
                              struct chrun_err *err);

/* Sign the store image IMAGE (it must have a name, as cosign needs a
 * repository) with private key OPTS->key: write the payload, the signature
 * artifact's config and manifest into the store, appending to the image's
 * existing .sig artifact as cosign does, and record it as an attachment
 * named "<repo>:sha256-<hex>.sig". Signing again with the same key and
 * annotations changes nothing. *RET_DIGEST gets the signature manifest's
 * digest. Returns 0 or -1. */
int chrun_cosign_sign_image(struct chrun_store *st, const char *image,
                            const struct chrun_cosign_opts *opts, struct chrun_digest *ret_digest,
                            struct chrun_err *err);

#endif
