/* The registry client core shared by pull (registry.c) and push (push.c);
 * internal to libchrun, not installed.
 *
 * One struct registry_client talks to one registry endpoint about one
 * repository: libcurl handles sharing a connection pool, the
 * WWW-Authenticate / Bearer / Basic rounds with credentials from docker's
 * config.json, and synchronous requests with hand-followed redirects,
 * timeouts and retries. The network rules of registry.h hold for every
 * request made here: plain HTTP only where allowed, the Authorization
 * header only for the registry's own origin, a request that carries a body
 * or credentials never redirected to another origin. */
#ifndef CHRUN_REGISTRY_CLIENT_H
#define CHRUN_REGISTRY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <curl/curl.h>

#include "chrun/auth.h"
#include "chrun/err.h"
#include "chrun/progress.h"
#include "chrun/ref.h"
#include "chrun/settings.h"
#include "chrun/store.h"

#define REGISTRY_REDIRECTS_MAX 5
/* A blob slower than this for settings->stall_timeout_s seconds counts as
 * stalled. A blob that gets less than this on average over
 * settings->blob_stall_limit_s seconds, its retries and their delays
 * included, ends the pull: with the defaults the whole pull fails within
 * about two minutes of a stall however the server trickles. */
#define REGISTRY_STALL_BYTES_PER_S 1024L
/* Body of an error reply we read (and throw away) before giving up on it. */
#define REGISTRY_ERROR_BODY_MAX (1024 * 1024)
/* Start of an error reply kept for its message (registries answer JSON). */
#define REGISTRY_ERROR_EXCERPT_MAX 1024
#define REGISTRY_URL_MAX 4096
/* "host[:port]" of a URL, as registry_url_hostport writes it. */
#define REGISTRY_HOSTPORT_MAX 272

/* One reply's headers, as far as the client cares. */
struct registry_resp {
    long status;
    char content_type[CHRUN_MEDIA_TYPE_MAX];
    char docker_digest[128];
    char www_auth[4096];
    bool www_auth_too_long;
    long retry_after_s;     /* -1: none */
    int64_t content_length; /* -1: unknown, -2: malformed */
    bool has_range;
    uint64_t range_start;
    bool bad_range;
    char location[REGISTRY_URL_MAX]; /* as sent (may be relative), "" if none */
    bool location_too_long;
};

struct registry_client {
    struct chrun_store *st;
    CURLSH *share;
    CURL *easy; /* synchronous requests: one handle keeps the connection */
    char errbuf[CURL_ERROR_SIZE];
    char registry[CHRUN_REF_NAME_MAX + 1]; /* name for credentials lookup */
    char host[CHRUN_REF_NAME_MAX + 1];     /* host[:port] contacted */
    char base[CHRUN_REF_NAME_MAX + 16];    /* scheme://host[:port] */
    char repo[CHRUN_REF_NAME_MAX + 1];
    /* token scopes, space-separated ("repository:a:pull,push repository:b:pull") */
    char scope[2 * CHRUN_REF_NAME_MAX + 64];
    const char *access;              /* "pull" or "push", for messages */
    char display[CHRUN_REF_STR_MAX]; /* the user's reference, full form */
    bool creds_loaded, have_creds;
    struct chrun_auth_creds creds;
    bool have_challenge;
    struct chrun_auth_challenge challenge;
    char *auth_header; /* "Authorization: ..." for base's origin only */
    unsigned auth_gen; /* bumped whenever auth_header changes */
    struct chrun_settings settings; /* a copy: the caller's may go away */
    long stall_s, connect_s, request_s; /* from settings */
    long blob_stall_limit_s;            /* see REGISTRY_STALL_BYTES_PER_S */
    int jobs;
    struct chrun_progress *progress;
};

/* A finished synchronous request. */
struct registry_reply {
    struct registry_resp resp;
    char url[REGISTRY_URL_MAX]; /* where the final reply came from, after redirects */
    char *body;                 /* 2xx body, NUL-terminated, or NULL */
    size_t len, max;
    bool too_big;
    bool no_body;                                  /* HEAD: Content-Length is not a body */
    char excerpt[REGISTRY_ERROR_EXCERPT_MAX + 1]; /* start of a non-2xx body */
    size_t excerpt_len;
    size_t discarded;
};

/* The body a request sends: LEN bytes from BUF, or else from FD at OFFSET
 * (read with pread as curl asks for it, so a 5 GB blob never sits in memory). */
struct registry_body {
    const char *buf;
    int fd;
    uint64_t offset, len;
    uint64_t sent; /* progress of the current attempt */
    struct chrun_progress *progress;
    int bar;
    uint64_t bar_base; /* bytes of the blob before this body */
};

struct registry_req {
    const char *what;        /* for messages: "manifest X", "token" */
    const char *url;
    const char *method;      /* NULL: GET, or POST with post_body */
    const char *accept;      /* full "Accept: ..." header or NULL */
    const char *headers[3];  /* more full header lines, NULL-terminated */
    const char *auth_header; /* sent only to AUTH_ORIGIN */
    const char *auth_origin;
    const char *post_body;   /* a form body (token requests) */
    struct registry_body *body; /* POST/PUT/PATCH body, or NULL for none */
    bool once;               /* not safely repeatable: no retries (uploads) */
    bool streaming;          /* no whole-request deadline, only the stall timeout */
    size_t max;
};

/* Monotonic clock in milliseconds, and sleeps that restart after EINTR. */
long long registry_mono_ms(void);
void registry_sleep_ms(long ms);
/* Sleep MS milliseconds, but not past DEADLINE (registry_mono_ms). */
void registry_sleep_until(long ms, long long deadline);

void registry_resp_reset(struct registry_resp *r);
/* Parse one header line into R. Returns true at the blank line that ends a
 * header block. Status lines start a new reply (redirects, 100 Continue). */
bool registry_resp_header_line(struct registry_resp *r, const char *line, size_t len);

/* Whether R is a success whose declared Content-Length exceeds MAX: the
 * reply is refused then, before a byte of its body arrives. */
bool registry_resp_declared_over(const struct registry_resp *r, uint64_t max);
bool registry_status_retryable(long status);
bool registry_curl_transient(CURLcode rc);
/* Delay before retry ATTEMPT: the server's Retry-After, else backoff. */
long registry_retry_delay_ms(const struct registry_resp *r, int attempt);

/* A client for REF's repository at BASE ("scheme://host[:port]"), HOST
 * (host[:port] contacted) and REGISTRY (the name credentials are looked up
 * under). Its token scope asks for pull; callers may widen c->scope before
 * the first request. JOBS is the parallel transfer count (0 = default).
 * SETTINGS (NULL: defaults) give the timeouts, the hosts allowed plain HTTP
 * and docker's config directory; the client keeps a copy (its strings stay
 * borrowed). Free with registry_client_free. Returns NULL on failure. */
struct registry_client *registry_client_create(struct chrun_store *st, const char *base,
                                               const char *host, const char *registry,
                                               const struct chrun_ref *ref, int jobs,
                                               const struct chrun_settings *settings,
                                               struct chrun_err *err);
/* NULL is fine; credentials are wiped. */
void registry_client_free(struct registry_client *c);
/* Common options of every handle: shared pool, no automatic redirects,
 * timeouts, TLS verification, ERRBUF for curl's messages. Returns the first
 * option curl refused, or CURLE_OK (see registry_curl_setup_failed). */
CURLcode registry_easy_setup(struct registry_client *c, CURL *e, const char *url, char *errbuf);
/* The same without a client (ADD of a URL uses it): everything but the
 * shared pool, with the given connect and stall timeouts in seconds. */
CURLcode registry_easy_defaults(CURL *e, const char *url, long connect_s, long stall_s,
                                char *errbuf);

/* curl_easy_setopt with its result kept: the first failure stays in *RC,
 * so a run of options is checked once, after the last. Evaluates to *RC. */
#define registry_setopt(rc, e, opt, val)                                                          \
    (*(rc) = *(rc) != CURLE_OK ? *(rc) : curl_easy_setopt((e), (opt), (val)))

/* ERR for an option curl refused (RC), "WHAT: curl refused an option: ...".
 * Returns -1. */
int registry_curl_setup_failed(CURLcode rc, const char *what, struct chrun_err *err);
const char *registry_curl_msg(CURLcode rc, const char *errbuf);

void registry_reply_release(struct registry_reply *r);
/* Host[:port] of URL for messages, sanitized, into BUF (REGISTRY_HOSTPORT_MAX). */
void registry_url_hostport(const char *url, char *buf, size_t size);
/* The registry's own words from a JSON error reply ("DENIED: access to
 * the resource is denied"), sanitized, into BUF; "" when there are none. */
void registry_reply_detail(const struct registry_reply *r, char *buf, size_t size);

/* Perform RQ with retries (unless RQ->once) and hand-followed redirects; R
 * gets the final reply (any status) and R->url the URL that gave it. Fails
 * only when no usable reply came (within c->request_s seconds unless
 * RQ->streaming). Release R with registry_reply_release either way. */
int registry_http(struct registry_client *c, const struct registry_req *rq,
                  struct registry_reply *r, struct chrun_err *err);
/* registry_http with authentication: on 401, take the challenge,
 * authenticate once more, and repeat. A body is rewound for the repeat. */
int registry_request(struct registry_client *c, struct registry_req *rq,
                     struct registry_reply *r, struct chrun_err *err);
/* GET /v2/: 0 if HOST answers as a registry (200 or 401), else -1 saying it
 * does not look like one. */
int registry_ping(struct registry_client *c, struct chrun_err *err);

/* Adopt the challenge of a 401 that FROM answered (only the registry's own
 * origin may ask for credentials), then obtain a token or basic
 * credentials for it. Return 0 or -1. */
int registry_take_challenge(struct registry_client *c, const struct registry_resp *resp,
                            const char *from, struct chrun_err *err);
int registry_authenticate(struct registry_client *c, struct chrun_err *err);
/* The error for a second 401 on WHAT: wrong credentials, no permission for
 * c->access, or none configured. Returns -1. */
int registry_auth_refused(struct registry_client *c, const char *what, struct chrun_err *err);

#endif
