/* chrun-build: an offline builder for the Dockerfile language (see
 * include/chrun/dockerfile.h for the instructions).
 *
 * Stages: only the target stage (--target, else the last) and the stages it
 * needs (FROM <stage>, COPY --from, RUN --mount from=) are built, each once,
 * in the order they are needed; a --from cycle is an error naming the line.
 * A stage's state is its image config, its layer list and its cache chain
 * key; its root filesystem (tmp/build-<random>/rootfs, removed at the end on
 * every path, and by chrun-gc after a kill -9) is materialized only when a
 * step of it has to run or another stage copies from it: a fully cached
 * build unpacks nothing.
 *
 * RUN goes through the chrun-exec runtime (chrun_runtime_exec) with the
 * image's Env, WorkingDir and User and the ARG values in its environment, its
 * --mount's as bind mounts (cache: $CHRUN_ROOT/build-cache-mounts/<hex>;
 * bind, tmpfs and secret: files prepared under the stage's work directory),
 * --network=none as a new network namespace; its output goes to stderr. Each
 * filesystem-changing step (RUN, COPY, ADD, WORKDIR) becomes one layer
 * holding only what changed (include/chrun/changeset.h), mount points
 * excluded; an empty change set adds no layer and its history entry says
 * empty_layer. The image config and the manifest are written with sorted /
 * fixed key order. The creation time and the cap on every mtime is
 * SOURCE_DATE_EPOCH, or, when unset, the target's base image's "created"
 * (1970-01-01 for scratch): the same inputs give the same manifest digest.
 *
 * Step cache: $CHRUN_ROOT/build-cache/<hex> files, keyed by the digest of
 * the parent state (the mtime cap, the FROM manifest digest and every earlier
 * step with the diff_id it produced), the step text after substitution, the
 * ARG values a RUN sees, for COPY/ADD from the context a digest of the
 * sources' names, modes and bytes (chrun_copy_hash, through the context
 * filter), and for COPY --from the source stage's chain key. Secrets are never
 * part of it. An entry names a layer blob; it is used only if that blob is
 * still in the store (gc does not know the cache and may remove the blob:
 * the entry is then ignored and rewritten). */
#ifndef CHRUN_BUILD_H
#define CHRUN_BUILD_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/build-cache.h"
#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/settings.h"
#include "chrun/store.h"


struct chrun_build_opts {
    const char *context;                 /* directory, or "-": a tar (plain, gzip, zstd)
                                          * or a Dockerfile on stdin */
    const char *dockerfile;              /* NULL: CONTEXT/Dockerfile; "-": stdin */
    const char *const *tags;             /* names for index.json */
    size_t n_tags;
    const char *const *build_args;       /* "K=V", or "K" = our environment's K */
    size_t n_build_args;
    bool no_cache;
    const char *target;                  /* --target STAGE, NULL: the last stage */
    const char *const *secrets;          /* "id=ID,src=FILE" */
    size_t n_secrets;
    const char *const *labels;           /* "K=V", set last */
    size_t n_labels;
    const char *network;                 /* RUN's default: "default", "host", "none" */
    const char *platform;                /* must be the host's; NULL: the host's */
    const struct chrun_settings *settings; /* ADD <url>'s timeouts and cap; NULL: defaults */
};

#define CHRUN_BUILD_OPTS_INIT {NULL, NULL, NULL, 0, NULL, 0, false, NULL, NULL, 0, NULL, 0, NULL, NULL, NULL}

/* Check the option strings a tool takes (--secret, --label, --network,
 * --platform) before any work. Returns 0, or -1 with ERR (CHRUN_E_USAGE). */
int chrun_build_check_opts(const struct chrun_build_opts *opts, struct chrun_err *err);

/* Build the image and name it with every tag (normalized references, all
 * checked before any work). The manifest digest is written to RET. Errors
 * name the Dockerfile line. On failure no name is added and tmp/ is left as
 * found. Not thread-safe (RUN forks and redirects fds 0 and 1 meanwhile).
 * Returns 0 or -1. */
int chrun_build(struct chrun_store *st, const struct chrun_build_opts *opts,
                struct chrun_digest *ret, struct chrun_err *err);

#endif
