#include "chrun/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "chrun/attach.h"
#include "chrun/fs.h"
#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/manifest.h"
#include "cleanup.h"
#include "json.h"
#include "util.h"

#define OCI_LAYOUT_CONTENT "{\"imageLayoutVersion\":\"1.0.0\"}"
#define EMPTY_INDEX                                                                                \
    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","             \
    "\"manifests\":[]}"

struct chrun_store {
    char *root_path;
    int root_fd;
    int blobs_fd;
    int tmp_fd;
    int locks_fd;
    int gc_lock_fd;
};

struct chrun_store_writer {
    struct chrun_store *st;
    int fd;
    char tmp_name[NAME_MAX];
    bool has_expected;
    struct chrun_digest expected;
    int64_t expected_size;
    struct chrun_digest_hasher hasher;
    bool resumable;
    bool done;
    bool verified;             /* chrun_store_writer_verify succeeded */
    struct chrun_digest actual; /* valid when verified */
    uint64_t writeback_from;   /* bytes before this were handed to writeback */
};

/* Written bytes handed to the kernel's writeback in pieces of this size, so
 * the disk works while the network does and the final fsync waits for the
 * tail only. */
#define WRITEBACK_CHUNK (2u << 20)

int chrun_store_default_root(char *buf, size_t size, struct chrun_err *err)
{
    const char *env = getenv("CHRUN_ROOT");
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    int n;

    if (env != NULL && *env)
        n = snprintf(buf, size, "%s", env);
    else if (geteuid() == 0)
        n = snprintf(buf, size, "/var/lib/chrun");
    else if (xdg != NULL && *xdg == '/')
        n = snprintf(buf, size, "%s/chrun", xdg);
    else {
        if (home == NULL || *home == '\0') {
            struct passwd *pw = getpwuid(geteuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (home == NULL)
            return chrun_err_set(err, CHRUN_E_NOTFOUND, "no home directory: set CHRUN_ROOT");
        n = snprintf(buf, size, "%s/.local/share/chrun", home);
    }
    if (n < 0 || (size_t) n >= size)
        return chrun_err_sys(err, ENAMETOOLONG, "store path");
    return 0;
}

static int lock_fd_at(int dirfd, const char *name, int op, struct chrun_err *err);

/* Create the OCI layout skeleton. Each piece appears atomically, so a crash
 * midway leaves a store the next run completes. */
static int create_layout(int rootfd, struct chrun_err *err)
{
    static const char *const dirs[] = {"blobs", "blobs/sha256", "tmp", "locks", "bundles"};
    cleanup_close int tmpfd = -1;
    cleanup_close int lock = -1;
    for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
        if (mkdirat(rootfd, dirs[i], 0755) < 0 && errno != EEXIST)
            return chrun_err_sys(err, errno, "create '%s'", dirs[i]);
    tmpfd = chrun_fs_open_dir_at(rootfd, "tmp", err);
    if (tmpfd < 0)
        return -1;
    /* Under the index lock: a process creating the store beside us may have
     * tagged into index.json between our check and our rename. */
    lock = lock_fd_at(rootfd, "locks/index", LOCK_EX, err);
    if (lock < 0)
        return -1;
    if (!chrun_fs_exists_at(rootfd, "oci-layout") &&
        chrun_fs_write_atomic_at(tmpfd, rootfd, "oci-layout", OCI_LAYOUT_CONTENT,
                                 strlen(OCI_LAYOUT_CONTENT), 0644, err) < 0)
        return -1;
    if (!chrun_fs_exists_at(rootfd, "index.json") &&
        chrun_fs_write_atomic_at(tmpfd, rootfd, "index.json", EMPTY_INDEX, strlen(EMPTY_INDEX),
                                 0644, err) < 0)
        return -1;
    return 0;
}

static int lock_fd_at(int dirfd, const char *name, int op, struct chrun_err *err)
{
    cleanup_close int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return chrun_err_sys(err, errno, "open lock '%s'", name);
    if (TEMP_FAILURE_RETRY_INT(flock(fd, op)) < 0)
        return chrun_err_sys(err, errno, "lock '%s'", name);
    return take_fd(fd);
}

/* Any OCI image layout is a store; chrun's own directories are added as needed
 * (skopeo or umoci may have created the layout). */
static bool store_is_layout(int rootfd)
{
    return chrun_fs_exists_at(rootfd, "oci-layout") && chrun_fs_exists_at(rootfd, "index.json");
}

static int open_root_dirs(struct chrun_store *st, unsigned flags, struct chrun_err *err)
{
    bool layout;
    if (flags & CHRUN_STORE_CREATE) {
        if (chrun_fs_mkdir_p_at(AT_FDCWD, st->root_path, 0755, err) < 0)
            return chrun_err_prefix(err, "store '%s'", st->root_path);
    }
    st->root_fd = open(st->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (st->root_fd < 0 && errno == ENOENT)
        return chrun_err_set(err, CHRUN_E_NOTFOUND, "store '%s' does not exist", st->root_path);
    if (st->root_fd < 0)
        return chrun_err_sys(err, errno, "open store '%s'", st->root_path);
    layout = store_is_layout(st->root_fd);
    if (!layout && !(flags & CHRUN_STORE_CREATE))
        return chrun_err_set(err, CHRUN_E_NOTFOUND, "store '%s' is not initialized",
                             st->root_path);
    if (create_layout(st->root_fd, err) < 0) {
        if (!layout || (flags & CHRUN_STORE_CREATE))
            return chrun_err_prefix(err, "store '%s'", st->root_path);
        chrun_err_clear(err); /* a read-only layout can still be read */
    }
    st->blobs_fd = openat(st->root_fd, "blobs/sha256", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (st->blobs_fd < 0)
        return chrun_err_sys(err, errno, "open store '%s': blobs/sha256", st->root_path);
    st->tmp_fd = openat(st->root_fd, "tmp", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    st->locks_fd = openat(st->root_fd, "locks", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if ((st->tmp_fd < 0 || st->locks_fd < 0) && (flags & CHRUN_STORE_CREATE))
        return chrun_err_sys(err, errno, "open store '%s'", st->root_path);
    return 0;
}

/* chrun_store_open and chrun_store_writer_begin free what they half built on
 * every early return. */
static void store_close_fn(struct chrun_store **st)
{
    chrun_store_close(*st); /* NULL is fine */
}
#define cleanup_store __attribute__((cleanup(store_close_fn)))

static void store_writer_free_fn(struct chrun_store_writer **w)
{
    chrun_store_writer_free(*w); /* NULL is fine */
}
#define cleanup_store_writer __attribute__((cleanup(store_writer_free_fn)))

struct chrun_store *chrun_store_open(const char *root, unsigned flags, struct chrun_err *err)
{
    char path[PATH_MAX];
    cleanup_store struct chrun_store *st = NULL;

    if (root == NULL) {
        if (chrun_store_default_root(path, sizeof(path), err) < 0)
            return NULL;
        root = path;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        chrun_err_sys(err, ENOMEM, "open store");
        return NULL;
    }
    st->root_fd = st->blobs_fd = st->tmp_fd = st->locks_fd = st->gc_lock_fd = -1;
    if ((st->root_path = strdup(root)) == NULL) {
        chrun_err_sys(err, ENOMEM, "open store");
        return NULL;
    }
    if (open_root_dirs(st, flags, err) < 0)
        return NULL;
    if (st->locks_fd >= 0 || (flags & CHRUN_STORE_EXCLUSIVE)) {
        st->gc_lock_fd = lock_fd_at(st->locks_fd, "gc",
                                    (flags & CHRUN_STORE_EXCLUSIVE) ? LOCK_EX : LOCK_SH, err);
        if (st->gc_lock_fd < 0)
            return NULL;
    }
    return take_ptr(st);
}

void chrun_store_close(struct chrun_store *st)
{
    if (st == NULL)
        return;
    int fds[] = {st->gc_lock_fd, st->locks_fd, st->tmp_fd, st->blobs_fd, st->root_fd};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(st->root_path);
    free(st);
}

int chrun_store_root_fd(struct chrun_store *st)
{
    return st->root_fd;
}

int chrun_store_tmp_fd(struct chrun_store *st)
{
    return st->tmp_fd;
}

int chrun_store_blobs_fd(struct chrun_store *st)
{
    return st->blobs_fd;
}

const char *chrun_store_root_path(struct chrun_store *st)
{
    return st->root_path;
}

bool chrun_store_has_blob(struct chrun_store *st, const struct chrun_digest *d)
{
    struct stat sb;
    return fstatat(st->blobs_fd, chrun_digest_hex(d), &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISREG(sb.st_mode);
}

int chrun_store_open_blob(struct chrun_store *st, const struct chrun_digest *d,
                          struct chrun_err *err)
{
    int fd = TEMP_FAILURE_RETRY_INT(
        openat(st->blobs_fd, chrun_digest_hex(d), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd < 0 && errno == ENOENT)
        return chrun_err_set(err, CHRUN_E_NOTFOUND, "blob %s not found", d->str);
    if (fd < 0)
        return chrun_err_sys(err, errno, "open blob %s", d->str);
    return fd;
}

int chrun_store_read_blob(struct chrun_store *st, const struct chrun_digest *d, size_t max,
                          char **ret_buf, size_t *ret_len, struct chrun_err *err)
{
    cleanup_close int fd = chrun_store_open_blob(st, d, err);
    cleanup_free char *buf = NULL;
    struct chrun_digest actual;
    size_t len;

    if (fd < 0)
        return -1;
    if (chrun_io_read_bounded(fd, max, &buf, &len, err) < 0)
        return chrun_err_prefix(err, "blob %s", d->str);
    if (chrun_digest_of_buffer(&actual, buf, len, err) < 0)
        return -1;
    /* A store is only as good as its disk: re-check what we are about to trust. */
    if (!streq(actual.str, d->str))
        return chrun_err_set(err, CHRUN_E_DIGEST, "blob %s in store is corrupt (hashes to %s)",
                             d->str, actual.str);
    *ret_buf = take_ptr(buf);
    *ret_len = len;
    return 0;
}

int chrun_store_put_blob(struct chrun_store *st, const void *data, size_t len,
                         const struct chrun_digest *expected, struct chrun_digest *ret,
                         struct chrun_err *err)
{
    struct chrun_store_writer *w;
    int rc = -1;
    w = chrun_store_writer_begin(st, expected, expected ? (int64_t) len : -1, 0, err);
    if (w == NULL)
        return -1;
    if (chrun_store_writer_write(w, data, len, err) == 0 &&
        chrun_store_writer_commit(w, ret, err) == 0)
        rc = 0;
    chrun_store_writer_free(w);
    return rc;
}

/* Re-hash the bytes an interrupted writer left, so the digest covers them. */
static int rehash_partial(struct chrun_store_writer *w, struct chrun_err *err)
{
    cleanup_free char *buf = malloc(CHRUN_IO_BUFSZ);
    ssize_t n;
    if (buf == NULL)
        return chrun_err_sys(err, ENOMEM, "resume blob");
    if (lseek(w->fd, 0, SEEK_SET) < 0)
        return chrun_err_sys(err, errno, "resume blob");
    while ((n = chrun_io_read_full(w->fd, buf, CHRUN_IO_BUFSZ, err)) > 0)
        if (chrun_digest_hasher_update(&w->hasher, buf, (size_t) n, err) < 0)
            return -1;
    if (n < 0)
        return -1;
    if (w->expected_size >= 0 && w->hasher.size_bytes > (uint64_t) w->expected_size) {
        if (ftruncate(w->fd, 0) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
            return chrun_err_sys(err, errno, "truncate partial blob");
        return chrun_digest_hasher_init(&w->hasher, err);
    }
    return 0;
}

/* True if FD is still the file named NAME in DIRFD: another writer may have
 * renamed it into blobs/ or removed it while we waited for its lock. */
static bool fd_is_name_at(int fd, int dirfd, const char *name)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
           a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int open_partial(struct chrun_store_writer *w, struct chrun_err *err)
{
    struct chrun_store *st = w->st;
    snprintf(w->tmp_name, sizeof(w->tmp_name), "blob-%s.partial", chrun_digest_hex(&w->expected));
    for (;;) {
        w->fd = openat(st->tmp_fd, w->tmp_name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (w->fd < 0)
            return chrun_err_sys(err, errno, "create '%s'", w->tmp_name);
        /* Another process may be writing the same blob: wait for it. */
        if (TEMP_FAILURE_RETRY_INT(flock(w->fd, LOCK_EX)) < 0)
            return chrun_err_sys(err, errno, "lock '%s'", w->tmp_name);
        if (fd_is_name_at(w->fd, st->tmp_fd, w->tmp_name))
            break;
        close(w->fd); /* published or discarded meanwhile: never write through it */
        w->fd = -1;
    }
    if (w->resumable)
        return rehash_partial(w, err);
    if (ftruncate(w->fd, 0) < 0)
        return chrun_err_sys(err, errno, "truncate '%s'", w->tmp_name);
    return 0;
}

struct chrun_store_writer *chrun_store_writer_begin(struct chrun_store *st,
                                                    const struct chrun_digest *expected,
                                                    int64_t expected_size, unsigned flags,
                                                    struct chrun_err *err)
{
    cleanup_store_writer struct chrun_store_writer *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        chrun_err_sys(err, ENOMEM, "blob writer");
        return NULL;
    }
    w->st = st;
    w->fd = -1;
    w->expected_size = expected_size;
    w->resumable = expected != NULL && (flags & CHRUN_STORE_WRITER_RESUMABLE);
    if (chrun_digest_hasher_init(&w->hasher, err) < 0)
        return NULL;
    if (expected != NULL) {
        w->has_expected = true;
        w->expected = *expected;
        if (open_partial(w, err) < 0)
            return NULL;
    } else {
        w->fd = chrun_fs_mkstemp_at(st->tmp_fd, "blob-", w->tmp_name, sizeof(w->tmp_name), err);
        if (w->fd < 0)
            return NULL;
    }
    return take_ptr(w);
}

/* Best effort: a filesystem without sync_file_range still gets its fsync. */
static void writer_start_writeback(struct chrun_store_writer *w, bool tail)
{
    uint64_t end = w->hasher.size_bytes;
    if (end == w->writeback_from || (!tail && end - w->writeback_from < WRITEBACK_CHUNK))
        return;
    (void) sync_file_range(w->fd, (off64_t) w->writeback_from, (off64_t) (end - w->writeback_from),
                           SYNC_FILE_RANGE_WRITE);
    w->writeback_from = end;
}

int chrun_store_writer_write(struct chrun_store_writer *w, const void *data, size_t len,
                             struct chrun_err *err)
{
    if (w->expected_size >= 0 && w->hasher.size_bytes + len > (uint64_t) w->expected_size)
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "blob %s: more bytes than the declared size %lld",
                             w->has_expected ? w->expected.str : "(new)",
                             (long long) w->expected_size);
    if (chrun_io_write_full(w->fd, data, len, err) < 0)
        return chrun_err_prefix(err, "write blob");
    if (chrun_digest_hasher_update(&w->hasher, data, len, err) < 0)
        return -1;
    writer_start_writeback(w, false);
    return 0;
}

int chrun_store_writer_reopen(struct chrun_store_writer *w, struct chrun_err *err)
{
    int fd = openat(w->st->tmp_fd, w->tmp_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return chrun_err_sys(err, errno, "reopen '%s'", w->tmp_name);
    return fd;
}

uint64_t chrun_store_writer_offset(struct chrun_store_writer *w)
{
    return w->hasher.size_bytes;
}

static int writer_verify(struct chrun_store_writer *w, struct chrun_digest *actual,
                         struct chrun_err *err)
{
    const char *name = w->has_expected ? w->expected.str : "(new)";
    if (w->expected_size >= 0 && w->hasher.size_bytes != (uint64_t) w->expected_size)
        return chrun_err_set(err, CHRUN_E_DIGEST,
                             "blob %s: size mismatch: got %llu bytes, expected %lld", name,
                             (unsigned long long) w->hasher.size_bytes,
                             (long long) w->expected_size);
    if (chrun_digest_hasher_final(&w->hasher, actual, err) < 0)
        return -1;
    if (w->has_expected && !streq(actual->str, w->expected.str))
        return chrun_err_set(err, CHRUN_E_DIGEST, "blob %s: digest mismatch: content is %s", name,
                             actual->str);
    return 0;
}

int chrun_store_writer_verify(struct chrun_store_writer *w, struct chrun_digest *ret,
                              struct chrun_err *err)
{
    if (!w->verified) {
        if (w->done)
            return chrun_err_set(err, CHRUN_E_DIGEST, "blob %s: already failed verification",
                                 w->has_expected ? w->expected.str : "(new)");
        if (writer_verify(w, &w->actual, err) < 0) {
            /* A failed blob is never kept for resume: its bytes are known bad. */
            unlinkat(w->st->tmp_fd, w->tmp_name, 0);
            w->done = true;
            return -1;
        }
        w->verified = true;
        writer_start_writeback(w, true);
    }
    if (ret != NULL)
        *ret = w->actual;
    return 0;
}

int chrun_store_writer_commit(struct chrun_store_writer *w, struct chrun_digest *ret,
                              struct chrun_err *err)
{
    struct chrun_digest actual;
    struct chrun_store *st = w->st;

    if (chrun_store_writer_verify(w, &actual, err) < 0)
        return -1;
    if (chrun_store_has_blob(st, &actual)) {
        unlinkat(st->tmp_fd, w->tmp_name, 0);
    } else {
        if (fchmod(w->fd, 0444) < 0 || fsync(w->fd) < 0)
            return chrun_err_sys(err, errno, "sync blob %s", actual.str);
        if (renameat(st->tmp_fd, w->tmp_name, st->blobs_fd, chrun_digest_hex(&actual)) < 0)
            return chrun_err_sys(err, errno, "store blob %s", actual.str);
        if (chrun_fs_fsync_dir(st->blobs_fd, err) < 0)
            return -1;
    }
    w->done = true;
    if (ret != NULL)
        *ret = actual;
    return 0;
}

void chrun_store_writer_free(struct chrun_store_writer *w)
{
    if (w == NULL)
        return;
    /* A resumable partial is kept for the next attempt; other temps are not. */
    if (!w->done && w->fd >= 0 && !w->resumable)
        unlinkat(w->st->tmp_fd, w->tmp_name, 0);
    if (w->fd >= 0)
        close(w->fd);
    chrun_digest_hasher_release(&w->hasher);
    free(w);
}

/* index.json */

static int index_load(struct chrun_store *st, json_t **ret, struct chrun_err *err)
{
    cleanup_free char *buf = NULL;
    size_t len;
    json_error_t jerr;
    json_t *root, *manifests;

    if (chrun_io_read_file_at(st->root_fd, "index.json", CHRUN_INDEX_MAX, &buf, &len, err) < 0)
        return chrun_err_prefix(err, "store '%s'", st->root_path);
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "store '%s': index.json: invalid JSON at line %d: %s",
                             st->root_path, jerr.line, jerr.text);
    manifests = json_object_get(root, "manifests");
    if (!json_is_object(root) || (manifests != NULL && !json_is_array(manifests))) {
        json_decref(root);
        return chrun_err_set(err, CHRUN_E_INPUT, "store '%s': index.json is not an OCI index",
                             st->root_path);
    }
    if (manifests == NULL && chrun_json_set(root, "manifests", json_array(), err) < 0) {
        json_decref(root);
        return chrun_err_prefix(err, "store '%s': index.json", st->root_path);
    }
    *ret = root;
    return 0;
}

static int index_save(struct chrun_store *st, json_t *root, struct chrun_err *err)
{
    cleanup_free char *text = json_dumps(root, JSON_COMPACT);
    if (text == NULL)
        return chrun_err_sys(err, ENOMEM, "serialize index.json");
    return chrun_fs_write_atomic_at(st->tmp_fd, st->root_fd, "index.json", text, strlen(text),
                                    0644, err);
}

static const char *entry_ref(json_t *entry)
{
    json_t *ann = json_object_get(entry, "annotations");
    return json_string_value(json_object_get(ann, CHRUN_ANNOTATION_REF_NAME));
}

/* The index.json entry named REF in MANIFESTS and its index in *RET_I, or NULL. */
static json_t *find_ref(json_t *manifests, const char *ref, size_t *ret_i)
{
    json_t *entry;
    size_t i;
    json_array_foreach (manifests, i, entry) {
        const char *name = entry_ref(entry);
        if (name != NULL && streq(name, ref)) {
            *ret_i = i;
            return entry;
        }
    }
    return NULL;
}

/* Fill IMG from an index.json descriptor; false when it is not one chrun can use. */
static bool entry_to_image(json_t *entry, struct chrun_store_image *img)
{
    const char *digest = json_string_value(json_object_get(entry, "digest"));
    const char *mt = json_string_value(json_object_get(entry, "mediaType"));
    const char *ref = entry_ref(entry);
    json_t *size = json_object_get(entry, "size");

    memset(img, 0, sizeof(*img));
    if (!chrun_digest_is_valid(digest) || !json_is_integer(size) ||
        (mt != NULL && !chrun_manifest_media_type_valid(mt)))
        return false;
    strcpy(img->digest.str, digest);
    img->size = json_integer_value(size);
    snprintf(img->media_type, sizeof(img->media_type), "%s", mt ? mt : "");
    snprintf(img->ref, sizeof(img->ref), "%s", ref ? ref : "");
    return true;
}

int chrun_store_list(struct chrun_store *st, struct chrun_store_image **ret, size_t *ret_n,
                     struct chrun_err *err)
{
    cleanup_json json_t *root = NULL;
    cleanup_free struct chrun_store_image *imgs = NULL;
    json_t *manifests, *entry;
    size_t i, n = 0;

    if (index_load(st, &root, err) < 0)
        return -1;
    manifests = json_object_get(root, "manifests");
    imgs = calloc(json_array_size(manifests) + 1, sizeof(*imgs));
    if (imgs == NULL)
        return chrun_err_sys(err, ENOMEM, "list images");
    json_array_foreach (manifests, i, entry)
        if (!chrun_attach_entry_is_attachment(entry) && entry_to_image(entry, &imgs[n]))
            n++;
    *ret = take_ptr(imgs);
    *ret_n = n;
    return 0;
}

static int index_lock(struct chrun_store *st, struct chrun_err *err)
{
    return lock_fd_at(st->locks_fd, "index", LOCK_EX, err);
}

int chrun_store_read_index(struct chrun_store *st, json_t **ret_manifests,
                           struct chrun_err *err)
{
    cleanup_json json_t *root = NULL;
    if (index_load(st, &root, err) < 0)
        return -1;
    *ret_manifests = json_incref(json_object_get(root, "manifests"));
    return 0;
}

int chrun_store_edit_index(struct chrun_store *st,
                           int (*fn)(json_t *manifests, void *data, struct chrun_err *err),
                           void *data, struct chrun_err *err)
{
    cleanup_close int lock = index_lock(st, err);
    cleanup_json json_t *root = NULL;
    int rc;

    if (lock < 0 || index_load(st, &root, err) < 0)
        return -1;
    rc = fn(json_object_get(root, "manifests"), data, err);
    if (rc <= 0)
        return rc;
    return index_save(st, root, err);
}

int chrun_store_tag(struct chrun_store *st, const char *ref, const char *media_type,
                    const struct chrun_digest *d, int64_t size, struct chrun_err *err)
{
    cleanup_close int lock = index_lock(st, err);
    cleanup_json json_t *root = NULL;
    json_t *manifests, *entry, *desc;
    size_t i;

    if (lock < 0 || index_load(st, &root, err) < 0)
        return -1;
    manifests = json_object_get(root, "manifests");
    if ((entry = find_ref(manifests, ref, &i)) != NULL) {
        const char *old = json_string_value(json_object_get(entry, "digest"));
        const char *old_mt = json_string_value(json_object_get(entry, "mediaType"));
        if (old && streq(old, d->str) && old_mt && streq(old_mt, media_type))
            return 0; /* re-running a step is a no-op */
        json_array_remove(manifests, i);
    }
    desc = json_pack("{s:s, s:s, s:I, s:{s:s}}", "mediaType", media_type, "digest", d->str,
                     "size", (json_int_t) size, "annotations", CHRUN_ANNOTATION_REF_NAME, ref);
    if (desc == NULL || json_array_append_new(manifests, desc) < 0)
        return chrun_err_sys(err, ENOMEM, "tag '%s'", ref);
    return index_save(st, root, err);
}

int chrun_store_untag(struct chrun_store *st, const char *ref, struct chrun_err *err)
{
    cleanup_close int lock = index_lock(st, err);
    cleanup_json json_t *root = NULL;
    json_t *manifests;
    size_t i;

    if (lock < 0 || index_load(st, &root, err) < 0)
        return -1;
    manifests = json_object_get(root, "manifests");
    if (find_ref(manifests, ref, &i) != NULL) {
        json_array_remove(manifests, i);
        return index_save(st, root, err);
    }
    return chrun_err_set(err, CHRUN_E_NOTFOUND, "no such image '%s'", ref);
}

/* "abc123" or "sha256:abc123": 4 to 64 lowercase hex digits. */
static const char *short_digest_hex(const char *image)
{
    const char *hex = str_has_prefix(image, "sha256:") ? image + 7 : image;
    size_t len = strlen(hex);
    if (len < 4 || len > CHRUN_DIGEST_HEX_LEN)
        return NULL;
    for (size_t i = 0; i < len; i++)
        if (!((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f')))
            return NULL;
    return hex;
}

static int resolve_short(struct chrun_store_image *imgs, size_t n, const char *image,
                         const char *hex, struct chrun_store_image *ret, struct chrun_err *err)
{
    const struct chrun_store_image *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(chrun_digest_hex(&imgs[i].digest), hex, strlen(hex)) != 0)
            continue;
        if (found != NULL && !streq(found->digest.str, imgs[i].digest.str))
            return chrun_err_set(err, CHRUN_E_AMBIGUOUS, "image '%s' is ambiguous: %s and %s",
                                 image, found->digest.str, imgs[i].digest.str);
        if (found == NULL)
            found = &imgs[i];
    }
    if (found == NULL)
        return chrun_err_set(err, CHRUN_E_NOTFOUND, "no such image '%s'", image);
    *ret = *found;
    return 0;
}

int chrun_store_resolve(struct chrun_store *st, const char *image, struct chrun_store_image *ret,
                        struct chrun_err *err)
{
    cleanup_free struct chrun_store_image *imgs = NULL;
    char full[CHRUN_REF_STR_MAX];
    struct chrun_ref ref;
    struct chrun_err parse_err = CHRUN_ERR_INIT;
    const char *hex;
    size_t n;

    if (chrun_store_list(st, &imgs, &n, err) < 0)
        return -1;
    if (chrun_ref_parse(&ref, image, &parse_err) == 0) {
        chrun_ref_format(&ref, full, sizeof(full));
        for (size_t i = 0; i < n; i++)
            if (streq(imgs[i].ref, full)) {
                *ret = imgs[i];
                return 0;
            }
        /* NAME@digest: the pinned manifest, if the store has it under any name. */
        for (size_t i = 0; ref.digest[0] && i < n; i++)
            if (streq(imgs[i].digest.str, ref.digest)) {
                *ret = imgs[i];
                snprintf(ret->ref, sizeof(ret->ref), "%s", full);
                return 0;
            }
    }
    hex = short_digest_hex(image);
    if (hex != NULL && resolve_short(imgs, n, image, hex, ret, err) == 0)
        return 0;
    /* A full digest of a manifest the store holds without a name (a platform
     * manifest of an index): the caller learns its media type from the blob. */
    if (chrun_digest_is_valid(image)) {
        memset(ret, 0, sizeof(*ret));
        strcpy(ret->digest.str, image);
        if (chrun_store_has_blob(st, &ret->digest)) {
            struct stat sb;
            if (fstatat(st->blobs_fd, chrun_digest_hex(&ret->digest), &sb, 0) == 0)
                ret->size = sb.st_size;
            return 0;
        }
    }
    if (hex != NULL)
        return -1;
    if (parse_err.code != CHRUN_E_OK) {
        *err = parse_err;
        return -1;
    }
    return chrun_err_set(err, CHRUN_E_NOTFOUND, "no such image '%s'", image);
}
