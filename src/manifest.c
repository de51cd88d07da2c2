#include "chrun/manifest.h"

#include <ctype.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "chrun/io.h"
#include "chrun/walk.h"
#include "cleanup.h"
#include "util.h"

bool chrun_manifest_type_is_index(const char *mt)
{
    return mt && (streq(mt, CHRUN_MT_OCI_INDEX) || streq(mt, CHRUN_MT_DOCKER_LIST));
}

bool chrun_manifest_type_is_known(const char *mt)
{
    return mt && (chrun_manifest_type_is_index(mt) || streq(mt, CHRUN_MT_OCI_MANIFEST) ||
                  streq(mt, CHRUN_MT_DOCKER_MANIFEST));
}

static bool type_is_schema1(const char *mt)
{
    return mt && (streq(mt, CHRUN_MT_DOCKER_SCHEMA1) || streq(mt, CHRUN_MT_DOCKER_SCHEMA1_SIGNED));
}

static int copy_string_field(char *dst, size_t size, json_t *obj, const char *key, bool required,
                             struct chrun_err *err)
{
    json_t *v = json_object_get(obj, key);
    const char *s;
    if (v == NULL && !required) {
        dst[0] = '\0';
        return 0;
    }
    s = json_string_value(v);
    if (s == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' is missing or not a string", key);
    if (strlen(s) >= size)
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' is too long", key);
    strcpy(dst, s);
    return 0;
}

/* RFC 6838 restricted-name: a letter or digit, then up to 126 of these. */
static size_t restricted_name_len(const char *s)
{
    size_t n = 0;
    if (!isalnum((unsigned char) s[0]))
        return 0;
    while (n < 127 && (isalnum((unsigned char) s[n]) || strchr("!#$&^_.+-", s[n]) != NULL) &&
           s[n] != '\0')
        n++;
    return n;
}

bool chrun_manifest_media_type_valid(const char *mt)
{
    size_t type = mt ? restricted_name_len(mt) : 0, sub;
    if (type == 0 || mt[type] != '/')
        return false;
    sub = restricted_name_len(mt + type + 1);
    return sub > 0 && mt[type + 1 + sub] == '\0';
}

static int parse_descriptor(struct chrun_descriptor *d, json_t *obj, struct chrun_err *err)
{
    json_t *size = json_object_get(obj, "size");
    json_t *platform = json_object_get(obj, "platform");

    memset(d, 0, sizeof(*d));
    if (!json_is_object(obj))
        return chrun_err_set(err, CHRUN_E_INPUT, "descriptor is not an object");
    if (copy_string_field(d->media_type, sizeof(d->media_type), obj, "mediaType", true, err) < 0)
        return -1;
    /* it travels into Content-Type headers (push) and file names of peers */
    if (!chrun_manifest_media_type_valid(d->media_type))
        return chrun_err_set(err, CHRUN_E_INPUT, "descriptor: invalid mediaType");
    if (chrun_digest_parse(&d->digest, json_string_value(json_object_get(obj, "digest")), err) < 0)
        return -1;
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "descriptor %s: invalid size", d->digest.str);
    d->size = json_integer_value(size);
    if (platform == NULL)
        return 0;
    if (!json_is_object(platform) ||
        copy_string_field(d->os, sizeof(d->os), platform, "os", true, err) < 0 ||
        copy_string_field(d->architecture, sizeof(d->architecture), platform, "architecture", true,
                          err) < 0 ||
        copy_string_field(d->variant, sizeof(d->variant), platform, "variant", false, err) < 0)
        return chrun_err_prefix(err, "descriptor %s: platform", d->digest.str);
    return 0;
}

static int parse_descriptor_array(json_t *doc, const char *key, struct chrun_descriptor **ret,
                                  size_t *ret_n, struct chrun_err *err)
{
    json_t *arr = json_object_get(doc, key);
    struct chrun_descriptor *ds;
    json_t *item;
    size_t i;

    if (!json_is_array(arr))
        return chrun_err_set(err, CHRUN_E_INPUT, "'%s' is missing or not an array", key);
    ds = calloc(json_array_size(arr) + 1, sizeof(*ds));
    if (ds == NULL)
        return chrun_err_sys(err, ENOMEM, "parse '%s'", key);
    json_array_foreach (arr, i, item) {
        if (parse_descriptor(&ds[i], item, err) < 0) {
            free(ds);
            return chrun_err_prefix(err, "%s[%zu]", key, i);
        }
    }
    *ret = ds;
    *ret_n = json_array_size(arr);
    return 0;
}

/* Decide the document's media type from its own field, the declared one and
 * its shape (OCI allows mediaType to be absent). */
static int decide_media_type(struct chrun_manifest *m, json_t *doc, const char *declared,
                             struct chrun_err *err)
{
    const char *own = json_string_value(json_object_get(doc, "mediaType"));
    bool declared_known = declared && *declared && chrun_manifest_type_is_known(declared);

    if (json_object_get(doc, "mediaType") != NULL && own == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "'mediaType' is not a string");
    if (own != NULL && declared_known && !streq(own, declared))
        return chrun_err_set(err, CHRUN_E_INPUT, "media type '%s' does not match declared '%s'",
                             own, declared);
    if (own == NULL && declared_known)
        own = declared;
    if (own == NULL && json_object_get(doc, "manifests") != NULL)
        own = CHRUN_MT_OCI_INDEX;
    if (own == NULL && json_object_get(doc, "config") != NULL)
        own = CHRUN_MT_OCI_MANIFEST;
    if (own == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "document has no media type");
    if (type_is_schema1(own))
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "docker schema1 manifests are not supported");
    if (!chrun_manifest_type_is_known(own))
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "unknown manifest media type '%.200s'",
                             own);
    snprintf(m->media_type, sizeof(m->media_type), "%s", own);
    m->is_index = chrun_manifest_type_is_index(own);
    return 0;
}

static int parse_doc(struct chrun_manifest *m, json_t *doc, const char *declared,
                     struct chrun_err *err)
{
    json_t *version = json_object_get(doc, "schemaVersion");

    if (!json_is_object(doc))
        return chrun_err_set(err, CHRUN_E_INPUT, "manifest is not a JSON object");
    if (json_is_integer(version) && json_integer_value(version) == 1)
        return chrun_err_set(err, CHRUN_E_UNSUPPORTED,
                             "docker schema1 manifests are not supported");
    if (!json_is_integer(version) || json_integer_value(version) != 2)
        return chrun_err_set(err, CHRUN_E_INPUT, "unsupported schemaVersion");
    if (decide_media_type(m, doc, declared, err) < 0)
        return -1;
    if (m->is_index)
        return parse_descriptor_array(doc, "manifests", &m->manifests, &m->n_manifests, err);
    if (parse_descriptor(&m->config, json_object_get(doc, "config"), err) < 0)
        return chrun_err_prefix(err, "config");
    return parse_descriptor_array(doc, "layers", &m->layers, &m->n_layers, err);
}

int chrun_manifest_parse(struct chrun_manifest *m, const char *buf, size_t len,
                         const char *declared_type, struct chrun_err *err)
{
    json_error_t jerr;
    memset(m, 0, sizeof(*m));
    if (len > CHRUN_MANIFEST_MAX)
        return chrun_err_set(err, CHRUN_E_INPUT, "manifest larger than %d bytes",
                             CHRUN_MANIFEST_MAX);
    m->json = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (m->json == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "invalid JSON at line %d: %s", jerr.line,
                             jerr.text);
    if (parse_doc(m, m->json, declared_type, err) < 0) {
        chrun_manifest_release(m);
        return -1;
    }
    return 0;
}

int chrun_manifest_load(struct chrun_manifest *m, struct chrun_store *st,
                        const struct chrun_digest *d, const char *declared_type,
                        struct chrun_err *err)
{
    cleanup_free char *buf = NULL;
    size_t len;
    memset(m, 0, sizeof(*m));
    if (chrun_store_read_blob(st, d, CHRUN_MANIFEST_MAX, &buf, &len, err) < 0)
        return -1;
    if (chrun_manifest_parse(m, buf, len, declared_type, err) < 0)
        return chrun_err_prefix(err, "manifest %s", d->str);
    return 0;
}

void chrun_manifest_release(struct chrun_manifest *m)
{
    free(m->layers);
    free(m->manifests);
    if (m->json != NULL)
        json_decref(m->json);
    memset(m, 0, sizeof(*m));
}

int chrun_manifest_layer_compression(const char *mt, enum chrun_compression *ret,
                                     struct chrun_err *err)
{
    static const struct {
        const char *media_type;
        enum chrun_compression compression;
    } table[] = {
        {CHRUN_MT_OCI_LAYER, CHRUN_COMPRESSION_NONE},
        {CHRUN_MT_OCI_LAYER_GZIP, CHRUN_COMPRESSION_GZIP},
        {CHRUN_MT_OCI_LAYER_ZSTD, CHRUN_COMPRESSION_ZSTD},
        {CHRUN_MT_DOCKER_LAYER_GZIP, CHRUN_COMPRESSION_GZIP},
        {"application/vnd.docker.image.rootfs.diff.tar", CHRUN_COMPRESSION_NONE},
        {"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", CHRUN_COMPRESSION_GZIP},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar", CHRUN_COMPRESSION_NONE},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", CHRUN_COMPRESSION_GZIP},
        {"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", CHRUN_COMPRESSION_ZSTD},
    };
    for (size_t i = 0; i < ARRAY_SIZE(table); i++)
        if (streq(mt, table[i].media_type)) {
            *ret = table[i].compression;
            return 0;
        }
    return chrun_err_set(err, CHRUN_E_UNSUPPORTED, "unknown layer media type '%.200s'", mt);
}

static const char *normalize_arch(const char *arch, const char **ret_variant)
{
    static const struct {
        const char *from, *to, *variant;
    } map[] = {
        {"x86_64", "amd64", ""},  {"x86-64", "amd64", ""}, {"aarch64", "arm64", ""},
        {"armv7l", "arm", "v7"},  {"armv6l", "arm", "v6"}, {"i386", "386", ""},
        {"i686", "386", ""},
    };
    for (size_t i = 0; i < ARRAY_SIZE(map); i++)
        if (streq(arch, map[i].from)) {
            if (ret_variant)
                *ret_variant = map[i].variant;
            return map[i].to;
        }
    if (ret_variant)
        *ret_variant = "";
    return arch;
}

void chrun_manifest_host_platform(char *buf, size_t size)
{
    struct utsname u;
    const char *variant = "";
    const char *arch = "amd64";
    if (uname(&u) == 0)
        arch = normalize_arch(u.machine, &variant);
    snprintf(buf, size, "linux/%s%s%s", arch, *variant ? "/" : "", variant);
}

static bool platform_matches(const struct chrun_descriptor *d, const char *os, const char *arch,
                             const char *variant)
{
    if (!streq(d->os, os) || !streq(normalize_arch(d->architecture, NULL), arch))
        return false;
    if (*variant == '\0')
        return true;
    /* arm64 images often omit the (only) variant v8. */
    return streq(d->variant, variant) || (d->variant[0] == '\0' && streq(variant, "v8"));
}

int chrun_manifest_select_platform(const struct chrun_manifest *m, const char *platform,
                                   struct chrun_descriptor *ret, struct chrun_err *err)
{
    char host[96], want[96], offered[512] = "";
    char *os, *arch, *variant;
    size_t used = 0;

    if (platform == NULL || *platform == '\0') {
        chrun_manifest_host_platform(host, sizeof(host));
        platform = host;
    }
    if (snprintf(want, sizeof(want), "%s", platform) >= (int) sizeof(want))
        return chrun_err_set(err, CHRUN_E_USAGE, "invalid platform '%.96s'", platform);
    os = want;
    arch = strchr(want, '/');
    if (arch == NULL || arch[1] == '\0')
        return chrun_err_set(err, CHRUN_E_USAGE, "invalid platform '%s': want os/arch[/variant]",
                             platform);
    *arch++ = '\0';
    variant = strchr(arch, '/');
    if (variant != NULL)
        *variant++ = '\0';
    if (*os == '\0' || *arch == '\0' ||
        (variant != NULL && (*variant == '\0' || strchr(variant, '/') != NULL)))
        return chrun_err_set(err, CHRUN_E_USAGE, "invalid platform '%s': want os/arch[/variant]",
                             platform);
    if (variant == NULL)
        variant = "";
    arch = (char *) normalize_arch(arch, NULL);
    for (size_t i = 0; i < m->n_manifests; i++)
        if (platform_matches(&m->manifests[i], os, arch, variant)) {
            *ret = m->manifests[i];
            return 0;
        }
    for (size_t i = 0; i < m->n_manifests && used < sizeof(offered) - 1; i++) {
        const struct chrun_descriptor *d = &m->manifests[i];
        int n = snprintf(offered + used, sizeof(offered) - used, "%s%s/%s%s%s", used ? ", " : "",
                         d->os[0] ? d->os : "?", d->architecture[0] ? d->architecture : "?",
                         d->variant[0] ? "/" : "", d->variant);
        if (n < 0)
            break;
        used += (size_t) n;
    }
    return chrun_err_set(err, CHRUN_E_NOTFOUND, "no manifest for platform %s (index offers: %s)",
                         platform, used ? offered : "nothing");
}

/* chrun_manifest_load_image's walk: down the chosen platform's entries to
 * the first image manifest. */
struct image_finder {
    struct chrun_store *st;
    const char *platform;
    struct chrun_manifest *m;
    struct chrun_digest digest;
    bool found;
};

static int find_read(void *ctx, const struct chrun_walk_node *n, char **ret_buf, size_t *ret_len,
                     struct chrun_err *err)
{
    struct image_finder *f = ctx;
    return chrun_store_read_blob(f->st, &n->desc->digest, CHRUN_MANIFEST_MAX, ret_buf, ret_len,
                                 err);
}

static int find_visit(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct image_finder *f = ctx;
    struct chrun_descriptor sel;
    if (n->kind != CHRUN_WALK_INDEX && n->kind != CHRUN_WALK_MANIFEST)
        return CHRUN_WALK_SKIP;
    if (n->parent == NULL)
        return CHRUN_WALK_CONTINUE;
    if (chrun_manifest_select_platform(n->parent->m, f->platform, &sel, err) < 0)
        return chrun_err_prefix(err, "index %s", n->parent->desc->digest.str);
    return streq(sel.digest.str, n->desc->digest.str) ? CHRUN_WALK_CONTINUE : CHRUN_WALK_SKIP;
}

static int find_leave(void *ctx, const struct chrun_walk_node *n, struct chrun_err *err)
{
    struct image_finder *f = ctx;
    if (n->m->is_index)
        return 0;
    if (chrun_manifest_parse(f->m, n->buf, n->len, n->desc->media_type, err) < 0)
        return -1;
    f->digest = n->desc->digest;
    f->found = true;
    return CHRUN_WALK_STOP;
}

int chrun_manifest_load_image(struct chrun_manifest *m, struct chrun_store *st,
                              const struct chrun_store_image *img, const char *platform,
                              struct chrun_digest *ret_digest, struct chrun_err *err)
{
    static const struct chrun_walk_ops ops = {find_read, find_visit, find_leave};
    struct image_finder f = {.st = st, .platform = platform, .m = m};
    struct chrun_descriptor root = {.digest = img->digest, .size = -1}; /* as recorded, unchecked */
    struct chrun_walk w;
    int rc;

    snprintf(root.media_type, sizeof(root.media_type), "%s", img->media_type);
    chrun_walk_init(&w, &ops, &f, 0);
    rc = chrun_walk_from(&w, &root, err);
    chrun_walk_release(&w);
    if (rc < 0) {
        if (f.found)
            chrun_manifest_release(m);
        return -1;
    }
    if (!f.found) /* an index whose chosen entry is not an image manifest */
        return chrun_err_set(err, CHRUN_E_INPUT, "image %s: no image manifest for the platform",
                             img->digest.str);
    if (ret_digest != NULL)
        *ret_digest = f.digest;
    return 0;
}
