/* The content-addressed store: an OCI image layout at $CHRUN_ROOT.
 *
 * Layout: oci-layout, index.json (one descriptor per named image, annotation
 * org.opencontainers.image.ref.name = full normalized reference),
 * blobs/sha256/<hex> (immutable, verified before they appear), bundles/<id>/,
 * tmp/ (in-flight work) and locks/.
 *
 * Locking: every open handle holds locks/gc shared; chrun-gc holds it
 * exclusive. So gc never runs beside a writer, and a writer never sees a blob
 * it just checked for vanish under it. index.json edits take locks/index
 * exclusive for the read-modify-replace cycle. A load's staging directory
 * in tmp/ is locked by its maker before any sweeper can see its name:
 * the maker holds tmp/ itself shared from before the mkdir until it has
 * locked the new directory, and a sweeper holds tmp/ exclusive while it
 * removes the unlocked ones. flock(2) locks die with their process, so
 * kill -9 never leaves the store locked. */
#ifndef CHRUN_STORE_H
#define CHRUN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/ref.h"

#define CHRUN_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"
#define CHRUN_MEDIA_TYPE_MAX 256

struct chrun_store;
struct chrun_store_writer;

enum chrun_store_open_flags {
    CHRUN_STORE_CREATE = 1 << 0,    /* create the layout when missing */
    CHRUN_STORE_EXCLUSIVE = 1 << 1, /* take locks/gc exclusive (chrun-gc) */
};

/* One named image in index.json. */
struct chrun_store_image {
    char ref[CHRUN_REF_STR_MAX];        /* full normalized reference, or "" */
    char media_type[CHRUN_MEDIA_TYPE_MAX];
    struct chrun_digest digest;
    int64_t size;
};

/* Resolve the store root: $CHRUN_ROOT, else /var/lib/chrun for root, else
 * ${XDG_DATA_HOME:-~/.local/share}/chrun. Returns 0 or -1. */
int chrun_store_default_root(char *buf, size_t size, struct chrun_err *err);

/* Open the store at ROOT (NULL: chrun_store_default_root). Without
 * CHRUN_STORE_CREATE a missing store fails with CHRUN_E_NOTFOUND. Returns a
 * handle to release with chrun_store_close, or NULL. */
struct chrun_store *chrun_store_open(const char *root, unsigned flags, struct chrun_err *err);
void chrun_store_close(struct chrun_store *st);

/* Directory fds held by the handle (owned by it; do not close). */
int chrun_store_root_fd(struct chrun_store *st);
int chrun_store_tmp_fd(struct chrun_store *st);
int chrun_store_blobs_fd(struct chrun_store *st); /* blobs/sha256 */
const char *chrun_store_root_path(struct chrun_store *st);

/* Blobs */
bool chrun_store_has_blob(struct chrun_store *st, const struct chrun_digest *d);
/* Open a blob read-only. Missing: CHRUN_E_NOTFOUND "blob <digest> not found". */
int chrun_store_open_blob(struct chrun_store *st, const struct chrun_digest *d,
                          struct chrun_err *err);
/* Read a blob of at most MAX bytes into memory and re-verify its digest.
 * *ret_buf is NUL-terminated and owned by the caller. Returns 0 or -1. */
int chrun_store_read_blob(struct chrun_store *st, const struct chrun_digest *d, size_t max,
                          char **ret_buf, size_t *ret_len, struct chrun_err *err);
/* Store LEN bytes of DATA as a blob; if EXPECTED is not NULL they must match
 * it. The digest is written to RET (may be NULL). Returns 0 or -1. */
int chrun_store_put_blob(struct chrun_store *st, const void *data, size_t len,
                         const struct chrun_digest *expected, struct chrun_digest *ret,
                         struct chrun_err *err);

enum chrun_store_writer_flags {
    /* Needs EXPECTED: continue from the bytes an earlier attempt left in tmp/,
     * and keep them there if this attempt is abandoned (network pulls). */
    CHRUN_STORE_WRITER_RESUMABLE = 1 << 0,
};

/* Begin writing a blob. EXPECTED (may be NULL) and EXPECTED_SIZE (-1 if
 * unknown) are checked: too many bytes fail in write, too few or a wrong
 * digest fail in commit. With an EXPECTED digest the temporary file is
 * tmp/blob-<hex>.partial, locked while in use, so two writers of one blob
 * wait for each other; with CHRUN_STORE_WRITER_RESUMABLE an interrupted one
 * is resumed (chrun_store_writer_offset tells how many bytes are there).
 * Returns a writer to free with chrun_store_writer_free, or NULL. */
struct chrun_store_writer *chrun_store_writer_begin(struct chrun_store *st,
                                                    const struct chrun_digest *expected,
                                                    int64_t expected_size, unsigned flags,
                                                    struct chrun_err *err);
int chrun_store_writer_write(struct chrun_store_writer *w, const void *data, size_t len,
                             struct chrun_err *err);
uint64_t chrun_store_writer_offset(struct chrun_store_writer *w);
/* A second, read-only descriptor of the blob's temporary file (close it),
 * so another thread can fdatasync it while the writer goes on or is freed.
 * A separate open file, not a dup: a write error that thread's sync sees is
 * still reported to the writer's own fsync. Returns the fd or -1. */
int chrun_store_writer_reopen(struct chrun_store_writer *w, struct chrun_err *err);
/* Finish hashing and check size and digest without publishing anything, so
 * a caller can verify several blobs before any appears under blobs/. On a
 * mismatch (CHRUN_E_DIGEST) the temporary file is removed. Afterwards only
 * chrun_store_writer_commit or _free may be called. Returns 0 or -1. */
int chrun_store_writer_verify(struct chrun_store_writer *w, struct chrun_digest *ret,
                              struct chrun_err *err);
/* Verify size and digest (unless chrun_store_writer_verify did), fsync, rename into blobs/, fsync the directory.
 * The blob's digest is written to RET (may be NULL). On a mismatch the error
 * is CHRUN_E_DIGEST and nothing appears under blobs/. Returns 0 or -1. */
int chrun_store_writer_commit(struct chrun_store_writer *w, struct chrun_digest *ret,
                              struct chrun_err *err);
/* Discard (if not committed) and free. NULL is fine. */
void chrun_store_writer_free(struct chrun_store_writer *w);

/* index.json */

/* All named images, in index.json order (attachments, see attach.h, are
 * not images and are left out); *ret (caller frees) holds *ret_n. */
int chrun_store_list(struct chrun_store *st, struct chrun_store_image **ret, size_t *ret_n,
                     struct chrun_err *err);
/* Name an image: REF (full normalized) -> descriptor, replacing an earlier
 * entry of that name. A no-op when identical. Atomic, under locks/index. */
int chrun_store_tag(struct chrun_store *st, const char *ref, const char *media_type,
                    const struct chrun_digest *d, int64_t size, struct chrun_err *err);
/* Remove the entry named REF. Missing: CHRUN_E_NOTFOUND. */
int chrun_store_untag(struct chrun_store *st, const char *ref, struct chrun_err *err);

/* index.json as a whole, for modules that record more than names (attach.c).
 * chrun_store_read_index: *RET_MANIFESTS (a new reference, json_decref) is
 * the "manifests" array. chrun_store_edit_index: under locks/index, FN edits
 * the "manifests" array in place and returns 1 (write it back atomically),
 * 0 (leave index.json as it was) or -1 (ERR filled). Return 0 or -1. */
int chrun_store_read_index(struct chrun_store *st, json_t **ret_manifests,
                           struct chrun_err *err);
int chrun_store_edit_index(struct chrun_store *st,
                           int (*fn)(json_t *manifests, void *data, struct chrun_err *err),
                           void *data, struct chrun_err *err);

/* Resolve an IMAGE operand: a reference known to the store (normalized), a
 * full manifest digest present in the store, or an unambiguous short digest
 * (at least 4 hex digits, "sha256:" optional) of a named image. Fails with
 * CHRUN_E_NOTFOUND or CHRUN_E_AMBIGUOUS. Returns 0 or -1. */
int chrun_store_resolve(struct chrun_store *st, const char *image, struct chrun_store_image *ret,
                        struct chrun_err *err);

#endif
