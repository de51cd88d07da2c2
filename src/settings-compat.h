/* Transitional, internal: the four entry points src/registry.c (pull) still
 * calls with their old signatures, each taking its settings from the
 * environment through chrun_settings_from_env (a bad value: the defaults;
 * the tool has already refused it). They exist only so that pull keeps
 * working while it is split into its own files; once pull passes
 * opts->settings to registry_client_create, chrun_settings_host_insecure,
 * chrun_registry_url_permitted and chrun_registry_mirror_url, this header
 * and settings-compat.c are deleted (docs/DESIGN.md, "Settings"). */
#ifndef CHRUN_SETTINGS_COMPAT_H
#define CHRUN_SETTINGS_COMPAT_H

#include <stdbool.h>
#include <stddef.h>

#include "chrun/err.h"
#include "chrun/ref.h"
#include "chrun/store.h"

struct registry_client;

/* registry_client_create with the environment's settings. */
struct registry_client *registry_client_new(struct chrun_store *st, const char *base,
                                            const char *host, const char *registry,
                                            const struct chrun_ref *ref, int jobs,
                                            struct chrun_err *err);
/* chrun_settings_host_insecure with the environment's settings. */
bool chrun_ref_host_is_insecure(const char *host);
/* chrun_registry_url_permitted with the environment's settings. */
bool chrun_registry_url_allowed(const char *url);
/* chrun_registry_mirror_url with the environment's settings. */
int chrun_registry_mirror_base(const char *entry, char *buf, size_t size, char *host,
                               size_t host_size, struct chrun_err *err);

#endif
