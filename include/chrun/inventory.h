/* What a receiving host has: a set of blob digests, read from an inventory
 * (`chrun-images --inventory`) or from an archive shipped earlier, so that
 * chrun-save --have can leave those blobs out (a delta archive).
 *
 * Inventory format (JSON, one object):
 *   {"chrun.inventory": 1, "blobs": ["sha256:<64 hex>", ...]}
 * "chrun.inventory" is the format version; readers refuse other versions.
 * Other members are ignored, so later versions may add some. */
#ifndef CHRUN_INVENTORY_H
#define CHRUN_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/store.h"

#define CHRUN_INVENTORY_VERSION 1
/* Largest inventory document read into memory (about 800,000 digests). */
#define CHRUN_INVENTORY_MAX (64 * 1024 * 1024)

/* Opaque set of digests. */
struct chrun_inventory;

/* A new empty set; free with chrun_inventory_free. NULL (ENOMEM) on failure. */
struct chrun_inventory *chrun_inventory_new(struct chrun_err *err);
void chrun_inventory_free(struct chrun_inventory *inv);

/* Add D. Returns 0 or -1 (ENOMEM). */
int chrun_inventory_add(struct chrun_inventory *inv, const struct chrun_digest *d,
                        struct chrun_err *err);
bool chrun_inventory_has(const struct chrun_inventory *inv, const struct chrun_digest *d);
size_t chrun_inventory_count(const struct chrun_inventory *inv);

/* Add every blob of the store ST (its blobs/sha256 directory). Returns 0 or -1. */
int chrun_inventory_add_store(struct chrun_inventory *inv, struct chrun_store *st,
                              struct chrun_err *err);

/* Add what PATH says a receiver has: an inventory document, or an archive
 * (tar, tar.gz or tar.zst, docker-save or OCI layout) whose blobs/sha256/
 * members count as present; only member names are read, payloads are
 * skipped. A malformed inventory (not JSON, wrong version, a bad digest)
 * fails with CHRUN_E_INPUT naming PATH, and INV is unchanged. Returns 0 or -1. */
int chrun_inventory_read(struct chrun_inventory *inv, const char *path, struct chrun_err *err);

/* Write INV as an inventory document (digests sorted, one per line) to OUT.
 * Returns 0 or -1 (the write failed). */
int chrun_inventory_write(const struct chrun_inventory *inv, FILE *out, struct chrun_err *err);

#endif
