/* chrun-export of an image (see include/chrun/export.h): pass 1 builds the
 * tree (export-tree.c); between the passes each inode gets the node that
 * carries its data and every emission is planned at the entry that carries
 * it; pass 2 re-reads the layers and writes the tar. The pax writer here is
 * shared with the bundle export (export-bundle.c). */
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

#include "chrun/image-config.h"
#include "chrun/image.h"
#include "chrun/io.h"
#include "chrun/layer.h"
#include "chrun/log.h"
#include "changeset-apply.h"
#include "archive-error.h"
#include "cleanup.h"
#include "export-internal.h"
#include "util.h"

/* ---- between the passes: who carries the data, and when ---- */

static int add_action(struct exporter *x, struct occurrence occ, enum action_kind kind,
                      struct node *n, struct chrun_err *err)
{
    if (chrun_grow(&x->actions, &x->cap_actions, x->n_actions + 1, sizeof(*x->actions), err) < 0)
        return chrun_err_prefix(err, "export: plan");
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
            else if (c->ino->leader == NULL || export_occ_before(c->occ, c->ino->leader->occ))
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
    if (export_occ_before(a->occ, b->occ))
        return -1;
    if (export_occ_before(b->occ, a->occ))
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

int export_write_header(struct exporter *x, struct archive_entry *e, const char *path,
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
    if (emit_ancestors(x, n, err) < 0 || export_node_path(n, path, err) < 0)
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
    rc = export_write_header(x, e, path, err);
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
int export_copy_data(struct exporter *x, struct archive *tar, const char *path, int64_t size,
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
    if (emit_ancestors(x, n, err) < 0 || export_node_path(n, path, err) < 0)
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
    rc = export_write_header(x, out, path, err);
    if (rc == 0 && n->type == AE_IFREG)
        rc = export_copy_data(x, tar, path, archive_entry_size(out), err);
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
    if (emit_ancestors(x, n, err) < 0 || export_node_path(n, path, err) < 0 ||
        export_node_path(n->ino->leader, target, err) < 0)
        return -1;
    out = archive_entry_clone(e);
    if (out == NULL)
        return chrun_err_sys(err, ENOMEM, "export: header");
    archive_entry_set_pathname(out, path);
    archive_entry_set_hardlink(out, target);
    archive_entry_set_size(out, 0);
    rc = export_write_header(x, out, path, err);
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

void export_release(struct exporter *x)
{
    export_node_free(x->root);
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

int export_open_output(struct exporter *x, int out_fd, struct chrun_err *err)
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

int export_close_output(struct exporter *x, struct chrun_err *err)
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

    changeset_applier_init(&x.cs, &export_tree_ops, &x);
    x.root = export_node_new("", AE_IFDIR, none);
    if (x.root == NULL)
        return chrun_err_sys(err, ENOMEM, "export: tree");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        x.cur.layer = i;
        rc = read_layer(&x, blob_fds[i], &descs[i], &diff_ids[i], export_model_cb, err);
    }
    if (rc == 0) {
        choose_leaders(x.root);
        rc = plan_actions(&x, x.root, err);
    }
    if (rc == 0 && x.n_actions > 1)
        qsort(x.actions, x.n_actions, sizeof(*x.actions), cmp_actions);
    if (rc == 0)
        rc = export_open_output(&x, out_fd, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        x.cur.layer = i;
        rc = read_layer(&x, blob_fds[i], &descs[i], &diff_ids[i], emit_cb, err);
    }
    if (rc == 0 && x.next_action != x.n_actions)
        rc = chrun_err_set(err, CHRUN_E_INPUT, "export: a layer changed between its two reads");
    if (rc == 0)
        rc = export_close_output(&x, err);
    export_release(&x);
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
