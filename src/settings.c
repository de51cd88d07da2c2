/* The settings struct, its defaults, and the one reader of the CHRUN_*
 * environment variables (called by the tools' main, never by the library). */
#include "chrun/settings.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chrun/ref.h"
#include "util.h"

static const struct chrun_settings defaults = {
    .stall_timeout_s = CHRUN_SETTINGS_STALL_TIMEOUT_S,
    .connect_timeout_s = CHRUN_SETTINGS_CONNECT_TIMEOUT_S,
    .request_timeout_s = CHRUN_SETTINGS_REQUEST_TIMEOUT_S,
    .blob_stall_limit_s = CHRUN_SETTINGS_BLOB_STALL_LIMIT_S,
    .fetch_timeout_s = CHRUN_SETTINGS_FETCH_TIMEOUT_S,
    .fetch_max_bytes = CHRUN_SETTINGS_FETCH_MAX_BYTES,
    .push_chunk_bytes = CHRUN_SETTINGS_PUSH_CHUNK_BYTES,
};

void chrun_settings_init_defaults(struct chrun_settings *s)
{
    *s = defaults;
}

const struct chrun_settings *chrun_settings_or_defaults(const struct chrun_settings *s)
{
    return s != NULL ? s : &defaults;
}

int chrun_settings_parse_u64(const char *value, uint64_t *ret, struct chrun_err *err)
{
    char *end;
    unsigned long long n;
    errno = 0;
    n = strtoull(value, &end, 10);
    /* strtoull takes a sign and leading space: a setting has neither */
    if (!isdigit((unsigned char) value[0]) || *end != '\0' || errno != 0 || n == 0)
        return chrun_err_set(err, CHRUN_E_INPUT, "invalid value '%.64s': want a positive number",
                             value);
    *ret = (uint64_t) n;
    return 0;
}

int chrun_settings_parse_seconds(const char *value, long *ret_s, struct chrun_err *err)
{
    uint64_t n = 0;
    struct chrun_err ignored = CHRUN_ERR_INIT;
    if (chrun_settings_parse_u64(value, &n, &ignored) < 0 ||
        n > (uint64_t) CHRUN_SETTINGS_TIMEOUT_MAX_S)
        return chrun_err_set(err, CHRUN_E_INPUT, "invalid value '%.64s': want 1 to %ld seconds",
                             value, CHRUN_SETTINGS_TIMEOUT_MAX_S);
    *ret_s = (long) n;
    return 0;
}

/* $NAME if set and not empty, else NULL. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

static int env_seconds(const char *name, long *ret_s, struct chrun_err *err)
{
    const char *v = env_value(name);
    if (v != NULL && chrun_settings_parse_seconds(v, ret_s, err) < 0)
        return chrun_err_prefix(err, "%s", name);
    return 0;
}

static int env_u64(const char *name, uint64_t *ret, struct chrun_err *err)
{
    const char *v = env_value(name);
    if (v != NULL && chrun_settings_parse_u64(v, ret, err) < 0)
        return chrun_err_prefix(err, "%s", name);
    return 0;
}

static int docker_config_dir(char *buf, size_t size, struct chrun_err *err)
{
    const char *dir = env_value("DOCKER_CONFIG");
    const char *home = env_value("HOME");
    int n = 0;
    if (dir != NULL)
        n = snprintf(buf, size, "%s", dir);
    else if (home != NULL)
        n = snprintf(buf, size, "%s/.docker", home);
    else
        buf[0] = '\0';
    if (n < 0 || (size_t) n >= size) {
        buf[0] = '\0';
        return chrun_err_sys(err, ENAMETOOLONG, "%s", dir != NULL ? "DOCKER_CONFIG" : "HOME");
    }
    return 0;
}

int chrun_settings_parse_size(const char *value, uint64_t *ret_bytes, struct chrun_err *err)
{
    char *end;
    unsigned long long n;
    unsigned shift = 0;

    errno = 0;
    n = strtoull(value, &end, 10);
    if (end != value && end[0] != '\0' && end[1] == '\0') {
        switch (toupper((unsigned char) end[0])) {
        case 'K': shift = 10; end++; break;
        case 'M': shift = 20; end++; break;
        case 'G': shift = 30; end++; break;
        default: break;
        }
    }
    if (!isdigit((unsigned char) value[0]) || *end != '\0' || errno != 0 || n == 0 ||
        n > (UINT64_MAX >> shift))
        return chrun_err_set(err, CHRUN_E_INPUT,
                             "invalid size '%.64s': want a number of bytes, K, M or G", value);
    *ret_bytes = (uint64_t) n << shift;
    return 0;
}

int chrun_settings_from_env(struct chrun_settings *s, struct chrun_err *err)
{
    const char *chunk = env_value("CHRUN_PUSH_CHUNK_SIZE");
    chrun_settings_init_defaults(s);
    if (env_seconds("CHRUN_STALL_TIMEOUT", &s->stall_timeout_s, err) < 0 ||
        env_seconds("CHRUN_CONNECT_TIMEOUT", &s->connect_timeout_s, err) < 0 ||
        env_seconds("CHRUN_REQUEST_TIMEOUT", &s->request_timeout_s, err) < 0 ||
        env_seconds("CHRUN_BLOB_STALL_LIMIT", &s->blob_stall_limit_s, err) < 0 ||
        env_u64("CHRUN_FETCH_TIMEOUT", &s->fetch_timeout_s, err) < 0 ||
        env_u64("CHRUN_FETCH_MAX_BYTES", &s->fetch_max_bytes, err) < 0)
        return -1;
    if (chunk != NULL && chrun_settings_parse_size(chunk, &s->push_chunk_bytes, err) < 0)
        return chrun_err_prefix(err, "CHRUN_PUSH_CHUNK_SIZE");
    s->mirrors = env_value("CHRUN_REGISTRY_MIRRORS");
    s->insecure_registries = env_value("CHRUN_INSECURE_REGISTRIES");
    s->build_full_walk = env_value("CHRUN_BUILD_FULL_WALK") != NULL &&
                         !streq(env_value("CHRUN_BUILD_FULL_WALK"), "0");
    s->sign_password = getenv("CHRUN_SIGN_PASSWORD"); /* its length is checked where it is used */
    return docker_config_dir(s->docker_config_dir, sizeof(s->docker_config_dir), err);
}

/* localhost, 127.x.y.z or [::1], with or without a port. */
static bool host_is_loopback(const char *host)
{
    char name[CHRUN_REF_NAME_MAX + 1];
    const char *end;
    size_t len;
    if (host[0] == '[') {
        end = strchr(host, ']');
        if (end == NULL)
            return false;
        len = (size_t) (end - host - 1);
        return len == 3 && strncmp(host + 1, "::1", 3) == 0;
    }
    end = strchr(host, ':');
    len = end ? (size_t) (end - host) : strlen(host);
    if (len >= sizeof(name))
        return false;
    memcpy(name, host, len);
    name[len] = '\0';
    if (streq(name, "localhost"))
        return true;
    if (!str_has_prefix(name, "127."))
        return false;
    return strspn(name, "0123456789.") == len;
}

bool chrun_settings_host_insecure(const struct chrun_settings *s, const char *host)
{
    const char *list = s != NULL ? s->insecure_registries : NULL;
    if (host_is_loopback(host))
        return true;
    while (list != NULL && *list) {
        const char *comma = strchr(list, ',');
        size_t len = comma ? (size_t) (comma - list) : strlen(list);
        while (len > 0 && list[0] == ' ') {
            list++;
            len--;
        }
        if (len > 0 && strlen(host) == len && strncmp(host, list, len) == 0)
            return true;
        list = comma ? comma + 1 : NULL;
    }
    return false;
}
