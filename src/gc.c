#include "chrun/gc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/attach.h"
#include "chrun/build-cache.h"
#include "chrun/bundle.h"
#include "chrun/userns.h"
#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/tree.h"
#include "chrun/walk.h"
#include "cleanup.h"
#include "util.h"

/* The marked set: hex digests, sorted once marking is done, then searched. */
struct mark_set {
    char (*hex)[CHRUN_DIGEST_HEX_LEN + 1];
    size_t n, cap;
};

static void mark_set_release(struct mark_set *set)
{
    free(set->hex);
}
#define cleanup_mark_set __attribute__((cleanup(mark_set_release)))

static int mark_add(struct mark_set *set, const struct chrun_digest *d, struct chrun_err *err)
{
    if (chrun_grow(&set->hex, &set->cap, set->n + 1, sizeof(*set->hex), err) < 0)
        return chrun_err_prefix(err, "gc mark");
    memcpy(set->hex[set->n++], chrun_digest_hex(d), CHRUN_DIGEST_HEX_LEN + 1);
    return 0;
}

static int hex_cmp(const void *a, const void *b)
{
    return memcmp(a, b, CHRUN_DIGEST_HEX_LEN);
}

static bool mark_has(const struct mark_set *set, const char *hex)
{
    if (set->n == 0)
        return false; /* bsearch and qsort want a non-NULL base */
    return bsearch(hex, set->hex, set->n, sizeof(*set->hex), hex_cmp) != NULL;
}

/* gc's visitor: every descriptor reached is marked, documents absent from
 * the store included (a pull keeps only the chosen platform of an index). */
struct marker {
    struct chrun_store *st;
    struct mark_set *set;
};

static int mark_read(void *ctx, const struct chrun_walk_node *n, char **ret_buf, size_t *ret_len,
                     struct chrun_err *err)
{
    struct marker *mk = ctx;
    return chrun_walk_read_store(mk->st, n, ret_buf, ret_len, err);
}

static int mark_visit(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct marker *mk = ctx;
    return mark_add(mk->set, &n->desc->digest, err);
}

static bool subject_marked(const struct chrun_digest *subject, void *data)
{
    return mark_has(data, chrun_digest_hex(subject));
}

/* An attachment (attach.h) lives as long as its subject: mark those whose
 * subject is marked (SET sorted), and drop the index.json entries of the
 * rest, whose blobs this gc sweeps. Leaves SET sorted. */
static int mark_attachments(struct chrun_store *st, struct mark_set *set, struct chrun_walk *w,
                            bool dry_run, struct chrun_err *err)
{
    cleanup_free struct chrun_attachment *atts = NULL;
    size_t n, k = 0, n_set = set->n;
    if (chrun_attach_list(st, NULL, &atts, &n, err) < 0)
        return chrun_err_prefix(err, "mark attachments");
    /* decide on the sorted set first: marking appends unsorted */
    for (size_t i = 0; i < n; i++)
        if (subject_marked(&atts[i].subject, set))
            atts[k++] = atts[i];
    for (size_t i = 0; i < k; i++) {
        struct chrun_descriptor root = {.digest = atts[i].digest, .size = -1};
        snprintf(root.media_type, sizeof(root.media_type), "%s", atts[i].media_type);
        if (chrun_walk_from(w, &root, err) < 0)
            return chrun_err_prefix(err, "mark attachment %s", atts[i].digest.str);
    }
    if (set->n > n_set)
        qsort(set->hex, set->n, sizeof(*set->hex), hex_cmp);
    return chrun_attach_prune(st, subject_marked, set, dry_run, NULL, err);
}

static int mark(struct chrun_store *st, struct mark_set *set, bool dry_run,
                struct chrun_err *err)
{
    static const struct chrun_walk_ops ops = {.read = mark_read, .visit = mark_visit};
    struct marker mk = {st, set};
    cleanup_free struct chrun_store_image *imgs = NULL;
    struct chrun_walk w;
    size_t n;
    int rc;
    if (chrun_store_list(st, &imgs, &n, err) < 0)
        return -1;
    chrun_walk_init(&w, &ops, &mk, 0);
    for (size_t i = 0; i < n; i++) {
        struct chrun_descriptor root = {.digest = imgs[i].digest, .size = -1};
        snprintf(root.media_type, sizeof(root.media_type), "%s", imgs[i].media_type);
        if (chrun_walk_from(&w, &root, err) < 0) {
            chrun_walk_release(&w);
            return chrun_err_prefix(err, "mark image '%s'",
                                    imgs[i].ref[0] ? imgs[i].ref : imgs[i].digest.str);
        }
    }
    if (set->n > 0)
        qsort(set->hex, set->n, sizeof(*set->hex), hex_cmp);
    /* the same walk: what an attachment shares with an image is seen once */
    rc = mark_attachments(st, set, &w, dry_run, err);
    chrun_walk_release(&w);
    return rc;
}

/* Call FN for every entry of directory PARENT_FD/NAME; a missing NAME has none. */
static int for_each_entry(int parent_fd, const char *name, chrun_fs_entry_fn fn, void *data,
                          struct chrun_err *err)
{
    cleanup_close int fd = openat(parent_fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0)
        return chrun_err_sys(err, errno, "open '%s'", name);
    if (chrun_fs_each_at(fd, fn, data, err) < 0)
        return chrun_err_prefix(err, "'%s'", name);
    return 0;
}

struct sweep {
    struct chrun_store *st;
    const struct chrun_gc_opts *opts;
    struct mark_set *marked;
    struct chrun_gc_report *report;
};

static int sweep_blob(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct sweep *s = data;
    struct stat sb;
    char digest[CHRUN_DIGEST_STR_MAX + 8];

    snprintf(digest, sizeof(digest), "sha256:%s", name);
    /* Only names that are digests are ours; leave anything else alone. */
    if (!chrun_digest_is_valid(digest) || mark_has(s->marked, name)) {
        s->report->blobs_kept++;
        return 0;
    }
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
        return chrun_err_sys(err, errno, "stat blob %s", digest);
    if (!s->opts->dry_run && unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
        return chrun_err_sys(err, errno, "remove blob %s", digest);
    chrun_log_debug("%s blob %s", s->opts->dry_run ? "would remove" : "removed", digest);
    s->report->blobs_removed++;
    s->report->bytes_freed += (uint64_t) sb.st_size;
    return 0;
}

/* Every tmp/ entry is stale: gc holds the store exclusively, so no writer that
 * could own one is alive. */
static int sweep_tmp(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct sweep *s = data;
    struct stat sb;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode))
        s->report->bytes_freed += (uint64_t) sb.st_size;
    if (!s->opts->dry_run && chrun_fs_rm_rf_at(dfd, name, err) < 0)
        return -1;
    s->report->tmp_removed++;
    return 0;
}

/* A build-cache entry whose layer blob this gc removes would only ever be
 * a miss: drop it. Entries of steps that made no layer name no blob and
 * stay (a few bytes each), as do files that are no entry. With
 * --build-cache every entry goes. */
static int sweep_cache_entry(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct sweep *s = data;
    struct chrun_changeset_layer l;

    if (!s->opts->build_cache &&
        (!chrun_build_cache_read_at(dfd, name, &l) || l.empty ||
         !str_has_prefix(l.digest.str, "sha256:") ||
         mark_has(s->marked, chrun_digest_hex(&l.digest))))
        return 0;
    if (!s->opts->dry_run && unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
        return chrun_err_sys(err, errno, "remove build cache entry '%s'", name);
    s->report->cache_removed++;
    return 0;
}

/* --build-cache: a RUN --mount=type=cache directory (files in it may belong
 * to the subordinate ids a RUN ran as). */
static int sweep_cache_mount(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct sweep *s = data;
    if (!s->opts->dry_run && chrun_userns_rm_rf_at(dfd, name, err) < 0)
        return -1;
    chrun_log_debug("%s cache mount '%s'", s->opts->dry_run ? "would remove" : "removed", name);
    s->report->cache_mounts_removed++;
    return 0;
}

/* The manifest digest a bundle records, or "" if it has none we can read. */
static void bundle_digest(int dfd, const char *name, char *buf)
{
    cleanup_close int bfd = openat(dfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct chrun_err err = CHRUN_ERR_INIT;
    if (bfd < 0 || chrun_bundle_manifest_digest(bfd, buf, &err) < 0)
        buf[0] = '\0';
}

static int sweep_bundle(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct sweep *s = data;
    char digest[CHRUN_DIGEST_STR_MAX];

    /* Unfinished unpacks (dot-named temp dirs) are always stale under the gc lock. */
    if (name[0] != '.') {
        bundle_digest(dfd, name, digest);
        if (digest[0] != '\0' && mark_has(s->marked, digest + 7))
            return 0;
        if (digest[0] == '\0') {
            chrun_log_warn("keeping bundle '%s': it records no image digest", name);
            return 0;
        }
    }
    if (!s->opts->dry_run && chrun_userns_rm_rf_at(dfd, name, err) < 0)
        return -1;
    chrun_log_debug("%s bundle '%s'", s->opts->dry_run ? "would remove" : "removed", name);
    s->report->bundles_removed++;
    return 0;
}

/* chrun_tree_gc's question: is the tree of manifest HEX of a named image? */
static bool tree_named(const char *hex, void *data)
{
    return strlen(hex) == CHRUN_DIGEST_HEX_LEN && mark_has(data, hex);
}

int chrun_gc_run(struct chrun_store *st, const struct chrun_gc_opts *opts,
                 struct chrun_gc_report *report, struct chrun_err *err)
{
    cleanup_mark_set struct mark_set marked = {0};
    struct sweep s = {st, opts, &marked, report};
    int root = chrun_store_root_fd(st);
    uint64_t trees = 0;

    memset(report, 0, sizeof(*report));
    if (mark(st, &marked, opts->dry_run, err) < 0 ||
        for_each_entry(root, "blobs/sha256", sweep_blob, &s, err) < 0 ||
        for_each_entry(root, "tmp", sweep_tmp, &s, err) < 0 ||
        (opts->bundles && for_each_entry(root, "bundles", sweep_bundle, &s, err) < 0) ||
        chrun_tree_gc(st, tree_named, &marked, opts->dry_run, &trees, err) < 0)
        return -1;
    chrun_log_debug("%llu image trees %s", (unsigned long long) trees,
                    opts->dry_run ? "would go" : "removed");
    if (for_each_entry(root, CHRUN_BUILD_CACHE_DIR, sweep_cache_entry, &s, err) < 0 ||
        (opts->build_cache &&
         for_each_entry(root, CHRUN_BUILD_CACHE_MOUNTS_DIR, sweep_cache_mount, &s, err) < 0))
        return -1;
    if (!opts->dry_run && chrun_fs_fsync_dir(chrun_store_blobs_fd(st), err) < 0)
        return -1;
    return 0;
}
