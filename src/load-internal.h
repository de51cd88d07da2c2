/* chrun_archive_load internals shared by load.c (staging, member table,
 * lookups, publish, the entry points), load-oci.c (OCI image layouts and
 * archives) and load-docker.c (docker save archives, skopeo dir:); not
 * installed. */
#ifndef CHRUN_LOAD_INTERNAL_H
#define CHRUN_LOAD_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <archive.h>
#include <jansson.h>

#include "chrun/archive.h"
#include "chrun/attach.h"
#include "chrun/cosign.h"
#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/inflate.h"
#include "chrun/manifest.h"
#include "chrun/ref.h"
#include "chrun/store.h"
#include "chrun/walk.h"

#define MAGIC_LEN 4

struct member {
    char *name;    /* normalized path inside the archive; "" for generated blobs */
    char *link;    /* symlink target (as written) or hardlink target; NULL for files */
    bool hardlink;
    bool staged;   /* content is in the staging directory as "m<index>" */
    bool keep;     /* needed by an image: goes to blobs/ at commit */
    struct chrun_digest digest;
    uint64_t size;
    unsigned char magic[MAGIC_LEN];
    size_t magic_len;
};

/* An in-memory JSON member of the archive. */
struct doc {
    char *buf;
    size_t len;
    bool present;
};

struct pending_tag {
    char ref[CHRUN_REF_STR_MAX];
    char media_type[CHRUN_MEDIA_TYPE_MAX];
    struct chrun_digest digest;
    int64_t size;
};

/* Compressed bytes from FD in CHRUN_IO_BUFSZ chunks; the first chunk, read
 * to sniff the compression, is handed out again first. */
struct chunk_source {
    int fd;
    unsigned char *buf;
    size_t pending;
};

struct loader {
    struct chrun_store *st;
    const char *input;
    int dirfd; /* directory input, else -1 */
    int stage_fd;
    char stage_name[NAME_MAX];
    struct member *members;
    size_t n_members, cap_members;
    struct doc index, manifest, layout, repositories;
    unsigned char *buf; /* CHRUN_IO_BUFSZ, member data */
    struct archive *raw; /* decompressing outer reader (tar input) */
    struct chrun_inflate *z; /* instead of RAW for a gzip or zstd outer stream */
    struct chunk_source zsrc;
    unsigned char *zout;   /* CHRUN_IO_BUFSZ, what Z inflated for the tar reader */
    struct chrun_err zerr; /* why the outer stream failed under the tar reader */
    const char *blob_dir; /* where blobs live: "blobs/sha256/", or "" (skopeo dir:) */
    struct pending_tag *tags;
    size_t n_tags, cap_tags;
    struct chrun_archive_result *result;
    size_t cap_result; /* capacity of result->digests, which the loader grows */
    struct chrun_attachment *atts; /* recorded after the tags (attach.h) */
    size_t n_atts, cap_atts;
    const struct chrun_cosign_opts *verify; /* --verify-key, or NULL */
    struct chrun_walk walk; /* over every image of the archive: shared trees once */
    const struct doc *root_doc; /* skopeo dir: the root manifest, not a blob member */
    bool delta;            /* index.json says CHRUN_ANNOTATION_DELTA */
    char *missing;         /* delta: "image: digest, ..." lines in neither archive nor store */
    size_t missing_len, cap_missing;
    const char *cur_image; /* the index.json entry being checked, for missing */
    const char *last_missing_image;
};

/* Find the member PATH names (archive-relative, as written in manifest.json
 * or built from a digest), following symlink and hardlink members inside the
 * archive (SPEC "Bad input": never outside it). On success *RET points into
 * L's member table (owned by L). Returns 0, or -1 with ERR set
 * (CHRUN_E_NOTFOUND when no member has that name). */
int load_lookup(struct loader *l, const char *path, struct member **ret, struct chrun_err *err);

/* The blob D describes: present in the archive, of its digest and declared
 * SIZE; marks it to be published. *RET is owned by L. Returns 0 or -1. */
int load_lookup_blob(struct loader *l, const struct chrun_digest *d, int64_t size,
                     struct member **ret, struct chrun_err *err);

/* Read staged member M (at most CAP bytes, else EFBIG) into *RET_BUF (free
 * it) and *RET_LEN. Returns 0 or -1. */
int load_read_staged(struct loader *l, struct member *m, size_t cap, char **ret_buf,
                     size_t *ret_len, struct chrun_err *err);

/* Parse an archive document (WHAT names it in errors). *RET gets a new
 * reference (json_decref). Returns 0, or -1 with CHRUN_E_INPUT. */
int load_parse_json_doc(const char *buf, size_t len, const char *what, json_t **ret,
                        struct chrun_err *err);

/* The compression of member M, sniffed from its first bytes. */
enum chrun_compression load_member_compression(const struct member *m);

/* Check that layer member M uncompresses to WANT. A compressed layer is
 * inflated only with MAY_DECOMPRESS (docker save, whose manifest we write);
 * otherwise it is checked when the layer is applied. Returns 0, or -1 with
 * ERR (CHRUN_E_DIGEST on a mismatch). */
int load_check_diff_id(struct loader *l, struct member *m, const struct chrun_digest *want,
                       bool may_decompress, struct chrun_err *err);

/* Record the name REF (as the archive wrote it) for image D, to be tagged at
 * commit. Returns 0, or -1 with ERR (a REF that does not parse). */
int load_add_tag(struct loader *l, const char *ref, const char *media_type,
                 const struct chrun_digest *d, int64_t size, struct chrun_err *err);

/* Add image D to the result (once). Returns 0 or -1 (ENOMEM). */
int load_add_result(struct loader *l, const struct chrun_digest *d, struct chrun_err *err);

/* Stage the generated document TEXT (a manifest chrun built, or skopeo's
 * manifest.json) as a blob member to be published; *RET is owned by L.
 * Returns 0 or -1. */
int load_stage_generated(struct loader *l, const char *text, size_t len, struct member **ret,
                         struct chrun_err *err);

/* The walk of a load (load-oci.c): documents come from the staging
 * directory; every blob an image names must be in the archive, of its
 * declared size, and each image manifest's layers are checked. */
extern const struct chrun_walk_ops load_walk_ops;

/* Resolve an OCI layout's index.json (and oci-layout): every image walked
 * and checked, names and attachments recorded. Returns 0 or -1. */
int load_resolve_oci(struct loader *l, struct chrun_err *err);

/* Resolve a docker save manifest.json (or a skopeo dir: manifest.json):
 * each image's OCI manifest is generated and staged, layers checked against
 * the config's diff_ids, RepoTags recorded. Returns 0 or -1. */
int load_resolve_docker(struct loader *l, struct chrun_err *err);

#endif
