/* The run-time settings of libchrun: network timeouts and limits, registry
 * mirrors, registries allowed plain HTTP, the push chunk size, where
 * docker's config.json lives, the signing key's password.
 *
 * The library never reads these from the environment itself: a caller fills
 * a struct chrun_settings and hands it to the entry points that need it
 * (chrun_pull_opts, chrun_push_opts, chrun_fetch_url, chrun_build_opts,
 * chrun_key_load_private). The chrun-* tools fill it with
 * chrun_settings_from_env, the one place that knows the CHRUN_* variables,
 * so a bad value fails the same way in every tool. A NULL settings pointer
 * anywhere means the defaults below. */
#ifndef CHRUN_SETTINGS_H
#define CHRUN_SETTINGS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "chrun/err.h"

/* Defaults, in seconds. A blob slower than the registry client's stall
 * rate for STALL seconds counts as stalled; one that stays below that rate
 * on average for BLOB_STALL_LIMIT seconds, retries included, ends the pull. */
#define CHRUN_SETTINGS_STALL_TIMEOUT_S 30L
#define CHRUN_SETTINGS_CONNECT_TIMEOUT_S 15L
/* Whole-request deadline of a ping, manifest or token request. */
#define CHRUN_SETTINGS_REQUEST_TIMEOUT_S 120L
#define CHRUN_SETTINGS_BLOB_STALL_LIMIT_S 100L
/* Every timeout above is 1 to this many seconds. */
#define CHRUN_SETTINGS_TIMEOUT_MAX_S 86399L
/* Whole-download deadline of ADD <url> (capped at a day when used). */
#define CHRUN_SETTINGS_FETCH_TIMEOUT_S 3600ULL
/* Largest ADD <url> body. */
#define CHRUN_SETTINGS_FETCH_MAX_BYTES ((uint64_t) 8 << 30)
/* Blobs up to this size are pushed in one PUT; bigger ones in PATCH chunks. */
#define CHRUN_SETTINGS_PUSH_CHUNK_BYTES (32ULL * 1024 * 1024)

struct chrun_settings {
    long stall_timeout_s;      /* CHRUN_STALL_TIMEOUT */
    long connect_timeout_s;    /* CHRUN_CONNECT_TIMEOUT */
    long request_timeout_s;    /* CHRUN_REQUEST_TIMEOUT */
    long blob_stall_limit_s;   /* CHRUN_BLOB_STALL_LIMIT */
    uint64_t fetch_timeout_s;  /* CHRUN_FETCH_TIMEOUT */
    uint64_t fetch_max_bytes;  /* CHRUN_FETCH_MAX_BYTES */
    uint64_t push_chunk_bytes; /* CHRUN_PUSH_CHUNK_SIZE */
    bool build_full_walk;      /* CHRUN_BUILD_FULL_WALK (set, not "0"): a RUN step's
                                  layer walks the whole rootfs, not an overlay upper */
    /* Borrowed strings (the caller keeps them alive while the settings are
     * in use; chrun_settings_from_env points into the environment). */
    const char *mirrors;             /* CHRUN_REGISTRY_MIRRORS: comma-separated
                                        base URLs or host[:port] tried first for
                                        docker.io; NULL: none */
    const char *insecure_registries; /* CHRUN_INSECURE_REGISTRIES: comma-separated
                                        host[:port] allowed plain HTTP besides
                                        loopback; NULL: none */
    const char *sign_password;       /* CHRUN_SIGN_PASSWORD; NULL: ask on the
                                        terminal ("" is a valid password) */
    /* Directory of docker's config.json: $DOCKER_CONFIG, else $HOME/.docker;
     * "" when neither is set (then no credentials are configured). */
    char docker_config_dir[PATH_MAX];
};

/* Parse a size VALUE (CHRUN_PUSH_CHUNK_SIZE): a positive number of bytes
 * with an optional K, M or G suffix (powers of 1024). Returns 0 or -1
 * (CHRUN_E_INPUT). */
int chrun_settings_parse_size(const char *value, uint64_t *ret_bytes, struct chrun_err *err);

/* Fill S with the defaults: the CHRUN_SETTINGS_* values, no mirrors, no
 * insecure registries, no password, no docker config directory. */
void chrun_settings_init_defaults(struct chrun_settings *s);

/* S, or when S is NULL a shared read-only copy of the defaults. */
const struct chrun_settings *chrun_settings_or_defaults(const struct chrun_settings *s);

/* Fill S from the environment: the defaults, overridden by every variable
 * named in the struct that is set and not empty (CHRUN_SIGN_PASSWORD counts
 * even when empty), and DOCKER_CONFIG / HOME for docker_config_dir. For the
 * tools' main only: the library proper never reads the environment for its
 * settings. A value that is not a number in range fails with CHRUN_E_INPUT
 * naming the variable and the value ("CHRUN_STALL_TIMEOUT: invalid value
 * 'x': want 1 to 86399 seconds"; a bad CHRUN_PUSH_CHUNK_SIZE as
 * chrun_settings_parse_size words it); S then holds the defaults for it. The
 * string fields point into the environment: S is valid until the process
 * changes those variables. Not thread-safe against setenv. Returns 0 or -1. */
int chrun_settings_from_env(struct chrun_settings *s, struct chrun_err *err);

/* Parse VALUE as a count of seconds 1..CHRUN_SETTINGS_TIMEOUT_MAX_S into
 * *RET_S. Returns 0 or -1 (CHRUN_E_INPUT). */
int chrun_settings_parse_seconds(const char *value, long *ret_s, struct chrun_err *err);

/* Parse VALUE as a positive decimal number into *RET (no sign, no space, no
 * overflow). Returns 0 or -1 (CHRUN_E_INPUT). */
int chrun_settings_parse_u64(const char *value, uint64_t *ret, struct chrun_err *err);

/* True if plain HTTP may be used for HOST (host[:port]): a loopback host
 * (localhost, 127.x.y.z, [::1]), or one listed in S->insecure_registries.
 * S may be NULL (loopback only). */
bool chrun_settings_host_insecure(const struct chrun_settings *s, const char *host);

#endif
