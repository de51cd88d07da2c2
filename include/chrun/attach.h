/* Artifacts attached to an image: cosign signatures (.sig), attestations
 * (.att) and SBOMs (.sbom), and OCI 1.1 referrers.
 *
 * Representation: an attachment is an ordinary manifest in the store
 * (blobs/sha256/, with its config and layers), recorded in index.json as a
 * descriptor carrying the annotation vnd.chrun.subject = the digest of the
 * manifest it is attached to. Attachments that cosign finds by tag also
 * carry org.opencontainers.image.ref.name = "<repo>:sha256-<hex>.sig"
 * (.att, .sbom), the tag cosign gives them; referrers carry no name.
 *
 * Such entries are not images: chrun_store_list leaves them out, so
 * chrun-images, resolve, unpack and save never take one for an image.
 * chrun-gc keeps an attachment while its subject is kept and drops its
 * entry and blobs with the subject. */
#ifndef CHRUN_ATTACH_H
#define CHRUN_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/ref.h"
#include "chrun/store.h"

#define CHRUN_ANNOTATION_SUBJECT "vnd.chrun.subject"
/* Tag suffixes cosign uses, after "sha256-<hex>". */
#define CHRUN_ATTACH_SUFFIX_SIG ".sig"
#define CHRUN_ATTACH_SUFFIX_ATT ".att"
#define CHRUN_ATTACH_SUFFIX_SBOM ".sbom"

enum chrun_attach_kind {
    CHRUN_ATTACH_REFERRER = 0, /* OCI 1.1 referrer (no tag) */
    CHRUN_ATTACH_SIG,
    CHRUN_ATTACH_ATT,
    CHRUN_ATTACH_SBOM,
};

/* One attachment, as index.json records it. */
struct chrun_attachment {
    struct chrun_digest subject;           /* the manifest it is attached to */
    char ref[CHRUN_REF_STR_MAX];           /* "<repo>:sha256-<hex>.sig", or "" */
    char media_type[CHRUN_MEDIA_TYPE_MAX]; /* of the attachment's manifest */
    char artifact_type[CHRUN_MEDIA_TYPE_MAX]; /* referrers' artifactType, or "" */
    struct chrun_digest digest;
    int64_t size;
};

/* True if the index.json descriptor ENTRY is an attachment (it carries
 * vnd.chrun.subject): the one rule every reader of index.json applies. */
bool chrun_attach_entry_is_attachment(json_t *entry);

/* Parse the descriptor ENTRY (from index.json or an archive's index) into
 * RET. Fails with CHRUN_E_INPUT if the subject, digest, size, media type or
 * name is malformed. Returns 0 or -1. */
int chrun_attach_from_entry(json_t *entry, struct chrun_attachment *ret, struct chrun_err *err);

/* The descriptor JSON for A, with its annotations (a new reference), or
 * NULL when out of memory. */
json_t *chrun_attach_to_entry(const struct chrun_attachment *a);

/* The kind of A: by its tag suffix, else a referrer. */
enum chrun_attach_kind chrun_attach_kind(const struct chrun_attachment *a);

/* "signature", "attestation", "sbom" or "referrer". */
const char *chrun_attach_kind_name(enum chrun_attach_kind kind);

/* Write cosign's tag name for an attachment of SUBJECT in repository REPO
 * ("domain/path"): "<repo>:sha256-<hex><suffix>" into BUF (or just the tag
 * when REPO is NULL). Returns 0 or -1 (too long). */
int chrun_attach_tag_name(const char *repo, const struct chrun_digest *subject,
                          const char *suffix, char *buf, size_t size, struct chrun_err *err);

/* Record A in index.json, replacing an earlier entry with the same name
 * (a re-pulled or re-signed .sig), or with the same subject and digest.
 * The manifest and everything it names must already be in the store.
 * A no-op when identical. Atomic, under locks/index. Returns 0 or -1. */
int chrun_attach_add(struct chrun_store *st, const struct chrun_attachment *a,
                     struct chrun_err *err);

/* chrun_attach_add for a read-modify-write (appending to a .sig): only if
 * the entry A replaces still has digest PREV (NULL: there is none yet);
 * otherwise CHRUN_E_EXISTS and nothing changes, so the caller starts over.
 * Returns 0 or -1. */
int chrun_attach_replace(struct chrun_store *st, const struct chrun_attachment *a,
                         const struct chrun_digest *prev, struct chrun_err *err);

/* The attachments of SUBJECT (NULL: all), in index.json order. *RET
 * (caller frees) holds *RET_N entries. Returns 0 or -1. */
int chrun_attach_list(struct chrun_store *st, const struct chrun_digest *subject,
                      struct chrun_attachment **ret, size_t *ret_n, struct chrun_err *err);

/* Remove from index.json every attachment whose subject KEEP (called with
 * DATA) rejects; *RET_N gets how many (may be NULL). With DRY_RUN nothing
 * is written. chrun-gc calls it under its exclusive lock. Returns 0 or -1. */
int chrun_attach_prune(struct chrun_store *st,
                       bool (*keep)(const struct chrun_digest *subject, void *data), void *data,
                       bool dry_run, size_t *ret_n, struct chrun_err *err);

#endif
