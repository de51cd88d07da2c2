/* Small pax tars for the layer and export unit tests; include after
 * harness.h. Not part of libchrun. */
#ifndef CHRUN_TEST_TAR_SPECS_H
#define CHRUN_TEST_TAR_SPECS_H

#include <stdio.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>

/* Write a pax tar at PATH from SPECS (NULL-terminated): "d:name",
 * "f:name=content", "l:name>symlink-target", "h:name>hardlink-target". */
static inline void make_tar(const char *path, const char *const *specs)
{
    struct archive *w = archive_write_new();
    struct archive_entry *e = archive_entry_new();
    archive_write_set_format_pax_restricted(w);
    archive_write_open_filename(w, path);
    for (; *specs; specs++) {
        const char *spec = *specs + 2, *data = strchr(spec, '='), *target = strchr(spec, '>');
        char name[1024];
        size_t n = data ? (size_t) (data - spec) : target ? (size_t) (target - spec) : strlen(spec);
        memcpy(name, spec, n);
        name[n] = '\0';
        archive_entry_clear(e);
        archive_entry_set_pathname(e, name);
        archive_entry_set_mtime(e, 1600000000, 0);
        archive_entry_set_perm(e, 0644);
        switch ((*specs)[0]) {
        case 'd':
            archive_entry_set_filetype(e, AE_IFDIR);
            archive_entry_set_perm(e, 0755);
            break;
        case 'l':
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, target + 1);
            break;
        case 'h':
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_hardlink(e, target + 1);
            break;
        default:
            archive_entry_set_filetype(e, AE_IFREG);
            archive_entry_set_size(e, data ? (la_int64_t) strlen(data + 1) : 0);
        }
        archive_write_header(w, e);
        if ((*specs)[0] == 'f' && data)
            archive_write_data(w, data + 1, strlen(data + 1));
    }
    archive_entry_free(e);
    archive_write_close(w);
    archive_write_free(w);
}

/* umoci's layers after a directory became a file (issue 7): r/d turns into a
 * file and r/s into a symlink, each with whiteouts below it, plus whiteouts
 * in a directory that does not exist. None may delete or follow anything. */
static const char *const umoci_l1[] = {"d:r", "d:r/d", "f:r/d/child=c", "d:t", "f:t/keep=k",
                                       NULL};
static const char *const umoci_l2[] = {
    "f:r/d=file", "f:r/d/.wh.child", "f:r/d/.wh..wh..opq",    "l:r/s>../t",
    "f:r/s/.wh.keep", "f:r/s/.wh..wh..opq", "f:r/gone/.wh.x", "f:r/gone/.wh..wh..opq",
    NULL};

/* SPECS (LINKS + 3 entries, strings in BUF) = directory d, a chain of LINKS
 * symlinks l0 -> l1 -> ... -> d, and a file l0/x: a parent reached through
 * LINKS hops. */
static inline void chain_specs(int links, char (*buf)[32], const char **specs)
{
    int n = 0;
    snprintf(buf[n], 32, "d:d");
    specs[n] = buf[n];
    for (n = 1; n <= links; n++) {
        if (n < links)
            snprintf(buf[n], 32, "l:l%d>l%d", n - 1, n);
        else
            snprintf(buf[n], 32, "l:l%d>d", n - 1);
        specs[n] = buf[n];
    }
    snprintf(buf[n], 32, "f:l0/x=x");
    specs[n] = buf[n];
    specs[n + 1] = NULL;
}

#endif
