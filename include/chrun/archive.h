/* Image archives: import `docker save` archives and OCI image layouts (tar,
 * tar.gz, tar.zst or a directory) into the store, and export store images as
 * docker-load-compatible or OCI-layout tar streams. */
#ifndef CHRUN_ARCHIVE_H
#define CHRUN_ARCHIVE_H

#include <stddef.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/inventory.h"
#include "chrun/manifest.h"
#include "chrun/store.h"

/* Most members an archive may hold (each is staged as its own file). */
#define CHRUN_ARCHIVE_MAX_MEMBERS 65536
/* Cap of the small in-memory members oci-layout and repositories. */
#define CHRUN_ARCHIVE_SMALL_MAX (64 * 1024)

/* What one load produced: the manifest (or index) digest of every image, in
 * archive order, each listed once. Release with chrun_archive_result_release. */
struct chrun_archive_result {
    struct chrun_digest *digests;
    size_t n_digests;
};

void chrun_archive_result_release(struct chrun_archive_result *r);

/* Import the archive at PATH (NULL or "-": standard input; a directory is read
 * in place) into ST.
 *
 * Tar streams (plain, gzip, zstd, ...) are read once, front to back, whatever
 * their member order: every file member is hashed while it is copied into a
 * private staging directory under tmp/; nothing reaches blobs/ or index.json
 * until the whole archive has been checked (every digest, size and diff_id,
 * every path inside the archive). Then the blobs the images need are renamed
 * into blobs/ and the images' names are recorded. On failure nothing in the
 * store changes and the staging directory is removed.
 *
 * OCI layouts (index.json) keep their manifests byte for byte. A docker save
 * archive (manifest.json) gets a generated OCI manifest with its layers as
 * stored in the archive, so its digest is the same on every load. Names:
 * RepoTags, the io.containerd.image.name annotation, or a ref.name
 * annotation that parses as a reference, all normalized; an image without
 * one is stored without a name.
 *
 * On success *RET (release with chrun_archive_result_release) lists the
 * digests. On failure ERR names the input and the reason; CHRUN_E_INPUT for
 * malformed or hostile archives, CHRUN_E_DIGEST for content that does not
 * match its digest or size. Returns 0 or -1. */
int chrun_archive_load(struct chrun_store *st, const char *path,
                       struct chrun_archive_result *ret, struct chrun_err *err);

/* chrun_archive_load, and with VERIFY (not NULL) only if every image of
 * the archive has a cosign signature among its attachments that verifies
 * (cosign.h) -- checked on the staged blobs, so an archive that fails
 * leaves the store unchanged; ERR then names the image and the first
 * reason. Attachments listed in the archive's index.json (attach.h) are
 * recorded with their annotations either way. Returns 0 or -1. */
struct chrun_cosign_opts;
int chrun_archive_load_verify(struct chrun_store *st, const char *path,
                              const struct chrun_cosign_opts *verify,
                              struct chrun_archive_result *ret, struct chrun_err *err);

/* Same as chrun_archive_load for a tar stream on FD (not closed), named NAME
 * in messages. */
int chrun_archive_load_fd(struct chrun_store *st, int fd, const char *name,
                          struct chrun_archive_result *ret, struct chrun_err *err);

/* Same for an unpacked OCI layout or docker save directory DIRFD (not closed).
 * Paths never resolve outside DIRFD: a symlink that leads out is an error. */
int chrun_archive_load_dir(struct chrun_store *st, int dirfd, const char *name,
                           struct chrun_archive_result *ret, struct chrun_err *err);

/* Remove staging directories that interrupted loads left under tmp/ (those
 * not locked by a running load). Holds tmp/ locked exclusively while it
 * looks, which a load holds shared from before it makes its directory until
 * it has locked it, so a live load's directory is never taken for abandoned.
 * Returns 0 or -1. */
int chrun_archive_clean_stale(struct chrun_store *st, struct chrun_err *err);

enum chrun_archive_format {
    CHRUN_ARCHIVE_DOCKER = 0, /* docker load compatible (manifest.json + OCI layout) */
    CHRUN_ARCHIVE_OCI = 1,    /* OCI image layout only */
};

enum chrun_archive_save_flags {
    /* leave out the signatures, attestations, SBOMs and referrers attached
     * to the images (attach.h); by default they travel with their image,
     * listed in index.json with their vnd.chrun.subject annotation */
    CHRUN_ARCHIVE_NO_ATTACHMENTS = 1 << 0,
};

/* Write IMAGES (N store image operands: references or digests) as one tar
 * archive of FORMAT to FD, streamed. FLAGS: enum chrun_archive_save_flags.
 * Returns 0 or -1. */
int chrun_archive_save(struct chrun_store *st, const char *const *images, size_t n,
                       enum chrun_archive_format format, unsigned flags, int fd,
                       struct chrun_err *err);

/* Index annotation of a delta archive (value "true"): some layer blobs its
 * images need are left out, the receiver has them. */
#define CHRUN_ANNOTATION_DELTA "vnd.chrun.delta"

struct chrun_save_opts {
    enum chrun_archive_format format;
    enum chrun_compression compress; /* of the whole archive stream */
    /* Blobs the receiver has (chrun/inventory.h), or NULL. Layers in it are
     * left out; manifests, indexes and configs are always written. When a
     * layer is left out the archive is a delta: index.json carries
     * CHRUN_ANNOTATION_DELTA and there is no manifest.json (docker load
     * could not load it). */
    const struct chrun_inventory *have;
    unsigned flags; /* enum chrun_archive_save_flags */
};

#define CHRUN_SAVE_OPTS_INIT {CHRUN_ARCHIVE_DOCKER, CHRUN_COMPRESSION_NONE, NULL, 0}

/* chrun_archive_save with OPTS (NULL: defaults). RET_LEFT_OUT (may be NULL)
 * gets how many layer blobs were left out. Returns 0 or -1. */
int chrun_archive_save_opts(struct chrun_store *st, const char *const *images, size_t n,
                            const struct chrun_save_opts *opts, int fd, size_t *ret_left_out,
                            struct chrun_err *err);

#endif
