/* The image-spec changeset rules over a back-end (see changeset-apply.h). */
#include "changeset-apply.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "util.h"

void changeset_applier_init(struct changeset_applier *a, const struct changeset_ops *ops,
                            void *be)
{
    memset(a, 0, sizeof(*a));
    a->ops = ops;
    a->be = be;
}

void changeset_applier_begin_layer(struct changeset_applier *a)
{
    path_set_clear(&a->layer_paths);
}

void changeset_applier_release(struct changeset_applier *a)
{
    path_set_clear(&a->layer_paths);
}

/* A directory opened through the back-end, closed when it goes out of scope. */
struct opened_dir {
    struct changeset_applier *a;
    struct changeset_dir d;
};

static void opened_dir_close(struct opened_dir *o)
{
    if (o->a != NULL)
        o->a->ops->close_dir(o->a->be, &o->d);
}
#define cleanup_opened __attribute__((cleanup(opened_dir_close)))

/* Open DIR of a whiteout. SPEC "Bad input": a whiteout (plain or opaque)
 * whose parent in the merged tree is not a directory reached without
 * symlinks (a file, a symlink, a device, absent, or a path through a
 * symlink) deletes nothing and follows nothing. Returns 1 with O open, 0
 * when there is nothing to delete, -1 on error. */
static int open_whiteout_dir(struct changeset_applier *a, const char *dir, const char *path,
                             struct opened_dir *o, struct chrun_err *err)
{
    int e = 0;
    int rc = a->ops->open_dir(a->be, dir, CHRUN_FS_BENEATH_NO_SYMLINKS, &o->d, &e, err);
    if (rc < 0)
        return chrun_err_prefix(err, "whiteout '%s'", path);
    if (rc > 0)
        return 0;
    o->a = a;
    return 1;
}

static int apply_whiteout(struct changeset_applier *a, const char *dir, const char *name,
                          const char *path, struct chrun_err *err)
{
    char victim[PATH_MAX];
    cleanup_opened struct opened_dir o = {0};
    int rc;
    if (*name == '\0' || streq(name, ".") || streq(name, ".."))
        return chrun_err_set(err, CHRUN_E_INPUT, "whiteout '%s' names no entry", path);
    if (!path_join(victim, dir, name))
        return chrun_err_set(err, CHRUN_E_INPUT, "whiteout '%s': name too long", path);
    /* image-spec: a whiteout hides only entries of lower layers */
    if (path_set_has(&a->layer_paths, victim))
        return 0;
    rc = open_whiteout_dir(a, dir, path, &o, err);
    if (rc <= 0)
        return rc;
    if (a->ops->remove(a->be, &o.d, name, victim, err) < 0)
        return chrun_err_prefix(err, "whiteout '%s'", path);
    return 0;
}

static int apply_opaque(struct changeset_applier *a, const char *dir, const char *path,
                        struct chrun_err *err)
{
    cleanup_opened struct opened_dir o = {0};
    char **names = NULL;
    size_t n = 0;
    int rc = open_whiteout_dir(a, dir, path, &o, err);
    if (rc <= 0)
        return rc;
    if (a->ops->list(a->be, &o.d, &names, &n, err) < 0)
        return chrun_err_prefix(err, "opaque whiteout '%s'", path);
    for (size_t i = 0; i < n && rc >= 0; i++) {
        char child[PATH_MAX];
        if (!path_join(child, dir, names[i]))
            rc = chrun_err_set(err, CHRUN_E_INPUT, "opaque whiteout '%s': name too long", path);
        else if (path_set_has(&a->layer_paths, child))
            continue; /* image-spec: entries of this same layer stay */
        else if (a->ops->remove(a->be, &o.d, names[i], child, err) < 0)
            rc = chrun_err_prefix(err, "opaque whiteout '%s'", path);
    }
    chrun_fs_names_free(names, n);
    return rc < 0 ? -1 : 0;
}

/* The parent directory DIR of an entry, resolved in the root; made (with
 * its missing parents) when it does not exist. */
static int open_parent(struct changeset_applier *a, const char *dir, struct opened_dir *o,
                       struct chrun_err *err)
{
    int e = 0;
    int rc = a->ops->open_dir(a->be, dir, CHRUN_FS_IN_ROOT, &o->d, &e, err);
    if (rc > 0 && e == ENOENT) {
        if (a->ops->mkdir_p(a->be, dir, err) < 0)
            return -1;
        rc = a->ops->open_dir(a->be, dir, CHRUN_FS_IN_ROOT, &o->d, &e, err);
    }
    if (rc < 0)
        return -1;
    if (rc > 0 && (e == ENOTDIR || e == ELOOP || e == ENOENT))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "parent '%s' is not a directory inside the root", dir);
    if (rc > 0)
        return chrun_err_sys(err, e, "open directory '%s'", dir);
    o->a = a;
    return 0;
}

/* TARGET: the normalized hardlink name; LINK: as the entry gives it. */
static int apply_hardlink(struct changeset_applier *a, const struct changeset_dir *pd,
                          const char *base, const char *path, const char *target,
                          const char *link, struct chrun_err *err)
{
    char tdir[PATH_MAX];
    const char *tbase;
    size_t plen = strlen(path);
    cleanup_opened struct opened_dir t = {0};
    int e = 0, rc, kind;

    if (target[0] == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "hardlink '%s' to the root", path);
    if (streq(target, path))
        return 0;
    /* Replacing PATH removes what lies below it, the target too. */
    if (strncmp(target, path, plen) == 0 && target[plen] == '/')
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "hardlink '%s' -> '%s': the target lies inside the entry it "
                             "replaces",
                             path, link);
    path_split(target, tdir, &tbase);
    /* SPEC "Bad input": a hardlink target is a path the tar writer saw, so it
     * never goes through a symlink; one that does could name a host file. */
    rc = a->ops->open_dir(a->be, tdir, CHRUN_FS_BENEATH_NO_SYMLINKS, &t.d, &e, err);
    if (rc < 0)
        return chrun_err_prefix(err, "hardlink '%s' -> '%s'", path, link);
    if (rc > 0)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "hardlink '%s' -> '%s': target directory does not resolve "
                             "inside the root without symlinks: %s",
                             path, link, strerror(e));
    t.a = a;
    kind = a->ops->kind(a->be, &t.d, tbase, err);
    if (kind < 0)
        return chrun_err_prefix(err, "hardlink '%s' -> '%s'", path, link);
    if (kind == 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "hardlink '%s' -> '%s': %s", path, link,
                             strerror(ENOENT));
    if (kind == 1)
        return chrun_err_set(err, CHRUN_E_INPUT, "hardlink '%s' -> '%s': a directory", path,
                             link);
    if (a->ops->same_file(a->be, pd, base, &t.d, tbase))
        return 0; /* already this very file */
    if (a->ops->remove(a->be, pd, base, path, err) < 0)
        return -1;
    return a->ops->hardlink(a->be, &t.d, tbase, pd, base, path, link, err);
}

static int apply_dir(struct changeset_applier *a, const struct changeset_dir *pd,
                     const char *base, const char *path, struct archive_entry *e,
                     struct chrun_err *err)
{
    int kind = a->ops->kind(a->be, pd, base, err);
    if (kind < 0)
        return -1;
    /* directories merge; anything else is replaced */
    if (kind == 2 && a->ops->remove(a->be, pd, base, path, err) < 0)
        return -1;
    return a->ops->dir(a->be, pd, base, path, e, kind == 1, err);
}

static int apply_inode(struct changeset_applier *a, const struct changeset_dir *pd,
                       const char *base, const char *path, struct archive *tar,
                       struct archive_entry *e, struct chrun_err *err)
{
    mode_t type = archive_entry_filetype(e);
    const char *symlink = archive_entry_symlink(e);
    if (type == AE_IFLNK && (symlink == NULL || *symlink == '\0'))
        return chrun_err_set(err, CHRUN_E_INPUT, "symlink '%s' has no target", path);
    if (a->ops->remove(a->be, pd, base, path, err) < 0)
        return -1;
    return a->ops->inode(a->be, pd, base, path, tar, e, err);
}

int changeset_apply_entry(struct changeset_applier *a, struct archive *tar,
                          struct archive_entry *e, const char *path, const char *target,
                          struct chrun_err *err)
{
    char dir[PATH_MAX];
    const char *base;
    const char *raw = archive_entry_pathname(e);
    const char *link = archive_entry_hardlink(e);
    mode_t type = archive_entry_filetype(e);
    cleanup_opened struct opened_dir p = {0};

    if (raw == NULL)
        raw = archive_entry_pathname_utf8(e);
    path_split(path, dir, &base);
    if (str_has_prefix(base, CHANGESET_WHITEOUT_PREFIX)) {
        if (a->tarball)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "entry '%s': a '.wh.' name cannot be kept in an image layer",
                                 path);
        if (streq(base, CHANGESET_WHITEOUT_OPAQUE))
            return apply_opaque(a, dir, path, err);
        if (str_has_prefix(base, CHANGESET_WHITEOUT_META_PREFIX))
            return 0; /* aufs bookkeeping (.wh..wh.plnk), never content */
        return apply_whiteout(a, dir, base + strlen(CHANGESET_WHITEOUT_PREFIX), path, err);
    }
    if (path[0] == '\0') {
        if (type != AE_IFDIR || target != NULL)
            return chrun_err_set(err, CHRUN_E_INPUT, "entry '%s': the root must be a directory",
                                 raw != NULL ? raw : "");
        return a->ops->root(a->be, e, err);
    }
    if (path_set_add(&a->layer_paths, path, err) < 0)
        return -1;
    if (open_parent(a, dir, &p, err) < 0)
        return chrun_err_prefix(err, "entry '%s'", path);
    if (target != NULL)
        return apply_hardlink(a, &p.d, base, path, target, link != NULL ? link : target, err);
    switch (type) {
    case AE_IFDIR: return apply_dir(a, &p.d, base, path, e, err);
    case AE_IFREG:
    case AE_IFLNK:
    case AE_IFIFO:
    case AE_IFCHR:
    case AE_IFBLK: return apply_inode(a, &p.d, base, path, tar, e, err);
    default:
        return chrun_err_set(err, CHRUN_E_INPUT, "entry '%s': unsupported type 0%o", path,
                             (unsigned) type);
    }
}
