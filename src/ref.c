#include "chrun/ref.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* component := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)* */
static bool path_component_valid(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
        return false;
    while (i < len) {
        if (is_lower_alnum(s[i])) {
            i++;
            continue;
        }
        size_t start = i;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < len && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < len && s[i] == '-')
                i++;
        } else {
            return false;
        }
        if (i >= len || !is_lower_alnum(s[i]) || i == start)
            return false;
    }
    return true;
}

static bool path_valid(const char *path)
{
    const char *p = path;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t) (slash - p) : strlen(p);
        if (!path_component_valid(p, len))
            return false;
        if (!slash)
            break;
        p = slash + 1;
        if (*p == '\0')
            return false;
    }
    return *path != '\0';
}

/* domain := label(.label)* (:port)?, label := [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?,
 * or a bracketed IPv6 address with optional port. */
static bool domain_valid(const char *d)
{
    const char *colon;
    const char *p = d;
    if (*d == '[') {
        const char *end = strchr(d, ']');
        if (end == NULL || end == d + 1)
            return false;
        for (p = d + 1; p < end; p++)
            if (!isxdigit((unsigned char) *p) && *p != ':' && *p != '.')
                return false;
        colon = end[1] == ':' ? end + 1 : NULL;
        if (!colon && end[1] != '\0')
            return false;
    } else {
        colon = strchr(d, ':');
        size_t hostlen = colon ? (size_t) (colon - d) : strlen(d);
        size_t label = 0;
        if (hostlen == 0)
            return false;
        for (size_t i = 0; i < hostlen; i++) {
            char c = d[i];
            if (c == '.') {
                if (label == 0 || d[i - 1] == '-')
                    return false;
                label = 0;
            } else if (isalnum((unsigned char) c) || (c == '-' && label > 0)) {
                label++;
            } else {
                return false;
            }
        }
        if (label == 0 || d[hostlen - 1] == '-')
            return false;
    }
    if (colon) {
        const char *port = colon + 1;
        if (*port == '\0' || strlen(port) > 5)
            return false;
        for (p = port; *p; p++)
            if (!isdigit((unsigned char) *p))
                return false;
    }
    return true;
}

static bool tag_valid(const char *t)
{
    size_t len = strlen(t);
    if (len == 0 || len > CHRUN_REF_TAG_MAX)
        return false;
    if (!(isalnum((unsigned char) t[0]) || t[0] == '_'))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!(isalnum((unsigned char) t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
            return false;
    return true;
}

static bool is_64_hex(const char *s)
{
    size_t i;
    for (i = 0; s[i]; i++)
        if (!isxdigit((unsigned char) s[i]) || isupper((unsigned char) s[i]))
            return false;
    return i == 64;
}

static int bad_ref(struct chrun_err *err, const char *s, const char *why)
{
    return chrun_err_set(err, CHRUN_E_INPUT, "invalid reference '%.300s': %s", s, why);
}

/* Is the first path component of a name a registry host? (docker's rule) */
static bool first_component_is_host(const char *name, size_t len)
{
    if (memchr(name, '.', len) || memchr(name, ':', len))
        return true;
    if (len == 9 && strncmp(name, "localhost", 9) == 0)
        return true;
    for (size_t i = 0; i < len; i++)
        if (isupper((unsigned char) name[i]))
            return true;
    return false;
}

/* Split NAME (no tag or digest) into domain and path with docker.io defaults. */
static int split_name(struct chrun_ref *r, const char *s, const char *name, struct chrun_err *err)
{
    const char *slash = strchr(name, '/');
    const char *rest = name;
    int n;

    if (slash != NULL && first_component_is_host(name, (size_t) (slash - name))) {
        size_t dlen = (size_t) (slash - name);
        if (dlen > CHRUN_REF_NAME_MAX)
            return bad_ref(err, s, "name too long");
        memcpy(r->domain, name, dlen);
        r->domain[dlen] = '\0';
        rest = slash + 1;
        if (streq(r->domain, "index.docker.io"))
            strcpy(r->domain, "docker.io");
    } else {
        strcpy(r->domain, "docker.io");
    }
    if (!domain_valid(r->domain))
        return bad_ref(err, s, "invalid registry host");
    if (streq(r->domain, "docker.io") && strchr(rest, '/') == NULL)
        n = snprintf(r->path, sizeof(r->path), "library/%s", rest);
    else
        n = snprintf(r->path, sizeof(r->path), "%s", rest);
    if (n < 0 || (size_t) n >= sizeof(r->path) ||
        strlen(r->domain) + 1 + strlen(r->path) > CHRUN_REF_NAME_MAX)
        return bad_ref(err, s, "name too long");
    for (const char *p = rest; *p; p++)
        if (isupper((unsigned char) *p))
            return bad_ref(err, s, "repository name must be lowercase");
    if (!path_valid(r->path))
        return bad_ref(err, s, "invalid repository name");
    return 0;
}

int chrun_ref_parse(struct chrun_ref *ret, const char *s, struct chrun_err *err)
{
    char buf[CHRUN_REF_STR_MAX + 1];
    char *at, *colon, *slash;
    struct chrun_ref r;

    memset(&r, 0, sizeof(r));
    if (s == NULL || *s == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "invalid reference '': empty");
    if (strlen(s) > CHRUN_REF_STR_MAX)
        return bad_ref(err, s, "too long");
    strcpy(buf, s);
    at = strchr(buf, '@');
    if (at != NULL) {
        *at = '\0';
        if (!chrun_digest_is_valid(at + 1))
            return bad_ref(err, s, "invalid digest");
        strcpy(r.digest, at + 1);
    }
    slash = strrchr(buf, '/');
    colon = strrchr(buf, ':');
    if (colon != NULL && (slash == NULL || colon > slash)) {
        *colon = '\0';
        if (!tag_valid(colon + 1))
            return bad_ref(err, s, "invalid tag");
        strcpy(r.tag, colon + 1);
    }
    if (buf[0] == '\0')
        return bad_ref(err, s, "missing name");
    if (is_64_hex(buf))
        return bad_ref(err, s, "repository name must not be 64-byte hexadecimal");
    if (split_name(&r, s, buf, err) < 0)
        return -1;
    if (r.tag[0] == '\0' && r.digest[0] == '\0')
        strcpy(r.tag, "latest");
    *ret = r;
    return 0;
}

char *chrun_ref_repository(const struct chrun_ref *r, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", r->domain, r->path);
    return buf;
}

char *chrun_ref_format(const struct chrun_ref *r, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s%s%s%s%s", r->domain, r->path, r->tag[0] ? ":" : "", r->tag,
             r->digest[0] ? "@" : "", r->digest);
    return buf;
}

const char *chrun_ref_registry_host(const struct chrun_ref *r)
{
    if (streq(r->domain, "docker.io"))
        return "registry-1.docker.io";
    return r->domain;
}
