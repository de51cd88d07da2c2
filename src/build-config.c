/* chrun-build: the image config being built (checked JSON edits, history,
 * layers), the metadata instructions (ENV, LABEL, ARG, EXPOSE, VOLUME, CMD,
 * ENTRYPOINT, HEALTHCHECK, USER, SHELL, ONBUILD, STOPSIGNAL, MAINTAINER) and
 * the image config and manifest writer. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "build-internal.h"

/* PARENT[KEY] as an object (an array with ARRAY), created when absent or of
 * another type; borrowed from PARENT. NULL with ERR. */
static json_t *member(json_t *parent, const char *key, bool array, struct chrun_err *err)
{
    json_t *m = json_object_get(parent, key);
    if (array ? json_is_array(m) : json_is_object(m))
        return m;
    m = array ? json_array() : json_object();
    if (chrun_json_set(parent, key, m, err) < 0)
        return NULL;
    return m;
}

/* OBJ[KEY] = the string S; WHAT names S when it is not UTF-8. */
int build_set_str(json_t *obj, const char *key, const char *s, const char *what,
                  struct chrun_err *err)
{
    json_t *v = chrun_json_str(s, what, err);
    return v ? chrun_json_set(obj, key, v, err) : -1;
}

/* Append the string S to ARR; WHAT names S when it is not UTF-8. */
int build_append_str(json_t *arr, const char *s, const char *what, struct chrun_err *err)
{
    json_t *v = chrun_json_str(s, what, err);
    return v ? chrun_json_append(arr, v, what, err) : -1;
}

/* 0 if S can be a JSON object key, else -1 with ERR naming WHAT. */
static int check_key(const char *s, const char *what, struct chrun_err *err)
{
    json_t *v = chrun_json_str(s, what, err);
    json_decref(v);
    return v ? 0 : -1;
}

/* KEY of the stage's config, or NULL (a read: nothing is created). */
json_t *build_cfg_get(struct stage *s, const char *key)
{
    return json_object_get(json_object_get(s->image, "config"), key);
}

/* The stage's config object ("config" of the image), or NULL with ERR. */
json_t *build_cfg(struct stage *s, struct chrun_err *err)
{
    return member(s->image, "config", false, err);
}

/* ---- config bookkeeping ------------------------------------------------------ */

int build_add_history(struct builder *b, struct stage *s, const char *created_by, bool empty,
                      struct chrun_err *err)
{
    json_t *h = member(s->image, "history", true, err);
    cleanup_json json_t *e = json_object();
    if (h == NULL)
        return -1;
    if (e == NULL)
        return chrun_err_sys(err, ENOMEM, "history");
    if (build_set_str(e, "created", b->created, "history", err) < 0 ||
        build_set_str(e, "created_by", created_by, "history", err) < 0 ||
        (empty && chrun_json_set(e, "empty_layer", json_true(), err) < 0))
        return -1;
    return chrun_json_append(h, json_incref(e), "history", err);
}

json_t *build_diff_ids(struct stage *s)
{
    return json_object_get(json_object_get(s->image, "rootfs"), "diff_ids");
}

int build_add_layer(struct stage *s, const char *media_type, const struct chrun_digest *digest,
                    int64_t size, const struct chrun_digest *diff_id, struct chrun_err *err)
{
    json_t *d = json_pack("{s:s, s:s, s:I}", "mediaType", media_type, "digest", digest->str,
                          "size", (json_int_t) size);
    json_t *ids = build_diff_ids(s);
    if (!json_is_array(ids)) {
        json_decref(d);
        return chrun_err_set(err, CHRUN_E_INPUT, "build config: no rootfs.diff_ids");
    }
    if (chrun_json_append(s->layers, d, "manifest layers", err) < 0)
        return -1;
    return build_append_str(ids, diff_id->str, "rootfs.diff_ids", err);
}

/* ---- metadata -------------------------------------------------------------- */

static int set_env(struct stage *s, const char *key, const char *value, struct chrun_err *err)
{
    json_t *config = build_cfg(s, err), *env = config ? member(config, "Env", true, err) : NULL, *v;
    cleanup_free char *kv = NULL;
    size_t i, len = strlen(key);
    if (env == NULL)
        return -1;
    if (asprintf(&kv, "%s=%s", key, value) < 0)
        return chrun_err_sys(err, ENOMEM, "build");
    if ((v = chrun_json_str(kv, "ENV", err)) == NULL)
        return -1;
    for (i = 0; i < json_array_size(env); i++) {
        const char *str = json_string_value(json_array_get(env, i));
        if (str && strncmp(str, key, len) == 0 && str[len] == '=')
            return json_array_set_new(env, i, v) < 0 ? chrun_err_sys(err, ENOMEM, "ENV") : 0;
    }
    return chrun_json_append(env, v, "ENV", err);
}

/* LABEL KEY=VALUE (WHAT names where it came from: LABEL or --label). */
static int set_label(struct stage *s, const char *key, const char *value, const char *what,
                     struct chrun_err *err)
{
    json_t *config = build_cfg(s, err), *labels;
    if (config == NULL || (labels = member(config, "Labels", false, err)) == NULL ||
        check_key(key, what, err) < 0)
        return -1;
    return build_set_str(labels, key, value, what, err);
}

/* ARG NAME[=default] with Docker's scoping: before the first FROM it is a
 * global ARG (usable in FROM lines); in a stage, a --build-arg wins, then
 * the default, then, for a bare NAME, the global ARG's value. */
static int set_arg(struct builder *b, const char *key, const char *value, struct chrun_err *err)
{
    const char *given = build_arg(b, key);
    struct var *meta = build_vars_find(&b->meta, key);
    if (b->cur == NULL) {
        if (given == NULL && value == NULL && meta != NULL)
            return 0; /* a bare global ARG keeps a predefined value */
        return build_vars_set(&b->meta, key, given ? given : value, err);
    }
    if (given == NULL && value == NULL && meta != NULL)
        value = meta->value;
    return build_vars_set(&b->cur->args, key, given ? given : value, err);
}

/* ENV, LABEL, ARG: KEY=VALUE pairs after substitution. */
static int do_pairs(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                    struct chrun_err *err)
{
    char **w = NULL, **keys = NULL, **values = NULL;
    size_t n = 0, np = 0;
    int rc = build_words(b, in->args, true, &w, &n, err);
    if (rc == 0)
        rc = chrun_dockerfile_pairs(in->kind, w, n, &keys, &values, &np, err);
    for (size_t i = 0; rc == 0 && i < np; i++) {
        if (in->kind == CHRUN_DF_ENV)
            rc = set_env(s, keys[i], values[i], err);
        else if (in->kind == CHRUN_DF_LABEL)
            rc = set_label(s, keys[i], values[i], "LABEL", err);
        else
            rc = set_arg(b, keys[i], values[i], err);
    }
    chrun_dockerfile_pairs_free(keys, values, np);
    chrun_dockerfile_words_free(w);
    return rc;
}

static bool valid_port(const char *p)
{
    size_t digits = strspn(p, "0123456789");
    const char *proto = p + digits;
    return digits > 0 && digits <= 5 && atoi(p) <= 65535 &&
           (*proto == '\0' || streq(proto, "/tcp") || streq(proto, "/udp") ||
            streq(proto, "/sctp"));
}

/* EXPOSE and VOLUME: a set of names in the config. */
static int do_set(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                  struct chrun_err *err)
{
    const char *key = in->kind == CHRUN_DF_EXPOSE ? "ExposedPorts" : "Volumes";
    json_t *config = build_cfg(s, err), *set = config ? member(config, key, false, err) : NULL;
    char **w = NULL;
    size_t n = 0;
    int rc = 0;
    if (set == NULL || (in->exec == NULL && build_words(b, in->args, true, &w, &n, err) < 0))
        return -1;
    for (size_t i = 0; rc == 0 && i < (w ? n : in->n_exec); i++) {
        const char *item = w ? w[i] : in->exec[i];
        char port[64];
        if (in->kind == CHRUN_DF_EXPOSE && !valid_port(item))
            rc = chrun_err_set(err, CHRUN_E_INPUT, "EXPOSE '%s' is not PORT[/tcp|udp|sctp]",
                               item);
        else if (in->kind == CHRUN_DF_EXPOSE)
            snprintf(port, sizeof(port), "%s%s", item, strchr(item, '/') ? "" : "/tcp");
        if (rc == 0)
            rc = check_key(item, in->keyword, err);
        if (rc == 0)
            rc = chrun_json_set(set, in->kind == CHRUN_DF_EXPOSE ? port : item, json_object(),
                                err);
    }
    chrun_dockerfile_words_free(w);
    return rc;
}

/* A command of CMD, ENTRYPOINT or HEALTHCHECK CMD: the exec form, or the
 * shell (SHELL's, else /bin/sh -c) with the text. */
static json_t *command_json(struct stage *s, const struct chrun_df_instr *in, bool healthcheck,
                            struct chrun_err *err)
{
    cleanup_json json_t *arr = json_array();
    json_t *sh = build_cfg_get(s, "Shell");
    size_t i;
    int rc = 0;
    if (arr == NULL) {
        chrun_err_sys(err, ENOMEM, "%s", in->keyword);
        return NULL;
    }
    if (healthcheck)
        rc = build_append_str(arr, in->exec ? "CMD" : "CMD-SHELL", in->keyword, err);
    if (in->exec != NULL) {
        for (i = 0; rc == 0 && i < in->n_exec; i++)
            rc = build_append_str(arr, in->exec[i], in->keyword, err);
    } else if (!healthcheck && json_is_array(sh) && json_array_size(sh) > 0) {
        for (i = 0; rc == 0 && i < json_array_size(sh); i++)
            rc = chrun_json_append(arr, json_incref(json_array_get(sh, i)), in->keyword, err);
    } else if (!healthcheck) {
        rc = build_append_str(arr, "/bin/sh", in->keyword, err);
        if (rc == 0)
            rc = build_append_str(arr, "-c", in->keyword, err);
    }
    if (rc == 0 && in->exec == NULL)
        rc = build_append_str(arr, in->args, in->keyword, err);
    return rc == 0 ? json_incref(arr) : NULL;
}

static int do_command(struct stage *s, const struct chrun_df_instr *in, struct chrun_err *err)
{
    json_t *config = build_cfg(s, err), *arr = config ? command_json(s, in, false, err) : NULL;
    if (arr == NULL)
        return -1;
    if (in->kind == CHRUN_DF_CMD) {
        s->seen_cmd = true;
        return chrun_json_set(config, "Cmd", arr, err);
    }
    /* Docker: a new ENTRYPOINT drops the base image's CMD */
    if (!s->seen_cmd)
        json_object_del(config, "Cmd");
    return chrun_json_set(config, "Entrypoint", arr, err);
}

/* A Go duration ("1m30s", "500ms", "2h") in nanoseconds; -1 if not one. */
static int64_t parse_duration(const char *s)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    double total = 0;
    if (*s == '\0')
        return -1;
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        size_t best = 0, ulen = 0;
        if (end == s || v < 0)
            return -1;
        for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
            size_t l = strlen(units[i].unit);
            if (strncmp(end, units[i].unit, l) == 0 && l > ulen) {
                best = i;
                ulen = l;
            }
        }
        if (ulen == 0)
            return -1;
        total += v * units[best].ns;
        s = end + ulen;
    }
    return total > 9e18 ? -1 : (int64_t) total;
}

static int do_healthcheck(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                          struct chrun_err *err)
{
    static const struct {
        const char *flag, *key;
    } timings[] = {{"interval", "Interval"},
                   {"timeout", "Timeout"},
                   {"start-period", "StartPeriod"},
                   {"start-interval", "StartInterval"}};
    json_t *config = build_cfg(s, err), *hc, *test;
    const char *v;
    if (config == NULL || chrun_json_set(config, "Healthcheck", json_object(), err) < 0)
        return -1;
    hc = json_object_get(config, "Healthcheck");
    if (in->none)
        return chrun_json_set(hc, "Test", json_pack("[s]", "NONE"), err);
    if ((test = command_json(s, in, true, err)) == NULL ||
        chrun_json_set(hc, "Test", test, err) < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_SIZE(timings); i++) {
        cleanup_free char *w = NULL;
        int64_t ns;
        if ((v = chrun_df_instr_flag(in, timings[i].flag)) == NULL)
            continue;
        if ((w = build_word1(b, v, err)) == NULL)
            return -1;
        ns = parse_duration(w);
        if (ns < 0 || (ns > 0 && ns < 1000000))
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "HEALTHCHECK --%s=%s: not a duration of at least 1ms", timings[i].flag,
                                 w);
        if (ns > 0 && chrun_json_set(hc, timings[i].key, json_integer(ns), err) < 0)
            return -1;
    }
    if ((v = chrun_df_instr_flag(in, "retries")) != NULL) {
        cleanup_free char *w = build_word1(b, v, err);
        char *end;
        long r;
        if (w == NULL)
            return -1;
        errno = 0;
        r = strtol(w, &end, 10);
        if (*w == '\0' || *end != '\0' || errno != 0 || r < 0 || r > 0x7fffffff)
            return chrun_err_set(err, CHRUN_E_INPUT, "HEALTHCHECK --retries=%s: not a count", w);
        if (r > 0 && chrun_json_set(hc, "Retries", json_integer(r), err) < 0)
            return -1;
    }
    return 0;
}

static bool valid_signal(const char *s)
{
    static const char *const names[] = {
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS", "RTMIN", "RTMAX"};
    if (build_all_digits(s))
        return strlen(s) <= 2 && atoi(s) >= 1 && atoi(s) <= 64;
    if (strncasecmp(s, "SIG", 3) == 0)
        s += 3;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (strcasecmp(s, names[i]) == 0)
            return true;
    /* SIGRTMIN+3 and the like */
    return (strncasecmp(s, "RTMIN+", 6) == 0 || strncasecmp(s, "RTMAX-", 6) == 0) &&
           build_all_digits(s + 6);
}

int build_do_metadata(struct builder *b, struct stage *s, const struct chrun_df_instr *in,
                      struct chrun_err *err)
{
    cleanup_free char *w = NULL;
    json_t *arr, *config;
    switch (in->kind) {
    case CHRUN_DF_USER:
    case CHRUN_DF_STOPSIGNAL:
    case CHRUN_DF_MAINTAINER:
        if ((w = build_word1(b, in->args, err)) == NULL)
            return -1;
        if (in->kind == CHRUN_DF_MAINTAINER)
            return build_set_str(s->image, "author", w, in->keyword, err);
        if ((config = build_cfg(s, err)) == NULL)
            return -1;
        if (in->kind == CHRUN_DF_USER)
            return build_set_str(config, "User", w, in->keyword, err);
        if (!valid_signal(w))
            return chrun_err_set(err, CHRUN_E_INPUT, "STOPSIGNAL '%s' is not a signal", w);
        return build_set_str(config, "StopSignal", w, in->keyword, err);
    case CHRUN_DF_SHELL:
        if ((config = build_cfg(s, err)) == NULL ||
            chrun_json_set(config, "Shell", json_array(), err) < 0)
            return -1;
        arr = json_object_get(config, "Shell");
        for (size_t i = 0; i < in->n_exec; i++)
            if (build_append_str(arr, in->exec[i], in->keyword, err) < 0)
                return -1;
        return 0;
    case CHRUN_DF_ONBUILD:
        if ((config = build_cfg(s, err)) == NULL ||
            (arr = member(config, "OnBuild", true, err)) == NULL)
            return -1;
        /* Docker records the trigger with its keyword in capitals */
        {
            size_t klen = strcspn(in->args, " \t");
            cleanup_free char *t = strdup(in->args);
            if (t == NULL)
                return chrun_err_sys(err, ENOMEM, "build");
            for (size_t i = 0; i < klen; i++)
                t[i] = (char) toupper((unsigned char) t[i]);
            return build_append_str(arr, t, in->keyword, err);
        }
    case CHRUN_DF_HEALTHCHECK: return do_healthcheck(b, s, in, err);
    case CHRUN_DF_CMD:
    case CHRUN_DF_ENTRYPOINT: return do_command(s, in, err);
    case CHRUN_DF_EXPOSE:
    case CHRUN_DF_VOLUME: return do_set(b, s, in, err);
    default: return do_pairs(b, s, in, err);
    }
}

/* ---- image config and manifest --------------------------------------------------- */

int build_finish_image(struct builder *b, struct stage *s, struct chrun_digest *ret,
                       struct chrun_err *err)
{
    char platform[96], *arch, *variant;
    cleanup_free char *cfg_text = NULL, *man_text = NULL;
    cleanup_json json_t *man = NULL;
    struct chrun_digest cfg_digest;
    snprintf(platform, sizeof(platform), "%s", b->platform);
    arch = strchr(platform, '/');
    *arch++ = '\0';
    variant = strchr(arch, '/');
    if (variant != NULL)
        *variant++ = '\0';
    for (size_t i = 0; i < b->opts->n_labels; i++) {
        const char *l = b->opts->labels[i], *eq = strchr(l, '=');
        cleanup_free char *key = eq ? strndup(l, (size_t) (eq - l)) : NULL;
        if (key == NULL)
            return chrun_err_sys(err, ENOMEM, "--label");
        if (set_label(s, key, eq + 1, "--label", err) < 0)
            return -1;
    }
    if (build_set_str(s->image, "created", b->created, "created", err) < 0 ||
        build_set_str(s->image, "os", platform, "--platform", err) < 0 ||
        build_set_str(s->image, "architecture", arch, "--platform", err) < 0 ||
        (variant != NULL && build_set_str(s->image, "variant", variant, "--platform", err) < 0))
        return -1;
    /* sorted keys: the same image gives the same bytes */
    cfg_text = json_dumps(s->image, JSON_COMPACT | JSON_SORT_KEYS);
    if (cfg_text == NULL)
        return chrun_err_sys(err, ENOMEM, "image config");
    if (chrun_store_put_blob(b->st, cfg_text, strlen(cfg_text), NULL, &cfg_digest, err) < 0)
        return chrun_err_prefix(err, "image config");
    man = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2, "mediaType",
                    CHRUN_MT_OCI_MANIFEST, "config", "mediaType", CHRUN_MT_OCI_CONFIG, "digest",
                    cfg_digest.str, "size", (json_int_t) strlen(cfg_text), "layers", s->layers);
    man_text = man ? json_dumps(man, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (man_text == NULL)
        return chrun_err_sys(err, ENOMEM, "manifest");
    if (chrun_store_put_blob(b->st, man_text, strlen(man_text), NULL, ret, err) < 0)
        return chrun_err_prefix(err, "manifest");
    for (size_t i = 0; i < b->opts->n_tags; i++) {
        struct chrun_ref r;
        char full[CHRUN_REF_STR_MAX];
        if (chrun_ref_parse(&r, b->opts->tags[i], err) < 0 ||
            chrun_store_tag(b->st, chrun_ref_format(&r, full, sizeof(full)), CHRUN_MT_OCI_MANIFEST,
                            ret, (int64_t) strlen(man_text), err) < 0)
            return chrun_err_prefix(err, "tag '%s'", b->opts->tags[i]);
    }
    return 0;
}
