/* Attachments (signatures, attestations, SBOMs, referrers) recorded in
 * index.json beside the images they belong to. See attach.h. */
#include "chrun/attach.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chrun/manifest.h"
#include "cleanup.h"
#include "util.h"

static json_t *entry_annotation(json_t *entry, const char *key)
{
    return json_object_get(json_object_get(entry, "annotations"), key);
}

bool chrun_attach_entry_is_attachment(json_t *entry)
{
    return entry_annotation(entry, CHRUN_ANNOTATION_SUBJECT) != NULL;
}

/* SUFFIX's kind, or -1 if REF does not end in "sha256-<hex>" plus a suffix. */
static int kind_of_ref(const char *ref)
{
    static const struct {
        const char *suffix;
        enum chrun_attach_kind kind;
    } kinds[] = {
        {CHRUN_ATTACH_SUFFIX_SIG, CHRUN_ATTACH_SIG},
        {CHRUN_ATTACH_SUFFIX_ATT, CHRUN_ATTACH_ATT},
        {CHRUN_ATTACH_SUFFIX_SBOM, CHRUN_ATTACH_SBOM},
    };
    size_t len = strlen(ref);
    for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
        size_t sl = strlen(kinds[i].suffix);
        if (len > sl && streq(ref + len - sl, kinds[i].suffix))
            return (int) kinds[i].kind;
    }
    return -1;
}

/* True if REF (parsed into R) is "<repo>:sha256-<hex of SUBJECT><suffix>". */
static bool is_cosign_tag(const char *ref, const struct chrun_digest *subject,
                          struct chrun_ref *r)
{
    static const char *const suffixes[] = {CHRUN_ATTACH_SUFFIX_SIG, CHRUN_ATTACH_SUFFIX_ATT,
                                           CHRUN_ATTACH_SUFFIX_SBOM};
    struct chrun_err ignored = CHRUN_ERR_INIT;
    char want[CHRUN_REF_TAG_MAX + 1];
    if (chrun_ref_parse(r, ref, &ignored) < 0 || r->digest[0])
        return false;
    for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++)
        if (chrun_attach_tag_name(NULL, subject, suffixes[i], want, sizeof(want), &ignored) == 0 &&
            streq(r->tag, want))
            return true;
    return false;
}

int chrun_attach_from_entry(json_t *entry, struct chrun_attachment *ret, struct chrun_err *err)
{
    const char *subject = json_string_value(entry_annotation(entry, CHRUN_ANNOTATION_SUBJECT));
    const char *ref = json_string_value(entry_annotation(entry, CHRUN_ANNOTATION_REF_NAME));
    const char *digest = json_string_value(json_object_get(entry, "digest"));
    const char *mt = json_string_value(json_object_get(entry, "mediaType"));
    const char *at = json_string_value(json_object_get(entry, "artifactType"));
    json_t *size = json_object_get(entry, "size");
    struct chrun_ref r;

    memset(ret, 0, sizeof(*ret));
    if (subject == NULL || chrun_digest_parse(&ret->subject, subject, err) < 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "attachment: invalid %s annotation",
                             CHRUN_ANNOTATION_SUBJECT);
    if (digest == NULL || chrun_digest_parse(&ret->digest, digest, err) < 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "attachment of %s: invalid digest",
                             ret->subject.str);
    if (!json_is_integer(size) || json_integer_value(size) < 0 || mt == NULL ||
        !chrun_manifest_type_is_known(mt) || chrun_manifest_type_is_index(mt) ||
        (at != NULL && !chrun_manifest_media_type_valid(at)))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "attachment %s: size, media type or artifact type invalid",
                             ret->digest.str);
    /* SPEC "Bad input": a name must be the tag cosign gives an attachment
     * of this subject, so a hostile archive cannot shadow an image's name. */
    if (ref != NULL && !is_cosign_tag(ref, &ret->subject, &r))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "attachment %s: name is not a cosign tag of its subject %s",
                             ret->digest.str, ret->subject.str);
    ret->size = json_integer_value(size);
    snprintf(ret->media_type, sizeof(ret->media_type), "%s", mt);
    snprintf(ret->artifact_type, sizeof(ret->artifact_type), "%s", at ? at : "");
    if (ref != NULL)
        chrun_ref_format(&r, ret->ref, sizeof(ret->ref));
    return 0;
}

json_t *chrun_attach_to_entry(const struct chrun_attachment *a)
{
    json_t *e = json_pack("{s:s, s:s, s:I, s:{s:s}}", "mediaType", a->media_type, "digest",
                          a->digest.str, "size", (json_int_t) a->size, "annotations",
                          CHRUN_ANNOTATION_SUBJECT, a->subject.str);
    if (e == NULL)
        return NULL;
    if ((a->artifact_type[0] &&
         json_object_set_new(e, "artifactType", json_string(a->artifact_type)) < 0) ||
        (a->ref[0] && json_object_set_new(json_object_get(e, "annotations"),
                                          CHRUN_ANNOTATION_REF_NAME, json_string(a->ref)) < 0)) {
        json_decref(e);
        return NULL;
    }
    return e;
}

enum chrun_attach_kind chrun_attach_kind(const struct chrun_attachment *a)
{
    int k = a->ref[0] ? kind_of_ref(a->ref) : -1;
    return k < 0 ? CHRUN_ATTACH_REFERRER : (enum chrun_attach_kind) k;
}

const char *chrun_attach_kind_name(enum chrun_attach_kind kind)
{
    switch (kind) {
    case CHRUN_ATTACH_SIG: return "signature";
    case CHRUN_ATTACH_ATT: return "attestation";
    case CHRUN_ATTACH_SBOM: return "sbom";
    case CHRUN_ATTACH_REFERRER: break;
    }
    return "referrer";
}

int chrun_attach_tag_name(const char *repo, const struct chrun_digest *subject,
                          const char *suffix, char *buf, size_t size, struct chrun_err *err)
{
    int n = snprintf(buf, size, "%s%ssha256-%s%s", repo ? repo : "", repo ? ":" : "",
                     chrun_digest_hex(subject), suffix);
    if (n < 0 || (size_t) n >= size)
        return chrun_err_set(err, CHRUN_E_INPUT, "attachment name for '%.200s' is too long",
                             repo ? repo : "");
    return 0;
}

static bool same_entry(const struct chrun_attachment *a, const struct chrun_attachment *b)
{
    if (a->ref[0] || b->ref[0])
        return streq(a->ref, b->ref);
    return streq(a->subject.str, b->subject.str) && streq(a->digest.str, b->digest.str);
}

struct add {
    const struct chrun_attachment *a;
    bool check;                      /* replace only what PREV says is there */
    const struct chrun_digest *prev; /* NULL: nothing */
};

static int add_entry(json_t *manifests, void *data, struct chrun_err *err)
{
    const struct add *add = data;
    const struct chrun_attachment *a = add->a;
    bool matched = false;
    json_t *entry, *desc;
    size_t i;

    json_array_foreach (manifests, i, entry) {
        struct chrun_attachment old;
        struct chrun_err ignored = CHRUN_ERR_INIT;
        if (!chrun_attach_entry_is_attachment(entry) ||
            chrun_attach_from_entry(entry, &old, &ignored) < 0 || !same_entry(&old, a))
            continue;
        matched = true;
        if (add->check && (add->prev == NULL || !streq(old.digest.str, add->prev->str)))
            return chrun_err_set(err, CHRUN_E_EXISTS, "'%s' changed meanwhile", a->ref);
        if (streq(old.digest.str, a->digest.str) && streq(old.subject.str, a->subject.str) &&
            streq(old.media_type, a->media_type))
            return 0; /* re-running a step is a no-op */
        json_array_remove(manifests, i);
        break;
    }
    if (add->check && !matched && add->prev != NULL)
        return chrun_err_set(err, CHRUN_E_EXISTS, "'%s' changed meanwhile", a->ref);
    desc = chrun_attach_to_entry(a);
    if (desc == NULL || json_array_append_new(manifests, desc) < 0)
        return chrun_err_sys(err, ENOMEM, "attach %s", a->digest.str);
    return 1;
}

static int record(struct chrun_store *st, struct add *add, struct chrun_err *err)
{
    if (chrun_store_edit_index(st, add_entry, add, err) < 0)
        return chrun_err_prefix(err, "record attachment %s of %s", add->a->digest.str,
                                add->a->subject.str);
    return 0;
}

int chrun_attach_add(struct chrun_store *st, const struct chrun_attachment *a,
                     struct chrun_err *err)
{
    struct add add = {a, false, NULL};
    return record(st, &add, err);
}

int chrun_attach_replace(struct chrun_store *st, const struct chrun_attachment *a,
                         const struct chrun_digest *prev, struct chrun_err *err)
{
    struct add add = {a, true, prev};
    return record(st, &add, err);
}

int chrun_attach_list(struct chrun_store *st, const struct chrun_digest *subject,
                      struct chrun_attachment **ret, size_t *ret_n, struct chrun_err *err)
{
    cleanup_json json_t *manifests = NULL;
    cleanup_free struct chrun_attachment *list = NULL;
    json_t *entry;
    size_t i, n = 0;

    if (chrun_store_read_index(st, &manifests, err) < 0)
        return -1;
    list = calloc(json_array_size(manifests) + 1, sizeof(*list));
    if (list == NULL)
        return chrun_err_sys(err, ENOMEM, "list attachments");
    json_array_foreach (manifests, i, entry) {
        struct chrun_err ignored = CHRUN_ERR_INIT;
        /* an entry this version cannot read is skipped, as chrun_store_list does */
        if (!chrun_attach_entry_is_attachment(entry) ||
            chrun_attach_from_entry(entry, &list[n], &ignored) < 0)
            continue;
        if (subject == NULL || streq(list[n].subject.str, subject->str))
            n++;
    }
    *ret = take_ptr(list);
    *ret_n = n;
    return 0;
}

struct prune {
    bool (*keep)(const struct chrun_digest *subject, void *data);
    void *data;
    bool dry_run;
    size_t removed;
};

static int prune_entries(json_t *manifests, void *data, struct chrun_err *err)
{
    struct prune *p = data;
    size_t i = 0;
    (void) err;
    while (i < json_array_size(manifests)) {
        json_t *entry = json_array_get(manifests, i);
        const char *s = json_string_value(entry_annotation(entry, CHRUN_ANNOTATION_SUBJECT));
        struct chrun_digest subject;
        if (!chrun_attach_entry_is_attachment(entry) ||
            (s != NULL && chrun_digest_is_valid(s) &&
             (snprintf(subject.str, sizeof(subject.str), "%s", s), p->keep(&subject, p->data)))) {
            i++;
            continue;
        }
        p->removed++;
        if (p->dry_run)
            i++;
        else
            json_array_remove(manifests, i);
    }
    return p->removed > 0 && !p->dry_run ? 1 : 0;
}

int chrun_attach_prune(struct chrun_store *st,
                       bool (*keep)(const struct chrun_digest *subject, void *data), void *data,
                       bool dry_run, size_t *ret_n, struct chrun_err *err)
{
    struct prune p = {keep, data, dry_run, 0};
    if (chrun_store_edit_index(st, prune_entries, &p, err) < 0)
        return chrun_err_prefix(err, "prune attachments");
    if (ret_n != NULL)
        *ret_n = p.removed;
    return 0;
}
