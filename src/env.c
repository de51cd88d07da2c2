#include "chrun/env.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "cleanup.h"
#include "util.h"

void chrun_env_free(char **env)
{
    if (env == NULL)
        return;
    for (char **e = env; *e; e++)
        free(*e);
    free(env);
}

static size_t key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t) (eq - kv) : strlen(kv);
}

const char *chrun_env_get(char *const *env, const char *key)
{
    size_t klen = strlen(key);
    for (; env && *env; env++)
        if (key_len(*env) == klen && strncmp(*env, key, klen) == 0 && (*env)[klen] == '=')
            return *env + klen + 1;
    return NULL;
}

struct envvec {
    char **v;
    size_t n;
};

static ssize_t env_find(const struct envvec *e, const char *key, size_t klen)
{
    for (size_t i = 0; i < e->n; i++)
        if (key_len(e->v[i]) == klen && strncmp(e->v[i], key, klen) == 0)
            return (ssize_t) i;
    return -1;
}

/* Set KV ("K=V"), replacing an existing K in place. Takes a copy. */
static int env_set(struct envvec *e, const char *kv)
{
    size_t klen = key_len(kv);
    ssize_t i = env_find(e, kv, klen);
    char *copy = strdup(kv);
    if (copy == NULL)
        return -1;
    if (i >= 0) {
        free(e->v[i]);
        e->v[i] = copy;
        return 0;
    }
    if (e->n + 1 >= CHRUN_RUNTIME_MAX_ENV + 8) {
        free(copy);
        errno = E2BIG;
        return -1;
    }
    e->v[e->n++] = copy;
    e->v[e->n] = NULL;
    return 0;
}

static void env_unset(struct envvec *e, const char *key)
{
    ssize_t i = env_find(e, key, strlen(key));
    if (i < 0)
        return;
    free(e->v[i]);
    memmove(&e->v[i], &e->v[i + 1], (e->n - (size_t) i) * sizeof(char *));
    e->n--;
}

static int env_default(struct envvec *e, const char *key, const char *value)
{
    cleanup_free char *kv = NULL;
    if (value == NULL || env_find(e, key, strlen(key)) >= 0)
        return 0;
    if (asprintf(&kv, "%s=%s", key, value) < 0)
        return -1;
    return env_set(e, kv);
}

char **chrun_env_build(const char *const *image_env, size_t n_image, const char *const *overrides,
                       size_t n_over, const char *hostname, const char *home,
                       struct chrun_err *err)
{
    struct envvec e = {NULL, 0};

    if (n_image + n_over > CHRUN_RUNTIME_MAX_ENV)
        return chrun_err_set(err, CHRUN_E_INPUT, "too many environment variables (%zu)",
                             n_image + n_over),
               NULL;
    e.v = calloc(CHRUN_RUNTIME_MAX_ENV + 8, sizeof(char *));
    if (e.v == NULL)
        return chrun_err_sys(err, ENOMEM, "environment"), NULL;
    for (size_t i = 0; i < n_image; i++) {
        const char *kv = image_env[i];
        if (strchr(kv, '=') == NULL || kv[0] == '=') {
            chrun_env_free(e.v);
            return chrun_err_set(err, CHRUN_E_INPUT, "environment entry '%s': expected KEY=VALUE",
                                 kv),
                   NULL;
        }
        if (env_set(&e, kv) < 0) {
            int saved = errno;
            chrun_env_free(e.v);
            return chrun_err_sys(err, saved, "environment"), NULL;
        }
    }
    for (size_t i = 0; i < n_over; i++) {
        const char *kv = overrides[i];
        int rc = 0;
        if (kv[0] == '=' || kv[0] == '\0') {
            chrun_env_free(e.v);
            return chrun_err_set(err, CHRUN_E_USAGE, "-e '%s': empty variable name", kv), NULL;
        }
        if (strchr(kv, '=') != NULL) {
            rc = env_set(&e, kv);
        } else {
            const char *ours = getenv(kv);
            cleanup_free char *full = NULL;
            if (ours == NULL) {
                env_unset(&e, kv);
            } else if (asprintf(&full, "%s=%s", kv, ours) < 0) {
                rc = -1;
            } else {
                rc = env_set(&e, full);
            }
        }
        if (rc < 0) {
            int saved = errno;
            chrun_env_free(e.v);
            return chrun_err_sys(err, saved, "environment"), NULL;
        }
    }
    if (env_default(&e, "PATH", CHRUN_RUNTIME_DEFAULT_PATH) < 0 ||
        env_default(&e, "HOSTNAME", hostname) < 0 || env_default(&e, "HOME", home) < 0) {
        int saved = errno;
        chrun_env_free(e.v);
        return chrun_err_sys(err, saved, "environment"), NULL;
    }
    return e.v;
}
