/* Bundles: an image unpacked into an OCI runtime bundle (BUNDLE/rootfs and
 * BUNDLE/config.json) that `runc run -b BUNDLE` accepts.
 *
 * A bundle is built in a temporary directory beside BUNDLE
 * (".<name>.tmp-<random>", locked with flock while in use) and renamed into
 * place when complete, so a bundle exists only when it is complete: kill -9
 * leaves at most a temporary directory, which the next unpack beside it
 * removes.
 *
 * BUNDLE/config.json is a runtime-spec 1.0.2 config with runc spec's defaults
 * (namespaces pid, network, ipc, uts, mount; /proc, /dev, /dev/pts, /dev/shm,
 * /dev/mqueue, /sys mounts; masked and read-only paths; RLIMIT_NOFILE; the
 * default capability set; terminal off; root "rootfs", writable) and the
 * image's Entrypoint+Cmd, Env (PATH defaulted, HOME from the user's passwd
 * entry when absent), WorkingDir and User (names resolved through the
 * rootfs' /etc/passwd and /etc/group, never the host's). Its annotations:
 *   "io.chrun.image.manifest-digest"   the image manifest digest (identity of
 *                                      the bundle: re-running with the same
 *                                      image is a no-op);
 *   "org.opencontainers.image.ref.name" the full reference, when the image has one;
 *   "io.chrun.bundle.idmap"            when an ordinary user unpacked it in a user
 *                                      namespace with subordinate ids (see
 *                                      chrun/userns.h): that mapping, as
 *                                      chrun_idmap_format writes it. Files
 *                                      owned by image uid N > 0 belong to host
 *                                      uid START+N-1; chrun-exec runs such a
 *                                      bundle only with the same mapping.
 *
 * An ordinary user with subordinate ids unpacks in a forked child inside
 * such a namespace, as (namespaced) root, so files get the image's owners;
 * device nodes are still skipped. Without subordinate ids every file
 * belongs to the caller, as before. */
#ifndef CHRUN_BUNDLE_H
#define CHRUN_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/store.h"

#define CHRUN_BUNDLE_ANNOTATION_DIGEST "io.chrun.image.manifest-digest"
#define CHRUN_BUNDLE_ANNOTATION_IDMAP "io.chrun.bundle.idmap"

struct chrun_unpack_opts {
    const char *platform; /* "os/arch[/variant]" for an index; NULL = host */
    bool force;           /* replace a bundle of another image */
};
#define CHRUN_UNPACK_OPTS_INIT {NULL, false}

/* Unpack IMAGE (anything chrun_store_resolve takes) into BUNDLE (NULL:
 * $CHRUN_ROOT/bundles/<12 hex of manifest digest>); write the bundle's
 * absolute path to RET_PATH (SIZE bytes). Re-running on a complete bundle of
 * the same image returns at once. A bundle of another image (or any other
 * non-empty directory) at BUNDLE fails with CHRUN_E_EXISTS unless
 * OPTS->force (OPTS may be NULL). Bad layers fail with CHRUN_E_INPUT or
 * CHRUN_E_DIGEST and leave nothing at BUNDLE. Returns 0 or -1. */
int chrun_bundle_unpack(struct chrun_store *st, const char *image, const char *bundle,
                        const struct chrun_unpack_opts *opts, char *ret_path, size_t size,
                        struct chrun_err *err);

/* Write to RET_DIGEST (CHRUN_DIGEST_STR_MAX bytes) the manifest digest
 * recorded in the config.json of the bundle open at BUNDLEFD. Fails with
 * CHRUN_E_NOTFOUND when BUNDLEFD holds no chrun bundle. Returns 0 or -1. */
int chrun_bundle_manifest_digest(int bundlefd, char *ret_digest, struct chrun_err *err);

/* Make BUNDLEFD/rootfs and apply N layers into it, in order, through one
 * layer applier: APPLY_ONE(DATA, APPLIER, I, ERR) applies layer I (from the
 * store, or from a blob still downloading); then the applier's deferred
 * directory metadata is set. Returns 0, or -1 with ERR (the first failure;
 * the caller discards the bundle). */
struct chrun_layer_applier;
int chrun_bundle_apply_rootfs(int bundlefd, size_t n,
                              int (*apply_one)(void *data, struct chrun_layer_applier *a,
                                               size_t i, struct chrun_err *err),
                              void *data, struct chrun_err *err);

/* A bundle being made: a temporary directory beside its target (as the
 * header comment says), locked while it lives. chrun_bundle_unpack makes
 * one from the store; chrun-pull --unpack fills one while the layers
 * download (src/pull-feed.c). */
struct chrun_bundle_staging;

/* Begin the bundle of manifest MD at BUNDLE (NULL: the cached bundle
 * $CHRUN_ROOT/bundles/<12 hex>), applying chrun_bundle_unpack's rules to
 * what is there (FORCE as opts->force). Returns 0 with *RET set (fill
 * chrun_bundle_staging_fd(*RET): rootfs with chrun_bundle_apply_rootfs,
 * then chrun_bundle_write_image_config, then publish; end with
 * chrun_bundle_staging_free); 1 when BUNDLE already holds this image's
 * complete bundle (*RET NULL, nothing to do); -1 with ERR (CHRUN_E_EXISTS:
 * another image or a non-empty directory is there). */
int chrun_bundle_staging_begin(struct chrun_store *st, const char *bundle,
                               const struct chrun_digest *md, bool force,
                               struct chrun_bundle_staging **ret, struct chrun_err *err);

/* The temporary bundle directory (O_PATH) to fill. */
int chrun_bundle_staging_fd(const struct chrun_bundle_staging *bs);

/* The bundle's final absolute path. */
const char *chrun_bundle_staging_path(const struct chrun_bundle_staging *bs);

/* Rename the finished staging bundle into place (replacing what begin was
 * told to replace; a concurrent maker's complete bundle of the same image
 * is kept). Returns 0 or -1. */
int chrun_bundle_staging_publish(struct chrun_bundle_staging *bs, struct chrun_err *err);

/* Remove what is left of an unpublished staging bundle and free BS (NULL
 * is fine). */
void chrun_bundle_staging_free(struct chrun_bundle_staging *bs);

/* Write BUNDLEFD/config.json for IMAGE_CONFIG over the finished rootfs at
 * BUNDLEFD/rootfs as chrun_bundle_unpack writes it: MANIFEST_DIGEST's
 * annotation, REF's ("" or NULL: none) and IDMAP's (chrun_idmap_format's
 * text, or NULL). Returns 0 or -1. */
int chrun_bundle_write_image_config(int bundlefd, json_t *image_config,
                                    const char *manifest_digest, const char *ref,
                                    const char *idmap, struct chrun_err *err);

/* Write BUNDLEFD/config.json (replacing one that is there) for the image
 * config IMAGE_CONFIG and the rootfs already at BUNDLEFD/rootfs, as an
 * unpack would, without a manifest digest annotation: chrun-build runs its
 * RUN steps through it. Returns 0 or -1. */
int chrun_bundle_write_config(int bundlefd, json_t *image_config, struct chrun_err *err);

#endif
