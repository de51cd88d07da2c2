/* The step cache of chrun-build: one place for its entry format, read by the
 * builder and by chrun-gc.
 *
 * An entry is $CHRUN_ROOT/build-cache/<hex of the step key>, a small JSON
 * object: {"empty":true} for a step that changed nothing, else
 * {"empty":false,"digest":D,"diff_id":I,"size":N} naming the layer blob the
 * step made. Entries are written atomically without a lock (concurrent
 * builds may write one key; the last rename wins whole). A file longer than
 * CHRUN_BUILD_CACHE_ENTRY_MAX or not of this shape is not an entry. */
#ifndef CHRUN_BUILD_CACHE_H
#define CHRUN_BUILD_CACHE_H

#include <stdbool.h>

#include "chrun/changeset.h"
#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/store.h"

#define CHRUN_BUILD_CACHE_DIR "build-cache"
#define CHRUN_BUILD_CACHE_MOUNTS_DIR "build-cache-mounts"

/* The longest entry file read. */
#define CHRUN_BUILD_CACHE_ENTRY_MAX 4096

/* Parse the entry file NAME in directory DFD (build-cache/) into RET.
 * Returns true for an entry of the shape above (RET->empty, or the layer's
 * digest, diff_id and size > 0), false for anything else; never fails
 * otherwise (an unreadable file is no entry). */
bool chrun_build_cache_read_at(int dfd, const char *name, struct chrun_changeset_layer *ret);

/* The cached result of step KEY in ST: true with RET filled when there is an
 * entry and, for a layer, its blob is in the store; false for a miss. */
bool chrun_build_cache_get(struct chrun_store *st, const struct chrun_digest *key,
                           struct chrun_changeset_layer *ret);

/* Record L as the result of step KEY in ST (build-cache/ created when
 * absent). Returns 0 or -1 with ERR. */
int chrun_build_cache_put(struct chrun_store *st, const struct chrun_digest *key,
                          const struct chrun_changeset_layer *l, struct chrun_err *err);

#endif
