/* chrun_archive_load: docker save archives and OCI image layouts into the store.
 *
 * Three phases. Stream: every file member of the tar is copied into a staging
 * directory tmp/load-<hex> while it is hashed (a member table remembers name,
 * digest, size and its first bytes); the small JSON documents (index.json,
 * manifest.json, oci-layout, repositories) stay in memory under caps. Resolve:
 * walk index.json or manifest.json, find every referenced blob in the table,
 * check digests, sizes and diff_ids, and build the OCI manifests of docker
 * images (the formats: load-oci.c, load-docker.c). Commit: only now are the
 * needed staged files renamed into blobs/ and the names recorded. The
 * staging directory is locked with flock while in use, so a later load can
 * tell an abandoned one (kill -9) from a live one. This file holds the
 * staging, the member table, the tar and directory readers, the lookups both
 * formats share, the commit and the entry points. */
#include "chrun/archive.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "chrun/attach.h"
#include "chrun/cosign.h"
#include "chrun/fs.h"
#include "chrun/inflate.h"
#include "chrun/io.h"
#include "chrun/layer.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "chrun/walk.h"
#include "chrun/ref.h"
#include "cleanup.h"
#include "load-internal.h"
#include "util.h"

#define STAGE_PREFIX "load-"
#define STAGE_OLD_PREFIX "load."

void chrun_archive_result_release(struct chrun_archive_result *r)
{
    free(r->digests);
    r->digests = NULL;
    r->n_digests = 0;
}

/* Paths inside the archive */

/* Resolve REL against directory BASE (both archive-relative) lexically into
 * OUT. SPEC "Bad input": absolute paths and ".." above the archive root lead
 * outside it and fail. */
static int path_resolve(const char *base, const char *rel, char *out, size_t size)
{
    char tmp[PATH_MAX];
    size_t len = 0;
    char *save = NULL, *comp;
    int n;

    if (rel[0] == '/')
        return -1;
    n = snprintf(tmp, sizeof(tmp), "%s%s%s", base, *base ? "/" : "", rel);
    if (n < 0 || (size_t) n >= sizeof(tmp) || size == 0)
        return -1;
    out[0] = '\0';
    for (comp = strtok_r(tmp, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
        if (streq(comp, "."))
            continue;
        if (streq(comp, "..")) {
            char *slash;
            if (len == 0)
                return -1;
            slash = strrchr(out, '/');
            len = slash ? (size_t) (slash - out) : 0;
            out[len] = '\0';
            continue;
        }
        n = snprintf(out + len, size - len, "%s%s", len ? "/" : "", comp);
        if (n < 0 || (size_t) n >= size - len)
            return -1;
        len += (size_t) n;
    }
    return len ? 0 : -1;
}

/* The directory part of archive path P, written to OUT. */
static void path_dirname(const char *p, char *out, size_t size)
{
    const char *slash = strrchr(p, '/');
    size_t len = slash ? (size_t) (slash - p) : 0;
    if (len >= size)
        len = size - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

/* Staging */

static int stage_member_name(size_t idx, char *out, size_t size)
{
    int n = snprintf(out, size, "m%zu", idx);
    return (n < 0 || (size_t) n >= size) ? -1 : 0;
}

/* tmp/ opened for flock (the store's tmp fd is O_PATH) and locked with OP
 * (LOCK_SH or LOCK_EX). Returns the fd holding the lock (close it to unlock),
 * or -1. */
static int lock_tmp(struct chrun_store *st, int op, struct chrun_err *err)
{
    cleanup_close int fd = openat(chrun_store_tmp_fd(st), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return chrun_err_sys(err, errno, "open store tmp/");
    if (TEMP_FAILURE_RETRY_INT(flock(fd, op)) < 0)
        return chrun_err_sys(err, errno, "lock store tmp/");
    return take_fd(fd);
}

/* A staging directory is "tmp/load-<random>", flock-held by its loader; the
 * lock tells the sweeper (chrun_archive_clean_stale) it is alive. A directory
 * cannot be made already locked, so the moment between its mkdir and its
 * flock is covered by a lock taken before the directory exists: the loader
 * holds tmp/ itself shared across both steps, and the sweeper holds tmp/
 * exclusively, so it never sees a live loader's directory unlocked. */
static int stage_create(struct loader *l, struct chrun_err *err)
{
    int tmpfd = chrun_store_tmp_fd(l->st);
    cleanup_close int tmp_lock = lock_tmp(l->st, LOCK_SH, err);

    if (tmp_lock < 0)
        return -1;
    if (chrun_fs_mkdtemp_at(tmpfd, STAGE_PREFIX, l->stage_name, sizeof(l->stage_name), err) < 0) {
        l->stage_name[0] = '\0';
        return -1;
    }
    l->stage_fd = openat(tmpfd, l->stage_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (l->stage_fd < 0 || flock(l->stage_fd, LOCK_EX) < 0) {
        int e = errno;
        unlinkat(tmpfd, l->stage_name, AT_REMOVEDIR);
        chrun_err_sys(err, e, "staging directory 'tmp/%s'", l->stage_name);
        l->stage_name[0] = '\0';
        return -1;
    }
    return 0;
}

/* A name chrun-load's staging directories have: "load-<random>", or
 * "load.<random>", the name an older chrun made them under before it locked
 * and renamed them (mkdtemp names hold no dot). */
static bool is_stage_name(const char *name)
{
    return (str_has_prefix(name, STAGE_PREFIX) || str_has_prefix(name, STAGE_OLD_PREFIX)) &&
           strchr(name + strlen(STAGE_PREFIX), '.') == NULL;
}

static void stage_remove(struct loader *l)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    if (l->stage_name[0] == '\0')
        return;
    if (chrun_fs_rm_rf_at(chrun_store_tmp_fd(l->st), l->stage_name, &ignored) < 0)
        chrun_log_warn("remove staging directory 'tmp/%s': %s", l->stage_name, ignored.msg);
    l->stage_name[0] = '\0';
}

int chrun_archive_clean_stale(struct chrun_store *st, struct chrun_err *err)
{
    cleanup_close int tmp_lock = -1;
    cleanup_closedir DIR *dir = NULL;
    struct dirent *de;
    int fd;

    /* exclusive: no loader is between making its directory and locking it */
    tmp_lock = lock_tmp(st, LOCK_EX, err);
    if (tmp_lock < 0)
        return -1;
    fd = openat(chrun_store_tmp_fd(st), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return chrun_err_sys(err, errno, "open store tmp/");
    dir = fdopendir(fd);
    if (dir == NULL) {
        close(fd);
        return chrun_err_sys(err, errno, "open store tmp/");
    }
    while ((de = readdir(dir)) != NULL) {
        cleanup_close int dfd = -1;
        if (!is_stage_name(de->d_name))
            continue;
        dfd = openat(chrun_store_tmp_fd(st), de->d_name,
                     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0 || flock(dfd, LOCK_EX | LOCK_NB) < 0)
            continue; /* gone, or a live load holds it */
        if (chrun_fs_rm_rf_at(chrun_store_tmp_fd(st), de->d_name, err) < 0)
            return -1;
        chrun_log_debug("removed abandoned staging directory tmp/%s", de->d_name);
    }
    return 0;
}

/* The member table */

static struct member *member_add(struct loader *l, const char *name, struct chrun_err *err)
{
    struct member *m;
    if (l->n_members == CHRUN_ARCHIVE_MAX_MEMBERS) {
        chrun_err_set(err, CHRUN_E_INPUT, "more than %d members", CHRUN_ARCHIVE_MAX_MEMBERS);
        return NULL;
    }
    if (chrun_grow(&l->members, &l->cap_members, l->n_members + 1, sizeof(*l->members), err) < 0) {
        chrun_err_prefix(err, "member table");
        return NULL;
    }
    m = &l->members[l->n_members];
    memset(m, 0, sizeof(*m));
    m->name = strdup(name);
    if (m->name == NULL) {
        chrun_err_sys(err, ENOMEM, "member table");
        return NULL;
    }
    l->n_members++;
    return m;
}

static struct member *member_find(struct loader *l, const char *name)
{
    /* The last member of a name wins, as when tar extracts. */
    for (size_t i = l->n_members; i-- > 0;)
        if (l->members[i].name[0] && streq(l->members[i].name, name))
            return &l->members[i];
    return NULL;
}

static size_t member_index(struct loader *l, struct member *m)
{
    return (size_t) (m - l->members);
}

/* Copy member data into staged file "m<index>", hashing it. READ pulls the
 * next chunk into l->buf and returns its length, 0 at the end, -1 on error. */
typedef ssize_t (*chunk_reader)(void *src, unsigned char *buf, size_t size, struct chrun_err *err);

static int stage_copy(struct loader *l, struct member *m, chunk_reader read_chunk, void *src,
                      struct chrun_err *err)
{
    cleanup_hasher struct chrun_digest_hasher h = {0};
    char fname[32];
    cleanup_close int fd = -1;
    ssize_t n;

    if (stage_member_name(member_index(l, m), fname, sizeof(fname)) < 0)
        return chrun_err_sys(err, ENAMETOOLONG, "staging");
    fd = openat(l->stage_fd, fname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return chrun_err_sys(err, errno, "create staging file");
    if (chrun_digest_hasher_init(&h, err) < 0)
        return -1;
    while ((n = read_chunk(src, l->buf, CHRUN_IO_BUFSZ, err)) > 0) {
        if (m->magic_len < MAGIC_LEN) {
            size_t k = MAGIC_LEN - m->magic_len;
            if (k > (size_t) n)
                k = (size_t) n;
            memcpy(m->magic + m->magic_len, l->buf, k);
            m->magic_len += k;
        }
        if (chrun_io_write_full(fd, l->buf, (size_t) n, err) < 0 ||
            chrun_digest_hasher_update(&h, l->buf, (size_t) n, err) < 0)
            return -1;
    }
    if (n < 0)
        return -1;
    m->size = h.size_bytes;
    if (chrun_digest_hasher_final(&h, &m->digest, err) < 0)
        return -1;
    m->staged = true;
    return 0;
}

/* Member names that carry their own digest: OCI blobs/sha256/<hex> and the
 * <hex>.json config files of docker save. Their content must match it. */
static bool name_digest(const char *name, struct chrun_digest *ret)
{
    size_t len = strlen(name);
    int n = -1;
    if (str_has_prefix(name, "blobs/sha256/"))
        n = snprintf(ret->str, sizeof(ret->str), "sha256:%.70s", name + 13);
    else if (strchr(name, '/') == NULL && len == CHRUN_DIGEST_HEX_LEN + 5 &&
             streq(name + CHRUN_DIGEST_HEX_LEN, ".json"))
        n = snprintf(ret->str, sizeof(ret->str), "sha256:%.64s", name);
    return n > 0 && (size_t) n < sizeof(ret->str) && chrun_digest_is_valid(ret->str);
}

static int check_named_digest(struct member *m, struct chrun_err *err)
{
    struct chrun_digest want;
    if (name_digest(m->name, &want) && !streq(want.str, m->digest.str))
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "member '%s': digest mismatch: content is %s", m->name,
                             m->digest.str);
    return 0;
}

/* The small JSON documents kept in memory. */
static struct doc *doc_for(struct loader *l, const char *name, size_t *ret_cap)
{
    if (streq(name, "index.json") || streq(name, "manifest.json")) {
        *ret_cap = CHRUN_MANIFEST_MAX;
        return streq(name, "index.json") ? &l->index : &l->manifest;
    }
    *ret_cap = CHRUN_ARCHIVE_SMALL_MAX;
    if (streq(name, "oci-layout"))
        return &l->layout;
    if (streq(name, "repositories"))
        return &l->repositories;
    return NULL;
}

/* Tar input */

struct tar_source {
    struct loader *l;
    struct archive *tar;
};

static int archive_fail(struct archive *a, const char *what, struct chrun_err *err)
{
    const char *msg = archive_error_string(a);
    int e = archive_errno(a);
    return chrun_err_set(err, CHRUN_E_INPUT, "%s: %s", what,
                         msg ? msg : (e > 0 ? strerror(e) : "unknown libarchive error"));
}

/* Let A decompress COMP, or for NONE whatever an outer archive may be: gzip,
 * zstd, and xz and bzip2 where libarchive has them built in. Only
 * decompressors inside this process: for a filter it was built without,
 * libarchive runs an external program (lzop, lrzip, grzip, gzip -d, ...),
 * which bytes from an archive must never reach. */
static int support_filters(struct archive *a, enum chrun_compression comp,
                           struct chrun_err *err)
{
    bool any = (comp == CHRUN_COMPRESSION_NONE);
    /* ARCHIVE_WARN: registered, but as an external program. */
    if ((any || comp == CHRUN_COMPRESSION_GZIP) &&
        archive_read_support_filter_gzip(a) != ARCHIVE_OK)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "libarchive has no built-in gzip");
    if ((any || comp == CHRUN_COMPRESSION_ZSTD) &&
        archive_read_support_filter_zstd(a) != ARCHIVE_OK)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "libarchive has no built-in zstd");
    if (any && archive_liblzma_version() != NULL && archive_read_support_filter_xz(a) != ARCHIVE_OK)
        return archive_fail(a, "xz decompressor", err);
    if (any && archive_bzlib_version() != NULL &&
        archive_read_support_filter_bzip2(a) != ARCHIVE_OK)
        return archive_fail(a, "bzip2 decompressor", err);
    return 0;
}

/* A failure of the tar reader TAR, explained by the outer stream under it
 * when that is what failed. */
static int tar_fail(struct loader *l, struct archive *tar, const char *what,
                    struct chrun_err *err)
{
    if (l->zerr.code == 0)
        return archive_fail(tar, what, err);
    *err = l->zerr;
    return chrun_err_prefix(err, "%s", what);
}

static ssize_t chunk_source_read(void *data, const void **ret_buf, struct chrun_err *err)
{
    struct chunk_source *c = data;
    ssize_t n;
    *ret_buf = c->buf;
    if (c->pending > 0) {
        n = (ssize_t) c->pending;
        c->pending = 0;
        return n;
    }
    return chrun_io_read_full(c->fd, c->buf, CHRUN_IO_BUFSZ, err);
}

/* The same chunks for libarchive's decompressors (xz, bzip2, plain). */
static la_ssize_t chunk_archive_read(struct archive *a, void *client, const void **buf)
{
    struct loader *l = client;
    ssize_t n = chunk_source_read(&l->zsrc, buf, &l->zerr);
    if (n < 0)
        archive_set_error(a, l->zerr.errnum > 0 ? l->zerr.errnum : EIO, "%s", l->zerr.msg);
    return n;
}

static ssize_t tar_chunk(void *src, unsigned char *buf, size_t size, struct chrun_err *err)
{
    struct tar_source *s = src;
    la_ssize_t n = archive_read_data(s->tar, buf, size);
    if (n < 0)
        return tar_fail(s->l, s->tar, "read archive", err);
    return n;
}

/* The tar reader pulls decompressed bytes from the raw reader, so that after
 * the tar end-of-archive the compressed stream can be read to its own end
 * (SPEC "Bad input": a corrupt or truncated gzip/zstd trailer is an error). */
static la_ssize_t raw_read_cb(struct archive *a, void *client, const void **buf)
{
    struct loader *l = client;
    size_t size;
    la_int64_t offset;
    int r;
    if (l->z != NULL) {
        ssize_t n = chrun_inflate_read(l->z, l->zout, CHRUN_IO_BUFSZ, &l->zerr);
        if (n < 0)
            archive_set_error(a, EIO, "%s", l->zerr.msg);
        *buf = l->zout;
        return n;
    }
    r = archive_read_data_block(l->raw, buf, &size, &offset);
    if (r == ARCHIVE_EOF)
        return 0;
    if (r < ARCHIVE_WARN) {
        const char *msg = archive_error_string(l->raw);
        archive_set_error(a, archive_errno(l->raw) > 0 ? archive_errno(l->raw) : EIO, "%s",
                          msg ? msg : "truncated or corrupt compressed stream");
        return -1;
    }
    return (la_ssize_t) size;
}

static int read_doc(struct tar_source *s, struct doc *d, size_t cap, const char *name,
                    int64_t declared, struct chrun_err *err)
{
    size_t have = 0, room = 0, alloc = 0; /* room: bytes read into d->buf, at most cap + 1 */
    la_ssize_t n;

    if (d->present)
        return chrun_err_set(err, CHRUN_E_INPUT, "member '%s' appears twice", name);
    if (declared > (int64_t) cap)
        return chrun_err_sys(err, EFBIG, "member '%s' is larger than %zu bytes", name, cap);
    for (;;) {
        if (have == room) {
            if (room > cap)
                return chrun_err_sys(err, EFBIG, "member '%s' is larger than %zu bytes", name,
                                     cap);
            room = have ? have * 2 : 16384;
            if (room > cap + 1 || room < have)
                room = cap + 1;
            if (chrun_grow(&d->buf, &alloc, room + 1, 1, err) < 0) /* + 1: the final '\0' */
                return chrun_err_prefix(err, "read member '%s'", name);
        }
        n = archive_read_data(s->tar, d->buf + have, room - have);
        if (n < 0)
            return tar_fail(s->l, s->tar, "read archive", err);
        if (n == 0)
            break;
        have += (size_t) n;
        if (have > cap)
            return chrun_err_sys(err, EFBIG, "member '%s' is larger than %zu bytes", name, cap);
    }
    d->buf[have] = '\0';
    d->len = have;
    d->present = true;
    return 0;
}

static int tar_member(struct tar_source *s, struct archive_entry *e, struct chrun_err *err)
{
    struct loader *l = s->l;
    const char *raw_name = archive_entry_pathname(e);
    const char *hardlink = archive_entry_hardlink(e);
    mode_t type = archive_entry_filetype(e);
    char name[PATH_MAX];
    struct member *m;
    struct doc *d;
    size_t cap;

    /* Entries whose names leave the archive are never referenced: skip them. */
    if (raw_name == NULL || path_resolve("", raw_name, name, sizeof(name)) < 0)
        return 0;
    if (hardlink != NULL) {
        char target[PATH_MAX];
        if (path_resolve("", hardlink, target, sizeof(target)) < 0)
            return 0;
        if ((m = member_add(l, name, err)) == NULL || (m->link = strdup(target)) == NULL)
            return m ? chrun_err_sys(err, ENOMEM, "member table") : -1;
        m->hardlink = true;
        return 0;
    }
    if (type == AE_IFLNK) {
        const char *target = archive_entry_symlink(e);
        if (target == NULL)
            return 0;
        if ((m = member_add(l, name, err)) == NULL || (m->link = strdup(target)) == NULL)
            return m ? chrun_err_sys(err, ENOMEM, "member table") : -1;
        return 0;
    }
    if (type != AE_IFREG)
        return 0;
    d = doc_for(l, name, &cap);
    if (d != NULL)
        return read_doc(s, d, cap, name, archive_entry_size_is_set(e) ? archive_entry_size(e) : 0,
                        err);
    m = member_add(l, name, err);
    if (m == NULL)
        return -1;
    if (stage_copy(l, m, tar_chunk, s, err) < 0)
        return chrun_err_prefix(err, "member '%s'", name);
    return check_named_digest(m, err);
}

/* gzip and zstd go through chrun's own inflater (every member's trailer
 * checked, nothing after the last), anything else through libarchive. */
static int open_raw(struct loader *l, int fd, struct chrun_err *err)
{
    struct archive_entry *e;
    enum chrun_compression comp;
    ssize_t n;
    int r;

    l->zsrc.fd = fd;
    l->zsrc.buf = malloc(CHRUN_IO_BUFSZ);
    l->zout = malloc(CHRUN_IO_BUFSZ);
    if (l->zsrc.buf == NULL || l->zout == NULL)
        return chrun_err_sys(err, ENOMEM, "archive reader");
    n = chrun_io_read_full(fd, l->zsrc.buf, CHRUN_IO_BUFSZ, err);
    if (n < 0)
        return chrun_err_prefix(err, "read archive");
    if (n == 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "empty input");
    l->zsrc.pending = (size_t) n;
    comp = chrun_inflate_sniff(l->zsrc.buf, (size_t) n);
    if (comp != CHRUN_COMPRESSION_NONE) {
        l->z = chrun_inflate_new(comp, chunk_source_read, &l->zsrc, err);
        return l->z == NULL ? -1 : 0;
    }
    l->raw = archive_read_new();
    if (l->raw == NULL)
        return chrun_err_sys(err, ENOMEM, "archive reader");
    if (support_filters(l->raw, CHRUN_COMPRESSION_NONE, err) < 0)
        return -1;
    if (archive_read_support_format_raw(l->raw) != ARCHIVE_OK)
        return archive_fail(l->raw, "archive reader", err);
    if (archive_read_open(l->raw, l, NULL, chunk_archive_read, NULL) != ARCHIVE_OK)
        return tar_fail(l, l->raw, "open archive", err);
    r = archive_read_next_header(l->raw, &e);
    if (r == ARCHIVE_EOF)
        return chrun_err_set(err, CHRUN_E_INPUT, "empty input");
    if (r < ARCHIVE_WARN)
        return tar_fail(l, l->raw, "read archive", err);
    return 0;
}

/* Read the decompressed stream to its end after the tar end-of-archive. */
static int drain_raw(struct loader *l, struct chrun_err *err)
{
    const void *buf;
    size_t size;
    la_int64_t offset;
    ssize_t n;
    int r;
    if (l->z != NULL) {
        while ((n = chrun_inflate_read(l->z, l->zout, CHRUN_IO_BUFSZ, &l->zerr)) > 0)
            ;
        return n < 0 ? tar_fail(l, l->raw, "read archive", err) : 0;
    }
    while ((r = archive_read_data_block(l->raw, &buf, &size, &offset)) == ARCHIVE_OK ||
           r == ARCHIVE_WARN)
        ;
    if (r != ARCHIVE_EOF)
        return tar_fail(l, l->raw, "read archive", err);
    return 0;
}

/* What failed when the tar reader fails, before its first entry, on an
 * input nothing decompressed: a compression chrun does not read (lzop,
 * lrzip, lz4, ...) or no archive at all. */
static const char *tar_what(struct loader *l, bool started)
{
    if (!started && l->z == NULL && archive_filter_code(l->raw, 0) == ARCHIVE_FILTER_NONE)
        return "read archive (not a tar, tar.gz or tar.zst)";
    return "read archive";
}

static int stream_tar(struct loader *l, int fd, struct chrun_err *err)
{
    cleanup_archive struct archive *tar = NULL;
    struct tar_source s = {l, NULL};
    struct archive_entry *e;
    bool started = false;
    int r;

    if (open_raw(l, fd, err) < 0)
        return -1;
    tar = archive_read_new();
    if (tar == NULL)
        return chrun_err_sys(err, ENOMEM, "archive reader");
    s.tar = tar;
    /* The tar reader takes ustar, pax and GNU tar alike. */
    if (archive_read_support_format_tar(tar) != ARCHIVE_OK)
        return archive_fail(tar, "archive reader", err);
    if (archive_read_open(tar, l, NULL, raw_read_cb, NULL) != ARCHIVE_OK)
        return tar_fail(l, tar, tar_what(l, started), err);
    while ((r = archive_read_next_header(tar, &e)) != ARCHIVE_EOF) {
        if (r == ARCHIVE_WARN && !chrun_layer_tar_warning_benign(tar)) {
            /* a malformed PAX record: the member would go by its ustar name */
            const char *name = archive_entry_pathname(e), *w = archive_error_string(tar);
            return chrun_err_set(err, CHRUN_E_INPUT, "member '%s': damaged tar header: %s",
                                 name ? name : "", w ? w : "libarchive warning");
        } else if (r == ARCHIVE_WARN) {
            const char *w = archive_error_string(tar);
            chrun_log_debug("archive: %s", w ? w : "warning");
        } else if (r != ARCHIVE_OK) {
            return tar_fail(l, tar, tar_what(l, started), err);
        }
        started = true;
        if (tar_member(&s, e, err) < 0)
            return -1;
    }
    return drain_raw(l, err);
}

/* Directory input */

struct fd_source {
    int fd;
};

static ssize_t fd_chunk(void *src, unsigned char *buf, size_t size, struct chrun_err *err)
{
    struct fd_source *s = src;
    return chrun_io_read_full(s->fd, buf, size, err);
}

/* Open NAME (archive-relative, already normalized) below the input directory.
 * SPEC "Bad input": symlinks that lead outside the archive fail (EXDEV). */
static int dir_open(struct loader *l, const char *name, struct chrun_err *err)
{
    struct chrun_err open_err = CHRUN_ERR_INIT;
    cleanup_close int pfd = chrun_fs_open_at(l->dirfd, name, O_PATH, 0, CHRUN_FS_BENEATH, &open_err);
    int fd;
    if (pfd < 0 && open_err.errnum == EXDEV)
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' leads outside the archive", name);
    if (pfd < 0 && open_err.errnum == ENOENT)
        return chrun_err_set(err, CHRUN_E_NOTFOUND, "'%s' not found in the archive", name);
    if (pfd < 0) {
        *err = open_err;
        return -1;
    }
    /* A FIFO or device node is never opened for real: that could block
     * forever or act on a device. */
    fd = chrun_fs_reopen_regular(pfd, O_RDONLY, err);
    if (fd < 0)
        return chrun_err_prefix(err, "'%s'", name);
    return fd;
}

static int dir_stage(struct loader *l, const char *name, struct member **ret,
                     struct chrun_err *err)
{
    cleanup_close int fd = dir_open(l, name, err);
    struct fd_source src;
    struct member *m;

    if (fd < 0)
        return -1;
    m = member_add(l, name, err);
    if (m == NULL)
        return -1;
    src.fd = fd;
    if (stage_copy(l, m, fd_chunk, &src, err) < 0)
        return chrun_err_prefix(err, "'%s'", name);
    if (check_named_digest(m, err) < 0)
        return -1;
    *ret = m;
    return 0;
}

static int dir_read_docs(struct loader *l, struct chrun_err *err)
{
    static const char *const names[] = {"index.json", "manifest.json", "oci-layout",
                                        "repositories"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        size_t cap;
        struct doc *d = doc_for(l, names[i], &cap);
        cleanup_close int fd = -1;
        if (!chrun_fs_exists_at(l->dirfd, names[i]))
            continue;
        fd = dir_open(l, names[i], err);
        if (fd < 0)
            return -1;
        if (chrun_io_read_bounded(fd, cap, &d->buf, &d->len, err) < 0)
            return chrun_err_prefix(err, "'%s'", names[i]);
        d->present = true;
    }
    return 0;
}

/* Resolving references */

/* Find the member PATH names (archive-relative, as written in manifest.json
 * or built from a digest), following symlink and hardlink members inside the
 * archive. */
int load_lookup(struct loader *l, const char *path, struct member **ret, struct chrun_err *err)
{
    char cur[PATH_MAX], dir[PATH_MAX], next[PATH_MAX];
    struct member *m;

    if (path_resolve("", path, cur, sizeof(cur)) < 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "path '%s' leads outside the archive", path);
    if (l->dirfd >= 0) {
        m = member_find(l, cur);
        if (m != NULL) {
            *ret = m;
            return 0;
        }
        return dir_stage(l, cur, ret, err);
    }
    for (int hops = 0; hops <= CHRUN_FS_MAX_HOPS; hops++) {
        m = member_find(l, cur);
        if (m == NULL)
            return chrun_err_set(err, CHRUN_E_NOTFOUND, "'%s' not found in the archive", path);
        if (m->link == NULL) {
            *ret = m;
            return 0;
        }
        if (m->hardlink) {
            snprintf(next, sizeof(next), "%s", m->link);
        } else {
            path_dirname(cur, dir, sizeof(dir));
            if (path_resolve(dir, m->link, next, sizeof(next)) < 0)
                return chrun_err_set(err, CHRUN_E_INPUT,
                                     "symlink '%s' -> '%s' leads outside the archive", cur,
                                     m->link);
        }
        strcpy(cur, next);
    }
    return chrun_err_set(err, CHRUN_E_INPUT, "'%s': too many levels of symbolic links", path);
}

/* The blob D describes: present, of its digest and declared size. */
int load_lookup_blob(struct loader *l, const struct chrun_digest *d, int64_t size,
                     struct member **ret, struct chrun_err *err)
{
    char path[32 + CHRUN_DIGEST_HEX_LEN];
    struct member *m;

    snprintf(path, sizeof(path), "%s%s", l->blob_dir, chrun_digest_hex(d));
    if (load_lookup(l, path, &m, err) < 0) {
        if (err->code == CHRUN_E_NOTFOUND)
            return chrun_err_set(err, CHRUN_E_INPUT, "blob %s is missing from the archive", d->str);
        return -1;
    }
    if (!streq(m->digest.str, d->str))
        return chrun_err_set(err, CHRUN_E_DIGEST, "blob %s: digest mismatch: content is %s",
                             d->str, m->digest.str);
    if (size >= 0 && m->size != (uint64_t) size)
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "blob %s: size mismatch: archive has %llu bytes, descriptor says %lld",
                             d->str, (unsigned long long) m->size, (long long) size);
    m->keep = true;
    *ret = m;
    return 0;
}

int load_read_staged(struct loader *l, struct member *m, size_t cap, char **ret_buf,
                     size_t *ret_len, struct chrun_err *err)
{
    char fname[32];
    if (stage_member_name(member_index(l, m), fname, sizeof(fname)) < 0)
        return chrun_err_sys(err, ENAMETOOLONG, "staging");
    if (m->size > cap)
        return chrun_err_sys(err, EFBIG, "'%s' is larger than %zu bytes",
                             m->name[0] ? m->name : m->digest.str, cap);
    return chrun_io_read_file_at(l->stage_fd, fname, cap, ret_buf, ret_len, err);
}

int load_parse_json_doc(const char *buf, size_t len, const char *what, json_t **ret,
                        struct chrun_err *err)
{
    json_error_t jerr;
    *ret = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (*ret == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "%s: invalid JSON at line %d: %s", what,
                             jerr.line, jerr.text);
    return 0;
}

enum chrun_compression load_member_compression(const struct member *m)
{
    return chrun_inflate_sniff(m->magic, m->magic_len);
}

/* The diff_id of a staged compressed layer: inflate to the stream's end
 * (every gzip trailer checked) while hashing. */
static int staged_diff_id(struct loader *l, struct member *m, struct chrun_digest *ret,
                          struct chrun_err *err)
{
    cleanup_hasher struct chrun_digest_hasher h = {0};
    cleanup_free unsigned char *buf = NULL;
    cleanup_inflate struct chrun_inflate *z = NULL;
    cleanup_close int fd = -1;
    struct chunk_source src = {-1, NULL, 0};
    char fname[32];
    ssize_t n;

    stage_member_name(member_index(l, m), fname, sizeof(fname));
    fd = openat(l->stage_fd, fname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return chrun_err_sys(err, errno, "open staged layer");
    buf = malloc(CHRUN_IO_BUFSZ);
    if (buf == NULL)
        return chrun_err_sys(err, ENOMEM, "decompress layer");
    src.fd = fd;
    src.buf = buf;
    z = chrun_inflate_new(load_member_compression(m), chunk_source_read, &src, err);
    if (z == NULL || chrun_digest_hasher_init(&h, err) < 0)
        return -1;
    while ((n = chrun_inflate_read(z, l->buf, CHRUN_IO_BUFSZ, err)) != 0) {
        if (n < 0)
            return chrun_err_prefix(err, "layer %s", m->digest.str);
        if (chrun_digest_hasher_update(&h, l->buf, (size_t) n, err) < 0)
            return -1;
    }
    return chrun_digest_hasher_final(&h, ret, err);
}

int load_check_diff_id(struct loader *l, struct member *m, const struct chrun_digest *want,
                       bool may_decompress, struct chrun_err *err)
{
    struct chrun_digest got;
    if (load_member_compression(m) == CHRUN_COMPRESSION_NONE)
        got = m->digest;
    else if (!may_decompress)
        return 0; /* checked when the layer is applied */
    else if (staged_diff_id(l, m, &got, err) < 0)
        return -1;
    if (!streq(got.str, want->str))
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "layer %s: diff_id mismatch: uncompressed content is %s, config "
                             "says %s",
                             m->digest.str, got.str, want->str);
    return 0;
}

/* Record the name REF (as the archive wrote it) for an image. */
int load_add_tag(struct loader *l, const char *ref, const char *media_type,
                 const struct chrun_digest *d, int64_t size, struct chrun_err *err)
{
    struct chrun_ref r;
    struct pending_tag *t;

    if (chrun_ref_parse(&r, ref, err) < 0)
        return -1;
    if (chrun_grow(&l->tags, &l->cap_tags, l->n_tags + 1, sizeof(*l->tags), err) < 0)
        return chrun_err_prefix(err, "tags");
    t = &l->tags[l->n_tags++];
    chrun_ref_format(&r, t->ref, sizeof(t->ref));
    snprintf(t->media_type, sizeof(t->media_type), "%s", media_type);
    t->digest = *d;
    t->size = size;
    return 0;
}

int load_add_result(struct loader *l, const struct chrun_digest *d, struct chrun_err *err)
{
    struct chrun_archive_result *r = l->result;
    for (size_t i = 0; i < r->n_digests; i++)
        if (streq(r->digests[i].str, d->str))
            return 0;
    if (chrun_grow(&r->digests, &l->cap_result, r->n_digests + 1, sizeof(*r->digests), err) < 0)
        return chrun_err_prefix(err, "results");
    r->digests[r->n_digests++] = *d;
    return 0;
}

/* Generated blobs */

/* Stage the generated manifest TEXT as a blob member. */
int load_stage_generated(struct loader *l, const char *text, size_t len, struct member **ret,
                         struct chrun_err *err)
{
    char fname[32];
    cleanup_close int fd = -1;
    struct member *m = member_add(l, "", err);

    if (m == NULL)
        return -1;
    stage_member_name(member_index(l, m), fname, sizeof(fname));
    fd = openat(l->stage_fd, fname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return chrun_err_sys(err, errno, "create staging file");
    if (chrun_io_write_full(fd, text, len, err) < 0 ||
        chrun_digest_of_buffer(&m->digest, text, len, err) < 0)
        return -1;
    m->size = len;
    m->staged = true;
    m->keep = true;
    *ret = m;
    return 0;
}

/* Signatures (--verify-key) and attachments */

static int staged_blob(void *data, const struct chrun_digest *d, int64_t size, size_t max,
                       char **ret_buf, size_t *ret_len, struct chrun_err *err)
{
    struct loader *l = data;
    struct member *m;
    /* staging hashed every member: lookup_blob checks digest and size */
    if (load_lookup_blob(l, d, size, &m, err) < 0)
        return -1;
    return load_read_staged(l, m, max, ret_buf, ret_len, err);
}

/* --verify-key: every image of the archive needs a signature that verifies
 * (checked on the staged blobs, before anything is published). */
static int verify_images(struct loader *l, struct chrun_err *err)
{
    struct chrun_cosign_source src = {staged_blob, l};
    for (size_t i = 0; i < l->result->n_digests; i++) {
        const struct chrun_digest *img = &l->result->digests[i];
        struct chrun_cosign_report rep = {0};
        int rc = 0;
        for (size_t j = 0; rc == 0 && j < l->n_atts; j++)
            if (streq(l->atts[j].subject.str, img->str) &&
                chrun_cosign_is_signature(&l->atts[j]))
                rc = chrun_cosign_verify_manifest(&src, img, &l->atts[j].digest,
                                                  l->atts[j].size, l->verify, &rep, err);
        if (rc == 0 && rep.n_verified == 0)
            rc = chrun_err_set(err, CHRUN_E_INPUT, "image %s: %s", img->str,
                               rep.n_reasons ? rep.reasons[0] : "no cosign signature");
        chrun_cosign_report_release(&rep);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int commit_attachments(struct loader *l, struct chrun_err *err)
{
    for (size_t i = 0; i < l->n_atts; i++)
        if (chrun_attach_add(l->st, &l->atts[i], err) < 0)
            return -1;
    return 0;
}

/* Commit */

static int commit_blobs(struct loader *l, struct chrun_err *err)
{
    struct chrun_store *st = l->st;
    int blobs_fd = chrun_store_blobs_fd(st);
    bool renamed = false;

    for (size_t i = 0; i < l->n_members; i++) {
        struct member *m = &l->members[i];
        cleanup_close int fd = -1;
        char fname[32];
        if (!m->keep || !m->staged || chrun_store_has_blob(st, &m->digest))
            continue;
        stage_member_name(i, fname, sizeof(fname));
        fd = openat(l->stage_fd, fname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fchmod(fd, 0444) < 0 || fsync(fd) < 0)
            return chrun_err_sys(err, errno, "sync blob %s", m->digest.str);
        if (renameat(l->stage_fd, fname, blobs_fd, chrun_digest_hex(&m->digest)) < 0)
            return chrun_err_sys(err, errno, "store blob %s", m->digest.str);
        renamed = true;
    }
    if (renamed && chrun_fs_fsync_dir(blobs_fd, err) < 0)
        return -1;
    return 0;
}

static int commit_tags(struct loader *l, struct chrun_err *err)
{
    for (size_t i = 0; i < l->n_tags; i++) {
        struct pending_tag *t = &l->tags[i];
        if (chrun_store_tag(l->st, t->ref, t->media_type, &t->digest, t->size, err) < 0)
            return chrun_err_prefix(err, "tag '%s'", t->ref);
        chrun_log_info("loaded %s as %s", t->digest.str, t->ref);
    }
    return 0;
}

static void loader_release(struct loader *l)
{
    stage_remove(l);
    if (l->stage_fd >= 0)
        close(l->stage_fd);
    if (l->raw != NULL)
        archive_read_free(l->raw);
    chrun_inflate_free(l->z);
    free(l->zsrc.buf);
    free(l->zout);
    for (size_t i = 0; i < l->n_members; i++) {
        free(l->members[i].name);
        free(l->members[i].link);
    }
    free(l->members);
    free(l->index.buf);
    free(l->manifest.buf);
    free(l->layout.buf);
    free(l->repositories.buf);
    free(l->buf);
    free(l->tags);
    free(l->atts);
    free(l->missing);
    chrun_walk_release(&l->walk);
}

/* Stream (or read the directory), resolve, verify, then publish. */
static int load_run(struct loader *l, int fd, struct chrun_err *err)
{
    struct chrun_err stale_err = CHRUN_ERR_INIT;

    if (chrun_archive_clean_stale(l->st, &stale_err) < 0)
        chrun_log_warn("%s", stale_err.msg);
    l->buf = malloc(CHRUN_IO_BUFSZ);
    if (l->buf == NULL)
        return chrun_err_sys(err, ENOMEM, "load");
    if (stage_create(l, err) < 0)
        return -1;
    if (l->dirfd >= 0 ? dir_read_docs(l, err) : stream_tar(l, fd, err))
        return -1;
    if (l->index.present) {
        if (load_resolve_oci(l, err) < 0)
            return -1;
    } else if (l->manifest.present) {
        if (load_resolve_docker(l, err) < 0)
            return -1;
    } else {
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "neither index.json nor manifest.json: not an image archive");
    }
    if (l->verify != NULL && verify_images(l, err) < 0)
        return -1;
    if (commit_blobs(l, err) < 0 || commit_tags(l, err) < 0 || commit_attachments(l, err) < 0)
        return -1;
    return 0;
}

static int load(struct chrun_store *st, int fd, int dirfd, const char *name,
                const struct chrun_cosign_opts *verify, struct chrun_archive_result *ret,
                struct chrun_err *err)
{
    struct loader l = {
        .st = st, .input = name, .dirfd = dirfd, .stage_fd = -1, .result = ret,
        .blob_dir = "blobs/sha256/", .verify = verify,
    };
    int rc;

    memset(ret, 0, sizeof(*ret));
    chrun_walk_init(&l.walk, &load_walk_ops, &l, CHRUN_WALK_BOUNDED);
    rc = load_run(&l, fd, err);
    loader_release(&l);
    if (rc < 0) {
        chrun_archive_result_release(ret);
        return chrun_err_prefix(err, "'%s'", name);
    }
    return 0;
}

int chrun_archive_load_fd(struct chrun_store *st, int fd, const char *name,
                          struct chrun_archive_result *ret, struct chrun_err *err)
{
    return load(st, fd, -1, name, NULL, ret, err);
}

int chrun_archive_load_dir(struct chrun_store *st, int dirfd, const char *name,
                           struct chrun_archive_result *ret, struct chrun_err *err)
{
    return load(st, -1, dirfd, name, NULL, ret, err);
}

int chrun_archive_load(struct chrun_store *st, const char *path,
                       struct chrun_archive_result *ret, struct chrun_err *err)
{
    return chrun_archive_load_verify(st, path, NULL, ret, err);
}

int chrun_archive_load_verify(struct chrun_store *st, const char *path,
                              const struct chrun_cosign_opts *verify,
                              struct chrun_archive_result *ret, struct chrun_err *err)
{
    cleanup_close int fd = -1;
    struct stat sb;

    if (path == NULL || streq(path, "-")) {
        if (isatty(STDIN_FILENO))
            return chrun_err_set(err, CHRUN_E_USAGE,
                                 "refusing to read an archive from a terminal");
        return load(st, STDIN_FILENO, -1, "stdin", verify, ret, err);
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return chrun_err_sys(err, errno, "open '%s'", path);
    if (fstat(fd, &sb) < 0)
        return chrun_err_sys(err, errno, "stat '%s'", path);
    if (S_ISDIR(sb.st_mode))
        return load(st, -1, fd, path, verify, ret, err);
    return load(st, fd, -1, path, verify, ret, err);
}
