/* chrun-build: an offline builder for a Dockerfile subset (see
 * include/chrun/dockerfile.h for the instructions).
 *
 * The working rootfs is the FROM image (a store image or scratch) applied
 * into a temporary directory tmp/build-<random>/rootfs, removed at the end
 * on every path (and by chrun-gc after a kill -9). RUN goes through the
 * chrun-exec runtime (chrun_runtime_exec) with the image's Env, WorkingDir
 * and User and the ARG values in its environment; its output goes to stderr.
 * Each filesystem-changing step (RUN, COPY, ADD, WORKDIR) becomes one layer
 * holding only what changed (include/chrun/changeset.h); an empty change set
 * adds no layer and its history entry says empty_layer. The image config
 * and the manifest are written with sorted / fixed key order, so the same
 * inputs and SOURCE_DATE_EPOCH (which also caps every mtime) give the same
 * manifest digest.
 *
 * Step cache: $CHRUN_ROOT/build-cache/<hex> files, keyed by the digest of
 * the parent state (the FROM manifest digest and every earlier step with
 * the diff_id it produced), the step text after substitution, the ARG
 * values a RUN sees, and for COPY/ADD a digest of the sources' names, modes
 * and bytes. An entry names a layer blob; it is used only if that blob is
 * still in the store (gc does not know the cache and may remove the blob:
 * the entry is then ignored and rewritten). */
#ifndef CHRUN_BUILD_H
#define CHRUN_BUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/store.h"

#define CHRUN_BUILD_CACHE_DIR "build-cache"

struct chrun_build_opts {
    const char *context;                 /* directory */
    const char *dockerfile;              /* NULL: CONTEXT/Dockerfile */
    const char *const *tags;             /* names for index.json */
    size_t n_tags;
    const char *const *build_args;       /* "K=V", or "K" = our environment's K */
    size_t n_build_args;
    bool no_cache;
};

#define CHRUN_BUILD_OPTS_INIT {NULL, NULL, NULL, 0, NULL, 0, false}

/* Build the image and name it with every tag (normalized references, all
 * checked before any work). The manifest digest is written to RET. Errors
 * name the Dockerfile line. On failure no name is added and tmp/ is left as
 * found. Not thread-safe (RUN forks and redirects fds 0 and 1 meanwhile).
 * Returns 0 or -1. */
int chrun_build(struct chrun_store *st, const struct chrun_build_opts *opts,
                struct chrun_digest *ret, struct chrun_err *err);

#endif
