/* The image model: manifests, indexes and descriptors, in both the OCI and
 * the docker schema2 media-type families. Image configs: chrun/image-config.h. */
#ifndef CHRUN_MANIFEST_H
#define CHRUN_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/store.h"

#define CHRUN_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define CHRUN_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define CHRUN_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define CHRUN_MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define CHRUN_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define CHRUN_MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define CHRUN_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define CHRUN_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define CHRUN_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define CHRUN_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define CHRUN_MT_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+json"
#define CHRUN_MT_DOCKER_SCHEMA1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"

/* Nesting allowed when an index points at further indexes. */
#define CHRUN_MANIFEST_MAX_DEPTH 4

enum chrun_compression {
    CHRUN_COMPRESSION_NONE = 0,
    CHRUN_COMPRESSION_GZIP = 1,
    CHRUN_COMPRESSION_ZSTD = 2,
};

struct chrun_descriptor {
    char media_type[CHRUN_MEDIA_TYPE_MAX];
    struct chrun_digest digest;
    int64_t size;
    /* Platform, for entries of an index ("" when absent). */
    char os[32];
    char architecture[32];
    char variant[32];
};

/* A parsed manifest or index. json keeps the whole document (owned). */
struct chrun_manifest {
    char media_type[CHRUN_MEDIA_TYPE_MAX];
    bool is_index;
    struct chrun_descriptor config;    /* manifests only */
    struct chrun_descriptor *layers;   /* manifests only */
    size_t n_layers;
    struct chrun_descriptor *manifests; /* indexes only */
    size_t n_manifests;
    json_t *json;
};

/* Parse LEN bytes of BUF as a manifest or index. DECLARED_TYPE (the
 * descriptor's or Content-Type's media type; NULL or "" if unknown) must agree
 * with the document's own mediaType. Every digest, size and media type is
 * validated; schema1 fails with CHRUN_E_UNSUPPORTED, anything malformed with
 * CHRUN_E_INPUT. Release with chrun_manifest_release. Returns 0 or -1. */
int chrun_manifest_parse(struct chrun_manifest *m, const char *buf, size_t len,
                         const char *declared_type, struct chrun_err *err);

/* Read the blob D from ST (at most CHRUN_MANIFEST_MAX bytes, digest checked)
 * and parse it. Returns 0 or -1. */
int chrun_manifest_load(struct chrun_manifest *m, struct chrun_store *st,
                        const struct chrun_digest *d, const char *declared_type,
                        struct chrun_err *err);

void chrun_manifest_release(struct chrun_manifest *m);

/* True if MT is "type/subtype" in RFC 6838's restricted-name syntax (no
 * parameters, no spaces or control characters): every media type a
 * descriptor may carry. */
bool chrun_manifest_media_type_valid(const char *mt);

/* True for the four manifest/index media types chrun understands. */
bool chrun_manifest_type_is_known(const char *media_type);
bool chrun_manifest_type_is_index(const char *media_type);

/* Compression of a layer media type; -1 with CHRUN_E_UNSUPPORTED if it is
 * not a layer type chrun can apply. */
int chrun_manifest_layer_compression(const char *media_type, enum chrun_compression *ret,
                                     struct chrun_err *err);

/* The host platform as "os/arch[/variant]" in OCI terms (linux/amd64). */
void chrun_manifest_host_platform(char *buf, size_t size);

/* Choose the entry of index M for PLATFORM ("os/arch[/variant]", NULL for the
 * host). Fails with CHRUN_E_NOTFOUND listing what the index offers. */
int chrun_manifest_select_platform(const struct chrun_manifest *m, const char *platform,
                                   struct chrun_descriptor *ret, struct chrun_err *err);

/* Load the image manifest for a resolved store image. If IMG names an index,
 * the entry for PLATFORM (NULL: host) is chosen, recursively. On success *m
 * holds a manifest (not an index) and RET_DIGEST (may be NULL) its digest. */
int chrun_manifest_load_image(struct chrun_manifest *m, struct chrun_store *st,
                              const struct chrun_store_image *img, const char *platform,
                              struct chrun_digest *ret_digest, struct chrun_err *err);

#endif
