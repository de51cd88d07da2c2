/* The manifest walker: visited once, loops, depth, budget, absent and
 * malformed children, skip and stop. Documents come from an in-memory table
 * keyed by made-up digests, so a graph may loop (real digests cannot). */
#include "harness.h"

#include <stdbool.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/manifest.h"
#include "chrun/walk.h"

#define DOCS_MAX 1200

struct table {
    char digest[DOCS_MAX][CHRUN_DIGEST_STR_MAX];
    char *text[DOCS_MAX];
    size_t n;
    bool absent_is_error;
    /* what the visitor saw, in order */
    char trace[8192];
    int visits, leaves;
    const char *skip; /* digest the visitor skips */
    const char *stop; /* digest the visitor stops at */
    bool skip_below_root;
};

static void dig(char *out, int n)
{
    snprintf(out, CHRUN_DIGEST_STR_MAX, "sha256:%064x", n);
}

static void put(struct table *t, int n, char *text)
{
    dig(t->digest[t->n], n);
    t->text[t->n++] = text;
}

static void table_free(struct table *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->text[i]);
}

/* An OCI index listing COUNT children by number; KINDS[i] is 'i' for an
 * index, else a manifest (NULL: all manifests). */
static char *index_kinds(const int *children, size_t count, const char *kinds)
{
    size_t cap = 256 + count * 256, off = 0;
    char *buf = malloc(cap), d[CHRUN_DIGEST_STR_MAX];
    off += (size_t) snprintf(buf + off, cap - off,
                             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[",
                             CHRUN_MT_OCI_INDEX);
    for (size_t i = 0; i < count; i++) {
        bool idx = kinds != NULL && kinds[i] == 'i';
        dig(d, children[i]);
        off += (size_t) snprintf(buf + off, cap - off,
                                 "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":1,"
                                 "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}",
                                 i ? "," : "", idx ? CHRUN_MT_OCI_INDEX : CHRUN_MT_OCI_MANIFEST, d);
    }
    snprintf(buf + off, cap - off, "]}");
    return buf;
}

static char *index_text(const int *children, size_t count, bool kind_index)
{
    return index_kinds(children, count, kind_index ? "iiiiiiii" : NULL);
}

/* An OCI manifest with config number CFG and one layer numbered LAYER of SIZE. */
static char *manifest_text(int cfg, int layer, int size)
{
    char *buf = malloc(1024), c[CHRUN_DIGEST_STR_MAX], l[CHRUN_DIGEST_STR_MAX];
    dig(c, cfg);
    dig(l, layer);
    snprintf(buf, 1024,
             "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":2},\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\","
             "\"size\":%d}]}",
             CHRUN_MT_OCI_MANIFEST, CHRUN_MT_OCI_CONFIG, c, CHRUN_MT_OCI_LAYER_GZIP, l, size);
    return buf;
}

static int t_read(void *ctx, const struct chrun_walk_node *n, char **ret_buf, size_t *ret_len,
                  struct chrun_err *err)
{
    struct table *t = ctx;
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->digest[i], n->desc->digest.str)) {
            *ret_buf = strdup(t->text[i]);
            *ret_len = strlen(t->text[i]);
            return 0;
        }
    if (t->absent_is_error)
        return chrun_err_set(err, CHRUN_E_NOTFOUND, "%s not found", n->desc->digest.str);
    return CHRUN_WALK_ABSENT;
}

static const char *kind_name(enum chrun_walk_kind k)
{
    static const char *names[] = {"?", "index", "manifest", "config", "layer", "other"};
    return names[k];
}

/* "kind:<last 2 hex>@depth" per visit, "/<last 2 hex>" per leave. */
static int t_visit(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct table *t = ctx;
    const char *s = n->desc->digest.str;
    size_t len = strlen(t->trace);
    (void) err;
    t->visits++;
    snprintf(t->trace + len, sizeof(t->trace) - len, "%s:%s@%d ", kind_name(n->kind),
             s + strlen(s) - 2, n->depth);
    if (t->skip_below_root && n->depth > 0)
        return CHRUN_WALK_SKIP;
    if (t->skip != NULL && !strcmp(s, t->skip))
        return CHRUN_WALK_SKIP;
    if (t->stop != NULL && !strcmp(s, t->stop))
        return CHRUN_WALK_STOP;
    return CHRUN_WALK_CONTINUE;
}

static int t_leave(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct table *t = ctx;
    const char *s = n->desc->digest.str;
    size_t len = strlen(t->trace);
    (void) err;
    t->leaves++;
    CHECK(n->m != NULL && n->buf != NULL && n->len > 0);
    snprintf(t->trace + len, sizeof(t->trace) - len, "/%s ", s + strlen(s) - 2);
    return 0;
}

static const struct chrun_walk_ops ops = {t_read, t_visit, t_leave};

static int walk_root_flags(struct table *t, int n, unsigned flags, struct chrun_err *err)
{
    struct chrun_descriptor root = {.size = -1};
    struct chrun_walk w;
    int rc;
    dig(root.digest.str, n);
    snprintf(root.media_type, sizeof(root.media_type), "%s", CHRUN_MT_OCI_INDEX);
    chrun_walk_init(&w, &ops, t, flags);
    rc = chrun_walk_from(&w, &root, err);
    chrun_walk_release(&w);
    return rc;
}

static int walk_root(struct table *t, int n, struct chrun_err *err)
{
    return walk_root_flags(t, n, CHRUN_WALK_BOUNDED, err);
}

static bool has(const struct chrun_err *err, const char *s)
{
    if (strstr(err->msg, s) != NULL)
        return true;
    fprintf(stderr, "# message '%s' lacks '%s'\n", err->msg, s);
    return false;
}

/* Index 0x10 lists manifests 0x20, 0x21 and index 0x11, which lists 0x20
 * again; both manifests share config 0xc0 and layer 0xa0. Each descriptor
 * is visited once, documents are left after their children. */
static void test_dag_shared_children_once(void)
{
    struct table t = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    int top[] = {0x20, 0x11, 0x21}, inner[] = {0x20};

    put(&t, 0x10, index_kinds(top, 3, "mim"));
    put(&t, 0x11, index_text(inner, 1, false));
    put(&t, 0x20, manifest_text(0xc0, 0xa0, 5));
    put(&t, 0x21, manifest_text(0xc0, 0xa0, 5));
    CHECK_INT_EQ(walk_root(&t, 0x10, &err), 0);
    CHECK_STR_EQ(t.trace, "index:10@0 manifest:20@1 config:c0@2 layer:a0@2 /20 index:11@1 /11 "
                          "manifest:21@1 /21 /10 ");
    CHECK_INT_EQ(t.visits, 6);
    CHECK_INT_EQ(t.leaves, 4);
    table_free(&t);
}

/* 0x30 -> 0x31 -> 0x30: a loop, named, not a depth error. */
static void test_cycle(void)
{
    struct table t = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    put(&t, 0x30, index_text((int[]){0x31}, 1, true));
    put(&t, 0x31, index_text((int[]){0x30}, 1, true));
    CHECK_INT_EQ(walk_root(&t, 0x30, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    CHECK(has(&err, "lists itself (a loop)"));
    CHECK(has(&err, "31"));
    table_free(&t);

    /* an index that lists itself */
    memset(&t, 0, sizeof(t));
    chrun_err_clear(&err);
    put(&t, 0x32, index_text((int[]){0x32}, 1, true));
    CHECK_INT_EQ(walk_root(&t, 0x32, &err), -1);
    CHECK(has(&err, "lists itself"));
    table_free(&t);
}

/* Documents at depth 0..CHRUN_WALK_DEPTH_MAX pass; one more level fails,
 * naming the index that lists the too-deep child. */
static void test_depth_bound(void)
{
    for (int extra = 0; extra <= 1; extra++) {
        struct table t = {0};
        struct chrun_err err = CHRUN_ERR_INIT;
        int levels = CHRUN_WALK_DEPTH_MAX + extra; /* indexes above the manifest */
        for (int i = 0; i < levels; i++)
            put(&t, 0x40 + i, index_text((int[]){0x40 + i + 1}, 1, i + 1 < levels));
        put(&t, 0x40 + levels, manifest_text(0xc1, 0xa1, 5));
        if (extra == 0) {
            CHECK_INT_EQ(walk_root(&t, 0x40, &err), 0);
            CHECK(strstr(t.trace, "manifest:44@4") != NULL);
        } else {
            char parent[CHRUN_DIGEST_STR_MAX];
            dig(parent, 0x40 + levels - 1);
            CHECK_INT_EQ(walk_root(&t, 0x40, &err), -1);
            CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
            CHECK(has(&err, "nested more than 4 deep"));
            CHECK(has(&err, parent));
        }
        table_free(&t);
    }
}

/* An absent child: the reader decides. ABSENT skips it (a pull keeps one
 * platform), an error ends the walk. */
static void test_missing_child(void)
{
    struct table t = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    put(&t, 0x50, index_text((int[]){0x51, 0x52}, 2, false));
    put(&t, 0x52, manifest_text(0xc2, 0xa2, 5));
    CHECK_INT_EQ(walk_root(&t, 0x50, &err), 0);
    CHECK_STR_EQ(t.trace, "index:50@0 manifest:51@1 manifest:52@1 config:c2@2 layer:a2@2 /52 /50 ");
    t.absent_is_error = true;
    t.trace[0] = '\0';
    CHECK_INT_EQ(walk_root(&t, 0x50, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_NOTFOUND);
    CHECK(has(&err, "51 not found"));
    table_free(&t);
}

/* A child that is not JSON, or is an index where a manifest is declared. */
static void test_malformed_child(void)
{
    struct table t = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    char d[CHRUN_DIGEST_STR_MAX];
    put(&t, 0x60, index_text((int[]){0x61}, 1, false));
    put(&t, 0x61, strdup("{not json"));
    CHECK_INT_EQ(walk_root(&t, 0x60, &err), -1);
    CHECK_INT_EQ(err.code, CHRUN_E_INPUT);
    dig(d, 0x61);
    CHECK(has(&err, d));
    CHECK(has(&err, "invalid JSON"));
    CHECK_INT_EQ(t.leaves, 0);
    table_free(&t);

    memset(&t, 0, sizeof(t));
    chrun_err_clear(&err);
    put(&t, 0x62, index_text((int[]){0x63}, 1, false));
    put(&t, 0x63, index_text((int[]){0x64}, 1, false));
    CHECK_INT_EQ(walk_root(&t, 0x62, &err), -1);
    CHECK(has(&err, "does not match declared"));
    table_free(&t);
}

/* One blob listed with two sizes is refused; SKIP and STOP. */
static void test_sizes_skip_stop(void)
{
    struct table t = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    char a[CHRUN_DIGEST_STR_MAX], b[CHRUN_DIGEST_STR_MAX];
    put(&t, 0x70, index_text((int[]){0x71, 0x72}, 2, false));
    put(&t, 0x71, manifest_text(0xc3, 0xa3, 5));
    put(&t, 0x72, manifest_text(0xc3, 0xa3, 6));
    CHECK_INT_EQ(walk_root(&t, 0x70, &err), -1);
    CHECK(has(&err, "listed with two sizes (5 and 6)"));

    dig(a, 0x71);
    t.skip = a;
    t.trace[0] = '\0';
    chrun_err_clear(&err);
    CHECK_INT_EQ(walk_root(&t, 0x70, &err), 0);
    CHECK_STR_EQ(t.trace, "index:70@0 manifest:71@1 manifest:72@1 config:c3@2 layer:a3@2 /72 /70 ");

    dig(b, 0xc3);
    t.skip = NULL;
    t.stop = b;
    t.trace[0] = '\0';
    CHECK_INT_EQ(walk_root(&t, 0x70, &err), 0);
    CHECK_STR_EQ(t.trace, "index:70@0 manifest:71@1 config:c3@2 ");
    table_free(&t);
}

/* An index with more entries than the document budget. */
static void test_fan_out_bounded(void)
{
    struct table t = {0};
    struct chrun_err err = CHRUN_ERR_INIT;
    static int kids[CHRUN_WALK_DOCS_MAX + 10];
    for (int i = 0; i < CHRUN_WALK_DOCS_MAX + 10; i++)
        kids[i] = 0x1000 + i;
    put(&t, 0x80, index_text(kids, CHRUN_WALK_DOCS_MAX + 10, false));
    CHECK_INT_EQ(walk_root(&t, 0x80, &err), -1);
    CHECK(has(&err, "more than 1024 manifests and indexes"));
    /* the store's own images are not bounded */
    CHECK_INT_EQ(walk_root_flags(&t, 0x80, 0, &err), 0);
    CHECK_INT_EQ(t.visits, (1 + CHRUN_WALK_DOCS_MAX) + (1 + CHRUN_WALK_DOCS_MAX + 10));
    /* entries the visitor skips (a pull of one platform) do not count */
    t.skip_below_root = true;
    CHECK_INT_EQ(walk_root(&t, 0x80, &err), 0);
    table_free(&t);
}

int main(void)
{
    RUN_TEST(test_dag_shared_children_once);
    RUN_TEST(test_cycle);
    RUN_TEST(test_depth_bound);
    RUN_TEST(test_missing_child);
    RUN_TEST(test_malformed_child);
    RUN_TEST(test_sizes_skip_stop);
    RUN_TEST(test_fan_out_bounded);
    return harness_done();
}
