/* Transitional entry points for src/registry.c; see settings-compat.h. */
#include "settings-compat.h"

#include "chrun/registry.h"
#include "chrun/settings.h"
#include "registry-client.h"

static void env_settings(struct chrun_settings *s)
{
    struct chrun_err ignored = CHRUN_ERR_INIT;
    if (chrun_settings_from_env(s, &ignored) < 0)
        chrun_settings_init_defaults(s);
}

struct registry_client *registry_client_new(struct chrun_store *st, const char *base,
                                            const char *host, const char *registry,
                                            const struct chrun_ref *ref, int jobs,
                                            struct chrun_err *err)
{
    struct chrun_settings s;
    env_settings(&s);
    return registry_client_create(st, base, host, registry, ref, jobs, &s, err);
}

bool chrun_ref_host_is_insecure(const char *host)
{
    struct chrun_settings s;
    env_settings(&s);
    return chrun_settings_host_insecure(&s, host);
}

bool chrun_registry_url_allowed(const char *url)
{
    struct chrun_settings s;
    env_settings(&s);
    return chrun_registry_url_permitted(url, &s);
}

int chrun_registry_mirror_base(const char *entry, char *buf, size_t size, char *host,
                               size_t host_size, struct chrun_err *err)
{
    struct chrun_settings s;
    env_settings(&s);
    return chrun_registry_mirror_url(entry, &s, buf, size, host, host_size, err);
}
