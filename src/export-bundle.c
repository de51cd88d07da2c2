/* chrun-export of a bundle: BUNDLE/rootfs as it is on disk, through
 * libarchive's disk reader, written by export.c's tar writer. */
#include "export-internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "chrun/log.h"
#include "archive-error.h"
#include "cleanup.h"
#include "util.h"

/* Copy the file data of the entry the disk reader DISK is at. */
static int copy_disk_data(struct exporter *x, struct archive *disk, const char *name,
                          int64_t size, struct chrun_err *err)
{
    int rc = export_copy_data(x, disk, name, size, err);
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
    rc = export_write_header(x, e, name, err);
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
    cleanup_archive struct archive *disk = archive_read_disk_new();
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
    rc = export_open_output(&x, out_fd, err);
    if (rc == 0)
        rc = walk_rootfs(&x, rootfs, err);
    if (rc == 0)
        rc = export_close_output(&x, err);
    export_release(&x);
    return rc < 0 ? chrun_err_prefix(err, "bundle '%s'", bundle) : 0;
}
