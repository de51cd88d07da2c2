/* chrun-export, pass 1: an in-memory tree of the image's paths, on which the
 * changeset rules (changeset-apply.c) replay every layer's entries, as the
 * disk back-end does for unpack; directories hash their children by name. */
#include "export-internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "chrun/fs.h"
#include "chrun/layer.h"
#include "cleanup.h"
#include "util.h"

struct node *export_node_new(const char *name, mode_t type, struct occurrence occ)
{
    struct node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->name = strdup(name);
    if (n->name == NULL) {
        free(n);
        return NULL;
    }
    n->type = type;
    n->occ = occ;
    return n;
}

static void inode_unref(struct inode *ino, struct node *n)
{
    if (ino->creator == n)
        ino->creator = NULL;
    if (--ino->refs > 0)
        return;
    free(ino->symlink);
    free(ino);
}

/* Free N and everything below it (N is already out of its parent's table). */
void export_node_free(struct node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n_buckets; i++) {
        struct node *c = n->buckets[i];
        while (c != NULL) {
            struct node *next = c->next_in_bucket;
            export_node_free(c);
            c = next;
        }
    }
    free(n->buckets);
    if (n->ino != NULL)
        inode_unref(n->ino, n);
    if (n->header != NULL)
        archive_entry_free(n->header);
    free(n->name);
    free(n);
}

static struct node *child_lookup(const struct node *dir, const char *name)
{
    if (dir->n_buckets == 0)
        return NULL;
    for (struct node *c = dir->buckets[path_hash(name) & (dir->n_buckets - 1)]; c != NULL;
         c = c->next_in_bucket)
        if (streq(c->name, name))
            return c;
    return NULL;
}

static int grow_buckets(struct node *dir, struct chrun_err *err)
{
    size_t cap = dir->n_buckets ? dir->n_buckets * 2 : 8;
    struct node **b = calloc(cap, sizeof(*b));
    if (b == NULL)
        return chrun_err_sys(err, ENOMEM, "export: directory table");
    for (size_t i = 0; i < dir->n_buckets; i++) {
        struct node *c = dir->buckets[i];
        while (c != NULL) {
            struct node *next = c->next_in_bucket;
            size_t slot = path_hash(c->name) & (cap - 1);
            c->next_in_bucket = b[slot];
            b[slot] = c;
            c = next;
        }
    }
    free(dir->buckets);
    dir->buckets = b;
    dir->n_buckets = cap;
    return 0;
}

/* Put CHILD (not yet in any table) into DIR; its name must be free there. */
static int child_insert(struct node *dir, struct node *child, struct chrun_err *err)
{
    size_t slot;
    if (dir->n_children >= dir->n_buckets && grow_buckets(dir, err) < 0)
        return -1;
    slot = path_hash(child->name) & (dir->n_buckets - 1);
    child->next_in_bucket = dir->buckets[slot];
    dir->buckets[slot] = child;
    child->parent = dir;
    dir->n_children++;
    return 0;
}

/* Take CHILD out of its parent's table and free its subtree. */
static void child_remove(struct node *child)
{
    struct node *dir = child->parent;
    struct node **p = &dir->buckets[path_hash(child->name) & (dir->n_buckets - 1)];
    while (*p != child)
        p = &(*p)->next_in_bucket;
    *p = child->next_in_bucket;
    dir->n_children--;
    export_node_free(child);
}

/* OUT (PATH_MAX) = N's path below the root, without a leading slash. */
int export_node_path(const struct node *n, char *out, struct chrun_err *err)
{
    size_t len = 0;
    if (n->parent == NULL) {
        out[0] = '\0';
        return 0;
    }
    if (n->parent->parent != NULL) {
        if (export_node_path(n->parent, out, err) < 0)
            return -1;
        len = strlen(out);
        out[len++] = '/';
    }
    if (len + strlen(n->name) + 1 > PATH_MAX)
        return chrun_err_set(err, CHRUN_E_INPUT, "path '%.64s...': name too long", out);
    strcpy(out + len, n->name);
    return 0;
}

bool export_occ_before(struct occurrence a, struct occurrence b)
{
    return a.layer < b.layer || (a.layer == b.layer && a.ordinal < b.ordinal);
}

/* ---- path resolution in the model, as chrun_fs_open_at resolves on disk ----
 *
 * Entry names are resolved through the symlinks earlier entries made, in the
 * root (bin -> usr/bin, then bin/sh is usr/bin/sh), not as plain strings:
 * that is what chrun-unpack and umoci do, so an extracted export equals
 * their rootfs, and the tar names real paths, never a path below a symlink
 * (tar -x would otherwise have to follow it on the extracting host). Which
 * path resolves how is the changeset interpreter's rule (changeset-apply.h);
 * these two are the tree's CHRUN_FS_IN_ROOT and CHRUN_FS_BENEATH_NO_SYMLINKS. */

/* Resolve PATH from the root following symlinks as the container would see
 * them (CHRUN_FS_IN_ROOT: absolute targets and ".." stay in the root,
 * at most CHRUN_FS_MAX_HOPS of them). Returns the directory, or NULL with
 * errno ENOENT, ENOTDIR, ELOOP or ENAMETOOLONG. */
static struct node *resolve_in_root(struct node *root, const char *path)
{
    char work[PATH_MAX];
    char *p = work;
    struct node *cur = root;
    unsigned hops = 0;

    if (snprintf(work, sizeof(work), "%s", path) >= (int) sizeof(work))
        return errno = ENAMETOOLONG, NULL;
    while (*p != '\0') {
        char *comp = p, *rest;
        struct node *child;
        while (*p != '\0' && *p != '/')
            p++;
        rest = p;
        while (*rest == '/')
            rest++;
        *p = '\0';
        p = rest;
        if (comp[0] == '\0' || streq(comp, "."))
            continue;
        if (streq(comp, "..")) {
            cur = cur->parent != NULL ? cur->parent : cur;
            continue;
        }
        child = child_lookup(cur, comp);
        if (child == NULL)
            return errno = ENOENT, NULL;
        if (child->type == AE_IFLNK) {
            char next[PATH_MAX];
            const char *target = child->ino->symlink;
            if (++hops > CHRUN_FS_MAX_HOPS)
                return errno = ELOOP, NULL;
            if (snprintf(next, sizeof(next), "%s/%s", target, rest) >= (int) sizeof(next))
                return errno = ENAMETOOLONG, NULL;
            if (target[0] == '/')
                cur = root;
            memcpy(work, next, strlen(next) + 1);
            p = work;
            continue;
        }
        if (child->type != AE_IFDIR)
            return errno = ENOTDIR, NULL;
        cur = child;
    }
    return cur;
}

/* Resolve normalized PATH without following any symlink (whiteout
 * directories, hardlink target directories). NULL with errno as above. */
static struct node *resolve_plain(struct node *root, const char *path)
{
    char work[PATH_MAX];
    char *save = NULL;
    struct node *cur = root;
    if (snprintf(work, sizeof(work), "%s", path) >= (int) sizeof(work))
        return errno = ENAMETOOLONG, NULL;
    for (char *c = strtok_r(work, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
        struct node *child = child_lookup(cur, c);
        if (child == NULL)
            return errno = ENOENT, NULL;
        if (child->type == AE_IFLNK)
            return errno = ELOOP, NULL;
        if (child->type != AE_IFDIR)
            return errno = ENOTDIR, NULL;
        cur = child;
    }
    return cur;
}

/* A directory made because an entry needs it as a parent: mode 0755,
 * owned by root, as the applier (run as root) makes it. */
static struct node *add_implicit_dir(struct exporter *x, struct node *parent, const char *name,
                                     struct chrun_err *err)
{
    struct node *n = export_node_new(name, AE_IFDIR, x->cur);
    if (n == NULL) {
        chrun_err_sys(err, ENOMEM, "export: tree");
        return NULL;
    }
    if (child_insert(parent, n, err) < 0) {
        export_node_free(n);
        return NULL;
    }
    return n;
}

/* Put the new node N at the free name PARENT/N->name. */
static int put_node(struct node *parent, struct node *n, struct chrun_err *err)
{
    if (child_insert(parent, n, err) < 0) {
        export_node_free(n);
        return -1;
    }
    return 0;
}

/* ---- pass 1: the tree back-end of the changeset rules (changeset-apply.h) ---- */

static int tree_open_dir(void *be, const char *dir, enum chrun_fs_resolve how,
                         struct changeset_dir *ret, int *ret_errno, struct chrun_err *err)
{
    struct exporter *x = be;
    struct node *n = how == CHRUN_FS_IN_ROOT ? resolve_in_root(x->root, dir)
                                             : resolve_plain(x->root, dir);
    (void) err;
    *ret = (struct changeset_dir){.fd = -1, .node = n};
    if (n != NULL)
        return 0;
    *ret_errno = errno;
    return 1;
}

static void tree_close_dir(void *be, struct changeset_dir *d)
{
    (void) be;
    d->node = NULL;
}

/* chrun_fs_mkdir_p_in_root on the tree: each prefix resolved in the root. */
static int tree_mkdir_p(void *be, const char *dir, struct chrun_err *err)
{
    struct exporter *x = be;
    char prefix[PATH_MAX], parent_path[PATH_MAX];
    size_t len = strlen(dir);
    if (len >= sizeof(prefix))
        return chrun_err_sys(err, ENAMETOOLONG, "create directory '%.64s...' in root", dir);
    for (size_t i = 1; i <= len; i++) {
        const char *base;
        struct node *parent;
        if (dir[i] != '/' && dir[i] != '\0')
            continue;
        memcpy(prefix, dir, i);
        prefix[i] = '\0';
        if (resolve_in_root(x->root, prefix) != NULL)
            continue;
        if (errno == ENOTDIR) /* a file, or a symlink to one */
            return chrun_err_sys(err, ENOTDIR, "create directory '%s' in root", prefix);
        if (errno != ENOENT)
            return chrun_err_sys(err, errno, "open '%s' in root", prefix);
        path_split(prefix, parent_path, &base);
        parent = resolve_in_root(x->root, parent_path);
        if (parent == NULL)
            return chrun_err_sys(err, errno, "open '%s' in root", parent_path);
        /* It exists, yet does not resolve: a symlink to nothing in the root. */
        if (child_lookup(parent, base) != NULL)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "'%s' exists but is not a directory inside the root "
                                 "(a symlink leading out?)",
                                 prefix);
        if (add_implicit_dir(x, parent, base, err) == NULL)
            return -1;
    }
    return 0;
}

static int tree_kind(void *be, const struct changeset_dir *d, const char *name,
                     struct chrun_err *err)
{
    struct node *c = child_lookup(d->node, name);
    (void) be;
    (void) err;
    return c == NULL ? 0 : c->type == AE_IFDIR ? 1 : 2;
}

static bool tree_same_file(void *be, const struct changeset_dir *d1, const char *n1,
                           const struct changeset_dir *d2, const char *n2)
{
    struct node *a = child_lookup(d1->node, n1), *b = child_lookup(d2->node, n2);
    (void) be;
    return a != NULL && b != NULL && a->ino != NULL && a->ino == b->ino;
}

static int tree_remove(void *be, const struct changeset_dir *d, const char *name,
                       const char *path, struct chrun_err *err)
{
    struct node *c = child_lookup(d->node, name);
    (void) be;
    (void) path;
    (void) err;
    if (c != NULL)
        child_remove(c);
    return 0;
}

static int tree_list(void *be, const struct changeset_dir *d, char ***ret_names, size_t *ret_n,
                     struct chrun_err *err)
{
    const struct node *dir = d->node;
    char **names = dir->n_children ? calloc(dir->n_children, sizeof(*names)) : NULL;
    size_t n = 0;
    (void) be;
    *ret_names = NULL;
    *ret_n = 0;
    if (dir->n_children > 0 && names == NULL)
        return chrun_err_sys(err, ENOMEM, "export: tree");
    for (size_t i = 0; i < dir->n_buckets; i++)
        for (struct node *c = dir->buckets[i]; c != NULL; c = c->next_in_bucket) {
            if ((names[n] = strdup(c->name)) == NULL) {
                chrun_fs_names_free(names, n);
                return chrun_err_sys(err, ENOMEM, "export: tree");
            }
            n++;
        }
    *ret_names = names;
    *ret_n = n;
    return 0;
}

/* True if E has an extended attribute called NAME. */
static bool has_xattr(struct archive_entry *e, const char *name)
{
    const char *n;
    const void *v;
    size_t size;
    archive_entry_xattr_reset(e);
    while (archive_entry_xattr_next(e, &n, &v, &size) == ARCHIVE_OK)
        if (n != NULL && streq(n, name))
            return true;
    return false;
}

/* A directory kept on disk keeps the extended attributes earlier entries
 * set (the disk back-end adds each entry's, removes none): OLD's that NEW
 * does not set again go into NEW. */
static void keep_old_xattrs(struct archive_entry *new, struct archive_entry *old)
{
    const char *name;
    const void *value;
    size_t size;
    archive_entry_xattr_reset(old);
    while (archive_entry_xattr_next(old, &name, &value, &size) == ARCHIVE_OK)
        if (name != NULL && !has_xattr(new, name))
            archive_entry_xattr_add_entry(new, name, value, size);
}

static int tree_dir(void *be, const struct changeset_dir *d, const char *name, const char *path,
                    struct archive_entry *e, bool exists, struct chrun_err *err)
{
    struct exporter *x = be;
    struct node *n = exists ? child_lookup(d->node, name) : NULL;
    struct archive_entry *header = archive_entry_clone(e);
    (void) path;
    if (header == NULL)
        return chrun_err_sys(err, ENOMEM, "export: header");
    if (n != NULL) {
        /* directories merge: the newest header, the first position */
        if (n->header != NULL) {
            keep_old_xattrs(header, n->header);
            archive_entry_free(n->header);
        }
        n->header = header;
        return 0;
    }
    n = export_node_new(name, AE_IFDIR, x->cur);
    if (n == NULL) {
        archive_entry_free(header);
        return chrun_err_sys(err, ENOMEM, "export: tree");
    }
    n->header = header;
    return put_node(d->node, n, err);
}

static int tree_inode(void *be, const struct changeset_dir *d, const char *name,
                      const char *path, struct archive *tar, struct archive_entry *e,
                      struct chrun_err *err)
{
    struct exporter *x = be;
    mode_t type = archive_entry_filetype(e);
    const char *target = archive_entry_symlink(e);
    struct inode *ino = calloc(1, sizeof(*ino));
    struct node *n = export_node_new(name, type, x->cur);
    (void) path;
    (void) tar;
    if (ino == NULL || n == NULL || (type == AE_IFLNK && (ino->symlink = strdup(target)) == NULL)) {
        free(ino != NULL ? ino->symlink : NULL);
        free(ino);
        export_node_free(n);
        return chrun_err_sys(err, ENOMEM, "export: tree");
    }
    ino->refs = 1;
    ino->source = x->cur;
    ino->creator = n;
    n->ino = ino;
    return put_node(d->node, n, err);
}

static int tree_hardlink(void *be, const struct changeset_dir *td, const char *tname,
                         const struct changeset_dir *d, const char *name, const char *path,
                         const char *link, struct chrun_err *err)
{
    struct exporter *x = be;
    struct node *t = child_lookup(td->node, tname);
    struct node *n;
    (void) path;
    (void) link;
    n = export_node_new(name, t->type, x->cur);
    if (n == NULL)
        return chrun_err_sys(err, ENOMEM, "export: tree");
    n->ino = t->ino;
    n->ino->refs++;
    return put_node(d->node, n, err);
}

static int tree_root(void *be, struct archive_entry *e, struct chrun_err *err)
{
    (void) be;
    (void) e;
    (void) err;
    return 0; /* the root is never emitted */
}

const struct changeset_ops export_tree_ops = {
    .open_dir = tree_open_dir,
    .close_dir = tree_close_dir,
    .mkdir_p = tree_mkdir_p,
    .kind = tree_kind,
    .same_file = tree_same_file,
    .remove = tree_remove,
    .list = tree_list,
    .dir = tree_dir,
    .inode = tree_inode,
    .hardlink = tree_hardlink,
    .root = tree_root,
};

int export_model_cb(struct archive *tar, struct archive_entry *e, const char *path,
                    const char *target, void *data, struct chrun_err *err)
{
    struct exporter *x = data;
    x->cur.ordinal++;
    return changeset_apply_entry(&x->cs, tar, e, path, target, err);
}
