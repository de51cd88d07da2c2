#include "chrun/tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/bundle.h"
#include "chrun/fs.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/userns.h"
#include "cleanup.h"
#include "util.h"

#define TREES_DIR "trees"
#define RUNS_DIR "runs"
#define TREE_CONFIG "tree.json"
#define LOCK_NAME "lock"
#define STAGING_MARK ".tmp-"

/* The manifest digest (hex) IMAGE runs as on PLATFORM. */
static int image_manifest_hex(struct chrun_store *st, const char *image, const char *platform,
                              struct chrun_digest *ret_md, struct chrun_err *err)
{
    struct chrun_store_image img;
    struct chrun_manifest m;
    if (chrun_store_resolve(st, image, &img, err) < 0)
        return -1;
    if (chrun_manifest_load_image(&m, st, &img, platform, ret_md, err) < 0)
        return chrun_err_prefix(err, "image '%s'", image);
    chrun_manifest_release(&m);
    return 0;
}

/* Open (creating) $CHRUN_ROOT/NAME. */
static int open_area(struct chrun_store *st, const char *name, struct chrun_err *err)
{
    if (mkdirat(chrun_store_root_fd(st), name, 0700) < 0 && errno != EEXIST)
        return chrun_err_sys(err, errno, "create '%s/%s'", chrun_store_root_path(st), name);
    return chrun_fs_open_dir_at(chrun_store_root_fd(st), name, err);
}

/* A staging directory a killed maker left (its lock is free). */
static int sweep_stale_staging(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    cleanup_close int fd = -1;
    (void) data;
    (void) err;
    if (name[0] != '.' || strstr(name, STAGING_MARK) == NULL)
        return 0;
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0)
        return 0;
    chrun_log_debug("removing stale '%s'", name);
    chrun_userns_rm_rf_at(dfd, name, &ignored);
    return 0;
}

int chrun_tree_staging_begin(struct chrun_store *st, const struct chrun_digest *md,
                             struct chrun_tree_staging *ts, struct chrun_err *err)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    const char *hex = chrun_digest_hex(md);
    char hidden[NAME_MAX + 1], swept[NAME_MAX + 1];

    memset(ts, 0, sizeof(*ts));
    ts->trees_fd = ts->dir_fd = -1;
    ts->md = *md;
    ts->trees_fd = open_area(st, TREES_DIR, err);
    if (ts->trees_fd < 0)
        return -1;
    chrun_fs_each_at(ts->trees_fd, sweep_stale_staging, NULL, &ignored);
    /* locked before it gets the name a sweeper looks at (a crash in between
     * leaves a ".new-" name, which chrun-gc removes with every other
     * unfinished tree) */
    snprintf(hidden, sizeof(hidden), ".%s.new-", hex);
    snprintf(swept, sizeof(swept), ".%s" STAGING_MARK, hex);
    ts->dir_fd = chrun_fs_mkdtemp_locked_at(ts->trees_fd, hidden, swept, ts->name,
                                            sizeof(ts->name), err);
    if (ts->dir_fd < 0) {
        ts->name[0] = '\0';
        return -1;
    }
    if (snprintf(ts->bundle, sizeof(ts->bundle), "%s/" TREES_DIR "/%s/b",
                 chrun_store_root_path(st), ts->name) >= (int) sizeof(ts->bundle))
        return chrun_err_sys(err, ENAMETOOLONG, "tree path");
    return 0;
}

int chrun_tree_staging_publish(struct chrun_tree_staging *ts, struct chrun_err *err)
{
    const char *hex = chrun_digest_hex(&ts->md);
    if (renameat(ts->dir_fd, "b/config.json", ts->dir_fd, "b/" TREE_CONFIG) < 0)
        return chrun_err_sys(err, errno, "tree %s: rename config.json", hex);
    /* a concurrent maker of the same tree may win; that is fine */
    if (renameat2(ts->dir_fd, "b", ts->trees_fd, hex, RENAME_NOREPLACE) < 0 && errno != EEXIST)
        return chrun_err_sys(err, errno, "tree %s: rename into place", hex);
    return chrun_fs_fsync_dir(ts->trees_fd, err);
}

void chrun_tree_staging_release(struct chrun_tree_staging *ts)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    if (ts->trees_fd >= 0 && ts->name[0] != '\0')
        chrun_userns_rm_rf_at(ts->trees_fd, ts->name, &ignored);
    ts->name[0] = '\0';
    if (ts->dir_fd >= 0)
        close(ts->dir_fd);
    if (ts->trees_fd >= 0)
        close(ts->trees_fd);
    ts->dir_fd = ts->trees_fd = -1;
}

bool chrun_tree_exists(struct chrun_store *st, const struct chrun_digest *md)
{
    char path[sizeof(TREES_DIR) + CHRUN_DIGEST_HEX_LEN + 1];
    struct stat sb;
    snprintf(path, sizeof(path), TREES_DIR "/%s", chrun_digest_hex(md));
    return fstatat(chrun_store_root_fd(st), path, &sb, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Unpack manifest MD into trees/<hex>: a bundle in a staging directory,
 * its config.json renamed (the tree is no bundle), then the whole renamed
 * into place. */
static int make_tree(struct chrun_store *st, const struct chrun_digest *md, struct chrun_err *err)
{
    struct chrun_unpack_opts unpack = CHRUN_UNPACK_OPTS_INIT;
    struct chrun_tree_staging ts;
    char path[PATH_MAX];
    int rc = chrun_tree_staging_begin(st, md, &ts, err);

    chrun_log_debug("unpacking the tree of %s", md->str);
    if (rc == 0)
        rc = chrun_bundle_unpack(st, md->str, ts.bundle, &unpack, path, sizeof(path), err);
    if (rc == 0)
        rc = chrun_tree_staging_publish(&ts, err);
    chrun_tree_staging_release(&ts);
    return rc;
}

/* Remove runs/NAME. An ordinary user's overlay leaves directories of mode 0
 * in work/ (and a command may leave such in upper/): they are the caller's
 * own, so a user namespace mapping just the caller to root removes them
 * when chrun_userns_rm_rf_at (files of subordinate ids) could not. */
void chrun_tree_overlay_work_release(int dirfd, const char *workdir)
{
    static const char *const made[] = {"work", "work/incompat", "work/incompat/volatile",
                                       "index"};
    cleanup_close int wfd = -1;
    if (geteuid() == 0)
        return;
    wfd = openat(dirfd, workdir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    for (size_t i = 0; wfd >= 0 && i < ARRAY_SIZE(made); i++)
        if (fchmodat(wfd, made[i], 0700, 0) < 0 && errno != ENOENT)
            break;
}

static int remove_run(int runsfd, const char *name, struct chrun_err *err)
{
    struct chrun_idmap map;
    char work[NAME_MAX + 8];

    snprintf(work, sizeof(work), "%s/work", name);
    chrun_tree_overlay_work_release(runsfd, work);
    if (chrun_userns_rm_rf_at(runsfd, name, err) == 0)
        return 0;
    if (geteuid() == 0 || (err->errnum != EACCES && err->errnum != EPERM))
        return -1;
    memset(&map, 0, sizeof(map));
    map.uid = getuid();
    map.gid = getgid();
    chrun_err_clear(err);
    return chrun_userns_rm_rf_at_mapped(&map, runsfd, name, err);
}

/* Remove runs/NAME if its lock is free (or, with MISSING_STALE, absent).
 * Returns 1 removed, 0 in use, -1 error. */
static int remove_run_if_free(int runsfd, const char *name, bool missing_stale, bool dry_run,
                              struct chrun_err *err)
{
    cleanup_close int dfd = -1, lfd = -1;
    dfd = openat(runsfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return errno == ENOENT || errno == ENOTDIR ? 0 : chrun_err_sys(err, errno, "open '%s'", name);
    lfd = openat(dfd, LOCK_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (lfd < 0 && (errno != ENOENT || !missing_stale))
        return 0;
    if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0)
        return 0; /* a live run holds it */
    chrun_log_debug("%s run '%s'", dry_run ? "would remove" : "removing", name);
    if (!dry_run && remove_run(runsfd, name, err) < 0)
        return -1;
    return 1;
}

/* Beside a live run: finished uses whose lock is free. Unfinished ones
 * (dot names) may belong to a run being set up right now. */
static int sweep_stale_run(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    (void) data;
    (void) err;
    if (name[0] != '.')
        remove_run_if_free(dfd, name, false, false, &ignored);
    return 0;
}

/* Set up runs/<name> for tree HEX: lock, bundle config, mount point, upper
 * and work; published (renamed to a name without the dot) once locked. */
static int make_run(struct chrun_store *st, struct chrun_tree_use *use, int treesfd,
                    const char *hex, struct chrun_err *err)
{
    const char *root = chrun_store_root_path(st);
    char prefix[NAME_MAX + 1], tmpname[NAME_MAX + 1], src[NAME_MAX + 32];
    cleanup_close int dfd = -1;
    static const char *const dirs[] = {"rootfs", "upper", "work"};

    snprintf(prefix, sizeof(prefix), ".%s.", hex);
    if (chrun_fs_mkdtemp_at(use->runs_fd, prefix, tmpname, sizeof(tmpname), err) < 0)
        return -1;
    memcpy(use->name, tmpname, sizeof(use->name)); /* what to remove on failure */
    dfd = openat(use->runs_fd, tmpname, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return chrun_err_sys(err, errno, "open '%s'", tmpname);
    use->lock_fd = openat(dfd, LOCK_NAME, O_RDONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                          0600);
    if (use->lock_fd < 0 || flock(use->lock_fd, LOCK_EX) < 0)
        return chrun_err_sys(err, errno, "lock '%s'", tmpname);
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        if (mkdirat(dfd, dirs[i], 0755) < 0)
            return chrun_err_sys(err, errno, "create '%s/%s'", tmpname, dirs[i]);
    snprintf(src, sizeof(src), "%s/" TREE_CONFIG, hex);
    if (linkat(treesfd, src, dfd, "config.json", 0) < 0)
        return chrun_err_sys(err, errno, "link the config of tree %s", hex);
    /* the dot-less name says: set up and locked */
    if (renameat(use->runs_fd, tmpname, use->runs_fd, tmpname + 1) < 0)
        return chrun_err_sys(err, errno, "rename '%s'", tmpname);
    memcpy(use->name, tmpname + 1, strlen(tmpname));
    if (snprintf(use->bundle, sizeof(use->bundle), "%s/" RUNS_DIR "/%s", root, use->name) >=
            (int) sizeof(use->bundle) ||
        snprintf(use->lower, sizeof(use->lower), "%s/" TREES_DIR "/%s/rootfs", root, hex) >=
            (int) sizeof(use->lower) ||
        snprintf(use->upper, sizeof(use->upper), "%s/upper", use->bundle) >=
            (int) sizeof(use->upper) ||
        snprintf(use->work, sizeof(use->work), "%s/work", use->bundle) >= (int) sizeof(use->work))
        return chrun_err_sys(err, ENAMETOOLONG, "run directory '%s'", use->bundle);
    use->overlay.lower = use->lower;
    use->overlay.upper = use->upper;
    use->overlay.work = use->work;
    /* SPEC-side rule of chrun/tree.h: the command inherits the lock, so the
     * use lives as long as any process of the run */
    if (fcntl(use->lock_fd, F_SETFD, 0) < 0)
        return chrun_err_sys(err, errno, "lock '%s'", use->name);
    return 0;
}

int chrun_tree_use_begin(struct chrun_store *st, const char *image, const char *platform,
                         struct chrun_tree_use *use, struct chrun_err *err)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    struct chrun_digest md;
    cleanup_close int treesfd = -1;
    struct stat sb;
    int rc = 0;

    memset(use, 0, sizeof(*use));
    use->runs_fd = use->lock_fd = -1;
    if (image_manifest_hex(st, image, platform, &md, err) < 0)
        return -1;
    treesfd = open_area(st, TREES_DIR, err);
    if (treesfd < 0)
        return -1;
    if (fstatat(treesfd, chrun_digest_hex(&md), &sb, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno != ENOENT)
            return chrun_err_sys(err, errno, "tree %s", md.str);
        if (make_tree(st, &md, err) < 0)
            return chrun_err_prefix(err, "image '%s'", image);
    }
    use->runs_fd = open_area(st, RUNS_DIR, err);
    if (use->runs_fd < 0)
        return -1;
    chrun_fs_each_at(use->runs_fd, sweep_stale_run, NULL, &ignored);
    rc = make_run(st, use, treesfd, chrun_digest_hex(&md), err);
    if (rc < 0) {
        if (use->lock_fd >= 0)
            close(take_fd(use->lock_fd));
        if (use->name[0] != '\0')
            remove_run(use->runs_fd, use->name, &ignored);
        close(take_fd(use->runs_fd));
    }
    return rc;
}

int chrun_tree_use_end(struct chrun_tree_use *use, struct chrun_err *err)
{
    int rc = 0;
    if (use->lock_fd >= 0)
        close(use->lock_fd);
    use->lock_fd = -1;
    /* the lock is free now unless a process of the run still holds it */
    if (use->runs_fd >= 0 && use->name[0] != '\0' &&
        remove_run_if_free(use->runs_fd, use->name, false, false, err) < 0)
        rc = -1;
    if (use->runs_fd >= 0)
        close(use->runs_fd);
    use->runs_fd = -1;
    return rc;
}

/* ---- gc ---- */

struct tree_gc {
    bool (*named)(const char *hex, void *data);
    void *data;
    bool dry_run;
    char (*live)[CHRUN_DIGEST_HEX_LEN + 1]; /* trees of live uses */
    size_t n_live, cap_live;
    uint64_t removed;
};

static int gc_run(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct tree_gc *g = data;
    /* under gc's exclusive lock no use is being set up: a dot name is stale */
    int rc = remove_run_if_free(dfd, name, true, g->dry_run, err);
    if (rc != 0 || name[0] == '.' || strlen(name) <= CHRUN_DIGEST_HEX_LEN)
        return rc < 0 ? -1 : 0;
    if (chrun_grow(&g->live, &g->cap_live, g->n_live + 1, sizeof(*g->live), err) < 0)
        return chrun_err_prefix(err, "gc trees");
    snprintf(g->live[g->n_live++], CHRUN_DIGEST_HEX_LEN + 1, "%s", name);
    return 0;
}

static int gc_tree(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct tree_gc *g = data;
    if (name[0] != '.') {
        if (g->named(name, g->data))
            return 0;
        for (size_t i = 0; i < g->n_live; i++)
            if (streq(g->live[i], name))
                return 0;
    }
    chrun_log_debug("%s tree '%s'", g->dry_run ? "would remove" : "removed", name);
    if (!g->dry_run && chrun_userns_rm_rf_at(dfd, name, err) < 0)
        return -1;
    if (name[0] != '.')
        g->removed++;
    return 0;
}

int chrun_tree_gc(struct chrun_store *st, bool (*named)(const char *hex, void *data), void *data,
                  bool dry_run, uint64_t *ret_removed, struct chrun_err *err)
{
    struct tree_gc g = {named, data, dry_run, NULL, 0, 0, 0};
    int root = chrun_store_root_fd(st);
    cleanup_close int runsfd = -1, treesfd = -1;
    int rc = 0;

    *ret_removed = 0;
    runsfd = openat(root, RUNS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (runsfd < 0 && errno != ENOENT)
        return chrun_err_sys(err, errno, "open '" RUNS_DIR "'");
    if (runsfd >= 0)
        rc = chrun_fs_each_at(runsfd, gc_run, &g, err);
    if (rc == 0) {
        treesfd = openat(root, TREES_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (treesfd < 0 && errno != ENOENT)
            rc = chrun_err_sys(err, errno, "open '" TREES_DIR "'");
    }
    if (rc == 0 && treesfd >= 0)
        rc = chrun_fs_each_at(treesfd, gc_tree, &g, err);
    free(g.live);
    *ret_removed = g.removed;
    return rc;
}
