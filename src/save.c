/* chrun_archive_save: store images as one tar stream, either docker-load
 * compatible (manifest.json beside an OCI layout, as docker 25 writes it) or
 * a plain OCI image layout. Blobs stream from the store through one
 * CHRUN_IO_BUFSZ buffer and are re-hashed on the way out. */
#include "chrun/archive.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "chrun/attach.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/walk.h"
#include "cleanup.h"
#include "json.h"
#include "util.h"

#define MT_DOCKER_LAYER_TAR "application/vnd.docker.image.rootfs.diff.tar"
#define ANNOTATION_CONTAINERD_NAME "io.containerd.image.name"

struct saver {
    struct chrun_store *st;
    struct archive *a;
    unsigned char *buf;
    struct chrun_digest *written;
    size_t n_written, cap_written;
    json_t *index_entries;  /* index.json manifests */
    /* manifests and indexes already saved: what each became. An index may
     * list one child many times, at every level: without this the walk is
     * exponential in the nesting depth. */
    struct saved_tree {
        struct chrun_digest from;
        struct chrun_descriptor to;
    } *saved;
    size_t n_saved, cap_saved;
    json_t *docker_entries; /* manifest.json */
    bool attachments;       /* signatures and the like travel with their image */
    struct chrun_walk walk;  /* one walk over all images: shared blobs once */
    const struct chrun_inventory *have; /* layers the receiver has, or NULL */
    size_t left_out;
    uint64_t left_out_bytes;
};

static int write_fail(struct saver *s, const char *what, struct chrun_err *err)
{
    const char *msg = archive_error_string(s->a);
    int e = archive_errno(s->a);
    if (e > 0)
        return chrun_err_sys(err, e, "write archive: %s", what);
    return chrun_err_set(err, CHRUN_E_SYS, "write archive: %s: %s", what, msg ? msg : "failed");
}

static int write_header(struct saver *s, const char *name, mode_t type, int64_t size,
                        struct chrun_err *err)
{
    struct archive_entry *e = archive_entry_new();
    int r;
    if (e == NULL)
        return chrun_err_sys(err, ENOMEM, "archive entry");
    archive_entry_set_pathname(e, name);
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_size(e, type == AE_IFDIR ? 0 : size);
    archive_entry_set_mtime(e, 0, 0); /* reproducible archives */
    r = archive_write_header(s->a, e);
    archive_entry_free(e);
    if (r < ARCHIVE_WARN)
        return write_fail(s, name, err);
    return 0;
}

static int write_member(struct saver *s, const char *name, const void *data, size_t len,
                        struct chrun_err *err)
{
    if (write_header(s, name, AE_IFREG, (int64_t) len, err) < 0)
        return -1;
    if (len > 0 && archive_write_data(s->a, data, len) != (la_ssize_t) len)
        return write_fail(s, name, err);
    return 0;
}

static bool already_written(struct saver *s, const struct chrun_digest *d)
{
    for (size_t i = 0; i < s->n_written; i++)
        if (streq(s->written[i].str, d->str))
            return true;
    return false;
}

static int mark_written(struct saver *s, const struct chrun_digest *d, struct chrun_err *err)
{
    if (chrun_grow(&s->written, &s->cap_written, s->n_written + 1, sizeof(*s->written), err) < 0)
        return chrun_err_prefix(err, "save");
    s->written[s->n_written++] = *d;
    return 0;
}

static void blob_name(const struct chrun_digest *d, char *buf, size_t size)
{
    snprintf(buf, size, "blobs/sha256/%s", chrun_digest_hex(d));
}

static int write_blob_bytes(struct saver *s, const struct chrun_digest *d, const void *data,
                            size_t len, struct chrun_err *err)
{
    char name[96];
    if (already_written(s, d))
        return 0;
    blob_name(d, name, sizeof(name));
    if (write_member(s, name, data, len, err) < 0)
        return -1;
    return mark_written(s, d, err);
}

/* Stream blob D (of SIZE bytes) from the store, hashing it on the way: a
 * store whose disk went bad must not hand out corrupt archives. */
static int write_blob(struct saver *s, const struct chrun_digest *d, int64_t size,
                      struct chrun_err *err)
{
    cleanup_hasher struct chrun_digest_hasher h = {0};
    struct chrun_digest got;
    cleanup_close int fd = -1;
    struct stat sb;
    char name[96];
    ssize_t n;

    if (already_written(s, d))
        return 0;
    fd = chrun_store_open_blob(s->st, d, err);
    if (fd < 0)
        return -1;
    if (fstat(fd, &sb) < 0)
        return chrun_err_sys(err, errno, "stat blob %s", d->str);
    if (size >= 0 && sb.st_size != size)
        return chrun_err_set(err, CHRUN_E_DIGEST, "blob %s in store has %lld bytes, expected %lld",
                             d->str, (long long) sb.st_size, (long long) size);
    blob_name(d, name, sizeof(name));
    if (write_header(s, name, AE_IFREG, sb.st_size, err) < 0 ||
        chrun_digest_hasher_init(&h, err) < 0)
        return -1;
    while ((n = chrun_io_read_full(fd, s->buf, CHRUN_IO_BUFSZ, err)) > 0) {
        if (chrun_digest_hasher_update(&h, s->buf, (size_t) n, err) < 0)
            return -1;
        if (archive_write_data(s->a, s->buf, (size_t) n) != n)
            return write_fail(s, name, err);
    }
    if (n < 0 || chrun_digest_hasher_final(&h, &got, err) < 0)
        return -1;
    if (!streq(got.str, d->str) || h.size_bytes != (uint64_t) sb.st_size)
        return chrun_err_set(err, CHRUN_E_DIGEST, "blob %s in store is corrupt (hashes to %s)",
                             d->str, got.str);
    return mark_written(s, d, err);
}

static const char *oci_layer_type(const char *mt)
{
    if (streq(mt, CHRUN_MT_DOCKER_LAYER_GZIP))
        return CHRUN_MT_OCI_LAYER_GZIP;
    if (streq(mt, MT_DOCKER_LAYER_TAR))
        return CHRUN_MT_OCI_LAYER;
    return mt;
}

/* The manifest M (bytes BUF, LEN; blob D) with OCI media types, as `skopeo
 * copy --format oci` converts: a docker schema2 manifest gets a new document
 * (new digest); an OCI one is kept byte for byte. *ret_text is owned by the
 * caller. */
static int oci_manifest_text(const struct chrun_manifest *m, const char *buf, size_t len,
                             const struct chrun_digest *d, char **ret_text, size_t *ret_len,
                             struct chrun_err *err)
{
    json_t *layers, *doc;
    if (!streq(m->media_type, CHRUN_MT_DOCKER_MANIFEST)) {
        *ret_text = malloc(len ? len : 1);
        if (*ret_text == NULL)
            return chrun_err_sys(err, ENOMEM, "save manifest %s", d->str);
        memcpy(*ret_text, buf, len);
        *ret_len = len;
        return 0;
    }
    layers = json_array();
    if (layers == NULL)
        return chrun_err_sys(err, ENOMEM, "convert manifest %s", d->str);
    for (size_t i = 0; i < m->n_layers; i++)
        if (chrun_json_append(layers,
                              json_pack("{s:s, s:s, s:I}", "mediaType",
                                        oci_layer_type(m->layers[i].media_type), "digest",
                                        m->layers[i].digest.str, "size",
                                        (json_int_t) m->layers[i].size),
                              "convert manifest layers", err) < 0) {
            json_decref(layers);
            return -1;
        }
    doc = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", 2, "mediaType",
                    CHRUN_MT_OCI_MANIFEST, "config", "mediaType", CHRUN_MT_OCI_CONFIG, "digest",
                    m->config.digest.str, "size", (json_int_t) m->config.size, "layers", layers);
    *ret_text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (*ret_text == NULL)
        return chrun_err_sys(err, ENOMEM, "convert manifest %s", d->str);
    *ret_len = strlen(*ret_text);
    return 0;
}

/* Write TEXT (LEN bytes), a document made here, as a blob; RET gets its
 * descriptor with MEDIA_TYPE. */
static int write_document(struct saver *s, const char *media_type, const char *text, size_t len,
                          struct chrun_descriptor *ret, struct chrun_err *err)
{
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->media_type, sizeof(ret->media_type), "%s", media_type);
    ret->size = (int64_t) len;
    if (chrun_digest_of_buffer(&ret->digest, text, len, err) < 0)
        return -1;
    return write_blob_bytes(s, &ret->digest, text, len, err);
}

/* The walk of a save: blobs as they come; a manifest or index after its
 * children, since an index may change when a child is converted. */

static bool tree_saved(const struct saver *s, const struct chrun_digest *d,
                       struct chrun_descriptor *ret)
{
    for (size_t i = 0; i < s->n_saved; i++)
        if (streq(s->saved[i].from.str, d->str)) {
            *ret = s->saved[i].to;
            return true;
        }
    return false;
}

static int remember_tree(struct saver *s, const struct chrun_descriptor *d,
                         const struct chrun_descriptor *to, struct chrun_err *err)
{
    if (chrun_grow(&s->saved, &s->cap_saved, s->n_saved + 1, sizeof(*s->saved), err) < 0)
        return chrun_err_prefix(err, "save");
    s->saved[s->n_saved].from = d->digest;
    s->saved[s->n_saved++].to = *to;
    return 0;
}

/* Write the image manifest of node N (its config and layers are written);
 * RET gets the descriptor the layout refers to (OCI media type, converted
 * digest). */
static int save_manifest(struct saver *s, const struct chrun_walk_node *n,
                         struct chrun_descriptor *ret, struct chrun_err *err)
{
    cleanup_free char *text = NULL;
    size_t len = 0;

    if (oci_manifest_text(n->m, n->buf, n->len, &n->desc->digest, &text, &len, err) < 0)
        return -1;
    return write_document(s, CHRUN_MT_OCI_MANIFEST, text, len, ret, err);
}

/* The index entry ORIG (a JSON object, platform and annotations kept)
 * pointing at NEW instead. Returns a new reference or NULL. */
static json_t *index_entry_for(json_t *orig, const struct chrun_descriptor *nd)
{
    json_t *e = json_deep_copy(orig);
    if (e == NULL || json_object_set_new(e, "mediaType", json_string(nd->media_type)) < 0 ||
        json_object_set_new(e, "digest", json_string(nd->digest.str)) < 0 ||
        json_object_set_new(e, "size", json_integer((json_int_t) nd->size)) < 0) {
        json_decref(e);
        return NULL;
    }
    return e;
}

/* Write a new OCI index listing ENTRIES (annotations of IDX kept); RET gets
 * its descriptor. */
static int write_new_index(struct saver *s, const struct chrun_manifest *idx, json_t *entries,
                           struct chrun_descriptor *ret, struct chrun_err *err)
{
    json_auto_t *doc = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType",
                                 CHRUN_MT_OCI_INDEX, "manifests", entries);
    json_t *ann = json_object_get(idx->json, "annotations");
    cleanup_free char *text = NULL;

    if (doc != NULL && json_is_object(ann) &&
        chrun_json_set(doc, "annotations", json_incref(ann), err) < 0)
        return -1;
    text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (text == NULL)
        return chrun_err_sys(err, ENOMEM, "convert index");
    return write_document(s, CHRUN_MT_OCI_INDEX, text, strlen(text), ret, err);
}

/* Write index node N, whose children are written. An OCI index whose
 * entries are all kept as they are is written byte for byte (same digest);
 * one that lists converted docker manifests, or a docker manifest list,
 * becomes a new OCI index, as `skopeo copy --all --format oci` does. */
static int save_index(struct saver *s, const struct chrun_walk_node *n,
                      struct chrun_descriptor *ret, struct chrun_err *err)
{
    const struct chrun_manifest *idx = n->m;
    json_auto_t *entries = json_array();
    json_t *orig = json_object_get(idx->json, "manifests");
    bool changed = !streq(idx->media_type, CHRUN_MT_OCI_INDEX);

    if (entries == NULL)
        return chrun_err_sys(err, ENOMEM, "save");
    for (size_t i = 0; i < idx->n_manifests; i++) {
        const struct chrun_descriptor *c = &idx->manifests[i];
        struct chrun_descriptor nc = *c;
        if (chrun_walk_kind_of(c->media_type) != CHRUN_WALK_OTHER &&
            !tree_saved(s, &c->digest, &nc))
            return chrun_err_set(err, CHRUN_E_NOTFOUND, "index %s: manifest %s was not saved",
                                 n->desc->digest.str, c->digest.str);
        changed |= !streq(nc.digest.str, c->digest.str) || !streq(nc.media_type, c->media_type);
        if (json_array_append_new(entries, index_entry_for(json_array_get(orig, i), &nc)) < 0)
            return chrun_err_sys(err, ENOMEM, "save");
    }
    if (changed)
        return write_new_index(s, idx, entries, ret, err);
    *ret = *n->desc;
    snprintf(ret->media_type, sizeof(ret->media_type), "%s", idx->media_type);
    return write_blob_bytes(s, &n->desc->digest, n->buf, n->len, err);
}

static int save_read(void *ctx, const struct chrun_walk_node *n, char **ret_buf, size_t *ret_len,
                     struct chrun_err *err)
{
    struct saver *s = ctx;
    return chrun_store_read_blob(s->st, &n->desc->digest, CHRUN_MANIFEST_MAX, ret_buf, ret_len,
                                 err);
}

static int save_visit(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct saver *s = ctx;
    switch (n->kind) {
    case CHRUN_WALK_LAYER:
        if (s->have != NULL && chrun_inventory_has(s->have, &n->desc->digest)) {
            s->left_out++;
            s->left_out_bytes += n->desc->size > 0 ? (uint64_t) n->desc->size : 0;
            return 0; /* a delta: the receiver has it */
        }
        return write_blob(s, &n->desc->digest, n->desc->size, err);
    case CHRUN_WALK_CONFIG:
    case CHRUN_WALK_OTHER: return write_blob(s, &n->desc->digest, n->desc->size, err);
    default: return CHRUN_WALK_CONTINUE;
    }
}

static int save_leave(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct saver *s = ctx;
    struct chrun_descriptor to;
    int rc = n->m->is_index ? save_index(s, n, &to, err) : save_manifest(s, n, &to, err);
    if (rc < 0)
        return chrun_err_prefix(err, "%s %s", n->m->is_index ? "index" : "manifest",
                                n->desc->digest.str);
    return remember_tree(s, n->desc, &to, err);
}

/* The manifest.json entry for image manifest M named REF ("" for none). */
static int add_docker_entry(struct saver *s, const struct chrun_manifest *m, const char *ref,
                            struct chrun_err *err)
{
    cleanup_json json_t *layers = json_array(), *tags = json_array();
    json_t *entry;
    char name[96];

    if (layers == NULL || tags == NULL)
        return chrun_err_sys(err, ENOMEM, "save");
    if (ref[0] && chrun_json_append(tags, json_string(ref), "RepoTags", err) < 0)
        return -1;
    for (size_t i = 0; i < m->n_layers; i++) {
        blob_name(&m->layers[i].digest, name, sizeof(name));
        if (chrun_json_append(layers, json_string(name), "Layers", err) < 0)
            return -1;
    }
    blob_name(&m->config.digest, name, sizeof(name));
    entry = json_pack("{s:s, s:O, s:O}", "Config", name, "RepoTags", tags, "Layers", layers);
    return chrun_json_append(s->docker_entries, entry, "manifest.json", err);
}

/* The attachments of IMG (attach.h), saved as SAVED: each with its tree,
 * listed in index.json with its annotations, so chrun-load records them.
 * A signature names the image's digest: if saving converted the image (a
 * docker manifest made OCI), they would not verify and are left out. */
static int save_attachments(struct saver *s, const struct chrun_store_image *img,
                            const struct chrun_descriptor *saved, struct chrun_err *err)
{
    cleanup_free struct chrun_attachment *atts = NULL;
    size_t n;

    if (!s->attachments || chrun_attach_list(s->st, &img->digest, &atts, &n, err) < 0)
        return s->attachments ? -1 : 0;
    if (n > 0 && !streq(saved->digest.str, img->digest.str)) {
        chrun_log_warn("%s: converted to %s, so its %zu signature(s) and attachment(s) are "
                       "left out",
                       img->digest.str, saved->digest.str, n);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct chrun_descriptor d = {0}, out;
        json_t *entry;
        snprintf(d.media_type, sizeof(d.media_type), "%s", atts[i].media_type);
        d.digest = atts[i].digest;
        d.size = atts[i].size;
        if (chrun_walk_from(&s->walk, &d, err) < 0)
            return chrun_err_prefix(err, "attachment %s", d.digest.str);
        if (!tree_saved(s, &d.digest, &out) || !streq(out.digest.str, d.digest.str)) {
            chrun_log_warn("attachment %s: converted, left out", d.digest.str);
            continue;
        }
        entry = chrun_attach_to_entry(&atts[i]);
        if (entry == NULL || json_array_append_new(s->index_entries, entry) < 0)
            return chrun_err_sys(err, ENOMEM, "save");
    }
    return 0;
}

/* One image: its whole tree into the OCI layout (every platform of an
 * index); with DOCKER also a manifest.json entry, which describes one
 * platform only: the host's, as docker save writes it. */
static int save_image(struct saver *s, const char *image, bool docker, struct chrun_err *err)
{
    struct chrun_store_image img;
    struct chrun_descriptor top = {0}, saved;
    struct chrun_manifest m;
    json_t *entry;

    if (chrun_store_resolve(s->st, image, &img, err) < 0)
        return -1;
    snprintf(top.media_type, sizeof(top.media_type), "%s", img.media_type);
    top.digest = img.digest;
    top.size = img.size;
    if (chrun_walk_from(&s->walk, &top, err) < 0)
        return chrun_err_prefix(err, "image '%s'", image);
    if (!tree_saved(s, &top.digest, &saved))
        return chrun_err_set(err, CHRUN_E_INPUT, "image '%s': %s is not an image", image,
                             top.digest.str);
    entry = json_pack("{s:s, s:s, s:I}", "mediaType", saved.media_type, "digest",
                      saved.digest.str, "size", (json_int_t) saved.size);
    if (entry != NULL && img.ref[0] &&
        chrun_json_set(entry, "annotations",
                       json_pack("{s:s, s:s}", ANNOTATION_CONTAINERD_NAME, img.ref,
                                 CHRUN_ANNOTATION_REF_NAME, img.ref),
                       err) < 0) {
        json_decref(entry);
        return -1;
    }
    if (chrun_json_append(s->index_entries, entry, "index.json", err) < 0)
        return -1;
    if (save_attachments(s, &img, &saved, err) < 0)
        return chrun_err_prefix(err, "image '%s'", image);
    if (!docker)
        return 0;
    if (chrun_manifest_load_image(&m, s->st, &img, NULL, NULL, err) < 0)
        return chrun_err_prefix(err, "image '%s': docker format", image);
    if (add_docker_entry(s, &m, img.ref, err) < 0) {
        chrun_manifest_release(&m);
        return chrun_err_prefix(err, "image '%s'", image);
    }
    chrun_manifest_release(&m);
    return 0;
}

static int write_json_member(struct saver *s, const char *name, json_t *doc,
                             struct chrun_err *err)
{
    cleanup_free char *text = json_dumps(doc, JSON_COMPACT);
    if (text == NULL)
        return chrun_err_sys(err, ENOMEM, "serialize %s", name);
    return write_member(s, name, text, strlen(text), err);
}

/* Compress the archive stream with C (gzip, zstd or none). */
static int add_filter(struct saver *s, enum chrun_compression c, struct chrun_err *err)
{
    int r = ARCHIVE_OK;
    if (c == CHRUN_COMPRESSION_GZIP)
        r = archive_write_add_filter_gzip(s->a);
    else if (c == CHRUN_COMPRESSION_ZSTD)
        r = archive_write_add_filter_zstd(s->a);
    if (r != ARCHIVE_OK)
        return write_fail(s, "compression", err);
    /* reproducible: no timestamp or name in the gzip header */
    if (c == CHRUN_COMPRESSION_GZIP &&
        archive_write_set_filter_option(s->a, "gzip", "timestamp", NULL) < ARCHIVE_WARN)
        return write_fail(s, "compression", err);
    return 0;
}

int chrun_archive_save(struct chrun_store *st, const char *const *images, size_t n,
                       enum chrun_archive_format format, unsigned flags, int fd,
                       struct chrun_err *err)
{
    struct chrun_save_opts opts = CHRUN_SAVE_OPTS_INIT;
    opts.format = format;
    opts.flags = flags;
    return chrun_archive_save_opts(st, images, n, &opts, fd, NULL, err);
}

static void saver_release(struct saver *s)
{
    if (s->a != NULL)
        archive_write_free(s->a);
    json_decref(s->index_entries);
    json_decref(s->docker_entries);
    free(s->written);
    free(s->saved);
    free(s->buf);
    chrun_walk_release(&s->walk);
}

/* Write the archive of IMAGES through S (set up); DOCKER: with manifest.json. */
static int save_all(struct saver *s, const char *const *images, size_t n, bool docker, int fd,
                    enum chrun_compression compress, struct chrun_err *err)
{
    static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
    json_auto_t *index = NULL;

    if (add_filter(s, compress, err) < 0)
        return -1;
    if (archive_write_set_format_pax_restricted(s->a) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(s->a, 1) != ARCHIVE_OK ||
        archive_write_open_fd(s->a, fd) != ARCHIVE_OK)
        return write_fail(s, "open", err);
    if (write_header(s, "blobs/", AE_IFDIR, 0, err) < 0 ||
        write_header(s, "blobs/sha256/", AE_IFDIR, 0, err) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (save_image(s, images[i], docker, err) < 0)
            return -1;
    index = json_pack("{s:i, s:s, s:O}", "schemaVersion", 2, "mediaType", CHRUN_MT_OCI_INDEX,
                      "manifests", s->index_entries);
    if (index == NULL)
        return chrun_err_sys(err, ENOMEM, "save");
    /* a delta says so, and is no docker archive: its layers are elsewhere */
    if (s->left_out > 0) {
        docker = false;
        if (json_object_set_new(index, "annotations",
                                json_pack("{s:s}", CHRUN_ANNOTATION_DELTA, "true")) < 0)
            return chrun_err_sys(err, ENOMEM, "save");
    }
    if (write_member(s, "oci-layout", layout, strlen(layout), err) < 0 ||
        write_json_member(s, "index.json", index, err) < 0 ||
        (docker && write_json_member(s, "manifest.json", s->docker_entries, err) < 0))
        return -1;
    if (archive_write_close(s->a) != ARCHIVE_OK)
        return write_fail(s, "close", err);
    if (s->left_out > 0)
        chrun_log_info("delta archive: left out %zu layers (%llu bytes) the receiver has",
                       s->left_out, (unsigned long long) s->left_out_bytes);
    return 0;
}

int chrun_archive_save_opts(struct chrun_store *st, const char *const *images, size_t n,
                            const struct chrun_save_opts *opts, int fd, size_t *ret_left_out,
                            struct chrun_err *err)
{
    static const struct chrun_walk_ops ops = {save_read, save_visit, save_leave};
    static const struct chrun_save_opts defaults = CHRUN_SAVE_OPTS_INIT;
    struct saver s = {.st = st};
    int rc;

    if (opts == NULL)
        opts = &defaults;
    s.have = opts->have;
    s.attachments = !(opts->flags & CHRUN_ARCHIVE_NO_ATTACHMENTS);
    chrun_walk_init(&s.walk, &ops, &s, 0);
    s.buf = malloc(CHRUN_IO_BUFSZ);
    s.a = archive_write_new();
    s.index_entries = json_array();
    s.docker_entries = json_array();
    if (s.buf == NULL || s.a == NULL || s.index_entries == NULL || s.docker_entries == NULL)
        rc = chrun_err_sys(err, ENOMEM, "save");
    else
        rc = save_all(&s, images, n, opts->format == CHRUN_ARCHIVE_DOCKER, fd, opts->compress,
                      err);
    if (rc == 0 && ret_left_out != NULL)
        *ret_left_out = s.left_out;
    saver_release(&s);
    return rc;
}
