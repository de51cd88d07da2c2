#include "chrun/auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "chrun/io.h"
#include "chrun/log.h"
#include "chrun/process.h"
#include "cleanup.h"
#include "json.h"
#include "util.h"


/* A credential helper gets this long to answer before it is killed. */
#define HELPER_TIMEOUT_MS 30000

/* WWW-Authenticate */

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Read a token or quoted-string value at *P into OUT (SIZE bytes). */
static int read_param_value(const char **p, char *out, size_t size, const char *key,
                            struct chrun_err *err)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '"') {
        s++;
        for (;;) {
            char c = *s;
            if (c == '\0')
                return chrun_err_set(err, CHRUN_E_INPUT, "unterminated quoted value of '%s'",
                                     key);
            if (c == '"')
                break;
            if (c == '\\') {
                c = *++s;
                if (c == '\0')
                    return chrun_err_set(err, CHRUN_E_INPUT,
                                         "unterminated quoted value of '%s'", key);
            }
            if ((unsigned char) c < 0x20 || c == 0x7f)
                return chrun_err_set(err, CHRUN_E_INPUT, "control character in '%s'", key);
            if (n + 1 >= size)
                return chrun_err_set(err, CHRUN_E_INPUT, "value of '%s' is too long", key);
            out[n++] = c;
            s++;
        }
        s++;
    } else {
        while (is_tchar(*s) || *s == '/' || *s == ':' || *s == '=') {
            if (n + 1 >= size)
                return chrun_err_set(err, CHRUN_E_INPUT, "value of '%s' is too long", key);
            out[n++] = *s++;
        }
        if (n == 0)
            return chrun_err_set(err, CHRUN_E_INPUT, "empty value of '%s'", key);
    }
    out[n] = '\0';
    *p = s;
    return 0;
}

static enum chrun_auth_scheme scheme_of(const char *name, size_t len)
{
    if (len == 6 && strncasecmp(name, "bearer", 6) == 0)
        return CHRUN_AUTH_BEARER;
    if (len == 5 && strncasecmp(name, "basic", 5) == 0)
        return CHRUN_AUTH_BASIC;
    return CHRUN_AUTH_NONE;
}

/* Parse the whole header; fill BEARER and BASIC with the first challenge of
 * each kind. */
static int parse_challenges(const char *header, struct chrun_auth_challenge *bearer,
                            struct chrun_auth_challenge *basic, struct chrun_err *err)
{
    const char *p = skip_ows(header);
    struct chrun_auth_challenge cur, *target = NULL;
    bool have_cur = false;

    memset(&cur, 0, sizeof(cur));
    for (const char *q = header; *q; q++)
        if ((unsigned char) *q < 0x20 && *q != '\t')
            return chrun_err_set(err, CHRUN_E_INPUT, "control character in header");
    while (*p) {
        const char *name = p;
        size_t name_len;
        while (is_tchar(*p))
            p++;
        name_len = (size_t) (p - name);
        if (name_len == 0)
            return chrun_err_set(err, CHRUN_E_INPUT, "unexpected '%c'", *p);
        p = skip_ows(p);
        if (*p == '=' && have_cur) {
            /* key=value parameter of the current challenge */
            char key[64], value[CHRUN_AUTH_URL_MAX];
            if (name_len >= sizeof(key))
                return chrun_err_set(err, CHRUN_E_INPUT, "parameter name too long");
            memcpy(key, name, name_len);
            key[name_len] = '\0';
            p = skip_ows(p + 1);
            if (read_param_value(&p, value, sizeof(value), key, err) < 0)
                return -1;
            if (target != NULL) {
                if (strcasecmp(key, "realm") == 0)
                    snprintf(target->realm, sizeof(target->realm), "%s", value);
                else if (strcasecmp(key, "service") == 0) {
                    if (strlen(value) >= sizeof(target->service))
                        return chrun_err_set(err, CHRUN_E_INPUT, "service is too long");
                    strcpy(target->service, value);
                } else if (strcasecmp(key, "scope") == 0) {
                    if (strlen(value) >= sizeof(target->scope))
                        return chrun_err_set(err, CHRUN_E_INPUT, "scope is too long");
                    strcpy(target->scope, value);
                }
            }
        } else if (*p == '=') {
            return chrun_err_set(err, CHRUN_E_INPUT, "parameter before any scheme");
        } else {
            /* a new challenge: "Scheme" followed by parameters */
            enum chrun_auth_scheme s = scheme_of(name, name_len);
            have_cur = true;
            target = NULL;
            if (s == CHRUN_AUTH_BEARER && bearer->scheme == CHRUN_AUTH_NONE)
                target = bearer;
            else if (s == CHRUN_AUTH_BASIC && basic->scheme == CHRUN_AUTH_NONE)
                target = basic;
            if (target != NULL)
                target->scheme = s;
            continue; /* parameters follow without a comma */
        }
        p = skip_ows(p);
        if (*p == ',')
            p = skip_ows(p + 1);
        else if (*p != '\0')
            return chrun_err_set(err, CHRUN_E_INPUT, "expected ',' before '%.20s'", p);
    }
    return 0;
}

int chrun_auth_parse_challenge(struct chrun_auth_challenge *ret, const char *header,
                               struct chrun_err *err)
{
    struct chrun_auth_challenge bearer, basic;
    memset(&bearer, 0, sizeof(bearer));
    memset(&basic, 0, sizeof(basic));
    if (header == NULL || *skip_ows(header) == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "malformed WWW-Authenticate header: empty");
    if (parse_challenges(header, &bearer, &basic, err) < 0)
        return chrun_err_prefix(err, "malformed WWW-Authenticate header");
    if (bearer.scheme == CHRUN_AUTH_BEARER) {
        if (bearer.realm[0] == '\0')
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "malformed WWW-Authenticate header: Bearer without realm");
        *ret = bearer;
        return 0;
    }
    if (basic.scheme == CHRUN_AUTH_BASIC) {
        *ret = basic;
        return 0;
    }
    return chrun_err_set(err, CHRUN_E_INPUT,
                         "malformed WWW-Authenticate header: no Bearer or Basic challenge");
}

/* base64 */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int chrun_auth_base64_encode(const void *data, size_t len, char *out, size_t size,
                             struct chrun_err *err)
{
    const unsigned char *in = data;
    size_t need = (len + 2) / 3 * 4 + 1, o = 0;
    if (len > (SIZE_MAX - 3) / 4 * 3 || need > size)
        return chrun_err_sys(err, ENOBUFS, "base64 encode");
    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned) in[i] << 16;
        if (i + 1 < len)
            v |= (unsigned) in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64_alphabet[(v >> 18) & 63];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
    }
    out[o] = '\0';
    return (int) o;
}

static int b64_value(char c)
{
    const char *p = c ? strchr(b64_alphabet, c) : NULL;
    return p ? (int) (p - b64_alphabet) : -1;
}

int chrun_auth_base64_decode(const char *s, void *out, size_t size, size_t *ret_len,
                             struct chrun_err *err)
{
    unsigned char *o = out;
    size_t len = strlen(s), n = 0, pad = 0;
    unsigned acc = 0;
    int bits = 0;

    while (pad < 2 && len > 0 && s[len - 1] == '=') {
        len--;
        pad++;
    }
    if (len % 4 == 1 || (pad > 0 && (len + pad) % 4 != 0))
        return chrun_err_set(err, CHRUN_E_INPUT, "invalid base64: bad length");
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return chrun_err_set(err, CHRUN_E_INPUT, "invalid base64 character at offset %zu",
                                 i);
        acc = (acc << 6) | (unsigned) v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= size)
                return chrun_err_sys(err, ENOBUFS, "base64 decode");
            o[n++] = (unsigned char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (n < size)
        o[n] = '\0';
    *ret_len = n;
    return 0;
}

/* config.json */

/* Reduce a config key or registry name to its host[:port]. */
static void key_host(const char *key, char *out, size_t size)
{
    size_t n;
    if (str_has_prefix(key, "https://"))
        key += 8;
    else if (str_has_prefix(key, "http://"))
        key += 7;
    n = strcspn(key, "/");
    if (n >= size)
        n = size - 1;
    memcpy(out, key, n);
    out[n] = '\0';
}

static bool is_docker_hub(const char *host)
{
    return streq(host, "docker.io") || streq(host, "index.docker.io") ||
           streq(host, "registry-1.docker.io");
}

static bool key_matches(const char *key, const char *registry)
{
    char a[512], b[512];
    key_host(key, a, sizeof(a));
    key_host(registry, b, sizeof(b));
    if (is_docker_hub(b))
        return is_docker_hub(a);
    return strcasecmp(a, b) == 0;
}

static json_t *find_entry(json_t *obj, const char *registry)
{
    const char *key;
    json_t *v;
    if (!json_is_object(obj))
        return NULL;
    json_object_foreach (obj, key, v)
        if (key_matches(key, registry))
            return v;
    return NULL;
}

static int copy_str(char *dst, size_t size, const char *src, const char *what,
                    struct chrun_err *err)
{
    if (strlen(src) >= size)
        return chrun_err_set(err, CHRUN_E_INPUT, "%s is too long", what);
    strcpy(dst, src);
    return 0;
}

static int parse_auths_entry(json_t *entry, struct chrun_auth_creds *c, bool *ret_found,
                             struct chrun_err *err)
{
    const char *auth = json_string_value(json_object_get(entry, "auth"));
    const char *user = json_string_value(json_object_get(entry, "username"));
    const char *pass = json_string_value(json_object_get(entry, "password"));
    const char *idtok = json_string_value(json_object_get(entry, "identitytoken"));
    char decoded[CHRUN_AUTH_USER_MAX + CHRUN_AUTH_SECRET_MAX];
    size_t len;

    *ret_found = false;
    memset(c, 0, sizeof(*c));
    if (!json_is_object(entry))
        return chrun_err_set(err, CHRUN_E_INPUT, "auths entry is not an object");
    if (idtok != NULL && *idtok) {
        if (copy_str(c->secret, sizeof(c->secret), idtok, "identitytoken", err) < 0)
            return -1;
        c->identity_token = true;
        *ret_found = true;
        return 0;
    }
    if (auth != NULL && *auth) {
        char *colon;
        if (chrun_auth_base64_decode(auth, decoded, sizeof(decoded) - 1, &len, err) < 0)
            return chrun_err_prefix(err, "auths entry 'auth'");
        decoded[len] = '\0';
        if (memchr(decoded, '\0', len) != NULL || (colon = strchr(decoded, ':')) == NULL)
            return chrun_err_set(err, CHRUN_E_INPUT,
                                 "auths entry 'auth' is not base64 of user:password");
        *colon = '\0';
        if (copy_str(c->username, sizeof(c->username), decoded, "username", err) < 0 ||
            copy_str(c->secret, sizeof(c->secret), colon + 1, "password", err) < 0)
            return -1;
        *ret_found = true;
        return 0;
    }
    if (user != NULL && pass != NULL && *user) {
        if (copy_str(c->username, sizeof(c->username), user, "username", err) < 0 ||
            copy_str(c->secret, sizeof(c->secret), pass, "password", err) < 0)
            return -1;
        *ret_found = true;
    }
    return 0;
}

int chrun_auth_config_parse(const char *buf, size_t len, const char *registry,
                            struct chrun_auth_source *ret, struct chrun_err *err)
{
    cleanup_json json_t *root = NULL;
    json_error_t jerr;
    json_t *helper, *store, *entry;
    char host[512];

    memset(ret, 0, sizeof(*ret));
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return chrun_json_parse_error(err, &jerr);
    if (!json_is_object(root))
        return chrun_err_set(err, CHRUN_E_INPUT, "not a JSON object");
    key_host(registry, host, sizeof(host));
    /* docker's credential helpers know Docker Hub by its v1 index URL */
    if (is_docker_hub(host))
        snprintf(ret->server_url, sizeof(ret->server_url), "https://index.docker.io/v1/");
    else
        snprintf(ret->server_url, sizeof(ret->server_url), "%s", host);

    helper = find_entry(json_object_get(root, "credHelpers"), registry);
    store = json_object_get(root, "credsStore");
    if (helper != NULL && !json_is_string(helper))
        return chrun_err_set(err, CHRUN_E_INPUT, "credHelpers entry is not a string");
    if (store != NULL && !json_is_string(store))
        return chrun_err_set(err, CHRUN_E_INPUT, "credsStore is not a string");
    if (helper == NULL && store != NULL && *json_string_value(store))
        helper = store;
    if (helper != NULL) {
        const char *name = json_string_value(helper);
        /* The name becomes part of a program name looked up on PATH. */
        if (*name == '\0' || strlen(name) >= sizeof(ret->helper) || strchr(name, '/') != NULL)
            return chrun_err_set(err, CHRUN_E_INPUT, "invalid credential helper name '%.64s'",
                                 name);
        strcpy(ret->helper, name);
    }
    entry = find_entry(json_object_get(root, "auths"), registry);
    if (entry != NULL && parse_auths_entry(entry, &ret->creds, &ret->found_inline, err) < 0)
        return chrun_err_prefix(err, "auths '%s'", host);
    return 0;
}

int chrun_auth_helper_parse(const char *buf, size_t len, struct chrun_auth_creds *ret,
                            struct chrun_err *err)
{
    cleanup_json json_t *root = NULL;
    json_error_t jerr;
    const char *user, *secret;

    memset(ret, 0, sizeof(*ret));
    root = json_loadb(buf, len, 0, &jerr);
    if (root == NULL)
        return chrun_json_parse_error(err, &jerr);
    user = json_string_value(json_object_get(root, "Username"));
    secret = json_string_value(json_object_get(root, "Secret"));
    if (user == NULL || secret == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "reply lacks Username or Secret");
    if (copy_str(ret->secret, sizeof(ret->secret), secret, "Secret", err) < 0)
        return -1;
    if (streq(user, "<token>")) {
        ret->identity_token = true;
        return 0;
    }
    return copy_str(ret->username, sizeof(ret->username), user, "Username", err);
}

static int config_path(const char *dir, char *buf, size_t size, struct chrun_err *err)
{
    int n = snprintf(buf, size, "%s/config.json", dir);
    if (n < 0 || (size_t) n >= size)
        return chrun_err_sys(err, ENAMETOOLONG, "docker config path");
    return 0;
}

/* Run PROG get with INPUT on stdin; stdout (at most
 * CHRUN_AUTH_HELPER_OUTPUT_MAX bytes) lands in *RET. */
static int run_helper(const char *prog, const char *input, struct chrun_process_result *ret,
                      struct chrun_err *err)
{
    const char *argv[] = {prog, "get", NULL};
    struct chrun_process_opts o = {
        .argv = argv,
        .input = input,
        .input_len = strlen(input),
        .output_max = CHRUN_AUTH_HELPER_OUTPUT_MAX,
        .timeout_ms = HELPER_TIMEOUT_MS,
        .flags = CHRUN_PROCESS_SEARCH_PATH,
    };
    if (chrun_process_run(&o, ret, err) < 0) {
        err->code = CHRUN_E_AUTH;
        return -1;
    }
    return 0;
}

int chrun_auth_creds_get(const char *registry, const char *config_dir,
                         struct chrun_auth_creds *ret, bool *ret_found, struct chrun_err *err)
{
    char path[4096], prog[160];
    cleanup_free char *buf = NULL;
    cleanup_close int fd = -1;
    size_t len = 0;
    struct chrun_auth_source src;
    struct chrun_process_result res = {0};
    char *out;
    int rc;

    *ret_found = false;
    if (config_dir == NULL || *config_dir == '\0')
        return 0;
    if (config_path(config_dir, path, sizeof(path), err) < 0)
        return -1;
    /* The user's own file: a symlink (dotfile managers) is fine. */
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
        return 0;
    if (fd < 0)
        return chrun_err_sys(err, errno, "open '%s'", path);
    if (chrun_io_read_bounded(fd, CHRUN_AUTH_CONFIG_MAX, &buf, &len, err) < 0)
        return chrun_err_prefix(err, "read '%s'", path);
    if (chrun_auth_config_parse(buf, len, registry, &src, err) < 0)
        return chrun_err_prefix(err, "'%s'", path);
    if (src.helper[0] == '\0') {
        *ret = src.creds;
        *ret_found = src.found_inline;
        return 0;
    }
    snprintf(prog, sizeof(prog), "docker-credential-%s", src.helper);
    if (run_helper(prog, src.server_url, &res, err) < 0)
        return chrun_err_prefix(err, "credential helper for '%s'", registry);
    out = res.out;
    if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0) {
        /* The helper protocol answers a missing entry with this text. */
        if (strstr(out, "credentials not found") != NULL) {
            *ret = src.creds;
            *ret_found = src.found_inline;
            chrun_process_result_release(&res);
            return 0;
        }
        chrun_sanitize(out);
        out[strcspn(out, "\n")] = '\0';
        rc = chrun_err_set(err, CHRUN_E_AUTH, "credential helper '%s' failed for '%s': %.200s",
                           prog, src.server_url, *out ? out : "no output");
        chrun_process_result_release(&res);
        return rc;
    }
    rc = chrun_auth_helper_parse(out, res.out_len, ret, err);
    chrun_process_result_release(&res);
    if (rc < 0)
        return chrun_err_prefix(err, "credential helper '%s'", prog);
    *ret_found = true;
    return 0;
}

/* Token requests */

char *chrun_auth_url_encode(const char *s, struct chrun_err *err)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(s);
    char *out = malloc(len * 3 + 1), *o = out;
    if (out == NULL) {
        chrun_err_sys(err, ENOMEM, "url encode");
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            *o++ = (char) *p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

/* SCOPES (space-separated, as OAuth2 writes them) as "scope=A&scope=B", the
 * repeated parameter docker's token servers expect. Caller frees. */
static char *scope_params(const char *scopes, struct chrun_err *err)
{
    cleanup_free char *copy = strdup(scopes);
    char *out = NULL, *save = NULL;
    size_t len = 0, cap = 0;

    if (copy == NULL) {
        chrun_err_sys(err, ENOMEM, "token scope");
        return NULL;
    }
    for (char *one = strtok_r(copy, " ", &save); one != NULL; one = strtok_r(NULL, " ", &save)) {
        cleanup_free char *enc = chrun_auth_url_encode(one, err);
        if (enc == NULL || chrun_grow(&out, &cap, len + strlen(enc) + 8, 1, err) < 0) {
            free(out);
            if (enc != NULL)
                chrun_err_prefix(err, "token scope");
            return NULL;
        }
        len += (size_t) sprintf(out + len, "%sscope=%s", len ? "&" : "", enc);
    }
    if (out == NULL && (out = strdup("")) == NULL)
        chrun_err_sys(err, ENOMEM, "token scope");
    return out;
}

int chrun_auth_token_url(const struct chrun_auth_challenge *c, const char *scope, char **ret_url,
                         struct chrun_err *err)
{
    cleanup_free char *service = NULL, *scopes = NULL;
    char *url;
    size_t size;
    const char *sep;

    if (!str_has_prefix(c->realm, "https://") && !str_has_prefix(c->realm, "http://"))
        return chrun_err_set(err, CHRUN_E_INPUT, "token realm '%.200s' is not an http(s) URL",
                             c->realm);
    if (strchr(c->realm, '#') != NULL || strpbrk(c->realm, " \t\"<>\\") != NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "token realm '%.200s' is not a valid URL",
                             c->realm);
    service = chrun_auth_url_encode(c->service, err);
    if (service == NULL || (scopes = scope_params(scope ? scope : "", err)) == NULL)
        return -1;
    size = strlen(c->realm) + strlen(service) + strlen(scopes) + 32;
    url = malloc(size);
    if (url == NULL)
        return chrun_err_sys(err, ENOMEM, "token url");
    sep = strchr(c->realm, '?') ? "&" : "?";
    snprintf(url, size, "%s%s%s%s%s%s", c->realm, sep, c->service[0] ? "service=" : "", service,
             c->service[0] && scopes[0] ? "&" : "", scopes);
    *ret_url = url;
    return 0;
}

int chrun_auth_token_parse(const char *buf, size_t len, char **ret_token, struct chrun_err *err)
{
    cleanup_json json_t *root = NULL;
    json_error_t jerr;
    const char *tok;

    root = json_loadb(buf, len, 0, &jerr);
    if (root == NULL)
        return chrun_err_set(err, CHRUN_E_INPUT, "token reply: invalid JSON at line %d: %s",
                             jerr.line, jerr.text);
    tok = json_string_value(json_object_get(root, "token"));
    if (tok == NULL || *tok == '\0')
        tok = json_string_value(json_object_get(root, "access_token"));
    if (tok == NULL || *tok == '\0')
        return chrun_err_set(err, CHRUN_E_INPUT, "token reply holds no token");
    /* SPEC "Bad input": the token is sent back in a header; no CR/LF injection. */
    for (const char *p = tok; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return chrun_err_set(err, CHRUN_E_INPUT, "token reply: token has invalid characters");
    *ret_token = strdup(tok);
    if (*ret_token == NULL)
        return chrun_err_sys(err, ENOMEM, "token");
    return 0;
}
