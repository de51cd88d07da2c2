/* The one walk of the manifest graph: index -> manifests and indexes ->
 * config and layers. gc marks with it, pull plans with it, load checks an
 * archive with it, save and push copy with it, unpack chooses a platform
 * with it.
 *
 * The walk is depth first, in document order. Documents (indexes and
 * manifests) come from a caller-supplied reader, so the same walk runs over
 * the store, an archive's staging directory or a registry. Its rules, each
 * written once here:
 * - every descriptor is visited once per walk: a document once per
 *   (digest, declared media type), a blob once per digest, however many
 *   parents list it, and across all roots given to one struct chrun_walk;
 * - a document deeper than CHRUN_WALK_DEPTH_MAX (roots are depth 0) fails
 *   ("index D: nested more than N deep", D being its parent);
 * - a document that lists itself, directly or further down, fails (a loop);
 * - with CHRUN_WALK_BOUNDED (input from outside: an archive, a registry),
 *   at most CHRUN_WALK_DOCS_MAX documents are gone into per root, repeats
 *   included (each is read once, but an index listing 40 indexes that each
 *   list the same 40 counts 1600) and entries a visitor skips not (a pull
 *   of one platform of a large index); the store's own images are not
 *   bounded;
 * - a document must parse as the media type it declares
 *   (chrun_manifest_parse);
 * - with CHRUN_WALK_BOUNDED, a blob listed twice with two sizes fails. */
#ifndef CHRUN_WALK_H
#define CHRUN_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chrun/err.h"
#include "chrun/manifest.h"
#include "chrun/store.h"

/* Deepest document: a root is at depth 0, an image manifest under four
 * nested indexes at depth 4. */
#define CHRUN_WALK_DEPTH_MAX CHRUN_MANIFEST_MAX_DEPTH
/* Documents a CHRUN_WALK_BOUNDED walk may go into per root, repeats
 * included (an --all-platforms index is bounded too). */
#define CHRUN_WALK_DOCS_MAX 1024

enum chrun_walk_kind {
    CHRUN_WALK_INDEX = 1, /* an OCI index or docker manifest list */
    CHRUN_WALK_MANIFEST,  /* an image manifest */
    CHRUN_WALK_CONFIG,    /* a manifest's config */
    CHRUN_WALK_LAYER,     /* a manifest's layer */
    CHRUN_WALK_OTHER,     /* an index entry of an unknown media type (artifact) */
};

/* What a visitor returns. */
enum chrun_walk_action {
    CHRUN_WALK_CONTINUE = 0, /* read the document and walk its children */
    CHRUN_WALK_SKIP = 1,     /* do not read it or walk below it */
    CHRUN_WALK_STOP = 2,     /* end the whole walk now, successfully */
};

/* What a reader returns besides 0 and -1: the document is not there, so
 * the walk goes on without its children (a pull keeps only one platform). */
#define CHRUN_WALK_ABSENT 1

struct chrun_walk_node {
    enum chrun_walk_kind kind; /* for a root without a media type: known once read */
    const struct chrun_descriptor *desc;
    int depth;                            /* 0 for a root */
    size_t pos;                           /* place in the parent's list (layers: 0-based) */
    const struct chrun_walk_node *parent; /* NULL for a root */
    /* Documents, once read (NULL in visit): the parsed document and its
     * bytes, both valid until the callback returns. */
    const struct chrun_manifest *m;
    const char *buf;
    size_t len;
};

struct chrun_walk_ops {
    /* Read document N->desc: on 0, *RET_BUF is a malloc'd copy the walker
     * frees; or CHRUN_WALK_ABSENT; or -1 with ERR. The reader checks the
     * digest and, where the source is untrusted, the declared size; the
     * walker parses. Required. */
    int (*read)(void *ctx, const struct chrun_walk_node *n, char **ret_buf, size_t *ret_len,
                struct chrun_err *err);
    /* Called once per descriptor before anything below it: documents before
     * they are read (n->m NULL), blobs once. Returns a chrun_walk_action or
     * -1 with ERR. NULL: continue everywhere. */
    int (*visit)(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err);
    /* Called for a document after all its children (n->m, n->buf set).
     * Returns 0, CHRUN_WALK_STOP or -1 with ERR. May be NULL. */
    int (*leave)(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err);
};

enum chrun_walk_flags {
    /* input from outside: apply CHRUN_WALK_DOCS_MAX and refuse two sizes */
    CHRUN_WALK_BOUNDED = 1 << 0,
};

/* One walk's state: the visited set and the document budget. Initialize
 * with chrun_walk_init; free its contents with chrun_walk_release. */
struct chrun_walk {
    const struct chrun_walk_ops *ops;
    void *ctx;
    struct chrun_walk_slot *slots; /* open addressing, keyed by digest (and type) */
    size_t cap, n;
    unsigned n_docs;
    unsigned flags; /* enum chrun_walk_flags */
    bool stopped;
};

/* Start a walk with OPS over CTX; FLAGS: enum chrun_walk_flags. */
void chrun_walk_init(struct chrun_walk *w, const struct chrun_walk_ops *ops, void *ctx,
                     unsigned flags);
void chrun_walk_release(struct chrun_walk *w);

/* Walk from ROOT (depth 0), skipping whatever this walk visited already.
 * Returns 0 (also after a visitor's CHRUN_WALK_STOP; later calls then do
 * nothing) or -1 with ERR: the callback's error, or one of the rules above,
 * CHRUN_E_INPUT. */
int chrun_walk_from(struct chrun_walk *w, const struct chrun_descriptor *root,
                    struct chrun_err *err);

/* A reader over the store: CTX is a struct chrun_store *. Documents absent
 * from the store below the root are CHRUN_WALK_ABSENT (a pull keeps one
 * platform of an index); an absent root fails as chrun_store_read_blob does. */
int chrun_walk_read_store(void *ctx, const struct chrun_walk_node *n, char **ret_buf,
                          size_t *ret_len, struct chrun_err *err);

/* The kind a descriptor of media type MT has when an index lists it:
 * CHRUN_WALK_INDEX, CHRUN_WALK_MANIFEST or CHRUN_WALK_OTHER. "" is
 * CHRUN_WALK_MANIFEST until its document says otherwise. */
enum chrun_walk_kind chrun_walk_kind_of(const char *mt);

#endif
