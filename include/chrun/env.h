/* The environment of a container process: the image's Env, -e overrides and
 * the defaults docker adds. */
#ifndef CHRUN_ENV_H
#define CHRUN_ENV_H

#include <stddef.h>

#include "chrun/err.h"

/* PATH given to a process whose image sets none (docker's default). */
#define CHRUN_RUNTIME_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Cap on the environment entries of one process (image Env plus -e). */
#define CHRUN_RUNTIME_MAX_ENV 1024

/* Build a process environment: IMAGE_ENV ("K=V"; a later entry replaces an
 * earlier one with the same key), then OVERRIDES ("K=V" sets, bare "K" copies
 * our own value of K or removes K when we have none), then defaults for what
 * is still missing: PATH (CHRUN_RUNTIME_DEFAULT_PATH), HOSTNAME (when
 * HOSTNAME is not NULL) and HOME (when HOME is not NULL). Order of first
 * appearance is kept. Returns a NULL-terminated vector the caller frees with
 * chrun_env_free, or NULL with ERR set (CHRUN_E_INPUT for an entry without
 * '=' in IMAGE_ENV or an empty key). */
char **chrun_env_build(const char *const *image_env, size_t n_image, const char *const *overrides,
                       size_t n_over, const char *hostname, const char *home,
                       struct chrun_err *err);

/* Free a vector from chrun_env_build; NULL is fine. */
void chrun_env_free(char **env);

/* The value of KEY in ENV (a NULL-terminated "K=V" vector), or NULL. */
const char *chrun_env_get(char *const *env, const char *key);

#endif
