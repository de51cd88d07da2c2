/* chrun_inventory: a set of blob digests a receiver has (chrun/inventory.h). */
#include "chrun/inventory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "chrun/fs.h"
#include "chrun/io.h"
#include "cleanup.h"
#include "path-set.h"
#include "util.h"

#define INVENTORY_KEY "chrun.inventory"
#define ARCHIVE_BLOB_DIR "blobs/sha256/"

struct chrun_inventory {
    struct path_set set; /* "sha256:<hex>" strings */
};

struct chrun_inventory *chrun_inventory_new(struct chrun_err *err)
{
    struct chrun_inventory *inv = calloc(1, sizeof(*inv));
    if (inv == NULL)
        chrun_err_sys(err, ENOMEM, "inventory");
    return inv;
}

void chrun_inventory_free(struct chrun_inventory *inv)
{
    if (inv == NULL)
        return;
    path_set_clear(&inv->set);
    free(inv);
}

int chrun_inventory_add(struct chrun_inventory *inv, const struct chrun_digest *d,
                        struct chrun_err *err)
{
    return path_set_add(&inv->set, d->str, err);
}

bool chrun_inventory_has(const struct chrun_inventory *inv, const struct chrun_digest *d)
{
    return path_set_has(&inv->set, d->str);
}

size_t chrun_inventory_count(const struct chrun_inventory *inv)
{
    return inv->set.n;
}

static int merge(struct chrun_inventory *inv, const struct path_set *from, struct chrun_err *err)
{
    for (size_t i = 0; i < from->cap; i++)
        if (from->slots[i] != NULL && path_set_add(&inv->set, from->slots[i], err) < 0)
            return -1;
    return 0;
}

/* One entry of blobs/sha256: foreign files in blobs/ are not blobs. */
static int add_blob_entry(int dfd, const char *name, void *data, struct chrun_err *err)
{
    struct chrun_digest d;
    struct chrun_err ignored = CHRUN_ERR_INIT;
    char s[CHRUN_DIGEST_STR_MAX + 8];
    (void) dfd;
    snprintf(s, sizeof(s), "sha256:%.70s", name);
    if (chrun_digest_parse(&d, s, &ignored) == 0 && chrun_inventory_add(data, &d, err) < 0)
        return -1;
    return 0;
}

int chrun_inventory_add_store(struct chrun_inventory *inv, struct chrun_store *st,
                              struct chrun_err *err)
{
    if (chrun_fs_each_at(chrun_store_blobs_fd(st), add_blob_entry, inv, err) < 0)
        return chrun_err_prefix(err, "blobs/sha256");
    return 0;
}

/* The inventory document BUF (LEN bytes) into SET. */
static int parse_inventory(const char *buf, size_t len, struct path_set *set,
                           struct chrun_err *err)
{
    json_error_t jerr;
    cleanup_json json_t *doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *blobs, *v;
    size_t i;

    if (doc == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "invalid JSON at line %d: %s", jerr.line,
                             jerr.text);
    if (!json_is_object(doc) || !json_is_integer(json_object_get(doc, INVENTORY_KEY)))
        return chrun_err_set(err, CHRUN_E_INPUT, "not an inventory (no \"%s\" version)",
                             INVENTORY_KEY);
    if (json_integer_value(json_object_get(doc, INVENTORY_KEY)) != CHRUN_INVENTORY_VERSION)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "inventory version %lld is not %d",
                             (long long) json_integer_value(json_object_get(doc, INVENTORY_KEY)),
                             CHRUN_INVENTORY_VERSION);
    blobs = json_object_get(doc, "blobs");
    if (!json_is_array(blobs))
        return chrun_err_set(err, CHRUN_E_INPUT, "\"blobs\" is missing or not an array");
    json_array_foreach (blobs, i, v) {
        struct chrun_digest d;
        const char *s = json_string_value(v);
        if (s == NULL)
            return chrun_err_set(err, CHRUN_E_INPUT, "blobs[%zu] is not a string", i);
        if (chrun_digest_parse(&d, s, err) < 0)
            return chrun_err_prefix(err, "blobs[%zu]", i);
        if (path_set_add(set, d.str, err) < 0)
            return -1;
    }
    return 0;
}

static int archive_fail(struct archive *a, const char *what, struct chrun_err *err)
{
    const char *msg = archive_error_string(a);
    int e = archive_errno(a);
    if (e > 0 && msg == NULL)
        return chrun_err_sys(err, e, "%s", what);
    return chrun_err_set(err, CHRUN_E_INPUT, "%s: %s", what, msg ? msg : "unreadable");
}

/* The blobs/sha256/<hex> member names of the archive on FD into SET;
 * payloads are skipped, never read into memory. */
static int scan_archive(int fd, struct path_set *set, struct chrun_err *err)
{
    struct archive *a = archive_read_new();
    struct archive_entry *e;
    size_t n_blobs = 0;
    int r;

    if (a == NULL)
        return chrun_err_sys(err, ENOMEM, "archive reader");
    /* only in-process decompressors: nothing here runs an external program */
    if (archive_read_support_format_tar(a) != ARCHIVE_OK ||
        archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
        archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
        archive_read_open_fd(a, fd, CHRUN_IO_BUFSZ) != ARCHIVE_OK) {
        r = archive_fail(a, "not an inventory or an image archive", err);
        archive_read_free(a);
        return r;
    }
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *name = archive_entry_pathname(e);
        struct chrun_digest d;
        struct chrun_err ignored = CHRUN_ERR_INIT;
        char s[CHRUN_DIGEST_STR_MAX + 8];
        if (name != NULL && str_has_prefix(name, "./"))
            name += 2;
        if (name != NULL && str_has_prefix(name, ARCHIVE_BLOB_DIR) &&
            archive_entry_filetype(e) == AE_IFREG) {
            snprintf(s, sizeof(s), "sha256:%.70s", name + strlen(ARCHIVE_BLOB_DIR));
            if (chrun_digest_parse(&d, s, &ignored) == 0) {
                if (path_set_add(set, d.str, err) < 0) {
                    archive_read_free(a);
                    return -1;
                }
                n_blobs++;
            }
        }
        if (archive_read_data_skip(a) < ARCHIVE_WARN)
            break;
    }
    if (r != ARCHIVE_EOF) {
        r = archive_fail(a, "read archive", err);
        archive_read_free(a);
        return r;
    }
    archive_read_free(a);
    if (n_blobs == 0)
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "not an inventory or an image archive (no blobs/sha256/ members)");
    return 0;
}

int chrun_inventory_read(struct chrun_inventory *inv, const char *path, struct chrun_err *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct path_set set = {0};
    char first = 0;
    ssize_t n;
    int rc;

    if (fd < 0)
        return chrun_err_sys(err, errno, "open '%s'", path);
    /* an inventory is a JSON object: its first non-blank byte is '{' */
    do
        n = pread(fd, &first, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return chrun_err_sys(err, errno, "read '%s'", path);
    if (n == 1 && (first == '{' || first == ' ' || first == '\n' || first == '\t')) {
        cleanup_free char *buf = NULL;
        size_t len;
        rc = chrun_io_read_bounded(fd, CHRUN_INVENTORY_MAX, &buf, &len, err);
        if (rc == 0)
            rc = parse_inventory(buf, len, &set, err);
    } else {
        rc = scan_archive(fd, &set, err);
    }
    if (rc == 0)
        rc = merge(inv, &set, err);
    path_set_clear(&set);
    if (rc < 0)
        return chrun_err_prefix(err, "'%s'", path);
    return 0;
}

int chrun_inventory_write(const struct chrun_inventory *inv, FILE *out, struct chrun_err *err)
{
    cleanup_free char **list = calloc(inv->set.n + 1, sizeof(*list));
    size_t n = 0;

    if (list == NULL)
        return chrun_err_sys(err, ENOMEM, "inventory");
    for (size_t i = 0; i < inv->set.cap; i++)
        if (inv->set.slots[i] != NULL)
            list[n++] = inv->set.slots[i];
    chrun_sort_strings(list, n);
    fprintf(out, "{\"%s\": %d, \"blobs\": [", INVENTORY_KEY, CHRUN_INVENTORY_VERSION);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s\n  \"%s\"", i ? "," : "", list[i]);
    fprintf(out, "%s]}\n", n ? "\n" : "");
    if (ferror(out))
        return chrun_err_sys(err, errno ? errno : EIO, "write inventory");
    return 0;
}
