/* chrun_walk: the one walk of the manifest graph (see chrun/walk.h). */
#include "chrun/walk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chrun/io.h"
#include "cleanup.h"
#include "path-set.h"
#include "util.h"

/* Key of a visited descriptor: its digest, and for documents a space and
 * the declared media type (a document is checked as each type it is
 * listed as). */
#define WALK_KEY_MAX (CHRUN_DIGEST_STR_MAX + CHRUN_MEDIA_TYPE_MAX + 2)

enum slot_state { SLOT_FREE = 0, SLOT_ACTIVE, SLOT_DONE };

struct chrun_walk_slot {
    char *key;
    int64_t size;
    enum slot_state state;
};

void chrun_walk_init(struct chrun_walk *w, const struct chrun_walk_ops *ops, void *ctx,
                     unsigned flags)
{
    memset(w, 0, sizeof(*w));
    w->ops = ops;
    w->ctx = ctx;
    w->flags = flags;
}

void chrun_walk_release(struct chrun_walk *w)
{
    for (size_t i = 0; i < w->cap; i++)
        free(w->slots[i].key);
    free(w->slots);
    w->slots = NULL;
    w->cap = w->n = 0;
}

static struct chrun_walk_slot *slot_find(const struct chrun_walk *w, const char *key)
{
    if (w->cap == 0)
        return NULL;
    for (size_t i = path_hash(key) & (w->cap - 1);; i = (i + 1) & (w->cap - 1)) {
        if (w->slots[i].key == NULL)
            return NULL;
        if (streq(w->slots[i].key, key))
            return &w->slots[i];
    }
}

static struct chrun_walk_slot *slot_put(struct chrun_walk_slot *slots, size_t cap, char *key)
{
    size_t i = path_hash(key) & (cap - 1);
    while (slots[i].key != NULL)
        i = (i + 1) & (cap - 1);
    slots[i].key = key;
    return &slots[i];
}

/* Add KEY (not present) in state ACTIVE; returns its slot or NULL (ENOMEM). */
static struct chrun_walk_slot *slot_add(struct chrun_walk *w, const char *key, int64_t size,
                                        struct chrun_err *err)
{
    struct chrun_walk_slot *s;
    char *copy;
    if ((w->n + 1) * 10 >= w->cap * 7) {
        size_t cap = w->cap ? w->cap * 2 : 256;
        struct chrun_walk_slot *bigger = calloc(cap, sizeof(*bigger));
        if (bigger == NULL) {
            chrun_err_sys(err, ENOMEM, "manifest walk");
            return NULL;
        }
        for (size_t i = 0; i < w->cap; i++)
            if (w->slots[i].key != NULL)
                *slot_put(bigger, cap, w->slots[i].key) = w->slots[i];
        free(w->slots);
        w->slots = bigger;
        w->cap = cap;
    }
    copy = strdup(key);
    if (copy == NULL) {
        chrun_err_sys(err, ENOMEM, "manifest walk");
        return NULL;
    }
    s = slot_put(w->slots, w->cap, copy);
    s->size = size;
    s->state = SLOT_ACTIVE;
    w->n++;
    return s;
}

enum chrun_walk_kind chrun_walk_kind_of(const char *mt)
{
    if (chrun_manifest_type_is_index(mt))
        return CHRUN_WALK_INDEX;
    if (*mt == '\0' || chrun_manifest_type_is_known(mt))
        return CHRUN_WALK_MANIFEST;
    return CHRUN_WALK_OTHER;
}

static bool is_document(enum chrun_walk_kind k)
{
    return k == CHRUN_WALK_INDEX || k == CHRUN_WALK_MANIFEST;
}

int chrun_walk_read_store(void *ctx, const struct chrun_walk_node *n, char **ret_buf,
                          size_t *ret_len, struct chrun_err *err)
{
    struct chrun_store *st = ctx;
    /* a missing root fails as any missing blob does */
    if (n->depth > 0 && !chrun_store_has_blob(st, &n->desc->digest))
        return CHRUN_WALK_ABSENT;
    return chrun_store_read_blob(st, &n->desc->digest, CHRUN_MANIFEST_MAX, ret_buf, ret_len, err);
}

static int walk_node(struct chrun_walk *w, struct chrun_walk_node *n, struct chrun_err *err);

/* The children of document N, in document order. */
static int walk_children(struct chrun_walk *w, const struct chrun_walk_node *n,
                         struct chrun_err *err)
{
    const struct chrun_manifest *m = n->m;
    struct chrun_walk_node c = {.depth = n->depth + 1, .parent = n};

    if (m->is_index) {
        for (size_t i = 0; i < m->n_manifests && !w->stopped; i++) {
            c.kind = chrun_walk_kind_of(m->manifests[i].media_type);
            c.desc = &m->manifests[i];
            c.pos = i;
            if (walk_node(w, &c, err) < 0)
                return -1;
        }
        return 0;
    }
    c.kind = CHRUN_WALK_CONFIG;
    c.desc = &m->config;
    c.pos = 0;
    if (walk_node(w, &c, err) < 0)
        return -1;
    c.kind = CHRUN_WALK_LAYER;
    for (size_t i = 0; i < m->n_layers && !w->stopped; i++) {
        c.desc = &m->layers[i];
        c.pos = i;
        if (walk_node(w, &c, err) < 0)
            return -1;
    }
    return 0;
}

/* Read, check and parse document N, walk below it, call leave. */
static int walk_document(struct chrun_walk *w, struct chrun_walk_node *n, struct chrun_err *err)
{
    const struct chrun_descriptor *d = n->desc;
    cleanup_free char *buf = NULL;
    struct chrun_manifest m;
    size_t len = 0;
    int rc;

    rc = w->ops->read(w->ctx, n, &buf, &len, err);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (chrun_manifest_parse(&m, buf, len, d->media_type, err) < 0)
        return chrun_err_prefix(err, "manifest %s", d->digest.str);
    n->kind = m.is_index ? CHRUN_WALK_INDEX : CHRUN_WALK_MANIFEST;
    n->m = &m;
    n->buf = buf;
    n->len = len;
    rc = walk_children(w, n, err);
    if (rc == 0 && !w->stopped && w->ops->leave != NULL) {
        rc = w->ops->leave(w->ctx, n, err);
        if (rc == CHRUN_WALK_STOP) {
            w->stopped = true;
            rc = 0;
        }
    }
    n->m = NULL;
    n->buf = NULL;
    chrun_manifest_release(&m);
    return rc < 0 ? -1 : 0;
}

/* SPEC "Bad input": manifests that fan out without end. Every document the
 * walk goes into counts, repeats too, so that indexes sharing sub-indexes
 * are bounded by what they list; entries a visitor skips do not. */
static int count_document(struct chrun_walk *w, struct chrun_err *err)
{
    if ((w->flags & CHRUN_WALK_BOUNDED) && ++w->n_docs > CHRUN_WALK_DOCS_MAX)
        return chrun_err_set(err, CHRUN_E_INPUT, "more than %d manifests and indexes",
                             CHRUN_WALK_DOCS_MAX);
    return 0;
}

static int walk_node(struct chrun_walk *w, struct chrun_walk_node *n, struct chrun_err *err)
{
    const struct chrun_descriptor *d = n->desc;
    bool doc = is_document(n->kind);
    char key[WALK_KEY_MAX];
    struct chrun_walk_slot *s;
    int rc;

    if (doc)
        snprintf(key, sizeof(key), "%s %s", d->digest.str, d->media_type);
    else
        snprintf(key, sizeof(key), "%s", d->digest.str);
    s = slot_find(w, key);
    /* SPEC "Bad input": every size a peer declares is checked */
    if ((w->flags & CHRUN_WALK_BOUNDED) && s != NULL && s->size != d->size && s->size >= 0 &&
        d->size >= 0)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "blob %s is listed with two sizes (%" PRId64 " and %" PRId64 ")",
                             d->digest.str, s->size, d->size);
    /* SPEC "Bad input": manifests that loop. */
    if (s != NULL && s->state == SLOT_ACTIVE)
        return chrun_err_set(err, CHRUN_E_INPUT, "%s %s: lists itself (a loop)",
                             n->parent && n->parent->kind == CHRUN_WALK_INDEX ? "index"
                                                                              : "manifest",
                             n->parent ? n->parent->desc->digest.str : d->digest.str);
    if (s != NULL)
        return doc ? count_document(w, err) : 0;
    /* SPEC "Bad input": an index that nests without end. */
    if (doc && n->depth > CHRUN_WALK_DEPTH_MAX)
        return chrun_err_set(err, CHRUN_E_INPUT, "index %s: nested more than %d deep",
                             n->parent->desc->digest.str, CHRUN_WALK_DEPTH_MAX);
    s = slot_add(w, key, d->size, err);
    if (s == NULL)
        return -1;
    /* the table may grow below: find the slot again by key afterwards */
    rc = w->ops->visit != NULL ? w->ops->visit(w->ctx, n, err) : CHRUN_WALK_CONTINUE;
    if (rc == CHRUN_WALK_CONTINUE && doc && count_document(w, err) < 0)
        return -1;
    if (rc == CHRUN_WALK_CONTINUE && doc)
        rc = walk_document(w, n, err);
    else if (rc == CHRUN_WALK_STOP)
        w->stopped = true;
    if (rc < 0)
        return -1;
    s = slot_find(w, key);
    if (s != NULL)
        s->state = SLOT_DONE;
    return 0;
}

int chrun_walk_from(struct chrun_walk *w, const struct chrun_descriptor *root,
                    struct chrun_err *err)
{
    struct chrun_walk_node n = {.kind = chrun_walk_kind_of(root->media_type), .desc = root};
    if (w->stopped)
        return 0;
    w->n_docs = 0; /* the budget is per image: a store or archive may hold many */
    return walk_node(w, &n, err);
}
