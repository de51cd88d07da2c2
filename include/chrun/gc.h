/* Garbage collection: mark from index.json, sweep unreferenced blobs, stale
 * tmp/ entries and (optionally) bundles of images no longer named. */
#ifndef CHRUN_GC_H
#define CHRUN_GC_H

#include <stdbool.h>
#include <stdint.h>

#include "chrun/err.h"
#include "chrun/store.h"

struct chrun_gc_opts {
    bool dry_run; /* report what would go, remove nothing */
    bool bundles; /* also remove bundles/<id> of images no longer named */
    bool build_cache; /* also remove every build-cache entry and every
                       * RUN --mount=type=cache directory */
};

#define CHRUN_GC_OPTS_INIT {false, false, false}

struct chrun_gc_report {
    uint64_t blobs_kept;
    uint64_t blobs_removed;
    uint64_t bytes_freed; /* blobs and tmp files */
    uint64_t tmp_removed;
    uint64_t bundles_removed;
    uint64_t cache_removed; /* build-cache entries whose layer blob was removed
                             * (with build_cache: every entry) */
    uint64_t cache_mounts_removed; /* cache mount directories (build_cache only) */
};

/* Collect garbage in ST, which must have been opened with
 * CHRUN_STORE_EXCLUSIVE (no writer runs beside gc). Marking is all or
 * nothing: if a named image's manifest cannot be read, nothing is removed and
 * the error names the image. Returns 0 or -1; REPORT is filled on success. */
int chrun_gc_run(struct chrun_store *st, const struct chrun_gc_opts *opts,
                 struct chrun_gc_report *report, struct chrun_err *err);

#endif
