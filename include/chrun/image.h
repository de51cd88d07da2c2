/* Named-image operations over the store: tag, untag, list, inspect. */
#ifndef CHRUN_IMAGE_H
#define CHRUN_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "chrun/err.h"
#include "chrun/manifest.h"
#include "chrun/ref.h"
#include "chrun/store.h"

/* Name the image IMAGE (anything chrun_store_resolve takes) NEWREF. The full
 * normalized NEWREF is written to RET_FULL. Returns 0 or -1. */
int chrun_image_tag(struct chrun_store *st, const char *image, const char *newref,
                    char *ret_full, size_t size, struct chrun_err *err);

/* Remove the name REF (normalized first; a digest is refused: names only).
 * The full name is written to RET_FULL. Blobs stay until gc. Returns 0 or -1. */
int chrun_image_untag(struct chrun_store *st, const char *ref, char *ret_full, size_t size,
                      struct chrun_err *err);

struct chrun_image_info {
    struct chrun_store_image image;
    int64_t size_bytes;  /* manifest + config + layers (compressed), -1 if unknown */
    char created[64];    /* config "created", or "" */
    char platform[96];   /* os/arch[/variant] of the image's config, or "" */
};

/* Describe every named image. *ret (caller frees) holds *ret_n entries.
 * Images whose blobs are missing are listed with size_bytes -1. */
int chrun_image_list(struct chrun_store *st, struct chrun_image_info **ret, size_t *ret_n,
                     struct chrun_err *err);

/* The manifest and config of IMAGE as one JSON object:
 * {"Ref","Digest","MediaType","Manifest","Config"} (for an index also
 * "Index" and the platform manifest chosen for PLATFORM, NULL = host).
 * *ret is a new reference. Returns 0 or -1. */
int chrun_image_inspect(struct chrun_store *st, const char *image, const char *platform,
                        json_t **ret, struct chrun_err *err);

/* True when MEDIA_TYPE is an image config (OCI's or docker's): a manifest
 * with another config media type is an artifact (a signature, an SBOM, a
 * chart), stored and moved like an image but never run. */
bool chrun_image_is_config_type(const char *media_type);

/* Resolve IMAGE (anything chrun_store_resolve takes) for unpacking, exporting
 * or running it: its image manifest (for an index, the entry for PLATFORM,
 * NULL = host) into *M (chrun_manifest_release), the resolved store image
 * into *RET_IMG and the manifest's digest into *RET_DIGEST (both may be
 * NULL). SPEC "Bad input": an artifact fails with CHRUN_E_INPUT "an artifact
 * (config media type X), not a runnable image", *M untouched. Returns 0 or -1. */
int chrun_image_load_runnable(struct chrun_store *st, const char *image, const char *platform,
                              struct chrun_manifest *m, struct chrun_store_image *ret_img,
                              struct chrun_digest *ret_digest, struct chrun_err *err);

#endif
