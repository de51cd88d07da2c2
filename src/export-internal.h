/* chrun-export internals shared by export-tree.c (pass 1: the in-memory
 * tree, the tree back-end of the changeset rules), export.c (planning, pass
 * 2, the tar writer, the image entry points) and export-bundle.c (a bundle's
 * rootfs from disk); not installed. */
#ifndef CHRUN_EXPORT_INTERNAL_H
#define CHRUN_EXPORT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <archive.h>
#include <archive_entry.h>

#include "chrun/err.h"
#include "chrun/export.h"
#include "changeset-apply.h"

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

/* ---- export-tree.c ---- */

/* A new node NAME of TYPE made by the entry at OCC, in no table yet; NULL
 * with errno ENOMEM. Free with export_node_free. */
struct node *export_node_new(const char *name, mode_t type, struct occurrence occ);

/* Free N and everything below it (N is already out of its parent's table);
 * NULL is fine. */
void export_node_free(struct node *n);

/* OUT (PATH_MAX bytes) = N's path below the root, without a leading slash.
 * Returns 0, or -1 with ERR (ENAMETOOLONG). */
int export_node_path(const struct node *n, char *out, struct chrun_err *err);

/* True if entry A comes before entry B in the image (layer, then ordinal). */
bool export_occ_before(struct occurrence a, struct occurrence b);

/* The tree back-end of the changeset rules (changeset-apply.h); its
 * back-end pointer is the struct exporter. */
extern const struct changeset_ops export_tree_ops;

/* Pass 1's chrun_layer_read callback (DATA is the struct exporter): counts
 * the entry and replays it on the tree through the changeset rules. */
int export_model_cb(struct archive *tar, struct archive_entry *e, const char *path,
                    const char *target, void *data, struct chrun_err *err);

/* ---- export.c: the tar writer ---- */

/* Start the pax writer on OUT_FD (not closed). Returns 0 or -1. */
int export_open_output(struct exporter *x, int out_fd, struct chrun_err *err);

/* Write header E for PATH. Returns 0, or -1 with ERR (CHRUN_E_SYS). */
int export_write_header(struct exporter *x, struct archive_entry *e, const char *path,
                        struct chrun_err *err);

/* Copy the entry's data from TAR to the output, zero-filling holes, SIZE
 * bytes in all. Returns 0, or -1 with ERR (CHRUN_E_INPUT when TAR is short). */
int export_copy_data(struct exporter *x, struct archive *tar, const char *path, int64_t size,
                     struct chrun_err *err);

/* Write the end-of-archive blocks. Returns 0 or -1. */
int export_close_output(struct exporter *x, struct chrun_err *err);

/* Free everything X holds; an unclosed output ends without end-of-archive
 * blocks, so a failed export is never a valid-looking tar. */
void export_release(struct exporter *x);

#endif
