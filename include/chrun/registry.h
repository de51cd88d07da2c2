/* Registry API v2 client (pull side) on libcurl.
 *
 * chrun_registry_pull fetches a manifest (docker schema2 or OCI, index or
 * image manifest), chooses a platform, downloads the missing blobs in
 * parallel with curl's multi interface while hashing them into resumable
 * store writers, verifies everything, publishes blobs, then manifests, then
 * names the image in index.json. A failed pull publishes nothing under
 * blobs/; tmp/ may keep resumable partial blobs after network failures.
 *
 * Network rules (SPEC "References", "Bad input"): plain HTTP only for
 * loopback hosts and opts->settings->insecure_registries; redirects are
 * followed by hand and the Authorization header goes only to the registry's
 * own origin; connect and stall timeouts (settings.h, stall 30 s by
 * default); retries with backoff on connection errors, 408, 429
 * (Retry-After capped at 30 s) and 5xx, at most 5 attempts in a row without
 * progress; every size a server declares is checked against the descriptor.
 * docker.io images try opts->settings->mirrors (comma-separated URLs or
 * host[:port]) first. The chrun-* tools fill opts->settings from
 * CHRUN_INSECURE_REGISTRIES, CHRUN_STALL_TIMEOUT, CHRUN_REGISTRY_MIRRORS and
 * the rest (chrun_settings_from_env). */
#ifndef CHRUN_REGISTRY_H
#define CHRUN_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "chrun/digest.h"
#include "chrun/err.h"
#include "chrun/settings.h"
#include "chrun/store.h"

struct chrun_pull_opts {
    const char *platform; /* "os/arch[/variant]"; NULL = host */
    bool all_platforms;   /* keep the whole index and every platform's blobs */
    int jobs;             /* parallel blob downloads; 0 = default */
    bool progress;        /* bars on stderr (drawn only if it is a terminal) */
    bool signatures;      /* also fetch cosign tags and referrers (attach.h) */
    bool tree;            /* also make the image's tree (chrun/tree.h), see below */
    bool unpack;          /* also unpack it as chrun_bundle_unpack does, see below */
    const char *bundle;   /* with unpack: where (NULL: the cached bundle) */
    /* Timeouts, mirrors (settings->mirrors), insecure registries, docker's
     * config directory; NULL = defaults. Borrowed for the call. */
    const struct chrun_settings *settings;
};

#define CHRUN_PULL_OPTS_INIT {NULL, false, 0, false, false, false, false, NULL, NULL}
#define CHRUN_PULL_JOBS_DEFAULT 4
#define CHRUN_PULL_JOBS_MAX 64
/* Retry-After is honoured up to this many seconds. */
#define CHRUN_RETRY_AFTER_MAX_S 30
/* Attempts per request without any progress before giving up. */
#define CHRUN_PULL_ATTEMPTS_MAX 5

/* Pull REF into ST, record it in index.json, write the image manifest digest
 * to RET_DIGEST (with all_platforms and an index: the index digest). The
 * name recorded is REF's full normalized form; it points at the chosen
 * platform's manifest, or at the index with all_platforms. When REF pins a
 * digest whose manifest and blobs are all in the store, no network is used.
 * Blobs already in the store are never fetched. On failure ERR holds one
 * line: CHRUN_E_NOTFOUND ("manifest unknown: REF"), CHRUN_E_AUTH,
 * CHRUN_E_NETWORK, CHRUN_E_DIGEST, CHRUN_E_INPUT (hostile or malformed
 * replies), CHRUN_E_UNSUPPORTED (schema1), CHRUN_E_USAGE (bad platform).
 * Returns 0 or -1.
 *
 * With opts->tree (run as root, one platform, no tree yet) the image's
 * read-only tree for `chrun run --rm` is made while its blobs download: a
 * thread applies each layer in order from the blob's growing temporary
 * file, and the tree is renamed into trees/ after the name is recorded. A
 * layer the applier refuses (diff_id, hostile entry) fails the pull before
 * anything is published; a failed download discards the staging tree. When
 * a blob's download starts over from byte 0 the tree is simply not made
 * here (chrun run makes it from the store).
 *
 * An ordinary user with subordinate ids (chrun/userns.h) who asks for a
 * tree or a bundle: the calling process first enters a user namespace with
 * that mapping and stays there (call before starting threads), so that the
 * layers get the image's owners as they download; store files still belong
 * to the caller, and the bundle records the mapping as chrun-unpack's do.
 *
 * With opts->unpack the image is also unpacked into the bundle
 * opts->bundle (NULL: the cached one), as chrun_bundle_unpack(st, digest,
 * opts->bundle) would, in the same way while it downloads; the bundle is
 * renamed into place after the name is recorded. What is at opts->bundle
 * is checked before anything is downloaded (CHRUN_E_EXISTS: another image
 * or a non-empty directory; nothing changes). When the bundle cannot be
 * made while downloading (a restart, an index) it is unpacked from the
 * store after the pull; either way a
 * successful return means it is complete. tree and unpack exclude each
 * other (CHRUN_E_USAGE). */
int chrun_registry_pull(struct chrun_store *st, const char *ref,
                        const struct chrun_pull_opts *opts, struct chrun_digest *ret_digest,
                        struct chrun_err *err);

/* What chrun_registry_pull_many reports for one reference. */
struct chrun_pull_result {
    int rc;                     /* 0 or -1 */
    struct chrun_digest digest; /* when rc == 0: as chrun_registry_pull's */
    struct chrun_err err;       /* when rc == -1: the reason, REF named first */
};

/* Pull the N references REFS as chrun_registry_pull does each, at once:
 * up to opts->jobs images in parallel, on threads, sharing opts->jobs
 * connections in all; a blob several of them need is downloaded once.
 * opts->unpack is refused (CHRUN_E_USAGE); opts->tree is ignored. Each
 * image succeeds or fails on its own: RET[i] (N entries, caller-owned) gets
 * its digest or its error. The progress option is ignored. Returns 0 when
 * all succeeded, else -1 with ERR saying how many failed. */
int chrun_registry_pull_many(struct chrun_store *st, const char *const *refs, size_t n,
                             const struct chrun_pull_opts *opts, struct chrun_pull_result *ret,
                             struct chrun_err *err);

/* Check PLATFORM's syntax ("os/arch[/variant]"; NULL is fine) so a tool can
 * reject it as a usage error before any work. Returns 0 or -1
 * (CHRUN_E_USAGE). */
int chrun_registry_platform_check(const char *platform, struct chrun_err *err);

/* Pure helpers, exposed for unit tests. */

/* Seconds to wait for a Retry-After VALUE (delta-seconds or HTTP-date,
 * relative to NOW), capped at CHRUN_RETRY_AFTER_MAX_S; -1 if unparsable. */
long chrun_registry_retry_after(const char *value, time_t now);

/* Backoff before attempt number ATTEMPT (1-based) when the server gave no
 * Retry-After: 250 ms doubling, at most 8 s. */
long chrun_registry_backoff_ms(int attempt);

/* Parse "bytes START-END/TOTAL" (TOTAL may be '*': *RET_TOTAL = -1).
 * Returns 0 or -1 (CHRUN_E_INPUT). */
int chrun_registry_parse_content_range(const char *value, uint64_t *ret_start,
                                       uint64_t *ret_end, int64_t *ret_total,
                                       struct chrun_err *err);

/* True if URLs A and B have the same scheme, host and (default-filled) port:
 * the rule for sending credentials along a redirect. */
bool chrun_registry_same_origin(const char *a, const char *b);

/* True if URL may be contacted: https, or http to a host that
 * chrun_settings_host_insecure allows under SETTINGS (NULL: loopback only). */
bool chrun_registry_url_permitted(const char *url, const struct chrun_settings *settings);

/* Turn one mirrors entry ("https://m.example", "m:5000",
 * "http://127.0.0.1:5000/") into a base URL "scheme://host[:port]" in BUF
 * and its host[:port] in HOST. Plain http only where SETTINGS allow it (a
 * bare host[:port] gets http only if it is insecure there). Returns 0 or -1
 * (CHRUN_E_INPUT). */
int chrun_registry_mirror_url(const char *entry, const struct chrun_settings *settings, char *buf,
                              size_t size, char *host, size_t host_size, struct chrun_err *err);

#endif
