#include "chrun/export.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrun/fs.h"
#include "chrun/image-config.h"
#include "chrun/image.h"
#include "chrun/io.h"
#include "chrun/layer.h"
#include "chrun/log.h"
#include "changeset-apply.h"
#include "archive-error.h"
#include "cleanup.h"
#include "path-set.h"
#include "util.h"


/* Where an entry sits in the image: layer index and its ordinal in the
 * layer's tar stream. Both passes count entries the same way. */
struct occurrence {
    size_t layer, ordinal;
};

/* What a non-directory entry made; hardlinks share it. The creating entry is
 * where its data (or symlink target, device numbers) is in the layers. */
struct inode {
    size_t refs;
    struct occurrence source;
    struct node *creator; /* the node the creating entry made; NULL once gone */
    struct node *leader;  /* chosen between the passes: who carries the data */
    char *symlink;        /* target, for resolving parents through it */
};

struct node {
    char *name;
    struct node *parent;
    struct node *next_in_bucket;
    mode_t type; /* AE_IFDIR, AE_IFREG, ... */
    struct occurrence occ;        /* the entry that emits this node */
    struct inode *ino;            /* non-directories */
    struct archive_entry *header; /* directories: newest header; NULL = implicit */
    struct node **buckets;        /* directories: children by name */
    size_t n_buckets, n_children;
    bool emitted;
};

enum action_kind { EMIT_DIR, EMIT_DATA, EMIT_LINK };

/* Pass 2 does ACTION when it reaches entry OCC. */
struct action {
    struct occurrence occ;
    enum action_kind kind;
    struct node *node;
};

struct exporter {
    struct node *root;
    struct changeset_applier cs; /* the changeset rules, over tree_ops */
    struct occurrence cur;
    struct action *actions;
    size_t n_actions, cap_actions, next_action;
    struct archive *out;
    int out_fd;
    bool out_closed;
    bool out_failed; /* drop what libarchive still writes: no end-of-archive */
    char *zeros; /* CHRUN_IO_BUFSZ zero bytes, for holes of sparse files */
};

/* ---- the tree ---- */

static struct node *node_new(const char *name, mode_t type, struct occurrence occ)
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
static void node_free(struct node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n_buckets; i++) {
        struct node *c = n->buckets[i];
        while (c != NULL) {
            struct node *next = c->next_in_bucket;
            node_free(c);
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
    node_free(child);
}

/* OUT (PATH_MAX) = N's path below the root, without a leading slash. */
static int node_path(const struct node *n, char *out, struct chrun_err *err)
{
    size_t len = 0;
    if (n->parent == NULL) {
        out[0] = '\0';
        return 0;
    }
    if (n->parent->parent != NULL) {
        if (node_path(n->parent, out, err) < 0)
            return -1;
        len = strlen(out);
        out[len++] = '/';
    }
    if (len + strlen(n->name) + 1 > PATH_MAX)
        return chrun_err_set(err, CHRUN_E_INPUT, "path '%.64s...': name too long", out);
    strcpy(out + len, n->name);
    return 0;
}

static bool occ_before(struct occurrence a, struct occurrence b)
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
    struct node *n = node_new(name, AE_IFDIR, x->cur);
    if (n == NULL) {
        chrun_err_sys(err, ENOMEM, "export: tree");
        return NULL;
    }
    if (child_insert(parent, n, err) < 0) {
        node_free(n);
        return NULL;
    }
    return n;
}

/* Put the new node N at the free name PARENT/N->name. */
static int put_node(struct node *parent, struct node *n, struct chrun_err *err)
{
    if (child_insert(parent, n, err) < 0) {
        node_free(n);
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
    n = node_new(name, AE_IFDIR, x->cur);
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
    struct node *n = node_new(name, type, x->cur);
    (void) path;
    (void) tar;
    if (ino == NULL || n == NULL || (type == AE_IFLNK && (ino->symlink = strdup(target)) == NULL)) {
        free(ino != NULL ? ino->symlink : NULL);
        free(ino);
        node_free(n);
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
    n = node_new(name, t->type, x->cur);
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

static const struct changeset_ops tree_ops = {
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

static int model_cb(struct archive *tar, struct archive_entry *e, const char *path,
                    const char *target, void *data, struct chrun_err *err)
{
    struct exporter *x = data;
    x->cur.ordinal++;
    return changeset_apply_entry(&x->cs, tar, e, path, target, err);
}

/* ---- between the passes: who carries the data, and when ---- */

static int add_action(struct exporter *x, struct occurrence occ, enum action_kind kind,
                      struct node *n, struct chrun_err *err)
{
    if (x->n_actions == x->cap_actions) {
        size_t cap = x->cap_actions ? x->cap_actions * 2 : 1024;
        struct action *a = realloc(x->actions, cap * sizeof(*a));
        if (a == NULL)
            return chrun_err_sys(err, ENOMEM, "export: plan");
        x->actions = a;
        x->cap_actions = cap;
    }
    x->actions[x->n_actions++] = (struct action){occ, kind, n};
    return 0;
}

/* The node that carries an inode's data: the one its creating entry made if
 * that survived, else the surviving member that came first. */
static void choose_leaders(struct node *dir)
{
    for (size_t i = 0; i < dir->n_buckets; i++)
        for (struct node *c = dir->buckets[i]; c != NULL; c = c->next_in_bucket) {
            if (c->type == AE_IFDIR) {
                choose_leaders(c);
                continue;
            }
            if (c->ino->creator != NULL)
                c->ino->leader = c->ino->creator;
            else if (c->ino->leader == NULL || occ_before(c->occ, c->ino->leader->occ))
                c->ino->leader = c;
        }
}

static int plan_actions(struct exporter *x, struct node *dir, struct chrun_err *err)
{
    for (size_t i = 0; i < dir->n_buckets; i++)
        for (struct node *c = dir->buckets[i]; c != NULL; c = c->next_in_bucket) {
            int rc;
            if (c->type == AE_IFDIR)
                rc = add_action(x, c->occ, EMIT_DIR, c, err) < 0 ? -1
                                                                 : plan_actions(x, c, err);
            else if (c->ino->leader == c)
                rc = add_action(x, c->ino->source, EMIT_DATA, c, err);
            else
                rc = add_action(x, c->occ, EMIT_LINK, c, err);
            if (rc < 0)
                return -1;
        }
    return 0;
}

static int cmp_actions(const void *pa, const void *pb)
{
    const struct action *a = pa, *b = pb;
    if (occ_before(a->occ, b->occ))
        return -1;
    if (occ_before(b->occ, a->occ))
        return 1;
    return (a->kind > b->kind) - (a->kind < b->kind);
}

/* ---- pass 2: write what the plan says where the layers carry it ---- */

static int write_failed(struct exporter *x, const char *path, struct chrun_err *err)
{
    int e = archive_errno(x->out);
    if (e > 0)
        return chrun_err_sys(err, e, "write tar entry '%s'", path);
    return chrun_err_set(err, CHRUN_E_SYS, "write tar entry '%s': %s", path,
                         chrun_archive_text(x->out));
}

static int write_header(struct exporter *x, struct archive_entry *e, const char *path,
                        struct chrun_err *err)
{
    int r = archive_write_header(x->out, e);
    if (r == ARCHIVE_WARN)
        chrun_log_warn("'%s': %s", path, chrun_archive_text(x->out));
    else if (r != ARCHIVE_OK)
        return write_failed(x, path, err);
    return 0;
}

static int emit_ancestors(struct exporter *x, struct node *n, struct chrun_err *err);

/* A directory: its newest header, or root's 0755 for an implicit one. */
static int emit_dir(struct exporter *x, struct node *n, struct chrun_err *err)
{
    char path[PATH_MAX];
    struct archive_entry *e;
    int rc;
    if (n->emitted || n->parent == NULL)
        return 0;
    if (emit_ancestors(x, n, err) < 0 || node_path(n, path, err) < 0)
        return -1;
    e = n->header != NULL ? archive_entry_clone(n->header) : archive_entry_new();
    if (e == NULL)
        return chrun_err_sys(err, ENOMEM, "export: header");
    if (n->header == NULL) {
        archive_entry_set_filetype(e, AE_IFDIR);
        archive_entry_set_perm(e, 0755);
    }
    archive_entry_set_pathname(e, path);
    archive_entry_set_hardlink(e, NULL);
    archive_entry_set_size(e, 0);
    rc = write_header(x, e, path, err);
    archive_entry_free(e);
    n->emitted = true;
    return rc;
}

/* Parents come before their children in the tar, even when a file's data
 * sits in a layer older than the directory that holds it by the end. */
static int emit_ancestors(struct exporter *x, struct node *n, struct chrun_err *err)
{
    return n->parent != NULL ? emit_dir(x, n->parent, err) : 0;
}

/* Copy the entry's data from TAR, zero-filling holes, SIZE bytes in all. */
static int copy_data(struct exporter *x, struct archive *tar, const char *path, int64_t size,
                     struct chrun_err *err)
{
    int64_t pos = 0;
    for (;;) {
        const void *buf;
        size_t len;
        la_int64_t offset;
        int r = archive_read_data_block(tar, &buf, &len, &offset);
        if (r == ARCHIVE_EOF)
            break;
        if (r < ARCHIVE_WARN)
            return chrun_archive_error(err, tar, "'%s'", path);
        if (offset > size || (int64_t) len > size - offset)
            return chrun_err_set(err, CHRUN_E_INPUT, "'%s': data past its declared size", path);
        while (pos < offset) {
            size_t n = (size_t) (offset - pos < CHRUN_IO_BUFSZ ? offset - pos : CHRUN_IO_BUFSZ);
            if (archive_write_data(x->out, x->zeros, n) != (la_ssize_t) n)
                return write_failed(x, path, err);
            pos += (int64_t) n;
        }
        if (len > 0 && archive_write_data(x->out, buf, len) != (la_ssize_t) len)
            return write_failed(x, path, err);
        pos += (int64_t) len;
    }
    while (pos < size) {
        size_t n = (size_t) (size - pos < CHRUN_IO_BUFSZ ? size - pos : CHRUN_IO_BUFSZ);
        if (archive_write_data(x->out, x->zeros, n) != (la_ssize_t) n)
            return write_failed(x, path, err);
        pos += (int64_t) n;
    }
    return 0;
}

/* The entry E carries node N's data (N may sit at another path by now). */
static int emit_data(struct exporter *x, struct archive *tar, struct archive_entry *e,
                     struct node *n, struct chrun_err *err)
{
    char path[PATH_MAX];
    struct archive_entry *out;
    int rc;
    if (emit_ancestors(x, n, err) < 0 || node_path(n, path, err) < 0)
        return -1;
    out = archive_entry_clone(e);
    if (out == NULL)
        return chrun_err_sys(err, ENOMEM, "export: header");
    archive_entry_set_pathname(out, path);
    archive_entry_set_hardlink(out, NULL);
    /* holes are written out as zeros: the tar holds plain files */
    archive_entry_sparse_clear(out);
    if (n->type != AE_IFREG)
        archive_entry_set_size(out, 0);
    rc = write_header(x, out, path, err);
    if (rc == 0 && n->type == AE_IFREG)
        rc = copy_data(x, tar, path, archive_entry_size(out), err);
    archive_entry_free(out);
    n->emitted = true;
    return rc;
}

/* Node N shares its inode with the leader, written earlier. */
static int emit_link(struct exporter *x, struct archive_entry *e, struct node *n,
                     struct chrun_err *err)
{
    char path[PATH_MAX], target[PATH_MAX];
    struct archive_entry *out;
    int rc;
    if (emit_ancestors(x, n, err) < 0 || node_path(n, path, err) < 0 ||
        node_path(n->ino->leader, target, err) < 0)
        return -1;
    out = archive_entry_clone(e);
    if (out == NULL)
        return chrun_err_sys(err, ENOMEM, "export: header");
    archive_entry_set_pathname(out, path);
    archive_entry_set_hardlink(out, target);
    archive_entry_set_size(out, 0);
    rc = write_header(x, out, path, err);
    archive_entry_free(out);
    n->emitted = true;
    return rc;
}

static int emit_cb(struct archive *tar, struct archive_entry *e, const char *path,
                   const char *target, void *data, struct chrun_err *err)
{
    struct exporter *x = data;
    (void) path;
    (void) target;
    x->cur.ordinal++;
    while (x->next_action < x->n_actions) {
        struct action *a = &x->actions[x->next_action];
        int rc;
        if (a->occ.layer != x->cur.layer || a->occ.ordinal != x->cur.ordinal)
            break;
        x->next_action++;
        rc = a->kind == EMIT_DIR    ? emit_dir(x, a->node, err)
             : a->kind == EMIT_DATA ? emit_data(x, tar, e, a->node, err)
                                    : emit_link(x, e, a->node, err);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* ---- driving both passes ---- */

static void exporter_release(struct exporter *x)
{
    node_free(x->root);
    changeset_applier_release(&x->cs);
    free(x->actions);
    free(x->zeros);
    if (x->out == NULL)
        return;
    /* A failed export ends without the end-of-archive blocks, so that no
     * reader takes a cut-off tar for a complete one; closing (rather than
     * archive_write_fail) lets libarchive free its buffers. */
    x->out_failed = !x->out_closed;
    archive_write_free(x->out);
}

static int read_layer(struct exporter *x, int fd, const struct chrun_descriptor *desc,
                      const struct chrun_digest *diff_id, chrun_layer_entry_fn *fn,
                      struct chrun_err *err)
{
    if (lseek(fd, 0, SEEK_SET) < 0)
        return chrun_err_sys(err, errno, "layer %s: rewind", desc->digest.str);
    x->cur.ordinal = 0;
    changeset_applier_begin_layer(&x->cs);
    return chrun_layer_read(fd, desc, diff_id, fn, x, err);
}

static la_ssize_t output_write(struct archive *a, void *data, const void *buf, size_t len)
{
    struct exporter *x = data;
    struct chrun_err err = CHRUN_ERR_INIT;
    if (x->out_failed)
        return (la_ssize_t) len;
    if (chrun_io_write_full(x->out_fd, buf, len, &err) < 0) {
        archive_set_error(a, err.errnum ? err.errnum : EIO, "%s", err.msg);
        return -1;
    }
    return (la_ssize_t) len;
}

static int open_output(struct exporter *x, int out_fd, struct chrun_err *err)
{
    x->out_fd = out_fd;
    x->zeros = calloc(1, CHRUN_IO_BUFSZ);
    x->out = archive_write_new();
    if (x->zeros == NULL || x->out == NULL)
        return chrun_err_sys(err, ENOMEM, "export: tar writer");
    if (archive_write_set_format_pax_restricted(x->out) != ARCHIVE_OK ||
        /* SCHILY.xattr only: GNU tar reads it and warns about LIBARCHIVE.xattr */
        archive_write_set_format_option(x->out, "pax", "xattrheader", "SCHILY") != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(x->out, 1) != ARCHIVE_OK ||
        archive_write_open(x->out, x, NULL, output_write, NULL) != ARCHIVE_OK)
        return chrun_err_set(err, CHRUN_E_SYS, "export: tar writer: %s",
                             chrun_archive_text(x->out));
    return 0;
}

static int close_output(struct exporter *x, struct chrun_err *err)
{
    if (archive_write_close(x->out) != ARCHIVE_OK)
        return write_failed(x, "(end of archive)", err);
    x->out_closed = true;
    return 0;
}

int chrun_export_layers(const int *blob_fds, const struct chrun_descriptor *descs,
                        const struct chrun_digest *diff_ids, size_t n, int out_fd,
                        struct chrun_err *err)
{
    struct exporter x = {0};
    struct occurrence none = {0, 0};
    int rc = 0;

    changeset_applier_init(&x.cs, &tree_ops, &x);
    x.root = node_new("", AE_IFDIR, none);
    if (x.root == NULL)
        return chrun_err_sys(err, ENOMEM, "export: tree");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        x.cur.layer = i;
        rc = read_layer(&x, blob_fds[i], &descs[i], &diff_ids[i], model_cb, err);
    }
    if (rc == 0) {
        choose_leaders(x.root);
        rc = plan_actions(&x, x.root, err);
    }
    if (rc == 0 && x.n_actions > 1)
        qsort(x.actions, x.n_actions, sizeof(*x.actions), cmp_actions);
    if (rc == 0)
        rc = open_output(&x, out_fd, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        x.cur.layer = i;
        rc = read_layer(&x, blob_fds[i], &descs[i], &diff_ids[i], emit_cb, err);
    }
    if (rc == 0 && x.next_action != x.n_actions)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "export: a layer changed between its two reads");
    if (rc == 0)
        rc = close_output(&x, err);
    exporter_release(&x);
    return rc;
}

int chrun_export_image(struct chrun_store *st, const char *image, const char *platform,
                       int out_fd, struct chrun_err *err)
{
    struct chrun_manifest m;
    struct chrun_image_config cfg = {0};
    cleanup_free int *fds = NULL;
    size_t opened = 0;
    int rc = 0;

    if (chrun_image_load_runnable(st, image, platform, &m, NULL, NULL, err) < 0)
        return chrun_err_prefix(err, "image '%s'", image);
    if (chrun_image_config_load(&cfg, st, &m.config.digest, err) < 0)
        rc = -1;
    else if (cfg.n_diff_ids != m.n_layers)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "%zu layers but the config lists %zu diff_ids",
                           m.n_layers, cfg.n_diff_ids);
    else if (m.n_layers > 0 && (fds = calloc(m.n_layers, sizeof(*fds))) == NULL)
        rc = chrun_err_sys(err, ENOMEM, "export");
    for (; rc == 0 && opened < m.n_layers; opened++) {
        fds[opened] = chrun_store_open_blob(st, &m.layers[opened].digest, err);
        if (fds[opened] < 0)
            rc = -1;
    }
    if (rc == 0)
        rc = chrun_export_layers(fds, m.layers, cfg.diff_ids, m.n_layers, out_fd, err);
    for (size_t i = 0; i < opened; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    chrun_image_config_release(&cfg);
    chrun_manifest_release(&m);
    return rc < 0 ? chrun_err_prefix(err, "image '%s'", image) : 0;
}

bool chrun_export_operand_is_bundle(const char *operand)
{
    struct stat st;
    return stat(operand, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- a bundle: BUNDLE/rootfs as it is on disk ---- */

static inline void cleanup_read_archive_fn(struct archive **a)
{
    if (*a != NULL)
        archive_read_free(*a);
}
#define cleanup_read_archive __attribute__((cleanup(cleanup_read_archive_fn)))

static inline void cleanup_entry_fn(struct archive_entry **e)
{
    if (*e != NULL)
        archive_entry_free(*e);
}
#define cleanup_entry __attribute__((cleanup(cleanup_entry_fn)))

static inline void cleanup_linkresolver_fn(struct archive_entry_linkresolver **r)
{
    if (*r != NULL)
        archive_entry_linkresolver_free(*r);
}
#define cleanup_linkresolver __attribute__((cleanup(cleanup_linkresolver_fn)))

/* Copy the file data of the entry the disk reader DISK is at. */
static int copy_disk_data(struct exporter *x, struct archive *disk, const char *name,
                          int64_t size, struct chrun_err *err)
{
    int rc = copy_data(x, disk, name, size, err);
    if (rc < 0 && err->code == CHRUN_E_INPUT)
        err->code = CHRUN_E_SYS; /* a file of the bundle, not image input */
    return rc;
}

/* Write entry E of the disk walk (named ROOTFS/...) as NAME relative to it. */
static int bundle_entry(struct exporter *x, struct archive *disk,
                        struct archive_entry_linkresolver *lr, struct archive_entry *e,
                        const char *name, struct chrun_err *err)
{
    struct archive_entry *spare = NULL;
    int64_t size;
    int rc;

    archive_entry_set_pathname(e, name);
    archive_entry_set_uname(e, NULL); /* the host's account names mean nothing here */
    archive_entry_set_gname(e, NULL);
    archive_entry_sparse_clear(e);
    archive_entry_linkify(lr, &e, &spare);
    if (spare != NULL)
        archive_entry_free(spare);
    if (e == NULL)
        return 0;
    size = archive_entry_filetype(e) == AE_IFREG && archive_entry_hardlink(e) == NULL
               ? archive_entry_size(e)
               : 0;
    archive_entry_set_size(e, size);
    rc = write_header(x, e, name, err);
    if (rc == 0 && size > 0)
        rc = copy_disk_data(x, disk, name, size, err);
    return rc;
}

/* BUNDLE_ENTRY under NAME, copied first: it outlives E's pathname, which
 * bundle_entry replaces. A name longer than PATH_MAX fails; it is never cut
 * short into another path. */
static int bundle_entry_named(struct exporter *x, struct archive *disk,
                             struct archive_entry_linkresolver *lr, struct archive_entry *e,
                             const char *name, struct chrun_err *err)
{
    cleanup_free char *copy = NULL;
    if (strlen(name) >= PATH_MAX)
        return chrun_err_sys(err, ENAMETOOLONG, "entry '%.64s...'", name);
    copy = strdup(name);
    if (copy == NULL)
        return chrun_err_sys(err, ENOMEM, "export");
    return bundle_entry(x, disk, lr, e, copy, err);
}

static int walk_rootfs(struct exporter *x, const char *rootfs, struct chrun_err *err)
{
    cleanup_read_archive struct archive *disk = archive_read_disk_new();
    cleanup_entry struct archive_entry *e = archive_entry_new();
    cleanup_linkresolver struct archive_entry_linkresolver *lr =
        archive_entry_linkresolver_new();
    size_t prefix = strlen(rootfs);
    int r;

    if (disk == NULL || e == NULL || lr == NULL)
        return chrun_err_sys(err, ENOMEM, "export: disk reader");
    archive_entry_linkresolver_set_strategy(lr, archive_format(x->out));
    /* Physical: a symlink in the rootfs is an entry, never followed; one
     * filesystem: what is mounted below rootfs is not the image. */
    if (archive_read_disk_set_symlink_physical(disk) != ARCHIVE_OK ||
        archive_read_disk_set_behavior(disk, ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS) !=
            ARCHIVE_OK ||
        archive_read_disk_open(disk, rootfs) != ARCHIVE_OK)
        return chrun_err_set(err, CHRUN_E_SYS, "read '%s': %s", rootfs,
                             chrun_archive_text(disk));
    for (;;) {
        const char *p;
        archive_entry_clear(e);
        r = archive_read_next_header2(disk, e);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r < ARCHIVE_WARN)
            return chrun_err_set(err, CHRUN_E_SYS, "read '%s': %s", rootfs,
                                 chrun_archive_text(disk));
        if (r == ARCHIVE_WARN)
            chrun_log_warn("%s", chrun_archive_text(disk));
        archive_read_disk_descend(disk);
        p = archive_entry_pathname(e);
        if (p == NULL || strncmp(p, rootfs, prefix) != 0 || (p[prefix] != '/' && p[prefix]))
            return chrun_err_set(err, CHRUN_E_SYS, "read '%s': unexpected name '%s'", rootfs,
                                 p ? p : "(none)");
        if (p[prefix] == '\0')
            continue; /* the root itself, as with an image */
        if (archive_entry_filetype(e) == AE_IFSOCK) {
            /* a socket is no content (docker export leaves them out too) */
            chrun_log_warn("skipping socket '%s'", p + prefix + 1);
            continue;
        }
        if (bundle_entry_named(x, disk, lr, e, p + prefix + 1, err) < 0)
            return -1;
    }
}

int chrun_export_bundle(const char *bundle, int out_fd, struct chrun_err *err)
{
    struct exporter x = {0};
    char rootfs[PATH_MAX];
    struct stat st;
    size_t len = strlen(bundle);
    int rc;

    while (len > 1 && bundle[len - 1] == '/')
        len--;
    if (snprintf(rootfs, sizeof(rootfs), "%.*s/rootfs", (int) len, bundle) >=
        (int) sizeof(rootfs))
        return chrun_err_sys(err, ENAMETOOLONG, "bundle '%s'", bundle);
    /* lstat: a rootfs that is a symlink would export whatever it names */
    if (lstat(rootfs, &st) < 0)
        return chrun_err_sys(err, errno, "bundle '%s': rootfs", bundle);
    if (!S_ISDIR(st.st_mode))
        return chrun_err_set(err, CHRUN_E_INPUT, "bundle '%s': rootfs is not a directory",
                             bundle);
    rc = open_output(&x, out_fd, err);
    if (rc == 0)
        rc = walk_rootfs(&x, rootfs, err);
    if (rc == 0)
        rc = close_output(&x, err);
    exporter_release(&x);
    return rc < 0 ? chrun_err_prefix(err, "bundle '%s'", bundle) : 0;
}
