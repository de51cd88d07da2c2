/* The step cache's entry format (include/chrun/build-cache.h). */
#include "chrun/build-cache.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "chrun/fs.h"
#include "chrun/io.h"
#include "cleanup.h"
#include "json.h"

bool chrun_build_cache_read_at(int dfd, const char *name, struct chrun_changeset_layer *ret)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    cleanup_free char *buf = NULL;
    cleanup_json json_t *doc = NULL;
    json_t *empty, *size;
    size_t len;

    *ret = (struct chrun_changeset_layer){0};
    if (chrun_io_read_file_at(dfd, name, CHRUN_BUILD_CACHE_ENTRY_MAX, &buf, &len, &ignored) < 0)
        return false;
    doc = json_loadb(buf, len, 0, NULL);
    empty = json_object_get(doc, "empty");
    if (!json_is_boolean(empty))
        return false;
    if ((ret->empty = json_is_true(empty)))
        return true;
    size = json_object_get(doc, "size");
    ret->size = json_is_integer(size) ? json_integer_value(size) : 0;
    return chrun_digest_parse(&ret->digest, json_string_value(json_object_get(doc, "digest")) ?: "",
                              &ignored) == 0 &&
           chrun_digest_parse(&ret->diff_id,
                              json_string_value(json_object_get(doc, "diff_id")) ?: "",
                              &ignored) == 0 &&
           ret->size > 0;
}

bool chrun_build_cache_get(struct chrun_store *st, const struct chrun_digest *key,
                           struct chrun_changeset_layer *ret)
{
    cleanup_close int dfd = openat(chrun_store_root_fd(st), CHRUN_BUILD_CACHE_DIR,
                                   O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || !chrun_build_cache_read_at(dfd, chrun_digest_hex(key), ret))
        return false;
    return ret->empty || chrun_store_has_blob(st, &ret->digest);
}

int chrun_build_cache_put(struct chrun_store *st, const struct chrun_digest *key,
                          const struct chrun_changeset_layer *l, struct chrun_err *err)
{
    cleanup_json json_t *doc = json_object();
    cleanup_free char *text = NULL;
    cleanup_close int dfd = -1;
    int root = chrun_store_root_fd(st);

    if (doc == NULL)
        return chrun_err_sys(err, ENOMEM, "build cache");
    if (chrun_json_set(doc, "empty", json_boolean(l->empty), err) < 0 ||
        (!l->empty &&
         (chrun_json_set(doc, "digest", json_string(l->digest.str), err) < 0 ||
          chrun_json_set(doc, "diff_id", json_string(l->diff_id.str), err) < 0 ||
          chrun_json_set(doc, "size", json_integer((json_int_t) l->size), err) < 0)))
        return chrun_err_prefix(err, "build cache");
    text = json_dumps(doc, JSON_COMPACT);
    if (text == NULL)
        return chrun_err_sys(err, ENOMEM, "build cache");
    if (mkdirat(root, CHRUN_BUILD_CACHE_DIR, 0755) < 0 && errno != EEXIST)
        return chrun_err_sys(err, errno, "create '%s'", CHRUN_BUILD_CACHE_DIR);
    dfd = openat(root, CHRUN_BUILD_CACHE_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return chrun_err_sys(err, errno, "open '%s'", CHRUN_BUILD_CACHE_DIR);
    /* concurrent builds may write one key: no shared temporary, no lock */
    return chrun_fs_write_atomic_unlocked_at(chrun_store_tmp_fd(st), dfd, chrun_digest_hex(key),
                                             text, strlen(text), 0644, err);
}
